"""When a live task is polled next: the pure scheduling policy.

Nothing here sends a request, reads a clock or touches the store: each
function takes the times it needs and returns what it decides.  ``plan``
returns a ``Plan`` (the wait, its slack and the prediction it made);
``Schedule.adopt`` is where a caller makes it the task's schedule.
"""

from __future__ import annotations

import bisect
import math
import random
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Callable

from ..config import DEFAULT_MAX_BACKOFF, DEFAULT_MAX_INTERVAL
from ..model import TERMINAL, Task

MAX_INTERVAL = DEFAULT_MAX_INTERVAL  # longest wait between two polls of one live task (engine max_interval)
BACKOFF_CAP = DEFAULT_MAX_BACKOFF  # longest wait after transient failures (engine max_backoff)
QUIET_CAP = 60.0  # longest wait between two polls of a task whose end cannot be foreseen
RESOLUTION = 1.0  # seconds: providers give created/eta in whole seconds, progress in whole points
TOLERANCE = 0.01  # a delay of this share of a task's length is not worth a request to avoid
STALLED = 2.0  # progress that has not moved for this many points' worth of time: the rate is stale
QUIET_SHARE = 0.25  # without a prediction, wait this share of the time the task has been quiet
PRIOR_MIN = 5  # learned durations needed before they are gone by
PRIOR_SIZE = 64  # learned durations kept per provider, kind and model (the latest)
SPREAD = 0.15  # a learned duration says "tasks like it end within this share of it, either side"
PRIOR_TOLERANCE = 0.05  # inside the learned ends, an end is seen within this share of the typical duration
GAP = 8.0  # a true gap between learned durations is this many times their spacing on either side (Durations._gap)
MAX_KINDS = 256  # (provider, kind, model) triples learned at most: provider text must not grow memory or the counters

Prediction = tuple[float, float, float, float]  # (made at, earliest, latest, likeliest end)


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``plan`` decided for one task: wait ``wait`` seconds, a poll up to
    ``slack`` later costs nothing, and the prediction state to keep."""

    wait: float
    slack: float
    predicted: Prediction | None = None
    expired: float | None = None
    prior_end: float | None = None
    rate_end: float | None = None  # the end the measured progress rate made likely


@dataclass(slots=True)
class Schedule:
    """What the engine remembers about one task between polls (monotonic times)."""

    due: float = 0.0
    interval: float = 0.0
    last_poll: float | None = None
    last_change: float | None = None
    signature: tuple | None = None  # (state, provider_status, progress) of the last answer
    progress_start: tuple[float, float] | None = None  # (progress, time): first seen above 0
    rate: float | None = None  # progress points per second
    fails: int = 0
    polls: int = 0
    slack: float = 0.0  # the next poll may come this much after ``due`` at no loss (see ``plan``)
    first_seen: float | None = None  # time of the first answer
    born: float | None = None  # when the task began: the provider's created_at, else first seen
    moved: float | None = None  # when the progress was first seen at its current value
    unstarted: float | None = None  # the last answer with progress 0 (the task began its work after it)
    predicted: Prediction | None = None  # (made at, earliest, latest, likeliest end)
    expired: float | None = None  # the likeliest end last predicted, passed with the task still running
    prior_end: float | None = None  # the end the learned durations made likely at the last answer
    rate_end: float | None = None  # the end the measured progress rate made likely at the last answer
    fail_since: float | None = None  # wall time of the first failed poll in a row
    path: tuple[str | None, str | None] | None = None  # (kind, the path its status is asked at)

    @property
    def began(self) -> float | None:
        """When the task began its work, as far as known: after its last answer at
        progress 0, else when it was born (its queue time included)."""
        if self.born is None or self.unstarted is None:
            return self.born
        return max(self.born, self.unstarted)

    def adopt(self, p: Plan, now: float) -> None:
        """Make a plan made at ``now`` this task's schedule."""
        self.interval, self.slack = p.wait, p.slack
        self.predicted, self.expired, self.prior_end = p.predicted, p.expired, p.prior_end
        self.rate_end = p.rate_end
        self.due = now + p.wait


