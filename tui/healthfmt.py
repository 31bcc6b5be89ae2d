"""Provider health in words: the lines of the dashboard's quota table, the same
words ``tasktui quota`` can print (state with a symbol, requests of the budget,
balance with its unit, the last answer), read from the stored
``tui.engine.health.ProviderHealth`` only.

No Textual here: the headless commands may import it.
"""

from __future__ import annotations

from typing import Any

from .widgets.cells import clean, number

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
TABLE_COLUMNS = ("PROVIDER", "STATE", "REQUESTS", "BALANCE", "ANSWER")
_PERIOD = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def stored_health(store: Any, config: Any, names: list[str], now: float) -> list:
    """Each provider's ``ProviderHealth`` as the engine last stored it (the one
    source of truth ``tasktui quota`` reads too): configured providers through
    ``tui.engine.health.read_health`` (their budget from the config), any other
    provider the store knows by decoding its blob.  Never asks a live engine."""
    from .engine.health import ProviderHealth, read_health

    out: dict[str, Any] = {}
    try:
        if getattr(config, "providers", None):
            out = {h.name: h for h in read_health(store, config, wall_now=now)}
    except Exception:  # a config that is not the typed one (tests): decode below
        out = {}
    missing = [n for n in names if n not in out]
    if missing:
        try:
            saved = store.counters() or {}
        except Exception:
            saved = {}
        for name in missing:
            out[name] = ProviderHealth.decode(name, saved.get(name))
    order = list(dict.fromkeys([*names, *out]))
    return [out[n] for n in order if n in out]


def requests_text(h: Any, now: float) -> str:
    """``"12/100h"``: requests sent inside the budget's window, of the budget
    (``"42 sent"`` when no budget is known)."""
    budget = getattr(h, "budget", None)
    try:
        count_text, unit = str(budget).split("/", 1)
        count = int(float(count_text))
        per = _PERIOD[unit] if unit in _PERIOD else float(unit.rstrip("s"))
    except (ValueError, AttributeError, KeyError):
        return f"{number(h.requests)} sent"
    used = sum(1 for t in h.recent if 0 <= now - t <= per)
    return f"{used:,}/{count:,}{unit}"


def balance_text(h: Any, narrow: bool = False) -> str:
    """The balance with its unit (``1,234.50 credits``; narrow: ``1.2k credits``), ``n/a`` if none."""
    if not isinstance(h.balance, (int, float)):
        return "n/a"
    unit = clean(h.balance_unit or "", 20)
    if narrow and abs(h.balance) >= 1000:
        value = float(h.balance)
        for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= size:
                return f"{value / size:.1f}{suffix} {unit}".rstrip()
    return number(h.balance, unit)


# the narrow table's state words (the side pane): what the card says in full
SHORT_WORDS = {"rate_limited": "limited", "backing_off": "backoff", "quota_exhausted": "no quota"}


def answered_text(h: Any, now: float) -> str:
    from .timefmt import ago

    at = h.last_answer_at
    if not isinstance(at, (int, float)):
        return "never"
    return ago(max(0.0, now - at))


def table_row(h: Any, now: float, narrow: bool = False) -> tuple[str, str, str, str, str]:
    """One provider's line: name, state (symbol + word), requests/budget, balance
    with its unit, how long since its last answer."""
    state = "disabled" if not getattr(h, "enabled", True) else str(h.state or "ok")
    symbol, word = HEALTH.get(state, ("·", clean(state, 40)))
    if narrow:
        word = SHORT_WORDS.get(state, word)
    answered = answered_text(h, now)
    return (clean(h.name, 40), f"{symbol} {word}", requests_text(h, now), balance_text(h, narrow),
            "-" if narrow and answered == "never" else answered)
