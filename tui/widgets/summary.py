"""The selected task's summary (side pane), and the field table shared with
the detail screen.  Provider text is appended to ``rich.text.Text`` objects,
never parsed as markup."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..headless import health_mark
from ..model import Task, iso
from ..text import is_web_url
from .cells import clean
from .cells import bar, percent, since, state_label


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    return f"{iso(ts)}  ({since(now, ts)})"


def task_rows(task: Task, now: float, *, full: bool) -> list[tuple[str, Text]]:
    """(field name, value) pairs describing ``task``; ``full`` adds every field."""
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
    add("created", _when(task.created_at, now))
    add("updated", _when(task.updated_at, now))
    if task.finished_at is not None or full:
        add("finished", _when(task.finished_at, now))
    if task.eta is not None and full:
        add("expected", f"{task.eta:g} s")
    if task.error:
        add("error", task.error, "bold")
    if full:
        health_rows(task, now, full, add)
    results = list(task.results)
    for i, url in enumerate(results if full else results[:3]):
        name = "results" if i == 0 else ""
        text = Text(clean(url, 2048))
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
    add("polled at", task.poll_path or "-")
    for name, value in task.details.items():
        add(clean(name, 40), value)


def rows_table(rows: list[tuple[str, Text]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


class TaskSummary(Static):
    """What the cursor is on: the fields that matter, in a few lines."""

    _shown: tuple | None = None
    _text: list | None = None

    def show(self, task: Task | None, now: float) -> None:
        shown = None if task is None else (task.key, task.rev, int(now))
        if shown == self._shown and shown is not None:
            return  # same task, same revision, same second: nothing would change
        self._shown = shown
        if task is None:
            self._text = None
            self._put(Text("No task selected.", "dim"))
            return
        rows = task_rows(task, now, full=False)
        text = [(name, value.plain) for name, value in rows]
        if text == self._text:
            return  # a second later, but every "(3m ago)" reads the same
        self._text = text
        self._put(rows_table(rows))

    def _put(self, renderable) -> None:
        """Update; lay out again only if the pane's height follows its content
        (the stylesheet fixes it: a layout would repaint the panes below)."""
        height = self.styles.height
        self.update(renderable, layout=height is None or height.is_auto)