class Durations:
    """How long finished tasks of one provider, kind and model took (seconds
    from their start to their end, the latest ``PRIOR_SIZE``), learned as
    tasks end: what the engine knows of a task that reports nothing but its
    state."""

    __slots__ = ("_recent", "_sorted")

    def __init__(self, values: list[float] | None = None) -> None:
        self._recent: deque[float] = deque(maxlen=PRIOR_SIZE)
        self._sorted: list[float] = []
        for value in values or ():
            self.add(value)

    def __len__(self) -> int:
        return len(self._recent)

    def add(self, seconds: float) -> None:
        if not (seconds > 0 and math.isfinite(seconds)):
            return
        if len(self._recent) == self._recent.maxlen:
            old = self._recent[0]
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._recent.append(seconds)
        bisect.insort(self._sorted, seconds)

    def shortest(self) -> float | None:
        """The shortest learned duration (None before any was learned)."""
        return self._sorted[0] if self._sorted else None

    def values(self) -> list[float]:
        """The learned durations, oldest first (what the counters save)."""
        return list(self._recent)

    def typical(self) -> float | None:
        """The median learned duration (None before any was learned)."""
        return self._sorted[len(self._sorted) // 2] if self._sorted else None

    def scale(self) -> float:
        """The usual length of these tasks: the mean of the learned durations
        between their 10th and 90th percentiles (steadier than the median when
        tasks of one kind come in a few typical lengths, and than the mean when
        a few take far longer)."""
        values = self._sorted
        n = len(values)
        middle = values[n // 10: n - n // 10] or values
        return sum(middle) / len(middle)

    def step(self, floor: float) -> float | None:
        """The step through the learned ends: ``PRIOR_TOLERANCE`` of the usual
        length, at least ``floor``; None before ``PRIOR_MIN`` were learned."""
        if len(self._sorted) < PRIOR_MIN:
            return None
        return max(floor, PRIOR_TOLERANCE * self.scale())

    def _gap(self, k: int) -> bool:
        """Is the space between the learned durations ``k - 1`` and ``k`` a true gap
        (tasks of the kind come in groups), not the chance spacing of a smooth
        spread?  A true gap has ``PRIOR_MIN`` durations on either side and is
        ``GAP`` times wider (in ratio) than their mean spacing on either side.
        Among 40 durations of a heavy-tailed kind a spacing of a third of a
        length is common and holds the ends of about one task in forty: skipping
        such spacings made three of a batch of 40 late by 12-20 s, and skipping
        up to a lone far duration four late by 9-65 s (bench/thrift.py, seeds 3
        and 10)."""
        values = self._sorted
        below = values[max(0, k - PRIOR_MIN): k]
        above = values[k: k + PRIOR_MIN]
        if len(below) < PRIOR_MIN or len(above) < PRIOR_MIN:
            return False  # a few far lengths are a tail, not a group
        wide = math.log(values[k] / values[k - 1])
        spacings = [math.log(side[-1] / side[0]) / (len(side) - 1) for side in (below, above)]
        return wide > GAP * max(spacings)

    def next_poll(self, age: float, floor: float, shared: bool = False) -> tuple[float, float] | None:
        """(the age at which to ask next, the last likely end): where the learned
        ends are (each learned duration widened by ``SPREAD`` either side), a poll
        every ``Durations.step``; in a gap between them none, the first poll one
        step into the next stretch of likely ends.  ``shared``: one list request
        answers for every live task of the kind, and only a true gap (``_gap``)
        is skipped.  None when fewer than ``PRIOR_MIN`` durations were learned,
        or the task is older than every learned end (widened)."""
        values = self._sorted
        if len(values) < PRIOR_MIN:
            return None
        k = bisect.bisect_right(values, age / (1.0 + SPREAD))  # learned ends whose stretch is not behind
        if k >= len(values):
            return None
        step = self.step(floor)  # (PRIOR_MIN learned: never None here)
        last = values[-1] * (1.0 + SPREAD)
        lo = values[k] * (1.0 - SPREAD)
        if lo <= age or (shared and k > 0 and not self._gap(k)):  # inside a stretch of likely ends
            return age + step, last
        return lo + step, last


def predict_end(sched: Schedule, task: Task, now: float,
                wall_now: float) -> tuple[float, float, float, bool] | None:
    """(earliest, likeliest, latest, confirmed): when the task should end, on the
    engine's clock, from its progress rate and the provider's eta; None when
    there is neither, or both have run out while the task still runs.

    Each source is an interval as wide as what it is made of: an eta and a
    creation time in whole seconds; a rate measured over ``dp`` whole points
    (off by up to a point at each end) and the current progress (a point).
    Two sources that overlap narrow and confirm each other; apart, the
    prediction spans both, the earlier is the likeliest, and it is not
    confirmed.  A rate alone is confirmed when the prediction made at the
    previous answer still overlaps.  A rate whose progress has not moved for
    ``STALLED`` points' worth of time predicts nothing."""
    found: list[tuple[float, float, float]] = []
    rate = sched.rate
    measured = bool(rate and rate > 0 and sched.progress_start is not None)
    points = task.progress - sched.progress_start[0] if measured and task.progress is not None else 0.0
    began = sched.began
    if (not measured and task.progress and task.progress > 0 and began is not None
            and now - began >= RESOLUTION):
        # progress seen, no rate measured yet: progress over the time since the task was last
        # seen at 0 (else its age, its queue time included) is the slowest it can have been
        # going, an end no later than that (an eta far beyond it is a guess to approach from
        # the earlier side; without an eta it is the end to be there by at the latest)
        rate, points = task.progress / (now - began), task.progress
    if rate and rate > 0 and task.progress is not None and points > 0:
        remaining = (100.0 - task.progress) / rate
        moving = sched.moved is None or (now - sched.moved) * rate <= STALLED
        if remaining > 0 and moving:
            slack = remaining / max(1.0, points)
            point = 1.0 / rate
            found.append((now + max(0.0, remaining - slack - point) if measured else now, now + remaining,
                          now + remaining + slack + point * 0.5))
    rate_based = bool(found) and measured
    if task.eta and task.created_at:
        remaining = task.created_at + task.eta - wall_now
        if remaining > 0:  # an eta that ran out while the task runs is stale
            found.append((now + max(0.0, remaining - 1.5 * RESOLUTION), now + remaining,
                          now + remaining + 1.5 * RESOLUTION))
    if not found:
        return None
    prior = sched.predicted
    if len(found) == 2:
        (a0, a, a1), (b0, b, b1) = found
        if not measured:  # a bound and a guess: approach the earlier, confirm nothing
            return min(a0, b0), min(a, b), max(a1, b1), False
        lo, hi = max(a0, b0), min(a1, b1)
        if lo <= hi:
            best = a if a1 - a0 <= b1 - b0 else b
            return lo, min(max(best, lo), hi), hi, True
        if measured and sched.rate_end is not None and a0 <= sched.rate_end <= a1:
            # the rate kept its word since the last answer: the eta is the guess (estimates
            # are often off by half), the measured progress is what to go by
            return a0, a, a1, True
        return min(a0, b0), min(a, b), max(a1, b1), False
    lo, best, hi = found[0]
    confirmed = rate_based and prior is not None and prior[0] < now and prior[1] <= hi and lo <= prior[2]
    return lo, best, hi, confirmed


def plan(floor: float, sched: Schedule, task: Task, now: float, wall_now: float,
         adaptive: bool = True, cap: float = MAX_INTERVAL, quiet_cap: float | None = None,
         durations: Durations | None = None, spread: float = 0.0, shared: bool = False) -> Plan:
    """The next poll of a live task: ``Plan.wait`` seconds from ``now``, and how
    much later (``Plan.slack``) that poll may come at no loss (a list request,
    which refreshes many tasks at once, waits for the first task whose slack
    has run out).  ``sched`` is read, never changed: ``Schedule.adopt`` applies
    the plan.

    ``floor`` (the configured poll_interval) is the minimum, ``cap`` the
    maximum.  With a predicted end (progress rate, eta; see ``predict_end``):

    - not confirmed: halfway to the likeliest end (a poll to learn more, which
      may slip by half as much again);
    - confirmed and sharp (no wider than the floor or a ``TOLERANCE`` share of
      the task's length): at its latest end, the first poll after the end;
    - confirmed but wide: a step past its earliest end (or halfway, if later).

    Without a prediction: when ``durations`` have been learned from finished
    tasks like it (``PRIOR_MIN`` at least), where their ends lie a poll every
    ``PRIOR_TOLERANCE`` of their usual length, none before the shortest or in
    a gap between them (``Durations.next_poll``), at most ``quiet_cap`` apart.
    The step is the same for every task of the kind: what a user waits to see
    an end is about the same for each, and a task gets no closer watch for
    being short.  Else a ``QUIET_SHARE`` of the time the task has been quiet
    (since its last change, or since the last likely end it has outlived), at
    most ``quiet_cap`` and, with durations learned, at least that step: an end
    nothing foretold is seen within a fifth of that time.

    ``spread``: how far apart the request budget lets each live task be asked
    when it runs short (Upscayl: 100 an hour).  The polls made only to learn
    more (halfway to an end nothing confirmed, a quiet task with nothing learned)
    come at least that far apart, never past the latest predicted end and never
    past the end its progress over its age makes certain; a poll at a confirmed
    end, or where learned ends lie, keeps its time: the budget goes where the
    ends are.

    ``shared``: a list request answers for every live task of the kind
    (Freepik), so a poll through a chance spacing between learned lengths costs
    one request for all of them, and only a true gap is skipped
    (``Durations._gap``).  A task asked on its own (Comfy) skips every spacing
    wider than the learned ends' ``SPREAD``: polling through them cost more
    than the p95 they gained (measured: 20.5 requests a task against 19.5).
    """
    predicted, expired, prior_end = sched.predicted, sched.expired, sched.prior_end
    if spread > 0:  # each task its own share of it, so the tasks asked together drift apart
        spread *= 0.75 + 0.5 * (zlib.crc32(task.key.encode("utf-8", "replace")) % 1024) / 1023
    spread = min(max(0.0, spread), cap)
    if spread > 0 and task.progress and 0 < task.progress < 100 and sched.born is not None and now > sched.born:
        # progress over the task's age (its queue time included) is the slowest it can be going
        spread = min(spread, max(floor, (now - sched.began) * (100.0 - task.progress) / task.progress))
    if not adaptive:
        return Plan(floor, 0.0, predicted, expired, prior_end)
    cap = max(cap, floor)
    found = predict_end(sched, task, now, wall_now)
    if found is not None:
        lo, best, hi, confirmed = found
        if predicted is None or predicted[0] < now:
            predicted = (now, lo, hi, best)
        length = hi - (sched.born if sched.born is not None else now)
        step = max(floor, TOLERANCE * max(length, task.eta or 0.0))
        if confirmed and hi - lo <= step:
            wait, slack = hi - now, 0.0
        else:
            half = (best - now) * 0.5
            wait = min(hi - now, max(half, lo - now + step if confirmed else 0.0))
            slack = max(0.0, min(half * 0.5, lo - now - wait))  # never past the earliest end
            if spread > wait and not confirmed:  # only to learn more: what the budget allows
                wait, slack = min(spread, hi - now), 0.0
            if not confirmed and not task.eta and not (sched.rate and sched.rate > 0):
                # one answer with progress, no eta: the end it bounds may be far, the rate the
                # next answer measures is what places the end; ask again within a quiet wait,
                # or where the learned ends are (as the budget allows)
                wait = min(wait, max(spread, quiet_cap or QUIET_CAP))
                if durations is not None and sched.born is not None:
                    found_prior = durations.next_poll(now - sched.born, floor, shared)
                    if found_prior is not None:
                        wait = min(wait, max(spread, found_prior[0] - (now - sched.born)))
        wait = min(cap, max(floor, wait))
        rate_end = None
        if sched.rate and sched.rate > 0 and sched.progress_start is not None and task.progress is not None:
            rate_end = now + (100.0 - task.progress) / sched.rate
        return Plan(wait, max(0.0, min(slack, cap - wait)), predicted, expired, prior_end, rate_end)
    if predicted is not None:
        if predicted[3] <= now:  # its likeliest end has passed: overdue since then
            expired = predicted[3]
        predicted = None
    if durations is not None and sched.born is not None:
        age = now - sched.born
        found_prior = durations.next_poll(age, floor, shared)
        if found_prior is not None:
            at, last = found_prior
            wait = max(floor, min(cap, quiet_cap or cap, at - age))
            if spread > wait and at - age <= (durations.step(floor) or floor) + 1e-9:
                wait = spread  # stepping through the learned ends: as the budget allows
            # a list (the only one to use the slack) may slip by a share of a step, never
            # by a share of the whole wait: the first poll into the learned ends keeps its place
            return Plan(wait, QUIET_SHARE * min(wait, durations.step(floor) or wait), predicted, expired,
                        sched.born + last)
    if prior_end is not None:
        if prior_end <= now:  # older than what was learned: overdue since the last likely end
            expired = max(expired or prior_end, prior_end)
        prior_end = None
    quiet = now - max((x for x in (sched.last_change, expired) if x is not None), default=now)
    least = max(floor, spread)
    if durations is not None and len(durations) >= PRIOR_MIN:  # no closer than inside the learned ends
        least = max(floor, min(cap, quiet_cap or cap, durations.step(floor) or floor))
    wait = max(least, min(cap, quiet_cap or cap, quiet * QUIET_SHARE))
    return Plan(wait, wait * QUIET_SHARE, predicted, expired, prior_end)


def observe(sched: Schedule, task: Task, now: float) -> None:
    """Note an answer in the task's schedule: did it change, how fast does it progress."""
    p = task.progress
    if p == 0 and task.state not in TERMINAL:
        sched.unstarted = now
    if p is not None and (sched.moved is None or sched.signature is None or p != sched.signature[2]):
        sched.moved = now
    signature = (task.state, task.provider_status, p)
    if signature != sched.signature:
        sched.last_change = now
        sched.signature = signature
    if sched.last_change is None:
        sched.last_change = now
    if p is not None:
        if sched.progress_start is None or p < sched.progress_start[0]:
            if p > 0 or sched.progress_start is not None:  # 0: not started, no anchor yet
                sched.progress_start = (p, now)
                sched.rate = None
        else:
            p0, t0 = sched.progress_start
            if p > p0 and now > t0:
                sched.rate = (p - p0) / (now - t0)
    if sched.first_seen is None:
        sched.first_seen = now
    if sched.born is None:
        sched.born = now
    sched.last_poll = now
    sched.fails = 0
    sched.polls += 1


ENDED_FIRST = 1e9  # priority: a task whose likely end has come goes before any other


def first_wait(floor: float, durations: Durations | None, rate: float, live: int, adaptive: bool = True) -> float:
    """How long after a task is first seen its first poll comes: at once, unless
    the schedule is adaptive, the budget is short (it cannot ask every live task
    once per ``floor``) and durations were learned: then at the shortest learned
    end (less ``SPREAD``), at most ``QUIET_CAP`` on, so that the first answer
    finds the task at work (with progress to predict from) rather than queued."""
    if (not adaptive or durations is None or len(durations) < PRIOR_MIN or rate <= 0
            or rate * floor >= live):
        return 0.0
    return max(0.0, min((durations.shortest() or 0.0) * (1.0 - SPREAD), QUIET_CAP))


def priority(sched: Schedule | None, now: float) -> float:
    """Sort key of a due task (smallest first): never-polled first; then the tasks
    whose likeliest end (the measured progress rate's, else the last prediction's)
    has come, the longest past first: when the budget cannot ask every due task (Upscayl:
    100 an hour), it is spent where the ends are; then the most overdue relative
    to its own interval (the likeliest to have changed)."""
    if sched is None or sched.last_poll is None:
        return -math.inf
    end = sched.rate_end if sched.rate_end is not None else (sched.predicted[3] if sched.predicted else None)
    if end is not None and end <= now:
        return -ENDED_FIRST - min(now - end, ENDED_FIRST)
    return -(now - sched.last_poll) / max(sched.interval, 1e-6)


def backoff(fails: int, base: float, cap: float = BACKOFF_CAP, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: base * 2^(fails-1), capped, times 0.5..1."""
    raw = min(cap, base * (2 ** max(0, fails - 1)))
    return raw * (0.5 + 0.5 * rand())
