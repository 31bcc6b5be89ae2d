"""Simulated time: seconds since the scenario's start, at a chosen speed."""

from __future__ import annotations

import threading
import time
from typing import Callable


class SimClock:
    """``now()`` = offset + real seconds elapsed x ``speed``.

    ``speed=0`` freezes time (tests move it with ``advance``/``set``); ``speed=10``
    runs lifecycles ten times faster than real time.  Thread safe.
    """

    def __init__(self, speed: float = 1.0, start: float = 0.0,
                 timer: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._timer = timer
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._base = float(start)  # sim time at real time _t0
        self._t0 = timer()

    def now(self) -> float:
        with self._lock:
            return self._base + (self._timer() - self._t0) * self._speed

    def advance(self, seconds: float) -> float:
        """Jump ``seconds`` of sim time forward; returns the new time."""
        with self._lock:
            self._base += float(seconds)
        return self.now()

    def set(self, t: float) -> float:
        """Jump to sim time ``t`` (backwards too)."""
        with self._lock:
            self._base = float(t)
            self._t0 = self._timer()
        return t

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value < 0:
            raise ValueError("speed must be >= 0")
        now = self.now()
        with self._lock:
            self._base, self._t0, self._speed = now, self._timer(), float(value)

    @property
    def scale(self) -> float:
        """Sim seconds per real second, for converting a provider's "wait N s"
        into a window on the sim timeline (1 when frozen)."""
        return self._speed if self._speed > 0 else 1.0

    def __repr__(self) -> str:
        return f"SimClock(t={self.now():.3f}, speed={self._speed})"
