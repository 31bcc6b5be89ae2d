"""The engine: one ``Worker`` per enabled provider, driven together.

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

What a round does is the worker's (``worker.py``); when a task is due next is
``schedule.plan``'s.  The same code runs under the dashboard (``start``) and
under ``tasktui poll``/``wait`` (``poll_once``, ``focus``).  Every worker saves
its ``ProviderHealth`` through the store after each round: that record, read
with ``health.read_health``, is how everyone else learns a provider's state.
Subscribers learn of changes through the store's change feed.  No API key
ever reaches an event, a counter, a log line or an exception text.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..store import Change, StoreError
from ..text import clean
from .health import DISABLED, OK, ProviderHealth, credits_by_provider
from .worker import Worker

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Store


@dataclass(slots=True)
class ProviderStatus:
    """One provider as the dashboard shows it (a view of its ``ProviderHealth``)."""

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
    balance_note: str | None = None


class Engine:
    """Polls every configured provider; writes what it learns to the store."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], float] = time.monotonic,
                 *, wall: Callable[[], float] = time.time, adaptive: bool | None = None,
                 rand: Callable[[], float] = random.random) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.wall = wall
        self.rand = rand
        self.adaptive = config.engine.adaptive if adaptive is None else adaptive
        self.paused = False
        self._focus: set[str] | None = None
        self._sync_problem: str | None = None
        self._credits_cache: tuple[int, dict[str, float]] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.workers: dict[str, Worker] = {}
        self._build(config)

    # ------------------------------------------------------------ setup

    def _build(self, config: Config) -> None:
        saved = self._saved_counters()
        for name, cfg in config.providers.items():
            if not cfg.enabled:
                continue
            w = Worker(name, cfg, self.store, config.engine, clock=self.clock, wall=self.wall, rand=self.rand,
                       adaptive=self.adaptive)
            w.restore(ProviderHealth.decode(name, saved.get(name)))
            w.paused, w.focus, w.loop = self.paused, self._focus, self._loop
            self.workers[name] = w
        if self.workers:
            try:
                tasks = self.store.tasks()
            except (StoreError, sqlite3.Error, OSError):
                tasks = []
            for w in self.workers.values():
                w.restore_task_health(tasks)

    def _saved_counters(self) -> dict[str, dict]:
        try:
            return self.store.counters()
        except (StoreError, sqlite3.Error, OSError):
            return {}

    # ------------------------------------------------------------ knobs

    @property
    def focus(self) -> set[str] | None:
        """Poll only these keys (``tasktui wait``); None: all."""
        return self._focus

    @focus.setter
    def focus(self, keys: Iterable[str] | None) -> None:
        self._focus = None if keys is None else set(keys)
        for w in self.workers.values():
            w.focus = self._focus
            w.due_cache = None

    @property
    def store_problem(self) -> str | None:
        """Why answers could not be written or the database read (None: all is well)."""
        return self._sync_problem or next((w.store_problem for w in self.workers.values() if w.store_problem),
                                          None)

    @store_problem.setter
    def store_problem(self, text: str | None) -> None:
        self._sync_problem = text

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start one worker per provider (idempotent)."""
        self._loop = asyncio.get_running_loop()
        if self._unsubscribe is None:
            self._unsubscribe = self.store.subscribe(self._on_change)
        for w in self.workers.values():
            w.loop = self._loop
            w.stopping = False
            if w.runner is None or w.runner.done():
                w.runner = asyncio.create_task(w.run(self._sync), name=f"tasktui-engine-{w.name}")

    async def stop(self) -> None:
        """Stop the workers and close the HTTP clients."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for w in self.workers.values():
            w.stopping = True
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
            await w.close()

    async def reconfigure(self, config: Config) -> None:
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
        await asyncio.gather(*(w.round(force=True) for w in self.workers.values()))

    async def poll_due(self) -> None:
        """One round for every provider, of the tasks that are due now only:
        what the background workers do on each wake.  Lets a caller drive the
        engine step by step on its own clock (benchmarks, tests)."""
        self._sync()
        await asyncio.gather(*(w.round() for w in self.workers.values()))

    def refresh_now(self, keys: Iterable[str] | None = None) -> None:
        """Make tasks (all live ones by default) due now and wake the workers.
        Works while paused; never overrides a refused key.  Asked for all tasks
        (the ``r`` key), a provider waiting out a Retry-After or an empty account
        gets ONE request through, whose answer decides what comes next; a refresh
        of some keys (an add, a webhook hint) never bypasses such a wait."""
        wanted = None if keys is None else set(keys)
        names = None if wanted is None else {k.split(":", 1)[0] for k in wanted}
        for w in self.workers.values():
            if names is None or w.name in names:
                w.refresh(wanted)

    def pause(self) -> None:
        """No request leaves until ``resume`` (a ``refresh_now`` still does one round)."""
        self.paused = True
        for w in self.workers.values():
            w.paused = True

    def resume(self) -> None:
        self.paused = False
        for w in self.workers.values():
            w.paused = False
            w.wake_up()

    def resume_provider(self, name: str) -> None:
        """Poll a provider again after a refused key or an empty account."""
        self.workers[name].resume()

    # ------------------------------------------------------------ change feed

    def _on_change(self, change: Change) -> None:
        """Wake the worker of a task the engine has not seen yet (added here or by
        another process); changes to known tasks (our own answers) need no round."""
        woken: set[str] = set()
        for key in change.keys:
            w = self.workers.get(key.split(":", 1)[0])
            if w is None:
                continue
            if key in w.sched:
                if self.store.get(key) is None:
                    w.forget(key)  # removed: a re-add starts afresh
                    woken.add(w.name)
            else:
                woken.add(w.name)
        for name in woken:
            self.workers[name].wake_up()

    def _sync(self) -> None:
        """Pick up other processes' writes; a database that cannot be read is said."""
        try:
            self.store.sync()
        except (StoreError, sqlite3.Error, OSError) as exc:  # the database file gone or unreadable
            self._sync_problem = clean(f"the task database cannot be read: {exc}", 300)
        else:
            self._sync_problem = None

    # ------------------------------------------------------------ reporting

    def _credits(self) -> dict[str, float]:
        revision = self.store.revision
        if self._credits_cache is None or self._credits_cache[0] != revision:
            self._credits_cache = (revision, credits_by_provider(self.store.tasks()))
        return self._credits_cache[1]

    def health(self, *, learned: bool = False) -> list[ProviderHealth]:
        """Every enabled provider's health now (what ``health.read_health`` reads from
        the store once the round under way is written); the learned durations only
        with ``learned`` (a screen has no use for them)."""
        return [w.health(learned=learned) for w in self.workers.values()]

    def status(self, name: str) -> ProviderStatus:
        """The dashboard's view of one configured provider."""
        h = self.workers[name].health(learned=False)
        counts = self.store.counts_by_provider().get(name, {})
        return ProviderStatus(
            name=name, state=h.state, retry_at=h.retry_at, requests=h.requests, errors=h.errors,
            rate_limited=h.rate_limited, last_error=h.last_error,
            credits_spent=round(self._credits().get(name, 0.0), 6), balance=h.balance,
            balance_unit=h.balance_unit, budget=h.budget or "", budget_capacity=h.budget_capacity or 0.0,
            budget_available=h.budget_available or 0, rpm=h.rpm_series(self.wall()), paused=self.paused,
            answers=dict(h.answers), tasks=dict(counts), cause=h.cause if h.state != OK else None,
            balance_note=h.balance_note,
        )

    def statuses(self) -> list[ProviderStatus]:
        return [self.status(name) for name in self.workers]

    def quota(self) -> list[dict[str, Any]]:
        """The ``quota --json`` objects of DESIGN.md, one per configured provider:
        the enabled ones as they are now, then the ones switched off as stored."""
        wall_now = self.wall()
        credits = self._credits()
        counts = self.store.counts_by_provider()
        rows = [w.health(learned=False) for w in self.workers.values()]
        saved = self._saved_counters()
        for name, cfg in self.config.providers.items():
            if name not in self.workers:  # configured but switched off (enabled = false): never polled
                h = ProviderHealth.decode(name, saved.get(name))
                h.enabled, h.state, h.cause, h.retry_at, h.budget = False, DISABLED, None, None, str(cfg.rate_limit)
                rows.append(h)
        return [h.quota_row(credits_spent=credits.get(h.name, 0.0), tasks=counts.get(h.name, {}),
                            paused=self.paused, wall_now=wall_now) for h in rows]
