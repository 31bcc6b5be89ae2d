"""The filter bar: an Input that narrows the task list as the user types."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

from .. import filter as tfilter


def is_narrowing(old: str, new: str) -> bool:
    """True when every task matching ``new`` also matches ``old``.

    Then the list can be filtered from the current matches instead of from all
    tasks.  Holds when the old terms are kept and new terms are added, or when
    the last term grew at its end and is a plain substring test (not negated,
    not ``state:``, whose prefixes and groups do not nest).
    """
    a, b = tfilter.parse(old), tfilter.parse(new)
    if not a:
        return True
    if len(b) < len(a) or b[: len(a) - 1] != a[:-1]:
        return False
    last_a, last_b = a[-1], b[len(a) - 1]
    if last_a == last_b:
        return True
    if last_a.value == "" and last_a.field == last_b.field:
        return last_b.negate == last_a.negate or last_a.problem is not None
    return (
        last_a.field == last_b.field
        and last_a.field != "state"
        and not last_a.negate
        and not last_b.negate
        and last_b.value.lower().startswith(last_a.value.lower())
    )


class FilterBar(Horizontal):
    """``/`` opens it; the list narrows on every keystroke; ``esc`` clears it."""

    BINDINGS = [Binding("escape", "clear", "Clear filter", id="filter.clear")]

    class Changed(Message):
        """The query changed (the user typed)."""

        def __init__(self, query: str) -> None:
            super().__init__()
            self.query = query

    class Done(Message):
        """The user left the filter: ``cleared`` when by ``esc``."""

        def __init__(self, cleared: bool) -> None:
            super().__init__()
            self.cleared = cleared

    def compose(self) -> ComposeResult:
        yield Label("/", id="filter-prompt")
        yield Input(placeholder="filter: words, provider:evo state:failed -label:x",
                    id="filter-input", select_on_focus=False)
        yield Label("", id="filter-count")

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    @property
    def value(self) -> str:
        return self.input.value

    def set_count(self, shown: int, total: int, problem: str | None = None) -> None:
        text = f"{shown:,} of {total:,}"
        if problem:
            text = f"{text}  ⚠ {problem}"
        self.query_one("#filter-count", Label).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Done(cleared=False))

    def action_clear(self) -> None:
        self.input.value = ""
        self.post_message(self.Changed(""))
        self.post_message(self.Done(cleared=True))
