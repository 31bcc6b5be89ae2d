"""The error log: newest first, filterable; a window over the newest rows.

Its rows (tui/errlog.py, shared with ``tasktui errors``) are read from the
store, never from a provider:

* the event log (``store.events``): failed polls, refused keys, rate limits;
* task failures: every tracked task that ended ``failed``, ``cancelled`` or
  ``not_found``, with its error, as the types ``task failed``, ``task
  cancelled`` and ``task not found``.

At scale (the store keeps 10,000 events): the screen holds the newest
``LOG_CAP`` rows of each kind as plain records, and its table is a window: it
shows the first ``WINDOW`` matching rows and takes the next ones in as the
cursor or the scroll nears its end (``end`` takes them all).  A row's cells
are built (cleaned, redacted) only when it enters the table.  The filter
searches a lowercased haystack per row, built at the first key; a key that
extends the filter searches only the rows the previous one matched.  A store
change re-reads only the new events and the changed tasks.

The message column takes the width the others leave.  ``enter`` shows a row's
whole message; from there (or with ``g`` on the row) the log jumps to the
task: it posts :class:`ErrorLogScreen.JumpToTask` to the app and dismisses
itself with the task's key.  ``q`` and ``esc`` go back.
"""

from __future__ import annotations

import calendar
import time as _time_mod
from typing import Any, Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from .. import errlog
from ..errlog import (PAGE, TASK_KINDS, TASK_MESSAGES, LogRow, event_row, merge,  # noqa: F401 (re-exported)
                      task_row, task_rows)
from ..model import Event, Task  # noqa: F401
from ..widgets.cells import clean, fit

LOG_CAP = 10_000  # newest rows of each kind held (the store keeps 10,000 events)
WINDOW = 200  # rows put in the table at a time
COLUMNS = ("time (UTC)", "provider", "task", "HTTP", "type", "message", "wait")
NARROW_COLUMNS = ("UTC", "prov.", "task", "HTTP", "type", "message", "wait")
MESSAGE = COLUMNS.index("message")
WIDE = 120  # from this many columns, the roomy layout
# widths of every column but the message, roomy and narrow
WIDE_WIDTHS = (14, 8, 24, 4, 14, 6)
NARROW_WIDTHS = (8, 7, 14, 4, 10, 4)
MIN_MESSAGE = 10
SCROLLBAR = 2  # the table's vertical scrollbar

_time = errlog.time_text


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
    """The visible columns of one row, as inert plain strings (whole, uncut), API keys hidden."""
    return errlog.row_cells(r, clean)


def event_cells(e: Event) -> tuple[str, ...]:
    """The visible columns of one event, as inert plain strings."""
    return row_cells(event_row(e))


def _stamp(ts: float) -> str:
    """``MM-DD HH:MM:SS`` as the time column shows it, fast (a haystack per row)."""
    try:
        t = _time_mod.gmtime(ts)
    except (ValueError, OverflowError, OSError):
        return "?"
    return f"{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def haystack(r: LogRow) -> str:
    """What the filter searches in a row: every column as stored, lowercased."""
    wait = f"{r.retry_after:g}s" if r.retry_after is not None else ""
    return "\x00".join((_stamp(r.time), r.provider, r.task_id or "",
                        str(r.status) if r.status is not None else "-", r.kind, r.message, wait)).lower()


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


