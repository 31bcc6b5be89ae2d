"""The task list: a Line-API ScrollView over an index of task keys.

The widget keeps ``order`` (every tracked key, in the current sort) and
``index`` (the keys that match the filter, in the same order), plus ``tasks``,
a key -> Task mirror of the store refreshed from its change feed.  Cost per
frame is O(visible rows); a rendered row is cached by (key, rev, width) so a
refresh redraws only what changed.

Sorting is "lazy" (btop): when tasks change they keep their place; new keys
are inserted at their sorted position; the whole list is re-sorted only when
the user asks (``s``).

Filtering 100,000 tasks per keystroke: terms on category fields (provider,
state, model, kind) are answered once per distinct combination of those
fields, then looked up per task; bare words are tested against a lowercased
"haystack" per task (C-speed substring tests); other terms (id, label, error)
use the filter module's predicate, on what was left.  Haystacks and categories
are built in slices after the first frame (``warm_hay``).  When the query only grew
(``tui.filter.refines``) only the current matches are tested.
"""

from __future__ import annotations

import bisect
import gc
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..model import Task
from .cells import clean
from .cells import ago, bar, fit, percent, since, state_label

# state -> rank for the "state" sort: what needs attention first.
_STATE_RANK = {"failed": 0, "running": 1, "queued": 2, "unknown": 3, "not_found": 4,
               "cancelled": 5, "succeeded": 6}


def _updated(t: Task) -> float:
    return t.updated_at or t.created_at or 0.0


