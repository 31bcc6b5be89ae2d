"""The polling engine (a package; arrows run one way):

- ``engine``   the facade: ``Engine`` drives one worker per enabled provider;
- ``worker``   one provider's rounds, budget, state, and writes to the store;
- ``schedule`` the pure policy of when a task is polled next (``plan``);
- ``health``   ``ProviderHealth``, its stored form, and ``read_health`` for
               everyone who wants a provider's state without an engine.

engine -> worker -> schedule, health; health -> schedule; never back.

``Engine``, ``ProviderStatus``, ``Worker`` and the worker's constants load on
first use: reading provider health (``tasktui quota``) imports neither httpx
nor the providers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .health import (
    AUTH_FAILED,
    BACKING_OFF,
    DEGRADED,
    DISABLED,
    OFFLINE,
    OK,
    PROVIDER_STATES,
    QUOTA_EXHAUSTED,
    RATE_LIMITED,
    ProviderHealth,
    credits_by_provider,
    quota,
    read_health,
)
from .schedule import (
    MAX_KINDS,
    PRIOR_MIN,
    PRIOR_SIZE,
    QUIET_CAP,
    Durations,
    Plan,
    Schedule,
    backoff,
    observe,
    plan,
    predict_end,
    priority,
)

if TYPE_CHECKING:
    from .engine import Engine, ProviderStatus
    from .worker import OPTIONAL_RETRY, Worker

_LAZY = {"Engine": "engine", "ProviderStatus": "engine", "Worker": "worker", "OPTIONAL_RETRY": "worker"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "AUTH_FAILED", "BACKING_OFF", "DEGRADED", "DISABLED", "MAX_KINDS", "OFFLINE", "OK", "OPTIONAL_RETRY",
    "PRIOR_MIN", "PRIOR_SIZE", "PROVIDER_STATES", "QUIET_CAP", "QUOTA_EXHAUSTED", "RATE_LIMITED",
    "Durations", "Engine", "Plan", "ProviderHealth", "ProviderStatus", "Schedule", "Worker", "backoff",
    "credits_by_provider", "observe", "plan", "predict_end", "priority", "quota", "read_health",
]
