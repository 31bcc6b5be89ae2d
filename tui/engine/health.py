"""Provider health: one typed record, stored through the store, read by everyone.

The engine's workers keep a ``ProviderHealth`` per provider and save it, as a
JSON object (``encode``), in the counters table of the store after every
round.  The dashboard's header and quota pane, ``tasktui quota`` and ``wait``
read it back (``read_health``) from the store, with or without an engine
running: one source of truth for a provider's state, online or offline.
``decode`` reads every blob the engine has ever saved (older databases
included) and skips what it cannot read.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from ..budget import Budget
from ..model import Task, iso
from .schedule import MAX_KINDS, PRIOR_SIZE

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Store

OK = "ok"
BACKING_OFF = "backing_off"
RATE_LIMITED = "rate_limited"
AUTH_FAILED = "auth_failed"
QUOTA_EXHAUSTED = "quota_exhausted"
OFFLINE = "offline"
DEGRADED = "degraded"  # answering, but some tasks' polls fail or tasks are stalled (see ``cause``)
PROVIDER_STATES = (OK, BACKING_OFF, RATE_LIMITED, AUTH_FAILED, QUOTA_EXHAUSTED, OFFLINE, DEGRADED)
DISABLED = "disabled"  # configured with enabled = false: listed, never polled
RPM_MINUTES = 60  # requests per minute kept, the latest minutes
TEXT_MAX = 500  # characters of a stored text read back at most


@dataclass(slots=True)
class ProviderHealth:
    """One provider's state and counters.  Times are wall-clock epoch seconds."""

    name: str
    state: str = OK
    cause: str | None = None  # why the state is not ok
    retry_at: float | None = None  # no request before this (rate limited, out of credits, backing off)
    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # "ok" / error kind -> count
    last_error: str | None = None
    last_error_at: float | None = None
    rpm: dict[int, int] = field(default_factory=dict)  # epoch minute -> requests sent in it
    budget: str | None = None  # the request budget, "100/h"
    budget_capacity: float | None = None  # the burst the budget allows
    budget_available: int | None = None  # requests it allowed at once when saved
    recent: list[float] = field(default_factory=list)  # wall times of the requests inside the budget window
    balance: float | None = None
    balance_unit: str | None = None
    balance_note: str | None = None
    balance_at: float | None = None  # when the balance was read
    last_answer_at: float | None = None  # the provider's last answer of any kind but a failure
    daily: dict[str, dict[str, float]] = field(default_factory=dict)  # kind -> {"limit", "used", "reset_at"}
    endpoints_off: dict[str, dict[str, Any]] = field(default_factory=dict)  # "list:kind" -> {"reason", "until"}
    durations: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (kind, model) -> seconds
    discovered: int = 0  # tasks discovery added, all runs
    saved_at: float | None = None  # when this record was written
    enabled: bool = True  # not stored: from the config
    # who polls this provider key (tui/lease.py): {"host", "pid", "since"}; empty: nobody known.
    # ``live`` (not stored) is False when the lease has run out (the holder stopped or died)
    lease: dict[str, Any] = field(default_factory=dict)
    # the push receiver's counts (tui/push.py writes them under "push" in the blob; read here, never encoded:
    # the worker carries them over as stored): received, accepted, polls_saved, rejected {reason: n} ...
    push: dict[str, Any] = field(default_factory=dict)

    @property
    def polled_by(self) -> str | None:
        """'polled by HOST (pid N) since HH:MM:SS' while a lease holder is known, else None."""
        lease = self.lease
        if not lease or lease.get("live") is False:
            return None
        from ..lease import polled_by_text

        return polled_by_text(lease.get("host"), lease.get("pid"), lease.get("since"))

    # ------------------------------------------------------------ views

    def rpm_series(self, wall_now: float) -> list[int]:
        """Requests per minute, oldest first, the last ``RPM_MINUTES`` minutes up to ``wall_now``."""
        minute = int(wall_now // 60)
        return [int(self.rpm.get(m, 0)) for m in range(minute - RPM_MINUTES + 1, minute + 1)]

    def retry_left(self, wall_now: float) -> float | None:
        """The retry time, or None once it has passed."""
        return self.retry_at if self.retry_at is not None and self.retry_at > wall_now else None

    def quota_row(self, *, credits_spent: float, tasks: dict[str, int], paused: bool,
                  wall_now: float) -> dict[str, Any]:
        """The ``quota --json`` object of DESIGN.md (plus additive fields)."""
        live = self.enabled
        return {
            "provider": self.name, "state": self.state if live else DISABLED,
            "requests": self.requests, "errors": self.errors, "rate_limited": self.rate_limited,
            "retry_at": iso(self.retry_left(wall_now)) if live else None,
            "credits_spent": round(credits_spent, 6), "balance": self.balance,
            "budget_left": self.budget_available if live else None, "tasks": dict(tasks),
            "budget": self.budget,
            "balance_unit": (self.balance_unit if self.balance is not None else None) if live else self.balance_unit,
            "last_error": self.last_error, "paused": paused, "answers": dict(self.answers),
            "enabled": live, "cause": self.cause if live and self.state != OK else None,
            "balance_note": self.balance_note, "last_answer_at": iso(self.last_answer_at),
            "polled_by": self.polled_by if live else None,
            "lease": ({"host": self.lease.get("host"), "pid": self.lease.get("pid"),
                       "since": iso(_number(self.lease.get("since"))), "live": self.lease.get("live", True)}
                      if live and self.lease else None),
            "push": dict(self.push) or None,  # pushes received, rejected by reason, polls they saved
        }

    # ------------------------------------------------------------ the stored form

    def encode(self) -> dict[str, Any]:
        """The JSON object the store keeps (``store.counters()[name]``)."""
        blob: dict[str, Any] = {
            "requests": self.requests, "errors": self.errors, "rate_limited": self.rate_limited,
            "answers": dict(self.answers), "last_error": self.last_error, "last_error_at": self.last_error_at,
            "rpm": {str(m): n for m, n in self.rpm.items()},
            "state": self.state, "cause": self.cause, "retry_at": self.retry_at,
            "recent": [round(t, 3) for t in self.recent],
            "balance": self.balance, "balance_unit": self.balance_unit, "balance_note": self.balance_note,
            "budget": self.budget, "budget_capacity": self.budget_capacity,
            "budget_available": self.budget_available, "last_answer_at": self.last_answer_at,
            "durations": {f"{kind}\t{model}": [round(v, 1) for v in values]
                          for (kind, model), values in self.durations.items() if values},
            "endpoints_off": {k: dict(v) for k, v in self.endpoints_off.items()},
            "discovered": self.discovered, "saved_at": self.saved_at,
        }
        if self.balance_at is not None:
            blob["balance_at"] = self.balance_at
        if self.daily:
            blob["daily"] = {kind: dict(d) for kind, d in self.daily.items()}
        if self.lease:
            blob["lease"] = {k: self.lease.get(k) for k in ("host", "pid", "since")}
        return blob

    @classmethod
    def decode(cls, name: str, blob: Any) -> ProviderHealth:
        """A stored blob (any version the engine has written) -> a record;
        missing or malformed parts keep their defaults."""
        h = cls(name=name)
        if not isinstance(blob, dict):
            return h
        state = blob.get("state")
        h.state = state if state in PROVIDER_STATES else OK
        h.cause = _text(blob.get("cause"))
        h.retry_at = _number(blob.get("retry_at"))
        h.requests, h.errors, h.rate_limited = (_count(blob.get(k)) for k in ("requests", "errors", "rate_limited"))
        h.answers = {str(k): _count(v) for k, v in _dict(blob.get("answers")).items()}
        h.last_error = _text(blob.get("last_error"))
        h.last_error_at = _number(blob.get("last_error_at"))
        for minute, n in _dict(blob.get("rpm")).items():
            try:
                h.rpm[int(minute)] = _count(n)
            except (TypeError, ValueError):
                continue
        h.budget = _text(blob.get("budget"))
        h.budget_capacity = _number(blob.get("budget_capacity"))
        available = _number(blob.get("budget_available"))
        h.budget_available = None if available is None else int(available)
        recent = blob.get("recent")
        h.recent = [t for t in (_number(x) for x in recent) if t is not None] if isinstance(recent, list) else []
        h.balance = _number(blob.get("balance"))
        h.balance_unit = _text(blob.get("balance_unit"))
        h.balance_note = _text(blob.get("balance_note"))
        h.balance_at = _number(blob.get("balance_at"))
        h.last_answer_at = _number(blob.get("last_answer_at"))
        h.daily = {str(k): dict(v) for k, v in _dict(blob.get("daily")).items() if isinstance(v, dict)}
        h.endpoints_off = {str(k): dict(v) for k, v in _dict(blob.get("endpoints_off")).items()
                           if isinstance(v, dict)}
        for key, values in _dict(blob.get("durations")).items():
            if len(h.durations) >= MAX_KINDS:
                break
            if not isinstance(key, str) or not isinstance(values, list):
                continue
            kind, _, model = key.partition("\t")
            kept = [float(v) for v in values[-PRIOR_SIZE:]
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0]
            if kept:
                h.durations[(kind, model)] = kept
        h.discovered = _count(blob.get("discovered"))
        h.saved_at = _number(blob.get("saved_at"))
        h.push = push_counts(blob.get("push"))
        lease = _dict(blob.get("lease"))
        if lease:
            pid = _number(lease.get("pid"))
            h.lease = {"host": _text(lease.get("host")), "pid": None if pid is None else int(pid),
                       "since": _number(lease.get("since"))}
        return h


def credits_by_provider(tasks: Iterable[Task]) -> dict[str, float]:
    """Credits the tasks cost, summed per provider (the one place this is added up)."""
    totals: dict[str, float] = {}
    for t in tasks:
        if t.credits:
            totals[t.provider] = totals.get(t.provider, 0.0) + float(t.credits)
    return totals


def read_health(store: Store, config: Config, *, wall_now: float | None = None) -> list[ProviderHealth]:
    """Every configured provider's health as last stored, enabled ones first (in
    the config's order), then the ones switched off; no engine, no request.
    ``budget_available`` is what the request budget allows now (``wall_now``)."""
    try:
        saved = store.counters() or {}
    except Exception:  # an unreadable counters table: nothing known yet
        saved = {}
    wall_now = time.time() if wall_now is None else wall_now
    leases, lease_now = _leases(store)
    out: list[ProviderHealth] = []
    off: list[ProviderHealth] = []
    for name, cfg in config.providers.items():
        h = ProviderHealth.decode(name, saved.get(name))
        h.budget = str(cfg.rate_limit)
        if cfg.enabled:
            _lease_of(h, leases, lease_now, name, cfg)
            # what the budget allows now, the requests of every run inside its window counted
            budget = Budget.for_provider(cfg.rate_limit.count, cfg.rate_limit.per, cfg.concurrency)
            budget.restore([wall_now - t for t in h.recent])
            h.budget_capacity, h.budget_available = budget.capacity, budget.available
            out.append(h)
        else:
            h.enabled = False
            h.state, h.cause, h.retry_at, h.budget_available = DISABLED, None, None, None
            off.append(h)
    return out + off


def _leases(store: Store) -> tuple[dict[str, Any], float]:
    """The stored leases (who polls which provider key) and the lease clock's now."""
    from ..lease import read_leases

    try:
        return read_leases(store)
    except Exception:  # a lease table that cannot be read says nothing
        return {}, time.time()


def _lease_of(h: ProviderHealth, leases: dict[str, Any], now: float, name: str, cfg: Any) -> None:
    """Who polls this provider's key now, from its lease row (``live`` False once it ran out)."""
    from ..lease import key_id

    try:
        info = leases.get(key_id(name, cfg.api_key.get_secret_value()))
    except Exception:
        info = None
    if info is not None and info.holder:
        h.lease = {"host": _text(info.host), "pid": info.pid, "since": info.since, "live": info.expires > now}
    elif h.lease:
        h.lease["live"] = False  # the blob names a holder whose lease is not there (any more)


def quota(store: Store, config: Config, *, paused: bool = False,
          wall_now: float | None = None) -> list[dict[str, Any]]:
    """``tasktui quota``'s rows, read from the store alone."""
    wall_now = time.time() if wall_now is None else wall_now
    credits = credits_by_provider(store.tasks())
    counts = store.counts_by_provider()
    return [h.quota_row(credits_spent=credits.get(h.name, 0.0), tasks=counts.get(h.name, {}),
                        paused=paused, wall_now=wall_now) for h in read_health(store, config, wall_now=wall_now)]


def push_counts(value: Any) -> dict[str, Any]:
    """The push receiver's counts as stored (tui/push.py), numbers only; {} when none."""
    out: dict[str, Any] = {}
    for name, n in _dict(value).items():
        if name == "rejected":
            out["rejected"] = {str(k): _count(v) for k, v in _dict(n).items()}
        elif name == "last_at":
            out["last_at"] = iso(_number(n))
        elif isinstance(name, str) and _number(n) is not None:
            out[name] = _count(n)
    return out


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> int:
    number = _number(value)
    return max(0, int(number)) if number is not None else 0


def _text(value: Any) -> str | None:
    return str(value)[:TEXT_MAX] if isinstance(value, str) and value else None
