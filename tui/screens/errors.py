"""The error log: newest first, filterable.  A DataTable holds one page of rows.

Two kinds of rows, both read from the store (never from a provider):

* the event log (``store.events``): failed polls, refused keys, rate limits;
* task failures: every tracked task that ended ``failed``, ``cancelled`` or
  ``not_found``, with its error, as the types ``task failed``, ``task
  cancelled`` and ``task not found``.

The message column takes the width the others leave.  ``enter`` shows a row's
whole message; from there (or with ``g`` on the row) the log jumps to the
task: it posts :class:`ErrorLogScreen.JumpToTask` to the app and dismisses
itself with the task's key.  ``q`` and ``esc`` go back.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from ..model import Event, Task, task_key
from ..widgets.cells import clean, fit

PAGE = 1000  # newest rows read from the store, of each kind
TASK_KINDS = {"failed": "task failed", "cancelled": "task cancelled", "not_found": "task not found"}
TASK_MESSAGES = {  # when the provider said nothing more
    "failed": "the task failed (the provider gave no reason)",
    "cancelled": "the task was cancelled",
    "not_found": "the provider does not know this task id (not found)",
}
COLUMNS = ("time (UTC)", "provider", "task", "HTTP", "type", "message", "wait")
NARROW_COLUMNS = ("UTC", "prov.", "task", "HTTP", "type", "message", "wait")
MESSAGE = COLUMNS.index("message")
WIDE = 120  # from this many columns, the roomy layout
# widths of every column but the message, roomy and narrow
WIDE_WIDTHS = (14, 8, 24, 4, 14, 6)
NARROW_WIDTHS = (8, 7, 14, 4, 10, 4)
MIN_MESSAGE = 10
SCROLLBAR = 2  # the table's vertical scrollbar


@dataclass(frozen=True)
class LogRow:
    """One row of the log: an event, or a task that ended badly."""

    time: float
    provider: str
    task_id: str | None
    status: int | None
    kind: str
    message: str
    retry_after: float | None = None
    source: str = "event"  # "event" | "task"

    @property
    def key(self) -> str | None:
        """The task the row is about (None: it is about the provider)."""
        return task_key(self.provider, self.task_id) if self.task_id else None


def event_row(e: Event) -> LogRow:
    return LogRow(e.time, e.provider, e.task_id, e.status, e.kind, e.message, e.retry_after)


def task_row(t: Task) -> LogRow | None:
    """The row of a task that ended badly; None for any other task."""
    kind = TASK_KINDS.get(t.state)
    if kind is None:
        return None
    return LogRow(_ended(t), t.provider, t.task_id, None, kind, t.error or TASK_MESSAGES[t.state],
                  source="task")


def _ended(t: Task) -> float:
    return t.finished_at or t.updated_at or 0.0


def task_rows(tasks: Iterable[Task], limit: int = PAGE) -> list[LogRow]:
    """The newest ``limit`` task failures, newest first."""
    bad = [t for t in tasks if t.state in TASK_KINDS]
    return [task_row(t) for t in heapq.nlargest(limit, bad, key=_ended)]  # type: ignore[misc]


def merge(events: list[LogRow], tasks: list[LogRow]) -> list[LogRow]:
    """Both kinds, newest first; at the same moment an event comes first."""
    return sorted(events + tasks, key=lambda r: (r.time, r.source == "event"), reverse=True)


def _time(ts: float, narrow: bool = False) -> str:
    try:
        dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return "?"
    return dt.strftime("%H:%M:%S" if narrow else "%m-%d %H:%M:%S")


def middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with the ellipsis in the middle (ids differ at
    their ends: ``task-uni…4x3rx6ny``)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width < 4:
        return fit(text, width)
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + text[-tail:]


def row_cells(r: LogRow) -> tuple[str, ...]:
    """The visible columns of one row, as inert plain strings (whole, uncut)."""
    wait = f"{r.retry_after:g}s" if r.retry_after is not None else ""
    return (
        _time(r.time),
        clean(r.provider, 40),
        clean(r.task_id, 200) if r.task_id else "",
        str(r.status) if r.status is not None else "-",
        clean(r.kind, 40),
        clean(r.message, 500).replace("\n", " ").replace("\t", " "),
        wait,
    )


def event_cells(e: Event) -> tuple[str, ...]:
    """The visible columns of one event, as inert plain strings."""
    return row_cells(event_row(e))


def column_widths(width: int) -> tuple[int, ...]:
    """Widths of the seven columns for a table ``width`` cells wide: fixed ones for
    all but the message, which takes what is left (each column has one cell of
    padding on both sides)."""
    others = WIDE_WIDTHS if width >= WIDE else NARROW_WIDTHS
    used = sum(others) + 2 * len(COLUMNS) + SCROLLBAR
    message = max(MIN_MESSAGE, width - used)
    widths = list(others)
    widths.insert(MESSAGE, message)
    return tuple(widths)


class ErrorMessageScreen(ModalScreen[str | None]):
    """One row of the log in full.  Dismisses with the task's key to jump to it."""

    DEFAULT_CSS = """
    ErrorMessageScreen #error-box { width: 90%; max-width: 120; height: auto; max-height: 80%; }
    ErrorMessageScreen #error-head { height: auto; margin-bottom: 1; }
    ErrorMessageScreen #error-scroll { height: auto; max-height: 20; }
    ErrorMessageScreen #error-keys { color: $foreground-muted; margin-top: 1; }
    """

    BINDINGS = [
        Binding("enter,g", "jump", "Go to task", id="error.jump"),
        Binding("c", "copy", "Copy message", id="error.copy"),
        Binding("escape,q", "close", "Back", id="error.back"),
    ]

    def __init__(self, row: LogRow, tracked: bool) -> None:
        super().__init__()
        self.row = row
        self.tracked = tracked
        self.message = clean(row.message)

    def compose(self) -> ComposeResult:
        r = self.row
        head = Text()
        for name, value in (("time", _time(r.time) + " UTC"), ("provider", clean(r.provider, 40)),
                            ("task", clean(r.task_id, 400) if r.task_id else "(none: about the provider)"),
                            ("HTTP", str(r.status) if r.status is not None else "-"),
                            ("type", clean(r.kind, 40)),
                            ("wait", f"{r.retry_after:g}s" if r.retry_after is not None else "")):
            if value:
                head.append(f"{name:<9}", "bold")
                head.append(value + "\n")
        head.rstrip()
        with Vertical(id="error-box", classes="dialog"):
            yield Label("Task failure" if r.source == "task" else "Error", classes="dialog-title")
            yield Static(head, id="error-head")
            with VerticalScroll(id="error-scroll"):
                yield Static(Text(self.message), id="error-message")
            yield Static(Text(self._keys_hint()), id="error-keys")
        yield Footer()

    def _keys_hint(self) -> str:
        if self.row.key is None:
            return "This row is about the provider, not one task.  esc goes back."
        if not self.tracked:
            return "This task is not tracked here.  esc goes back."
        return "enter or g goes to the task · c copies the message · esc goes back"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "jump":
            return self.row.key is not None and self.tracked
        return True

    def action_jump(self) -> None:
        if self.row.key is not None and self.tracked:
            self.dismiss(self.row.key)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.message)
        self.notify("Copied the message.", timeout=2, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


class ErrorLogScreen(Screen[str | None]):
    """``e`` opens it.  Type to filter (substring over every column); ``enter`` shows a
    row in full; ``g`` goes to the row's task; ``q``/``esc`` go back.  Dismisses with
    the key of the task to go to (None: just back)."""

    class JumpToTask(Message):
        """Posted to the app: show this task (``key``) on the main screen."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    BINDINGS = [
        Binding("escape", "back", "Back", id="errors.back"),
        Binding("q", "back", "Back", show=False, id="errors.quit"),
        Binding("slash", "focus_filter", "Filter", id="errors.filter"),
        Binding("g", "jump", "Go to task", id="errors.jump"),
        Binding("c", "copy", "Copy message", id="errors.copy"),
    ]

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store
        self.rows: list[LogRow] = []
        self.cells: list[tuple[str, ...]] = []
        self.shown: list[LogRow] = []  # the rows in the table, in order
        self.widths: tuple[int, ...] = ()
        self._failed_keys: set[str] = set()
        self._events: list[LogRow] = []
        self._tasks: list[LogRow] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="errors-bar"):
            yield Label("Error log  /", id="errors-title")
            yield Input(placeholder="filter: provider, task, status, type, message", id="errors-filter")
            yield Label("", id="errors-count")
        yield DataTable(id="errors-table", cursor_type="row", zebra_stripes=False)
        yield Footer()

    def on_mount(self) -> None:
        self._columns(self.app.size.width)
        self.reload()
        self.query_one(DataTable).focus()

    def _columns(self, width: int) -> bool:
        """(Re)build the columns for ``width``; True when they changed."""
        widths = column_widths(width)
        if widths == self.widths:
            return False
        self.widths = widths
        table = self.query_one(DataTable)
        table.clear(columns=True)
        names = COLUMNS if width >= WIDE else NARROW_COLUMNS
        for name, w in zip(names, widths):
            table.add_column(name, width=w)
        return True

    def on_resize(self, event: Any) -> None:
        if self._columns(self.size.width):
            self._fill()

    def reload(self, events: bool = True, tasks: bool = True) -> None:
        """Read the newest events and/or task failures from the store and redraw."""
        if events:
            self._events = [event_row(e) for e in self.store.events(limit=PAGE)]
        if tasks:
            self._tasks = task_rows(self.store.tasks())
            self._failed_keys = {r.key for r in self._tasks if r.key}
        self.rows = merge(self._events, self._tasks)
        self.cells = [row_cells(r) for r in self.rows]
        self._fill()

    def _fill(self) -> None:
        needle = self.query_one("#errors-filter", Input).value.strip().lower()
        table = self.query_one(DataTable)
        narrow = self.widths[0] < WIDE_WIDTHS[0]
        cursor = table.cursor_row
        table.clear()
        self.shown = []
        for row, cells in zip(self.rows, self.cells):
            if needle and not any(needle in c.lower() for c in cells):
                continue
            shown = list(cells)
            if narrow:
                shown[0] = _time(row.time, narrow=True)
            shown[2] = middle(shown[2], self.widths[2])
            for i in (1, 4):  # provider, type: cut with an ellipsis, not cropped
                shown[i] = fit(shown[i], self.widths[i]).rstrip()
            shown[MESSAGE] = fit(shown[MESSAGE], self.widths[MESSAGE]).rstrip()
            table.add_row(*(Text(c, no_wrap=True) for c in shown))
            self.shown.append(row)
        if self.shown and cursor:
            table.move_cursor(row=min(cursor, len(self.shown) - 1))
        events = sum(1 for r in self.rows if r.source == "event")
        tasks = len(self.rows) - events
        total = len(self.rows)
        what = f"{events:,} errors · {tasks:,} task failures"
        self.query_one("#errors-count", Label).update(
            (f"{len(self.shown):,} of {total:,} ({what})" if needle else what) if total
            else "no errors logged")

    @property
    def cursor_row_data(self) -> LogRow | None:
        table = self.query_one(DataTable)
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def on_store_change(self, keys: set[str], events: int) -> None:
        """Called by the app while this screen is on top: new log rows, or a task that
        ended badly (or stopped being so) -> reload."""
        tasks = any(k in self._failed_keys or self._is_failure(k) for k in keys)
        if events or tasks:
            self.reload(events=bool(events), tasks=tasks)

    def _is_failure(self, key: str) -> bool:
        task = self.store.get(key)
        return task is not None and task.state in TASK_KINDS

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.cursor_row_data
        if row is None:
            return
        tracked = row.key is not None and row.key in self.store

        def done(key: str | None) -> None:
            if key:
                self._jump(key)

        self.app.push_screen(ErrorMessageScreen(row, tracked), done)

    def action_copy(self) -> None:
        """Copy the whole message of the row under the cursor (OSC 52)."""
        row = self.cursor_row_data
        if row is None:
            return
        self.app.copy_to_clipboard(clean(row.message))
        self.notify("Copied the message.", timeout=2, markup=False)

    def action_jump(self) -> None:
        row = self.cursor_row_data
        if row is None:
            return
        if row.key is None:
            self.notify("This row is about the provider, not one task.", severity="warning",
                        timeout=3, markup=False)
            return
        self._jump(row.key)

    def _jump(self, key: str) -> None:
        if key not in self.store:
            self.notify("That task is no longer tracked here.", severity="warning", timeout=3,
                        markup=False)
            return
        self.app.post_message(self.JumpToTask(key))
        self.dismiss(key)

    def action_focus_filter(self) -> None:
        self.query_one("#errors-filter", Input).focus()

    def action_back(self) -> None:
        filt = self.query_one("#errors-filter", Input)
        if filt.has_focus and filt.value:
            filt.value = ""
            return
        self.dismiss(None)
