"""The task list: a Line-API ScrollView over an index of task rows.

The widget keeps ``_order`` (a row per tracked task, in the current sort) and
``_index`` (the rows that match the filter, in the same order); ``order`` and
``index`` are the same as lists of keys, and ``tasks`` is a key -> Task mirror
of the store refreshed from its change feed.  Cost per frame is O(visible
rows); a rendered row is cached by (key, rev, width) so a refresh redraws only
what changed.

Sorting is "lazy" (btop): when tasks change they keep their place; new tasks
are inserted at their sorted position; the whole list is re-sorted only when
the user asks (``s``).

Filtering 100,000 tasks per keystroke: terms on category fields (provider,
state, model, kind, label) are answered once per distinct combination of those
fields, then looked up per row; bare words are tested against a lowercased
"haystack" per row (C-speed substring tests); other terms (id, error) use the
filter module's predicate, on what was left.  Rows are small slotted objects
made in list order, so a pass over them walks memory in order.  Haystacks and
categories are built in slices after the first frame (``warm_hay``).  When the
query only grew (``tui.filter.refines``) only the current matches are tested.

All of that is for a store that holds every task in memory (scope "all").  Over a
store that holds only the live ones (scope "live", as the dashboard opens it, or
"none") the list is a window (``_Window``): the order is the row ids of the listed
tasks (8 bytes a task) read off an index of the sort (``Store.window_ids``), the
first frame, each new filter and each sort read only the head (``Store.window_head``:
a trigram index, or the sort's index walked for a few ms; when neither answers soon,
what that walk found, maybe nothing, "n+ of N") and draw it; the whole order (and so
the exact count) then comes from a thread on a connection of its own
(``Store.order_job``), or sooner when a row past
the head or a change needs it (read then, in place); tasks are read
around the rows drawn into a ``textual.cache.LRUCache``; the filter runs in SQL
(``tui.filter.compile_sql``, the same language and results as the predicate); a
change costs reads of the changed rows (in batches), a binary search (log n reads)
per new row and a scan of the 8-byte order (in C) per removed one, not a re-sort.
Lazy sorting is the same: a row that still matches keeps its place.  A reversed
sort is the exact mirror (ties included).
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import threading
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .. import filter as tfilter
from ..headless import health_mark
from ..model import TERMINAL, Task
from .cells import clean

EXPIRY_MARK = "⧗"  # result links in the last quarter of their lifetime (one cell wide)
from .cells import ages_header, ages_tail, bar, extra_width, fit, fit_middle, percent, state_label

# state -> rank for the "state" sort: what needs attention first.
_STATE_RANK = {"failed": 0, "running": 1, "queued": 2, "unknown": 3, "not_found": 4,
               "cancelled": 5, "succeeded": 6}


def _updated(t: Task) -> float:
    return t.updated_at or t.created_at or 0.0


def _progress(t: Task) -> float:
    """The progress the row shows: a succeeded task without one is 100 %; unknown -1."""
    if t.progress is not None:
        return t.progress
    return 100.0 if t.state == "succeeded" else -1.0


# One cheap key per sort (ascending); ties keep insertion order (the sort is stable).
SORTS: dict[str, Callable[[Task], object]] = {
    "updated": lambda t: -(t.updated_at or t.created_at or 0.0),
    "created": lambda t: -(t.created_at or 0.0),
    "state": lambda t: (_STATE_RANK.get(t.state, 9), -_updated(t)),
    "provider": lambda t: (t.provider, t.task_id),
    "progress": lambda t: (-_progress(t), -_updated(t)),
}
SORT_NAMES = tuple(SORTS)
# the list column each sort reads (a click on that column's title sorts by it)
SORT_COLUMNS = {"provider": "PROVIDER", "state": "STATE", "progress": "PROGRESS", "created": "AGE",
                "updated": "UPDATED"}


class _LiveStates(dict):
    """The list's states of the live tasks (for the news of those that finish) while the
    store's live tasks are read after the first frame (issue 15): a task that changes before
    it is seeded is looked up as it was at open (``Store.state_at_open``), once."""

    def __init__(self, store: Any, known: dict) -> None:
        super().__init__(known)
        self.store = store
        self.asked: set[str] = set()

    def pop(self, key: str, default: Any = None) -> Any:
        if key not in self and key not in self.asked:
            try:  # None at once for a key the store learned after its live tasks came
                state = self.store.state_at_open(key)
            except Exception:  # the database cannot be read now: no news of this one
                state = None
            if state is not None:
                self.asked.add(key)  # once: what it was at open is no news the next time
                if state not in TERMINAL:
                    return state
        return super().pop(key, default)

    def seed(self, tasks: Any) -> None:
        """The live tasks are in memory: those not seen changing since the open."""
        for task in tasks:
            if task.key not in self.asked:
                self.setdefault(task.key, task.state)


class _Rev:
    """A sort key that orders the other way round (for inserting into a reversed list)."""

    __slots__ = ("v",)

    def __init__(self, v: object) -> None:
        self.v = v

    def __lt__(self, other: "_Rev") -> bool:
        return other.v < self.v  # type: ignore[operator]

BULK = 2000  # more tasks added or removed at once than this: re-sort instead of inserting
Predicate = Callable[[Task], bool]
Words = list[tuple[str, bool]]  # (lowercase needle, negate)


def category(t: Task) -> tuple:
    """What a category term (tui.filter.CATEGORY_FIELDS) reads of a task."""
    return (t.provider, t.state, t.provider_status, t.model, t.kind, t.label)


def _stand_in(cat: tuple) -> Task:
    """A task with only the fields of ``cat``: the predicate's answer for it is
    the answer for every task of that category."""
    provider, state, status, model, kind, label = cat
    return Task(provider=provider, task_id="", state=state, provider_status=status, model=model,
                kind=kind, label=label)


def haystack(t: Task) -> str:
    """What a bare word is searched in (see tui.filter): id, label, model,
    provider, kind, state and the provider's status, lowercased."""
    return "\n".join((t.provider, t.task_id, t.label or "", t.model or "", t.kind or "",
                      t.state, t.provider_status or "")).lower()


