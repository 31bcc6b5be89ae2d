"""The simulator's state, without HTTP: task lifecycles at a sim time, fault
matching, request budgets, announced Retry-After windows, and the records of
every request served.  Thread safe: the server thread and tests share it.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from .clock import SimClock
from .scenario import VARIANTS, Fault, ProviderSpec, Scenario, SimTask, parse_rate, split_variant
from .vendors import OWN_VENDORS, PROXY_VENDORS

DEFAULT_BALANCE = {"comfy": 10_000.0, "evolink": 1_000.0}  # cents, credits


@dataclass(slots=True)
class Record:
    """One request the simulator served."""

    time: float  # sim time
    wall: float  # epoch seconds
    provider: str | None  # None: a path no provider has
    method: str
    path: str
    endpoint: str  # status list balance other
    task_id: str | None
    status: int
    auth_ok: bool
    fault: str | None = None  # the fault kind applied, if any
    over_budget: bool = False  # answered 429 because the provider's budget was spent
    violation: bool = False  # arrived inside an announced Retry-After window
    missing_route: bool = False  # strict mode: a route the seed documents do not give (404)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Violation:
    """A request that came before the wait the simulator had announced (429) ran out."""

    time: float
    provider: str
    path: str
    task_id: str | None
    window_end: float  # sim time the announced wait ends
    early_by: float  # sim seconds too early

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _curve(name: str, f: float) -> float:
    f = min(1.0, max(0.0, f))
    if name == "ease":
        return f * f * (3 - 2 * f)
    if name == "steps":
        return math.floor(f * 4) / 4
    if name == "stall":  # quick to 70 %, then stuck there until the end
        return 0.7 * min(1.0, f / 0.3)
    return f


def lifecycle(task: SimTask, t: float) -> tuple[str, float] | None:
    """(state, progress 0..100) of ``task`` at sim time ``t``; None when it
    does not exist (not created yet, or expired)."""
    if t < task.created or (task.expires is not None and t >= task.expires):
        return None
    peak = task.peak if task.peak is not None else (100.0 if task.end_state == "succeeded" else 60.0)
    if t < task.start:
        return "queued", 0.0
    if t < task.end:
        span = task.end - task.start
        return "running", peak * _curve(task.curve, (t - task.start) / span if span > 0 else 1.0)
    if task.end_state == "succeeded":
        return "succeeded", 100.0
    return task.end_state, peak * _curve(task.curve, 1.0)


class Simulator:
    """A scenario being played.  ``now()`` is the sim time of the clock."""

    def __init__(self, scenario: Scenario, clock: SimClock | None = None, speed: float = 1.0) -> None:
        # Tasks are never changed in place (``add`` replaces them), so a shallow
        # copy is enough; faults are (their counts run down): copy those.
        self.scenario = scenario.model_copy(update={
            "tasks": list(scenario.tasks),
            "faults": [f.model_copy() for f in scenario.faults],
            "providers": dict(scenario.providers),
        })
        for name, spec in list(self.scenario.providers.items()):
            if spec.balance is None and name in DEFAULT_BALANCE:
                self.scenario.providers[name] = spec.model_copy(update={"balance": DEFAULT_BALANCE[name]})
        self.clock = clock or SimClock(speed)
        self.epoch = (scenario.epoch if scenario.epoch is not None
                      else time.time() - self.clock.now() / self.clock.scale)
        self.on_request: Callable[[Record], None] | None = None
        self._lock = threading.RLock()
        self._index: dict[tuple[str, str], SimTask] = {}
        self._kinds: dict[str, set[str]] = {}
        self._by_provider: dict[str, dict[str, SimTask]] = {}  # insertion order, for lists
        for t in self.scenario.tasks:
            self._put(t)
        self._records: list[Record] = []
        self._violations: list[Violation] = []
        self._windows: dict[str, float] = {}
        self._spent: dict[str, deque[float]] = {}

    # ------------------------------------------------------------ time

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> float:
        return self.clock.advance(seconds)

    def wall(self, t: float) -> float:
        """Epoch seconds of sim time ``t`` (timestamps in answers): at speed 10,
        ten sim seconds are one real second."""
        return self.epoch + t / self.clock.scale

    # ------------------------------------------------------------ scenario

    def spec(self, provider: str) -> ProviderSpec | None:
        return self.scenario.providers.get(provider)

    def key(self, provider: str) -> str:
        """The key ``provider``'s requests must carry: its own, or for a vendor behind
        the Comfy proxy without one of its own, the Comfy key (acme: ``sim-key-acme``)."""
        spec = self.spec(provider)
        if spec is not None:
            return spec.key
        if provider in PROXY_VENDORS:
            return self.scenario.providers["comfy"].key
        if provider in OWN_VENDORS:
            return f"sim-key-{provider}"
        raise KeyError(provider)

    @property
    def strict(self) -> bool:
        """Serve only each seed document's endpoints (see ``Scenario.strict``)."""
        return self.scenario.strict

    def variant_parts(self, provider: str, task: SimTask | None = None) -> tuple[str, frozenset[str]]:
        """(base variant, flavors) for ``task``: its own base if it names one,
        else the provider's, else the default; flavors of both."""
        spec = self.spec(provider)
        s_base, s_flavors = split_variant(provider, spec.variant if spec else None)
        t_base, t_flavors = split_variant(provider, task.variant if task is not None else None)
        return t_base or s_base or VARIANTS[provider][0], s_flavors | t_flavors

    def variant(self, provider: str, task: SimTask | None = None) -> str:
        """The base variant (see ``variant_parts`` for the flavors too)."""
        return self.variant_parts(provider, task)[0]

    def check_ids(self, provider: str) -> bool:
        """Whether ids are format-checked (EvoLink's 400 invalid_task_id): the
        provider's ``check_ids``, or strict mode when that is unset."""
        spec = self.spec(provider)
        if spec is not None and spec.check_ids is not None:
            return spec.check_ids
        return self.strict

    def task(self, provider: str, task_id: str) -> SimTask | None:
        with self._lock:
            return self._index.get((provider, task_id))

    def tasks(self, provider: str) -> list[SimTask]:
        with self._lock:
            return list(self._by_provider.get(provider, {}).values())

    def kinds(self, provider: str) -> set[str]:
        """The path kinds this provider's tasks use (kept up to date by ``add``)."""
        with self._lock:
            return set(self._kinds.get(provider, ()))

    def _put(self, task: SimTask) -> None:
        self._index[(task.provider, task.task_id)] = task
        mine = self._by_provider.setdefault(task.provider, {})
        mine.pop(task.task_id, None)
        mine[task.task_id] = task
        if task.path_kind:
            self._kinds.setdefault(task.provider, set()).add(task.path_kind)

    def add(self, tasks: Iterable[SimTask] = (), faults: Iterable[Fault] = (),
            providers: dict[str, ProviderSpec] | None = None) -> int:
        """Set provider specs (validated first: a bad one changes nothing), then
        add or replace tasks (by provider and id) and append faults."""
        with self._lock:
            if providers:
                self.scenario.providers = {**self.scenario.providers, **providers}
            n = 0
            for task in tasks:
                old = self._index.get((task.provider, task.task_id))
                if old is not None:
                    self.scenario.tasks.remove(old)
                self.scenario.tasks.append(task)
                self._put(task)
                n += 1
            self.scenario.faults.extend(faults)
            return n

    # ------------------------------------------------------------ answers

    def auth_ok(self, provider: str, presented: str | None) -> bool:
        if not presented:
            return False
        try:
            key = self.key(provider)
        except KeyError:
            return False
        return hmac.compare_digest(presented.encode(), key.encode())

    def take_fault(self, provider: str, endpoint: str, task_id: str | None, t: float) -> Fault | None:
        """The first active fault for this request, its count used up by one."""
        with self._lock:
            for fault in self.scenario.faults:
                if fault.provider not in (None, provider) or not fault.active(t):
                    continue
                if fault.endpoint not in ("any", endpoint):
                    continue
                if fault.task_id is not None and fault.task_id != task_id:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                return fault
        return None

    def take_budget(self, provider: str, t: float) -> float | None:
        """None when the request is within the provider's budget (and counts it);
        else the real seconds until a slot frees."""
        spec = self.spec(provider)
        if spec is None or spec.budget is None:
            return None
        limit, period = parse_rate(spec.budget)
        window = period * self.clock.scale
        with self._lock:
            spent = self._spent.setdefault(provider, deque())
            while spent and spent[0] <= t - window:
                spent.popleft()
            if len(spent) >= limit:
                return max(1.0, (spent[0] + window - t) / self.clock.scale)
            spent.append(t)
        return None

    def announce(self, provider: str, t: float, seconds: float) -> None:
        """A 429 told ``provider``'s client to wait ``seconds`` (real seconds)."""
        with self._lock:
            end = t + seconds * self.clock.scale
            self._windows[provider] = max(end, self._windows.get(provider, end))

    def window_end(self, provider: str, t: float) -> float | None:
        """The end of the announced wait ``t`` falls in, if any."""
        with self._lock:
            end = self._windows.get(provider)
        return end if end is not None and t < end else None

    def balance(self, provider: str, t: float) -> tuple[float, float]:
        """(left, used): used = credits of this provider's tasks succeeded by ``t``."""
        used = sum(task.credits for task in self.tasks(provider)
                   if task.end_state == "succeeded" and task.end <= t)
        spec = self.spec(provider)
        start = spec.balance if spec and spec.balance is not None else DEFAULT_BALANCE.get(provider, 0.0)
        return start - used, used

    # ------------------------------------------------------------ records

    def record(self, rec: Record, window_end: float | None = None) -> None:
        with self._lock:
            if window_end is not None and rec.provider:
                rec.violation = True
                self._violations.append(Violation(rec.time, rec.provider, rec.path, rec.task_id,
                                                  window_end, window_end - rec.time))
            self._records.append(rec)
        callback = self.on_request
        if callback is not None:
            try:
                callback(rec)
            except Exception:  # a printing hook must never break the server
                pass

    @property
    def requests(self) -> list[Record]:
        """Every request served, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    @property
    def violations(self) -> list[Violation]:
        """Every request that arrived inside an announced Retry-After window (a copy)."""
        with self._lock:
            return list(self._violations)

    def reset(self) -> None:
        """Forget records, violations, announced windows and budget use."""
        with self._lock:
            self._records.clear()
            self._violations.clear()
            self._windows.clear()
            self._spent.clear()
