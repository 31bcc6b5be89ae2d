"""The top line: totals by state, and loud signs when polling is paused or a
provider is in trouble."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widgets import Static

from ..model import STATES
from ..text import clean
from ..timefmt import local_clock
from .cells import STATE_SYMBOL, STATE_WORD

COMPACT_BELOW = 110  # columns: tighter spacing, shorter labels


class StatusHeader(Static):
    """``tasktui ⏸ PAUSED ⚠ evolink rate limited ▶ 3 running ○ 1 queued … │ sort: updated``."""

    COMPONENT_CLASSES = {f"status-header--state-{s}" for s in STATES} | {
        "status-header--alert",
        "status-header--dim",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._args: dict[str, Any] | None = None

    def _style(self, name: str):
        return self.get_component_rich_style(f"status-header--{name}", partial=True)

    def show(self, counts: dict[str, int], *, total: int, paused: bool, offline: bool,
             troubles: list[tuple[str, str]], sort: str, shown: int | None,
             marked: int = 0, news: tuple[str, bool] | None = None,
             answers: list[tuple[str, str | None, str]] | None = None,
             reverse: bool = False, follow: bool = False, readonly: bool = False,
             pollers: list[tuple[str, str | None, int | None, float | None]] | None = None) -> None:
        """Redraw from plain numbers (the app gathers them from store and engine).
        ``news``: (finished-task news, any failed), shown right after the name.
        ``pollers``: provider keys another process polls (its lease, read from the
        store): (provider, host, pid, since)."""
        self._args = dict(counts=counts, total=total, paused=paused, offline=offline,
                          troubles=troubles, sort=sort, shown=shown, marked=marked, news=news,
                          answers=answers or [], reverse=reverse, follow=follow, readonly=readonly,
                          pollers=list(pollers or ()))
        self.update(self._fitted(), layout=False)  # one line, always

    def on_resize(self, event: events.Resize) -> None:
        if self._args is not None:
            self.update(self._fitted(), layout=False)

    def _fitted(self) -> Text:
        """The line with state words ("▶ 6 running") and who polls in full ("evolink
        polled by HOST (pid N) since T") when everything but the answer times fits;
        else who polls compact ("evolink ⇄ HOST:N"), then symbols only ("▶6"), so
        the marks, follow and sort stay in view at 80 columns."""
        args = dict(self._args or {})
        width = self.size.width
        if not width:
            return self._render_text(**args)
        for words, full in ((True, True), (True, False)):
            if self._render_text(**{**args, "answers": ()}, words=words, full=full).cell_len <= width:
                return self._render_text(**args, words=words, full=full)
        return self._render_text(**args, words=False, full=False)

    def _pollers(self, text: Text, pollers, full: bool, gap: str) -> None:
        """Who polls which provider key when another process does (its lease): one
        entry per holder and time, the providers it polls before it."""
        if not pollers:
            return
        dim = self._style("dim")
        groups: dict[tuple, list[str]] = {}
        for provider, host, pid, since in pollers:
            host = clean(str(host or "?"), 100) or "?"  # another process wrote it: inert text
            if not full:
                host = host.split(".")[0][:16] or "?"
            groups.setdefault((host, pid, since if full else None), []).append(clean(str(provider), 40))
        text.append("│ ", dim)
        for n, ((host, pid, since), providers) in enumerate(groups.items()):
            if n:
                text.append(" · ", dim)
            names = ", ".join(providers) if full else " ".join(providers)
            if full:
                who = f"{host} (pid {pid})" if isinstance(pid, int) else host
                text.append(f"{names} polled by {who} since {local_clock(since)}")
            else:
                text.append(f"{names} ⇄ {host}:{pid}" if isinstance(pid, int) else f"{names} ⇄ {host}")
        text.append(gap)

    def _render_text(self, counts, total, paused, offline, troubles, sort, shown, marked=0,
                     news=None, answers=(), reverse=False, follow=False, words=True, readonly=False,
                     pollers=(), full=True) -> Text:
        compact = self.size.width < COMPACT_BELOW
        gap = " " if compact else "  "
        dim = self._style("dim")
        alert = self._style("alert")
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" tasktui ", "bold")
        if readonly:  # --readonly (helper U2): no engine, no add/forget
            text.append(" READ-ONLY ", alert)
            text.append(" ")
        elif offline:
            text.append(" OFFLINE ", alert)
            text.append(" ")
        elif paused:
            text.append(" ⏸ PAUSED ", alert)
            text.append(" ")
        for provider, problem in troubles:
            text.append(f" ⚠ {provider} {problem} ", alert)
            text.append(" ")
        if news:
            said, bad = news
            text.append(f" {said} ", alert if bad else self._style("state-succeeded") + Style(reverse=True))
            text.append(" ")
        for state in STATES:
            n = counts.get(state, 0)
            if n:
                number = f"{STATE_SYMBOL[state]}{n:,}" if compact or not words else f"{STATE_SYMBOL[state]} {n:,}"
                text.append(f"{number} {STATE_WORD[state]}" if words else number, self._style(f"state-{state}"))
                text.append(gap)
        if total == 0:
            text.append("no tasks yet " if readonly else "no tasks yet, press a to add ", dim)
        self._pollers(text, pollers, full, " ")
        text.append("│ ", dim)
        if shown is not None:
            text.append(f"{shown:,}/{total:,} shown ", "bold")
            text.append("│ ", dim)
        if marked:
            text.append(f"* {marked:,} marked ", "bold")
            text.append("│ ", dim)
        if follow:
            text.append("FOLLOW ", "bold")
            text.append("│ ", dim)
        text.append(f"sort {sort}" if compact else f"sort: {sort}", dim)
        if reverse:
            text.append(" ↑ rev" if compact else " ↑ reversed", "bold")
        if answers and not compact:  # per provider, its last answer: stuck, idle or fresh
            text.append(" │ answered ", dim)
            for n, (provider, age, kind) in enumerate(answers):
                if n:
                    text.append(" · ", dim)
                if kind == "stuck":
                    text.append(f"{provider} {age}!", alert)
                elif kind == "idle":
                    text.append(f"{provider} idle", dim)
                else:
                    text.append(f"{provider} {age or 'not yet'}")
        return text

