"""Issue 13 "Done when" (helper U1): one action table (tui/actions.py) from which
the keys, the footer, the help screen, the command palette, the keymap's ids and
the README's key tables all come; the bindings other files declare agree with it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from textual.binding import Binding

from test_app_fixtures import clock, fill_store, make_config, plain, wait_for
from tui import actions
from tui.app import TaskTUI, make_app

ROOT = Path(__file__).resolve().parents[2]


def declared() -> dict[str, list[tuple[str, str, bool, str]]]:
    """binding id -> (keys, action, shown, declaring class) for every binding the
    dashboard's app, screens and widgets declare."""
    import tui
    import tui.screens
    import tui.widgets
    from textual.dom import DOMNode

    out: dict[str, list[tuple[str, str, bool, str]]] = {}
    names = ["tui.app"] + [f"{pkg.__name__}.{m.name}" for pkg in (tui.screens, tui.widgets)
                           for m in pkgutil.iter_modules(pkg.__path__)]
    for name in names:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, DOMNode) and obj.__module__ == name:
                for b in obj.BINDINGS:
                    if isinstance(b, Binding) and b.id:
                        out.setdefault(b.id, []).append((b.key, b.action, b.show, obj.__name__))
    return out


def test_every_action_is_listed_once_and_the_keymap_ids_are_the_tables():
    from tui.config import BINDING_IDS

    ids = [a.id for a in actions.ACTIONS]
    assert len(ids) == len(set(ids))
    assert tuple(BINDING_IDS) == actions.binding_ids()


def test_every_declared_binding_is_in_the_table_with_the_same_keys_and_action():
    found = declared()
    assert set(found) == set(actions.BY_ID), "a binding is declared that the table lacks, or the reverse"
    for binding_id, rows in found.items():
        a = actions.BY_ID[binding_id]
        keys = {k for key, *_ in rows for k in key.split(",")}
        assert keys == set(a.keys.split(",")) | ({*a.more_keys.split(",")} if a.more_keys else set()), binding_id
        assert {action for _, action, _, _ in rows} == {a.action}, binding_id
        assert any(shown for _, _, shown, _ in rows) == a.footer, binding_id


def test_the_main_screen_detail_help_and_quota_bindings_are_built_from_the_table():
    from tui.screens.detail import DetailScreen
    from tui.screens.help import HelpScreen
    from tui.widgets.quota import QuotaTable

    def ids(bindings):
        return [b.id for b in bindings if b.id]

    assert ids(TaskTUI.BINDINGS) == [i for a in actions.for_screen(actions.MAIN)
                                     for i in ([a.id, a.id] if a.more_keys else [a.id])]
    assert ids(DetailScreen.BINDINGS) == [a.id for a in actions.for_screen(actions.DETAIL)]
    assert ids(HelpScreen.BINDINGS) == [a.id for a in actions.for_screen(actions.HELP)]
    assert ids(QuotaTable.BINDINGS) == [a.id for a in actions.for_screen(actions.QUOTA)]


def test_readme_key_tables_are_the_generated_ones_and_list_exactly_the_tables_keys():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = actions.readme_keys_section(text)
    assert section is not None, "README.md lost its generated key section"
    assert section == actions.readme_table(), "run: python -m tui.actions --write README.md"
    # the keys the README names are exactly the keys bound (numbered runs as 1–9)
    shown = {cell.strip("`") for line in section.splitlines() if line.startswith("| `")
             for cell in line.split(" | ")[0].lstrip("| ").split(" ")}
    expected = set()
    for keys, _ in (row for screen in actions.SCREENS for row in actions.help_rows(screen)):
        expected |= set(keys.split(" "))
    assert shown == expected
    every_key = {actions.key_display(k) for a in actions.ACTIONS
                 for k in (a.keys + ("," + a.more_keys if a.more_keys else "")).split(",")}
    numbered = {k for k in every_key if k.isdigit()}
    assert shown == (every_key - numbered) | {"1–9"}


def test_write_readme_puts_the_tables_in_place(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{actions.README_BEGIN}\nold table\n{actions.README_END}\nrest\n", encoding="utf-8")
    assert actions.write_readme(str(readme)) is True
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("\nrest\n") and "old table" not in text
    assert actions.readme_keys_section(text) == actions.readme_table()
    assert actions.write_readme(str(readme)) is False


def app_for(tmp_path, **ui):
    store = fill_store(tmp_path / "tasks.db")
    return make_app(make_config(tmp_path, **ui), store, clock=clock)


async def test_help_screen_lists_every_action_of_every_screen_from_the_table(tmp_path):
    from tui.screens.help import SUB_SCREENS, HelpScreen

    app = app_for(tmp_path)
    async with app.run_test(size=(160, 80)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = plain(app.screen.query_one("#help-text"))
        for a in actions.for_screen(actions.MAIN):
            if not a.id.startswith("saved."):
                assert a.description in text, a.id
        for screen in SUB_SCREENS:
            assert actions.SCREEN_TITLES[screen] in text
            for _, what in actions.help_rows(screen):
                assert what in text, what
        assert "[results] dir" in text  # help text is never read as markup


async def test_footer_shows_exactly_the_tables_footer_actions(tmp_path):
    app = app_for(tmp_path)
    async with app.run_test(size=(200, 30)) as pilot:
        await pilot.pause()
        shown = {b.binding.id for b in app.active_bindings.values()
                 if b.binding.show and b.binding.id and b.binding.id in actions.BY_ID
                 and actions.BY_ID[b.binding.id].screen == actions.MAIN}
        assert shown == {a.id for a in actions.for_screen(actions.MAIN) if a.footer}


async def test_palette_offers_the_tables_titles_with_the_keys_bound_now(tmp_path):
    app = app_for(tmp_path, keymap={"time": "f6"})
    async with app.run_test(size=(140, 40)) as pilot:
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for a in actions.palette(actions.MAIN):
            assert a.title in commands, a.id
        assert commands["Relative or absolute times"].help.endswith("(f6)")  # the keymap's key
        assert "(>)" in commands["Sort by next column"].help
        # a parameterized action runs from the palette too
        sort = app.task_list.sort_mode
        result = commands["Sort by next column"].callback()
        if inspect.isawaitable(result):
            await result
        await wait_for(pilot, lambda: app.task_list.sort_mode != sort)


@pytest.mark.parametrize("binding_id,key", [("time", "f6"), ("detail.copy_id", "I")])
async def test_keymap_remaps_table_actions(tmp_path, binding_id, key):
    from tui.screens.detail import DetailScreen

    app = app_for(tmp_path, keymap={binding_id: key})
    async with app.run_test(size=(140, 40)) as pilot:
        from tui import timefmt

        if binding_id == "time":
            await pilot.press("f6")
            await wait_for(pilot, lambda: timefmt.mode == timefmt.ABSOLUTE)
            await pilot.press("f6")
            await wait_for(pilot, lambda: timefmt.mode == timefmt.RELATIVE)
        else:
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
            await pilot.press("I")
            await wait_for(pilot, lambda: app.clipboard == app.screen.key.split(":", 1)[1])


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_help_from_the_action_table(snap_compare, tmp_path, size):
    app = make_app(make_config(), fill_store(tmp_path / "tasks.db"), clock=clock)
    assert snap_compare(app, press=["question_mark"], terminal_size=size)
