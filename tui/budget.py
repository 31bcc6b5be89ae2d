"""Request budgets: a token bucket under a hard sliding-window cap.

``Budget(100, 3600)`` ("100/h", a ``tui.config.RateLimit``) refills at 100 per hour and allows small
bursts (a tenth of the count), while the window guarantees that no window of
``per`` seconds ever holds more than ``count`` requests, which is what a
provider's limit means.  Time comes from an injectable monotonic clock.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable

class Budget:
    """How many requests a provider may send now.  ``take()`` spends one."""

    def __init__(self, count: float, per: float, clock: Callable[[], float] = time.monotonic,
                 burst: float | None = None) -> None:
        self.count = count
        self.per = per
        self.rate = count / per  # tokens per second
        self.capacity = float(burst if burst is not None else max(1, math.ceil(count / 10)))
        self.clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._window: deque[float] = deque()  # times of the requests in the last `per` s
        self._limit = max(1, int(count))
        # the window is kept a little longer than the period: the provider counts
        # arrivals, and two requests may travel at different speeds
        self._span = per + min(1.0, per * 0.01)

    @classmethod
    def for_provider(cls, count: float, per: float, concurrency: int,
                     clock: Callable[[], float] = time.monotonic) -> Budget:
        """A provider's budget: bursts of a tenth of the count, but at least one
        request per connection (``concurrency``)."""
        return cls(count, per, clock, burst=max(math.ceil(count / 10), min(int(count), concurrency)))

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        while self._window and self._window[0] <= now - self._span:
            self._window.popleft()

    @property
    def available(self) -> int:
        """Requests that could be sent right now."""
        self._refill(self.clock())
        return max(0, min(int(self._tokens + 1e-9), self._limit - len(self._window)))

    def take(self) -> bool:
        """Spend one request if the budget allows it now."""
        now = self.clock()
        self._refill(now)
        if self._tokens + 1e-9 < 1 or len(self._window) >= self._limit:
            return False
        self._tokens -= 1
        self._window.append(now)
        return True

    def wait_time(self) -> float:
        """Seconds until ``take()`` can succeed (0 when it can now)."""
        now = self.clock()
        self._refill(now)
        wait = 0.0
        if self._tokens + 1e-9 < 1:
            wait = (1 - self._tokens) / self.rate
        if len(self._window) >= self._limit:
            wait = max(wait, self._window[len(self._window) - self._limit] + self._span - now)
        return max(0.0, wait)

    def recent(self) -> list[float]:
        """Ages (seconds ago) of the requests still inside the window, for persisting."""
        now = self.clock()
        self._refill(now)
        return [round(now - t, 3) for t in self._window]

    def restore(self, ages: list[float]) -> None:
        """Count requests another run sent ``ages`` seconds ago against this window,
        and start the bucket short of what was spent within one refill of it."""
        now = self.clock()
        times = sorted(now - float(a) for a in ages if 0 <= float(a) < self._span)
        self._window = deque(times[-self._limit:])
        recent = sum(1 for t in times if t > now - self.capacity / self.rate)
        self._tokens = max(0.0, self.capacity - recent)
        self._stamp = now


class DailyBudget:
    """A provider's per-day request limit (Freepik: requests per key, service and
    day): ``limit`` requests per UTC day, counted on the wall clock, all of them
    available again at the next UTC midnight (``reset_at``).  Whether status polls
    count toward a provider's daily figure is rarely stated: they are counted."""

    DAY = 86400.0

    def __init__(self, limit: int, wall: Callable[[], float] = time.time) -> None:
        self.limit = max(0, int(limit))
        self.wall = wall
        self.used = 0
        self._day = int(wall() // self.DAY)

    def _roll(self) -> None:
        day = int(self.wall() // self.DAY)
        if day != self._day:
            self._day = day
            self.used = 0

    @property
    def available(self) -> int:
        self._roll()
        return max(0, self.limit - self.used)

    @property
    def reset_at(self) -> float:
        """Wall time (epoch seconds) when the count starts again from zero."""
        self._roll()
        return (self._day + 1) * self.DAY

    def take(self) -> bool:
        self._roll()
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def restore(self, used: object, reset_at: object) -> None:
        """What another run counted today (``reset_at`` names the day it counted)."""
        self._roll()
        if (isinstance(used, (int, float)) and not isinstance(used, bool) and math.isfinite(used)
                and isinstance(reset_at, (int, float)) and reset_at == (self._day + 1) * self.DAY):
            self.used = max(self.used, min(self.limit, max(0, int(used))))

    def to_dict(self) -> dict[str, float | int]:
        return {"limit": self.limit, "used": self.used, "reset_at": self.reset_at}
