"""The task detail screen: every field, the state history, results, the
provider's error text and the last raw answer as pretty JSON.

Everything shown comes from the store (``get``, ``history``, ``raw``); all
provider text is put in ``rich.text.Text`` objects, so it is never markup.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..model import iso
from ..widgets.cells import clean, redact
from ..widgets.cells import state_label
from ..widgets.summary import rows_table, task_rows

# Control characters json.dumps(ensure_ascii=False) leaves alone (C1, bidi, zero-width).
_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
RAW_LIMIT = 200_000  # characters of raw JSON shown


def pretty_json(raw: Any) -> str:
    """The raw answer as indented JSON, with every control character escaped."""
    try:
        text = json.dumps(raw, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    except (TypeError, ValueError):
        text = json.dumps(str(raw))
    text = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    text = redact(text)
    if len(text) > RAW_LIMIT:
        text = text[:RAW_LIMIT] + "\n… (cut)"
    return text


class DetailScreen(Screen[None]):
    """One task, in full.  ``esc`` goes back; ``c`` copies the first result URL."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="detail.back"),
        Binding("c", "app.copy_url", "Copy URL", id="detail.copy"),
        Binding("j,down", "scroll('down')", "Down", show=False),
        Binding("k,up", "scroll('up')", "Up", show=False),
    ]

    def __init__(self, store, key: str, clock: Callable[[], float]) -> None:
        super().__init__()
        self.store = store
        self.key = key
        self.clock = clock
        self._shown_fields: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-title")
            yield Static(id="detail-fields")
            yield Static(Text("State history", "bold"), classes="section")
            yield Static(id="detail-history")
            yield Static(Text("Last answer from the provider", "bold"), classes="section")
            yield Static(id="detail-raw")
        yield Footer()

    def on_mount(self) -> None:
        self.show()
        self.set_interval(1.0, self._tick, name="detail-ages")

    def _tick(self) -> None:
        """Once a second: the fields again, so "(12s ago)" keeps up with the clock
        (the history and the raw answer change only with the task)."""
        task = self.store.get(self.key)
        if task is None:
            return
        rows = task_rows(task, self.clock(), full=True)
        shown = [(name, value.plain) for name, value in rows]
        if shown != self._shown_fields:  # redraw only when a time's text moved
            self._shown_fields = shown
            self.query_one("#detail-fields", Static).update(rows_table(rows))

    def show(self) -> None:
        """(Re)read the task from the store and draw it."""
        task = self.store.get(self.key)
        title = self.query_one("#detail-title", Static)
        if task is None:
            title.update(Text(f"{clean(self.key, 300)} is no longer tracked.", "bold"))
            return
        now = self.clock()
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{task.provider} ", "bold")
        head.append(clean(task.task_id, 300), "bold")
        head.append(f"   {state_label(task.state)}")
        title.update(head)
        rows = task_rows(task, now, full=True)
        self._shown_fields = [(name, value.plain) for name, value in rows]
        self.query_one("#detail-fields", Static).update(rows_table(rows))
        self.query_one("#detail-history", Static).update(self._history())
        raw = self.store.raw(self.key)
        body = Text("(nothing received yet)", "dim") if raw is None else Text(pretty_json(raw))
        self.query_one("#detail-raw", Static).update(body)

    def on_store_change(self, keys: set[str], events: int) -> None:
        """Called by the app while this screen is on top: redraw when our task changed."""
        if self.key in keys:
            self.show()

    def _history(self) -> Table | Text:
        rows = self.store.history(self.key)
        if not rows:
            return Text("(no state seen yet)", "dim")
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for when, state, status in rows:
            table.add_row(iso(when) or "-", state_label(state),
                          Text(clean(status, 200), "dim") if status else "")
        return table

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#detail-body", VerticalScroll)
        if direction == "down":
            body.scroll_down(animate=False)
        else:
            body.scroll_up(animate=False)
