"""The scenario: providers (keys, answer variants, budgets, balances), tasks
with timelines, and faults scheduled in sim time.  Loads from JSON or TOML.

All times are sim seconds relative to the scenario's start (t=0; negative
means "before the simulator started").  A task exists from ``created``, is
queued until ``start``, runs until ``end``, then stays in ``end_state`` until
``expires`` (after which it answers 404, like an expired task).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import vendors as _vendors

PROVIDERS: tuple[str, ...] = ("comfy", "upscayl", "qolaba", "freepik", "evolink")
# The Comfy proxy's other vendors (and the made-up acme), served by tui/sim/vendors.py.
VENDORS: tuple[str, ...] = _vendors.VENDORS
ALL_PROVIDERS: tuple[str, ...] = PROVIDERS + VENDORS

DEFAULT_KINDS: dict[str, str | None] = {
    "comfy": "image-relight",
    "upscayl": None,
    "qolaba": None,
    "freepik": "text-to-image/hyperflux",
    "evolink": None,
    **_vendors.DEFAULT_KINDS,
}

# Per provider: the documented answer variants; the first is the default.
VARIANTS: dict[str, tuple[str, ...]] = {
    "comfy": ("wrapped", "bare"),  # {"data": FreepikTaskData} or a bare FreepikTaskData
    "upscayl": ("docs", "openapi"),  # ENHANCING/PROCESSED... or pending/completed...
    "qolaba": ("500", "200"),  # a failure answers HTTP 500 + FAILURE, or 200 + FAILED
    "freepik": ("default",),
    "evolink": ("default",),
    **{v: ("default",) for v in VENDORS},
}

# Per provider: published shapes that combine with a base variant, written
# "base+flavor+flavor" (e.g. "bare+task_status+lower", or just "task_status").
FLAVORS: dict[str, tuple[str, ...]] = {
    # task_status: the status under ``task_status`` (ComfyUI comfy_api_nodes/apis/magnific.py
    #   TaskResponse reads AliasChoices("status", "task_status"));
    # lower: lower-case words ComfyUI's poller knows (comfy_api_nodes/util/client.py
    #   COMPLETED/FAILED/QUEUED_STATUSES): created, in_progress, succeeded, failed, cancelled.
    "comfy": ("task_status", "lower"),
    # path_only: FileData as the seed and docs.upscayl.org give it, ``path`` and no link;
    # uncharged: a finished task with ``creditsDeducted: false`` (deductedCredits not yet charged).
    "upscayl": ("path_only", "uncharged"),
    # backend: APITaskResponse as qolaba_modal_docs stores it (src/data_models/ModalAppSchemas.py,
    #   src/FastAPIServer/celery/Worker.py): no top-level app_id, on SUCCESS task_id null and the
    #   app id inside ``input``.
    "qolaba": ("backend",),
    "freepik": (),
    "evolink": (),
    **{v: () for v in VENDORS},
}


def split_variant(provider: str, text: str | None) -> tuple[str | None, frozenset[str]]:
    """``"bare+task_status"`` -> (``"bare"``, {``"task_status"``}); the base is None
    when only flavors are given.  ValueError names what is not known."""
    base: str | None = None
    flavors: set[str] = set()
    for part in (text or "").split("+"):
        part = part.strip()
        if not part:
            continue
        if part in VARIANTS[provider]:
            if base is not None and base != part:
                raise ValueError(f"{provider}: two base variants {base!r} and {part!r}")
            base = part
        elif part in FLAVORS[provider]:
            flavors.add(part)
        else:
            known = ", ".join(VARIANTS[provider] + FLAVORS[provider])
            raise ValueError(f"{provider}: variant must be made of {known} (joined with +), not {part!r}")
    return base, frozenset(flavors)


# Create path -> poll path, where a family polls on a shorter path than it
# creates on.  ComfyUI comfy_api_nodes/nodes_magnific.py creates skin-enhancer
# tasks on skin-enhancer/{creative,faithful,flexible} and polls skin-enhancer/{id};
# Freepik documents the same (providers.md §4, docs.magnific.com index).
POLL_KINDS: dict[str, str] = {
    "skin-enhancer/creative": "skin-enhancer",
    "skin-enhancer/faithful": "skin-enhancer",
    "skin-enhancer/flexible": "skin-enhancer",
}

END_STATES = ("succeeded", "failed", "cancelled")
CURVES = ("linear", "ease", "steps", "stall")

FAULT_KINDS = (
    "rate_limit",  # 429 + Retry-After header
    "rate_limit_text",  # 429, wait only in the body (EvoLink fallback_suggestion, Upscayl "Try again in 1 hour")
    "rate_limit_bare",  # 429 with no hint at all (Freepik's documented body)
    "quota",  # 402
    "auth",  # 401 (or ``status`` 403) whatever the key
    "not_found",  # 404, as for an expired task
    "server_error",  # ``status`` (default 500) with the provider's JSON error body
    "html_502",  # 502 with an HTML page from a proxy
    "malformed",  # 200 with truncated JSON
    "invalid_utf8",  # 200 with bytes that are not UTF-8
    "empty",  # 200 with an empty body
    "wrong_shape",  # 200 with valid JSON of the wrong shape
    "slow",  # answer normally after ``delay`` real seconds
    "drop",  # send the headers and part of the body, then close the socket
    "infra_error",  # 500 from a broken backend (Qolaba: the FAILED body its handle_exceptions makes
    #                 of e.g. a Redis connection refused); the task itself carries on
)
ENDPOINTS = ("any", "status", "list", "balance")

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|m|min|h|hour)\s*$", re.I)


def parse_rate(text: str) -> tuple[float, float]:
    """'100/h' -> (100, 3600): count per period in seconds."""
    m = _RATE.match(text or "")
    if not m:
        raise ValueError(f"rate must look like 10/s, 60/m or 100/h, not {text!r}")
    period = {"s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)[0].lower()]
    return float(m.group(1)), period


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProviderSpec(_Model):
    """How one provider behaves: its key, answer variant, budget, balance."""

    key: str
    variant: str | None = None
    budget: str | None = None  # "100/h": over it the sim answers 429
    balance: float | None = None  # starting balance: comfy in cents, evolink in credits
    # EvoLink: 400 invalid_task_id for ids not starting with "task-unified-"
    # (docs.evolink.ai get-task-detail).  None: on in strict mode only.
    check_ids: bool | None = None

    @field_validator("budget")
    @classmethod
    def _budget(cls, v: str | None) -> str | None:
        if v is not None:
            parse_rate(v)
        return v


class SimTask(_Model):
    provider: str
    task_id: str
    kind: str | None = None  # comfy/freepik create path kind; evolink "image"/"video"/"audio"
    poll_kind: str | None = None  # comfy/freepik: the path it is polled on, when not derived from kind
    model: str | None = None
    created: float = 0.0
    start: float = 0.0
    end: float = 10.0
    end_state: Literal["succeeded", "failed", "cancelled"] = "succeeded"
    curve: Literal["linear", "ease", "steps", "stall"] = "linear"
    peak: float | None = None  # progress reached at ``end`` (default 100, or 60 for a failure)
    results: list[str] = Field(default_factory=list)
    error: str | None = None
    credits: float = 0.0
    expires: float | None = None
    ref_id: str | None = None  # Qolaba refID, required in the request when set
    # EvoLink: the ``estimated_time`` announced (sim seconds from ``created``); None: the true
    # length (end - created).  Real estimates are guesses: set it off to test a schedule on them.
    eta: float | None = Field(default=None, ge=0)
    variant: str | None = None  # overrides the provider's

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        if v not in ALL_PROVIDERS:
            raise ValueError(f"unknown provider {v!r}; known: {', '.join(ALL_PROVIDERS)}")
        return v

    @model_validator(mode="after")
    def _times(self) -> "SimTask":
        if not self.created <= self.start <= self.end:
            raise ValueError(f"task {self.task_id}: need created <= start <= end")
        if self.variant is not None:
            split_variant(self.provider, self.variant)
        return self

    @property
    def path_kind(self) -> str | None:
        """The kind in the path the task is polled on (which may differ from
        the kind it was created with, e.g. skin-enhancer/faithful -> skin-enhancer)."""
        if self.poll_kind:
            return self.poll_kind
        if self.provider == "kling":
            return _vendors.kling_poll_kind(self.kind)
        kind = self.kind or DEFAULT_KINDS[self.provider]
        return POLL_KINDS.get(kind, kind) if kind else kind


class Fault(_Model):
    """A scripted misbehaviour: for requests to ``provider`` (None: any), about
    ``task_id`` (None: any request), on ``endpoint``, in [start, end) sim time,
    at most ``count`` times (None: unlimited).  The first matching fault wins."""

    kind: Literal[
        "rate_limit", "rate_limit_text", "rate_limit_bare", "quota", "auth", "not_found",
        "server_error", "html_502", "malformed", "invalid_utf8", "empty", "wrong_shape", "slow", "drop",
        "infra_error",
    ]
    provider: str | None = None
    task_id: str | None = None
    endpoint: Literal["any", "status", "list", "balance"] = "any"
    start: float = float("-inf")
    end: float | None = None
    count: int | None = None
    status: int | None = None  # server_error (default 500), auth (401 or 403)
    retry_after: float | None = None  # rate_limit*: seconds announced (real seconds)
    retry_after_date: bool = False  # rate_limit: send Retry-After as an HTTP date, not seconds
    delay: float = 10.0  # slow: real seconds before answering

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str | None) -> str | None:
        if v is not None and v not in ALL_PROVIDERS:
            raise ValueError(f"unknown provider {v!r}")
        return v

    def active(self, t: float) -> bool:
        return (self.start <= t and (self.end is None or t < self.end)
                and (self.count is None or self.count > 0))


class Scenario(_Model):
    seed: int | None = None
    epoch: float | None = None  # wall clock (epoch s) of sim t=0; None: when the sim starts
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)
    tasks: list[SimTask] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    # Serve only each seed document's endpoint (and the per-task GET of the
    # documented kinds); every other route answers 404 like a server without it.
    strict: bool = False

    @field_validator("providers")
    @classmethod
    def _providers(cls, v: dict[str, ProviderSpec]) -> dict[str, ProviderSpec]:
        for name, spec in v.items():
            if name not in ALL_PROVIDERS:
                raise ValueError(f"unknown provider {name!r}")
            if spec.variant is not None:
                split_variant(name, spec.variant)
        return v

    @model_validator(mode="after")
    def _unique(self) -> "Scenario":
        seen: set[tuple[str, str]] = set()
        for t in self.tasks:
            if (t.provider, t.task_id) in seen:
                raise ValueError(f"duplicate task {t.provider}:{t.task_id}")
            seen.add((t.provider, t.task_id))
        return self

    # ------------------------------------------------------------ files

    @classmethod
    def load(cls, path: str | Path) -> "Scenario":
        """From a .json or .toml file (TOML: ``[[tasks]]``, ``[[faults]]``, ``[providers.NAME]``)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        return cls.model_validate(data)

    def dump(self, path: str | Path) -> None:
        """Write as JSON (the format ``load`` reads back exactly)."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        for f in data.get("faults", []):  # JSON has no -inf
            if f.get("start") == float("-inf"):
                del f["start"]
        return data

    def key(self, provider: str) -> str:
        return self.providers[provider].key

    def tasks_of(self, provider: str) -> list[SimTask]:
        return [t for t in self.tasks if t.provider == provider]


# ---------------------------------------------------------------- builders (tests)


def default_keys() -> dict[str, ProviderSpec]:
    return {p: ProviderSpec(key=f"sim-key-{p}") for p in PROVIDERS}


def sim_task(provider: str, task_id: str, state: str = "running", at: float = 0.0,
             **fields: Any) -> SimTask:
    """A task that is in ``state`` (queued running succeeded failed cancelled
    expired) at sim time ``at``; other timeline fields can be overridden.

    A running task is 50% through (60 s long), a queued one starts 30 s later,
    a finished one ended 10 s earlier; results/error get plain defaults."""
    t = at
    if state == "queued":
        tl = dict(created=t - 10, start=t + 30, end=t + 90)
    elif state == "running":
        tl = dict(created=t - 40, start=t - 30, end=t + 30)
    elif state in END_STATES or state == "expired":
        tl = dict(created=t - 70, start=t - 60, end=t - 10)
    else:
        raise ValueError(f"state must be queued, running, {', '.join(END_STATES)} or expired")
    if state == "expired":
        tl["expires"] = t - 1
        state = "succeeded"
    end_state = state if state in END_STATES else "succeeded"
    base: dict[str, Any] = dict(provider=provider, task_id=task_id, end_state=end_state, **tl)
    if end_state == "succeeded":
        base["results"] = [f"https://sim.tasktui.invalid/{provider}/{task_id}/0.png"]
        base["credits"] = 2.0
    elif end_state == "failed":
        base["error"] = "simulated failure"
    base.update(fields)
    return SimTask(**base)


def build_scenario(*tasks: SimTask, faults: list[Fault] | tuple = (), keys: dict[str, str] | None = None,
                   strict: bool = False, **provider_options: dict[str, Any]) -> Scenario:
    """A scenario with every provider enabled (keys ``sim-key-<provider>`` unless
    given) and the given tasks and faults.  ``upscayl={"variant": "openapi",
    "budget": "100/h"}`` sets a provider's options."""
    specs = default_keys()
    for name, key in (keys or {}).items():
        specs[name] = specs[name].model_copy(update={"key": key}) if name in specs else ProviderSpec(key=key)
    for name, options in provider_options.items():
        if name not in specs and name not in VENDORS:
            raise ValueError(f"unknown provider {name!r}")
        base = specs[name].model_dump() if name in specs else {"key": f"sim-key-{name}"}
        specs[name] = ProviderSpec(**{**base, **options})
    return Scenario(providers=specs, tasks=list(tasks), faults=list(faults), strict=strict)
