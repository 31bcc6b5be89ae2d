"""The error log: its rows, read from the store, for the dashboard's error log
screen (tui/screens/errors.py) and ``tasktui errors`` alike.

Two kinds of rows, both read from the store (never from a provider):

* the event log (``store.events``): failed polls, refused keys, rate limits;
* task failures: every tracked task that ended ``failed``, ``cancelled`` or
  ``not_found``, with its error, as the types ``task failed``, ``task
  cancelled`` and ``task not found``.

Newest first; at the same moment an event comes before a task failure.  This
module never imports Textual (``tasktui errors`` runs in scripts).
"""

from __future__ import annotations

import heapq
import math
import re
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from .model import Event, Task, iso, task_key
from .text import clean as _clean

PAGE = 1000  # newest rows of each kind the screen reads (the command's default --limit too)
TASK_KINDS = {"failed": "task failed", "cancelled": "task cancelled", "not_found": "task not found"}
TASK_MESSAGES = {  # when the provider said nothing more
    "failed": "the task failed (the provider gave no reason)",
    "cancelled": "the task was cancelled",
    "not_found": "the provider does not know this task id (not found)",
}
FAILURES_QUERY = "state:bad"  # the filter that names the task failures (failed, cancelled, not_found)


class LogRow(NamedTuple):
    """One row of the log: an event, or a task that ended badly (a named tuple:
    ten thousand of them are made when the log opens)."""

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
    return LogRow(ended(t), t.provider, t.task_id, None, kind, t.error or TASK_MESSAGES[t.state],
                  source="task")


def ended(t: Task) -> float:
    return t.finished_at or t.updated_at or 0.0


def task_rows(tasks: Iterable[Task], limit: int | None = PAGE) -> list[LogRow]:
    """The newest ``limit`` task failures (all with None), newest first."""
    bad = (t for t in tasks if t.state in TASK_KINDS)
    if limit is None:
        return [task_row(t) for t in sorted(bad, key=ended, reverse=True)]  # type: ignore[misc]
    return [task_row(t) for t in heapq.nlargest(limit, bad, key=ended)]  # type: ignore[misc]


def _newest_first(r: LogRow) -> tuple[float, bool]:
    return (r.time, r.source == "event")


def merge(events: list[LogRow], tasks: list[LogRow]) -> list[LogRow]:
    """Both kinds, newest first; at the same moment an event comes first."""
    return sorted(events + tasks, key=_newest_first, reverse=True)


def failed_tasks(store: Any, provider: str | None = None) -> Iterator[Task]:
    """The tasks that ended badly, read from the store without copying it: the
    database picks them (``iter_tasks`` with the filter ``state:bad``, run by its
    SQL); a store without that streaming read scans its tasks in memory."""
    iter_tasks = getattr(store, "iter_tasks", None)
    query = FAILURES_QUERY + (f" provider:{provider}" if provider else "")
    source: Iterable[Task] = iter_tasks(query) if iter_tasks is not None else store.tasks()
    for t in source:
        if t.state in TASK_KINDS and (provider is None or t.provider == provider):
            yield t


def read_log(store: Any, *, provider: str | None = None, since: float | None = None,
             limit: int | None = PAGE, events: bool = True, tasks: bool = True) -> list[LogRow]:
    """The log's rows, newest first: the newest ``limit`` of each kind merged, then
    cut to ``limit`` (None: all the store keeps); only ``provider``'s, only those at
    or after the epoch time ``since``."""
    ev: list[LogRow] = []
    if events:
        ev = [event_row(e) for e in store.events(limit=limit if limit is not None else 1 << 62,
                                                  provider=provider)]
    tk: list[LogRow] = task_rows(failed_tasks(store, provider), limit) if tasks else []
    rows = merge(ev, tk)
    if since is not None:
        rows = [r for r in rows if r.time >= since]
    return rows if limit is None else rows[:limit]


def time_text(ts: float, narrow: bool = False) -> str:
    """``MM-DD HH:MM:SS`` (``HH:MM:SS`` narrow) in UTC; "?" for a time no date holds."""
    try:
        dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return "?"
    return dt.strftime("%H:%M:%S" if narrow else "%m-%d %H:%M:%S")


def row_cells(r: LogRow, clean: Callable[..., str] = _clean) -> tuple[str, ...]:
    """The visible columns of one row (time, provider, task, HTTP, type, message,
    wait), as inert plain strings (whole, uncut).  ``clean`` makes provider text
    inert (the screen's also hides API keys)."""
    wait = f"{r.retry_after:g}s" if r.retry_after is not None else ""
    return (
        time_text(r.time),
        clean(r.provider, 40),
        clean(r.task_id, 200) if r.task_id else "",
        str(r.status) if r.status is not None else "-",
        clean(r.kind, 40),
        clean(r.message, 500).replace("\n", " ").replace("\t", " "),
        wait,
    )


def haystack(cells: tuple[str, ...]) -> str:
    """What the screen's filter searches in a row: every column, lowercased,
    joined by a character no cell holds (a needle never spans two cells)."""
    return "\x00".join(cells).lower()


# ---------------------------------------------------------------- tasktui errors


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d``, ``1w`` -> seconds (ValueError otherwise)."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 2h, 1d")
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 2h, 1d")
    return seconds


