"""The polling engine: one async worker per configured provider.

Each worker owns its provider's pooled ``httpx.AsyncClient``, a request
``Budget`` (token bucket under a hard window), a concurrency cap and a state:

    ok               answering
    degraded         answering, but some tasks' polls fail or tasks are stalled (``cause`` says which)
    backing_off      5xx / timeouts: exponential backoff with jitter, one probe at a time
    offline          every attempt failed with a network error: same backoff
    rate_limited     429: no request at all before ``retry_at`` (persisted: other
                     processes on the same database wait too; never longer than
                     ``max_retry_wait``; ``refresh_now`` lets one request through)
    auth_failed      401/403: no polling until ``resume_provider`` or ``reconfigure``
    quota_exhausted  402: one probe every ``QUOTA_PROBE`` seconds

A round refreshes the tasks that are due, most-likely-changed first, within
the budget (and a kind's daily budget, where the provider has one), and writes
the answers, events, poll health and counters to the store as they arrive (at
least every ``FLUSH_EVERY`` seconds, and at the end), so one slow request never
holds the others' answers; a round has a deadline, after which the requests
still out count as failed polls.  The first request of a round is sent alone
while the provider is unproven (just started, failing, after a 429), always a
status request; the rest follow only if it got through.  List providers
(``has_list``) refresh every task of a kind with one request and fetch a
task's detail only when the list says it just COMPLETED without results; the
list is asked for when the first due task can wait no longer (its ``slack``),
and its answer reschedules every task it lists.  A list, like the balance, is
an optimisation and never a gate: one that fails or keeps naming none of the
tracked tasks is switched off for ``OPTIONAL_RETRY`` (one event says why) and
each task is asked on its own in the same round.  When a round ends the worker
re-arms a one-shot sleep until the next task is due, so rounds never overlap.

No live task is silently stuck: each carries its poll health (failed polls in
a row, the last error, the path asked, and a ``stalled`` reason after
``STALL_FAILS`` failures or a quiet spell far longer than tasks like it take),
written only when it changes.  A 404 ends a task ``not_found`` (naming the path
and the known kinds when it was never seen alive), another 4xx ends it
``failed``; transient and unreadable answers never end a task.  When the store
cannot write, answers are kept in memory and written later (``store_problem``).

When a task is due next is ``plan``'s: an end predicted from its progress rate
and the provider's eta is polled just after, once two answers agree on it; a
task that reports nothing but its state is polled as the durations learned
from finished tasks of its provider, kind and model make its end likely, or
else ever less often as it stays quiet (a quarter of that time, at most
``QUIET_CAP``).  Never more often than its poll_interval.

The same code runs under the dashboard (``start``) and under ``tasktui
poll``/``wait`` (``poll_once``, ``focus``).  Subscribers learn of changes
through the store's change feed.  No API key ever reaches an event, a
counter, a log line or an exception text.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import inspect
import math
import random
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import httpx

from .budget import Budget, DailyBudget, format_rate, parse_rate
from .model import (
    FAILED,
    NOT_FOUND,
    SUCCEEDED,
    TERMINAL,
    AuthError,
    BadResponse,
    ClientError,
    Event,
    NotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Task,
    Transient,
    iso,
)
from .providers import make_provider
from .text import clean

try:
    from .redact import redact as _redact
except ImportError:  # pragma: no cover - the redactor is part of the package
    _redact = None

OK = "ok"
BACKING_OFF = "backing_off"
RATE_LIMITED = "rate_limited"
AUTH_FAILED = "auth_failed"
QUOTA_EXHAUSTED = "quota_exhausted"
OFFLINE = "offline"
DEGRADED = "degraded"  # answering, but some tasks' polls fail or tasks are stalled (see ``cause``)
PROVIDER_STATES = (OK, BACKING_OFF, RATE_LIMITED, AUTH_FAILED, QUOTA_EXHAUSTED, OFFLINE, DEGRADED)

DEFAULT_RETRY_AFTER = 60.0  # a 429 that does not say how long to wait
RETRY_MARGIN = 0.25  # seconds added to a provider's Retry-After
QUOTA_PROBE = 600.0  # a provider out of credits is asked again every 10 minutes
BACKOFF_CAP = 300.0  # longest wait after transient failures
MAX_INTERVAL = 600.0  # longest wait between two polls of one live task
QUIET_CAP = 60.0  # longest wait between two polls of a task whose end cannot be foreseen
MAX_AGE = 7 * 86400.0  # a created_at older than this (or in the future) says nothing of when a task began
IDLE_WAKE = 2.0  # a worker looks for new tasks (other processes' adds) this often
BALANCE_INTERVAL = 300.0
RPM_MINUTES = 60
MAX_RETRY_WAIT = 3600.0  # longest wait any Retry-After or quota answer may impose (engine max_retry_wait)
OPTIONAL_RETRY = 1800.0  # a list/history/balance endpoint switched off is tried again after this
USELESS_ROUNDS = 3  # list answers in a row naming none of the tracked tasks of its kind: switched off
STALL_FAILS = 3  # failed polls in a row that make a task stalled
STALL_AFTER = 1800.0  # a task whose state has not moved for this long is stalled (provider.stall_after)
STALL_FACTOR = 4.0  # ... or for this many times the typical learned duration, if longer
PROBE_PATIENCE = 3.0  # seconds a probe may take before another task is probed alongside it
PROBE_MAX = 4  # probes out at once at most
FLUSH_EVERY = 1.0  # seconds of round time between two writes of the answers received so far
UNSAVED_EVENTS = 1000  # events kept in memory while the store refuses writes
DISCOVER_MAX_ROUND = 1000  # tasks one list round may add (engine discover_max_round)
DISCOVER_MAX_TOTAL = 10000  # tasks discovery may add in all (engine discover_max_total)


# ---------------------------------------------------------------- scheduling


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
    predicted: tuple[float, float, float, float] | None = None  # (made at, earliest, latest, likeliest end)
    expired: float | None = None  # the likeliest end last predicted, passed with the task still running
    prior_end: float | None = None  # the end the learned durations made likely at the last answer
    fail_since: float | None = None  # wall time of the first failed poll in a row
    path: tuple[str | None, str | None] | None = None  # (kind, the path its status is asked at)


RESOLUTION = 1.0  # seconds: providers give created/eta in whole seconds, progress in whole points
TOLERANCE = 0.01  # a delay of this share of a task's length is not worth a request to avoid
STALLED = 2.0  # progress that has not moved for this many points' worth of time: the rate is stale
QUIET_SHARE = 0.25  # without a prediction, wait this share of the time the task has been quiet
PRIOR_SHARE = 1 / 6  # with learned durations, poll each time this share of the likely ends has passed
PRIOR_MIN = 5  # ... when at least this many learned durations are longer than the task's age
PRIOR_SIZE = 64  # learned durations kept per provider, kind and model (the latest)
MAX_KINDS = 256  # (provider, kind, model) triples learned at most: provider text must not grow memory or the counters


class Durations:
    """How long finished tasks of one provider, kind and model took (seconds
    from their start to their end, the latest ``PRIOR_SIZE``), learned as
    tasks end: what the engine knows of a task that reports nothing but its
    state."""

    __slots__ = ("_recent", "_sorted")

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=PRIOR_SIZE)
        self._sorted: list[float] = []

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

    def values(self) -> list[float]:
        """The learned durations, oldest first (what the counters save)."""
        return list(self._recent)

    def next_end(self, age: float, share: float = PRIOR_SHARE) -> float | None:
        """The age by which ``share`` of the learned tasks that were still running
        at ``age`` had ended; None when too few of them ran that long (the task
        is already older than what was learned, or nothing was)."""
        k = bisect.bisect_right(self._sorted, age)
        longer = len(self._sorted) - k
        if longer < PRIOR_MIN:
            return None
        return self._sorted[k + max(0, math.ceil(share * longer) - 1)]


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
    if rate and rate > 0 and task.progress is not None and sched.progress_start is not None:
        remaining = (100.0 - task.progress) / rate
        moving = sched.moved is None or (now - sched.moved) * rate <= STALLED
        if remaining > 0 and moving:
            slack = remaining / max(1.0, task.progress - sched.progress_start[0])
            point = 1.0 / rate
            found.append((now + max(0.0, remaining - slack - point), now + remaining,
                          now + remaining + slack + point * 0.5))
    rate_based = bool(found)
    if task.eta and task.created_at:
        remaining = task.created_at + task.eta - wall_now
        if remaining > 0:  # an eta that ran out while the task runs is stale
            found.append((now + max(0.0, remaining - 1.5 * RESOLUTION), now + remaining,
                          now + remaining + 1.5 * RESOLUTION))
    if not found:
        return None
    if len(found) == 2:
        (a0, a, a1), (b0, b, b1) = found
        lo, hi = max(a0, b0), min(a1, b1)
        if lo <= hi:
            best = a if a1 - a0 <= b1 - b0 else b
            return lo, min(max(best, lo), hi), hi, True
        return min(a0, b0), min(a, b), max(a1, b1), False
    lo, best, hi = found[0]
    prior = sched.predicted
    confirmed = rate_based and prior is not None and prior[0] < now and prior[1] <= hi and lo <= prior[2]
    return lo, best, hi, confirmed


def next_interval(floor: float, sched: Schedule, task: Task, now: float, wall_now: float,
                  adaptive: bool = True, cap: float = MAX_INTERVAL) -> float:
    """Seconds until the next poll of a live task: ``plan``'s wait, without the
    learned durations or a cap on quiet waits other than ``cap``."""
    return plan(floor, sched, task, now, wall_now, adaptive, cap)[0]


def plan(floor: float, sched: Schedule, task: Task, now: float, wall_now: float,
         adaptive: bool = True, cap: float = MAX_INTERVAL, quiet_cap: float | None = None,
         durations: Durations | None = None) -> tuple[float, float]:
    """(wait, slack): seconds until the next poll of a live task, and how much
    later that poll may come at no loss (a list request, which refreshes many
    tasks at once, waits for the first task whose slack has run out).

    ``floor`` (the configured poll_interval) is the minimum, ``cap`` the
    maximum.  With a predicted end (progress rate, eta; see ``predict_end``):

    - not confirmed: halfway to the likeliest end (a poll to learn more, which
      may slip by half as much again);
    - confirmed and sharp (no wider than the floor or a ``TOLERANCE`` share of
      the task's length): at its latest end, the first poll after the end;
    - confirmed but wide: a step past its earliest end (or halfway, if later).

    Without a prediction: when the ``durations`` learned from finished tasks
    like it say when it likely ends, each time a ``PRIOR_SHARE`` of those ends
    has passed (no polls before the shortest ones), at most ``quiet_cap``
    apart; else a ``QUIET_SHARE`` of the time the task has been quiet (since
    its last change, or since the likely end it has outlived), at most
    ``quiet_cap``: an end nothing foretold is seen within a fifth of that time.
    """
    if not adaptive:
        return floor, 0.0
    cap = max(cap, floor)
    found = predict_end(sched, task, now, wall_now)
    if found is not None:
        lo, best, hi, confirmed = found
        if sched.predicted is None or sched.predicted[0] < now:
            sched.predicted = (now, lo, hi, best)
        length = hi - (sched.born if sched.born is not None else now)
        step = max(floor, TOLERANCE * max(length, task.eta or 0.0))
        if confirmed and hi - lo <= step:
            wait, slack = hi - now, 0.0
        else:
            half = (best - now) * 0.5
            wait = min(hi - now, max(half, lo - now + step if confirmed else 0.0))
            slack = max(0.0, min(half * 0.5, lo - now - wait))  # never past the earliest end
        wait = min(cap, max(floor, wait))
        return wait, max(0.0, min(slack, cap - wait))
    if sched.predicted is not None:
        if sched.predicted[3] <= now:  # its likeliest end has passed: overdue since then
            sched.expired = sched.predicted[3]
        sched.predicted = None
    if durations is not None and sched.born is not None:
        age = now - sched.born
        end = durations.next_end(age)
        if end is not None:
            sched.prior_end = sched.born + end
            wait = max(floor, min(cap, quiet_cap or cap, end - age))
            return wait, wait * QUIET_SHARE
    if sched.prior_end is not None:
        if sched.prior_end <= now:  # older than what was learned: overdue since the last likely end
            sched.expired = max(sched.expired or sched.prior_end, sched.prior_end)
        sched.prior_end = None
    quiet = now - max((x for x in (sched.last_change, sched.expired) if x is not None), default=now)
    wait = max(floor, min(cap, quiet_cap or cap, quiet * QUIET_SHARE))
    return wait, wait * QUIET_SHARE


def observe(sched: Schedule, task: Task, now: float) -> None:
    """Note an answer: did the task change, and how fast does it progress."""
    p = task.progress
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


def priority(sched: Schedule | None, now: float) -> float:
    """Sort key of a due task (smallest first): never-polled first, then the most
    overdue relative to its own interval (the likeliest to have changed)."""
    if sched is None or sched.last_poll is None:
        return -math.inf
    return -(now - sched.last_poll) / max(sched.interval, 1e-6)


def backoff(fails: int, base: float, cap: float = BACKOFF_CAP, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: base * 2^(fails-1), capped, times 0.5..1."""
    raw = min(cap, base * (2 ** max(0, fails - 1)))
    return raw * (0.5 + 0.5 * rand())


# ---------------------------------------------------------------- status


@dataclass(slots=True)
class ProviderStatus:
    """One provider as the dashboard shows it."""

    name: str
    state: str
    retry_at: float | None  # wall clock; None when nothing is pending
    requests: int
    errors: int
    rate_limited: int
    last_error: str | None
    credits_spent: float
    balance: float | None
    balance_unit: str | None
    budget: str
    budget_capacity: float
    budget_available: int
    rpm: list[int]  # requests per minute, oldest first, the last RPM_MINUTES minutes
    paused: bool
    answers: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    cause: str | None = None  # why the state is not ok (degraded: which tasks fail or are stalled)


def _pc(cfg: Any, key: str, default: Any = None) -> Any:
    value = getattr(cfg, key, None) if cfg is not None else None
    return default if value is None else value


def _secret(value: Any) -> str:
    if value is None:
        return ""
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter else str(value)


class _Worker:
    """The per-provider part of the engine."""

    def __init__(self, name: str, cfg: Any, clock: Callable[[], float],
                 wall: Callable[[], float] = time.time) -> None:
        self.name = name
        self.cfg = cfg
        self.provider = make_provider(name, _secret(_pc(cfg, "api_key")), _pc(cfg, "base_url"))
        self.poll_interval = float(_pc(cfg, "poll_interval", self.provider.default_poll_interval))
        self.concurrency = max(1, int(_pc(cfg, "concurrency", 4)))
        rate = _pc(cfg, "rate_limit") or self.provider.default_rate_limit
        count, per = parse_rate(rate)
        # bursts of a tenth of the count, but at least one request per connection
        burst = max(math.ceil(count / 10), min(int(count), self.concurrency))
        self.budget = Budget(count, per, clock, burst=burst)
        self.rate_text = format_rate(count, per)
        # requests in flight at once: halved by every 429 (the ones already in flight
        # when a 429 is issued cannot be called back), grown by one per clean round
        self.parallel = self.concurrency
        self.timeout = float(_pc(cfg, "timeout", 30.0))
        self.discover = bool(_pc(cfg, "discover", False))
        self.kinds = list(_pc(cfg, "kinds", []) or [])
        self.balance_interval = float(_pc(cfg, "balance_interval", BALANCE_INTERVAL))
        self.sem = asyncio.Semaphore(self.concurrency)
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.client: httpx.AsyncClient | None = None
        self.runner: asyncio.Task | None = None
        self.once = False  # a refresh asked for while paused
        self.verified = False  # has answered at least once since (re)start
        # state
        self.state = OK
        self.retry_mono: float | None = None  # no request before this (monotonic)
        self.fails = 0  # consecutive failed rounds
        self.balance_due = 0.0
        self.list_due = 0.0  # next discovery list (discover = true)
        self.pending: set[str] = set()  # keys a list saw COMPLETED, detail still to fetch
        self.due_cache: tuple[int, float | None] | None = None  # (store revision, next due)
        self.balance: float | None = None
        self.balance_unit: str | None = None
        self.cause: str | None = None  # why the state is not ok
        self.one_shot = False  # refresh_now on a rate-limited / out-of-quota provider: one request may go
        # optional endpoints switched off: "list:<kind>" / "balance" -> (until, monotonic; reason)
        self.off: dict[str, tuple[float, str]] = {}
        self.useless: dict[str | None, int] = {}  # list answers in a row that named no tracked task
        self.failing: dict[str, str] = {}  # live task key -> its last poll error (its polls fail)
        self.stalled: dict[str, str] = {}  # live task key -> why it cannot progress
        self.discovered = 0  # tasks discovery added (all runs)
        self.capped: set[str] = set()  # discovery caps already reported
        daily = getattr(self.provider, "daily_limits", None) or {}
        self.daily: dict[str, DailyBudget] = {}
        if _pc(cfg, "daily_limits", True) is not False and isinstance(daily, dict):
            for kind, limit in daily.items():
                if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0:
                    self.daily[str(kind)] = DailyBudget(int(limit), wall)
        # what the store would not take (StoreWriteError): kept, merged by key, written with the next round
        self.unsaved_updates: dict[str, Task] = {}
        self.unsaved_found: dict[str, Task] = {}
        self.unsaved_events: deque[Event] = deque(maxlen=UNSAVED_EVENTS)
        self.unsaved_health: dict[str, dict[str, Any]] = {}
        self.unsaved_counters: dict | None = None
        self.counters: dict[str, Any] = {
            "requests": 0, "errors": 0, "rate_limited": 0, "answers": {},
            "last_error": None, "last_error_at": None, "rpm": {},
        }

    def open(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=self.concurrency,
                                    max_keepalive_connections=self.concurrency),
            )
        return self.client

    def blocked(self, now: float) -> bool:
        if self.state == AUTH_FAILED:
            return True
        if self.one_shot and self.state in (RATE_LIMITED, QUOTA_EXHAUSTED):
            return False  # the user asked (``r``): one request goes, its answer decides
        return self.retry_mono is not None and now < self.retry_mono

    @property
    def has_unsaved(self) -> bool:
        return bool(self.unsaved_updates or self.unsaved_found or self.unsaved_events
                    or self.unsaved_health or self.unsaved_counters)

    def list_off(self, kind: str | None, now: float) -> bool:
        """Is the list of this kind switched off (failed or useless) right now?"""
        if not self.off:
            return False
        entry = self.off.get(f"list:{kind or ''}")
        return entry is not None and now < entry[0]

    def daily_for(self, kind: str | None) -> DailyBudget | None:
        if not self.daily:
            return None
        kind = kind or self.provider.default_kind
        poll_kind = getattr(self.provider, "poll_kind", None)
        if poll_kind is not None:
            try:
                kind = poll_kind(kind) or kind
            except Exception:
                pass
        return self.daily.get(kind or "")

    @property
    def wants_balance(self) -> bool:
        """balance_interval = 0 turns balance requests off."""
        return self.provider.has_balance and self.balance_interval > 0

    @property
    def probing(self) -> bool:
        """Until the provider has answered once, and after failures or a 429, a
        round sends one request; the others follow as soon as it succeeds."""
        return not self.verified or self.state in (BACKING_OFF, OFFLINE, QUOTA_EXHAUSTED, RATE_LIMITED)


