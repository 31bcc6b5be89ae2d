"""A simulator of the five provider APIs, faithful to the seed documents.

One HTTP server answers for all five providers (their paths do not collide),
with scripted task lifecycles and faults, on a clock tests can move::

    from tui.sim import SimServer, generate
    with SimServer(generate(seed=7, n_tasks=20)) as sim:
        sim.base_url, sim.key("evolink"), sim.advance(30), sim.requests, sim.violations

Paths served (appended to the base URL, as each provider documents them):
comfy ``GET /proxy/freepik/v1/ai/{kind}/{id}`` and ``GET /customers/balance``;
upscayl ``POST /get-task-status`` and ``POST /get-upscayl-history``; qolaba
``POST /getImage``; freepik ``GET /v1/ai/{kind}`` (list) and
``GET /v1/ai/{kind}/{id}``; evolink ``GET /v1/tasks/{id}`` and ``GET /v1/credits``.
Control, without auth: ``GET /_sim/requests``, ``GET /_sim/violations``,
``POST /_sim/reset`` ``{"time"?}``, ``GET|POST /_sim/clock``
``{"advance"|"set"|"speed"}``, ``POST /_sim/tasks`` ``{"tasks", "faults",
"providers", "relative", "strict"}``, ``GET /_sim/scenario``.

Strict mode (``Scenario.strict``, ``build_scenario(strict=True)``,
``TASKTUI_SIM_STRICT=1 tasktui simulate``) serves only each seed document's
endpoint: Comfy's per-task GET, Upscayl's get-task-status, Qolaba's getImage,
Freepik's HyperFlux list and per-task GETs, EvoLink's task detail (which then
refuses ids without ``task-unified-`` with 400 ``invalid_task_id``); balance,
credits, history and other lists answer 404 (records say ``missing_route``).

Published variants beyond the seeds: a variant string ``base+flavor...``
per provider or per task (``scenario.FLAVORS``): Comfy ``task_status`` and
``lower`` (ComfyUI's words), Upscayl ``path_only`` and ``uncharged``, Qolaba
``backend`` (qolaba_modal_docs' APITaskResponse).  A task's ``kind`` is the
path it was created on; it is served at ``path_kind`` (skin-enhancer/<mode>
-> skin-enhancer, or ``poll_kind``).  Fault ``infra_error`` is a 500 from a
broken backend (Qolaba: FAILED, task_id null, a Redis error) after which the
task answers normally.  ``generate(real=True)`` mixes all of these in.

The Comfy proxy's other vendors (Kling, Runway, Luma, MiniMax, Seedance, Wan, Sora,
Tripo, PixVerse, Vidu, Stability, Veo) answer at their own poll paths behind
``/proxy/<vendor>/...`` with the Comfy key, and a made-up ``acme`` at
``GET /acme/v2/jobs/{id}`` (its own key) for declared providers: ``vendors``
(bodies written from the vendors' published answers, never from the catalogue).
Their tasks are ``SimTask(provider="kling", ...)`` like any other.

Push: ``Pusher(sim, freepik_url=..., freepik_secret=..., evolink_url=...)`` sends
Freepik webhooks (Standard Webhooks signatures) and EvoLink callbacks when tasks
change status, with options to sign wrong, go stale, duplicate, reorder, lose a
share, and retries in sim time (``push``; ``SimServer.pusher(...)``).

Modules: ``clock`` (SimClock), ``scenario`` (the data model, load/dump, small
builders), ``generate`` (deterministic scenarios), ``bodies`` (each provider's
answer shapes), ``state`` (the Simulator: lifecycles, faults, budgets, records),
``vendors`` (the other vendors' shapes), ``push`` (webhooks and callbacks sent),
``app`` (the Starlette app), ``serve`` (SimServer, ``serve()``, ``tasktui simulate``).
"""

from __future__ import annotations

from .clock import SimClock
from .generate import generate, real_variants, small_scenario
from .scenario import Fault, ProviderSpec, Scenario, SimTask, build_scenario, sim_task
from .state import Record, Simulator, Violation

__all__ = [
    "Fault",
    "ProviderSpec",
    "PushOptions",
    "Pusher",
    "Record",
    "Scenario",
    "SimClock",
    "SimServer",
    "SimTask",
    "Simulator",
    "Violation",
    "build_scenario",
    "generate",
    "make_app",
    "real_variants",
    "sim_task",
    "small_scenario",
]


def __getattr__(name: str):  # the HTTP parts import starlette/uvicorn: load on use
    import importlib

    if name == "SimServer":
        return importlib.import_module(f"{__name__}.serve").SimServer
    if name == "make_app":
        return importlib.import_module(f"{__name__}.app").make_app
    if name in ("Pusher", "PushOptions"):
        return getattr(importlib.import_module(f"{__name__}.push"), name)
    raise AttributeError(name)