# One cheap key per sort (ascending); ties keep insertion order (the sort is stable).
SORTS: dict[str, Callable[[Task], object]] = {
    "updated": lambda t: -(t.updated_at or t.created_at or 0.0),
    "created": lambda t: -(t.created_at or 0.0),
    "state": lambda t: (_STATE_RANK.get(t.state, 9), -_updated(t)),
    "provider": lambda t: (t.provider, t.task_id),
    "progress": lambda t: (-(t.progress if t.progress is not None else -1.0), -_updated(t)),
}
SORT_NAMES = tuple(SORTS)

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

    @classmethod
    def for_width(cls, width: int) -> "Columns":
        provider, state, age, updated = 8, 12, 4, 8
        barw = 10 if width >= 90 else 6 if width >= 60 else 0
        progress = barw + 5 if barw else 0
        fixed = provider + state + progress + age + updated
        gaps = 7  # one space between columns, two before "updated"
        rest = max(6, width - fixed - gaps - 1)
        if rest >= 36:
            model = min(28, rest * 2 // 5)
            name = rest - model - 1
        else:
            model, name = 0, rest
        return cls(provider, name, model, state, barw, age, updated)


class _Answers(dict):
    """category -> does ``pred`` pass it (computed on first lookup)."""

    def __init__(self, pred: Predicate) -> None:
        super().__init__()
        self.pred = pred

    def __missing__(self, cat: tuple) -> bool:
        answer = self[cat] = bool(self.pred(_stand_in(cat)))
        return answer


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

    def __init__(self, store, clock: Callable[[], float], *, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.clock = clock
        self.order: list[str] = []  # every key, in sort order (lazily kept)
        self.index: list[str] = []  # the keys that match the filter, same order
        self.tasks: dict[str, Task] = {}  # key -> task, as of the last change applied
        self._index_set: set[str] | None = set()  # built when first needed
        self._hay: dict[str, str] = {}  # key -> haystack; complete once _hay_todo is None
        self._cat: dict[str, tuple] = {}  # key -> category(task), built with _hay
        self._cats: dict[tuple, tuple] = {}  # interned categories (a few hundred for 100,000 tasks)
        self._hay_todo: Iterator[str] | None = iter(())
        self.predicate: Predicate | None = None
        self.category: Predicate | None = None
        self.words: Words = []
        self.cursor_key: str | None = None
        self._cursor_row = 0
        self._cache: dict[str, tuple[int, int, list[Segment]]] = {}  # key -> (rev, width, body)
        self._styles_memo: dict[str, Style] = {}  # component styles, until the next style update
        self._columns: Columns | None = None
        self._drawn_ages: dict[str, str] = {}  # key -> the age text last drawn
        self._columns_width = -1

    # ------------------------------------------------------------ index

    def _sort_key(self) -> Callable[[str], object]:
        func = SORTS[self.sort_mode]
        tasks = self.tasks
        return lambda k: func(tasks[k])

    def rebuild(self) -> None:
        """Re-read every task, sort, and re-apply the filter (the user asked for it)."""
        tasks = self.store.tasks()
        tasks.sort(key=SORTS[self.sort_mode])
        # Fresh key strings, made in list order: a filter pass walks keys, tasks,
        # haystacks and categories in this order, and memory laid out the same
        # way makes that pass ~4x faster at 100,000 tasks than keys scattered
        # in load order.
        self.tasks = {f"{t.provider}:{t.task_id}": t for t in tasks}
        self.order = list(self.tasks)
        self._forget_hay()
        self._refilter()

    @property
    def filtered(self) -> bool:
        """Is a filter narrowing the list?"""
        return bool(self.words) or self.predicate is not None or self.category is not None

    def matches(self, task: Task) -> bool:
        """Does ``task`` pass the current filter?"""
        if self.words:
            hay = haystack(task)
            for needle, negate in self.words:
                if (needle in hay) == negate:
                    return False
        if self.category is not None and not self.category(task):
            return False
        return self.predicate is None or self.predicate(task)

    def set_filter(self, predicate: Predicate | None, *, words: Words | None = None,
                   category: Predicate | None = None, narrow: bool = False) -> int:
        """Show only tasks that contain every (lowercase) word of ``words``,
        pass ``category`` (a predicate reading only the fields of ``category()``,
        answered once per distinct combination) and pass ``predicate``; return
        the count.  ``narrow=True`` promises the new filter matches a subset of
        the old one, so only listed keys are tested."""
        self.predicate = predicate
        self.category = category
        self.words = list(words or [])
        self._refilter(self.index if narrow else None)
        return len(self.index)

    def _forget_hay(self) -> None:
        self._hay = {}
        self._cat = {}
        self._hay_todo = iter(list(self.tasks))

    def _index_task(self, key: str, t: Task) -> None:
        self._hay[key] = haystack(t)
        cat = category(t)
        self._cat[key] = self._cats.setdefault(cat, cat)

    def warm_hay(self, budget: int = 5000) -> bool:
        """Build up to ``budget`` haystacks (called from a timer after the first
        frame, so opening 100,000 tasks does not wait for them); True when all are built."""
        todo = self._hay_todo
        if todo is None:
            return True
        hay, tasks, index_task = self._hay, self.tasks, self._index_task
        for key in todo:
            t = tasks.get(key)
            if t is not None and key not in hay:
                index_task(key, t)
            budget -= 1
            if budget <= 0:
                return False
        self._hay_todo = None
        return True

    def start_warming(self, every: float = 0.05) -> None:
        """Build haystacks and categories in slices from a timer: ready before the
        first keystroke (100,000 tasks: ~20 slices of a few ms) without delaying
        the first frame."""
        def step() -> None:
            if self.warm_hay():
                timer.stop()
                gc.freeze()  # long-lived, like the tasks (see TaskTUI.on_mount)

        timer = self.set_interval(every, step, name="warm-hay")

    def _ensure_hay(self) -> dict[str, str]:
        if self._hay_todo is not None:
            self.warm_hay(budget=len(self.tasks) + 1)
        return self._hay

    def _refilter(self, among: list[str] | None = None) -> None:
        keys = self.order if among is None else among
        if self.category is not None:  # cheapest first: two dict lookups per task
            self._ensure_hay()
            answers = _Answers(self.category)
            cat = self._cat
            keys = [k for k in keys if answers[cat[k]]]
        if self.words:
            hay = self._ensure_hay()
            for needle, negate in self.words:
                if negate:
                    keys = [k for k in keys if needle not in hay[k]]
                else:
                    keys = [k for k in keys if needle in hay[k]]
        pred = self.predicate
        if pred is not None:
            tasks = self.tasks
            keys = [k for k in keys if pred(tasks[k])]
        self.index = list(keys) if keys is self.order else keys
        self._index_set = None
        self._index_changed()

    def apply_changes(self, keys: Iterable[str]) -> list[tuple[str, str | None, str | None]]:
        """Take in changed keys: rows update in place, new ones are inserted, gone
        ones removed.  Returns the state moves ``(key, old, new)`` (None: absent)."""
        moves: list[tuple[str, str | None, str | None]] = []
        get = self.store.get
        keys = list(keys)
        arrivals = sum(1 for k in keys if (k in self.tasks) != (get(k) is not None))
        if arrivals > BULK:  # a bulk add or remove: one re-sort beats many list inserts
            for k in keys:
                old, t = self.tasks.get(k), get(k)
                if old is not None or t is not None:
                    moves.append((k, old.state if old else None, t.state if t else None))
                self._forget_rows(k)
            self._forget_hay()
            self.rebuild()
            return moves
        structural = False
        sort_key = self._sort_key()
        for k in keys:
            self._forget_rows(k)
            t = get(k)
            old = self.tasks.get(k)
            if old is not None or t is not None:
                moves.append((k, old.state if old else None, t.state if t else None))
            if t is None:
                if old is None:
                    continue
                del self.tasks[k]
                self._hay.pop(k, None)
                self._cat.pop(k, None)
                if k in self._in_index:
                    self.index.remove(k)
                    self._in_index.discard(k)
                    structural = True
                self.order.remove(k)
                continue
            self.tasks[k] = t
            self._index_task(k, t)
            if old is None:
                bisect.insort(self.order, k, key=sort_key)
            match = self.matches(t)
            if match and k not in self._in_index:
                bisect.insort(self.index, k, key=sort_key)
                self._in_index.add(k)
                structural = True
            elif not match and k in self._in_index:
                self.index.remove(k)
                self._in_index.discard(k)
                structural = True
        if structural:
            self._index_changed()
        else:
            self.refresh()
        return moves

    def _forget_rows(self, key: str) -> None:
        self._cache.pop(key, None)

    def clear_cache(self) -> None:
        """Drop every rendered row (after a theme or size change)."""
        self._cache.clear()
        self.refresh()

    @property
    def _in_index(self) -> set[str]:
        if self._index_set is None:
            self._index_set = set(self.index)
        return self._index_set

    def _row_of(self, key: str | None) -> int | None:
        if key is None:
            return None
        try:
            return self.index.index(key)
        except ValueError:
            return None

    def _index_changed(self) -> None:
        """Keep the cursor on its task (or its row when the task left) and resize."""
        row = self._row_of(self.cursor_key)
        if row is not None:
            self._cursor_row = row
        else:
            row = min(self._cursor_row, len(self.index) - 1)
            self._cursor_row = max(row, 0)
            old = self.cursor_key
            self.cursor_key = self.index[self._cursor_row] if self.index else None
            if old != self.cursor_key:
                self.post_message(self.CursorMoved(self.cursor_key))
        self.virtual_size = Size(self.size.width, len(self.index) + 1)
        self._scroll_cursor_into_view()
        self.refresh()

    # ------------------------------------------------------------ sort

    def cycle_sort(self) -> str:
        names = SORT_NAMES
        self.sort_mode = names[(names.index(self.sort_mode) + 1) % len(names)]
        return self.sort_mode

    def watch_sort_mode(self) -> None:
        self.rebuild()

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
        if not self.index:
            return
        row = max(0, min(row, len(self.index) - 1))
        old_row = self._cursor_row
        self._cursor_row = row
        key = self.index[row]
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
        self._move_to(len(self.index) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = int(self.scroll_offset.y) + offset.y - 1
        if 0 <= row < len(self.index):
            self._move_to(row)
            if event.chain >= 2:
                self.post_message(self.Opened(self.index[row]))

    # ------------------------------------------------------------ ages

    def tick(self) -> None:
        """Called about once a second: repaint only when a visible age text changed."""
        if not self.index or not self.display:
            return
        top = int(self.scroll_offset.y)
        get = self.tasks.get
        drawn = self._drawn_ages
        for row, k in enumerate(self.index[top: top + self.size.height], start=top):
            t = get(k)
            if t is not None and drawn.get(k) != self._ages(t):
                self._refresh_row(row)  # that line only: a full repaint costs ~50x more

    def _ages(self, task: Task) -> str:
        c = self._layout()
        now = self.clock()
        age = ago(now - task.created_at) if task.created_at else "-"
        return " " + age.rjust(c.age) + "  " + fit(since(now, task.updated_at), c.updated)

    # ------------------------------------------------------------ drawing

    def on_resize(self, event: events.Resize) -> None:
        self._columns = None
        self.virtual_size = Size(event.size.width, len(self.index) + 1)
        self._scroll_cursor_into_view()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        self._styles_memo.clear()

    def _layout(self) -> Columns:
        width = self.scrollable_content_region.width
        if self._columns is None or self._columns_width != width:
            self._columns = Columns.for_width(width)
            self._columns_width = width
        return self._columns

    def _style(self, name: str) -> Style:
        """A component style, looked up once per style update (every row asks)."""
        style = self._styles_memo.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            else:
                style = self.get_component_rich_style(f"task-list--{name}", partial=True)
            self._styles_memo[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._style("base")
        if y == 0:
            return self._header(width).apply_style(base)
        row = int(self.scroll_offset.y) + y - 1
        if row >= len(self.index):
            return Strip.blank(width, base)
        key = self.index[row]
        task = self.tasks.get(key)
        if task is None:
            return Strip.blank(width, base)
        strip = Strip(self._row(task)).adjust_cell_length(width)
        if row == self._cursor_row:
            return strip.apply_style(base + self._style("cursor"))
        return strip.apply_style(base)

    def _header(self, width: int) -> Strip:
        c = self._layout()
        parts = [fit("PROVIDER", c.provider), fit("TASK", c.name)]
        if c.model:
            parts.append(fit("KIND/MODEL", c.model))
        parts.append(fit("STATE", c.state))
        if c.bar:
            parts.append(fit("PROGRESS", c.bar + 5))
        parts.append(fit("AGE", c.age).rjust(c.age))
        parts.append(" " + fit("UPDATED", c.updated))
        label = fit(" " + " ".join(parts), width)
        return Strip([Segment(label, self._style("header"))], width)

    def _row(self, task: Task) -> list[Segment]:
        """Segments of one row: the cached body plus the ages (which move with the clock)."""
        self._layout()  # brings _columns_width up to date
        key = f"{task.provider}:{task.task_id}"
        hit = self._cache.get(key)
        if hit is not None and hit[0] == task.rev and hit[1] == self._columns_width:
            body = hit[2]
        else:
            body = self._body(task)
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[key] = (task.rev, self._columns_width, body)
        tail = self._ages(task)
        if len(self._drawn_ages) >= 4096:
            self._drawn_ages.clear()
        self._drawn_ages[key] = tail
        return body + [Segment(tail, self._style("dim"))]

    def _body(self, task: Task) -> list[Segment]:
        c = self._layout()
        dim = self._style("dim")
        segs = [Segment(" " + fit(task.provider, c.provider) + " ")]
        label = clean(task.label, 200) if task.label else ""
        tid = clean(task.task_id, 200)
        if label:
            text = fit(label + " " + tid, c.name)
            cut = min(len(label) + 1, len(text))
            segs.append(Segment(text[:cut]))
            segs.append(Segment(text[cut:], dim))
        else:
            segs.append(Segment(fit(tid, c.name)))
        segs.append(Segment(" "))
        if c.model:
            what = clean(task.model or task.kind or "", 200)
            segs.append(Segment(fit(what, c.model) + " ", dim))
        state_style = self._style(f"state-{task.state}" if task.state in _STATE_RANK
                                  else "state-unknown")
        segs.append(Segment(fit(state_label(task.state), c.state) + " ", state_style))
        if c.bar:
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