@dataclass(frozen=True, slots=True)
class Columns:
    """Cell widths of one layout (depends only on the list's width)."""

    provider: int
    name: int
    model: int
    state: int
    bar: int
    age: int
    updated: int
    label: int = 0  # 0: no label column (narrow: the label is in the summary)

    @classmethod
    def for_width(cls, width: int) -> "Columns":
        provider, state, age, updated = 8, 12, 4, 8
        barw = 10 if width >= 90 else 6 if width >= 60 else 0
        progress = barw + 5 if barw else 0
        fixed = provider + state + progress + age + updated
        gaps = 7  # one space between columns, two before "updated"
        rest = max(6, width - fixed - gaps - 1)
        label = 0
        if rest >= 48:  # room for the id, a label column and a model column
            label = min(20, rest // 4)
            rest -= label + 1
        if rest >= 36:
            model = min(28, rest * 2 // 5)
            name = rest - model - 1
        else:
            model, name = 0, rest
        return cls(provider, name, model, state, barw, age, updated, label)


class _Row:
    """One task in the list: its key, the task, and what the fast filters read
    (filled by ``TaskList._warm``).  Compared by identity."""

    __slots__ = ("key", "task", "hay", "cat")

    def __init__(self, key: str, task: Task) -> None:
        self.key = key
        self.task = task
        self.hay: str | None = None
        self.cat: tuple | None = None


class _Tasks(Mapping):
    """A read-only key -> Task view of the list's rows."""

    def __init__(self, rows: dict[str, _Row]) -> None:
        self._rows = rows

    def __getitem__(self, key: str) -> Task:
        return self._rows[key].task

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class _Answers(dict):
    """category -> does ``pred`` pass it (computed on first lookup)."""

    def __init__(self, pred: Predicate) -> None:
        super().__init__()
        self.pred = pred

    def __missing__(self, cat: tuple) -> bool:
        answer = self[cat] = bool(self.pred(_stand_in(cat)))
        return answer


WINDOW_ROWS = 4096  # tasks kept around the viewport (a window store's list)
FETCH_BEFORE, FETCH_AFTER = 64, 192  # rows read around a row not cached yet
HEAD_ROWS = 200  # the first frame: rows read before the rest of the order
WINDOW_BULK = 64  # more changed keys than this: one pass over the order instead of a scan per key
WINDOW_RESORT = 200  # more tasks to insert than this: re-read the order (a re-sort)
NARROW_MAX = 100_000  # a filter with at most this many matches reads them all: the next key narrows them
NARROW_CHUNK = 2000  # ids tested per query when a narrowing filter reads its head
NARROW_BUDGET = 0.03  # seconds a narrowing filter tests ids for its head before a thread does the rest


class _Window:
    """The rows of a TaskList whose store does not hold every task (scope "live"/"none").

    ``ids``: the row ids of the listed tasks, in list order (one index scan of the sort,
    8 bytes a task); the tasks themselves are read around the rows drawn and kept in an
    LRU cache.  Until ``finish`` the order holds only the head (the first frame needs no
    more): ``total`` is then the exact count.  A sequence of ``_Row`` like the list's own
    index: ``len``, ``[n]``, ``[a:b]``."""

    def __init__(self, store) -> None:
        self.store = store
        self.ids: array = array("q")
        self.complete = True
        self.total = 0
        self.rows: LRUCache[int, _Row] = LRUCache(WINDOW_ROWS)
        self.where = None
        self.sort = "updated"
        self.reverse = False
        self.job = None  # the thread reading the whole order (Store.order_job), if any
        self.gen = 0  # bumped when the order changes: a job's late answer for an older one is dropped

    @property
    def heads_first(self) -> bool:
        """Does the store answer a head at once and the rest from a thread (SQLite and PostgreSQL)?"""
        return bool(getattr(self.store, "heads_first", False))

    def stop_job(self) -> None:
        self.gen += 1
        if self.job is not None:
            self.job.cancel()
            self.job = None

    def load(self, where, sort: str, reverse: bool, head: int | None) -> None:
        self.stop_job()
        self.where, self.sort, self.reverse = where, sort, reverse
        self.among = None
        self.rows.clear()
        if head is not None and self.heads_first:
            ids, complete = self.store.window_head(where, sort, reverse, head)
            self.ids = array("q", ids)
            self.complete = complete
            # until the whole order is read: the count is exact without a filter, else the head's
            self.total = len(self.ids) if complete or where is not None else len(self.store)
            return
        if head is not None:
            # the count first (one scan, nothing fetched): a filter that keeps many rows
            # finds its first ones soonest by walking the sort's index, a narrow one by a scan
            total = self.store.count_where(where)
            walk = where is None or total * 20 >= len(self.store)
            if where is not None and total <= NARROW_MAX:
                head, walk = None, False  # few: read them all (a scan), the next key only narrows them
            self.ids = array("q", self.store.window_ids(where, sort, reverse, limit=head, walk=walk))
            self.complete = len(self.ids) >= total
            self.total = total
            if not self.complete:
                return
        else:
            self.ids = array("q", self.store.window_ids(where, sort, reverse))
            self.complete = True
        self.total = len(self.ids)

    def narrow(self, where, head: int | None = None) -> None:
        """The filter ``where`` matches a subset of the listed rows: keep those that pass it,
        in their places (as the list narrows in memory), reading only them.  With ``head``
        (a store that reads heads first) the listed ids are tested in order, a chunk at a
        time, until ``head`` pass or NARROW_BUDGET is spent: those are the head, the rest
        is tested by a thread (``among``)."""
        self.stop_job()
        self.where = where
        self.rows.clear()
        if head is not None and self.heads_first:
            old = self.ids
            found: list[int] = []
            deadline = time.perf_counter() + NARROW_BUDGET
            at = 0
            while at < len(old) and len(found) < head and (at == 0 or time.perf_counter() < deadline):
                chunk = old[at:at + NARROW_CHUNK].tolist()
                keep = self.store.matching_ids(where, chunk)
                found += [i for i in chunk if i in keep]
                at += len(chunk)
            self.complete = at >= len(old)
            self.among = None if self.complete else old.tolist()
            self.ids = array("q", found)
            self.total = len(self.ids)
            return
        keep = self.store.matching_ids(where, self.ids.tolist())
        self.ids = array("q", [i for i in self.ids if i in keep])
        self.total = len(self.ids)
        self.rows.clear()

    def finish(self) -> bool:
        """Read the whole order (when only the head was read); True when it did."""
        if self.complete:
            return False
        self.stop_job()
        if self.among is not None:  # a narrowing: test the ids it listed before
            keep = self.store.matching_ids(self.where, self.among)
            self.ids = array("q", [i for i in self.among if i in keep])
        else:
            self.ids = array("q", self.store.window_ids(self.where, self.sort, self.reverse))
        self.among = None
        self.complete = True
        self.total = len(self.ids)
        return True

    def start_job(self):
        """The job that reads the whole order, when only the head is read (None: nothing to do)."""
        if self.complete or not self.heads_first:
            return None
        self.job = self.store.order_job(self.where, self.sort, self.reverse, among=self.among)
        return self.job

    def arrived(self, gen: int, ids: list[int]) -> bool:
        """The whole order a job read (True: taken; False: the order changed since)."""
        if gen != self.gen or self.complete:
            return False
        self.job = None
        self.ids = ids if isinstance(ids, array) else array("q", ids)
        self.among = None
        self.complete = True
        self.total = len(self.ids)
        return True

    def __len__(self) -> int:
        return len(self.ids) if self.complete else self.total

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self):
        for n in range(len(self)):
            yield self[n]

    def __getitem__(self, n):
        if isinstance(n, slice):
            return [self[i] for i in range(*n.indices(len(self)))]
        if n < 0:
            n += len(self)
        if n >= len(self.ids):
            self.finish()
        rid = self.ids[n]
        row = self.rows.get(rid)
        if row is None:
            lo, hi = max(0, n - FETCH_BEFORE), min(len(self.ids), n + FETCH_AFTER)
            want = [i for i in self.ids[lo:hi] if i not in self.rows]
            for i, task in self.store.tasks_by_id(want).items():
                self.rows.set(i, _Row(task.key, task))
            row = self.rows.get(rid)
            if row is None:  # gone from the store, not yet from the order: the next change takes it out
                row = _Row("", Task("", "(removed)"))
        return row

    def keys(self) -> list[str]:
        """Every listed key, in list order (read in batches)."""
        self.finish()
        out: list[str] = []
        ids = self.ids
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000].tolist()
            found = self.store.keys_by_id(chunk)
            out += [found[i] for i in chunk if i in found]
        return out

    def find(self, rid: int, hint: int | None = None, *, whole: bool = True) -> int | None:
        """Where row id ``rid`` is in the order (None: not listed; with ``whole=False``,
        None also when only the head is read and it is not in the head)."""
        ids = self.ids
        if hint is not None and 0 <= hint < len(ids) and ids[hint] == rid:
            return hint
        try:
            return ids.index(rid)
        except ValueError:
            if whole and self.finish():
                return self.find(rid)
            return None

    def position(self, key: str | None, hint: int | None = None, *, whole: bool = True) -> int | None:
        if not key:
            return None
        found = self.store.ids_for([key]).get(key)
        return None if found is None else self.find(found, hint, whole=whole)

    def sort_key(self, values: tuple) -> tuple:
        """SQL sort values -> a Python key ordering as ``order_sql`` does (reversed: mirrored)."""
        from ..store import SORT_SQL

        key = tuple(-v if desc and isinstance(v, (int, float)) else v
                    for v, (_, desc) in zip(values, SORT_SQL[self.sort]))
        return (*key, values[-1])

    def insert(self, rids: list[int]) -> None:
        """Put rows at their sorted place (the order may have drifted: a binary search anyway)."""
        store, sort = self.store, self.sort
        known: dict[int, tuple] = {}

        def key_of(rid: int) -> tuple:
            if rid not in known:
                known.update(store.sort_values(sort, [rid]))
            values = known.get(rid)
            return self.sort_key(values) if values is not None else ()

        known.update(store.sort_values(sort, rids))
        for rid in rids:
            if rid not in known:
                continue
            mine = key_of(rid)
            lo, hi = 0, len(self.ids)
            while lo < hi:
                mid = (lo + hi) // 2
                other = key_of(self.ids[mid])
                before = (other > mine) if self.reverse else (other < mine)
                if before:
                    lo = mid + 1
                else:
                    hi = mid
            self.ids.insert(lo, rid)
        self.total = len(self.ids)