class LogTable(DataTable):
    """The log's table: a DataTable that holds a window of the rows; ``end`` first
    takes in every row that matches (the screen's ``load_all``).  ``home``/``end``
    go to the first/last row (a row table has no columns to scroll to)."""

    BINDINGS = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    def action_scroll_bottom(self) -> None:
        screen = self.screen
        if isinstance(screen, ErrorLogScreen):
            screen.load_all()
        super().action_scroll_bottom()


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
        self.rows: list[LogRow] = []  # every row held, newest first
        self.matches: list[int] = []  # indexes into rows of the rows the filter keeps, in order
        self.shown: list[LogRow] = []  # the rows in the table, in order (a prefix of the matches)
        self.widths: tuple[int, ...] = ()
        self._events: list[LogRow] = []
        self._failures: dict[str, LogRow] = {}  # task key -> its row, for tasks that ended badly
        self._hay: list[str] | None = None  # haystack per row (built at the first filter key)
        self._needle = ""  # the filter the matches are for
        self.cells_built = 0  # rows whose cells were built (cleaned, cut) for the table
        self.complete = False  # every event the log holds has been read (see reload)

    def compose(self) -> ComposeResult:
        with Horizontal(id="errors-bar"):
            yield Label("Error log  /", id="errors-title")
            yield Input(placeholder="filter: provider, task, status, type, message", id="errors-filter")
            yield Label("", id="errors-count")
        yield LogTable(id="errors-table", cursor_type="row", zebra_stripes=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self._columns(self.app.size.width)
        self.reload()
        self.watch(table, "scroll_y", self._scrolled, init=False)
        table.focus()

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
            self._fill(force=True)

    # ------------------------------------------------------------ rows

    def reload(self, events: bool = True, tasks: bool = True) -> None:
        """Read the newest events and/or task failures from the store and redraw.

        Events come in two reads: the newest WINDOW now (the first frame), the rest
        of the newest LOG_CAP right after that frame (``complete`` then)."""
        if events:
            self._events = [event_row(e) for e in self.store.events(limit=WINDOW)]
            self.complete = len(self._events) < WINDOW
        if tasks:
            self._failures = {r.key: r for r in task_rows(errlog.failed_tasks(self.store), LOG_CAP) if r.key}
        self._merge()
        if not self.complete:
            self.call_after_refresh(self._read_all_events)

    def _read_all_events(self) -> None:
        if self.complete:
            return
        self._events = [event_row(e) for e in self.store.events(limit=LOG_CAP)]
        self.complete = True
        self._merge()

    def _merge(self) -> None:
        self.rows = merge(self._events, list(self._failures.values()))
        self._hay = None
        self._needle = None  # type: ignore[assignment]  # the matches are stale
        self._fill()

    def _haystacks(self) -> list[str]:
        if self._hay is None:
            self._hay = [haystack(r) for r in self.rows]
        return self._hay

    def _match(self, needle: str) -> None:
        """Narrow ``matches`` to ``needle``: from the previous matches when it extends
        the previous filter, else from every row."""
        if needle == self._needle:
            return
        if not needle:
            self.matches = list(range(len(self.rows)))
        else:
            hay = self._haystacks()
            old = self._needle
            pool = self.matches if old and old in needle else range(len(self.rows))  # a narrower filter
            self.matches = [i for i in pool if needle in hay[i]]
        self._needle = needle

    def _cells(self, row: LogRow) -> list[Text]:
        self.cells_built += 1
        shown = list(row_cells(row))
        if self.widths[0] < WIDE_WIDTHS[0]:
            shown[0] = _time(row.time, narrow=True)
        shown[2] = middle(shown[2], self.widths[2])
        for i in (1, 4):  # provider, type: cut with an ellipsis, not cropped
            shown[i] = fit(shown[i], self.widths[i]).rstrip()
        shown[MESSAGE] = fit(shown[MESSAGE], self.widths[MESSAGE]).rstrip()
        return [Text(c, no_wrap=True) for c in shown]

    def _fill(self, force: bool = False) -> None:
        """Put the first WINDOW matching rows in the table (the cursor stays on its line);
        when the table already shows exactly those rows (the rest of the events just
        read, older than the window), only the count changes: no repaint."""
        needle = self.query_one("#errors-filter", Input).value.strip().lower()
        self._match(needle)
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        size = max(WINDOW, cursor + 1, len(self.shown))
        if force or [self.rows[i] for i in self.matches[:size]] != self.shown:
            table.clear()
            self.shown = []
            self._more(max(WINDOW, cursor + 1))
            if self.shown and cursor:
                table.move_cursor(row=min(cursor, len(self.shown) - 1))
        events = len(self._events)
        tasks = len(self._failures)
        total = len(self.rows)
        what = f"{events:,}{'' if self.complete else '+'} errors · {tasks:,} task failures"
        self.query_one("#errors-count", Label).update(
            (f"{len(self.matches):,} of {total:,} ({what})" if needle else what) if total
            else "no errors logged")

    def _more(self, count: int = WINDOW) -> None:
        """Take the next ``count`` matching rows into the table."""
        start = len(self.shown)
        upto = min(len(self.matches), start + count)
        if upto <= start:
            return
        table = self.query_one(DataTable)
        rows = [self.rows[i] for i in self.matches[start:upto]]
        table.add_rows(self._cells(r) for r in rows)
        self.shown.extend(rows)

    def load_all(self) -> None:
        """Every matching row into the table (``end``)."""
        self._more(len(self.matches) - len(self.shown))

    def _near_end(self, line: int) -> None:
        if line >= len(self.shown) - WINDOW // 4 and len(self.shown) < len(self.matches):
            self._more()

    def _scrolled(self, old: float, new: float) -> None:
        table = self.query_one(DataTable)
        self._near_end(int(new) + table.size.height)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._near_end(event.cursor_row)

    @property
    def cursor_row_data(self) -> LogRow | None:
        table = self.query_one(DataTable)
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def on_store_changed(self, message) -> None:
        """The app's ``tui.messages.StoreChanged`` while this screen is on top: new log
        rows are read (only those), and each changed task's row is added, replaced or dropped."""
        keys, events = message.keys, message.events
        changed = False
        if events:
            fresh = [event_row(e) for e in self.store.events(limit=min(int(events), LOG_CAP))]
            self._events = (fresh + self._events)[:LOG_CAP]
            changed = True
        for key in keys:
            task = self.store.get(key)
            row = task_row(task) if task is not None else None
            if row is None:
                changed = self._failures.pop(key, None) is not None or changed
            elif self._failures.get(key) != row:
                self._failures[key] = row
                changed = True
        if changed:
            self._merge()

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
