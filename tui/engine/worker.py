"""One provider's worker: its HTTP client, request budget, state, and rounds.

A round refreshes the tasks that are due, most-likely-changed first, within
the budget (and a kind's daily budget, where the provider has one), and writes
the answers, events, poll health and the provider's health to the store as
they arrive (at least every ``FLUSH_EVERY`` seconds, and at the end), so one
slow request never holds the others' answers; a round has a deadline, after
which the requests still out count as failed polls.  The first request of a
round is sent alone while the provider is unproven (just started, failing,
after a 429), always a status request; the rest follow only if it got
through.  List providers (``has_list``) refresh every task of a kind with one
request and fetch a task's detail only when the list says it just COMPLETED
without results; the list is asked for when the first due task can wait no
longer (its ``slack``), and its answer reschedules every task it lists.  A
list, like the balance, is an optimisation and never a gate: one that fails
or keeps naming none of the tracked tasks is switched off for
``OPTIONAL_RETRY`` (one event says why) and each task is asked on its own in
the same round.  When a round ends the worker re-arms a one-shot sleep until
the next task is due, so rounds never overlap.

No live task is silently stuck: each carries its poll health (failed polls in
a row, the last error, the path asked, and a ``stalled`` reason after
``STALL_FAILS`` failures or a quiet spell far longer than tasks like it take),
written only when it changes.  A 404 ends a task ``not_found`` (naming the path
and the known kinds when it was never seen alive), another 4xx ends it
``failed``; transient and unreadable answers never end a task.  When the store
cannot write, answers are kept in memory and written later (``store_problem``).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import sqlite3
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import httpx

from ..budget import Budget, DailyBudget
from ..lease import Lease, LeaseInfo
from ..model import (
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
)
from ..providers import make_provider
from ..redact import redact
from ..store import HEALTH_KEYS, StoreError

try:  # freshness (Task.polled_at, next_poll_at), written through apply(health=...) where the store keeps it
    from ..store import FRESH_KEYS
except ImportError:  # a store without those columns
    FRESH_KEYS: tuple[str, ...] = ()
from ..text import clean
from .health import (
    AUTH_FAILED,
    BACKING_OFF,
    DEGRADED,
    OFFLINE,
    OK,
    QUOTA_EXHAUSTED,
    RATE_LIMITED,
    RPM_MINUTES,
    ProviderHealth,
)
from .schedule import MAX_KINDS, QUIET_CAP, Durations, Schedule, backoff, first_wait, observe, plan, priority

if TYPE_CHECKING:
    from ..config import EngineConfig, ProviderConfig
    from ..providers.base import Provider
    from ..store import Store

DEFAULT_RETRY_AFTER = 60.0  # a 429 that does not say how long to wait
FOREIGN_KEYS = ("push",)  # parts of a provider's counters blob that other writers own (tui.push)
RETRY_MARGIN = 0.25  # seconds added to a provider's Retry-After
QUOTA_PROBE = 600.0  # a provider out of credits is asked again every 10 minutes
MAX_AGE = 7 * 86400.0  # a created_at older than this (or in the future) says nothing of when a task began
IDLE_WAKE = 2.0  # a worker looks for new tasks (other processes' adds) this often
OPTIONAL_RETRY = 1800.0  # a list/history/balance endpoint switched off is tried again after this
USELESS_ROUNDS = 3  # list answers in a row naming none of the tracked tasks of its kind: switched off
MAX_STRANGERS = 10_000  # untracked tasks a list names whose end is watched to learn their length
STALL_FAILS = 3  # failed polls in a row that make a task stalled
STALL_AFTER = 1800.0  # a task whose state has not moved for this long is stalled (provider.stall_after)
STALL_FACTOR = 4.0  # ... or for this many times the typical learned duration, if longer
PROBE_PATIENCE = 3.0  # seconds a probe may take before another task is probed alongside it
PROBE_MAX = 4  # probes out at once at most
FLUSH_EVERY = 1.0  # seconds of round time between two writes of the answers received so far
UNSAVED_EVENTS = 1000  # events kept in memory while the store refuses writes
LEASE_LOST = "lease"  # Round.halt: another process holds this provider key's lease now
SAFETY_NET = 600.0  # a task fed by push is polled this often, as a safety net ([listen] safety_net)
PUSH_SILENT_FACTOR = 3.0  # a push-fed task this many times its learned duration old, with no push ...
PUSH_SILENT_GRACE = 120.0  # ... for at least this long (and past its duration by this much): push silent
PUSHED_AT = "pushed_at"  # the details key (epoch seconds, as text) by which the store marks a push-fed task
# [providers.X] push (tui/config.py): its tasks are created with a push address, so while this process
# receives its pushes (``push_route``) a task is fed by push from first sight: no first poll
PUSH_MODES = ("callback", "webhook")
NET_END_QUANTILE = 0.9  # the safety net's one check "near the predicted end": when 9 in 10 such tasks have ended
NET_END_LEARNED = 3  # ... once this many lengths were learned (else the safety_net interval)
NET_END_CAP = 3.0  # ... and never later than this many safety_net intervals after the last check


class Round:
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


class Worker:
    """Polls one provider's live tasks and writes what it learns to the store."""

    def __init__(self, name: str, cfg: ProviderConfig, store: Store, knobs: EngineConfig, *,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random, adaptive: bool = True,
                 safety_net: float | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.store = store
        self.knobs = knobs
        self.clock, self.wall, self.rand = clock, wall, rand
        self.adaptive = adaptive
        self.max_retry_wait = max(1.0, float(knobs.max_retry_wait))
        self.provider: Provider = make_provider(name, cfg.api_key.get_secret_value(), cfg.base_url,
                                                cfg.declaration)
        self.timeout = float(cfg.timeout)
        self.provider.deadline = self.timeout  # one request, headers and body, at most this long
        self.provider.max_body = int(cfg.max_body)
        self.round_deadline = max(10.0, 2.0 * self.timeout + 5.0)  # a round's requests are given up after this
        self.poll_interval = float(cfg.poll_interval)
        self.concurrency = int(cfg.concurrency)
        rate = cfg.rate_limit
        self.budget = Budget.for_provider(rate.count, rate.per, self.concurrency, clock)
        self.rate_text = str(rate)
        # requests in flight at once: halved by every 429 (the ones already in flight
        # when a 429 is issued cannot be called back), grown by one per clean round
        self.parallel = self.concurrency
        self.discover = bool(cfg.discover)
        self.kinds = list(cfg.kinds)
        self.balance_interval = float(cfg.balance_interval)
        self.sem = asyncio.Semaphore(self.concurrency)
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client: httpx.AsyncClient | None = None
        self.runner: asyncio.Task | None = None
        self.paused = False
        self.stopping = False  # set by Engine.stop: the loop ends even if a cancellation is swallowed
        self.focus: set[str] | None = None  # poll only these keys (``tasktui wait``); None: all
        self.once = False  # a refresh asked for while paused
        self.verified = False  # has answered at least once since (re)start
        # state
        self.state = OK
        self.cause: str | None = None  # why the state is not ok
        self.retry_mono: float | None = None  # no request before this (monotonic)
        self.fails = 0  # consecutive failed rounds
        self.one_shot = False  # refresh_now on a rate-limited / out-of-quota provider: one request may go
        self.balance_due = 0.0
        self.list_due = 0.0  # next discovery list (discover = true)
        self.listed: dict[str | None, float] = {}  # kind -> when its list last answered (monotonic)
        self.list_named: dict[str | None, set[str]] = {}  # kind -> the untracked keys its last list named
        self.strangers: dict[str, tuple[str | None, float, float]] = {}  # untracked key -> (kind, born, seen live)
        self.pending: set[str] = set()  # keys a list saw COMPLETED, detail still to fetch
        self.due_cache: tuple[int, float | None] | None = None  # (store revision, next due)
        self.live_cache: tuple[int, list[tuple[Task, str]]] | None = None
        # optional endpoints switched off: "list:<kind>" / "balance" -> (until, monotonic; reason)
        self.off: dict[str, tuple[float, str]] = {}
        self.useless: dict[str | None, int] = {}  # list answers in a row that named no tracked task
        self.failing: dict[str, str] = {}  # live task key -> its last poll error (its polls fail)
        self.stalled: dict[str, str] = {}  # live task key -> why it cannot progress
        self.capped: set[str] = set()  # discovery caps already reported
        self.sched: dict[str, Schedule] = {}  # task key -> its schedule
        self.durations: dict[tuple[str, str], Durations] = {}  # (kind, model) -> learned durations
        self.task_health: dict[str, tuple] = {}  # task key -> the poll health last written
        self.daily: dict[str, DailyBudget] = {}
        daily = self.provider.daily_limits or {}
        if cfg.daily_limits and isinstance(daily, dict):
            for kind, limit in daily.items():
                if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0:
                    self.daily[str(kind)] = DailyBudget(int(limit), wall)
        # the counters and balance, saved with the state (``health()``)
        self.h = ProviderHealth(name=name, budget=self.rate_text)
        self.store_problem: str | None = None  # why answers could not be written (None: writes work)
        # what the store would not take (StoreWriteError): kept, merged by key, written with the next round
        self.unsaved_updates: dict[str, Task] = {}
        self.unsaved_found: dict[str, Task] = {}
        self.unsaved_events: deque[Event] = deque(maxlen=UNSAVED_EVENTS)
        self.unsaved_health: dict[str, dict[str, Any]] = {}
        self.unsaved_counters: dict | None = None
        # one poller per provider key across processes (tui/lease.py): the lease, the requests
        # reserved in its stored budget ahead of sending them, the holder when it is not us
        self.lease = Lease(store, name, cfg.api_key.get_secret_value(), wall=wall, clock=clock)
        self.reserved = 0
        self.follower_cache: tuple[int, ProviderHealth] | None = None
        self.followed = False  # we followed another holder since we last held the lease
        # push (issue 18): task key -> wall time of its last push; polled only as a safety net
        self.safety_net = float(safety_net) if safety_net and safety_net > 0 else SAFETY_NET  # [listen] safety_net
        self.pushed: dict[str, float] = {}
        self.end_checked: set[str] = set()  # push-fed tasks polled once near their predicted end
        self.push_silent: str | None = None  # why pushes seem to have stopped (normal polling is back)
        self.push_silent_at = 0.0  # wall time push_silent was said (a later push clears it)
        self.net_skip: set[str] = set()  # push-fed tasks a refresh asked for: polled once, safety net or not
        self.netted: set[str] = set()  # tasks whose due time is the safety net's (not their plan's)
        mode = getattr(cfg, "push", None)
        self.push_mode: str | None = mode if mode in PUSH_MODES else None  # [providers.X] push
        self.push_route = False  # this process receives this provider's pushes (Engine.set_push)
        self.sighted: dict[str, float] = {}  # push-declared task -> wall time first seen (never polled yet)
        self.net_end: dict[str, float] = {}  # push-fed task -> its predicted end, once it was still ahead
        self.push_seen_at = 0.0  # wall time of the last push of any task of this provider
        self.net_written: dict[str, float] = {}  # push-fed task -> the next check last written (next_poll_at)
        self.net_cache: tuple[float, dict[str, float | None]] | None = None  # (clock, kind -> _net_length)
        self.net_notes: dict[str, float] = {}  # push-fed task -> its next check (wall), to write as its health

    # ------------------------------------------------------------ setup

    def restore(self, saved: ProviderHealth) -> None:
        """Counters of earlier runs; a pending Retry-After or quota wait carries over."""
        h = self.h
        h.requests, h.errors, h.rate_limited = saved.requests, saved.errors, saved.rate_limited
        h.answers, h.rpm = dict(saved.answers), dict(saved.rpm)
        h.last_error, h.last_error_at = saved.last_error, saved.last_error_at
        h.balance, h.balance_unit, h.balance_note = saved.balance, saved.balance_unit, saved.balance_note
        h.balance_at, h.last_answer_at = saved.balance_at, saved.last_answer_at
        h.discovered = saved.discovered
        wall_now, now = self.wall(), self.clock()
        if saved.recent:
            self.budget.restore([wall_now - t for t in saved.recent])
        if (saved.state in (RATE_LIMITED, QUOTA_EXHAUSTED) and saved.retry_at is not None
                and saved.retry_at > wall_now):
            self.state = saved.state
            self.retry_mono = now + min(saved.retry_at - wall_now, self.max_retry_wait)  # no lockout for decades
        for kind, budget in self.daily.items():
            entry = saved.daily.get(kind)
            if entry is not None:
                budget.restore(entry.get("used"), entry.get("reset_at"))
        if self.provider.has_balance and saved.balance_at:
            self.balance_due = now + max(0.0, self.balance_interval - (wall_now - saved.balance_at))
        for key, values in saved.durations.items():
            if len(self.durations) < MAX_KINDS:
                self.durations[key] = Durations(values)

    def restore_task_health(self, tasks: list[Task]) -> None:
        """Tasks whose polls were failing or that were stalled when the last run
        stopped (their health is in the store): the provider starts ``degraded``,
        so a fresh ``quota`` tells the truth before any request."""
        for t in tasks:
            if t.provider != self.name or t.terminal:
                continue
            if t.failed_polls:
                self.failing[t.key] = t.last_error or "failing"
            if t.stalled:
                self.stalled[t.key] = t.stalled
        if self.state == OK and (self.failing or self.stalled):
            self.cause = self._degraded_cause()
            self.state = DEGRADED if self.cause else OK

    # ------------------------------------------------------------ what others ask

    @property
    def has_unsaved(self) -> bool:
        return bool(self.unsaved_updates or self.unsaved_found or self.unsaved_events
                    or self.unsaved_health or self.unsaved_counters)

    @property
    def wants_balance(self) -> bool:
        """balance_interval = 0 turns balance requests off."""
        return self.provider.has_balance and self.balance_interval > 0

    @property
    def probing(self) -> bool:
        """Until the provider has answered once, and after failures or a 429, a
        round sends one request; the others follow as soon as it succeeds."""
        return not self.verified or self.state in (BACKING_OFF, OFFLINE, QUOTA_EXHAUSTED, RATE_LIMITED)

    def blocked(self, now: float) -> bool:
        if self.state == AUTH_FAILED:
            return True
        if self.one_shot and self.state in (RATE_LIMITED, QUOTA_EXHAUSTED):
            return False  # the user asked (``r``): one request goes, its answer decides
        return self.retry_mono is not None and now < self.retry_mono

    def retry_wall(self) -> float | None:
        if self.retry_mono is None:
            return None
        left = self.retry_mono - self.clock()
        return self.wall() + left if left > 0 else None

    def health(self, *, learned: bool = True) -> ProviderHealth:
        """This provider's health now (what the store keeps, and what everyone reads);
        ``learned=False`` leaves out the learned durations (a view for the screen).
        While another process holds this provider key's lease, it is that process's
        health as it last stored it, with who polls (``lease``, ``polled_by``)."""
        if self.following:
            return self._holder_health()
        h = self.h
        wall_now, now = self.wall(), self.clock()
        floor = int(wall_now // 60) - RPM_MINUTES
        h.rpm = {m: n for m, n in h.rpm.items() if m > floor}
        return ProviderHealth(
            name=self.name, state=self.state, cause=self.cause, retry_at=self.retry_wall(),
            requests=h.requests, errors=h.errors, rate_limited=h.rate_limited, answers=dict(h.answers),
            last_error=h.last_error, last_error_at=h.last_error_at, rpm=dict(h.rpm),
            budget=self.rate_text, budget_capacity=self.budget.capacity,
            budget_available=self.budget.available,
            recent=[wall_now - age for age in self.budget.recent()],
            balance=h.balance, balance_unit=h.balance_unit, balance_note=h.balance_note, balance_at=h.balance_at,
            last_answer_at=h.last_answer_at,
            daily={kind: d.to_dict() for kind, d in self.daily.items()},
            endpoints_off={name: {"reason": reason, "until": round(wall_now + until - now, 3)}
                           for name, (until, reason) in self.off.items() if until > now},
            durations={key: d.values() for key, d in self.durations.items() if len(d)} if learned else {},
            discovered=h.discovered, saved_at=wall_now, lease=self._lease_view(),
        )

    # ------------------------------------------------------------ the lease (tui/lease.py)

    @property
    def following(self) -> bool:
        """Another process holds this provider key's lease: it polls, we read the store."""
        lease = self.lease
        return lease.shared and not lease.held and lease.info is not None and bool(lease.info.holder)

    def _lease_view(self) -> dict[str, Any]:
        info = self.lease.info
        if not self.lease.shared or info is None or not info.holder:
            return {}
        return {"host": info.host, "pid": info.pid, "since": info.since}

    def _holder_health(self) -> ProviderHealth:
        """The lease holder's health as it stored it (read once per store revision)."""
        revision = self.store.revision
        cached = self.follower_cache
        if cached is None or cached[0] != revision:
            try:
                blob = self.store.counters().get(self.name)
            except (StoreError, sqlite3.Error, OSError):
                blob = None
            cached = self.follower_cache = (revision, ProviderHealth.decode(self.name, blob))
        h = cached[1]
        h.budget = self.rate_text
        h.lease = {**self._lease_view(), "live": True}
        return h

    def _budget_state(self, reserve: int = 0) -> dict[str, Any]:
        """This key's request budget as the lease stores it: ages of the requests inside
        the window (``reserve`` more counted as sent now), a Retry-After or quota wait,
        the daily counts."""
        now = self.clock()
        state: dict[str, Any] = {"recent_ages": self.budget.recent() + [0.0] * max(0, reserve)}
        if self.retry_mono is not None and self.retry_mono > now and self.state in (RATE_LIMITED, QUOTA_EXHAUSTED):
            state["retry_in"] = self.retry_mono - now
            state["retry_state"] = self.state
        if self.daily:
            state["daily"] = {kind: {"limit": d.limit, "used": min(d.limit, d.used + max(0, reserve)),
                                     "reset_at": d.reset_at} for kind, d in self.daily.items()}
        if self.state == AUTH_FAILED:
            state["refused"] = True  # the provider refused this key: whoever takes it over asks nothing
        return state

    def _lease_turn(self) -> bool:
        """Before a round: take or renew the lease; True when this worker may poll."""
        lease = self.lease
        if not lease.shared:
            return True
        if lease.held and not lease.renew_due():
            return True
        was = lease.held
        held = lease.acquire()
        if held and lease.took_over:
            self._take_over(lease.taken or {}, lease.previous)
        elif not held and was:
            self._lost_lease()
        if not held:
            self.followed = True
        self.follower_cache = None
        return held

    def _take_over(self, state: dict[str, Any], previous: LeaseInfo | None) -> None:
        """We hold the key now: go on from what the last holder stored (counters,
        durations, its budget and any Retry-After or quota wait); no request of ours
        before its wait ends, none beyond its budget."""
        now, wall_now = self.clock(), self.wall()
        try:
            saved = ProviderHealth.decode(self.name, self.store.counters().get(self.name))
        except (StoreError, sqlite3.Error, OSError):
            saved = None
        if saved is not None and saved.saved_at is not None:
            self.restore(saved)
        ages = state.get("recent_ages")
        if isinstance(ages, list):
            self.budget.restore(ages)
        retry_in = state.get("retry_in")
        if isinstance(retry_in, (int, float)) and math.isfinite(retry_in) and retry_in > 0:
            self.retry_mono = max(self.retry_mono or 0.0, now + min(float(retry_in), self.max_retry_wait))
            if state.get("retry_state") in (RATE_LIMITED, QUOTA_EXHAUSTED):
                self.state = state["retry_state"]
        for kind, entry in (state.get("daily") or {}).items():
            budget = self.daily.get(kind)
            if budget is not None and isinstance(entry, dict):
                budget.restore(entry.get("used"), entry.get("reset_at"))
        if state.get("refused") is True and self.state != AUTH_FAILED:
            # the last holder was refused this key (the lease is per key: a new key is a new
            # lease): one refusal stops everyone, as one 429 pauses everyone; `R` asks again
            self.state, self.retry_mono = AUTH_FAILED, None
            self.cause = "the provider refused this key (401/403, seen by the process that polled it)"
            self._note_event("key refused by the provider (seen by the last holder): not asked again; R retries")
        self.reserved = 0
        if self.followed:
            # the holder we followed polled these tasks: each is due when it planned
            # (Task.next_poll_at), not all at once (a process that just started asks at once)
            self.followed = False
            self.sched = {}
            for task, key in self._live_keyed():
                at = getattr(task, "next_poll_at", None)
                if isinstance(at, (int, float)) and math.isfinite(at):
                    self.sched[key] = Schedule(due=now + min(max(0.0, at - wall_now), self.knobs.max_interval))
            self.due_cache = None
        if previous is not None and previous.holder and previous.expires > 0:
            # (a holder that stopped cleanly gave the lease up: no news; one that died (its
            # lease ran out, or its process is gone from this machine) is)
            who = f"{clean(previous.host or '?', 100)} (pid {previous.pid})"
            self._note_event(f"polling taken over from {who}: it stopped without giving the lease up")

    def _lost_lease(self) -> None:
        """Another process took the key over (our lease ran out): it polls now."""
        self.reserved = 0
        info = self.lease.info
        if info is None or not info.holder or info.holder == self.lease.holder:
            self._note_event("polling paused here: our lease ran out before it was renewed")
            return
        who = f"{clean(info.host or '?', 100)} (pid {info.pid})"
        self._note_event(f"polling handed over to {who}: our lease ran out")

    def _note_event(self, message: str) -> None:
        try:
            self.store.log([Event(time=self.wall(), provider=self.name, message=message, kind="info")])
        except Exception:  # the log is best effort
            pass

    def _lease_ok(self, r: Round) -> bool:
        """Inside a round, before a request: is the lease still ours (renewed in time)?"""
        lease = self.lease
        if not lease.shared:
            return True
        if lease.valid() and not lease.renew_due():
            return True
        if lease.held and lease.save(self._budget_state(max(0, self.reserved))):
            return True
        r.halt = LEASE_LOST
        if not lease.held:
            self._lost_lease()
        return False

    def _save_budget(self) -> None:
        """The key's budget as it is (no reservation) into the lease, while we hold it."""
        if self.lease.shared and self.lease.held:
            self.reserved = 0
            if not self.lease.save(self._budget_state()):
                self._lost_lease()

    # ------------------------------------------------------------ driven by the engine

    def wake_up(self) -> None:
        """Wake the worker; safe from the loop's thread and from any other thread."""
        loop = self.loop
        if loop is None or _in_loop(loop) or not loop.is_running():
            self.wake.set()
        else:
            loop.call_soon_threadsafe(self.wake.set)

    def refresh(self, keys: set[str] | None) -> None:
        """Make tasks due now (all with ``keys`` None) and wake up; see ``Engine.refresh_now``."""
        now = self.clock()
        for key, sched in self.sched.items():
            if keys is None or key in keys:
                sched.due = now
                sched.slack = 0.0
                sched.fails = 0
        # a task fed by push is asked for too (an EvoLink callback's hint, ``r``): once
        self.net_skip.update((*self.pushed, *self.sighted) if keys is None else (k for k in keys if k in self.sched))
        self.due_cache = None
        if self.state in (BACKING_OFF, OFFLINE):
            self.retry_mono = None
        elif self.state in (RATE_LIMITED, QUOTA_EXHAUSTED) and keys is None:
            self.one_shot = True
        self.once = True
        self.wake_up()

    def resume(self) -> None:
        """Poll again after a refused key or an empty account."""
        if self.state in (AUTH_FAILED, QUOTA_EXHAUSTED, BACKING_OFF, OFFLINE):
            self.state = OK
            self.retry_mono = None
            self.fails = 0
        self.wake_up()

    def forget(self, key: str) -> None:
        """A task removed from the store: its schedule and health go (a re-add starts afresh)."""
        self.sched.pop(key, None)
        self.task_health.pop(key, None)
        self.failing.pop(key, None)
        self.stalled.pop(key, None)
        self._forget_push(key)

    # ------------------------------------------------------------ push: the safety net (issue 18)

    def set_push_route(self, on: bool) -> None:
        """Does this process receive this provider's pushes (``Engine.set_push``)?  When
        they stop coming here, the safety net's waits of tasks no push reached end now."""
        was, self.push_route = self.push_route, on
        if was and not on:
            now = self.clock()
            for key in list(self.netted):
                s = self.sched.get(key)
                if s is not None and key not in self.pushed:
                    s.due = min(s.due, now)
                    self.netted.discard(key)
            self.due_cache = None
            self.wake_up()

    @property
    def push_declared(self) -> bool:
        """Are this provider's tasks fed by push from first sight?  Its tasks are
        created with a push address (``[providers.X] push``) and this process receives
        its pushes: a task is then not polled at first sight, only as a safety net."""
        return self.push_mode is not None and self.push_route

    def note_push(self, key: str) -> None:
        """A pushed update of this task was stored (``tui.push``'s ``on_push`` hook): the
        task is fed by push from now on and polled only as a safety net (every
        ``safety_net`` seconds, and once near its predicted end); a push also says that
        push works (again).  Another process's receiver marks a task the same way in
        the store: ``details["pushed_at"]`` (epoch seconds as text)."""
        wall_now = self.wall()
        self.push_seen_at = wall_now
        if self.push_silent is not None:
            self.push_silent = None  # pushes arrive again: the next round's state says so
            self.wake_up()
        task = self.store.get(key)
        if task is None or task.provider != self.name:
            return
        if task.terminal:
            self._learn_from_push(task, self.sighted.get(key), wall_now)
            self._forget_push(key)
            return
        self.pushed[key] = wall_now
        s = self.sched.get(key)
        if s is not None:
            net = self._net_due(task, key, s, self.clock(), wall_now)
            if net is not None:
                s.due, s.slack = net[0], 0.0
                self.netted.add(key)
        self.due_cache = None

    def _forget_push(self, key: str) -> None:
        self.pushed.pop(key, None)
        self.sighted.pop(key, None)
        self.net_end.pop(key, None)
        self.net_written.pop(key, None)
        self.end_checked.discard(key)
        self.net_skip.discard(key)
        self.netted.discard(key)

    def _learn_from_push(self, task: Task, sighted: float | None = None, ended: float | None = None) -> None:
        """A task that push told us succeeded: how long it took, for the schedule: from
        its start (the provider's, else when it was first seen) to its end (the
        provider's, else ``ended``: when the push that said so came)."""
        if task.state != SUCCEEDED:
            return
        start = task.created_at or sighted
        end = task.finished_at or ended
        if not start or not end:
            return
        self._learn_length((task.kind or "", task.model or ""), end - start)

    def _pushed_at(self, task: Task, key: str) -> float | None:
        """When the last push about this task came (wall), or None: not fed by push.
        A task of a push-declared provider counts from when it was first seen."""
        at = self.pushed.get(key)
        if at is None and self.push_declared:
            at = self.sighted.get(key)
        if task.details:
            text = task.details.get(PUSHED_AT)
            if text:
                try:
                    marked = float(text)
                except ValueError:
                    marked = None
                if marked is not None and math.isfinite(marked):
                    at = marked if at is None else max(at, marked)
        return at

    def _learned(self, task: Task) -> Durations | None:
        """The durations learned for tasks like this one (its kind's, when its model is not known yet)."""
        kinds = dict.fromkeys((task.kind or "", self._kind(task) or ""))  # a task added without --kind:
        for name in kinds:  # its answers name the provider's default kind, which is what was learned
            learned = self.durations.get((name, task.model or ""))
            if learned is None and not task.model:
                kin = [d for (kind, _), d in self.durations.items() if kind == name]
                learned = kin[0] if len(kin) == 1 else None
            if learned is not None:
                return learned
        return None

    def _typical(self, task: Task) -> float | None:
        """The usual length of tasks like this one (the same lookup as the schedule's:
        a task added without --kind finds what was learned under the default kind)."""
        learned = self._learned(task)
        return learned.typical() if learned is not None else None

    def _net_length(self, task: Task) -> float | None:
        """How long such tasks take, for the safety net's check near the end: the
        length 9 in 10 of them stay under (the learned lengths of its kind, all kinds
        for a task never asked), None while that is not known.  Tasks still running
        count as lasting at least their age (Kaplan-Meier): the lengths learned first
        are those of the short tasks, which alone would call every long one overdue."""
        kind = task.kind or ""
        now = self.clock()
        cache = self.net_cache
        if cache is None or cache[0] != now:
            cache = self.net_cache = (now, {})
        if kind in cache[1]:
            return cache[1][kind]
        ended = [v for (k, _), d in self.durations.items() if k == kind or not kind for v in d.values()]
        length = None
        if len(ended) >= NET_END_LEARNED:
            running = [now - s.born for key, s in self.sched.items()
                       if s.born is not None and (key in self.sighted or key in self.pushed)]
            marks = sorted([(v, 1) for v in ended] + [(a, 0) for a in running if a > 0])
            at_risk, alive, censored = len(marks), 1.0, False
            for value, end in marks:
                if at_risk < NET_END_LEARNED and censored:
                    break  # too few left to tell, with running tasks among those that told (its tail)
                censored = censored or (not end and alive < 1.0)
                if end:
                    alive *= 1.0 - 1.0 / at_risk
                    if alive <= 1.0 - NET_END_QUANTILE:
                        length = value
                        break
                at_risk -= 1
        cache[1][kind] = length
        return length

    def _net_due(self, task: Task, key: str, s: Schedule, now: float,
                 wall_now: float) -> tuple[float, bool] | None:
        """When a push-fed task is due as a safety net (and whether that is its one poll
        near the predicted end); None when it is polled as usual (not fed by push, or
        push has gone silent)."""
        pushed = self._pushed_at(task, key)
        if pushed is None:
            return None
        if self.push_silent is not None:
            if pushed <= self.push_silent_at:
                return None
            self.push_silent = None  # another process's receiver got a push since: push works
        typical = self._typical(task)
        if self._push_quiet(task, key, s, pushed, typical, now, wall_now):
            return None
        last = now - max(0.0, wall_now - pushed)
        if s.last_poll is not None:
            last = max(last, s.last_poll)
        due = last + self.safety_net
        declared = self.push_declared
        length = self._net_length(task) if declared else typical
        if (length or declared) and key not in self.end_checked:
            if not length:
                end = None
            elif task.created_at:
                end = now + (task.created_at + length - wall_now)
            elif s.born is not None:
                end = s.born + length
            else:
                end = None
            if declared:
                # the check near the end replaces the periodic ones before it, for an end that was
                # ahead when predicted (the last such prediction stands): a task already longer than
                # what was learned so far (the short tasks end first) is not overdue for that
                if end is not None and end > now:
                    self.net_end[key] = end
                end = self.net_end.get(key)
                if end is None:
                    return due, False
                return min(max(end, last), last + NET_END_CAP * self.safety_net), True
            if end is not None and end < due:
                return max(end, last), True
        return due, False

    def _push_quiet(self, task: Task, key: str, s: Schedule, pushed: float, typical: float | None,
                    now: float, wall_now: float) -> bool:
        """Has push gone silent (no push about a task far past its learned duration)?
        Says so once (``push_silent``, the provider's health, an event); True then."""
        if typical:
            far = max(PUSH_SILENT_FACTOR * typical, typical + PUSH_SILENT_GRACE)
        else:
            after = self.provider.stall_after
            if not isinstance(after, (int, float)) or not after > 0:
                after = STALL_AFTER
            far = max(float(after), 3.0 * self.safety_net)
        if task.created_at:
            age = wall_now - task.created_at
        elif s.born is not None:
            age = now - s.born
        else:
            return False
        quiet = wall_now - pushed
        if age <= far or quiet <= PUSH_SILENT_GRACE:
            return False
        if self.push_declared and wall_now - self.push_seen_at <= self.safety_net:
            return False  # pushes of its other tasks arrive: push works, this task is a long one
        like = f"; tasks like it take ~{_span(typical)}" if typical else ""
        self.push_silent = clean(f"push silent: no push for {_span(quiet)} about {key}, {_span(age)} after it "
                                 f"began{like}; polling as usual", 300)
        self.push_silent_at = wall_now
        self._note_event(self.push_silent)
        self.wake_up()
        return True

    async def run(self, before_round: Callable[[], None]) -> None:
        """Rounds until cancelled, each when something is due (or on a wake)."""
        internal = 0  # rounds in a row that ended in an internal error
        # (Python 3.11's wait_for may swallow a cancellation that meets a wake: the flag ends the loop then)
        while not self.stopping:
            self.wake.clear()
            if not self.paused or self.once:
                self.once = False
                try:
                    before_round()
                    await self.round()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a bug must not kill polling; say so in the log
                    internal += 1
                    self._log_internal(exc)
                    await asyncio.sleep(backoff(internal, 1.0, self.knobs.max_backoff, self.rand))
                    continue
                internal = 0
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.next_wake())
            except (asyncio.TimeoutError, TimeoutError):
                pass

    def next_wake(self) -> float:
        now = self.clock()
        if self.paused or self.state == AUTH_FAILED or self.following:
            return IDLE_WAKE  # (a follower asks for the lease again this often)
        if self.retry_mono is not None and now < self.retry_mono:
            return max(0.01, min(self.retry_mono - now, IDLE_WAKE))
        due = self.next_due()
        for extra, wanted in ((self.balance_due, self.wants_balance),
                              (self.list_due, self.discover and self.provider.has_list)):
            if wanted:
                due = extra if due is None else min(due, extra)
        if due is None:
            return IDLE_WAKE
        wait = max(due - now, self.budget.wait_time() if due <= now else 0.0)
        # rounds at least this far apart, so tasks falling due one by one are batched
        gap = min(1.0, self.poll_interval * 0.5)
        return max(gap, min(IDLE_WAKE, wait))

    def next_due(self) -> float | None:
        """When the next live task is due (cached until a round, a refresh or a store change)."""
        revision = self.store.revision
        if self.due_cache is not None and self.due_cache[0] == revision:
            return self.due_cache[1]
        sched = self.sched
        now = self.clock()
        listing = self.provider.has_list
        default = self.provider.default_kind

        def slack(task: Task, s: Schedule) -> float:
            if not listing or (self.off and self.list_off(task.kind or default, now)):
                return 0.0  # no list (or it is off): each task is due on its own
            return s.slack  # one list answers for all: due when the first task's slack runs out

        due = min((sched[k].due + slack(t, sched[k]) if k in sched else now for t, k in self._live_keyed()),
                  default=None)
        self.due_cache = (revision, due)
        return due

    # ------------------------------------------------------------ one round

    async def round(self, force: bool = False) -> None:
        """One round: the due tasks (all live ones with ``force``), the list, the balance."""
        async with self.lock:
            if not self._lease_turn():
                return  # another process polls this provider key: its answers come through the store
            now = self.clock()
            if self.blocked(now):
                return
            held: float | None = None
            if self.one_shot:  # ``r`` on a provider told to wait: one request, its answer decides
                self.one_shot = False
                if self.state in (RATE_LIMITED, QUOTA_EXHAUSTED):
                    held, self.retry_mono = self.retry_mono, None
            self.due_cache = None
            live = [t for t, _ in self._live_keyed()]
            if max(len(self.pushed), len(self.sighted)) > 2 * len(live) + 100:  # tasks that ended meanwhile
                keep = {t.key for t in live}
                for key in [k for k in (*self.pushed, *self.sighted) if k not in keep]:
                    self._forget_push(key)
            due = self._select(now, force)
            r = Round()
            if self.net_notes:  # push-fed tasks: when the safety net checks them next (never a silent task)
                for key, at in self.net_notes.items():
                    r.health[key] = {"next_poll_at": at}
                self.net_notes = {}
            self.open()
            body = asyncio.ensure_future(self._round_body(r, live, due, now, force))
            try:
                await self._drive(r, body)
            finally:
                if held is not None and r.sent == 0 and self.retry_mono is None:
                    self.retry_mono = held  # nothing could be sent: the wait stands
            self._finish(r)

    def open(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=self.concurrency,
                                    max_keepalive_connections=self.concurrency),
            )
        return self.client

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        if self.lease.shared and self.lease.held:
            self.reserved = 0
            self.lease.release(self._budget_state())  # a clean stop: the next process takes over at once

    def _live_keyed(self) -> list[tuple[Task, str]]:
        """(task, key) of this provider's live tasks; computed once per store revision."""
        revision = self.store.revision
        if self.live_cache is not None and self.live_cache[0] == revision:
            pairs = self.live_cache[1]
        else:
            pairs = [(t, t.key) for t in self.store.tasks() if t.provider == self.name and not t.terminal]
            self.live_cache = (revision, pairs)
        if self.focus is not None:
            return [p for p in pairs if p[1] in self.focus]
        return pairs

    def _select(self, now: float, force: bool) -> list[Task]:
        """The due tasks, likeliest-changed first; without a list endpoint only as
        many as the budget allows right now (no full sort of 100,000 tasks)."""
        sched = self.sched
        ranked: list[tuple[float, int, Task]] = []
        pressing = force  # a list provider: some due task's slack has run out
        listing = self.provider.has_list
        default = self.provider.default_kind
        wall_now = self.wall()
        pushed, skip, netted = self.pushed, self.net_skip, self.netted
        declared = self.push_declared
        live = self._live_keyed()
        for n, (task, key) in enumerate(live):
            s = sched.get(key)
            if s is None:
                s = sched[key] = Schedule(due=now + first_wait(self.poll_interval, self._learned(task), self.budget.rate,
                                                               len(live), self.adaptive))
                if listing and self.adaptive:  # a script's batch, added one by one: a list per step at most
                    s.slack = self._first_slack(task, s.due, now)
                if declared:  # fed by push from first sight: no first poll ...
                    self.sighted[key] = wall_now
                    if task.polled_at is None and task.provider_status is None:
                        s.born = now
                    else:  # ... unless polled before (a restart): pushes may have come while none listened
                        skip.add(key)
            if (not force and (declared or key in pushed or (task.details and PUSHED_AT in task.details))
                    and not (skip and key in skip)):
                net = self._net_due(task, key, s, now, wall_now)  # fed by push: a safety net only
                if net is not None:  # (its plan says nothing then: the net's time replaces it)
                    s.slack = 0.0
                    if declared and abs(self.net_written.get(key, 0.0) - net[0]) > 1.0:
                        self.net_written[key] = net[0]  # the next check, in the task's detail (next_poll_at)
                        self.net_notes[key] = wall_now + max(0.0, net[0] - now)
                    if net[0] > now:
                        s.due = net[0]
                        netted.add(key)
                        continue
                    s.due = min(s.due, now)
                    if net[1]:
                        self.end_checked.add(key)
                elif key in netted:  # push went silent: polled as usual again, from now
                    s.due = min(s.due, now)
                    netted.discard(key)
            if skip:
                skip.discard(key)
            if force or s.due <= now:
                ranked.append((priority(s, now), n, task))
                pressing = (pressing or s.due + s.slack <= now or key in self.pending
                            or (listing and bool(self.off) and self.list_off(task.kind or default, now)))
        if listing and not pressing:
            return []  # the due ones wait for the list that the first pressing task brings
        if not listing and len(ranked) > 64:
            ranked = heapq.nsmallest(max(1, self.budget.available), ranked)
        else:
            ranked.sort()
        return [task for _, _, task in ranked]

    def _first_slack(self, task: Task, due: float, now: float) -> float:
        """How long a new task's first poll may wait on a list provider: until one
        step after the last answer of its kind's list (the step through the learned
        ends, at least ``poll_interval``), when that list answered less than a step
        ago; at once after a lone add.  The tasks of a batch added over a few
        seconds then share a list or two instead of one each (bench/thrift.py: ten
        lists in the first 5 s of a batch of 40 became two)."""
        kind = self._kind(task)
        last = self.listed.get(kind)
        if last is None or self.list_off(kind, now):
            return 0.0
        learned = self._learned(task)
        window = max(self.poll_interval, (learned.step(self.poll_interval) or 0.0) if learned is not None else 0.0)
        return max(0.0, last + window - due)

    def _sched_for(self, task: Task) -> Schedule:
        sched = self.sched.get(task.key)
        if sched is None:
            sched = self.sched[task.key] = Schedule(due=self.clock(), interval=0.0)
        return sched

    async def _round_body(self, r: Round, live: list[Task], due: list[Task], now: float, force: bool) -> None:
        discovering = self.discover and (force or now >= self.list_due)
        if self.provider.has_list and (due or discovering) and not r.halt:
            due = await self._list_round(r, live, due)
        if due and not r.halt:
            await self._task_round(r, due)
        if self.wants_balance and now >= self.balance_due and not r.halt:
            await self._fetch_balance(r)  # after the tasks: they decide whether the key works

    async def _drive(self, r: Round, body: asyncio.Future) -> None:
        """Run a round's requests; store the answers received so far every
        ``FLUSH_EVERY`` seconds, so one slow request never holds the others'
        answers; at the round's deadline, give up the requests still out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.round_deadline
        try:
            while not body.done():
                left = deadline - loop.time()
                if left <= 0:
                    body.cancel()
                    await asyncio.wait({body})
                    self._overdue(r)
                    return
                await asyncio.wait({body}, timeout=min(FLUSH_EVERY, left))
                if not body.done() and (r.updates or r.events or r.health or r.discovered):
                    self._flush(r)
                if not body.done() and self.lease.shared and self.lease.held and self.lease.renew_due():
                    self._lease_ok(r)  # requests still out: keep the lease (or stop sending)
        except asyncio.CancelledError:
            body.cancel()
            raise
        body.result()  # an internal error of the round surfaces here

    def _overdue(self, r: Round) -> None:
        """Status requests still out at the round's deadline: failed polls."""
        for task in list(r.inflight.values()):
            err = Transient(f"timed out: no answer by the round's deadline ({self.round_deadline:g} s)",
                            provider=self.name)
            self._count_answer(err.kind)
            self._settle(r, task, None, err)
        r.inflight.clear()

    def _flush(self, r: Round) -> None:
        """Write what the round has so far (the round goes on)."""
        updates, events, found, health = r.updates, r.events, r.discovered, r.health
        r.updates, r.events, r.discovered, r.health = [], [], [], {}
        self._write(updates, events, None, found, health)

    def _limit(self, r: Round, kind: Any = ...) -> bool:
        """May this round send another request?  Takes one from the budget (and from
        the kind's daily budget, ``kind`` given) if so."""
        if r.halt or (self.probing and r.sent >= r.probes and r.answered == 0):
            return False  # a probe is out (or failed): wait for it
        if not self._lease_ok(r):
            return False  # another process took this provider key over: it polls now
        daily = self._daily_for(kind) if kind is not ... else None
        if daily is not None and daily.available <= 0:
            return False
        if not self.budget.take():
            r.short = True
            return False
        if daily is not None:
            daily.take()
        if self.lease.shared:
            if self.reserved <= 0:
                # the requests this one opens are counted in the stored budget BEFORE they go:
                # a holder killed now is counted as having sent them all (never over budget)
                extra = self.budget.available
                if not self.lease.save(self._budget_state(extra)):
                    r.halt = LEASE_LOST
                    self._lost_lease()
                    return False
                self.reserved = 1 + extra
            self.reserved -= 1
            if not self.lease.valid():
                # The write above came back after our lease ran out by our own clock (the
                # process was frozen while it was out): a renewal that late is no proof, and
                # another process may hold the key now.  Send nothing; the next round asks.
                r.halt = LEASE_LOST
                return False
        return True

    # ------------------------------------------------------------ daily budgets

    def _poll_kind(self, kind: str | None) -> str | None:
        """The kind a task is polled as (the provider maps create paths to poll paths)."""
        try:
            return self.provider.poll_kind(kind) or kind
        except Exception:  # provider text: a mapping that fails keeps the kind as given
            return kind

    def _daily_for(self, kind: str | None) -> DailyBudget | None:
        if not self.daily:
            return None
        return self.daily.get(self._poll_kind(kind or self.provider.default_kind) or "")

    def _daily_closed(self, kind: str | None) -> DailyBudget | None:
        """The kind's daily budget when it is spent (its tasks wait), else None."""
        daily = self._daily_for(kind)
        return daily if daily is not None and daily.available <= 0 else None

    def _daily_wait(self, r: Round, task: Task, daily: DailyBudget) -> None:
        """A task whose kind has spent its daily requests: due again at the reset, stalled till then."""
        sched = self._sched_for(task)
        sched.due = self.clock() + max(1.0, daily.reset_at - self.wall())
        sched.slack = 0.0
        kind = self._poll_kind(task.kind or self.provider.default_kind or "")
        reason = f"daily limit of {daily.limit} requests reached for {kind}; resumes {_hhmm(daily.reset_at)}"
        self._set_health(r, task, stalled=reason)
        self._freshen(r, task, None, answered=False)

    # ------------------------------------------------------------ status requests

    async def _task_round(self, r: Round, due: list[Task]) -> None:
        queue = iter(due)

        async def runner(limit: int | None = None) -> None:
            n = 0
            for task in queue:
                closed = self._daily_closed(task.kind) if self.daily else None
                if closed is not None:
                    self._daily_wait(r, task, closed)
                    continue
                if not self._limit(r, task.kind):
                    return
                await self._poll_one(r, task)
                n += 1
                if limit is not None and n >= limit:
                    return

        if not (self.probing and r.answered == 0):
            await asyncio.gather(*(runner() for _ in range(self.parallel)))
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
            await asyncio.gather(*probes, *(runner() for _ in range(self.parallel)))
        finally:
            for f in probes:
                f.cancel()  # the round was cancelled (its deadline): no request outlives it

    async def _poll_one(self, r: Round, task: Task) -> None:
        """One status request (budget already taken), settled."""
        key = task.key
        r.inflight[key] = task  # still there if the round's deadline cancels the request
        fresh, err = await self._call(r, lambda t=task: self.provider.fetch_status(self.client, t.task_id, t.kind))
        r.inflight.pop(key, None)
        self._settle(r, task, fresh, err)

    def _count_answer(self, kind: str) -> None:
        self.h.answers[kind] = self.h.answers.get(kind, 0) + 1

    async def _call(self, r: Round, factory: Callable[[], Awaitable[Any]]) -> tuple[Any, ProviderError | None]:
        """Send one request (budget already taken); count it; classify a failure."""
        r.sent += 1
        h = self.h
        h.requests += 1
        minute = int(self.wall() // 60)
        h.rpm[minute] = h.rpm.get(minute, 0) + 1
        async with self.sem:
            try:
                value = await factory()
            except ProviderError as exc:
                exc.provider = exc.provider or self.name
                err = exc
            except Exception as exc:  # providers should not let anything else out
                err = BadResponse(f"unexpected failure: {type(exc).__name__}: {clean(exc, 200)}",
                                  provider=self.name)
            else:
                self._count_answer("ok")
                h.last_answer_at = self.wall()
                r.answered += 1
                return value, None
        self._count_answer(err.kind)
        return None, err

    def _capped(self, seconds: float) -> float:
        """A wait a provider asked for, within reason (no lockout for decades)."""
        if not math.isfinite(seconds):
            return self.max_retry_wait
        return min(max(seconds, 0.0), self.max_retry_wait)

    def _scrub(self, text: Any, size: int) -> str:
        """Provider text for an event or a message: no key, no markup, one line."""
        return clean(redact(str(text), self.provider.api_key), size)

    def _note_error(self, kind: str, message: str) -> None:
        self.h.errors += 1
        self.h.last_error = f"{kind}: {message}"[:300]
        self.h.last_error_at = self.wall()

    def _fail(self, r: Round, err: ProviderError, task_id: str | None = None) -> None:
        """Provider-level consequences of a failed request, and its event."""
        now = self.clock()
        message = self._scrub(err.message, 500)
        event = Event(time=self.wall(), provider=self.name, message=message, task_id=task_id,
                      status=err.status, kind=err.kind, retry_after=err.retry_after)
        if isinstance(err, NotFound):
            r.answered += 1
            self.h.last_answer_at = self.wall()
            return  # an answer, not a failure: the task ends as not_found
        self._note_error(err.kind, message)
        if isinstance(err, ClientError):
            r.answered += 1  # the provider answered: the request about this task is refused
            self.h.last_answer_at = self.wall()
            r.events.append(event)
            return
        if isinstance(err, AuthError):
            r.halt = AUTH_FAILED
            if self.state != AUTH_FAILED:
                self.state = AUTH_FAILED
                self.retry_mono = None
                r.events.append(event)  # once per refusal, not once per task
            return
        if err.retry_after is not None:
            event.retry_after = self._capped(err.retry_after)
        r.events.append(event)
        if isinstance(err, RateLimited):
            self.h.rate_limited += 1
            wait = self._capped(err.retry_after if err.retry_after is not None else DEFAULT_RETRY_AFTER)
            self.retry_mono = max(self.retry_mono or 0.0, now + wait + RETRY_MARGIN)
            self.state = RATE_LIMITED
            self.parallel = max(1, self.parallel // 2)
            r.halt = RATE_LIMITED
            self._save_budget()  # at once: one 429 pauses every process on this key, even if we die now
        elif isinstance(err, QuotaExhausted):
            self.state = QUOTA_EXHAUSTED
            self.retry_mono = now + min(QUOTA_PROBE, self.max_retry_wait)
            r.halt = QUOTA_EXHAUSTED
        elif isinstance(err, Transient):
            r.transient += 1
            if is_network_down(err):
                r.network += 1
            if err.retry_after is not None:  # a 503 that says when to come back
                self.retry_mono = max(self.retry_mono or 0.0, now + self._capped(err.retry_after) + RETRY_MARGIN)
            if r.answered == 0:
                r.halt = BACKING_OFF  # nothing works yet: do not hammer, probe later

    def _backoff_task(self, task: Task) -> None:
        sched = self._sched_for(task)
        sched.fails += 1
        sched.slack = 0.0
        sched.due = self.clock() + backoff(sched.fails, max(self.poll_interval, 1.0), self.knobs.max_interval,
                                           self.rand)

    def _answered(self, task: Task, fresh: Task) -> None:
        """Note an answer in the task's schedule, learn a duration if it ended, plan the next poll."""
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
        key = (merged.kind or "", merged.model or "")
        durations = self.durations.get(key)
        if durations is None and len(self.durations) < MAX_KINDS:
            durations = self.durations[key] = Durations()
        if (durations is not None and merged.state == SUCCEEDED and seen_live and last_poll is not None
                and sched.born is not None):
            durations.add((last_poll + now) / 2 - sched.born)  # ended between the last two answers
        budget = self.budget  # short of requests: what it allows each live task (helper T)
        spread = (len(self._live_keyed()) / budget.rate * (1.0 - budget.available / budget.capacity)
                  if budget.rate > 0 and budget.capacity > 0 else 0.0)
        shared = self.provider.has_list and not self.list_off(self._kind(task), now)
        sched.adopt(plan(self.poll_interval, sched, merged, now, wall_now, self.adaptive,
                         self.knobs.max_interval, QUIET_CAP, durations, spread, shared), now)

    # ------------------------------------------------------------ task health

    def _poll_path(self, task: Task) -> str | None:
        """The path the task's status is asked at (for messages and the detail view)."""
        sched = self._sched_for(task)
        kind = task.kind or self.provider.default_kind
        if sched.path is not None and sched.path[0] == kind:
            return sched.path[1]
        try:
            path = self.provider.status_path(task.task_id, kind)
        except Exception:  # provider code on provider text: no path is better than no poll
            path = None
        path = self._scrub(path, 300) or None if path else None
        sched.path = (kind, path)
        return path

    def _quiet_stall(self, task: Task, sched: Schedule) -> str | None:
        """Why an answering task seems stuck (its state has not moved for far longer
        than tasks like it take), or None."""
        if task.terminal or sched.last_change is None:
            return None
        quiet = self.clock() - sched.last_change
        typical = self._typical(task)
        after = self.provider.stall_after
        if not isinstance(after, (int, float)) or not after > 0:
            after = STALL_AFTER
        if quiet <= max(float(after), STALL_FACTOR * typical if typical else 0.0):
            return None
        reason = f"no change for {_span(quiet)}"
        if typical:
            reason += f"; tasks like it take ~{_span(typical)}"
        try:
            hint = self.provider.stall_hint(task)
        except Exception:
            hint = None
        if hint:
            reason += f"; {clean(hint, 300)}"
        return reason

    def _known_health(self, task: Task) -> tuple:
        known = self.task_health.get(task.key)
        if known is None:
            known = (task.last_error, task.last_error_at, task.failed_polls or 0, task.stalled, task.poll_path)
        return known

    def _set_health(self, r: Round, task: Task, *, write: bool = True, **fields: Any) -> dict:
        """Note a task's poll health; queued for the store only when it changed."""
        old = self._known_health(task)
        values = dict(zip(HEALTH_KEYS, old))
        values.update(fields)
        new = tuple(values[k] for k in HEALTH_KEYS)
        key = task.key
        if values["failed_polls"]:
            self.failing[key] = values["last_error"] or "failing"
        else:
            self.failing.pop(key, None)
        if values["stalled"]:
            self.stalled[key] = values["stalled"]
        else:
            self.stalled.pop(key, None)
        if new != old:
            self.task_health[key] = new
            if write:
                r.health[key] = values
        return values

    def _settle(self, r: Round, task: Task, fresh: Task | None, err: ProviderError | None) -> None:
        """An answer (or a failure) about one task: its update, its health, its schedule."""
        sched = self._sched_for(task)
        before = sched.path
        path = self._poll_path(task)
        if before is not None and before[1] != path:
            # re-added with a --kind that polls elsewhere (the store cleared its health): new to us
            self.forget(task.key)
            sched = self.sched[task.key] = Schedule(due=self.clock(), path=sched.path)
        if err is None and fresh is not None:
            self._settle_answer(r, task, fresh, sched, path)
        elif isinstance(err, (Transient, BadResponse)):  # never ends a task: counted, visible
            self._fail(r, err, task.task_id)
            self._settle_failed_poll(r, task, err, sched, path)
        elif isinstance(err, (NotFound, ClientError)):
            self._fail(r, err, task.task_id)
            self._settle_end(r, task, err, sched, path)
        elif err is not None:  # rate limited, refused key, no credits: the provider's state says it
            self._fail(r, err, task.task_id)

    def _settle_answer(self, r: Round, task: Task, fresh: Task, sched: Schedule, path: str | None) -> None:
        self._answered(task, fresh)
        sched.fail_since = None
        stalled = None if fresh.terminal else self._quiet_stall(fresh, sched)
        values = self._set_health(r, task, write=False, last_error=None, last_error_at=None,
                                  failed_polls=0, stalled=stalled, poll_path=path)
        for name in HEALTH_KEYS:
            setattr(fresh, name, values[name])  # an answer writes its own health
        marked = task.details.get(PUSHED_AT) if task.details else None
        if marked and fresh.details and PUSHED_AT not in fresh.details:
            fresh.details[PUSHED_AT] = marked  # the store replaces details: the push mark stays
        if fresh.terminal:
            hinted = self.pushed.get(task.key)
            if sched.polls <= 1 and hinted is not None and self.wall() - hinted <= PUSH_SILENT_GRACE:
                # push-fed, asked once a push said it ended (an EvoLink callback): its length, for the net
                self._learn_from_push(fresh.copy(created_at=fresh.created_at or task.created_at),
                                      self.sighted.get(task.key), hinted)
            self.forget_health(task.key)
            self._forget_push(task.key)
        self._freshen(r, task, fresh, answered=True)
        r.updates.append(fresh)

    def _settle_failed_poll(self, r: Round, task: Task, err: ProviderError, sched: Schedule,
                            path: str | None) -> None:
        now_wall = self.wall()
        if sched.fail_since is None:
            sched.fail_since = now_wall
        fails = int(self._known_health(task)[2] or 0) + 1
        message = self._scrub(err.message, 500)
        text = clean(f"HTTP {err.status}: {message}" if err.status is not None else message, 300)
        stalled = f"polls failing since {_hhmm(sched.fail_since)}: {text}" if fails >= STALL_FAILS else None
        self._set_health(r, task, last_error=text, last_error_at=now_wall, failed_polls=fails,
                         stalled=stalled, poll_path=path)
        self._backoff_task(task)
        self._freshen(r, task, None, answered=err.status is not None)  # an HTTP error is an answer too

    def _settle_end(self, r: Round, task: Task, err: ProviderError, sched: Schedule, path: str | None) -> None:
        """A 404 ends the task not_found, another 4xx failed: asking again will not help."""
        message = self._scrub(err.message, 500)
        if isinstance(err, NotFound):
            if sched.polls == 0 and task.provider_status is None:  # never seen alive
                message = f"not found at {path or 'its status path'}"
                kinds = tuple(self.provider.known_kinds or ())
                if kinds or self.provider.default_kind is not None:
                    message += " — wrong --kind?"
                    if kinds:
                        message += " known kinds: " + ", ".join(clean(k, 80) for k in kinds)
                elif err.message:
                    message += f": {self._scrub(err.message, 300)}"
                if task.key in self.sighted:
                    message += ("; fed by push, first asked at its predicted end: no push came for it"
                                " — is the id right?")
            ended = Task(provider=self.name, task_id=task.task_id, kind=task.kind, state=NOT_FOUND,
                         error=clean(message, 500) or "not found", updated_at=self.wall())
        else:
            head = f"request refused (HTTP {err.status})" if err.status is not None else "request could not be sent"
            ended = Task(provider=self.name, task_id=task.task_id, kind=task.kind, state=FAILED,
                         error=clean(f"{head}: {message}", 500), updated_at=self.wall())
        ended.poll_path = path
        self._set_health(r, task, write=False, last_error=None, last_error_at=None, failed_polls=0,
                         stalled=None, poll_path=path)
        self.forget_health(task.key)
        self._freshen(r, task, ended, answered=True)
        r.updates.append(ended)

    # ------------------------------------------------------------ freshness (helper T)

    def _next_poll_wall(self, task: Task) -> float | None:
        """When the plan asks about ``task`` next (wall time); None when it is not scheduled.
        A list provider asks when the first task's slack runs out: this task's due time
        plus its slack is the latest that can be."""
        sched = self.sched.get(task.key)
        if sched is None:
            return None
        now = self.clock()
        due = sched.due
        if self.provider.has_list and not self.list_off(self._kind(task), now):
            due += sched.slack
        return self.wall() + max(0.0, due - now)

    def _freshen(self, r: Round, task: Task, fresh: Task | None, *, answered: bool) -> None:
        """Note when the provider last answered about ``task`` (``polled_at``; ``answered``)
        and when the plan asks next (``next_poll_at``; None once it ended).  Written only
        in the round that polled the task: on the answer itself (``fresh``), or as health."""
        ended = fresh is not None and fresh.terminal
        fields: dict[str, Any] = {"next_poll_at": None if ended else self._next_poll_wall(task)}
        if answered:
            fields["polled_at"] = self.wall()
        if fresh is not None:
            for name, value in fields.items():
                setattr(fresh, name, value)
            if not ended:
                return  # the answer carries them
        if FRESH_KEYS:  # an answer's None is "keep the stored value": an end says it as health
            r.health[task.key] = {**r.health.get(task.key, {}), **fields}

    def forget_health(self, key: str) -> None:
        """A task that ended: no longer failing or stalled."""
        self.failing.pop(key, None)
        self.stalled.pop(key, None)
        self.task_health.pop(key, None)

    # ------------------------------------------------------------ optional endpoints

    def list_off(self, kind: str | None, now: float) -> bool:
        """Is the list of this kind switched off (failed or useless) right now?"""
        entry = self.off.get(f"list:{kind or ''}")
        return entry is not None and now < entry[0]

    def _switch_off(self, r: Round, name: str, reason: str, err: ProviderError | None = None) -> None:
        """An optional endpoint (a list, the balance) failed or proved useless: off for
        ``OPTIONAL_RETRY``, said once; each task is asked on its own meanwhile."""
        self.off[name] = (self.clock() + OPTIONAL_RETRY, reason)
        what = "balance" if name == "balance" else (f"list of {name[5:]}" if name[5:] else "list")
        text = self._scrub(f"{what} switched off for {_span(OPTIONAL_RETRY)}: {reason}", 500)
        if err is not None:
            self._note_error(err.kind, text)
        r.events.append(Event(time=self.wall(), provider=self.name, message=text,
                              status=err.status if err is not None else None,
                              kind=err.kind if err is not None else "info"))

    def _endpoint_off(self, name: str) -> bool:
        entry = self.off.get(name)
        if entry is None:
            return False
        if self.clock() < entry[0]:
            return True
        del self.off[name]  # time to try it again
        if name.startswith("list:"):
            self.useless[name[5:] or None] = USELESS_ROUNDS - 1  # one more useless answer turns it off again
        return False

    # ------------------------------------------------------------ the list round

    async def _list_round(self, r: Round, live: list[Task], due: list[Task]) -> list[Task]:
        """One list request per kind refreshes every task of that kind; returns the
        due tasks the lists did not answer for (fetched one by one).  A list is an
        optimisation, never a gate: one that fails, or keeps naming none of the
        tracked tasks, is switched off and each task is asked on its own."""
        leftover = list(due)
        if self.probing and r.answered == 0 and leftover:
            leftover = await self._probe_first(r, leftover)
            if r.answered == 0 or r.halt:
                return []
        asked = await self._pending_details(r, live)
        leftover = [t for t in leftover if t.task_id not in asked]
        kinds = self._list_kinds(leftover)
        if r.halt or not kinds:
            return leftover
        if self.discover:
            self.list_due = self.clock() + max(self.poll_interval, self.knobs.discover_interval)
        tracked = {t.task_id: t for t in live}
        details: list[Task] = []
        seen_new: set[str] = set()
        for kind in kinds:
            if self.daily and self._daily_closed(kind) is not None:
                continue  # its tasks wait for the daily reset (said per task below)
            if not self._limit(r, kind):
                break
            rows, err = await self._call(r, lambda k=kind: self.provider.fetch_list(self.client, k))
            if err is not None:
                if isinstance(err, (RateLimited, AuthError, QuotaExhausted)):
                    self._fail(r, err)  # the provider's, not the list's: the round stops
                    break
                detail = f"HTTP {err.status}: " if err.status is not None else ""
                self._switch_off(r, f"list:{kind or ''}",
                                 f"{err.kind} ({detail}{clean(err.message, 200)}); asking each task instead", err)
                continue
            before, self.listed[kind] = self.listed.get(kind), self.clock()
            self._learn_from_strangers(kind, rows or [], tracked, before, self.listed[kind])
            answered, found = self._read_list(r, kind, rows or [], tracked, asked, details, seen_new)
            self._note_usefulness(r, kind, leftover, answered, found)
            leftover = [t for t in leftover if not (self._kind(t) == kind and t.task_id in answered)]
        await self._fetch_details(r, details)
        return [t for t in leftover if t.task_id in tracked]

    def _kind(self, task: Task) -> str | None:
        return task.kind or self.provider.default_kind

    async def _probe_first(self, r: Round, due: list[Task]) -> list[Task]:
        """An unproven provider is probed with a status request, never the list."""
        first = next((t for t in due if not (self.daily and self._daily_closed(t.kind))), None)
        if first is None or not self._limit(r, first.kind):
            return due
        await self._poll_one(r, first)
        return [t for t in due if t is not first]

    async def _pending_details(self, r: Round, live: list[Task]) -> set[str]:
        """Tasks an earlier list saw COMPLETED whose detail found no budget come first,
        so that a burst of one token is not spent on the list round after round."""
        asked: set[str] = set()
        for old in [t for t in live if t.key in self.pending]:
            if not self._limit(r, old.kind):
                break
            await self._poll_one(r, old)
            self.pending.discard(old.key)
            asked.add(old.task_id)
        return asked

    def _list_kinds(self, leftover: list[Task]) -> list[str | None]:
        """The kinds to list: those of the due tasks (and, discovering, the configured
        ones), minus the lists switched off."""
        kinds = list(dict.fromkeys(self._kind(t) for t in leftover))
        if self.discover:
            for kind in self.kinds or [self.provider.default_kind]:
                if kind not in kinds:
                    kinds.append(kind)
        return [k for k in kinds if not self._endpoint_off(f"list:{k or ''}")]

    def _read_list(self, r: Round, kind: str | None, rows: list[Task], tracked: dict[str, Task],
                   asked: set[str], details: list[Task], seen_new: set[str]) -> tuple[set[str], int]:
        """Settle the tracked tasks a list names (a COMPLETED one without results
        goes to ``details``), discover new ones; returns (ids answered, tasks found)."""
        answered: set[str] = set()
        found = 0
        for row in rows:
            old = tracked.get(row.task_id)
            if old is None:
                if self.discover and row.key not in seen_new and self.store.get(row.key) is None \
                        and self._may_discover(r):
                    seen_new.add(row.key)
                    r.discovered.append(row.copy(kind=row.kind or kind))
                    self.h.discovered += 1
                    found += 1
                continue
            if self._kind(old) != kind or row.task_id in asked:
                continue
            answered.add(row.task_id)
            if row.state == SUCCEEDED and not row.results:
                details.append(old)  # the list has no `generated`: ask once
            else:
                self._settle(r, old, row, None)
        return answered, found

    def _learn_from_strangers(self, kind: str | None, rows: list[Task], tracked: dict[str, Task],
                              before: float | None, now: float) -> None:
        """Lengths learned from the tasks a list names that nobody here tracks (a teammate's,
        another script's): a cold start (a first run, a new kind) need not wait for
        ``PRIOR_MIN`` tracked tasks to end.  One that the list before did not name and that
        is live began between the two lists (``born``, their midpoint); when a later list
        shows it succeeded, it ended between that list and the last that saw it live.  The
        error is a list interval at most either way; a task named first when already ended,
        or named by the first list of its kind (begun when?), teaches nothing."""
        named: set[str] = set()
        previous = self.list_named.get(kind)
        for row in rows:
            if row.task_id in tracked:
                continue
            key = row.key
            named.add(key)
            seen = self.strangers.get(key)
            if seen is None:
                if (previous is not None and before is not None and key not in previous
                        and row.state not in TERMINAL and len(self.strangers) < MAX_STRANGERS):
                    self.strangers[key] = (kind, (before + now) / 2, now)
                continue
            if row.state not in TERMINAL:
                self.strangers[key] = (seen[0], seen[1], now)
                continue
            del self.strangers[key]
            if row.state == SUCCEEDED and self.store.get(key) is None:  # tracked since: learned as such
                took = (seen[2] + now) / 2 - seen[1]
                self._learn_length((kind or "", row.model or ""), took)
                if kind and kind == self.provider.default_kind:  # where tasks added without a kind learn
                    self._learn_length(("", row.model or ""), took)
        if len(named) <= MAX_STRANGERS:
            self.list_named[kind] = named
        else:  # a list this long: no stranger is told new from old (and none is learned)
            self.list_named.pop(kind, None)
        for key in [k for k, v in self.strangers.items() if v[0] == kind and k not in named]:
            del self.strangers[key]  # no longer listed (a page further on): how it ends is not seen

    def _learn_length(self, key: tuple[str, str], took: float) -> None:
        if not (0.0 < took <= MAX_AGE):
            return
        durations = self.durations.get(key)
        if durations is None and len(self.durations) < MAX_KINDS:
            durations = self.durations[key] = Durations()
        if durations is not None:
            durations.add(took)

    def _note_usefulness(self, r: Round, kind: str | None, leftover: list[Task], answered: set[str],
                         found: int) -> None:
        """A list that keeps naming none of the tracked tasks of its kind is switched off."""
        mine = sum(1 for t in leftover if self._kind(t) == kind)
        if answered or found or not mine:
            self.useless[kind] = 0
            return
        self.useless[kind] = self.useless.get(kind, 0) + 1
        if self.useless[kind] >= USELESS_ROUNDS:
            self.useless[kind] = 0
            self._switch_off(r, f"list:{kind or ''}",
                             f"its answers named none of the {mine} tracked task(s) "
                             f"{USELESS_ROUNDS} times; asking each task instead")

    async def _fetch_details(self, r: Round, details: list[Task]) -> None:
        for n, old in enumerate(details):
            if not self._limit(r, old.kind):
                # no budget left for these details: they go first next round (still due)
                self.pending.update(o.key for o in details[n:])
                return
            await self._poll_one(r, old)

    def _may_discover(self, r: Round) -> bool:
        """Discovery has a bound: per round and in all; reaching one is said once."""
        most_round, most_total = self.knobs.discover_max_round, self.knobs.discover_max_total
        if len(r.discovered) >= most_round:
            cap, text = "round", f"discovery adds at most {most_round} tasks a round; the rest wait"
        elif self.h.discovered >= most_total:
            cap, text = "total", f"discovery stopped: it added {most_total} tasks (engine discover_max_total)"
        else:
            return True
        if cap not in self.capped:
            self.capped.add(cap)
            r.events.append(Event(time=self.wall(), provider=self.name, message=text, kind="info"))
        return False

    async def _fetch_balance(self, r: Round) -> None:
        """Fetch the balance (counted against the budget).  An optimisation: a failing
        balance endpoint is switched off for a while, said once, never a gate."""
        if self._endpoint_off("balance") or not self._limit(r):
            return
        self.balance_due = self.clock() + self.balance_interval
        balance, err = await self._call(r, lambda: self.provider.fetch_balance(self.client))
        if err is not None:
            if isinstance(err, RateLimited):
                self._fail(r, err)
                self.balance_due = self.clock() + min(self.balance_interval, 60.0)  # sooner than usual
                return
            detail = f"HTTP {err.status}: " if err.status is not None else ""
            self._switch_off(r, "balance", f"{err.kind} ({detail}{clean(err.message, 200)})", err)
            return
        h = self.h
        h.balance, h.balance_unit = balance.remaining, balance.unit
        h.balance_note = self._scrub(balance.note, 200) if balance.note else None
        h.balance_at = self.wall()

    # ------------------------------------------------------------ after a round

    def _finish(self, r: Round) -> None:
        """Provider state after a round, then the rest of its answers to the store."""
        now = self.clock()
        before = (self.state, self.cause)
        if r.halt in (RATE_LIMITED, AUTH_FAILED, QUOTA_EXHAUSTED):
            pass  # set by _fail
        elif r.transient and not r.answered:
            self.fails += 1
            self.state = OFFLINE if r.network == r.transient else BACKING_OFF
            wait = backoff(self.fails, max(0.5, min(self.poll_interval, 5.0)), self.knobs.max_backoff, self.rand)
            self.retry_mono = max(self.retry_mono or 0.0, now + wait)
        elif r.answered:
            self.fails = 0
            if not r.transient and r.sent >= self.parallel:
                self.parallel = min(self.concurrency, self.parallel + 1)
            if not self.verified:
                self.verified = True
                self.wake_up()
            if self.state not in (OK, DEGRADED):
                self.state = OK
                if self.retry_mono is not None and self.retry_mono <= now:
                    self.retry_mono = None
                self.wake_up()  # a probe got through: go on at once
        if self.state in (OK, DEGRADED):
            self.cause = self._degraded_cause()
            self.state = DEGRADED if self.cause else OK
        else:
            self.cause = self.h.last_error
        changed = (self.state, self.cause) != before
        if self.lease.shared and self.lease.held and (r.sent or changed or self.reserved):
            self._save_budget()  # the key's budget and waits, for whoever holds the lease next
        if not (r.updates or r.events or r.sent or r.discovered or r.health or changed or self.has_unsaved):
            return
        # answers are stored whoever holds the lease now; the counters only by the holder
        counters = {self.name: self._blob()} if not (self.lease.shared and not self.lease.held) else None
        self._write(r.updates, r.events, counters, r.discovered, r.health)

    def _blob(self) -> dict[str, Any]:
        """The counters blob to store: this provider's health, with the parts other writers
        keep in it (the push receiver's ``push`` counts) carried over as stored."""
        blob = self.health().encode()
        try:
            stored = self.store.counters().get(self.name) or {}
        except (StoreError, sqlite3.Error, OSError):
            stored = {}
        for key in FOREIGN_KEYS:
            if key in stored:
                blob[key] = stored[key]
        return blob

    def _degraded_cause(self) -> str | None:
        """Why an answering provider is not ok: tasks whose polls fail, stalled tasks."""
        for table in (self.failing, self.stalled):
            for key in [k for k in table if (t := self.store.get(k)) is None or t.terminal]:
                del table[key]
        parts = []
        if self.failing:
            last = next(reversed(self.failing.values()))
            n = len(self.failing)
            who = f"{n} tasks'" if n > 1 else "1 task's"
            parts.append(f"{who} polls failing ({clean(last, 160)})")
        quiet = {k: v for k, v in self.stalled.items() if k not in self.failing}
        if quiet:
            n = len(quiet)
            parts.append(f"{n} task{'s' if n > 1 else ''} stalled ({clean(next(iter(quiet.values())), 160)})")
        if self.push_silent:
            parts.append(self.push_silent)
        return "; ".join(parts) or None

    # ------------------------------------------------------------ writing

    def _write(self, updates: list[Task], events: list[Event], counters: dict | None,
               found: list[Task] | None = None, health: dict[str, dict] | None = None) -> None:
        """Write answers, events, counters and poll health.  What an earlier write could
        not store goes first.  If the store cannot write (disk full, read-only ...),
        everything is kept in memory (merged by key) and tried again with the next
        write: ``store_problem`` says why meanwhile.  An answer the store itself
        refuses (one it cannot encode) is dropped with an event; the others go in."""
        found = list(found or [])
        health = dict(health or {})
        if self.has_unsaved:  # older first: a newer answer or health of the same task wins
            updates, events, counters, found, health = self._take_unsaved(updates, events, counters, found, health)
        try:
            if found:
                self.store.apply(found, discovered=True)
            if updates or events or counters or health:
                self.store.apply(updates, events, counters, health=health or None)
        except (StoreError, sqlite3.Error, OSError) as exc:  # the store cannot write
            if updates or found:
                try:  # is it the store, or one answer in the batch?
                    self.store.apply([], (), {self.name: self._blob()})
                except (StoreError, sqlite3.Error, OSError) as again:
                    self._keep(updates, events, counters, found, health, again)
                    return
                except Exception:
                    pass
                self._write_each(updates, events, counters, found, health)
                return
            self._keep(updates, events, counters, found, health, exc)
            return
        except Exception:  # one answer the store cannot encode: store the others
            self._write_each(updates, events, counters, found, health)
            return
        self._store_ok()

    def _take_unsaved(self, updates: list[Task], events: list[Event], counters: dict | None,
                      found: list[Task], health: dict[str, dict]) -> tuple:
        """What an earlier write kept, merged under what this write brings."""
        merged = dict(self.unsaved_updates)
        old_health = self.unsaved_health
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
        merged_found = dict(self.unsaved_found)
        merged_found.update((t.key, t) for t in found)
        out = (list(merged.values()), list(self.unsaved_events) + list(events),
               counters or self.unsaved_counters, list(merged_found.values()), old_health)
        self.unsaved_updates, self.unsaved_found, self.unsaved_health = {}, {}, {}
        self.unsaved_events.clear()
        self.unsaved_counters = None
        return out

    def _write_each(self, updates: list[Task], events: list[Event], counters: dict | None,
                    found: list[Task], health: dict) -> None:
        """The store refused a batch over one answer: store what it takes, one task at a time."""
        dropped: list[Event] = []
        for discovered, batch in ((True, found), (False, updates)):
            for task in batch:
                try:
                    self.store.apply([task], discovered=discovered)
                except Exception as one:
                    dropped.append(Event(time=self.wall(), provider=self.name, task_id=clean(task.task_id, 200),
                                         kind="bad_response", message=clean(
                                             f"answer not stored: {type(one).__name__}", 200)))
        try:
            self.store.apply([], list(events) + dropped, counters, health=health or None)
        except Exception as last:
            self._keep([], list(events) + dropped, counters, [], health, last)
            return
        self._store_ok()

    def _keep(self, updates: list[Task], events: list[Event], counters: dict | None,
              found: list[Task], health: dict, exc: BaseException) -> None:
        """The store cannot write: keep it all (merged by key) for the next write."""
        for t in updates:
            self.unsaved_updates[t.key] = t
        for t in found:
            self.unsaved_found[t.key] = t
        self.unsaved_events.extend(events)
        for key, fields in (health or {}).items():
            self.unsaved_health[key] = {**self.unsaved_health.get(key, {}), **fields}
        if counters:
            self.unsaved_counters = counters
        reason = self._scrub(str(exc) or type(exc).__name__, 200)
        self.store_problem = clean(f"answers not written to the task database (kept in memory, retried): "
                                   f"{reason}", 300)

    def _store_ok(self) -> None:
        if not self.has_unsaved:
            self.store_problem = None

    def _log_internal(self, exc: Exception) -> None:
        message = self._scrub(f"internal error: {type(exc).__name__}: {exc}", 500)
        self.h.last_error = message
        try:
            self.store.log([Event(time=self.wall(), provider=self.name, message=message, kind="internal")])
        except Exception:  # the log is best effort: the store may be what failed
            pass


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


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
