"""The filter bar: an Input that narrows the task list as the user types."""

from __future__ import annotations

from typing import Callable

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input, Label

from .. import filter as tfilter
from ..messages import FilterDone


def plan_query(query: str) -> tuple[list[tuple[str, bool]], tfilter.Predicate | None,
                                     tfilter.Predicate | None]:
    """How the task list answers ``query`` fastest: (needles for the haystack,
    a predicate of the terms on category fields, a predicate of the other field
    terms); a None predicate has nothing to test.  The needles are the bare
    words plus the values of ``id:`` terms (a task whose id holds the value has
    it in its haystack too; the predicate then checks the id itself)."""
    words: list[tuple[str, bool]] = []
    category: list[tfilter.Term] = []
    other: list[tfilter.Term] = []
    for term in tfilter.parse(query):
        if term.value == "":
            continue
        if term.field is None and "\n" not in term.value:
            words.append((term.value.lower(), term.negate))
        elif term.field in tfilter.CATEGORY_FIELDS:
            category.append(term)
        else:
            other.append(term)
            if term.field == "task_id" and not term.negate and "\n" not in term.value:
                # the id is in the haystack: a cheap necessary test before the predicate
                words.append((term.value.lower(), False))
    return (words, tfilter.compile_terms(category) if category else None,
            tfilter.compile_terms(other) if other else None)


COUNT_CELLS = 20  # "100,000 of 100,000" fits: #filter-count's min-width (22) less its padding


class FilterInput(Input):
    """The query input.  ``enter`` hands focus back at once, so a quick second
    ``enter`` already reaches the list (and opens the task).

    A new value reaches the bar at once (a watcher, not the ``Changed``
    message): the list is filtered in the same turn as the keystroke, so the
    next frame already shows the answer."""

    # Fixed in size by the stylesheet: a new value needs a repaint, not a layout
    # of the whole screen (Input resizes its virtual area at every keystroke).
    # Kept on purpose (issue #14): typing 26 keys costs 26 screen layouts
    # without it, 0 with it; tests/functional/test_textual_seams.py fails when a Textual
    # upgrade makes it ineffective or unnecessary.
    virtual_size = Reactive(Size(0, 0), layout=False)

    def watch_value(self, value: str) -> None:
        bar = self.parent
        if isinstance(bar, FilterBar):
            bar.value_changed(value)

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

    def __init__(self, on_change: Callable[[str], object], *, return_focus_to: str | None = None,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.return_focus_to = return_focus_to
        self.on_change = on_change  # called with the query at each change
        self._count_text = ""

    Done = FilterDone  # the user left the filter (tui.messages; ``control`` is this bar)

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

    def set_count(self, shown: int, total: int, problem: str | None = None, *, exact: bool = True) -> None:
        """``n of N``; ``n+ of N`` while the list has read only the head of the result
        (``exact`` False: the rest comes from its thread a moment later)."""
        text = f"{shown:,}{'' if exact else '+'} of {total:,}"
        if problem:
            text = f"{text}  ⚠ {problem}"
        label = self.query_one("#filter-count", Label)
        if text != self._count_text:
            # auto width, at least COUNT_CELLS (styles): lay out only when the width changes
            width = max(cell_len(text), COUNT_CELLS)
            label.update(text, layout=width != max(cell_len(self._count_text), COUNT_CELLS))
            self._count_text = text

    def value_changed(self, value: str) -> None:
        self.on_change(value)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()  # already told, by FilterInput.watch_value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(FilterDone(cleared=False, control=self))

    def action_clear(self) -> None:
        if self.input.value:
            self.input.value = ""  # tells on_change through the watcher
        else:
            self.value_changed("")
        self.post_message(FilterDone(cleared=True, control=self))