class _Round:
    """What one round collects before it is written (as it arrives, at least every
    ``FLUSH_EVERY`` seconds, and at the end)."""

    def __init__(self) -> None:
        self.updates: list[Task] = []
        self.discovered: list[Task] = []
        self.events: list[Event] = []
        self.health: dict[str, dict[str, Any]] = {}  # task key -> poll health to write
        self.inflight: dict[str, Task] = {}  # status requests under way (key -> task)
        self.probes = 1  # requests an unproven provider may have out before one answers
        self.answered = 0  # answers from the provider (any HTTP answer but a failure class)
        self.transient = 0
        self.network = 0  # transient failures without an HTTP status
        self.sent = 0
        self.halt: str | None = None  # why no further request is sent this round
        self.short = False  # stopped for lack of budget


class Engine:
    """Polls every configured provider; writes what it learns to the store."""

    def __init__(self, config: Any, store: Any, clock: Callable[[], float] = time.monotonic,
                 *, wall: Callable[[], float] = time.time, adaptive: bool | None = None,
                 rand: Callable[[], float] = random.random) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.wall = wall
        knobs = getattr(config, "engine", None)
        self.adaptive = bool(_pc(knobs, "adaptive", True)) if adaptive is None else adaptive
        self.max_interval = float(_pc(knobs, "max_interval", MAX_INTERVAL))
        self.max_backoff = float(_pc(knobs, "max_backoff", BACKOFF_CAP))
        self.discover_interval = float(_pc(knobs, "discover_interval", 60.0))
        self.max_retry_wait = max(1.0, float(_pc(knobs, "max_retry_wait", MAX_RETRY_WAIT)))
        self.discover_max_round = max(0, int(_pc(knobs, "discover_max_round", DISCOVER_MAX_ROUND)))
        self.discover_max_total = max(0, int(_pc(knobs, "discover_max_total", DISCOVER_MAX_TOTAL)))
        self.store_problem: str | None = None  # why answers could not be written (None: writes work)
        self._health: dict[str, tuple] = {}  # task key -> the poll health last written
        self._health_kw: bool | None = None  # does store.apply take health=?
        self.rand = rand
        self.paused = False
        self._stopping = False
        self._sched: dict[str, Schedule] = {}
        self._durations: dict[tuple[str, str, str], Durations] = {}  # (provider, kind, model): learned
        self._credits_cache: tuple[int, dict[str, float]] | None = None
        self._live_cache: dict[str, tuple[int, list[tuple[Task, str]]]] = {}
        self.focus: set[str] | None = None  # poll only these keys (``tasktui wait``); None: all
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.workers: dict[str, _Worker] = {}
        self._build(config)

    # ------------------------------------------------------------ setup

    def _build(self, config: Any) -> None:
        providers = getattr(config, "providers", {}) or {}
        saved = self._saved_counters()
        for name, cfg in providers.items():
            if not _pc(cfg, "enabled", True):
                continue
            worker = _Worker(name, cfg, self.clock, self.wall)
            self._restore(worker, saved.get(name) or {})
            self.workers[name] = worker
        self._restore_health()

    def _restore_health(self) -> None:
        """Tasks whose polls were failing or that were stalled when the last run
        stopped (their health is in the store): the provider starts ``degraded``,
        so a fresh ``quota`` tells the truth before any request."""
        if not self.workers:
            return
        try:
            tasks = self.store.tasks()
        except Exception:
            return
        for t in tasks:
            w = self.workers.get(t.provider)
            if w is None or t.terminal:
                continue
            if getattr(t, "failed_polls", 0):
                w.failing[t.key] = t.last_error or "failing"
            if getattr(t, "stalled", None):
                w.stalled[t.key] = t.stalled
        for w in self.workers.values():
            if w.state == OK and (w.failing or w.stalled):
                w.cause = self._degraded_cause(w)
                w.state = DEGRADED if w.cause else OK

    def _saved_counters(self) -> dict[str, dict]:
        try:
            return self.store.counters() or {}
        except Exception:
            return {}

    def _restore(self, w: _Worker, saved: dict) -> None:
        """Counters of earlier runs; a pending Retry-After or quota wait carries over."""
        c = w.counters
        for key in ("requests", "errors", "rate_limited"):
            c[key] = int(saved.get(key) or 0)
        c["answers"] = dict(saved.get("answers") or {})
        c["last_error"] = saved.get("last_error")
        c["last_error_at"] = saved.get("last_error_at")
        c["rpm"] = {int(k): int(v) for k, v in (saved.get("rpm") or {}).items()}
        w.balance = saved.get("balance")
        w.balance_unit = saved.get("balance_unit")
        wall_now, now = self.wall(), self.clock()
        recent = saved.get("recent") or []
        if recent:
            w.budget.restore([wall_now - float(t) for t in recent])
        retry_at = saved.get("retry_at")
        if (saved.get("state") in (RATE_LIMITED, QUOTA_EXHAUSTED) and isinstance(retry_at, (int, float))
                and math.isfinite(retry_at) and retry_at > wall_now):
            w.state = saved["state"]
            w.retry_mono = now + min(float(retry_at) - wall_now, self.max_retry_wait)  # no lockout for decades
        if isinstance(saved.get("discovered"), int):
            w.discovered = max(0, saved["discovered"])
        daily = saved.get("daily")
        if isinstance(daily, dict):
            for kind, budget in w.daily.items():
                entry = daily.get(kind)
                if isinstance(entry, dict):
                    budget.restore(entry.get("used"), entry.get("reset_at"))
        if w.provider.has_balance and saved.get("balance_at"):
            age = wall_now - float(saved["balance_at"])
            w.balance_due = now + max(0.0, w.balance_interval - age)
        self._restore_durations(w.name, saved.get("durations"))

    def _restore_durations(self, provider: str, saved: Any) -> None:
        """Durations learned by earlier runs ({"kind\tmodel": [seconds, ...]}), so a
        new dashboard or ``wait`` knows at once how long this provider's tasks take.
        Anything malformed is skipped."""
        if not isinstance(saved, dict):
            return
        for name, values in saved.items():
            if not isinstance(name, str) or not isinstance(values, list):
                continue
            kind, _, model = name.partition("\t")
            durations = Durations()
            for value in values[-PRIOR_SIZE:]:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    durations.add(float(value))
            if len(durations) and len(self._durations) < MAX_KINDS:
                self._durations[(provider, kind, model)] = durations

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start one worker per provider (idempotent)."""
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        if self._unsubscribe is None and hasattr(self.store, "subscribe"):
            self._unsubscribe = self.store.subscribe(self._on_change)
        for w in self.workers.values():
            if w.runner is None or w.runner.done():
                w.runner = asyncio.create_task(self._run(w), name=f"tasktui-engine-{w.name}")

    async def stop(self) -> None:
        """Stop the workers and close the HTTP clients."""
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        runners = [w.runner for w in self.workers.values() if w.runner is not None]
        for r in runners:
            r.cancel()
        for r in runners:
            try:
                await r
            except (asyncio.CancelledError, Exception):
                pass
        for w in self.workers.values():
            w.runner = None
            if w.client is not None:
                await w.client.aclose()
                w.client = None

    async def reconfigure(self, config: Any) -> None:
        """Apply a new config: workers are rebuilt (a refused key is tried again)."""
        running = any(w.runner is not None for w in self.workers.values())
        await self.stop()
        self.config = config
        self.workers = {}
        self._build(config)
        if running:
            await self.start()

    async def poll_once(self) -> None:
        """One round for every provider: refresh every due live task (within budget)."""
        self._sync()
        await asyncio.gather(*(self._round(w, force=True) for w in self.workers.values()))

    async def poll_due(self) -> None:
        """One round for every provider, of the tasks that are due now only:
        what the background workers do on each wake.  Lets a caller drive the
        engine step by step on its own clock (benchmarks, tests)."""
        self._sync()
        await asyncio.gather(*(self._round(w) for w in self.workers.values()))

    def refresh_now(self, keys: Iterable[str] | None = None) -> None:
        """Make tasks (all live ones by default) due now and wake the workers.
        Works while paused; never overrides a refused key.  Asked for all tasks
        (the ``r`` key), a provider waiting out a Retry-After or an empty account
        gets ONE request through, whose answer decides what comes next; a refresh
        of some keys (an add, a webhook hint) never bypasses such a wait."""
        now = self.clock()
        wanted = None if keys is None else set(keys)
        names = None if wanted is None else {k.split(":", 1)[0] for k in wanted}
        for key, sched in self._sched.items():
            if wanted is None or key in wanted:
                sched.due = now
                sched.slack = 0.0
                sched.fails = 0
        for w in self.workers.values():
            if names is not None and w.name not in names:
                continue
            w.due_cache = None
            if w.state in (BACKING_OFF, OFFLINE):
                w.retry_mono = None
            elif w.state in (RATE_LIMITED, QUOTA_EXHAUSTED) and wanted is None:
                w.one_shot = True
            w.once = True
            self._wake(w)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        for w in self.workers.values():
            self._wake(w)

    def resume_provider(self, name: str) -> None:
        """Poll a provider again after a refused key or an empty account."""
        w = self.workers[name]
        if w.state in (AUTH_FAILED, QUOTA_EXHAUSTED, BACKING_OFF, OFFLINE):
            w.state = OK
            w.retry_mono = None
            w.fails = 0
        self._wake(w)

    # ------------------------------------------------------------ change feed

    def _on_change(self, change: Any) -> None:
        """Wake the worker of a task the engine has not seen yet (added here or by
        another process); changes to known tasks (our own answers) need no round."""
        keys = getattr(change, "keys", None) or ()
        for key in keys:
            if key in self._sched and self.store.get(key) is None:
                del self._sched[key]  # removed: forget its schedule (a re-add starts afresh)
                self._health.pop(key, None)
                w = self.workers.get(key.split(":", 1)[0])
                if w is not None:
                    w.failing.pop(key, None)
                    w.stalled.pop(key, None)
        names = {k.split(":", 1)[0] for k in keys if k not in self._sched}
        for name in names:
            w = self.workers.get(name)
            if w is not None:
                self._wake(w)

    def _wake(self, w: _Worker) -> None:
        """Wake a worker; safe from the loop's thread and from any other thread."""
        loop = self._loop
        if loop is None or _in_loop(loop) or not loop.is_running():
            w.wake.set()
        else:
            loop.call_soon_threadsafe(w.wake.set)

    def _sync(self) -> None:
        sync = getattr(self.store, "sync", None)
        if sync is not None:
            try:
                sync()
            except Exception as exc:  # the database file gone or unreadable: say so
                if self._store_trouble(exc):
                    self.store_problem = clean(f"the task database cannot be read: {exc}", 300)
            else:
                self._store_ok()

    # ------------------------------------------------------------ the worker loop

    async def _run(self, w: _Worker) -> None:
        internal = 0  # rounds in a row that ended in an internal error
        while not self._stopping:
            w.wake.clear()
            if not self.paused or w.once:
                w.once = False
                self._sync()
                try:
                    await self._round(w)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a bug must not kill polling; say so in the log
                    internal += 1
                    self._log_internal(w, exc)
                    await asyncio.sleep(backoff(internal, 1.0, self.max_backoff, self.rand))
                    continue
                internal = 0
            delay = self._next_wake(w)
            try:
                await asyncio.wait_for(w.wake.wait(), timeout=delay)
            except (asyncio.TimeoutError, TimeoutError):
                pass

    def _next_wake(self, w: _Worker) -> float:
        now = self.clock()
        if self.paused or w.state == AUTH_FAILED:
            return IDLE_WAKE
        if w.retry_mono is not None and now < w.retry_mono:
            return max(0.01, min(w.retry_mono - now, IDLE_WAKE))
        due = self._next_due(w)
        for extra, wanted in ((w.balance_due, w.wants_balance),
                              (w.list_due, w.discover and w.provider.has_list)):
            if wanted:
                due = extra if due is None else min(due, extra)
        if due is None:
            return IDLE_WAKE
        wait = max(due - now, w.budget.wait_time() if due <= now else 0.0)
        # rounds at least this far apart, so tasks falling due one by one are batched
        gap = min(1.0, w.poll_interval * 0.5)
        return max(gap, min(IDLE_WAKE, wait))

    def _next_due(self, w: _Worker) -> float | None:
        """When the next live task is due (cached until a round, a refresh or a store change)."""
        revision = getattr(self.store, "revision", None)
        if w.due_cache is not None and revision is not None and w.due_cache[0] == revision:
            return w.due_cache[1]
        sched = self._sched
        now = self.clock()
        if w.provider.has_list and w.off:  # a task whose list is off is due on its own
            due = min((sched[k].due + (0.0 if w.list_off(t.kind or w.provider.default_kind, now) else sched[k].slack)
                       if k in sched else now for t, k in self._live_keyed(w)), default=None)
        elif w.provider.has_list:  # one list answers for all: due when the first task's slack runs out
            due = min((sched[k].due + sched[k].slack if k in sched else now
                       for _, k in self._live_keyed(w)), default=None)
        else:
            due = min((sched[k].due if k in sched else now for _, k in self._live_keyed(w)),
                      default=None)
        w.due_cache = (revision, due) if revision is not None else None
        return due

    # ------------------------------------------------------------ one round

    def _live(self, w: _Worker) -> list[Task]:
        """This provider's non-terminal tasks (cached until the store changes)."""
        return [t for t, _ in self._live_keyed(w)]

    def _live_keyed(self, w: _Worker) -> list[tuple[Task, str]]:
        """(task, key) of the live tasks; keys computed once per store revision."""
        revision = getattr(self.store, "revision", None)
        cached = self._live_cache.get(w.name)
        if cached is not None and revision is not None and cached[0] == revision:
            pairs = cached[1]
        else:
            pairs = [(t, t.key) for t in self.store.tasks() if t.provider == w.name and not t.terminal]
            if revision is not None:
                self._live_cache[w.name] = (revision, pairs)
        if self.focus is not None:
            return [p for p in pairs if p[1] in self.focus]
        return pairs

    def _select(self, w: _Worker, now: float, force: bool) -> list[Task]:
        """The due tasks, likeliest-changed first; without a list endpoint only as
        many as the budget allows right now (no full sort of 100,000 tasks)."""
        sched = self._sched
        ranked: list[tuple[float, int, Task]] = []
        pressing = force  # a list provider: some due task's slack has run out
        listing = w.provider.has_list
        default = w.provider.default_kind
        for n, (task, key) in enumerate(self._live_keyed(w)):
            s = sched.get(key)
            if s is None:
                s = sched[key] = Schedule(due=now)
            if force or s.due <= now:
                ranked.append((priority(s, now), n, task))
                pressing = (pressing or s.due + s.slack <= now or key in w.pending
                            or (listing and bool(w.off) and w.list_off(task.kind or default, now)))
        if listing and not pressing:
            return []  # the due ones wait for the list that the first pressing task brings
        if not listing and len(ranked) > 64:
            ranked = heapq.nsmallest(max(1, w.budget.available), ranked)
        else:
            ranked.sort()
        return [task for _, _, task in ranked]

    def _sched_for(self, task: Task) -> Schedule:
        sched = self._sched.get(task.key)
        if sched is None:
            sched = self._sched[task.key] = Schedule(due=self.clock(), interval=0.0)
        return sched

    async def _round(self, w: _Worker, force: bool = False) -> None:
        async with w.lock:
            now = self.clock()
            if w.blocked(now):
                return
            held: float | None = None
            if w.one_shot:  # ``r`` on a provider told to wait: one request, its answer decides
                w.one_shot = False
                if w.state in (RATE_LIMITED, QUOTA_EXHAUSTED):
                    held, w.retry_mono = w.retry_mono, None
            w.due_cache = None
            live = self._live(w)
            due = self._select(w, now, force)
            r = _Round()
            w.open()
            body = asyncio.ensure_future(self._round_body(w, r, live, due, now, force))
            try:
                await self._drive(w, r, body)
            finally:
                if held is not None and r.sent == 0 and w.retry_mono is None:
                    w.retry_mono = held  # nothing could be sent: the wait stands
            self._finish(w, r)

    async def _round_body(self, w: _Worker, r: _Round, live: list[Task], due: list[Task], now: float,
                          force: bool) -> None:
        discovering = w.discover and (force or now >= w.list_due)
        if w.provider.has_list and (due or discovering) and not r.halt:
            due = await self._list_round(w, live, due, r)
        if due and not r.halt:
            await self._task_round(w, due, r)
        if w.wants_balance and now >= w.balance_due and not r.halt:
            await self._fetch_balance(w, r)  # after the tasks: they decide whether the key works

    def _round_deadline(self, w: _Worker) -> float:
        """Seconds a round may last before the requests still out are given up."""
        return max(10.0, 2.0 * w.timeout + 5.0)

    async def _drive(self, w: _Worker, r: _Round, body: asyncio.Future) -> None:
        """Run a round's requests; store the answers received so far every
        ``FLUSH_EVERY`` seconds, so one slow request never holds the others'
        answers; at the round's deadline, give up the requests still out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._round_deadline(w)
        try:
            while not body.done():
                left = deadline - loop.time()
                if left <= 0:
                    body.cancel()
                    await asyncio.wait({body})
                    self._overdue(w, r)
                    return
                await asyncio.wait({body}, timeout=min(FLUSH_EVERY, left))
                if not body.done() and (r.updates or r.events or r.health or r.discovered):
                    self._flush(w, r)
        except asyncio.CancelledError:
            body.cancel()
            raise
        body.result()  # an internal error of the round surfaces here

    def _overdue(self, w: _Worker, r: _Round) -> None:
        """Status requests still out at the round's deadline: failed polls."""
        seconds = self._round_deadline(w)
        for key, task in list(r.inflight.items()):
            err = Transient(f"timed out: no answer by the round's deadline ({seconds:g} s)", provider=w.name)
            w.counters["answers"]["transient"] = w.counters["answers"].get("transient", 0) + 1
            self._settle(w, r, task, None, err)
        r.inflight.clear()

    def _flush(self, w: _Worker, r: _Round) -> None:
        """Write what the round has so far (the round goes on)."""
        updates, events, found, health = r.updates, r.events, r.discovered, r.health
        r.updates, r.events, r.discovered, r.health = [], [], [], {}
        self._write(w, updates, events, None, found, health)

    def _limit(self, w: _Worker, r: _Round, kind: Any = ...) -> bool:
        """May this round send another request?  Takes one from the budget (and from
        the kind's daily budget, ``kind`` given) if so."""
        if r.halt or (w.probing and r.sent >= r.probes and r.answered == 0):
            return False  # a probe is out (or failed): wait for it
        daily = w.daily_for(kind) if kind is not ... else None
        if daily is not None and daily.available <= 0:
            return False
        if not w.budget.take():
            r.short = True
            return False
        if daily is not None:
            daily.take()
        return True

    def _daily_closed(self, w: _Worker, kind: str | None) -> DailyBudget | None:
        """The kind's daily budget when it is spent (its tasks wait), else None."""
        daily = w.daily_for(kind)
        return daily if daily is not None and daily.available <= 0 else None

    def _daily_wait(self, w: _Worker, r: _Round, task: Task, daily: DailyBudget) -> None:
        """A task whose kind has spent its daily requests: due again at the reset, stalled till then."""
        sched = self._sched_for(task)
        left = max(1.0, daily.reset_at - self.wall())
        sched.due = self.clock() + left
        sched.slack = 0.0
        kind = task.kind or w.provider.default_kind or ""
        poll_kind = getattr(w.provider, "poll_kind", None)
        if poll_kind is not None:
            try:
                kind = poll_kind(kind) or kind
            except Exception:
                pass
        reason = (f"daily limit of {daily.limit} requests reached for {kind}; "
                  f"resumes {_hhmm(daily.reset_at)}")
        self._set_health(w, r, task, stalled=reason)

    async def _task_round(self, w: _Worker, due: list[Task], r: _Round) -> None:
        queue = iter(due)

        async def runner(limit: int | None = None) -> None:
            n = 0
            for task in queue:
                closed = self._daily_closed(w, task.kind) if w.daily else None
                if closed is not None:
                    self._daily_wait(w, r, task, closed)
                    continue
                if not self._limit(w, r, task.kind):
                    return
                await self._poll_one(w, r, task)
                n += 1
                if limit is not None and n >= limit:
                    return

        if not (w.probing and r.answered == 0):
            await asyncio.gather(*(runner() for _ in range(w.parallel)))
            return
        # One probe first; the rest only if it got through.  A probe that takes long
        # does not hold the round: after PROBE_PATIENCE another goes (PROBE_MAX at
        # most), and the first answer lets the rest follow.
        probes = {asyncio.ensure_future(runner(limit=1))}
        try:
            while probes and r.answered == 0 and not r.halt:
                done, probes = await asyncio.wait(probes, timeout=PROBE_PATIENCE,
                                                  return_when=asyncio.FIRST_COMPLETED)
                for f in done:
                    f.result()
                if done and r.answered == 0:
                    break  # a probe failed (or found no budget): no more this round
                if not done and r.probes < PROBE_MAX:
                    r.probes += 1
                    probes.add(asyncio.ensure_future(runner(limit=1)))
            if r.answered == 0 or r.halt:
                await asyncio.gather(*probes)  # the slow ones may still answer
                return
            await asyncio.gather(*probes, *(runner() for _ in range(w.parallel)))
        finally:
            for f in probes:
                f.cancel()  # the round was cancelled (its deadline): no request outlives it

    async def _poll_one(self, w: _Worker, r: _Round, task: Task) -> None:
        """One status request (budget already taken), settled."""
        key = task.key
        r.inflight[key] = task  # still there if the round's deadline cancels the request
        fresh, err = await self._call(
            w, r, lambda t=task: w.provider.fetch_status(w.client, t.task_id, t.kind))
        r.inflight.pop(key, None)
        self._settle(w, r, task, fresh, err)

    def _call_count(self, w: _Worker, r: _Round) -> None:
        r.sent += 1
        c = w.counters
        c["requests"] += 1
        minute = int(self.wall() // 60)
        c["rpm"][minute] = c["rpm"].get(minute, 0) + 1

    async def _call(self, w: _Worker, r: _Round, factory: Callable[[], Any]) -> tuple[Any, ProviderError | None]:
        """Send one request (budget already taken); count it; classify a failure."""
        self._call_count(w, r)
        c = w.counters
        async with w.sem:
            try:
                value = await factory()
            except ProviderError as exc:
                exc.provider = exc.provider or w.name
                err = exc
            except Exception as exc:  # providers should not let anything else out
                err = BadResponse(f"unexpected failure: {type(exc).__name__}: {clean(exc, 200)}",
                                  provider=w.name)
            else:
                c["answers"]["ok"] = c["answers"].get("ok", 0) + 1
                r.answered += 1
                return value, None
        c["answers"][err.kind] = c["answers"].get(err.kind, 0) + 1
        return None, err

    def _capped(self, seconds: float) -> float:
        """A wait a provider asked for, within reason (no lockout for decades)."""
        if not math.isfinite(seconds):
            return self.max_retry_wait
        return min(max(seconds, 0.0), self.max_retry_wait)

    def _fail(self, w: _Worker, r: _Round, err: ProviderError, task_id: str | None = None) -> None:
        """Provider-level consequences of a failed request, and its event."""
        now = self.clock()
        c = w.counters
        message = clean(scrub(err.message, w.provider.api_key), 500)
        event = Event(time=self.wall(), provider=w.name, message=message, task_id=task_id,
                      status=err.status, kind=err.kind, retry_after=err.retry_after)
        if isinstance(err, NotFound):
            r.answered += 1
            return  # an answer, not a failure: the task ends as not_found
        c["errors"] += 1
        c["last_error"] = f"{err.kind}: {message}"[:300]
        c["last_error_at"] = self.wall()
        if isinstance(err, ClientError):
            r.answered += 1  # the provider answered: the request about this task is refused
            r.events.append(event)
            return
        if isinstance(err, AuthError):
            r.halt = AUTH_FAILED
            if w.state != AUTH_FAILED:
                w.state = AUTH_FAILED
                w.retry_mono = None
                r.events.append(event)  # once per refusal, not once per task
            return
        if err.retry_after is not None:
            event.retry_after = self._capped(err.retry_after)
        r.events.append(event)
        if isinstance(err, RateLimited):
            c["rate_limited"] += 1
            wait = self._capped(err.retry_after if err.retry_after is not None else DEFAULT_RETRY_AFTER)
            until = now + wait + RETRY_MARGIN
            w.retry_mono = max(w.retry_mono or 0.0, until)
            w.state = RATE_LIMITED
            w.parallel = max(1, w.parallel // 2)
            r.halt = RATE_LIMITED
        elif isinstance(err, QuotaExhausted):
            w.state = QUOTA_EXHAUSTED
            w.retry_mono = now + min(QUOTA_PROBE, self.max_retry_wait)
            r.halt = QUOTA_EXHAUSTED
        elif isinstance(err, Transient):
            r.transient += 1
            if is_network_down(err):
                r.network += 1
            if err.retry_after is not None:  # a 503 that says when to come back
                w.retry_mono = max(w.retry_mono or 0.0, now + self._capped(err.retry_after) + RETRY_MARGIN)
            if r.answered == 0:
                r.halt = BACKING_OFF  # nothing works yet: do not hammer, probe later

    def _backoff_task(self, w: _Worker, task: Task) -> None:
        sched = self._sched_for(task)
        sched.fails += 1
        sched.slack = 0.0
        sched.due = self.clock() + backoff(sched.fails, max(w.poll_interval, 1.0), self.max_interval, self.rand)

    def _answered(self, w: _Worker, task: Task, fresh: Task) -> None:
        now, wall_now = self.clock(), self.wall()
        sched = self._sched_for(task)
        merged = fresh.copy(created_at=fresh.created_at or task.created_at, eta=fresh.eta or task.eta,
                            model=fresh.model or task.model)
        age = wall_now - merged.created_at if merged.created_at else None
        if age is not None and 0.0 <= age <= MAX_AGE:
            sched.born = now - age  # the provider says when it began
        seen_live = sched.polls > 0 and sched.signature is not None and sched.signature[0] not in TERMINAL
        last_poll = sched.last_poll
        observe(sched, merged, now)
        kind = (w.name, merged.kind or "", merged.model or "")
        durations = self._durations.get(kind)
        if durations is None and len(self._durations) < MAX_KINDS:
            durations = self._durations[kind] = Durations()
        if (durations is not None and merged.state == SUCCEEDED and seen_live and last_poll is not None
                and sched.born is not None):
            durations.add((last_poll + now) / 2 - sched.born)  # ended between the last two answers
        sched.interval, sched.slack = plan(w.poll_interval, sched, merged, now, wall_now, self.adaptive,
                                           self.max_interval, QUIET_CAP, durations)
        sched.due = now + sched.interval

    # ------------------------------------------------------------ task health

    def _poll_path(self, w: _Worker, task: Task) -> str | None:
        """The path the task's status is asked at (for messages and the detail view)."""
        sched = self._sched_for(task)
        kind = task.kind or w.provider.default_kind
        if sched.path is not None and sched.path[0] == kind:
            return sched.path[1]
        path: str | None = None
        try:
            status_path = getattr(w.provider, "status_path", None)
            if status_path is not None:
                path = status_path(task.task_id, kind)
            else:
                path = httpx.URL(w.provider.status_request(task.task_id, kind).url).path
        except Exception:
            path = None
        path = clean(scrub(path, w.provider.api_key), 300) or None if path else None
        sched.path = (kind, path)
        return path

    def _typical(self, w: _Worker, task: Task) -> float | None:
        """The median learned duration of tasks like this one, if any were learned."""
        d = self._durations.get((w.name, task.kind or "", task.model or ""))
        if d is None or not len(d):
            return None
        return d._sorted[len(d._sorted) // 2]

    def _quiet_stall(self, w: _Worker, task: Task, sched: Schedule) -> str | None:
        """Why an answering task seems stuck (its state has not moved for far longer
        than tasks like it take), or None."""
        if task.terminal or sched.last_change is None:
            return None
        quiet = self.clock() - sched.last_change
        typical = self._typical(w, task)
        after = getattr(w.provider, "stall_after", STALL_AFTER)
        if not isinstance(after, (int, float)) or not after > 0:
            after = STALL_AFTER
        limit = max(float(after), STALL_FACTOR * typical if typical else 0.0)
        if quiet <= limit:
            return None
        reason = f"no change for {_span(quiet)}"
        if typical:
            reason += f"; tasks like it take ~{_span(typical)}"
        hint_of = getattr(w.provider, "stall_hint", None)
        if hint_of is not None:
            try:
                hint = hint_of(task)
            except Exception:
                hint = None
            if hint:
                reason += f"; {clean(hint, 300)}"
        return reason

    def _known_health(self, task: Task) -> tuple:
        known = self._health.get(task.key)
        if known is None:
            known = (getattr(task, "last_error", None), getattr(task, "last_error_at", None),
                     getattr(task, "failed_polls", 0) or 0, getattr(task, "stalled", None),
                     getattr(task, "poll_path", None))
        return known

    def _set_health(self, w: _Worker, r: _Round, task: Task, *, write: bool = True, **fields: Any) -> dict:
        """Note a task's poll health; queued for the store only when it changed."""
        old = self._known_health(task)
        values = dict(zip(HEALTH_KEYS, old))
        values.update(fields)
        new = tuple(values[k] for k in HEALTH_KEYS)
        key = task.key
        if values["failed_polls"]:
            w.failing[key] = values["last_error"] or "failing"
        else:
            w.failing.pop(key, None)
        if values["stalled"]:
            w.stalled[key] = values["stalled"]
        else:
            w.stalled.pop(key, None)
        if new != old:
            self._health[key] = new
            if write:
                r.health[key] = values
        return values

    def _settle(self, w: _Worker, r: _Round, task: Task, fresh: Task | None, err: ProviderError | None) -> None:
        sched = self._sched_for(task)
        before = sched.path
        path = self._poll_path(w, task)
        if before is not None and before[1] != path:
            # re-added with a --kind that polls elsewhere (the store cleared its health): new to us
            sched = self._sched[task.key] = Schedule(due=self.clock(), path=sched.path)
            self._health.pop(task.key, None)
            w.failing.pop(task.key, None)
            w.stalled.pop(task.key, None)
        if err is None and fresh is not None:
            self._answered(w, task, fresh)
            sched.fail_since = None
            stalled = None if fresh.terminal else self._quiet_stall(w, fresh, sched)
            values = self._set_health(w, r, task, write=False, last_error=None, last_error_at=None,
                                      failed_polls=0, stalled=stalled, poll_path=path)
            for name in HEALTH_KEYS:
                setattr(fresh, name, values[name])  # an answer writes its own health
            if fresh.terminal:
                w.failing.pop(task.key, None)
                w.stalled.pop(task.key, None)
                self._health.pop(task.key, None)
            r.updates.append(fresh)
            return
        assert err is not None
        self._fail(w, r, err, task.task_id)
        message = clean(scrub(err.message, w.provider.api_key), 500)
        ended: Task | None = None
        if isinstance(err, NotFound):
            if sched.polls == 0 and task.provider_status is None:  # never seen alive
                message = f"not found at {path or 'its status path'}"
                kinds = tuple(getattr(w.provider, "known_kinds", ()) or ())
                if kinds or w.provider.default_kind is not None:
                    message += " — wrong --kind?"
                    if kinds:
                        message += " known kinds: " + ", ".join(clean(k, 80) for k in kinds)
                elif err.message:
                    message += f": {clean(scrub(err.message, w.provider.api_key), 300)}"
            ended = Task(provider=w.name, task_id=task.task_id, kind=task.kind, state=NOT_FOUND,
                         error=clean(message, 500) or "not found", updated_at=self.wall())
        elif isinstance(err, ClientError):  # another 4xx about the task: asking again will not help
            head = (f"request refused (HTTP {err.status})" if err.status is not None
                    else "request could not be sent")
            ended = Task(provider=w.name, task_id=task.task_id, kind=task.kind, state=FAILED,
                         error=clean(f"{head}: {message}", 500), updated_at=self.wall())
        elif isinstance(err, (Transient, BadResponse)):  # never ends a task: counted, visible
            now_wall = self.wall()
            if sched.fail_since is None:
                sched.fail_since = now_wall
            old = self._known_health(task)
            fails = int(old[2] or 0) + 1
            text = clean(f"HTTP {err.status}: {message}" if err.status is not None else message, 300)
            stalled = (f"polls failing since {_hhmm(sched.fail_since)}: {text}"
                       if fails >= STALL_FAILS else None)
            self._set_health(w, r, task, last_error=text, last_error_at=now_wall, failed_polls=fails,
                             stalled=stalled, poll_path=path)
            self._backoff_task(w, task)
            return
        else:  # rate limited, refused key, no credits: the provider's state says it
            return
        ended.poll_path = path
        self._set_health(w, r, task, write=False, last_error=None, last_error_at=None, failed_polls=0,
                         stalled=None, poll_path=path)
        w.failing.pop(task.key, None)
        w.stalled.pop(task.key, None)
        self._health.pop(task.key, None)
        r.updates.append(ended)

    # ------------------------------------------------------------ optional endpoints

    def _switch_off(self, w: _Worker, r: _Round, name: str, reason: str, err: ProviderError | None = None) -> None:
        """An optional endpoint (a list, the balance) failed or proved useless: off for
        ``OPTIONAL_RETRY``, said once; each task is asked on its own meanwhile."""
        w.off[name] = (self.clock() + OPTIONAL_RETRY, reason)
        what = "balance" if name == "balance" else (
            f"list of {name[5:]}" if name[5:] else "list")
        text = clean(scrub(f"{what} switched off for {_span(OPTIONAL_RETRY)}: {reason}", w.provider.api_key), 500)
        if err is not None:
            w.counters["errors"] += 1
            w.counters["last_error"] = f"{err.kind}: {text}"[:300]
            w.counters["last_error_at"] = self.wall()
        r.events.append(Event(time=self.wall(), provider=w.name, message=text,
                              status=err.status if err is not None else None,
                              kind=err.kind if err is not None else "info"))

    def _endpoint_off(self, w: _Worker, name: str) -> bool:
        entry = w.off.get(name)
        if entry is None:
            return False
        if self.clock() < entry[0]:
            return True
        del w.off[name]  # time to try it again
        if name.startswith("list:"):
            kind = name[5:] or None
            w.useless[kind] = USELESS_ROUNDS - 1  # one more useless answer turns it off again
        return False

    async def _list_round(self, w: _Worker, live: list[Task], due: list[Task], r: _Round) -> list[Task]:
        """One list request per kind refreshes every task of that kind; returns the
        due tasks the lists did not answer for (fetched one by one).  A list is an
        optimisation, never a gate: one that fails, or keeps naming none of the
        tracked tasks, is switched off and each task is asked on its own."""
        default = w.provider.default_kind
        leftover = list(due)
        # an unproven provider is probed with a status request, never the list
        if w.probing and r.answered == 0 and leftover:
            first = next((t for t in leftover if not (w.daily and self._daily_closed(w, t.kind))), None)
            if first is not None:
                if self._limit(w, r, first.kind):
                    await self._poll_one(w, r, first)
                    leftover = [t for t in leftover if t is not first]
                if r.answered == 0 or r.halt:
                    return []
        kinds: list[str | None] = []
        for t in leftover:
            kind = t.kind or default
            if kind not in kinds:
                kinds.append(kind)
        if w.discover:
            for kind in w.kinds or [default]:
                if kind not in kinds:
                    kinds.append(kind)
        kinds = [k for k in kinds if not self._endpoint_off(w, f"list:{k or ''}")]
        tracked = {t.task_id: t for t in live}
        # tasks an earlier list saw COMPLETED whose detail found no budget come first,
        # so that a burst of one token is not spent on the list round after round
        asked: set[str] = set()
        for old in [t for t in live if t.key in w.pending]:
            if not self._limit(w, r, old.kind):
                break
            await self._poll_one(w, r, old)
            w.pending.discard(old.key)
            asked.add(old.task_id)
        leftover = [t for t in leftover if t.task_id not in asked]
        wanted = {(t.kind or default) for t in leftover}
        kinds = [k for k in kinds if k in wanted or w.discover]
        if r.halt or not kinds:
            return leftover
        if w.discover:
            w.list_due = self.clock() + max(w.poll_interval, self.discover_interval)
        details: list[tuple[Task, Task]] = []
        seen_new: set[str] = set()
        for kind in kinds:
            if w.daily and self._daily_closed(w, kind) is not None:
                continue  # its tasks wait for the daily reset (said per task below)
            if not self._limit(w, r, kind):
                break
            rows, err = await self._call(w, r, lambda k=kind: w.provider.fetch_list(w.client, k))
            if err is not None:
                if isinstance(err, (RateLimited, AuthError, QuotaExhausted)):
                    self._fail(w, r, err)  # the provider's, not the list's: the round stops
                    break
                detail = f"HTTP {err.status}: " if err.status is not None else ""
                self._switch_off(w, r, f"list:{kind or ''}",
                                 f"{err.kind} ({detail}{clean(err.message, 200)}); asking each task instead", err)
                continue
            rows = rows or []
            answered: set[str] = set()
            found = 0
            for row in rows:
                old = tracked.get(row.task_id)
                if old is None:
                    if w.discover and row.key not in seen_new and self.store.get(row.key) is None:
                        if self._may_discover(w, r):
                            seen_new.add(row.key)
                            r.discovered.append(row.copy(kind=row.kind or kind))
                            w.discovered += 1
                            found += 1
                    continue
                if (old.kind or default) != kind or row.task_id in asked:
                    continue
                answered.add(row.task_id)
                if row.state == SUCCEEDED and not row.results:
                    details.append((old, row))  # the list has no `generated`: ask once
                else:
                    self._settle(w, r, old, row, None)
            mine = sum(1 for t in leftover if (t.kind or default) == kind)
            if answered or found or not mine:
                w.useless[kind] = 0
            else:
                w.useless[kind] = w.useless.get(kind, 0) + 1
                if w.useless[kind] >= USELESS_ROUNDS:
                    w.useless[kind] = 0
                    self._switch_off(w, r, f"list:{kind or ''}",
                                     f"its answers named none of the {mine} tracked task(s) "
                                     f"{USELESS_ROUNDS} times; asking each task instead")
            leftover = [t for t in leftover if not ((t.kind or default) == kind and t.task_id in answered)]
        for n, (old, row) in enumerate(details):
            if not self._limit(w, r, old.kind):
                # no budget left for these details: they go first next round (still due)
                w.pending.update(o.key for o, _ in details[n:])
                break
            await self._poll_one(w, r, old)
        return [t for t in leftover if t.task_id in tracked]

    def _may_discover(self, w: _Worker, r: _Round) -> bool:
        """Discovery has a bound: per round and in all; reaching one is said once."""
        if len(r.discovered) >= self.discover_max_round:
            cap, text = "round", f"discovery adds at most {self.discover_max_round} tasks a round; the rest wait"
        elif w.discovered >= self.discover_max_total:
            cap, text = "total", (f"discovery stopped: it added {self.discover_max_total} tasks "
                                  "(engine discover_max_total)")
        else:
            return True
        if cap not in w.capped:
            w.capped.add(cap)
            r.events.append(Event(time=self.wall(), provider=w.name, message=text, kind="info"))
        return False

    async def _fetch_balance(self, w: _Worker, r: _Round) -> None:
        """Fetch the balance (counted against the budget).  An optimisation: a failing
        balance endpoint is switched off for a while, said once, never a gate."""
        if self._endpoint_off(w, "balance"):
            return
        if not self._limit(w, r):
            return
        w.balance_due = self.clock() + w.balance_interval
        balance, err = await self._call(w, r, lambda: w.provider.fetch_balance(w.client))
        if err is not None:
            if isinstance(err, RateLimited):
                self._fail(w, r, err)
                w.balance_due = self.clock() + min(w.balance_interval, 60.0)  # sooner than usual
                return
            detail = f"HTTP {err.status}: " if err.status is not None else ""
            self._switch_off(w, r, "balance", f"{err.kind} ({detail}{clean(err.message, 200)})", err)
            return
        w.balance = balance.remaining
        w.balance_unit = balance.unit
        w.counters["balance_at"] = self.wall()

    # ------------------------------------------------------------ after a round

    def _finish(self, w: _Worker, r: _Round) -> None:
        """Provider state after a round, then the rest of its answers to the store."""
        now = self.clock()
        before = (w.state, w.cause)
        if r.halt in (RATE_LIMITED, AUTH_FAILED, QUOTA_EXHAUSTED):
            pass  # set by _fail
        elif r.transient and not r.answered:
            w.fails += 1
            w.state = OFFLINE if r.network == r.transient else BACKING_OFF
            wait = backoff(w.fails, max(0.5, min(w.poll_interval, 5.0)), self.max_backoff, self.rand)
            w.retry_mono = max(w.retry_mono or 0.0, now + wait)
        elif r.answered:
            w.fails = 0
            if not r.transient and r.sent >= w.parallel:
                w.parallel = min(w.concurrency, w.parallel + 1)
            if not w.verified:
                w.verified = True
                self._wake(w)
            if w.state not in (OK, DEGRADED):
                w.state = OK
                if w.retry_mono is not None and w.retry_mono <= now:
                    w.retry_mono = None
                self._wake(w)  # a probe got through: go on at once
        if w.state in (OK, DEGRADED):
            w.cause = self._degraded_cause(w)
            w.state = DEGRADED if w.cause else OK
        else:
            w.cause = w.counters.get("last_error")
        changed = (w.state, w.cause) != before
        if not (r.updates or r.events or r.sent or r.discovered or r.health or changed or w.has_unsaved):
            return
        self._write(w, r.updates, r.events, {w.name: self._counters_blob(w)}, r.discovered, r.health)

    def _degraded_cause(self, w: _Worker) -> str | None:
        """Why an answering provider is not ok: tasks whose polls fail, stalled tasks."""
        for table in (w.failing, w.stalled):
            for key in [k for k in table if (t := self.store.get(k)) is None or t.terminal]:
                del table[key]
        parts = []
        if w.failing:
            last = next(reversed(w.failing.values()))
            n = len(w.failing)
            who = f"{n} tasks'" if n > 1 else "1 task's"
            parts.append(f"{who} polls failing ({clean(last, 160)})")
        quiet = {k: v for k, v in w.stalled.items() if k not in w.failing}
        if quiet:
            n = len(quiet)
            parts.append(f"{n} task{'s' if n > 1 else ''} stalled ({clean(next(iter(quiet.values())), 160)})")
        return "; ".join(parts) or None

    def _write(self, w: _Worker, updates: list[Task], events: list[Event], counters: dict | None,
               found: list[Task] | None = None, health: dict[str, dict] | None = None) -> None:
        """Write answers, events, counters and poll health.  What an earlier write could
        not store goes first.  If the store cannot write (disk full, read-only ...),
        everything is kept in memory (merged by key) and tried again with the next
        write: ``store_problem`` says why meanwhile.  An answer the store itself
        refuses (one it cannot encode) is dropped with an event; the others go in."""
        found = list(found or [])
        health = dict(health or {})
        if w.has_unsaved:  # older first: a newer answer or health of the same task wins
            merged = dict(w.unsaved_updates)
            old_health = w.unsaved_health
            for t in updates:
                merged[t.key] = t
                old_health.pop(t.key, None)  # an answer carries its own (newer) health
            for key, fields in health.items():
                pending = merged.get(key)
                if pending is not None:  # newer health than a kept answer: onto that answer
                    for name, value in fields.items():
                        if name in HEALTH_KEYS:
                            setattr(pending, name, value)
                else:
                    old_health[key] = {**old_health.get(key, {}), **fields}
            updates = list(merged.values())
            merged_found = dict(w.unsaved_found)
            merged_found.update((t.key, t) for t in found)
            found = list(merged_found.values())
            events = list(w.unsaved_events) + list(events)
            health = old_health
            counters = counters or w.unsaved_counters
            w.unsaved_updates, w.unsaved_found, w.unsaved_health = {}, {}, {}
            w.unsaved_events.clear()
            w.unsaved_counters = None
        try:
            if found:
                self._apply(w, found, [], None, discovered=True)
            if updates or events or counters or health:
                self._apply(w, updates, events, counters, health=health)
        except Exception as exc:
            if not self._store_trouble(exc):
                self._write_each(w, updates, events, counters, found, health, exc)
                return
            if updates or found:
                try:  # is it the store, or one answer in the batch?
                    self._apply(w, [], [], {w.name: self._counters_blob(w)})
                except Exception as again:
                    if self._store_trouble(again):
                        self._keep(w, updates, events, counters, found, health, again)
                        return
                self._write_each(w, updates, events, counters, found, health, exc)
                return
            self._keep(w, updates, events, counters, found, health, exc)
            return
        self._store_ok()

    def _write_each(self, w: _Worker, updates: list[Task], events: list[Event], counters: dict | None,
                    found: list[Task], health: dict, exc: BaseException) -> None:
        """The store refused a batch over one answer: store what it takes, one task at a time."""
        dropped: list[Event] = []
        for discovered, batch in ((True, found), (False, updates)):
            for task in batch:
                try:
                    self._apply(w, [task], [], None, discovered=discovered)
                except Exception as one:
                    dropped.append(Event(time=self.wall(), provider=w.name, task_id=clean(task.task_id, 200),
                                         kind="bad_response", message=clean(
                                             f"answer not stored: {type(one).__name__}", 200)))
        try:
            self._apply(w, [], list(events) + dropped, counters, health=health)
        except Exception as last:
            self._keep(w, [], list(events) + dropped, counters, [], health, last)
            return
        self._store_ok()

    def _apply(self, w: _Worker, updates: list[Task], events: list[Event], counters: dict | None,
               discovered: bool = False, health: dict | None = None) -> Any:
        if health and self._takes_health():
            return self.store.apply(updates, events, counters, discovered=discovered, health=health)
        return self.store.apply(updates, events, counters, discovered=discovered)

    def _takes_health(self) -> bool:
        if self._health_kw is None:
            try:
                params = inspect.signature(self.store.apply).parameters
                self._health_kw = "health" in params or any(
                    p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            except (TypeError, ValueError):
                self._health_kw = False
        return self._health_kw

    @staticmethod
    def _store_trouble(exc: BaseException) -> bool:
        """The store cannot write (as opposed to refusing one answer)."""
        names = {c.__name__ for c in type(exc).__mro__}
        return bool(names & {"StoreError", "StoreWriteError", "StoreBusy"}) or isinstance(
            exc, (sqlite3.Error, OSError))

    def _keep(self, w: _Worker, updates: list[Task], events: list[Event], counters: dict | None,
              found: list[Task], health: dict, exc: BaseException) -> None:
        """The store cannot write: keep it all (merged by key) for the next write."""
        for t in updates:
            w.unsaved_updates[t.key] = t
        for t in found:
            w.unsaved_found[t.key] = t
        w.unsaved_events.extend(events)
        for key, fields in (health or {}).items():
            w.unsaved_health[key] = {**w.unsaved_health.get(key, {}), **fields}
        if counters:
            w.unsaved_counters = counters
        reason = clean(scrub(str(exc) or type(exc).__name__, w.provider.api_key), 200)
        self.store_problem = clean(f"answers not written to the task database (kept in memory, retried): "
                                   f"{reason}", 300)

    def _store_ok(self) -> None:
        if self.store_problem is not None and not any(x.has_unsaved for x in self.workers.values()):
            self.store_problem = None

    def _counters_blob(self, w: _Worker) -> dict[str, Any]:
        c = w.counters
        floor = int(self.wall() // 60) - RPM_MINUTES
        c["rpm"] = {m: n for m, n in c["rpm"].items() if m > floor}
        wall_now = self.wall()
        blob = dict(c)
        blob["rpm"] = {str(m): n for m, n in c["rpm"].items()}
        blob["answers"] = dict(c["answers"])
        blob["state"] = w.state
        blob["cause"] = w.cause
        blob["retry_at"] = self._retry_wall(w)
        blob["recent"] = [round(wall_now - age, 3) for age in w.budget.recent()]
        blob["balance"] = w.balance
        blob["balance_unit"] = w.balance_unit
        blob["durations"] = {f"{kind}\t{model}": [round(v, 1) for v in d.values()]
                             for (provider, kind, model), d in self._durations.items()
                             if provider == w.name and len(d)}
        if w.daily:
            blob["daily"] = {kind: d.to_dict() for kind, d in w.daily.items()}
        now = self.clock()
        blob["endpoints_off"] = {name: {"reason": reason, "until": round(wall_now + until - now, 3)}
                                 for name, (until, reason) in w.off.items() if until > now}
        blob["discovered"] = w.discovered
        return blob

    def _retry_wall(self, w: _Worker) -> float | None:
        if w.retry_mono is None:
            return None
        left = w.retry_mono - self.clock()
        return self.wall() + left if left > 0 else None

    def _log_internal(self, w: _Worker, exc: Exception) -> None:
        message = clean(scrub(f"internal error: {type(exc).__name__}: {exc}", w.provider.api_key), 500)
        w.counters["last_error"] = message
        try:
            self.store.log([Event(time=self.wall(), provider=w.name, message=message, kind="internal")])
        except Exception:
            pass

    # ------------------------------------------------------------ reporting

    def _credits(self) -> dict[str, float]:
        revision = getattr(self.store, "revision", None)
        if self._credits_cache is not None and revision is not None and self._credits_cache[0] == revision:
            return self._credits_cache[1]
        totals: dict[str, float] = {}
        for t in self.store.tasks():
            if t.credits:
                totals[t.provider] = totals.get(t.provider, 0.0) + float(t.credits)
        if revision is not None:
            self._credits_cache = (revision, totals)
        return totals

    def status(self, name: str) -> ProviderStatus:
        """The dashboard's view of one configured provider."""
        w = self.workers[name]
        c = w.counters
        minute = int(self.wall() // 60)
        rpm = [int(c["rpm"].get(m, 0)) for m in range(minute - RPM_MINUTES + 1, minute + 1)]
        counts = self.store.counts_by_provider().get(name, {}) if hasattr(self.store, "counts_by_provider") else {}
        return ProviderStatus(
            name=name, state=w.state, retry_at=self._retry_wall(w),
            requests=c["requests"], errors=c["errors"], rate_limited=c["rate_limited"],
            last_error=c["last_error"], credits_spent=round(self._credits().get(name, 0.0), 6),
            balance=w.balance, balance_unit=w.balance_unit, budget=w.rate_text,
            budget_capacity=w.budget.capacity, budget_available=w.budget.available,
            rpm=rpm, paused=self.paused, answers=dict(c["answers"]), tasks=dict(counts),
            cause=w.cause if w.state != OK else None,
        )

    def statuses(self) -> list[ProviderStatus]:
        return [self.status(name) for name in self.workers]

    def quota(self) -> list[dict[str, Any]]:
        """The ``quota --json`` objects of DESIGN.md, one per configured provider."""
        out = []
        for s in self.statuses():
            out.append({
                "provider": s.name, "state": s.state, "requests": s.requests, "errors": s.errors,
                "rate_limited": s.rate_limited, "retry_at": iso(s.retry_at),
                "credits_spent": s.credits_spent, "balance": s.balance,
                "budget_left": s.budget_available, "tasks": s.tasks,
                "budget": s.budget, "balance_unit": s.balance_unit if s.balance is not None else None,
                "last_error": s.last_error, "paused": s.paused, "answers": s.answers, "enabled": True,
                "cause": s.cause,
            })
        # configured but switched off (enabled = false): listed, never polled
        saved = self._saved_counters()
        counts = self.store.counts_by_provider() if hasattr(self.store, "counts_by_provider") else {}
        for name, cfg in (getattr(self.config, "providers", {}) or {}).items():
            if name in self.workers:
                continue
            blob = saved.get(name) or {}
            out.append({
                "provider": name, "state": "disabled", "requests": int(blob.get("requests") or 0),
                "errors": int(blob.get("errors") or 0), "rate_limited": int(blob.get("rate_limited") or 0),
                "retry_at": None, "credits_spent": round(self._credits().get(name, 0.0), 6),
                "balance": blob.get("balance"), "budget_left": None, "tasks": dict(counts.get(name, {})),
                "budget": str(_pc(cfg, "rate_limit", "")) or None, "balance_unit": blob.get("balance_unit"),
                "last_error": blob.get("last_error"), "paused": self.paused, "answers": dict(blob.get("answers") or {}),
                "enabled": False, "cause": None,
            })
        return out


HEALTH_KEYS = ("last_error", "last_error_at", "failed_polls", "stalled", "poll_path")


def _hhmm(wall: float) -> str:
    """A wall time as local HH:MM (what a person reads beside a message)."""
    try:
        return time.strftime("%H:%M", time.localtime(wall))
    except (OverflowError, OSError, ValueError):
        return "?"


def _span(seconds: float) -> str:
    """42s, 3m, 1h 5m, 2d 3h: a duration for a message."""
    s = int(max(0.0, seconds) + 0.5)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 120:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def is_network_down(err: ProviderError) -> bool:
    """No answer at all: refused, reset, DNS, or a connect timeout (a read timeout
    means the server is there but slow)."""
    if err.status is not None:
        return False
    return not err.message.startswith("timed out") or "ConnectTimeout" in err.message


def scrub(text: str, secret: str | None) -> str:
    """Mask a secret in text that might echo it (an error body, an exception), in
    every form a server could echo it (``tui.redact``: encoded, upper-case ...)."""
    text = str(text)
    if not secret or len(secret) < 4:
        return text
    if _redact is not None:
        return _redact(text, secret)
    return text.replace(secret, "***") if secret in text else text


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


__all__ = ["Engine", "ProviderStatus", "Schedule", "next_interval", "backoff", "priority",
           "PROVIDER_STATES", "DEGRADED"]
