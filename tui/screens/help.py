"""The help screen: every key (as currently bound) and the filter language."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from .. import actions

FILTER_HELP = [
    ("flux", "bare word: substring of id, label, model, provider, kind, state"),
    ("provider:evo", "field:value (provider, state/status, model, label, kind, id, error)"),
    ("state:failed", "a state by prefix, or a group: done, active, bad"),
    ("-state:done", "a leading - negates a term"),
    ('label:"batch 7"', "quotes keep spaces"),
    ("evo -label:test run", "several terms: all must match"),
]


# what the list's signs mean (readable without colour)
LIST_MARKS = [
    ("~7m", "AGE counted from when tasktui started tracking the task: the provider gave no creation time"),
    ("⚠  !", "the task is stalled (it cannot progress) · its polls are failing"),
    ("⧗", "its result links are in the last quarter of their stated lifetime, or expired, and nothing is "
          "downloaded (d downloads them; [results] auto_download does it as tasks succeed)"),
    ("↓ 37%", "a download under way (d), in place of the task's progress"),
    ("*", "a marked task (x, r, c and d act on the marks)"),
    ("POLLED", "when tasktui last asked for the task (L shows the column; the detail says when it asks next)"),
]


KEY_NAMES = {"escape": "esc", "slash": "/", "question_mark": "?", "enter": "enter"}


def binding_rows(bindings) -> list[tuple[str, str]]:
    """(keys, what) of a screen's BINDINGS, keys of the same action together."""
    rows: dict[str, list[str]] = {}
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        keys = [KEY_NAMES.get(k.strip(), k.strip()) for k in b.key.split(",")]
        rows.setdefault(b.description or b.action, []).extend(keys)
    return [(" ".join(dict.fromkeys(keys)), what) for what, keys in rows.items()]


# the sub-screens the help lists, in this order, from the one action table
SUB_SCREENS = (actions.DETAIL, actions.QUOTA, actions.ERRORS, actions.ERROR, actions.ADD)


def screen_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The keys of the sub-screens, from ``tui.actions`` (their BINDINGS are built
    from it or checked against it)."""
    out = []
    for screen in SUB_SCREENS:
        rows = actions.help_rows(screen)
        if screen == actions.ERRORS:
            rows.insert(0, ("enter", "the row's whole message"))
        out.append((actions.SCREEN_TITLES[screen], rows))
    return out


class HelpScreen(ModalScreen[None]):
    """``?`` opens it; ``esc``, ``?`` or ``q`` closes it."""

    BINDINGS = actions.bindings(actions.HELP)

    def __init__(self, keys: list[tuple[str, str]], saved: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys
        self.saved = saved

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog"):
            yield Static(self._content(), id="help-text")
        yield Footer()  # this screen's own keys, not the main screen's

    def _content(self) -> Table:
        outer = Table.grid(padding=(0, 0))
        outer.add_column()
        outer.add_row(Text("Keys", "bold"))
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for key, what in self.keys:
            keys.add_row(key, Text(what))
        outer.add_row(keys)
        outer.add_row("")
        outer.add_row(Text("Marks in the list", "bold"))
        marks = Table.grid(padding=(0, 2))
        marks.add_column(style="bold", no_wrap=True)
        marks.add_column()
        for mark, what in LIST_MARKS:
            marks.add_row(mark, Text(what))
        outer.add_row(marks)
        outer.add_row("")
        outer.add_row(Text("Filter language", "bold"))
        filt = Table.grid(padding=(0, 2))
        filt.add_column(style="bold", no_wrap=True)
        filt.add_column()
        for example, what in FILTER_HELP:
            filt.add_row(Text(example), Text(what))
        outer.add_row(filt)
        for title, rows in screen_sections():
            outer.add_row("")
            outer.add_row(Text(title, "bold"))
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold", no_wrap=True)
            table.add_column()
            for key, what in rows:
                table.add_row(key, Text(what))
            outer.add_row(table)
        if self.saved:
            outer.add_row("")
            outer.add_row(Text("Saved filters", "bold"))
            saved = Table.grid(padding=(0, 2))
            saved.add_column(style="bold", no_wrap=True)
            saved.add_column()
            for key, query in self.saved:
                saved.add_row(key, Text(query))
            outer.add_row(saved)
        outer.add_row("")
        graphics = getattr(self.app, "graphics", None)
        outer.add_row(Text.assemble(("Previews  ", "bold"), graphics.describe() if graphics is not None else
                                    "half-blocks (not asked: no terminal)",
                                    ("   [results] graphics, $TASKTUI_GRAPHICS", "dim")))
        outer.add_row("")
        outer.add_row(Text("esc or q closes · ctrl+p lists every command", "dim"))
        return outer
