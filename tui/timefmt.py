"""Times as people read them: one ``ago`` for the whole app (the dashboard and
the headless commands), absolute times, "tracked since" and ETAs.

No Textual here: ``tui.headless`` imports it.  Every time on screen is UTC, as
the ISO times of ``ls --json`` are.

Relative or absolute: the dashboard has a key that switches every time it
shows (list, summary, detail) between "12s ago" and "07:59:48"; the choice is
the module's ``mode`` (``RELATIVE`` or ``ABSOLUTE``), read at each drawing.
The headless commands never change it.
"""

from __future__ import annotations

import math
import time as _time
from datetime import datetime, timezone

RELATIVE = "relative"
ABSOLUTE = "absolute"
MODES = (RELATIVE, ABSOLUTE)
mode = RELATIVE  # what the dashboard shows now (the time key switches it)

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86400, 7 * 86400
WEEKS_FROM = 14 * DAY  # from two weeks on, ages are in weeks ("3w"), before in days ("13d")


def set_mode(value: str) -> str:
    """Show times relative ("12s ago") or absolute ("07:59:48"); returns the mode."""
    global mode
    if value not in MODES:
        raise ValueError(f"time mode must be one of {', '.join(MODES)}, not {value!r}")
    mode = value
    return mode


def toggle_mode() -> str:
    """Relative <-> absolute; returns the new mode."""
    return set_mode(ABSOLUTE if mode == RELATIVE else RELATIVE)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def ago(seconds: float | None) -> str:
    """A compact duration: ``"0s" "12s" "5m" "3h" "2d" "13d" "2w"``; ``"-"`` when
    unknown (None, NaN, infinite).  Negative durations (a clock a little behind
    the provider's) read ``"0s"``.  Units are cut, never rounded up: 119 s is "1m"."""
    if not _finite(seconds):
        return "-"
    s = int(max(0.0, float(seconds)))  # type: ignore[arg-type]
    if s < MINUTE:
        return f"{s}s"
    if s < HOUR:
        return f"{s // MINUTE}m"
    if s < DAY:
        return f"{s // HOUR}h"
    if s < WEEKS_FROM:
        return f"{s // DAY}d"
    return f"{s // WEEK}w"


def since(now: float, then: float | None) -> str:
    """How long ago ``then`` was: ``"now"`` under a second, else ``"12s ago"``;
    ``"-"`` when unknown."""
    if not _finite(then) or not _finite(now):
        return "-"
    text = ago(now - then)  # type: ignore[operator]
    return "now" if text == "0s" else f"{text} ago"


def until(now: float, then: float | None) -> str:
    """How long until ``then``: ``"in 12s"``, ``"now"`` once due or past; ``"-"`` when unknown."""
    if not _finite(then) or not _finite(now):
        return "-"
    left = then - now  # type: ignore[operator]
    if left < 1:
        return "now"
    return f"in {ago(left)}"


def _utc(ts: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None


def clock(ts: float | None, now: float | None = None, width: int = 8) -> str:
    """An absolute time in at most ``width`` cells (UTC): ``"07:59:48"`` on the day
    of ``now``, else ``"Jan 14"`` (``"2025-12"`` in another year); with width 5
    ``"07:59"`` / ``"01-14"`` / ``"2025"``.  ``"-"`` when unknown."""
    if not _finite(ts):
        return "-"
    dt = _utc(ts)  # type: ignore[arg-type]
    if dt is None:
        return "-"
    ref = _utc(now if _finite(now) else _time.time())  # type: ignore[arg-type]
    same_day = ref is not None and dt.date() == ref.date()
    same_year = ref is not None and dt.year == ref.year
    if width >= 8:
        if same_day:
            return dt.strftime("%H:%M:%S")
        return dt.strftime("%b %d") if same_year else dt.strftime("%Y-%m")
    if same_day:
        return dt.strftime("%H:%M")
    return dt.strftime("%m-%d") if same_year else dt.strftime("%Y")


def local_clock(ts: object) -> str:
    """``HH:MM:SS`` in local time (who polls "since" when, as ``quota`` and the header say
    it); ``?`` for no time or one the platform cannot show."""
    if isinstance(ts, bool) or not _finite(ts):
        return "?"
    try:
        return _time.strftime("%H:%M:%S", _time.localtime(ts))  # type: ignore[arg-type]
    except (OverflowError, OSError, ValueError):
        return "?"


def stamp(ts: float | None) -> str:
    """A full absolute time, ``"2027-01-15 07:59:48Z"``; ``"-"`` when unknown."""
    if not _finite(ts):
        return "-"
    dt = _utc(ts)  # type: ignore[arg-type]
    return "-" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%SZ")


def when(now: float, ts: float | None, *, width: int = 8) -> str:
    """A time in the current mode: ``since`` (relative) or ``clock`` (absolute)."""
    if mode == ABSOLUTE:
        return clock(ts, now, width)
    return since(now, ts)


def age(now: float, ts: float | None, *, width: int = 4) -> str:
    """The AGE cell in the current mode: ``"12m"`` or ``"07:59"``."""
    if mode == ABSOLUTE:
        return clock(ts, now, 5 if width >= 5 else width)
    if not _finite(ts):
        return "-"
    return ago(now - ts)  # type: ignore[operator]


def eta_left(now: float, start: float | None, expected: float | None) -> str | None:
    """``"~2m left"`` for a task started at ``start`` that is expected to take
    ``expected`` seconds; ``"overdue ~1m"`` once past; None when unknown."""
    if not _finite(start) or not _finite(expected) or expected <= 0:  # type: ignore[operator]
        return None
    left = start + expected - now  # type: ignore[operator]
    if left >= 1:
        return f"~{ago(left)} left"
    return f"overdue ~{ago(-left)}" if -left >= 1 else "due now"
