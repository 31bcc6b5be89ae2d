"""The error log: newest first, filterable.  A DataTable holds one page of rows."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label

from ..model import Event
from ..widgets.cells import clean

PAGE = 1000  # newest rows read from the store


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%m-%d %H:%M:%S")


def event_cells(e: Event) -> tuple[str, ...]:
    """The visible columns of one event, as inert plain strings."""
    wait = f"{e.retry_after:g}s" if e.retry_after is not None else ""
    return (
        _time(e.time),
        clean(e.provider, 40),
        clean(e.task_id, 80) if e.task_id else "",
        str(e.status) if e.status is not None else "-",
        clean(e.kind, 40),
        clean(e.message, 500),
        wait,
    )


class ErrorLogScreen(Screen[None]):
    """``e`` opens it.  Type to filter (substring over every column); ``esc`` goes back."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="errors.back"),
        Binding("slash", "focus_filter", "Filter", id="errors.filter"),
    ]

    def __init__(self, store) -> None:
        super().__init__()
        self.store = store
        self.rows: list[tuple[str, ...]] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="errors-bar"):
            yield Label("Error log  /", id="errors-title")
            yield Input(placeholder="filter: provider, task, status, type, message", id="errors-filter")
            yield Label("", id="errors-count")
        yield DataTable(id="errors-table", cursor_type="row", zebra_stripes=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name, width in (("time (UTC)", 14), ("provider", 8), ("task", 22), ("HTTP", 4),
                            ("type", 14), ("message", None), ("wait", 6)):
            table.add_column(name, width=width)
        self.reload()
        table.focus()

    def reload(self) -> None:
        """Read the newest events from the store and redraw."""
        self.rows = [event_cells(e) for e in self.store.events(limit=PAGE)]
        self._fill()

    def _fill(self) -> None:
        needle = self.query_one("#errors-filter", Input).value.strip().lower()
        table = self.query_one(DataTable)
        table.clear()
        shown = 0
        for cells in self.rows:
            if needle and not any(needle in c.lower() for c in cells):
                continue
            table.add_row(*(Text(c) for c in cells))
            shown += 1
        total = len(self.rows)
        self.query_one("#errors-count", Label).update(
            f"{shown:,} of {total:,}" if total else "no errors logged")

    def on_store_change(self, keys: set[str], events: int) -> None:
        """Called by the app while this screen is on top: new log rows -> reload."""
        if events:
            self.reload()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#errors-filter", Input).focus()

    def action_back(self) -> None:
        filt = self.query_one("#errors-filter", Input)
        if filt.has_focus and filt.value:
            filt.value = ""
            return
        self.app.pop_screen()
