"""The normalised task and the typed errors a provider call can end in.

Field names and state values are the contract of ``ls --json``,
``wait --json`` and ``export`` (see DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
NOT_FOUND = "not_found"
UNKNOWN = "unknown"

STATES: tuple[str, ...] = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, NOT_FOUND, UNKNOWN)
TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED, NOT_FOUND})
BAD_ENDS: frozenset[str] = frozenset({FAILED, CANCELLED, NOT_FOUND})

PROVIDERS: tuple[str, ...] = ("comfy", "upscayl", "qolaba", "freepik", "evolink")

# The contract's field order for JSON and CSV.
TASK_FIELDS: tuple[str, ...] = (
    "provider",
    "task_id",
    "kind",
    "label",
    "state",
    "provider_status",
    "progress",
    "results",
    "error",
    "model",
    "credits",
    "created_at",
    "updated_at",
    "finished_at",
)
TIME_FIELDS = ("created_at", "updated_at", "finished_at")
# Additive fields (DESIGN.md): a task's poll health, after the contract's own.
HEALTH_FIELDS: tuple[str, ...] = ("last_error", "last_error_at", "failed_polls", "stalled", "stalled_reason",
                                  "poll_path", "details")


MAX_EPOCH = 253402300800.0  # 10000-01-01: datetime (and so iso()) cannot go past it
MIN_EPOCH = -62135596800.0  # 0001-01-01: nor before it


def task_key(provider: str, task_id: str) -> str:
    """The one key that names a task everywhere (store, UI, change feed)."""
    return f"{provider}:{task_id}"


def iso(ts: Any) -> str | None:
    """Epoch seconds -> ISO 8601 UTC (``2026-11-23T17:54:00Z``), None stays None.

    Never raises: a value that is no time (NaN, infinite, out of datetime's years
    1-9999, not a number, as a damaged store may hold) gives None."""
    if ts is None or isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return None
    try:
        ts = float(ts)
        if not MIN_EPOCH <= ts < MAX_EPOCH:  # NaN fails both
            return None
        dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    if dt.microsecond:
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def epoch(value: Any) -> float | None:
    """Best effort: a provider timestamp (seconds, milliseconds or ISO) -> epoch seconds.

    Only times after 1970 and before the year 10000 (UTC) are kept: anything else
    (NaN, huge numbers, ``9999-12-31T23:59:59-14:00``, ``0001-01-01T00:00:00+14:00``)
    is None, so every kept value can be shown by ``iso``."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError:  # an int too large for a float
            return None
        if not math.isfinite(v) or v <= 0:
            return None
        if v > 1e14:  # microseconds
            v /= 1e6
        elif v > 1e11:  # milliseconds (year > 5138 in seconds)
            v /= 1e3
        return v if v < MAX_EPOCH else None
    if isinstance(value, str):
        s = value.strip()
        if len(s) > 64:  # no timestamp is this long
            return None
        try:
            return epoch(float(s))
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            v = dt.timestamp()
        except (ValueError, OverflowError, OSError):
            return None
        return v if 0 < v < MAX_EPOCH else None
    return None


