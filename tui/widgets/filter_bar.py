"""The filter bar: an Input that narrows the task list as the user types."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

from .. import filter as tfilter


def split_query(query: str) -> tuple[list[tuple[str, bool]], bool]:
    """The query's bare words as (lowercase needle, negate), and whether other
    terms need the full predicate of ``tui.filter``.

    A bare word matches as a lowercase substring of id, label, model,
    provider, kind, state or raw status (tui.filter): the task list answers
    those from a per-task haystack, far faster than a Python predicate.
    """
    words: list[tuple[str, bool]] = []
    rest = False
    for term in tfilter.parse(query):
        if term.value == "":
            continue
        if term.field is None and "\n" not in term.value:
            words.append((term.value.lower(), term.negate))
        else:
            rest = True
    return words, rest


class FilterInput(Input):
    """The query input.  ``enter`` hands focus back at once, so a quick second
    ``enter`` already reaches the list (and opens the task)."""

    async def action_submit(self) -> None:
        bar = self.parent
        target = getattr(bar, "return_focus_to", None)
        if target is not None:
            try:
                self.screen.set_focus(self.screen.query_one(target))
            except Exception:
                pass
        await super().action_submit()


class FilterBar(Horizontal):
    """``/`` opens it; the list narrows on every keystroke; ``esc`` clears it."""

    BINDINGS = [Binding("escape", "clear", "Clear filter", id="filter.clear")]

    def __init__(self, *, return_focus_to: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.return_focus_to = return_focus_to

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
        yield FilterInput(placeholder="filter: words, provider:evo state:failed -label:x",
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