def row_dict(r: LogRow, redact: Callable[[str], str]) -> dict[str, Any]:
    """One row of ``errors --json``; text from providers cleaned and redacted."""

    def text(value: str | None, limit: int) -> str | None:
        return None if value is None else redact(_clean(value, limit))

    return {
        "time": iso(r.time),
        "provider": text(r.provider, 40),
        "task_id": text(r.task_id, 400),
        "key": None if r.task_id is None else text(r.key, 450),
        "status": r.status,
        "kind": text(r.kind, 40),
        "message": text(r.message, 4000),
        "retry_after": r.retry_after if r.retry_after is None or math.isfinite(r.retry_after) else None,
        "source": r.source,
    }


def log_table(rows: Iterable[LogRow], redact: Callable[[str], str], out: Any) -> int:
    """The readable table, one line a row, written as it goes; the message is the
    last column and is not cut (a terminal wraps it).  Returns the rows written."""
    head = ("TIME (UTC)", "PROVIDER", "TASK", "HTTP", "TYPE", "WAIT", "MESSAGE")
    widths = (14, 8, 24, 4, 14, 5)
    from rich.cells import cell_len, set_cell_size

    def pad(text: str, width: int) -> str:
        if cell_len(text) > width:
            text = set_cell_size(text, width - 1) + "…"
        return text + " " * (width - cell_len(text))

    out.write("  ".join(pad(h, w) for h, w in zip(head, widths)) + "  " + head[-1] + "\n")
    n = 0
    for r in rows:
        c = [redact(x) for x in row_cells(r)]
        task = c[2] if cell_len(c[2]) <= 24 else c[2][:11] + "…" + c[2][-12:]  # ids differ at their ends
        cells = (c[0], c[1], task or "-", c[3], c[4], c[6] or "-")
        out.write("  ".join(pad(x, w) for x, w in zip(cells, widths)) + "  " + c[5] + "\n")
        n += 1
    return n


def cmd_errors(args: Any) -> int:
    """``tasktui errors``: exit 0 with the log printed, 2 on trouble (one line on stderr)."""
    from . import headless

    return headless.command(_errors_impl)(args)


def _secrets(args: Any) -> Callable[[str], str]:
    """Masks every API key of the config (if there is a readable one) in a text."""
    from . import headless
    from .redact import redact

    config = headless._config_if_any(args)
    keys = []
    for cfg in (getattr(config, "providers", None) or {}).values():
        key = getattr(cfg, "api_key", None)
        getter = getattr(key, "get_secret_value", None)
        value = getter() if getter else key
        if value:
            keys.append(str(value))

    def mask(text: str) -> str:
        for key in keys:
            text = redact(text, key)
        return text

    return mask


def _errors_impl(args: Any) -> int:
    from . import headless

    limit = args.limit
    if limit is not None and limit < 0:
        raise headless.Fail("--limit must be 0 (no limit) or more")
    since = None
    if args.since is not None:
        try:
            since = time.time() - parse_duration(args.since)
        except ValueError as exc:
            raise headless.Fail(f"--since: {exc}") from None
    if args.provider:
        headless._check_provider(args.provider, args)
    mask = _secrets(args)
    store = headless.open_store(args, readonly=True)
    try:
        rows = read_log(store, provider=args.provider or None, since=since, limit=limit or None)
    finally:
        store.close()
    if args.json:
        headless.write_json_array((row_dict(r, mask) for r in rows), sys.stdout)
    elif rows:
        log_table(rows, mask, sys.stdout)
    if not rows and not args.json:
        headless._say("no errors logged" + (" in that time" if since is not None else "")
                      + (f" for {args.provider}" if args.provider else ""))
    return headless.EXIT_OK


ERRORS_HELP = "the error log: failed polls, refused keys, rate limits and task failures, newest first"
ERRORS_EPILOG = ("exit codes:\n"
                 "  0  the log was printed (an empty log too: nothing on stdout, a note on stderr;\n"
                 "     with --json an empty array)\n"
                 "  2  trouble: a bad option (--since, --limit, --provider), or the database\n"
                 "     cannot be read")


def add_parser(sub: Any, parents: list) -> None:
    """``tasktui errors`` (called by tui.cli; argparse only, nothing heavy)."""
    import argparse

    p = sub.add_parser("errors", parents=parents, help=ERRORS_HELP,
                       description="The error log: failed polls, refused keys, rate limits and task\n"
                                   "failures, newest first: the rows of the dashboard's error log (e).\n"
                                   "Provider text is shown inert, API keys masked.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=ERRORS_EPILOG)
    p.add_argument("--json", action="store_true",
                   help="print a JSON array, one object per row (time, provider, task_id, key, "
                        "status, kind, message, retry_after, source)")
    p.add_argument("--provider", metavar="P", default=None, help="only rows of provider P")
    p.add_argument("--since", metavar="DURATION", default=None,
                   help="only rows of the last DURATION, e.g. 90s, 15m, 2h, 1d")
    p.add_argument("--limit", metavar="N", type=int, default=PAGE,
                   help=f"at most N rows, the newest (default {PAGE}; 0: every row the database keeps)")


__all__ = ["LogRow", "PAGE", "TASK_KINDS", "TASK_MESSAGES", "cmd_errors", "event_row", "failed_tasks",
           "haystack", "merge", "read_log", "row_cells", "task_row", "task_rows", "time_text"]
