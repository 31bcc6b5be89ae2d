"""The per-provider pane: a compact table, one line per provider (state,
requests of the budget, balance with its unit, last answer: the words of
``tasktui quota``), read from the provider health the engine stored (never
from a live engine); ``enter`` on a row opens that provider's card below it
(health, request budget, requests per minute, credits, balance, tasks by state).

The cards are fed plain dicts (see ``info_from_status``/``info_from_counters``),
built by the app; nothing here calls a provider.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Sparkline, Static

from .. import actions
from ..healthfmt import (  # noqa: F401  (the table's words live there; re-exported for callers)
    HEALTH,
    SHORT_WORDS,
    TABLE_COLUMNS,
    answered_text,
    balance_text,
    requests_text,
    stored_health,
    table_row,
)
from ..model import STATES, epoch, iso
from .cells import clean
from .cells import STATE_SYMBOL, fit, number

RPM_MINUTES = 60


def _health_extras(source: Any) -> dict:
    """What a provider's health adds to its status: the cause of a bad state, the
    daily budgets per kind, the endpoints switched off and the last answer time.
    ``source`` is a ``ProviderHealth`` (live) or its stored blob (offline)."""
    get = source.get if isinstance(source, dict) else (lambda k, d=None: getattr(source, k, d))
    daily = get("daily") or {}
    off = get("endpoints_off") or {}
    return {
        "cause": get("cause"),
        "daily": {str(k): dict(v) for k, v in daily.items() if isinstance(v, dict)}
        if isinstance(daily, dict) else {},
        "endpoints_off": {str(k): dict(v) for k, v in off.items() if isinstance(v, dict)}
        if isinstance(off, dict) else {},
        "last_answer_at": get("last_answer_at"),
        "push": dict(get("push") or {}) if isinstance(get("push"), dict) else {},  # tui/push.py's counts
        # who polls this provider key when it is another process (tui/lease.py); the
        # decoded blob of an offline read has no such property: read it from a ProviderHealth
        "polled_by": getattr(source, "polled_by", None) if not isinstance(source, dict) else None,
    }


def info_from_status(status: Any, health: Any = None) -> dict:
    """An ``engine.ProviderStatus`` (and, when given, the worker's
    ``ProviderHealth`` for what the status leaves out) -> the pane's dict."""
    extras = _health_extras(health) if health is not None else {}
    if getattr(status, "cause", None):
        extras["cause"] = status.cause
    if getattr(status, "push", None):
        extras["push"] = dict(status.push)
    return {
        **extras,
        "state": "paused" if status.paused and status.state == "ok" else status.state,
        "retry_at": status.retry_at,
        "requests": status.requests,
        "errors": status.errors,
        "rate_limited": status.rate_limited,
        "credits_spent": status.credits_spent,
        "balance": status.balance,
        "balance_unit": status.balance_unit,
        "budget": status.budget,
        "budget_capacity": status.budget_capacity,
        "budget_available": status.budget_available,
        "rpm": list(status.rpm),
        "last_error": status.last_error,
    }


