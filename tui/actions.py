"""Every action of the dashboard, listed once (Harlequin's ``actions.py`` is the model).

One row per action: its binding id (what ``[ui.keymap]`` remaps), its default
keys, the Textual action it runs, the footer's short label, the command
palette's title (None: not in the palette), the help text, whether the footer
shows it, and the screen it belongs to.  From this table come:

- the dashboard's ``App.BINDINGS`` and the detail screen's and help screen's
  ``BINDINGS`` (``bindings(screen)``);
- the help screen's key list (``help_rows``), the command palette's commands
  (``palette``) and the README's key table (``readme_table``; ``python -m
  tui.actions`` prints it);
- ``tui.config.BINDING_IDS`` (``binding_ids``), the ids a keymap may name.

The bindings of the screens and widgets owned elsewhere (the task list, the
filter bar, the error log, the add form, the confirmation) are listed here for
the help and the README; a test checks that their classes declare exactly
these ids and keys.

No Textual import at module level: ``tui.config`` (read by the headless
commands) imports this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

# screens (and widgets) an action belongs to, in the order the help lists them
MAIN = "main"  # the dashboard's main screen (App.BINDINGS)
LIST = "list"  # the task list widget
FILTER = "filter"  # the filter bar
DETAIL = "detail"  # one task in full
QUOTA = "quota"  # the quota table (enter on a row: the provider's card)
ERRORS = "errors"  # the error log
ERROR = "error"  # one error in full
ADD = "add"  # the add form
CONFIRM = "confirm"  # a yes/no question
HELP = "help"  # the help screen
SCREENS = (MAIN, LIST, FILTER, DETAIL, QUOTA, ERRORS, ERROR, ADD, CONFIRM, HELP)
SCREEN_TITLES = {
    MAIN: "Keys", LIST: "Moving in the list", FILTER: "In the filter", DETAIL: "In a task's detail",
    QUOTA: "In the quota table", ERRORS: "In the error log", ERROR: "On one error",
    ADD: "In the add form", CONFIRM: "When asked", HELP: "In the help screen",
}


@dataclass(frozen=True, slots=True)
class Action:
    """One action.  ``keys`` are Textual key names, comma-separated; ``more_keys``
    are bound too but never shown in the footer (``ctrl+c`` beside ``q``)."""

    id: str  # the binding id ([ui.keymap] names it)
    keys: str
    action: str  # the Textual action string ("sort_step(1)", "app.pop_screen")
    label: str  # the footer's word
    description: str  # what the help screen and the README say
    screen: str = MAIN
    footer: bool = True  # shown in the footer
    title: str | None = None  # the command palette's title (None: not offered there)
    more_keys: str = ""
    priority: bool = False

    @property
    def palette(self) -> bool:
        return self.title is not None


A = Action
ACTIONS: tuple[Action, ...] = (
    # ---- the main screen (the footer shows them in this order)
    A("filter", "slash", "filter", "Filter", "filter the list (narrows as you type; esc clears)",
      title="Filter"),
    A("detail", "enter", "detail", "Detail",
      "task detail: every field, freshness (last polled, next poll), ETA, state history, results with a"
      " preview of the image (Kitty, Sixel or half-blocks), the raw answer", title="Task detail"),
    A("help", "question_mark", "help", "Help", "this screen", title="Help"),
    A("quit", "q", "quit", "Quit", "quit", more_keys="ctrl+c"),
    A("add", "a", "add", "Add", "track tasks: paste many ids at once", title="Add tasks"),
    A("forget", "x", "forget", "Forget", "stop tracking the selected task, or the marked ones (asks first)",
      title="Forget task"),
    A("copy", "c", "copy_url", "Copy",
      "copy the first result URL (OSC 52, works over SSH; in tmux: set -g set-clipboard on);"
      " with marks, their ids", title="Copy result URL"),
    A("sort", "s", "sort", "Sort", "cycle sort: updated, created, state, provider, progress", title="Cycle sort"),
    A("refresh", "r", "refresh", "Refresh", "poll every live task now (with marks: only the marked ones)",
      title="Refresh now"),
    A("pause", "p", "pause", "Pause", "pause or resume polling", title="Pause or resume polling"),
    A("errors", "e", "errors", "Errors", "the error log, newest first", title="Error log"),
    A("quota", "v", "toggle_quota", "Quota",
      "show or hide the quota table (one line per provider; enter on a row shows its card)",
      footer=False, title="Toggle quota pane"),
    A("clear", "escape", "clear_filter", "Clear filter", "clear the filter", footer=False, title="Clear filter"),
    A("mark", "space", "toggle_mark", "Mark",
      "mark or unmark the selected task (then x, r and c act on the marked tasks)", title="Mark or unmark task"),
    A("mark_all", "asterisk", "mark_all", "Mark all shown", "mark every task shown (the filter's matches)",
      footer=False, title="Mark all shown"),
    A("unmark", "u", "clear_marks", "Unmark all", "clear every mark", footer=False, title="Unmark all"),
    A("notify", "n", "toggle_notify", "Notifications",
      "turn finished-task news (in the header) and the bell on or off", footer=False,
      title="Toggle notifications"),
    A("sort.next", "greater_than_sign", "sort_step(1)", "Sort by next column",
      "sort by the next column (a click on a column title sorts by it; again reverses)", footer=False,
      title="Sort by next column"),
    A("sort.prev", "less_than_sign", "sort_step(-1)", "Sort by previous column", "sort by the previous column",
      footer=False, title="Sort by previous column"),
    A("sort.reverse", "S", "sort_reverse", "Reverse sort", "reverse the sort", footer=False,
      title="Reverse sort"),
    A("follow", "f", "toggle_follow", "Follow",
      "follow mode: the cursor stays on the most recently changed task", footer=False, title="Follow mode"),
    A("open", "o", "open_result", "Open",
      "open the result in a browser or viewer (over SSH: copy its URL)", title="Open result"),
    A("download", "d", "download", "Download",
      "download the task's results into [results] dir (else the current folder)", title="Download results"),
    A("retry", "R", "retry_provider", "Retry provider",
      "retry the selected task's provider now (after a refused key, an empty account, a backoff)",
      footer=False, title="Retry provider now"),
    A("reload", "ctrl+r", "reload_config", "Reload config",
      "reload the config (keys, rates, providers) without restarting; SIGHUP does the same",
      footer=False, title="Reload config"),
    A("time", "t", "toggle_time", "Times",
      "times relative (12s ago) or absolute (07:59:48 UTC), in the list, the summary and the detail",
      footer=False, title="Relative or absolute times"),
    A("column.polled", "L", "toggle_polled_column", "Polled column",
      "show or hide the POLLED column (when each task was last asked; [ui] columns)", footer=False,
      title="Toggle the last-polled column"),
    *(A(f"saved.{n}", str(n), f"saved_filter({n})", f"Saved filter {n}", f"apply saved filter {n} ([ui] saved_filters)",
        footer=False) for n in range(1, 10)),
    # ---- the task list (tui/widgets/task_list.py declares them)
    A("list.down", "down,j", "cursor_down", "Down", "next task", screen=LIST, footer=False),
    A("list.up", "up,k", "cursor_up", "Up", "previous task", screen=LIST, footer=False),
    A("list.page_down", "pagedown", "page_down", "Page down", "a page down", screen=LIST, footer=False),
    A("list.page_up", "pageup", "page_up", "Page up", "a page up", screen=LIST, footer=False),
    A("list.first", "home,g", "first", "First", "the first task", screen=LIST, footer=False),
    A("list.last", "end,G", "last", "Last", "the last task", screen=LIST, footer=False),
    # ---- the filter bar (tui/widgets/filter_bar.py)
    A("filter.clear", "escape", "clear", "Clear filter", "clear the filter and leave it", screen=FILTER),
    # ---- a task's detail (tui/screens/detail.py)
    A("detail.back", "escape,q", "app.pop_screen", "Back", "back to the list", screen=DETAIL),
    A("detail.copy", "c", "copy_result", "Copy URL", "copy the result shown (OSC 52)", screen=DETAIL),
    A("detail.copy_id", "i", "copy_id", "Copy id", "copy the task id", screen=DETAIL),
    A("detail.copy_raw", "J", "copy_raw", "Copy JSON",
      "copy the last answer as JSON (API keys redacted)", screen=DETAIL),
    *(A(f"detail.result.{n}", str(n), f"copy_result({n})", f"Copy result {n}",
        f"show and copy result {n}", screen=DETAIL, footer=False) for n in range(1, 10)),
    A("detail.prev", "left", "step(-1)", "Prev result", "the previous result", screen=DETAIL, priority=True),
    A("detail.next", "right", "step(1)", "Next result", "the next result", screen=DETAIL, priority=True),
    # ---- the quota table (tui/widgets/quota.py)
    A("quota.card", "enter", "card", "Card", "the provider's card: budget, credits, causes, requests per minute",
      screen=QUOTA),
    A("quota.back", "escape", "leave", "Back to the list", "back to the task list", screen=QUOTA, footer=False),
    # ---- the error log (tui/screens/errors.py)
    A("errors.back", "escape", "back", "Back", "back (clears the log's filter first)", screen=ERRORS),
    A("errors.quit", "q", "back", "Back", "back", screen=ERRORS, footer=False),
    A("errors.filter", "slash", "focus_filter", "Filter", "filter the log", screen=ERRORS),
    A("errors.jump", "g", "jump", "Go to task", "Go to task: the row's task, in the list", screen=ERRORS),
    A("errors.copy", "c", "copy", "Copy message", "copy the row's message", screen=ERRORS),
    # ---- one error in full (tui/screens/errors.py)
    A("error.jump", "enter,g", "jump", "Go to task", "Go to task: the error's task, in the list", screen=ERROR),
    A("error.copy", "c", "copy", "Copy message", "copy the message", screen=ERROR),
    A("error.back", "escape,q", "close", "Back", "back to the log", screen=ERROR),
    # ---- the add form (tui/screens/add.py)
    A("add.cancel", "escape", "cancel", "Cancel", "cancel (asks first when the form is filled)", screen=ADD,
      priority=True),
    A("add.submit", "ctrl+s", "submit", "Add", "add the ids shown", screen=ADD),
    # ---- a yes/no question (tui/screens/confirm.py)
    A("confirm.yes", "y", "answer(True)", "Yes", "yes", screen=CONFIRM),
    A("confirm.no", "n,escape", "answer(False)", "No", "no", screen=CONFIRM),
    # ---- the help screen (tui/screens/help.py)
    A("help.close", "escape,question_mark,q", "dismiss", "Close", "close this screen", screen=HELP),
)
del A

BY_ID: dict[str, Action] = {a.id: a for a in ACTIONS}
assert len(BY_ID) == len(ACTIONS), "an action id is listed twice"


def binding_ids() -> tuple[str, ...]:
    """Every binding id, in table order (``tui.config.BINDING_IDS``)."""
    return tuple(a.id for a in ACTIONS)


def for_screen(screen: str) -> list[Action]:
    return [a for a in ACTIONS if a.screen == screen]


def bindings(screen: str) -> list[Any]:
    """``textual.binding.Binding`` objects of one screen, in table order."""
    from textual.binding import Binding

    out = []
    for a in for_screen(screen):
        out.append(Binding(a.keys, a.action, a.label, show=a.footer, id=a.id, priority=a.priority))
        if a.more_keys:
            out.append(Binding(a.more_keys, a.action, a.label, show=False, id=a.id, priority=a.priority))
    return out


KEY_NAMES = {
    "escape": "esc", "slash": "/", "question_mark": "?", "asterisk": "*", "greater_than_sign": ">",
    "less_than_sign": "<", "down": "↓", "up": "↑", "left": "←", "right": "→", "pagedown": "PgDn",
    "pageup": "PgUp", "home": "Home", "end": "End",
}


def key_display(key: str) -> str:
    """``"question_mark"`` -> ``"?"``; ``"ctrl+c"`` stays."""
    return KEY_NAMES.get(key.strip(), key.strip())


def keys_display(action: Action, *, more: bool = True) -> str:
    keys = action.keys.split(",") + (action.more_keys.split(",") if more and action.more_keys else [])
    return " ".join(dict.fromkeys(key_display(k) for k in keys))


def _runs(actions: list[Action]) -> Iterator[tuple[str, str]]:
    """(keys, what) rows; runs of numbered actions (saved.1..9) become one row."""
    i = 0
    while i < len(actions):
        a = actions[i]
        head, _, tail = a.id.rpartition(".")
        if tail.isdigit() and head:
            run = [b for b in actions[i:] if b.id.rpartition(".")[0] == head]
            first, last = run[0], run[-1]
            what = re.sub(rf"\b{re.escape(tail)}\b", "N", first.description)
            yield f"{keys_display(first)}–{keys_display(last)}", what
            i += len(run)
            continue
        yield keys_display(a), a.description
        i += 1


def help_rows(screen: str) -> list[tuple[str, str]]:
    """(keys, what) of one screen, with its default keys."""
    return list(_runs(for_screen(screen)))


def palette(screen: str = MAIN) -> list[Action]:
    """The actions the command palette offers."""
    return [a for a in for_screen(screen) if a.palette]


README_BEGIN = "<!-- keys: generated by `python -m tui.actions` from tui/actions.py; do not edit -->"
README_END = "<!-- /keys -->"


def readme_table() -> str:
    """The README's key tables, every screen, generated from the table."""
    lines = [README_BEGIN]
    for screen in SCREENS:
        rows = help_rows(screen)
        if not rows:
            continue
        lines += ["", f"**{SCREEN_TITLES[screen] if screen != MAIN else 'Main screen'}**", "",
                  "| key | action |", "|---|---|"]
        for keys, what in rows:
            shown = " ".join(f"`{k}`" for k in keys.split(" "))
            lines.append(f"| {shown} | {what.replace('|', '/')} |")
    lines += ["", README_END]
    return "\n".join(lines)


def readme_keys_section(text: str) -> str | None:
    """The generated part of a README (markers included), or None when it has none."""
    start = text.find(README_BEGIN)
    end = text.find(README_END)
    if start < 0 or end < start:
        return None
    return text[start:end + len(README_END)]


def write_readme(path: str) -> bool:
    """Put the generated tables into the README at ``path`` (between the markers);
    True when the file changed."""
    from pathlib import Path

    file = Path(path)
    text = file.read_text(encoding="utf-8")
    old = readme_keys_section(text)
    if old is None:
        raise SystemExit(f"{path}: no generated key section (markers {README_BEGIN!r} ... {README_END!r})")
    new = text.replace(old, readme_table())
    if new != text:
        file.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> None:
    """``python -m tui.actions`` prints the README's key tables;
    ``python -m tui.actions --write README.md`` puts them in place."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--write"] and len(args) == 2:
        print(f"{args[1]}: {'updated' if write_readme(args[1]) else 'already up to date'}")
        return
    print(readme_table())


if __name__ == "__main__":
    main()
