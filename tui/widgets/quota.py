"""The per-provider pane: health, request budget, requests per minute,
credits, balance and tasks by state.

It is fed plain dicts (see ``provider_info``), built by the app from
``engine.status(name)`` when live or from ``store.counters()`` offline; it
never calls a provider itself.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Sparkline, Static

from ..model import STATES, epoch, iso
from .cells import clean
from .cells import STATE_SYMBOL, number

HEALTH = {
    "ok": ("●", "ok"),
    "backing_off": ("◌", "backing off"),
    "rate_limited": ("◌", "rate limited"),
    "auth_failed": ("✗", "key refused"),
    "quota_exhausted": ("✗", "quota exhausted"),
    "offline": ("○", "offline"),
    "paused": ("⏸", "paused"),
    "degraded": ("◐", "degraded"),
    "disabled": ("–", "disabled"),
}
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
    }


def info_from_status(status: Any, health: Any = None) -> dict:
    """An ``engine.ProviderStatus`` (and, when given, the worker's
    ``ProviderHealth`` for what the status leaves out) -> the pane's dict."""
    extras = _health_extras(health) if health is not None else {}
    if getattr(status, "cause", None):
        extras["cause"] = status.cause
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
    off = info.get("endpoints_off") or {}
    for name, d in sorted(off.items()):
        until = _clock(d.get("until"))
        text = f"{clean(name, 40)} off" + (f" until {until}" if until else "")
        reason = d.get("reason")
        if reason:
            text += f": {clean(str(reason), 120)}"
        lines.append(("endpoint", text))
    return lines


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


class QuotaPane(VerticalScroll):
    """Every configured provider, one card each."""

    def __init__(self, providers: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.providers = list(providers)

    def compose(self) -> ComposeResult:
        if not self.providers:
            yield Static(Text("No providers configured.", "dim"))
        for name in self.providers:
            yield ProviderCard(name)

    def show(self, infos: dict[str, dict], tasks: dict[str, dict[str, int]], now: float) -> None:
        for card in self.query(ProviderCard):
            card.show(infos.get(card.provider, {}), tasks.get(card.provider, {}), now)
