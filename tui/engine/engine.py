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
from .health import (
    AUTH_FAILED,
    BACKING_OFF,
    DISABLED,
    OFFLINE,
    OK,
    QUOTA_EXHAUSTED,
    RATE_LIMITED,
    ProviderHealth,
    credits_by_provider,
    push_counts,
)
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
    push: dict[str, Any] = field(default_factory=dict)  # pushes received, rejected, polls saved (tui/push.py)


LIVE_RETRY = 1.0  # seconds between two tries to take the store's live tasks in (a database that failed)


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
        self._push_cache: tuple[int, dict[str, dict]] | None = None
        self._push: set[str] = set()  # providers whose pushes this process receives (set_push)
        self.services: list[Any] = []  # run with the engine (attach): the push receiver of --listen
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live_wait: asyncio.Task | None = None  # start() waiting for the store's live tasks
        self.workers: dict[str, Worker] = {}
        self._build(config)

    # ------------------------------------------------------------ setup

    def _build(self, config: Config) -> None:
        saved = self._saved_counters()
        for name, cfg in config.providers.items():
            if not cfg.enabled:
                continue
            w = Worker(name, cfg, self.store, config.engine, clock=self.clock, wall=self.wall, rand=self.rand,
                       adaptive=self.adaptive, safety_net=_safety_net(config))
            w.restore(ProviderHealth.decode(name, saved.get(name)))
            w.paused, w.focus, w.loop = self.paused, self._focus, self._loop
            w.push_route = name in self._push
            self.workers[name] = w
        # a store whose live tasks are still to be read (scope "live", read after opening):
        # their health is restored once they are in (_live_in), not read here at once
        if self.workers and not self._live_pending():
            self._restore_health(self.workers.values())

    def _restore_health(self, workers: Iterable[Worker]) -> None:
        tasks = self._tasks()
        for w in workers:
            w.restore_task_health(tasks)

    def _live_pending(self) -> bool:
        return bool(getattr(self.store, "live_pending", False))

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

    def attach(self, service: Any) -> None:
        """Run ``service`` with this engine: ``await service.start(engine)`` in the
        engine's event loop when the engine starts, ``await service.stop()`` when it
        stops (the push receiver of the dashboard's ``--listen``: tui/push.py
        ``listen_with``).  The engine knows nothing else of it."""
        self.services.append(service)

    async def start(self) -> None:
        """Start one worker per provider (idempotent), and the attached services."""
        self._loop = asyncio.get_running_loop()
        if self._unsubscribe is None:
            self._unsubscribe = self.store.subscribe(self._on_change)
        for service in self.services:
            if not getattr(service, "running", False):
                await service.start(self)
        if self._live_pending():  # polling starts once the live tasks are in memory
            if self._live_wait is None or self._live_wait.done():
                self._live_wait = asyncio.create_task(self._start_when_live(), name="tasktui-engine-live")
            return
        self._start_workers()

    def _start_workers(self) -> None:
        for w in self.workers.values():
            w.loop = self._loop
            w.stopping = False
            if w.runner is None or w.runner.done():
                w.runner = asyncio.create_task(w.run(self._sync), name=f"tasktui-engine-{w.name}")

    async def _start_when_live(self) -> None:
        """Wait (without blocking the loop) for the store's live tasks, take them into
        memory, restore their health, then start the workers.  The read is started here
        unless the opener said it starts it itself (``defer_live``: a dashboard, after
        its first frame)."""
        loop = asyncio.get_running_loop()
        store = self.store
        read = asyncio.Event()

        def told() -> None:  # from the store's reading thread
            try:
                loop.call_soon_threadsafe(read.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        when_live = getattr(store, "when_live", None)
        if when_live is not None:
            when_live(told)
        if not getattr(store, "live_deferred", False):
            store.load_live()
        await read.wait()
        while True:
            try:
                if store.finish_live(wait=True):  # read: no wait (a failed read is read again here)
                    break
            except (StoreError, sqlite3.Error, OSError) as exc:
                self._sync_problem = clean(f"the task database cannot be read: {exc}", 300)
            await asyncio.sleep(LIVE_RETRY)  # busy, or failed: try again
        self._sync_problem = None
        self._restore_health(self.workers.values())
        self._start_workers()

    def _live_now(self) -> None:
        """A round driven by its caller (poll_once, poll_due): the live tasks first."""
        if self._live_pending():
            self.store.finish_live(wait=True)
            self._restore_health(self.workers.values())

    async def stop(self, *, finish: bool = False) -> None:
        """Stop the workers and close the HTTP clients.  With ``finish`` each
        worker first ends the round under way (its answers written; within the
        round's deadline), as ``tasktui collect`` does on SIGTERM; without, the
        rounds are cancelled (answers not yet written are asked again next run)."""
        if finish:
            await asyncio.gather(*(self._stop_worker(w) for w in self.workers.values()))
        for service in self.services:
            if getattr(service, "running", False):
                try:
                    await service.stop()
                except Exception:  # stopping: what a service says now changes nothing
                    pass
        if self._live_wait is not None:
            self._live_wait.cancel()
            try:
                await self._live_wait
            except (asyncio.CancelledError, Exception):
                pass
            self._live_wait = None
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
        running = any(w.runner is not None for w in self.workers.values()) or (
            self._live_wait is not None and not self._live_wait.done())
        await self.stop()
        self.config = config
        self.workers = {}
        self._build(config)
        if running:
            await self.start()

    async def reload(self, config: Config) -> list[str]:
        """Apply a new config while running, keeping what the engine knows.

        Returns one line per change (empty: nothing to apply), never showing a
        key or secret.  A provider added gets a worker (started if the engine
        runs); one removed or switched off stops cleanly: its round under way
        ends and its counters are written, its tasks stay in the store.  A
        provider whose table changed gets a new worker that takes over the old
        one's schedules, learned durations, counters, budget use and unsaved
        answers: a new key, rate or interval needs no restart.  A new
        ``api_key`` is tried at once (a refused key or a wait for credits is
        forgotten); with the same key a refusal stands (``retry_now``).  A
        change to ``[engine]`` renews every worker the same way."""
        lines: list[str] = []
        engine_changes = _diff(self.config.engine, config.engine)
        lines += [f"engine: {c}" for c in engine_changes]
        if "adaptive" in {name for name, _, _ in _fields_changed(self.config.engine, config.engine)}:
            self.adaptive = config.engine.adaptive
        running = self._loop is not None and any(w.runner is not None for w in self.workers.values())
        wanted = {name: cfg for name, cfg in config.providers.items() if cfg.enabled}
        for name in list(self.workers):
            if name not in wanted:
                old = self.workers.pop(name)
                await self._stop_worker(old)
                gone = "switched off (enabled = false)" if name in config.providers else "removed"
                lines.append(f"{name}: {gone}; no longer polled (its tasks stay)")
        tasks: list | None = None
        for name, cfg in wanted.items():
            old = self.workers.get(name)
            if old is None:
                w = self._new_worker(name, cfg, config)
                w.restore(ProviderHealth.decode(name, self._saved_counters().get(name)))
                if tasks is None:
                    tasks = self._tasks()
                w.restore_task_health(tasks)
                self.workers[name] = w
                lines.append(f"{name}: added ({cfg.base_url}, {cfg.rate_limit}, every {cfg.poll_interval:g} s)")
                if running:
                    self._run_worker(w)
                continue
            changes = _diff(old.cfg, cfg)
            if not changes and not engine_changes:
                continue
            lines += [f"{name}: {c}" for c in changes]
            await self._stop_worker(old)
            w = self._new_worker(name, cfg, config)
            _take_over(w, old, new_key=old.cfg.key != cfg.key, same_endpoints=(
                old.cfg.base_url == cfg.base_url and old.cfg.kinds == cfg.kinds))
            self.workers[name] = w
            if running:
                self._run_worker(w)
        self.config = config
        return [clean(line, 300) for line in lines]

    def retry_now(self, provider: str) -> None:
        """Try ``provider`` at once: a refused key (auth_failed), an empty account,
        a backoff after failures or a network outage are forgotten and one probe
        request goes now (its answer decides what follows); a Retry-After still
        running lets one request through, as ``r`` does.  Works while paused.
        KeyError if the provider is not polled (not configured, or switched off)."""
        w = self.workers[provider]
        if w.state in (AUTH_FAILED, QUOTA_EXHAUSTED, BACKING_OFF, OFFLINE):
            w.resume()
            w.verified = False  # one probe first: a still-refused key costs one request, not a round
        w.refresh(None)

    def _new_worker(self, name: str, cfg: Any, config: Config) -> Worker:
        w = Worker(name, cfg, self.store, config.engine, clock=self.clock, wall=self.wall, rand=self.rand,
                   adaptive=self.adaptive, safety_net=_safety_net(config))
        w.paused, w.focus, w.loop = self.paused, self._focus, self._loop
        w.push_route = name in self._push
        return w

    def _run_worker(self, w: Worker) -> None:
        w.loop = self._loop
        w.stopping = False
        w.runner = asyncio.create_task(w.run(self._sync), name=f"tasktui-engine-{w.name}")

    async def _stop_worker(self, w: Worker) -> None:
        """Let ``w`` finish the round under way (within its deadline), then close it."""
        w.stopping = True
        runner, w.runner = w.runner, None
        if runner is not None and not runner.done():
            w.wake_up()
            done, _ = await asyncio.wait({runner}, timeout=w.round_deadline + 5.0)
            if not done:
                runner.cancel()
            try:
                await runner
            except (asyncio.CancelledError, Exception):
                pass
        elif runner is not None:
            try:
                runner.result()
            except (asyncio.CancelledError, Exception):
                pass
        await w.close()

    def _tasks(self) -> list:
        try:
            return self.store.tasks()
        except (StoreError, sqlite3.Error, OSError):
            return []

    async def poll_once(self) -> None:
        """One round for every provider: refresh every due live task (within budget)."""
        self._live_now()
        self._sync()
        await asyncio.gather(*(w.round(force=True) for w in self.workers.values()))

    async def poll_due(self) -> None:
        """One round for every provider, of the tasks that are due now only:
        what the background workers do on each wake.  Lets a caller drive the
        engine step by step on its own clock (benchmarks, tests)."""
        self._live_now()
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

    def set_push(self, providers: Iterable[str]) -> None:
        """The providers whose pushes this process receives (``collect --listen``, the
        dashboard's ``--listen``): their workers get ``push_route = True`` (what to do
        with it, the safety-net polling, is the worker's)."""
        self._push = set(providers)
        for w in self.workers.values():
            w.set_push_route(w.name in self._push)

    def note_push(self, key: str) -> None:
        """A signed push about ``key`` was stored (``PushReceiver.on_push``): its
        worker takes the task as fed by push (``Worker.note_push``: polled only as a
        safety net from now on)."""
        w = self.workers.get(key.split(":", 1)[0])
        if w is not None:
            w.note_push(key)

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
            summed = getattr(self.store, "credits_by_provider", None)  # SQL over every task, whatever the scope
            self._credits_cache = (revision, summed() if summed is not None else credits_by_provider(self.store.tasks()))
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
            balance_note=h.balance_note, push=self._push_of(name),
        )

    def _push_of(self, name: str) -> dict[str, Any]:
        """The push counts of one provider as the receiver stored them ({} when none)."""
        revision = self.store.revision
        if self._push_cache is None or self._push_cache[0] != revision:  # one read per store change
            self._push_cache = (revision, self._saved_counters())
        return push_counts((self._push_cache[1].get(name) or {}).get("push"))

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
        for h in rows:  # the push receiver's counts, as it stored them
            h.push = push_counts((saved.get(h.name) or {}).get("push"))
        for name, cfg in self.config.providers.items():
            if name not in self.workers:  # configured but switched off (enabled = false): never polled
                h = ProviderHealth.decode(name, saved.get(name))
                h.enabled, h.state, h.cause, h.retry_at, h.budget = False, DISABLED, None, None, str(cfg.rate_limit)
                rows.append(h)
        return [h.quota_row(credits_spent=credits.get(h.name, 0.0), tasks=counts.get(h.name, {}),
                            paused=self.paused, wall_now=wall_now) for h in rows]


