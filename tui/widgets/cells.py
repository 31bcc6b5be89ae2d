"""Small text formatters shared by the widgets: state badges, ages, bars.

Everything here returns plain strings; styling is applied by the caller from
the stylesheet.  A state is always shown as symbol + word so it reads the same
without colour (NO_COLOR, monochrome terminals, screen readers).
"""

from __future__ import annotations

import math

from rich.cells import cell_len, set_cell_size

from .. import timefmt
from ..model import STATES
from ..text import MAX_TEXT
from ..text import clean as _clean

REDACTED = "[redacted]"
_secrets: tuple[str, ...] = ()


def set_secrets(values) -> None:
    """The API keys of the config: never shown, even if a provider echoes one back."""
    global _secrets
    found = {str(v) for v in values if v and len(str(v)) >= 4}
    _secrets = tuple(sorted(found, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every known API key replaced by ``[redacted]``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """``tui.text.clean`` for the screen: inert text, and no API key in it."""
    if _secrets and value is not None:
        value = redact(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return redact(_clean(value, limit)) if _secrets else _clean(value, limit)

STATE_SYMBOL = {
    "queued": "○",
    "running": "▶",
    "succeeded": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "not_found": "?",
    "unknown": "·",
}
STATE_WORD = {state: state.replace("_", " ") for state in STATES}


def state_label(state: str) -> str:
    """``"running"`` -> ``"▶ running"``; an unexpected state still reads."""
    return f"{STATE_SYMBOL.get(state, '·')} {STATE_WORD.get(state, state)}"


def ago(seconds: float | None) -> str:
    """A compact age (``tui.timefmt.ago``, the one the headless commands use too):
    ``"0s" "12s" "5m" "3h" "2d" "6w"``; ``"-"`` when unknown."""
    return timefmt.ago(seconds)


def since(now: float, then: float | None) -> str:
    """Age of an epoch timestamp, ``"12s ago"`` style (``"now"`` under a second,
    ``"-"`` when unknown)."""
    return timefmt.since(now, then)


def bar(progress: float | None, width: int) -> tuple[str, str]:
    """A ``width``-cell bar as (done, rest) parts, half-cell resolution: ``━━━╸`` + ``──``.

    The track is a thin line, so fill and track differ without colour too
    (NO_COLOR); the caller styles ``rest`` dim.  Unknown progress gives
    ``("", "")`` so the cell can stay blank.
    """
    if progress is None or width <= 0:
        return "", ""
    halves = int(round(max(0.0, min(100.0, progress)) / 100.0 * width * 2))
    done = "━" * (halves // 2) + ("╸" if halves % 2 else "")
    return done, "─" * (width - len(done))


def percent(progress: float | None) -> str:
    """``"62%"``, right-aligned in 4 cells; blank when unknown."""
    if progress is None:
        return "    "
    return f"{int(round(progress)):>3d}%"


def fit(text: str, width: int) -> str:
    """Cut or pad ``text`` to exactly ``width`` terminal cells (ellipsis when cut)."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
    return set_cell_size(text, width)


def fit_middle(text: str, width: int) -> str:
    """Like ``fit``, but a cut keeps both ends (``task-uni…5qfatx6d``): ids that
    share a long prefix stay apart."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    if width < 5:
        return fit(text, width)
    head = (width - 1) // 2
    tail = width - 1 - head
    end = text[-tail:]
    while cell_len(end) > tail:  # wide characters at the end
        end = end[1:]
    return set_cell_size(set_cell_size(text, head) + "…" + end, width)


def number(value: float | int | None, unit: str = "") -> str:
    """A count or amount for the quota pane: ``1234`` -> ``"1,234"``; None -> ``"-"``."""
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.2f}"
    else:
        text = f"{int(value):,}"
    return f"{text} {unit}".rstrip()


# ---------------------------------------------------------------- tracked since, learned durations

_tracked: dict[tuple, float] = {}  # (store, key, rev) -> tracked since (a re-added task starts afresh)


def tracked_since(store, task) -> float | None:
    """When the store started tracking ``task`` (the AGE a task without a provider
    creation time falls back to): the time of its first stored state, or, for a
    task never answered for, the time it was added (its ``updated_at``).  One
    indexed query per task, then remembered."""
    key = task.key
    memo = (id(store), key, task.rev)
    hit = _tracked.get(memo)
    if hit is not None:
        return hit
    first = None
    history = getattr(store, "history", None)
    if history is not None:
        try:
            rows = history(key)
        except Exception:  # a store that cannot answer now: unknown, asked again later
            rows = []
        if rows:
            first = rows[0][0]
    if first is None and task.state == "unknown":
        first = task.updated_at  # set when added, until the first answer
    if isinstance(first, (int, float)) and math.isfinite(first):
        if len(_tracked) >= 4096:
            _tracked.clear()
        _tracked[memo] = float(first)
        return float(first)
    return None


_learned: tuple[object, float, dict] = (None, -1.0, {})
LEARNED_EVERY = 10.0  # seconds the decoded durations are kept


def learned_duration(store, task, now: float) -> float | None:
    """The median duration learned for ``task``'s provider, kind and model from
    its finished tasks (as the engine stored it in the provider's health), or None."""
    global _learned
    if store is None:
        return None
    cached_store, at, table = _learned
    if cached_store is not store or not at <= now < at + LEARNED_EVERY:
        table = {}
        try:
            from ..engine.health import ProviderHealth

            for name, blob in (store.counters() or {}).items():
                health = ProviderHealth.decode(name, blob)
                for (kind, model), values in health.durations.items():
                    if values:
                        ordered = sorted(values)
                        table[(name, kind, model)] = ordered[len(ordered) // 2]
        except Exception:
            table = {}
        _learned = (store, now, table)
    return table.get((task.provider, task.kind or "", task.model or ""))


# ---------------------------------------------------------------- the list's time columns

OPTIONAL_COLUMNS = ("polled",)  # columns the list shows on demand (`L`, [ui] columns)
POLLED_WIDTH = 8  # cells of the POLLED column ("12s ago", "07:59:48")
columns: set[str] = set()  # the optional columns shown now


def set_columns(names) -> set[str]:
    """Show exactly the optional columns ``names`` (unknown names are ignored)."""
    columns.clear()
    columns.update(n for n in names if n in OPTIONAL_COLUMNS)
    return columns


def toggle_column(name: str) -> bool:
    """Show or hide an optional column; True when it is shown now."""
    if name in columns:
        columns.discard(name)
        return False
    if name in OPTIONAL_COLUMNS:
        columns.add(name)
        return True
    return False


def extra_width() -> int:
    """Cells the optional columns take at the end of a row (the list's other
    columns are laid out in what is left)."""
    return (1 + POLLED_WIDTH) if "polled" in columns else 0


TRACKED_MARK = "~"  # before an AGE read from when tasktui started tracking the task (no creation time)


def age_cell(task, now: float, width: int, store=None) -> str:
    """The AGE cell, exactly ``width`` cells, right-aligned: the age of the
    provider's creation time ("12m", or "07:48" with absolute times on), else
    ``~`` and the age of "tracked since" (always relative: it is approximate;
    the help explains the mark)."""
    if task.created_at is not None:
        text = timefmt.age(now, task.created_at, width=width)
    else:
        tracked = tracked_since(store, task) if store is not None else None
        text = "-" if tracked is None else TRACKED_MARK + timefmt.ago(now - tracked)
    return fit(text, width).rstrip().rjust(width) if cell_len(text) > width else text.rjust(width)


def ages_tail(task, now: float, age_width: int, updated_width: int, store=None) -> str:
    """The end of a list row: `` AGE  UPDATED`` (with absolute times the AGE
    takes one of the two spaces: ``07:48``) and the optional POLLED column."""
    updated = fit(timefmt.when(now, task.updated_at), updated_width)
    if timefmt.mode == timefmt.ABSOLUTE:
        tail = " " + age_cell(task, now, age_width + 1, store) + " " + updated
    else:
        tail = " " + age_cell(task, now, age_width, store) + "  " + updated
    if "polled" in columns:
        tail += " " + fit(timefmt.when(now, task.polled_at) if task.polled_at is not None else "-",
                          POLLED_WIDTH)
    return tail


def ages_header(age_width: int, updated_width: int) -> str:
    """The titles over ``ages_tail``."""
    head = fit("AGE", age_width).rjust(age_width) + "  " + fit("UPDATED", updated_width)
    if "polled" in columns:
        head += " " + fit("POLLED", POLLED_WIDTH)
    return head