def info_from_counters(blob: dict, now: float, credits: float | None) -> dict:
    """A counters blob saved by the engine (``store.counters()[name]``) -> the pane's dict.

    Used offline: the state shown is ``offline`` (we are not polling), the last
    known one is kept as ``last_state``.
    """
    minute = int(now // 60)
    rpm_saved = blob.get("rpm") or {}
    rpm = []
    for m in range(minute - RPM_MINUTES + 1, minute + 1):
        try:
            rpm.append(int(rpm_saved.get(str(m), rpm_saved.get(m, 0)) or 0))
        except (TypeError, ValueError):
            rpm.append(0)
    return {
        "state": "offline",
        "last_state": blob.get("state"),
        "retry_at": blob.get("retry_at"),
        "requests": blob.get("requests"),
        "errors": blob.get("errors"),
        "rate_limited": blob.get("rate_limited"),
        "credits_spent": credits,
        "balance": blob.get("balance"),
        "balance_unit": blob.get("balance_unit"),
        "rpm": rpm,
        "last_error": blob.get("last_error"),
        **_health_extras(blob),
    }


def budget_used(budget: str, rpm: list[int]) -> tuple[float, str, int] | None:
    """``"100/h"`` and requests per minute -> (100, "hour", used in the last 60 min).

    Per-minute budgets count the current minute; per-second ones cannot be read
    from minute counts (None).
    """
    try:
        count_text, unit = budget.split("/", 1)
        count = float(count_text)
    except ValueError:
        return None
    if unit == "h":
        return count, "hour", sum(rpm[-60:])
    if unit == "m":
        return count, "minute", rpm[-1] if rpm else 0
    return None


def health_text(info: dict, now: float) -> str:
    """``"● ok"``, ``"◌ rate limited until 18:02:10"`` ... readable without colour."""
    state = str(info.get("state") or "ok")
    symbol, word = HEALTH.get(state, ("·", clean(state, 40)))
    retry_at = info.get("retry_at")
    if isinstance(retry_at, str):
        retry_at = epoch(retry_at)
    if isinstance(retry_at, (int, float)) and retry_at > now and state in (
            "rate_limited", "backing_off", "quota_exhausted", "offline"):
        word += f" until {(iso(retry_at) or '')[11:19]}"
    last = info.get("last_state")
    if last and last != "ok":
        word += f" (last: {HEALTH.get(str(last), ('', clean(last, 40)))[1]})"
    return f"{symbol} {word}"


def _clock(at: Any) -> str:
    """An epoch or ISO time -> ``HH:MM:SS`` (UTC, as everywhere on screen); '' if unknown."""
    if isinstance(at, str):
        at = epoch(at)
    if not isinstance(at, (int, float)):
        return ""
    return (iso(at) or "")[11:19]


def answer_age(info: dict, now: float) -> str | None:
    """How long ago the provider last answered (``"12s"``), None if never."""
    from .cells import ago

    at = info.get("last_answer_at")
    if isinstance(at, str):
        at = epoch(at)
    if not isinstance(at, (int, float)):
        return None
    return ago(max(0.0, now - at))


def health_lines(info: dict, now: float) -> list[tuple[str, str]]:
    """(label, text) lines the card adds for provider health: the cause of a bad
    state, the last answer, daily budgets per kind, endpoints switched off."""
    lines: list[tuple[str, str]] = []
    state = str(info.get("state") or "ok")
    cause = info.get("cause")
    if cause and state != "ok":
        lines.append(("cause", clean(str(cause), 200)))
    if info.get("polled_by"):  # a lease held by another process: its answers reach us through the store
        lines.append(("poller", clean(str(info["polled_by"]), 200)))
    age = answer_age(info, now)
    if age is not None:
        lines.append(("answered", f"{age} ago"))
    daily = info.get("daily") or {}
    if daily:
        parts = []
        for kind, d in sorted(daily.items()):
            try:
                used, limit = int(d.get("used") or 0), int(d.get("limit") or 0)
            except (TypeError, ValueError):
                continue
            part = f"{clean(kind, 40)} {used:,}/{limit:,}"
            if limit and used >= limit:
                reset = _clock(d.get("reset_at"))
                part += " spent" + (f" until {reset}" if reset else "")
            parts.append(part)
        if parts:
            lines.append(("daily", " · ".join(parts)))
    push = push_text(info.get("push"))
    if push:
        lines.append(("push", push))
    off = info.get("endpoints_off") or {}
    for name, d in sorted(off.items()):
        until = _clock(d.get("until"))
        text = f"{clean(name, 40)} off" + (f" until {until}" if until else "")
        reason = d.get("reason")
        if reason:
            text += f": {clean(str(reason), 120)}"
        lines.append(("endpoint", text))
    return lines


def push_text(push: Any) -> str | None:
    """The push receiver's counts in one line (tui/push.py: received, accepted,
    rejected by reason, polls saved); None when nothing was ever pushed."""
    if not isinstance(push, dict) or not push.get("received"):
        return None

    def n(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    rejected = {str(k): n(v) for k, v in (push.get("rejected") or {}).items() if n(v)} \
        if isinstance(push.get("rejected"), dict) else {}
    parts = [f"{n(push.get('received')):,} received", f"{n(push.get('accepted')):,} accepted"]
    if rejected:
        why = ", ".join(f"{clean(k.replace('_', ' '), 30)} {v:,}" for k, v in sorted(rejected.items()))
        parts.append(f"{sum(rejected.values()):,} rejected ({why})")
    parts.append(f"{n(push.get('polls_saved')):,} polls saved")
    return " · ".join(parts)


def problem(info: dict) -> str | None:
    """A short phrase for the header when a provider is in trouble, else None."""
    state = str(info.get("state") or "ok")
    if state in ("ok", "paused") or "last_state" in info:  # offline mode: the header says so
        return None
    return HEALTH.get(state, ("", clean(state, 40)))[1]


class ProviderCard(Vertical):
    """One provider: a few lines of text and a requests-per-minute sparkline."""

    def __init__(self, provider: str) -> None:
        super().__init__(classes="provider-card")
        self.provider = provider
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="card-text")
        yield Sparkline([0.0] * RPM_MINUTES, classes="card-spark")

    def show(self, info: dict, tasks: dict[str, int], now: float) -> None:
        state = str(info.get("state") or "ok")
        dim = "dim"
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{self.provider:<8} ", "bold")
        text.append(health_text(info, now))
        rpm = [int(n) for n in info.get("rpm") or []]
        if any(rpm):
            text.append(f"  {rpm[-1]} req/min", dim)
        text.append("\n requests ", dim)
        if info.get("requests") is None:
            text.append("none counted yet", dim)
        else:
            text.append(f"{number(info.get('requests'))} · errors {number(info.get('errors'))}"
                        f" · 429s {number(info.get('rate_limited'))}")
        budget = info.get("budget")
        if budget:
            text.append("\n budget   ", dim)
            text.append(str(budget))
            used = budget_used(str(budget), rpm)
            if used is not None:
                count, window, n = used
                text.append(f" · {n:,} used, {max(0, int(count) - n):,} left this {window}")
            else:
                available, capacity = info.get("budget_available"), info.get("budget_capacity")
                if available is not None and capacity:
                    text.append(f" · {number(available)} of {number(capacity)} ready now")
        text.append("\n credits  ", dim)
        text.append(f"{number(info.get('credits_spent'))} spent · balance ")
        balance = info.get("balance")
        if isinstance(balance, (int, float)):
            text.append(number(balance, clean(info.get("balance_unit") or "", 20)))
        else:
            text.append("n/a", dim)
        for label, line in health_lines(info, now):
            text.append(f"\n {label:<8} ", dim)
            text.append(line)
        text.append("\n tasks    ", dim)
        parts = [f"{STATE_SYMBOL[s]} {tasks[s]}" for s in STATES if tasks.get(s)]
        text.append("  ".join(parts) if parts else "none")
        key = (text.plain, tuple(rpm), state)
        if key == self._shown:
            return  # nothing changed: no repaint
        self._shown = key
        self.set_class(state not in ("ok", "paused", "offline"), "-trouble")
        self.query_one(".card-text", Static).update(text)
        spark = self.query_one(Sparkline)
        spark.display = any(rpm)  # a flat zero line would draw as a full bar
        if any(rpm):
            spark.data = [float(n) for n in rpm]


# ---------------------------------------------------------------- the compact table

NARROW_BELOW = 56  # table columns: under this the short words and titles


def table_titles(width: int) -> tuple[str, ...]:
    return TABLE_COLUMNS if width >= NARROW_BELOW else ("NAME", "STATE", "REQ", "BALANCE", "ANS")


def column_widths(width: int) -> tuple[int, ...]:
    """Cells of each column (a one-cell gap included) for a table ``width`` cells
    wide: the balance takes what the others leave."""
    if width >= NARROW_BELOW:
        provider, state, req, answer = 9, 16, 11, 7
    else:  # the side pane (47 columns)
        provider, state, req, answer = 8, 13, 8, 5
    return provider, state, req, max(8, width - provider - state - req - answer), answer


def table_width(pane: Any) -> int:
    """The cells the table may use: the pane's width less a cell kept for its
    scrollbar (there whenever a card makes the pane scroll), so the columns do
    not move when a card opens."""
    width = getattr(getattr(pane, "size", None), "width", 0) or 81
    return max(20, width - 1)


class QuotaTable(DataTable):
    """One line per provider (``tasktui quota``'s words); ``enter`` shows the
    provider's card below, ``esc`` goes back to the task list."""

    DEFAULT_CSS = """
    QuotaTable { height: auto; max-height: 8; overflow-x: hidden; }
    """

    BINDINGS = actions.bindings(actions.QUOTA)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True, cell_padding=0)
        self._widths: tuple[int, ...] | None = None
        self._lines: dict[str, tuple[str, ...]] = {}

    def show_rows(self, rows: list[tuple[str, ...]]) -> None:
        """Draw ``rows`` (from ``table_row``); only what changed is redrawn."""
        width = table_width(self.parent)
        widths = column_widths(width)
        if widths != self._widths:
            self._widths = widths
            self._lines = {}
            self.clear(columns=True)
            for key, title, w in zip(TABLE_COLUMNS, table_titles(width), widths):
                self.add_column(fit(title, w - 1) + " ", width=w, key=key)
        keys = {str(r.value) for r in self.rows}
        for row in rows:
            name = row[0]
            cells = tuple(fit(text, w - 1) + " " for text, w in zip(row, self._widths))
            if name not in keys:
                self.add_row(*(Text(c) for c in cells), key=name)
            elif self._lines.get(name) != cells:
                for title, c in zip(TABLE_COLUMNS, cells):
                    self.update_cell(name, title, Text(c))
            self._lines[name] = cells

    def selected(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def action_select_cursor(self) -> None:  # DataTable's own enter: the same as ours
        self.action_card()

    def action_card(self) -> None:
        name = self.selected()
        if name is not None:
            self.post_message(self.CardRequested(name))

    def action_leave(self) -> None:
        try:
            self.app.query_one("#tasks").focus()
        except Exception:
            self.screen.focus_next()

    class CardRequested(Message):
        def __init__(self, provider: str) -> None:
            super().__init__()
            self.provider = provider


class QuotaPane(VerticalScroll):
    """Every configured provider: the compact table (one line each, read from
    the stored provider health), and under it the card of the provider picked
    with ``enter`` (its detail: budget, credits, causes, requests per minute)."""

    def __init__(self, providers: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.providers = list(providers)
        self.card_shown: str | None = None  # the provider whose card is open
        self._now: float | None = None  # the time of the last drawing (a resize draws again)

    def compose(self) -> ComposeResult:
        if not self.providers:
            yield Static(Text("No providers configured.", "dim"))
            return
        yield QuotaTable(id="quota-table")
        yield Static(Text("enter: the provider's card", "dim"), id="quota-hint")
        for name in self.providers:
            card = ProviderCard(name)
            card.display = False
            yield card

    def show(self, infos: dict[str, dict], tasks: dict[str, dict[str, int]], now: float) -> None:
        for card in self.query(ProviderCard):
            card.show(infos.get(card.provider, {}), tasks.get(card.provider, {}), now)
        self.show_table(now)

    def show_table(self, now: float) -> None:
        """The table, from the stored provider health."""
        self._now = now
        if not self.providers:
            return
        store = getattr(self.app, "store", None)
        if store is None:
            return
        healths = stored_health(store, getattr(self.app, "config", None), self.providers, now)
        narrow = table_width(self) < NARROW_BELOW
        self.query_one(QuotaTable).show_rows([table_row(h, now, narrow) for h in healths])

    def on_resize(self) -> None:
        if self._now is not None:
            self.call_after_refresh(self.show_table, self._now)

    def on_quota_table_card_requested(self, event: QuotaTable.CardRequested) -> None:
        event.stop()
        self.open_card(event.provider)

    def open_card(self, provider: str | None) -> None:
        """Show ``provider``'s card (another one closes; the same one again closes it)."""
        if provider == self.card_shown:
            provider = None
        self.card_shown = provider
        for card in self.query(ProviderCard):
            card.display = card.provider == provider
            if card.display:
                self.call_after_refresh(self.scroll_to_widget, card, animate=False)