@dataclass(slots=True)
class Task:
    """One tracked task, normalised.  Times are epoch seconds (UTC) in memory.

    ``raw`` (the last answer as parsed JSON), ``eta`` (seconds the provider
    expects the whole task to take) and ``rev`` (store revision) are internal:
    they are not part of the JSON contract.
    """

    provider: str
    task_id: str
    kind: str | None = None
    label: str | None = None
    state: str = UNKNOWN
    provider_status: str | None = None
    progress: float | None = None
    results: list[str] = field(default_factory=list)
    error: str | None = None
    model: str | None = None
    credits: float | None = None
    created_at: float | None = None
    updated_at: float | None = None
    finished_at: float | None = None
    # poll health, set by the engine (additive JSON fields, see HEALTH_FIELDS)
    last_error: str | None = None  # the last failed poll's message (None once a poll succeeds)
    last_error_at: float | None = None
    failed_polls: int = 0  # failed polls in a row
    stalled: str | None = None  # why the task cannot progress (None: it can)
    poll_path: str | None = None  # the path its status is asked at
    details: dict[str, str] = field(default_factory=dict)  # provider facts for the detail view ("storage path": ...)
    # internal
    raw: Any = None
    eta: float | None = None
    rev: int = 0
    # local paths of downloaded results (``tasktui pull``); after ``rev`` so that
    # positional construction (the store's hot path) is unchanged
    files: list[str] = field(default_factory=list)
    # freshness, set by the engine through the store like the poll health:
    # when a status answer (any answer) last came for this task, and when the
    # engine plans to ask next (None: not scheduled, e.g. terminal or paused)
    polled_at: float | None = None
    next_poll_at: float | None = None

    @property
    def key(self) -> str:
        return task_key(self.provider, self.task_id)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object: exactly TASK_FIELDS, times as ISO 8601 UTC."""
        out: dict[str, Any] = {}
        for name in TASK_FIELDS:
            value = getattr(self, name)
            if name in TIME_FIELDS:
                value = iso(value)
            elif name == "results":
                value = list(value)
            out[name] = value
        out["last_error"] = self.last_error
        out["last_error_at"] = iso(self.last_error_at)
        out["failed_polls"] = self.failed_polls
        out["stalled"] = self.stalled is not None
        out["stalled_reason"] = self.stalled
        out["poll_path"] = self.poll_path
        out["details"] = dict(self.details)
        out["files"] = list(self.files)
        out["polled_at"] = iso(self.polled_at)
        out["next_poll_at"] = iso(self.next_poll_at)
        return out

    def copy(self, **changes: Any) -> "Task":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["results"] = list(self.results)
        values["details"] = dict(self.details)
        values["files"] = list(self.files)
        values.update(changes)
        return Task(**values)


def clamp_progress(value: Any) -> float | None:
    """A provider's progress (int, float, "40", "40.5", "", None) -> 0..100 or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip().rstrip("%")
        if not value:
            return None
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float: beyond either end
        return 100.0 if value > 0 else 0.0
    if not math.isfinite(value):
        return None
    return min(100.0, max(0.0, value))


# ---------------------------------------------------------------- errors


class ProviderError(Exception):
    """A provider call that did not yield a task.  ``kind`` names the class.

    ``status`` is the HTTP status (None for network faults), ``message`` the
    provider's own words (cleaned), ``retry_after`` the wait in seconds it
    asked for, if any.  Never carries a secret.
    """

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.provider = provider
        self.code = code

    def __str__(self) -> str:
        head = f"{self.provider}: " if self.provider else ""
        status = f"HTTP {self.status} " if self.status else ""
        return f"{head}{status}{self.kind}: {self.message}"


class AuthError(ProviderError):
    """401/403: the provider refused our credentials. Stop polling it."""

    kind = "auth_failed"


class QuotaExhausted(ProviderError):
    """402 or an out-of-credits answer."""

    kind = "quota_exhausted"


class RateLimited(ProviderError):
    """429: wait ``retry_after`` seconds (None: the provider did not say)."""

    kind = "rate_limited"


class NotFound(ProviderError):
    """404: the task expired or never existed."""

    kind = "not_found"


class Transient(ProviderError):
    """5xx, timeouts, dropped connections, a dead network: try again later."""

    kind = "transient"


class BadResponse(ProviderError):
    """An answer we cannot read: not JSON, HTML, wrong shape."""

    kind = "bad_response"


class ClientError(ProviderError):
    """Another 4xx: our request was wrong (bad id format, too large ...)."""

    kind = "client_error"


ERROR_KINDS: tuple[type[ProviderError], ...] = (
    AuthError,
    QuotaExhausted,
    RateLimited,
    NotFound,
    Transient,
    BadResponse,
    ClientError,
)


@dataclass(slots=True)
class Balance:
    """What a balance endpoint says.  ``remaining`` in the provider's credits."""

    provider: str
    remaining: float | None = None
    used: float | None = None
    unit: str = "credits"
    raw: Any = None
    note: str | None = None  # what the number means when it is not the whole story ("key: 12 of user: 40")


@dataclass(slots=True)
class Event:
    """One line of the error/event log."""

    time: float
    provider: str
    message: str
    task_id: str | None = None
    status: int | None = None  # HTTP status, None for network faults
    kind: str = "error"  # ProviderError.kind, or "info" / "auth_failed" ...
    retry_after: float | None = None

    @classmethod
    def from_error(cls, exc: ProviderError, task_id: str | None = None,
                   when: float | None = None) -> "Event":
        import time as _time

        return cls(
            time=when if when is not None else _time.time(),
            provider=exc.provider or "",
            message=exc.message,
            task_id=task_id,
            status=exc.status,
            kind=exc.kind,
            retry_after=exc.retry_after,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": iso(self.time),
            "provider": self.provider,
            "task_id": self.task_id,
            "status": self.status,
            "kind": self.kind,
            "message": self.message,
            "retry_after": self.retry_after,
        }