class TaskList(ScrollView, can_focus=True):
    """All tracked tasks that match the filter, one row each."""

    COMPONENT_CLASSES = {
        "task-list--header",
        "task-list--cursor",
        "task-list--dim",
        "task-list--track",
        "task-list--state-queued",
        "task-list--state-running",
        "task-list--state-succeeded",
        "task-list--state-failed",
        "task-list--state-cancelled",
        "task-list--state-not_found",
        "task-list--state-unknown",
        "task-list--health",
        "task-list--mark",
    }

    BINDINGS = [
        Binding("down,j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("up,k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="list.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="list.page_up"),
        Binding("home,g", "first", "First", show=False, id="list.first"),
        Binding("end,G", "last", "Last", show=False, id="list.last"),
    ]

    sort_mode: reactive[str] = reactive("updated", init=False)
    sort_reverse: reactive[bool] = reactive(False, init=False)

    class CursorMoved(Message):
        """The cursor is now on ``key`` (None: the list is empty)."""

        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    class Opened(Message):
        """The user asked for the detail of ``key`` (double click)."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class OrderArrived(Message):
        """The list's own: the thread read the whole order (``ids``, None when it could not)
        of the window generation ``gen``."""

        def __init__(self, gen: int, ids) -> None:
            super().__init__()
            self.gen, self.ids = gen, ids

    class OrderRead(Message):
        """The whole order is read (the thread after a head-first first frame or filter):
        ``count`` is exact now, "200+ of N" becomes "n of N"."""

    def __init__(self, store, clock: Callable[[], float], *, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.clock = clock
        self._rows: dict[str, _Row] = {}  # key -> its row
        self._order: list[_Row] = []  # every row, in sort order (lazily kept)
        self._index: list[_Row] = []  # the rows that match the filter, same order
        self._index_keys: list[str] | None = []  # self.index, built when asked for
        self._index_set: set[str] | None = set()  # built when first needed
        self._cats: dict[tuple, tuple] = {}  # interned categories (a few hundred for 100,000 tasks)
        self._warm_at: int | None = 0  # next row of _order to warm; None: all warm
        self.predicate: Predicate | None = None
        self.category: Predicate | None = None
        self.words: Words = []
        self.cursor_key: str | None = None
        self._cursor_row = 0
        # key -> (rev, width, body segments, body with the base style applied, body's cells)
        # key -> (rev, width, bare segments, styled segments, cells, row signs)
        self._cache: LRUCache[str, tuple] = LRUCache(4096)
        self.downloads: dict[str, float] = {}  # key -> percent of a download under way (the app sets it)
        self._styles_memo: dict[str, Style] = {}  # component styles, until the next style update
        self._columns: Columns | None = None
        self._drawn_ages: dict[str, tuple] = {}  # key -> the age text and row signs last drawn
        self._columns_width = -1
        self._extra = 0  # cells of the optional columns at the end (tui.widgets.cells.extra_width)
        self.marks: set[str] = set()  # marked keys (bulk actions act on them)
        # A store that does not hold every task (scope "live"/"none") is listed by window:
        # the order from an index of the sort, the rows read around the viewport.
        self._window: _Window | None = None
        if getattr(store, "scope", "all") != "all":
            self._window = _Window(store)
        self.filter_query = ""  # the filter, as typed (a window store filters in SQL)
        self._query_pred: Predicate | None = None
        self._live_states: dict[str, str] = {}  # key -> state of the live tasks (finish toasts)
        self._shown_once = False
        self._cursor_wanted: str | None = None  # the cursor's task, not in the head read so far
        self._cursor_placeholder: str | None = None  # where the cursor waits for it meanwhile
        self._deferred: set[str] = set()  # changed keys to place once the whole order is read
        self._settled = asyncio.Event()  # set while the window's whole order is read
        self._settled.set()

    # ------------------------------------------------------------ marks

    @property
    def marked(self) -> list[str]:
        """The marked keys, in list order (marks hidden by the filter included)."""
        if self._window is not None:
            if not self.marks:
                return []
            listed = self._window.keys() if len(self.marks) > 64 else sorted(
                (k for k in self.marks if self._window.position(k) is not None),
                key=lambda k: self._window.position(k))
            order = [k for k in listed if k in self.marks]
            hidden = sorted(self.marks - set(order))
            return order + [k for k in hidden if self.store.get(k) is not None]
        return [r.key for r in self._order if r.key in self.marks]

    def _redraw_mark(self, key: str) -> None:
        self._cache.discard(key)
        row = self._row_of(key)
        if row is not None:
            self._refresh_row(row)

    def toggle_mark(self, key: str | None = None) -> bool | None:
        """Mark or unmark ``key`` (default: the cursor's task); True when now marked."""
        key = key if key is not None else self.cursor_key
        if key is None:
            return None
        if key not in self._rows if self._window is None else self.store.get(key) is None:
            return None
        if key in self.marks:
            self.marks.discard(key)
        else:
            self.marks.add(key)
        self._redraw_mark(key)
        return key in self.marks

    def mark_shown(self) -> int:
        """Mark every task the list shows; returns how many are marked now."""
        if self._window is not None:
            self.marks.update(self._window.keys())
        else:
            self.marks.update(r.key for r in self._index)
        self._cache.clear()
        self.refresh()
        return len(self.marks)

    def clear_marks(self) -> int:
        """Unmark everything; returns how many were marked."""
        n = len(self.marks)
        self.marks.clear()
        self._cache.clear()
        self.refresh()
        return n

    # ------------------------------------------------------------ index

    @property
    def index(self) -> list[str]:
        """The keys that match the filter, in list order."""
        if self._window is not None:
            return self._window.keys()
        if self._index_keys is None:
            self._index_keys = [r.key for r in self._index]
        return self._index_keys

    @property
    def order(self) -> list[str]:
        """Every key, in list order."""
        if self._window is not None:
            return self.index
        return [r.key for r in self._order]

    @property
    def tasks(self) -> "Mapping[str, Task]":
        """key -> Task, as of the last change the list applied (a window store: the listed ones)."""
        if self._window is not None:
            w = self._window
            w.finish()
            held = {i: row.task for i in w.ids if (row := w.rows.get(i)) is not None}  # as drawn
            found = self.store.tasks_by_id([i for i in w.ids if i not in held])
            found.update(held)
            return {t.key: t for t in (found[i] for i in w.ids if i in found)}
        return _Tasks(self._rows)

    @property
    def count(self) -> int:
        """How many tasks the list shows (a window with only its head read and a filter:
        the rows read so far, see ``count_is_exact``)."""
        return len(self._index)

    @property
    def count_is_exact(self) -> bool:
        """False while only the head of a filtered window is read (``count`` is then a lower
        bound: a "200+ of N" for the filter bar); True once the thread read the rest."""
        w = self._window
        return w is None or w.complete or w.where is None

    def _sort_key(self) -> Callable[[_Row], object]:
        func = SORTS[self.sort_mode]
        if self.sort_reverse:
            return lambda r: _Rev(func(r.task))
        return lambda r: func(r.task)

    def rebuild(self) -> None:
        """Re-read every task, sort, and re-apply the filter (the user asked for it)."""
        if self._window is not None:
            self._rebuild_window()
            return
        func = SORTS[self.sort_mode]
        items = self.store.items()
        items.sort(key=lambda kv: func(kv[1]), reverse=self.sort_reverse)
        # Fresh rows made in list order: a filter pass walks them in this order,
        # and memory laid out the same way makes it several times faster at
        # 100,000 tasks than objects scattered in load order.
        rows = [_Row(k, t) for k, t in items]
        self._order = rows
        self._rows = {r.key: r for r in rows}
        if self.marks:
            self.marks &= self._rows.keys()
        self._warm_at = 0
        self._refilter()

    @property
    def filtered(self) -> bool:
        """Is a filter narrowing the list?"""
        if self._window is not None:
            return self._query_pred is not None
        return bool(self.words) or self.predicate is not None or self.category is not None

    # ------------------------------------------------------------ window (a store that holds only some tasks)

    def _rebuild_window(self, head_only: bool = False) -> None:
        """The order from the store.  The first frame and a new filter read the head (one
        query with a LIMIT, and the count): the rest of the order is read when something
        needs it (a row past the head, a change, a mark of all); a sort reads it all."""
        w = self._window
        assert w is not None
        where = self.store.where(self.filter_query) if self._query_pred is not None else None
        first = not self._shown_once
        self._shown_once = True
        self._deferred.clear()  # the order read now holds them
        head = max(HEAD_ROWS, self.size.height * 2) if first or head_only or w.heads_first else None
        w.load(where, self.sort_mode, self.sort_reverse, head)
        if first:
            self._live_states = {t.key: t.state for t in self.store.tasks() if not t.terminal}
        if self.marks and not first:
            self.marks = {k for k in self.marks if self.store.get(k) is not None}
        self._index = w  # type: ignore[assignment]
        self._index_keys = None
        self._index_set = None
        self._index_changed()
        if first and not w.complete:  # the first frame first: the thread would compete with it
            self._settled.clear()
            self.call_after_refresh(self._read_rest)
        else:
            self._read_rest()

    def _read_rest(self) -> None:
        """Only the head is read: read the rest of the order in a thread; when it comes, the
        list (its count, its scrollbar, its cursor) takes it in and the app is told."""
        w = self._window
        if w is None or w.complete:
            self._settled.set()
            return
        if w.job is not None:  # under way already
            return
        job = w.start_job()
        if job is None:
            self._settled.set()
            return
        self._settled.clear()
        gen = w.gen
        if not self.is_attached:  # not mounted: read it here
            self._whole_order()
            return

        def work() -> None:
            ids = job.run()
            try:  # thread-safe, and never waits: a list already gone drops it
                self.post_message(self.OrderArrived(gen, ids))
            except Exception:  # the app's loop is closed: nobody to tell
                pass

        threading.Thread(target=work, name="task-list-order", daemon=True).start()

    def on_task_list_order_arrived(self, message: "TaskList.OrderArrived") -> None:
        message.stop()
        self._rest_arrived(message.gen, message.ids)

    def _rest_arrived(self, gen: int, ids) -> None:
        w = self._window
        if w is None:
            return
        if gen == w.gen and ids is not None and w.arrived(gen, ids):
            self._whole_order_read()
        elif gen == w.gen and not w.complete:
            self._whole_order()  # the thread could not read it: read it here
        elif w.complete and w.job is None and not self._settled.is_set():
            self._whole_order_read()  # read in place meanwhile (a row past the head was asked for)

    def _whole_order(self) -> None:
        w = self._window
        if w is not None and w.finish():
            self._whole_order_read()
        self._settled.set()

    def _whole_order_read(self) -> None:
        if self._deferred:  # changes that came while the thread read: in their places now
            keys, self._deferred = list(self._deferred), set()
            self._apply_window(keys)  # (their state moves were told when they came)
        self._index_changed()
        self._settled.set()
        if self.is_attached:
            self.post_message(self.OrderRead())  # "n of N" and the header: exact now

    def live_tasks_later(self) -> None:
        """The store reads its live tasks after the first frame (scope "live"): until they are
        in, a task that changes is looked up as it was at open, for its finish news."""
        if not isinstance(self._live_states, _LiveStates):
            self._live_states = _LiveStates(self.store, self._live_states)

    def live_tasks_in(self) -> None:
        """The store's live tasks are in memory now: the list learns their states (those
        that changed meanwhile it learned from the change feed)."""
        if isinstance(self._live_states, _LiveStates):
            self._live_states.seed(self.store.tasks())

    async def settled(self) -> None:
        """Wait until the list's whole order is read (at once unless only a head is)."""
        await self._settled.wait()

    def _apply_window(self, keys: list[str]) -> list[tuple[str, str | None, str | None]]:
        """Changed keys into the window's order: a row that still matches keeps its place
        (its task is read again), one that no longer does leaves, a new match is put at its
        sorted place.  O(changed rows) reads; a removal scans the order (8 bytes a row, in C)."""
        w = self._window
        assert w is not None
        # the thread is reading the whole order: the rows are read again now (their cache is
        # dropped), their places are settled when the order comes (no read of it here)
        defer = not w.complete and w.job is not None
        if defer:
            self._deferred.update(keys)
        elif w.finish():
            self._settled.set()
        store = self.store
        pred = self._query_pred
        moves: list[tuple[str, str | None, str | None]] = []
        rows = store.row_ids(keys)  # in batches, as the tasks below: no read per key
        fresh = store.tasks_by_id([rid for rid, tracked in rows.values() if tracked])
        drop: set[int] = set()
        put: list[int] = []
        for k in keys:
            self._forget_rows(k)
            found = rows.get(k)
            task = fresh.get(found[0]) if found is not None and found[1] else None
            old = self._live_states.pop(k, None)
            if task is not None and not task.terminal:
                self._live_states[k] = task.state
            if old is not None or task is not None:
                moves.append((k, old, task.state if task else None))
            if found is None:
                self.marks.discard(k)
                continue
            rid, tracked = found
            w.rows.discard(rid)
            if task is None or not tracked:
                self.marks.discard(k)
                drop.add(rid)
            elif pred is None or pred(task):
                put.append(rid)  # placed below unless already listed
            else:
                drop.add(rid)
        if defer:
            self.refresh()
            return moves
        if len(put) > WINDOW_RESORT:
            self._rebuild_window()
            return moves
        listed: set[int] = set()
        if len(keys) > WINDOW_BULK:
            ids_set = set(w.ids) if put else set()
            listed = {rid for rid in put if rid in ids_set}
            if drop:
                w.ids = array("q", [i for i in w.ids if i not in drop])
        else:
            for rid in drop:
                at = w.find(rid)
                if at is not None:
                    del w.ids[at]
            listed = {rid for rid in put if w.find(rid) is not None}
        new = [rid for rid in put if rid not in listed]
        if new:
            w.insert(new)
        w.total = len(w.ids)
        if drop or new:
            self._index_changed()
        else:
            self.refresh()
        return moves

    def _matches(self, row: _Row) -> bool:
        """Does a (warm) row pass the current filter?"""
        hay = row.hay
        for needle, negate in self.words:
            if (needle in hay) == negate:
                return False
        if self.category is not None and not self.category(row.task):
            return False
        return self.predicate is None or self.predicate(row.task)

    def set_filter(self, predicate: Predicate | None, *, words: Words | None = None,
                   category: Predicate | None = None, narrow: bool = False, query: str | None = None) -> int:
        """Show only tasks that contain every (lowercase) word of ``words``,
        pass ``category`` (a predicate reading only the fields of ``category()``,
        answered once per distinct combination) and pass ``predicate``; return
        the count.  ``narrow=True`` promises the new filter matches a subset of
        the old one, so only listed rows are tested."""
        self.predicate = predicate
        self.category = category
        self.words = list(words or [])
        if self._window is not None:
            if query is None:
                raise ValueError("a list over a window store filters by query (set_filter(query=...))")
            old_query = self.filter_query
            self.filter_query = query
            terms = tfilter.parse(query)
            self._query_pred = tfilter.compile_filter(query) if any(t.value for t in terms) else None
            w = self._window
            if terms == tfilter.parse(old_query) and (w.complete or w.job is not None):
                return len(self._index)  # the same terms (a space typed): the same rows
            if narrow and self._query_pred is not None and w.complete and len(w.ids) <= NARROW_MAX:
                w.narrow(self.store.where(query), max(HEAD_ROWS, self.size.height * 2))
                self._index_changed()
                self._read_rest()
            else:
                self._rebuild_window(head_only=True)
            return len(self._index)
        self._refilter(self._index if narrow else None)
        return len(self._index)

    def _warm(self, row: _Row) -> None:
        """Fill a row's haystack and category (what the fast filters read)."""
        t = row.task
        row.hay = haystack(t)
        cat = category(t)
        row.cat = self._cats.setdefault(cat, cat)

    def warm_hay(self, budget: int = 5000) -> bool:
        """Warm up to ``budget`` rows (called from a timer after the first frame,
        so opening 100,000 tasks does not wait for them); True when all are warm."""
        start = self._warm_at
        if start is None:
            return True
        rows = self._order
        end = min(len(rows), start + budget)
        warm = self._warm
        for row in rows[start:end]:
            if row.hay is None:
                warm(row)
        self._warm_at = None if end >= len(rows) else end
        return self._warm_at is None

    def start_warming(self, every: float = 0.05) -> None:
        """Warm the rows in slices from a timer: ready before the first keystroke
        (100,000 tasks: ~20 slices of a few ms) without delaying the first frame."""
        def step() -> None:
            if self.warm_hay():
                timer.stop()
                gc.freeze()  # long-lived, like the tasks (see TaskTUI.on_mount)

        timer = self.set_interval(every, step, name="warm-hay")

    def _ensure_warm(self) -> None:
        if self._warm_at is not None:
            self.warm_hay(budget=len(self._order) + 1)

    def _refilter(self, among: list[_Row] | None = None) -> None:
        rows = self._order if among is None else among
        if self.category is not None or self.words:
            self._ensure_warm()
        if self.category is not None:  # cheapest first: one lookup per row
            answers = _Answers(self.category)
            rows = [r for r in rows if answers[r.cat]]
        for needle, negate in self.words:
            if negate:
                rows = [r for r in rows if needle not in r.hay]
            else:
                rows = [r for r in rows if needle in r.hay]
        pred = self.predicate
        if pred is not None:
            rows = [r for r in rows if pred(r.task)]
        self._index = list(rows) if rows is self._order else rows
        self._index_keys = None
        self._index_set = None
        self._index_changed()

    def apply_changes(self, keys: Iterable[str]) -> list[tuple[str, str | None, str | None]]:
        """Take in changed keys: rows update in place, new ones are inserted, gone
        ones removed.  Returns the state moves ``(key, old, new)`` (None: absent)."""
        if self._window is not None:
            return self._apply_window(list(keys))
        moves: list[tuple[str, str | None, str | None]] = []
        get = self.store.get
        keys = list(keys)
        arrivals = sum(1 for k in keys if (k in self._rows) != (get(k) is not None))
        if arrivals > BULK:  # a bulk add or remove: one re-sort beats many list inserts
            for k in keys:
                row, t = self._rows.get(k), get(k)
                old = row.task if row is not None else None
                if old is not None or t is not None:
                    moves.append((k, old.state if old else None, t.state if t else None))
                self._forget_rows(k)
            self.rebuild()
            return moves
        structural = False
        sort_key = self._sort_key()
        in_index = self._in_index
        for k in keys:
            self._forget_rows(k)
            t = get(k)
            row = self._rows.get(k)
            old = row.task if row is not None else None
            if old is not None or t is not None:
                moves.append((k, old.state if old else None, t.state if t else None))
            if t is None:
                self.marks.discard(k)
                if row is None:
                    continue
                del self._rows[k]
                if k in in_index:
                    self._index.remove(row)  # rows compare by identity: a pointer scan
                    in_index.discard(k)
                    structural = True
                self._order.remove(row)
                continue
            if row is None:
                row = self._rows[k] = _Row(k, t)
                self._warm(row)
                bisect.insort(self._order, row, key=sort_key)
            else:
                row.task = t
                self._warm(row)
            match = self._matches(row)
            if match and k not in in_index:
                bisect.insort(self._index, row, key=sort_key)
                in_index.add(k)
                structural = True
            elif not match and k in in_index:
                self._index.remove(row)
                in_index.discard(k)
                structural = True
        if structural:
            self._index_keys = None
            self._index_changed()
        else:
            self.refresh()
        return moves

    def _forget_rows(self, key: str) -> None:
        self._cache.discard(key)

    def clear_cache(self) -> None:
        """Drop every rendered row (after a theme or size change)."""
        self._cache.clear()
        self.refresh()

    @property
    def _in_index(self) -> set[str]:
        if self._index_set is None:
            self._index_set = {r.key for r in self._index}
        return self._index_set

    def _row_of(self, key: str | None) -> int | None:
        if self._window is not None:
            return self._window.position(key, self._cursor_row)
        row = self._rows.get(key) if key is not None else None
        if row is None:
            return None
        try:
            return self._index.index(row)
        except ValueError:
            return None

    def _index_changed(self) -> None:
        """Keep the cursor on its task (or its row when the task left) and resize.
        A window with only its head read: the cursor's task is looked for in the head;
        when it is not there the cursor waits at the top (``_cursor_wanted``) and goes back
        to its task once the whole order is read and still lists it (unless the user
        moved it meanwhile)."""
        w = self._window
        start_key = self.cursor_key
        if w is not None and self._cursor_wanted is not None:
            if self.cursor_key != self._cursor_placeholder:  # the user moved it since
                self._cursor_wanted = None
            elif w.complete or w.position(self._cursor_wanted, None, whole=False) is not None:
                self.cursor_key, self._cursor_wanted = self._cursor_wanted, None
        if w is not None and not w.complete:
            row = w.position(self.cursor_key, self._cursor_row, whole=False)
            if row is None and self.cursor_key is not None and self._cursor_wanted is None:
                self._cursor_wanted = self.cursor_key  # not in the head (yet)
            if row is None:
                self._cursor_row = 0
        else:
            row = self._row_of(self.cursor_key)
        if row is not None:
            self._cursor_row = row
            if self.cursor_key != start_key:
                self.post_message(self.CursorMoved(self.cursor_key))
        else:
            row = min(self._cursor_row, len(self._index) - 1)
            self._cursor_row = max(row, 0)
            self.cursor_key = self._index[self._cursor_row].key if self._index else None
            self._cursor_placeholder = self.cursor_key
            if start_key != self.cursor_key:
                self.post_message(self.CursorMoved(self.cursor_key))
        self._set_virtual_height(len(self._index) + 1)
        self._scroll_cursor_into_view()
        self.refresh()

    def _set_virtual_height(self, height: int) -> None:
        """Resize the scrollable area.  Textual lays the whole screen out again
        for a new virtual size; when the scrollbar stays (or stays away) only it
        needs an update, so skip the layout then (a keystroke's frame is ~25 %
        cheaper without it)."""
        size = Size(self.size.width, height)
        if size == self.virtual_size:
            return
        visible = max(0, self.scrollable_content_region.height)
        same_bar = self.container_size and (height > visible) == (self.virtual_size.height > visible)
        if not same_bar or not self.show_vertical_scrollbar and height > visible:
            self.virtual_size = size
            return
        try:
            self.set_reactive(TaskList.virtual_size, size)
            self._scroll_update(size)  # scrollbar length and position (Textual's own update)
        except AttributeError:  # a Textual without it: lay out as usual
            self.virtual_size = size

    # ------------------------------------------------------------ sort

    def cycle_sort(self) -> str:
        names = SORT_NAMES
        self.sort_mode = names[(names.index(self.sort_mode) + 1) % len(names)]
        return self.sort_mode

    def watch_sort_mode(self) -> None:
        self.rebuild()

    def watch_sort_reverse(self) -> None:
        self.rebuild()

    def set_sort(self, mode: str, reverse: bool | None = None) -> None:
        """Sort by ``mode`` (one of SORT_NAMES); ``reverse`` None keeps the direction.
        Re-sorts once."""
        reverse = self.sort_reverse if reverse is None else reverse
        if mode == self.sort_mode and reverse == self.sort_reverse:
            self.rebuild()  # asked again: re-sort (the lazy order may have drifted)
            return
        self.set_reactive(TaskList.sort_reverse, reverse)
        if mode == self.sort_mode:
            self.rebuild()
        else:
            self.sort_mode = mode  # the watcher re-sorts

    def step_sort(self, step: int) -> str:
        """The next (step=1) or previous (-1) sort column, as ``<`` and ``>`` do in htop."""
        names = SORT_NAMES
        self.set_sort(names[(names.index(self.sort_mode) + step) % len(names)])
        return self.sort_mode

    def column_at(self, x: int) -> str | None:
        """The sort whose column title is at cell ``x`` of the header line, if any."""
        c = self._layout()
        spans = [("provider", c.provider), (None, c.name)]
        if c.label:
            spans.append((None, c.label))
        if c.model:
            spans.append((None, c.model))
        spans.append(("state", c.state))
        if c.bar:
            spans.append(("progress", c.bar + 5))
        spans.append(("created", c.age))
        spans.append(("updated", c.updated + 1))
        at = 1  # the mark column
        for sort, width in spans:
            if at <= x < at + width + 1:
                return sort
            at += width + 1
        return None

    # ------------------------------------------------------------ cursor

    @property
    def cursor_row(self) -> int:
        return self._cursor_row

    def select(self, key: str) -> bool:
        """Put the cursor on ``key`` if it is listed."""
        row = self._row_of(key)
        if row is None:
            return False
        self._move_to(row)
        return True

    def _move_to(self, row: int) -> None:
        self._cursor_wanted = None  # the user (or select) moved it: the move stands
        if not self._index:
            return
        row = max(0, min(row, len(self._index) - 1))
        old_row = self._cursor_row
        self._cursor_row = row
        key = self._index[row].key
        if key != self.cursor_key:
            self.cursor_key = key
            self.post_message(self.CursorMoved(key))
        self._scroll_cursor_into_view()
        self._refresh_row(old_row)
        self._refresh_row(row)

    def _refresh_row(self, row: int) -> None:
        self.refresh_line(row + 1)  # virtual line; the header takes line 0

    def _scroll_cursor_into_view(self) -> None:
        height = max(1, self.size.height - 1)  # minus the header line
        top = int(self.scroll_offset.y)
        row = self._cursor_row
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)

    def action_cursor_down(self) -> None:
        self._move_to(self._cursor_row + 1)

    def action_cursor_up(self) -> None:
        self._move_to(self._cursor_row - 1)

    def action_page_down(self) -> None:
        self._move_to(self._cursor_row + max(1, self.size.height - 2))

    def action_page_up(self) -> None:
        self._move_to(self._cursor_row - max(1, self.size.height - 2))

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self._move_to(len(self._index) - 1)

    class SortClicked(Message):
        """The user clicked the title of the column ``sort`` reads."""

        def __init__(self, sort: str) -> None:
            super().__init__()
            self.sort = sort

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y == 0:
            sort = self.column_at(offset.x)
            if sort is not None:
                self.post_message(self.SortClicked(sort))
            return
        if offset is None or offset.y < 1:
            return
        row = int(self.scroll_offset.y) + offset.y - 1
        if 0 <= row < len(self._index):
            self._move_to(row)
            if event.chain >= 2:
                self.post_message(self.Opened(self._index[row].key))

    # ------------------------------------------------------------ ages

    def tick(self) -> None:
        """Called about once a second: repaint only when a visible age text changed."""
        if not self._index or not self.display:
            return
        top = int(self.scroll_offset.y)
        drawn = self._drawn_ages
        for n, row in enumerate(self._index[top: top + self.size.height], start=top):
            if drawn.get(row.key) != (self._ages(row.task), self._signs(row.task)):
                self._refresh_row(n)  # that line only: a full repaint costs ~50x more

    def _ages(self, task: Task) -> str:
        c = self._layout()  # AGE (or ~tracked since), UPDATED, optional POLLED; relative or absolute
        return ages_tail(task, self.clock(), c.age, c.updated, self.store)

    # ------------------------------------------------------------ drawing

    def on_resize(self, event: events.Resize) -> None:
        self._columns = None
        self.virtual_size = Size(event.size.width, len(self._index) + 1)
        self._scroll_cursor_into_view()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        self._styles_memo.clear()

    def _layout(self) -> Columns:
        width = self.scrollable_content_region.width
        if self._columns is None or self._columns_width != width or self._extra != extra_width():
            self._extra = extra_width()  # the optional columns (cells.columns) come out of the id's room
            self._columns = Columns.for_width(width - self._extra)
            self._columns_width = width
        return self._columns

    def _style(self, name: str) -> Style:
        """A component style, looked up once per style update (every row asks)."""
        style = self._styles_memo.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            elif name == "base+dim":
                style = self._style("base") + self._style("dim")
            else:
                style = self.get_component_rich_style(f"task-list--{name}", partial=True)
            self._styles_memo[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._style("base")
        if y == 0:
            return self._header(width).apply_style(base)
        n = int(self.scroll_offset.y) + y - 1
        if n >= len(self._index):
            return Strip.blank(width, base)
        row = self._index[n]
        if n == self._cursor_row:  # the one row drawn over its component styles
            raw, _ = self._row(row.key, row.task, cursor=True)
            return Strip(raw).adjust_cell_length(width).apply_style(base + self._style("cursor"))
        based, cells = self._row(row.key, row.task, cursor=False)
        if cells < width:
            return Strip([*based, Segment(" " * (width - cells), base)], width)
        if cells == width:
            return Strip(based, width)
        return Strip(based).adjust_cell_length(width)

    def _header(self, width: int) -> Strip:
        c = self._layout()
        parts = [fit("PROVIDER", c.provider), fit("TASK", c.name)]
        if c.label:
            parts.append(fit("LABEL", c.label))
        if c.model:
            parts.append(fit("KIND/MODEL", c.model))
        parts.append(fit("STATE", c.state))
        if c.bar:
            parts.append(fit("PROGRESS", c.bar + 5))
        parts.append(ages_header(c.age, c.updated))
        label = fit(" " + " ".join(parts), width)
        return Strip([Segment(label, self._style("header"))], width)

    def _row(self, key: str, task: Task, *, cursor: bool) -> tuple[list[Segment], int]:
        """One row as (segments, cells): the cached body plus the ages (which move
        with the clock).  The cursor row gets bare segments (drawn over with its
        own style); the others get them with the base style applied, so the strip
        is built once from segments of a known length."""
        self._layout()  # brings _columns_width up to date
        signs = self._signs(task)
        hit = self._cache.get(key)
        if hit is None or hit[0] != task.rev or hit[1] != self._columns_width or hit[5] != signs:
            body = self._body(task, signs)
            base = self._style("base")
            hit = (task.rev, self._columns_width, body,
                   [Segment(seg.text, base + seg.style if seg.style else base) for seg in body],
                   sum(cell_len(seg.text) for seg in body), signs)
            self._cache.set(key, hit)
        tail = self._ages(task)
        if len(self._drawn_ages) >= 4096:
            self._drawn_ages.clear()
        self._drawn_ages[key] = (tail, signs)
        if cursor:
            return hit[2] + [Segment(tail, self._style("dim"))], hit[4] + cell_len(tail)
        return hit[3] + [Segment(tail, self._style("base+dim"))], hit[4] + cell_len(tail)

    def _signs(self, task: Task) -> tuple:
        """What a row shows beyond the task's own fields, which the clock or the app
        changes: the percent of a download under way (``d``), and whether its result
        links are in the last quarter of their stated lifetime (or expired) with
        nothing downloaded yet (EvoLink's 24 h, Upscayl's ``expiresAt``)."""
        from ..results import expiry_soon

        got = self.downloads.get(task.key)
        return (None if got is None else int(got),
                bool(task.results) and not task.files and expiry_soon(task, self.clock()))

    def redraw(self, key: str) -> None:
        """Draw a task's row again (its download progress moved)."""
        row = self._row_of(key)
        if row is not None:
            self._refresh_row(row)

    def _body(self, task: Task, signs: tuple = (None, False)) -> list[Segment]:
        c = self._layout()
        downloading, expiring = signs
        dim = self._style("dim")
        # the first cell is the mark column: "*" on a marked task (reads without colour)
        if task.key in self.marks:
            segs = [Segment("*", self._style("mark") + Style(bold=True)),
                    Segment(fit(task.provider, c.provider) + " ")]
        else:
            segs = [Segment(" " + fit(task.provider, c.provider) + " ")]
        # the id keeps both ends when cut (ids often share a long prefix); the
        # label has its own column when there is room, else it is left to the summary
        segs.append(Segment(fit_middle(clean(task.task_id, 200), c.name) + " "))
        if c.label:
            segs.append(Segment(fit(clean(task.label, 200) if task.label else "", c.label) + " ", dim))
        if c.model:
            what = clean(task.model or task.kind or "", 200)
            segs.append(Segment(fit(what, c.model) + " ", dim))
        state_style = self._style(f"state-{task.state}" if task.state in _STATE_RANK
                                  else "state-unknown")
        mark = health_mark(task) or (EXPIRY_MARK if expiring else "")
        if downloading is not None and not c.bar:
            mark = mark or "↓"  # no progress column at this width: a sign of the download instead
        if mark:  # stalled, failing polls, links about to expire: a mark that reads without colour too
            segs.append(Segment(mark + " ", self._style("health")))
            segs.append(Segment(fit(state_label(task.state), c.state - 2) + " ", state_style))
        else:
            segs.append(Segment(fit(state_label(task.state), c.state) + " ", state_style))
        if c.bar and downloading is not None:  # the download under way, in place of the task's progress
            done, empty = bar(downloading, c.bar)
            segs.append(Segment(done, self._style("mark")))
            segs.append(Segment(empty, self._style("track")))
            segs.append(Segment("↓" + percent(downloading)))
        elif c.bar:
            if task.state == "succeeded" and task.progress is None:
                progress = 100.0
            else:
                progress = task.progress
            done, empty = bar(progress, c.bar)
            if done or empty:
                segs.append(Segment(done, state_style))
                segs.append(Segment(empty, self._style("track")))
                segs.append(Segment(" " + percent(progress)))
            else:
                segs.append(Segment(" " * (c.bar + 5)))
        return segs