# ---------------------------------------------------------------- reload helpers

# Worker state a renewed worker takes over as it is (what ``restore`` does not carry)
_CARRIED = ("sched", "task_health", "failing", "stalled", "pending", "useless", "capped",
            "unsaved_updates", "unsaved_found", "unsaved_events", "unsaved_health", "unsaved_counters",
            "store_problem", "pushed", "end_checked")
_SECRET_FIELDS = ("api_key", "webhook_secret")


def _fields_changed(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """(field, old value, new value) of two pydantic config models that differ."""
    out = []
    for name in type(new).model_fields:
        a, b = getattr(old, name, None), getattr(new, name, None)
        if hasattr(a, "get_secret_value"):
            a = a.get_secret_value()
        if hasattr(b, "get_secret_value"):
            b = b.get_secret_value()
        if a != b:
            out.append((name, a, b))
    if getattr(old, "declaration", None) != getattr(new, "declaration", None):
        out.append(("declaration", None, None))
    return out


def _diff(old: Any, new: Any) -> list[str]:
    """What changed between two config tables, a line each; secrets named, never shown."""
    lines = []
    for name, a, b in _fields_changed(old, new):
        if name in _SECRET_FIELDS:
            lines.append(f"{name} {'set' if a is None else 'removed' if b is None else 'changed'}")
        elif name == "declaration":
            lines.append("provider description changed")
        else:
            lines.append(f"{name} {_shown(a)} -> {_shown(b)}")
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _take_over(new: Worker, old: Worker, *, new_key: bool, same_endpoints: bool) -> None:
    """``new`` (a renewed config) goes on where ``old`` stopped."""
    new.restore(old.health(learned=True))  # counters, budget use, learned durations, daily use, waits
    for name in _CARRIED:
        if hasattr(old, name):
            setattr(new, name, getattr(old, name))
    if same_endpoints:
        new.off = dict(old.off)  # a list or balance endpoint switched off stays off
        new.balance_due, new.list_due = old.balance_due, old.list_due
    if new_key:  # another account: its waits and refusals are not this one's
        new.state, new.retry_mono, new.cause = OK, None, None
    elif old.state == AUTH_FAILED:
        new.state, new.cause = old.state, old.cause
    elif old.state in (RATE_LIMITED, QUOTA_EXHAUSTED) and old.retry_mono is not None:
        new.state, new.retry_mono, new.cause = old.state, old.retry_mono, old.cause
    if new.poll_interval < old.poll_interval:  # a shorter interval applies from now
        now = new.clock()
        for s in new.sched.values():
            s.due = min(s.due, now + new.poll_interval)
    new.due_cache = None


def _safety_net(config: Any) -> float | None:
    """``[listen] safety_net``: how often a push-fed task is polled (None: the worker's default)."""
    value = getattr(getattr(config, "listen", None), "safety_net", None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
