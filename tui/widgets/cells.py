"""Small text formatters shared by the widgets: state badges, ages, bars.

Everything here returns plain strings; styling is applied by the caller from
the stylesheet.  A state is always shown as symbol + word so it reads the same
without colour (NO_COLOR, monochrome terminals, screen readers).
"""

from __future__ import annotations

import math

from rich.cells import cell_len, set_cell_size

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
    """A compact age: ``"now" "12s" "5m" "3h" "2d" "6w"``; ``"-"`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(max(0.0, seconds))
    if s < 1:
        return "now"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    if s < 86400 * 14:
        return f"{s // 86400}d"
    return f"{s // (86400 * 7)}w"


def since(now: float, then: float | None) -> str:
    """Age of an epoch timestamp, ``"12s ago"`` style (``"-"`` when unknown)."""
    if then is None:
        return "-"
    text = ago(now - then)
    return text if text == "now" else f"{text} ago"


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
