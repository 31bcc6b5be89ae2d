"""Where tasktui leans on something Textual (or Python) does not promise, it says
so here, and a test fails on the upgrade that breaks it (issue #14).

- ``FilterInput.virtual_size`` (tui/widgets/filter_bar.py): a reactive without
  ``layout``, so a keystroke repaints the input instead of laying out the whole
  screen.  Measured here: typing in a plain Input lays the screen out once per
  key; with the override, never.  The test fails if the override stops working
  (layouts come back) and also if a Textual release makes it unnecessary (a
  plain Input no longer lays out): then remove it.
- ``Widget._scroll_update`` (tui/widgets/task_list.py): the list sets its
  virtual size without a layout and asks Textual's own scrollbar update; it
  falls back to a plain layout when the method is gone, so a test says when.
- ``atexit._run_exitfuncs`` (tui/app.py, the hang-up exit): the demo's
  temporary files are removed by atexit handlers that ``os._exit`` would skip.

Counting layouts needs Textual's ``Screen._refresh_layout``: ``monkeypatch``
refuses a name that is gone, so a rename fails this test loudly too.

A ratchet keeps it at that: tui reads no other private Textual name
(``App._bindings`` / ``_keymap`` gave way to ``App.keymap`` and
``bound_keys()``) and overrides no private Textual method.
"""

from __future__ import annotations

import subprocess
import sys

from textual.app import App
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from tui.widgets.filter_bar import FilterBar, FilterInput

TYPED = "provider:evolink -state:done"


class _Bar(App):
    CSS = "#filter-input { width: 40; } Input { width: 40; }"

    def __init__(self, plain: bool) -> None:
        super().__init__()
        self.plain = plain

    def compose(self):
        if self.plain:
            yield Input(id="plain")
        else:
            yield FilterBar(lambda value: None, id="bar")


async def _layouts_while_typing(monkeypatch, plain: bool) -> int:
    count = [0]
    real = Screen._refresh_layout

    def counting(self, *args, **kwargs):
        count[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Screen, "_refresh_layout", counting, raising=True)
    app = _Bar(plain)
    async with app.run_test(size=(100, 10)) as pilot:
        app.query_one(Input).focus()
        await pilot.pause()
        count[0] = 0
        await pilot.press(*[("space" if c == " " else c) for c in TYPED])
        await pilot.pause()
        assert app.query_one(Input).value == TYPED
    return count[0]


async def test_typing_in_the_filter_never_lays_out_the_screen(monkeypatch):
    assert await _layouts_while_typing(monkeypatch, plain=False) == 0


async def test_a_plain_input_still_lays_out_at_each_key_so_the_override_is_needed(monkeypatch):
    layouts = await _layouts_while_typing(monkeypatch, plain=True)
    assert layouts >= len(TYPED) // 2, (
        f"a plain Input laid the screen out {layouts} times for {len(TYPED)} keys: Textual no "
        "longer needs FilterInput's virtual_size override; remove it (tui/widgets/filter_bar.py)")


def test_the_filter_inputs_virtual_size_is_a_reactive_without_layout():
    from textual.reactive import Reactive

    own = FilterInput.__dict__["virtual_size"]
    assert isinstance(own, Reactive) and isinstance(Widget.__dict__["virtual_size"], Reactive)


def test_textual_still_has_the_scroll_update_the_task_list_calls():
    assert callable(getattr(Widget, "_scroll_update", None)), (
        "Widget._scroll_update is gone: TaskList falls back to a layout per change; "
        "find Textual's new way to update the scrollbar (tui/widgets/task_list.py)")


def test_atexit_handlers_can_be_run_before_a_hard_exit(tmp_path):
    mark = tmp_path / "cleaned"
    code = ("import atexit, os, tempfile, pathlib\n"
            "d = tempfile.TemporaryDirectory(prefix='seam-')\n"  # like the demo's world
            f"atexit.register(lambda: pathlib.Path({str(mark)!r}).write_text(d.name))\n"
            "run = getattr(atexit, '_run_exitfuncs')\n"
            "run()\n"
            "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    from pathlib import Path

    left = Path(mark.read_text())
    assert not left.exists()  # the temporary directory's own finalizer ran too


# ---------------------------------------------------------------- a ratchet: no new private Textual names

import ast  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
from pathlib import Path  # noqa: E402

TUI = Path(__file__).resolve().parents[2] / "tui"
ALLOWED_PRIVATE = {"_scroll_update"}  # each named, measured and guarded above
UI_MODULES = ["tui.app", "tui.messages", "tui.preview", "tui.widgets.task_list", "tui.widgets.filter_bar",
              "tui.widgets.header", "tui.widgets.quota", "tui.widgets.summary", "tui.screens.detail",
              "tui.screens.help", "tui.screens.errors", "tui.screens.add", "tui.screens.confirm"]


def _textual_private_names() -> set[str]:
    from textual.message import Message
    from textual.scroll_view import ScrollView
    from textual.widgets import DataTable, Footer, Label, Static

    names: set[str] = set()
    for cls in (App, Widget, Screen, ScrollView, Input, DataTable, Footer, Label, Static, Message):
        names |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
    for obj in (App(), Widget(), Screen(), ScrollView(), Input(), DataTable(), Static(), Label(), Footer()):
        names |= {n for n in dir(obj) if n.startswith("_") and not n.startswith("__")}  # set in __init__
    return names


def test_tui_reads_no_private_textual_name_beyond_the_guarded_ones():
    """``x._name`` where ``_name`` is Textual's (and tui defines no such name itself)."""
    textual_names = _textual_private_names()
    own: set[str] = set()
    used: dict[str, set[str]] = {}
    for path in TUI.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {(a.asname or a.name).split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                   for a in node.names}  # os._exit is no Textual name
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                continue
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.ctx, ast.Store):
                    own.add(node.attr)
                used.setdefault(node.attr, set()).add(path.relative_to(TUI).as_posix())
    private = {n: sorted(used[n]) for n in set(used) & textual_names - own}
    assert set(private) <= ALLOWED_PRIVATE, f"private Textual names read by tui: {private}"


def test_tui_overrides_no_private_textual_method():
    class Plain(Widget):  # what Textual itself sets on every subclass
        pass

    machinery = {n for n in vars(Plain) if n.startswith("_")}
    found = []
    for name in UI_MODULES:
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != name:
                continue
            bases = [b for b in cls.__mro__[1:] if b.__module__.startswith("textual")]
            for attr in vars(cls):
                if (attr.startswith("_") and not attr.startswith("__") and attr not in machinery
                        and not attr.startswith("_default_")  # a reactive's default (FilterInput.virtual_size)
                        and any(attr in vars(b) for b in bases)):
                    found.append(f"{name}.{cls.__name__}.{attr}")
    assert found == []
