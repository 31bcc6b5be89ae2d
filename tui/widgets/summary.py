"""The selected task's summary (side pane), and the field table shared with
the detail screen.  Provider text is appended to ``rich.text.Text`` objects,
never parsed as markup."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from .. import timefmt
from ..headless import health_mark
from ..model import SUCCEEDED, Task, iso
from ..text import is_web_url
from .cells import clean
from .cells import bar, learned_duration, percent, since, state_label, tracked_since
from .picture import PaintsPictures, Picture


def _when(ts: float | None, now: float) -> str:
    """``2027-01-15T07:59:48Z  (12s ago)``; with absolute times on (``t``) the ISO time alone."""
    if ts is None or iso(ts) is None:
        return "-"
    if timefmt.mode == timefmt.ABSOLUTE:
        return iso(ts) or "-"
    return f"{iso(ts)}  ({since(now, ts)})"


def _short(ts: float | None, now: float) -> str:
    """A past time in few cells: ``12s ago`` (relative) or ``07:59:48`` (absolute)."""
    if ts is None or iso(ts) is None:
        return "-"
    if timefmt.mode == timefmt.ABSOLUTE:
        return timefmt.clock(ts, now)
    return timefmt.since(now, ts)


def next_poll_text(task: Task, now: float) -> Text:
    """When the engine asks next: ``in 5s``, ``due now``, ``overdue 3m`` (a late
    poll: the provider or the engine is stuck), or why there is no next poll."""
    if task.terminal:
        return Text("never: the task has ended", "dim")
    at = task.next_poll_at
    if at is None or iso(at) is None:
        return Text("not scheduled (paused, offline, or not yet planned)", "dim")
    late = now - at
    if late >= OVERDUE_AFTER:
        return Text(f"overdue {timefmt.ago(late)}", "bold")
    text = Text(iso(at) or "-") if timefmt.mode == timefmt.ABSOLUTE else Text(
        "due now" if at - now < 1 else f"in {timefmt.ago(at - now)}")
    if (task.details or {}).get("pushed_at"):
        # its updates come by push (tui/push.py): the poll planned is the safety net's
        text.append(" (fed by push: a safety-net check)", "dim")
    return text


OVERDUE_AFTER = 60.0  # seconds a planned poll may be late before the detail calls it overdue


def eta_text(task: Task, now: float, learned: float | None = None,
             tracked: float | None = None) -> str | None:
    """A running task's ETA: ``~2m left`` from the provider's own estimate
    (``Task.eta``), else from the learned typical duration of its kind and model;
    None when neither is known or the task is not running."""
    if task.state != "running":
        return None
    start = task.created_at if task.created_at is not None else tracked
    if task.eta:
        text = timefmt.eta_left(now, start, task.eta)
        return f"{text} (provider's estimate)" if text else None
    if learned:
        text = timefmt.eta_left(now, start, learned)
        return f"{text} (typical for its kind)" if text else None
    return None


def task_rows(task: Task, now: float, *, full: bool, tracked: float | None = None,
              learned: float | None = None) -> list[tuple[str, Text]]:
    """(field name, value) pairs describing ``task``; ``full`` adds every field.

    ``tracked``: when the store started tracking the task (shown, marked as such,
    where the provider gave no creation time); ``learned``: the typical duration
    of its kind and model (an ETA where the provider gives none)."""
    rows: list[tuple[str, Text]] = []

    def add(name: str, value: object, style: str = "") -> None:
        rows.append((name, value if isinstance(value, Text) else Text(clean(value, 2000), style)))

    add("provider", task.provider)
    add("task id", task.task_id)
    if task.label or full:
        add("label", task.label or "-")
    if task.kind or full:
        add("kind", task.kind or "-")
    if task.model or full:
        add("model", task.model or "-")
    state = Text(state_label(task.state))
    if task.provider_status:
        state.append(f"  ({clean(task.provider_status, 200)})", "dim")
    add("state", state)
    if not full:  # what is wrong comes first in the small pane
        health_rows(task, now, full, add)
    if task.progress is not None:
        done, empty = bar(task.progress, 20)
        value = Text(done)
        value.append(empty, "dim")
        value.append(" " + percent(task.progress).strip())
        add("progress", value)
    elif full:
        add("progress", "-")
    if task.credits is not None or full:
        add("credits", "-" if task.credits is None else f"{task.credits:g}")
    if task.created_at is None and tracked is not None:  # the provider gave no creation time
        value = Text(_when(tracked, now))
        value.append("  ~ tracked since, no creation time from the provider", "dim")
        add("tracked", value)
    else:
        add("created", _when(task.created_at, now))
    add("updated", _when(task.updated_at, now))
    if task.finished_at is not None or full:
        add("finished", _when(task.finished_at, now))
    eta = eta_text(task, now, learned, tracked)
    if eta:
        add("eta", eta)
    if task.eta is not None and full:
        add("expected", f"{timefmt.ago(task.eta)} in all (the provider's estimate)")
    if full:  # freshness: when the engine last asked, and when it asks next
        add("last polled", _when(task.polled_at, now) if task.polled_at is not None else "never (not yet asked)")
        add("next poll", next_poll_text(task, now))
    elif task.polled_at is not None:
        line = Text(f"{_short(task.polled_at, now)}")
        if not task.terminal and task.next_poll_at is not None:
            line.append(" · next ", "dim")
            line.append(next_poll_text(task, now).plain)
        add("polled", line)
    if task.error:
        add("error", task.error, "bold")
    if full:
        health_rows(task, now, full, add)
    results = list(task.results)
    for i, url in enumerate(results if full else results[:3]):
        name = "results" if i == 0 else ""
        shown = clean(url, 2048)
        if is_web_url(url) and full:  # an OSC 8 hyperlink in the detail (the terminal opens it)
            text = Text(shown, Style(link=shown))
        else:
            text = Text(shown)
        if full and len(results) > 1 and i < 9:
            text.append(f"  ({i + 1} copies it)", "dim")
        if not is_web_url(url):
            text.append("  (not a web link)", "dim")
        add(name, text)
    if not full and len(results) > 3:
        add("", f"… {len(results) - 3} more (enter)")
    if not full:  # the provider's own facts (the detail has them all, after the health rows)
        for name, value in list(task.details.items())[:2]:
            add(clean(name, 40), value)
    if not results and full:
        add("results", "-")
    return rows


def health_rows(task: Task, now: float, full: bool, add) -> None:
    """Why a task may not be moving (the engine's marks), and the provider's
    own facts about it (``details``).  The summary says what is wrong in a
    line or two; the detail shows every field."""
    mark = health_mark(task)
    if not full:
        if task.stalled:
            add("stalled", Text(f"{mark or '⚠'} {clean(task.stalled, 500)}", "bold"))
        if task.failed_polls:
            text = Text(f"{mark or '!'} {task.failed_polls} failed in a row", "bold")
            if task.last_error:
                text.append(f" — {clean(task.last_error, 300)}")
                if task.last_error_at is not None:
                    text.append(f" ({since(now, task.last_error_at)})", "dim")
            add("polls", text)
        return
    if task.stalled:
        add("stalled", Text(f"{mark or '⚠'} {clean(task.stalled, 500)}", "bold"))
    add("failed polls", Text(f"{mark} {task.failed_polls} in a row".strip(), "bold")
        if task.failed_polls else "0")
    add("last error", task.last_error or "-")
    if task.last_error:
        add("error at", _when(task.last_error_at, now))
    add("poll path", task.poll_path or "-")  # the request path (when: "last polled" above)
    for name, value in task.details.items():
        add(clean(name, 40), value)


def time_facts(store, task: Task, now: float) -> dict:
    """What ``task_rows`` needs from the store beyond the task: when it was first
    tracked (only where the provider gave no creation time) and the learned
    typical duration (only for a running task without the provider's estimate)."""
    facts: dict = {}
    if task.created_at is None and store is not None:
        facts["tracked"] = tracked_since(store, task)
    if task.state == "running" and not task.eta and store is not None:
        facts["learned"] = learned_duration(store, task, now)
    return facts


def rows_table(rows: list[tuple[str, Text]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


# a link whose path names an image file: the only links the summary previews
# (the detail previews any link; the summary never fetches a video to find out)
IMAGE_NAME = re.compile(r"\.(?:png|jpe?g|webp|gif)(?:[?#]|$)", re.IGNORECASE)
THUMB_MIN = (16, 4)  # columns, lines the pane must have left under the fields for a preview
THUMB_SETTLE = 0.3  # seconds the cursor rests on a task before its preview is fetched


def thumb_url(task: Task | None) -> str | None:
    """The result the summary previews: a succeeded task's first image-named web link."""
    if task is None or task.state != SUCCEEDED:
        return None
    return next((u for u in task.results if is_web_url(u) and IMAGE_NAME.search(u)), None)


class TaskSummary(PaintsPictures, Static):
    """What the cursor is on: the fields that matter, in a few lines, and, where
    the pane has room left under them, a half-block preview of the task's first
    image result (fetched in a worker once the cursor rests on the task, from the
    same on-disk cache as the detail's; nothing is shown while it loads or when it
    cannot be had: the detail says why)."""

    _shown: tuple | None = None
    _text: list | None = None
    _rows: list | None = None
    _thumb_url: str | None = None  # the link being fetched or shown
    thumb: Any = None  # tui.preview.Preview of _thumb_url, once fetched
    _thumb_drawn: tuple | None = None  # ((url, width, lines), half-block text) of the last drawing
    _cache: Any = None

    def show(self, task: Task | None, now: float) -> None:
        shown = None if task is None else (task.key, task.rev, int(now), timefmt.mode)
        if shown == self._shown and shown is not None:
            return  # same task, same revision, same second: nothing would change
        self._shown = shown
        self._want_thumb(task)
        if task is None:
            self._text = self._rows = None
            self._put(Text("No task selected.", "dim"))
            return
        store = getattr(self.app, "store", None)
        rows = task_rows(task, now, full=False, **time_facts(store, task, now))
        text = [(name, value.plain) for name, value in rows]
        if text == self._text:
            return  # a second later, but every "(3m ago)" reads the same
        self._text = text
        self._rows = rows
        self._draw()

    # ------------------------------------------------------------ preview

    def _want_thumb(self, task: Task | None) -> None:
        url = thumb_url(task)
        if url == self._thumb_url:
            return
        self._thumb_url = url
        if self.thumb is not None:
            self.thumb = None
            self._draw()
        if url is not None and self.is_mounted:
            self.run_worker(self._fetch_thumb(url), group="summary-preview", exclusive=True,
                            exit_on_error=False)

    async def _fetch_thumb(self, url: str) -> None:
        from ..preview import DEFAULT_MAX_BYTES, PreviewCache, fetch_preview

        await asyncio.sleep(THUMB_SETTLE)  # the cursor moving on cancels this worker (exclusive)
        if url != self._thumb_url:
            return
        if self._cache is None:
            self._cache = PreviewCache()
        results = getattr(getattr(self.app, "config", None), "results", None)
        mb = getattr(results, "preview_max_mb", None)
        cap = int(float(mb) * 10**6) if mb else DEFAULT_MAX_BYTES
        try:
            preview = await fetch_preview(url, self._cache, cap)
        except Exception:  # noqa: BLE001 - the summary shows nothing; the detail says why
            return
        if url != self._thumb_url or preview.status != "ok" or preview.kind != "image" or not preview.data:
            return
        self.thumb = preview
        self._draw()

    def _thumbnail(self, table: Any) -> Any:
        """Lines of the fetched preview fitted under ``table`` (half-blocks, or Kitty/
        Sixel where the terminal has them: tui/widgets/picture.py), or None."""
        from ..preview import PreviewError, as_text

        if self.picture is None:
            self.picture = Picture(self, self._picture_ready)
        p = self.thumb
        width, height = self.content_size
        if p is None or p.url != self._thumb_url or width <= 0 or height <= 0:
            self.picture.clear()
            return None
        used = len(self.app.console.render_lines(table, self.app.console.options.update_width(width),
                                                 pad=False))
        free = height - used - 1  # a blank line between the fields and the picture
        if width < THUMB_MIN[0] or free < THUMB_MIN[1]:
            self.picture.clear()
            return None
        self.picture.top = used + 1
        drawn = self._thumb_drawn
        if drawn is not None and drawn[0] == (p.url, width, free):
            return drawn[1]  # the fields' "(12s ago)" moved, the picture did not: no decode
        try:
            lines = self.picture.draw(p.data, p.url, width, free)
        except PreviewError:
            lines = []
        text = as_text(lines) if lines else None
        self._thumb_drawn = ((p.url, width, free), text)
        return text

    def _draw(self) -> None:
        if self._rows is None:
            return
        table = rows_table(self._rows)
        thumb = self._thumbnail(table)
        self._put(Group(table, Text(""), thumb) if thumb is not None else table)

    def on_resize(self) -> None:
        if self.thumb is not None:
            self._draw()

    def _picture_ready(self) -> None:
        """The Kitty/Sixel picture is encoded: draw it instead of the half-blocks."""
        self._thumb_drawn = None
        self._draw()

    def on_unmount(self) -> None:
        if self.picture is not None:
            self.picture.release()

    def _put(self, renderable) -> None:
        """Update; lay out again only if the pane's height follows its content
        (the stylesheet fixes it: a layout would repaint the panes below)."""
        height = self.styles.height
        self.update(renderable, layout=height is None or height.is_auto)
