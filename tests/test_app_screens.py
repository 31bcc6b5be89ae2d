"""The dashboard's sub-screens under Pilot (issue 13: bugs 6 and 15, gap 5): the add form's
live preview of parsed ids, provider guess and discard question; every modal's own footer
keys; ``q``/``esc`` leaving the error log and help; the error log's full message, jump to
task, width-filling message column and task failures.  Real SQLite store in tmp_path,
fixed clock, no engine."""

from __future__ import annotations

from textual.widgets import DataTable, Footer, TextArea
from textual.widgets._footer import FooterKey

from test_app_fixtures import NOW, clock, fill_store, make_config, plain, wait_for
from tui.app import make_app
from tui.model import Event, Task
from tui.screens.add import AddTaskScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.errors import ErrorLogScreen  # noqa: F401
from tui.screens.help import HelpScreen

EVO = "task-unified-1756817821-4x3rx6ny"  # docs.evolink.ai get-task-detail example (seeds/evolink-task-detail.md)
UUID = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"  # seeds/freepik-hyperflux-list-tasks.md example


def app_for(tmp_path, tasks=None):
    store = fill_store(tmp_path / "tasks.db", tasks)
    return make_app(make_config(tmp_path), store, clock=clock, config_path=tmp_path / "config.toml"), store


def footer_keys(screen) -> dict[str, str]:
    """key -> description of the FooterKeys the screen's own Footer shows."""
    footer = screen.query_one(Footer)
    return {k.key: k.description for k in footer.query(FooterKey)}


async def open_add(pilot, app) -> AddTaskScreen:
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, AddTaskScreen))
    return app.screen


async def paste(pilot, screen, text: str) -> None:
    area = screen.query_one("#add-ids", TextArea)
    area.focus()
    area.insert(text)
    await wait_for(pilot, lambda: screen.parsed.values or screen.parsed.invalid)


# ---------------------------------------------------------------- add form


async def test_add_form_shows_the_parsed_ids_and_their_count(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        assert "no ids yet" in plain(screen.query_one("#add-parsed"))
        await paste(pilot, screen, '"a-1", a-2\na-3 a-1')
        await wait_for(pilot, lambda: "3 ids: a-1, a-2, a-3" in plain(screen.query_one("#add-parsed")))
        assert "1 duplicate dropped" in plain(screen.query_one("#add-parsed"))


async def test_add_form_takes_the_id_out_of_a_pasted_url_and_guesses_the_provider(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        assert screen.query_one("#add-provider").value == "comfy"  # the cursor task's provider
        await paste(pilot, screen, f"https://api.evolink.ai/v1/tasks/{EVO}")
        await wait_for(pilot, lambda: screen.query_one("#add-provider").value == "evolink")
        assert f"1 id: {EVO}" in plain(screen.query_one("#add-parsed"))
        assert not screen.query_one("#add-warnings").display
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: f"evolink:{EVO}" in store)
        assert f"evolink:https" not in " ".join(store.keys())


async def test_add_form_fills_the_kind_a_comfy_url_names(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        await paste(pilot, screen, f"https://api.comfy.org/proxy/freepik/v1/ai/image-relight/{UUID}")
        await wait_for(pilot, lambda: screen.query_one("#add-kind").value == "image-relight")
        assert screen.query_one("#add-provider").value == "comfy"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: f"comfy:{UUID}" in store)
        assert store.get(f"comfy:{UUID}").kind == "image-relight"


async def test_add_form_does_not_override_a_provider_the_user_chose_and_warns_on_shape(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        screen.query_one("#add-provider").value = "freepik"  # the user's choice
        await pilot.pause()
        await paste(pilot, screen, f"{EVO} not-a-uuid")
        warnings = screen.query_one("#add-warnings")
        await wait_for(pilot, lambda: warnings.display)
        assert screen.query_one("#add-provider").value == "freepik"
        text = plain(warnings)
        assert "looks like an EvoLink id; Freepik ids are UUIDs" in text and "+1 more" in text


async def test_add_form_flags_invalid_ids_and_adds_only_the_valid_ones(tmp_path):
    app, store = app_for(tmp_path)
    long = "L" * 300
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        screen.query_one("#add-provider").value = "upscayl"
        await paste(pilot, screen, f"good-1 {long} bad\x07x good-2")
        warnings = screen.query_one("#add-warnings")
        await wait_for(pilot, lambda: warnings.display)
        assert "2 invalid, not added" in plain(warnings) and "longer than 200 characters" in plain(warnings)
        assert "2 ids: good-1, good-2" in plain(screen.query_one("#add-parsed"))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "upscayl:good-2" in store)
        assert not any(len(k) > 250 for k in store.keys())
        assert len(store) == 22


async def test_esc_on_a_filled_add_form_asks_before_discarding(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        await paste(pilot, screen, "keep-me")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "1 id typed" in plain(app.screen.query_one("#confirm-question"))
        await pilot.press("escape")  # no: back to the form, text kept
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.query_one("#add-ids", TextArea).text == "keep-me"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not isinstance(app.screen, (ConfirmScreen, AddTaskScreen)))
        assert "upscayl:keep-me" not in store and len(store) == 20
        # an empty form closes at once
        await open_add(pilot, app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AddTaskScreen))


async def test_add_form_footer_shows_its_own_keys_and_fits_80x24(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_add(pilot, app)
        await pilot.pause()
        keys = footer_keys(screen)
        assert keys.get("ctrl+s") == "Add" and keys.get("escape") == "Cancel"
        assert "q" not in keys and "a" not in keys  # not the main screen's
        footer = screen.query_one(Footer)
        assert footer.region.y == 23 and footer.region.height == 1
        await paste(pilot, screen, f"{'L' * 300} {EVO} abc")
        screen.query_one("#add-provider").value = "freepik"
        await wait_for(pilot, lambda: plain(screen.query_one("#add-warnings")).count("⚠") == 2)
        await pilot.pause()
        add = screen.query_one("#add")
        assert add.region.height == 1 and add.region.bottom <= footer.region.y


async def test_confirm_and_help_show_their_own_footer_keys(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        keys = footer_keys(app.screen)
        assert keys.get("y") == "Yes" and keys.get("n") == "No" and "q" not in keys
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        keys = footer_keys(app.screen)
        assert "Close" in keys.values() and "Quit" not in keys.values()


# ---------------------------------------------------------------- q and esc go back


async def test_q_in_help_goes_back_and_never_quits(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in ("q", "escape"):
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press(key)
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
            assert app.is_running and app.return_code is None
