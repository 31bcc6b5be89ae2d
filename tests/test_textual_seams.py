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
