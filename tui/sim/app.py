"""The Starlette app: the five providers' endpoints on one server, plus the
``/_sim/*`` control endpoints (no auth).

Every provider request goes through ``_Sim.serve``: auth (401 in the
provider's shape), then the first matching scripted fault, then the budget
(429 when spent), then the lifecycle answer.  Each is recorded.

In strict mode (``Scenario.strict``) only each seed document's endpoint is
served: Comfy's per-task GET, Upscayl's get-task-status, Qolaba's getImage,
Freepik's HyperFlux list and per-task GETs, EvoLink's task detail.  Balance,
credits, history and other lists answer 404 as a server without the route.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import re
import time
from typing import Any, Callable

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import bodies, vendors
from .scenario import Fault, ProviderSpec, SimTask
from .state import Record, Simulator, lifecycle

Answer = tuple[int, Any, dict[str, str]]  # status, body (JSON-able or bytes), headers

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# Freepik kinds documented with list + one-task GETs (providers.md §4): used to
# tell ``/v1/ai/{kind}`` (list) from ``/v1/ai/{kind}/{id}`` when the id is unknown.
# The one list the seed documents (freepik-hyperflux-list-tasks.md); strict mode serves no other.
SEED_LISTS = frozenset({"text-to-image/hyperflux"})
FREEPIK_KINDS = frozenset({
    "image-relight", "image-style-transfer", "image-upscaler", "image-upscaler-precision",
    "image-upscaler-precision-v2", "mystic", "skin-enhancer", "text-to-image/hyperflux",
    "text-to-image/flux-dev", "text-to-image/flux-pro-v1-1", "text-to-image/imagen3",
    "text-to-image/seedream-v4-5", "image-expand/flux-pro",
})


class SimulatedDrop(Exception):
    """Raised after the response has started: uvicorn then closes the socket."""


class _DropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedDrop)


def quiet_uvicorn() -> None:
    """Keep uvicorn from printing our deliberate drops (they would scribble over a TUI)."""
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropFilter) for f in log.filters):
        log.addFilter(_DropFilter())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        if not lg.handlers:
            lg.addHandler(logging.NullHandler())


class DropResponse(Response):
    """Sends the status line, headers and half the body, then drops the connection."""

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: max(1, len(self.body) // 2)],
                    "more_body": True})
        raise SimulatedDrop("simulated dropped connection")


def _presented_key(provider: str, request: Request) -> str | None:
    h = request.headers
    if provider == "upscayl":
        return h.get("x-api-key")
    if provider == "freepik":
        return h.get("x-freepik-api-key") or h.get("x-magnific-api-key")
    auth = h.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if provider == "comfy" or provider in vendors.PROXY_VENDORS:  # Comfy keys also come as X-API-KEY (providers.md §1)
        return h.get("x-api-key")
    return None


def _unauthorized(provider: str, presented: str | None, status: int = 401) -> Answer:
    if provider in vendors.VENDORS:
        code, body = vendors.unauthorized(provider)
        return status, body, {}
    missing = not presented
    message = {
        "freepik": "Missing API key" if missing else "Invalid API key",
        "evolink": "Invalid or expired token",
        "upscayl": "Missing API key" if missing else "Invalid API key",
        "comfy": "Unauthorized: invalid or missing token",
        "qolaba": "Not authenticated" if missing else "Invalid token",
    }[provider]
    if status == 403:
        message = "Access denied"
    return status, bodies.error_body(provider, status, message), {}


def _wait_text(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        n = int(seconds // 3600)
        return f"{n} hour" + ("s" if n > 1 else "")
    return f"{int(math.ceil(seconds))} seconds"


def fault_answer(provider: str, fault: Fault) -> tuple[Answer, float | None]:
    """The answer a fault gives, and the wait (real seconds) it announces, if any."""
    kind = fault.kind
    if kind == "rate_limit":
        wait = fault.retry_after if fault.retry_after is not None else 30.0
        header = str(int(math.ceil(wait)))
        if fault.retry_after_date:  # whole seconds: round the wait up so the date is not early
            wait = float(math.ceil(wait)) + 1.0
            header = email.utils.formatdate(math.ceil(time.time()) + wait, usegmt=True)
        return (429, bodies.error_body(provider, 429, "Rate limit exceeded" if provider == "evolink" else None),
                {"Retry-After": header}), wait
    if kind == "rate_limit_text":
        wait = fault.retry_after if fault.retry_after is not None else (3600.0 if provider == "upscayl" else 60.0)
        if provider == "evolink":
            body = bodies.error_body(provider, 429, "Rate limit exceeded", fallback=f"retry after {_wait_text(wait)}")
        else:
            body = bodies.error_body(provider, 429, f"Too many requests. Try again in {_wait_text(wait)}")
        return (429, body, {}), wait
    if kind == "rate_limit_bare":
        return (429, bodies.error_body(provider, 429, "Too many requests"), {}), None
    if kind == "quota":
        message = "Not enough credits to process request" if provider == "upscayl" else (
            "Insufficient quota" if provider == "evolink" else "Payment Required: insufficient balance")
        fallback = "https://evolink.ai/dashboard/billing" if provider == "evolink" else None
        return (402, bodies.error_body(provider, 402, message, fallback), {}), None
    if kind == "auth":
        return _unauthorized(provider, "revoked", fault.status or 401), None
    if kind == "not_found":
        return (404, bodies.error_body(provider, 404), {}), None
    if kind == "server_error":
        status = fault.status or 500
        fallback = {500: "try again later", 502: "try again later", 503: "retry after 30 seconds"}.get(status)
        message = "Error getting data" if provider == "upscayl" and status == 500 else None
        return (status, bodies.error_body(provider, status, message,
                                          fallback if provider == "evolink" else None), {}), None
    if kind == "html_502":
        return (502, bodies.HTML_502, {"content-type": "text/html"}), None
    if kind == "malformed":
        return (200, b'{"data": {"status": "COMPL', {"content-type": "application/json"}), None
    if kind == "invalid_utf8":
        return (200, b'{"data": {"status": "\xff\xfe\xc3("}}', {"content-type": "application/json"}), None
    if kind == "empty":
        return (200, b"", {"content-type": "application/json"}), None
    if kind == "wrong_shape":
        return (200, [{"unexpected": True}], {}), None
    if kind == "infra_error":
        if provider == "qolaba":
            return (500, bodies.qolaba_infra_error(), {}), None
        return (500, bodies.error_body(provider, 500), {}), None
    raise ValueError(f"fault {kind} has no fixed answer")


def _budget_answer(provider: str, wait: float) -> Answer:
    seconds = int(math.ceil(wait))
    if provider == "upscayl":
        body = bodies.error_body(provider, 429, f"Too many requests. Try again in {_wait_text(seconds)}")
    elif provider == "evolink":
        body = bodies.error_body(provider, 429, "Rate limit exceeded", fallback=f"retry after {seconds} seconds")
    else:
        body = bodies.error_body(provider, 429, "Too many requests")
    return 429, body, {"Retry-After": str(seconds)}


async def _sleep_unless_gone(receive, delay: float) -> None:
    """Sleep ``delay`` real seconds, or less if the client hangs up."""
    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
    try:
        await asyncio.wait_for(gone(), delay)
    except asyncio.TimeoutError:
        pass


def _respond(status: int, body: Any, headers: dict[str, str], drop: bool = False) -> Response:
    if isinstance(body, bytes):
        media = headers.pop("content-type", "application/json")
        content = body
    else:
        media = "application/json"
        content = json.dumps(body).encode()
    cls = DropResponse if drop else Response
    return cls(content, status_code=status, headers=headers, media_type=media)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class _Sim:
    """Route handlers bound to one Simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def serve(self, request: Request, provider: str, endpoint: str, task_id: str | None,
                    answer: Callable[[float], Answer]) -> Response:
        sim = self.sim
        t = sim.now()
        window = sim.window_end(provider, t)
        presented = _presented_key(provider, request)
        auth_ok = sim.auth_ok(provider, presented)
        fault: Fault | None = None
        over = False
        announced: float | None = None
        if not auth_ok:
            status, body, headers = _unauthorized(provider, presented)
        else:
            fault = sim.take_fault(provider, endpoint, task_id, t)
            if fault is None or fault.kind in ("slow", "drop"):
                wait = sim.take_budget(provider, t) if fault is None else None
                if wait is not None:
                    over, announced = True, wait
                    status, body, headers = _budget_answer(provider, wait)
                else:
                    if fault is not None and fault.kind == "slow":
                        await _sleep_unless_gone(request.receive, fault.delay)
                    status, body, headers = answer(t)
            else:
                (status, body, headers), announced = fault_answer(provider, fault)
        if status == 429 and announced is not None:
            sim.announce(provider, t, announced)
        sim.record(Record(time=t, wall=sim.wall(t), provider=provider, method=request.method,
                          path=request.url.path, endpoint=endpoint, task_id=task_id, status=status,
                          auth_ok=auth_ok, fault=fault.kind if fault else None, over_budget=over),
                   window_end=window)
        return _respond(status, body, dict(headers), drop=fault is not None and fault.kind == "drop")

    def _not_found(self, provider: str, message: str | None = None) -> Answer:
        return 404, bodies.error_body(provider, 404, message), {}

    def missing(self, request: Request, provider: str, endpoint: str) -> Response:
        """Strict mode: a route no seed document gives, answered as a server
        without it would (404, no auth check); recorded for the provider."""
        t = self.sim.now()
        self.sim.record(Record(time=t, wall=self.sim.wall(t), provider=provider, method=request.method,
                               path=request.url.path, endpoint=endpoint, task_id=None, status=404,
                               auth_ok=False, missing_route=True))
        return JSONResponse({"message": "Not Found"}, status_code=404)

    # ------------------------------------------------------------ comfy

    async def comfy_status(self, request: Request) -> Response:
        kind, _, task_id = request.path_params["path"].rstrip("/").rpartition("/")

        def answer(t: float) -> Answer:
            task = self.sim.task("comfy", task_id)
            snap = lifecycle(task, t) if task and task.path_kind == kind else None
            if snap is None:
                return self._not_found("comfy", "Task not found")
            return 200, bodies.comfy_task(task, snap[0], *self.sim.variant_parts("comfy", task)), {}

        return await self.serve(request, "comfy", "status", task_id, answer)

    async def comfy_balance(self, request: Request) -> Response:
        if self.sim.strict:
            return self.missing(request, "comfy", "balance")

        def answer(t: float) -> Answer:
            left, used = self.sim.balance("comfy", t)
            return 200, bodies.comfy_balance(left, used), {}

        return await self.serve(request, "comfy", "balance", None, answer)

    # ------------------------------------------------------------ upscayl

    async def upscayl_status(self, request: Request) -> Response:
        data = await _json_body(request)
        task_id = None
        if isinstance(data, dict):  # both documented forms: {"data": {"taskId"}} and {"taskId"}
            inner = data.get("data")
            task_id = inner.get("taskId") if isinstance(inner, dict) else data.get("taskId")
        task_id = task_id if isinstance(task_id, str) and task_id else None

        def answer(t: float) -> Answer:
            if task_id is None:
                return 400, bodies.error_body("upscayl", 400, "Bad Request: Missing taskId"), {}
            task = self.sim.task("upscayl", task_id)
            snap = lifecycle(task, t) if task else None
            if snap is None:
                return self._not_found("upscayl", "Task not found")
            state, progress = snap
            return 200, bodies.upscayl_task(task, state, progress, self.sim.wall,
                                            *self.sim.variant_parts("upscayl", task)), {}

        return await self.serve(request, "upscayl", "status", task_id, answer)

    async def upscayl_history(self, request: Request) -> Response:
        if self.sim.strict:
            return self.missing(request, "upscayl", "list")

        def answer(t: float) -> Answer:
            items = []
            for task in self.sim.tasks("upscayl"):
                snap = lifecycle(task, t)
                if snap is not None:  # a ProcessingTask row: no task id (openapi.yaml)
                    body = bodies.upscayl_task(task, snap[0], snap[1], self.sim.wall,
                                               *self.sim.variant_parts("upscayl", task))
                    items.append(body["data"])
            return 200, bodies.upscayl_history(items), {}

        return await self.serve(request, "upscayl", "list", None, answer)

    # ------------------------------------------------------------ qolaba

    async def qolaba_status(self, request: Request) -> Response:
        data = await _json_body(request)
        task_id = data.get("id") if isinstance(data, dict) else None
        ref = data.get("refID") if isinstance(data, dict) else None
        task_id = task_id if isinstance(task_id, str) and task_id else None

        def answer(t: float) -> Answer:
            if task_id is None:
                return 422, bodies.error_body("qolaba", 422, "field required: id"), {}
            task = self.sim.task("qolaba", task_id)
            snap = lifecycle(task, t) if task and (task.ref_id is None or task.ref_id == ref) else None
            if snap is None:  # Celery: an unknown or forgotten id is PENDING
                return 200, bodies.qolaba_unknown(task_id, self.sim.variant_parts("qolaba", task)[1]), {}
            base, flavors = self.sim.variant_parts("qolaba", task)
            code, body = bodies.qolaba_task(task, snap[0], base, self.sim.clock.scale, flavors)
            return code, body, {}

        return await self.serve(request, "qolaba", "status", task_id, answer)

    # ------------------------------------------------------------ freepik

    def _freepik_split(self, path: str) -> tuple[str, str | None]:
        """(kind, task id or None for the list).  Kinds contain slashes, so
        ``a/b/c`` is a one-task GET when ``c`` is a known id, or when ``a/b`` is
        a known kind (and ``a/b/c`` is not) or ``c`` looks like a uuid."""
        path = path.strip("/")
        head, _, last = path.rpartition("/")
        kinds = FREEPIK_KINDS | self.sim.kinds("freepik")
        if head and (self.sim.task("freepik", last) is not None
                     or (head in kinds and path not in kinds) or _UUID.match(last)):
            return head, last
        return path, None

    async def freepik_get(self, request: Request) -> Response:
        kind, task_id = self._freepik_split(request.path_params["path"])
        if task_id is None:
            if self.sim.strict and kind not in SEED_LISTS:
                return self.missing(request, "freepik", "list")

            def answer_list(t: float) -> Answer:
                items = []
                for task in self.sim.tasks("freepik"):
                    snap = lifecycle(task, t) if task.path_kind == kind else None
                    if snap is not None:
                        items.append((task, snap[0]))
                return 200, bodies.freepik_list(items), {}

            return await self.serve(request, "freepik", "list", None, answer_list)

        def answer(t: float) -> Answer:
            task = self.sim.task("freepik", task_id)
            snap = lifecycle(task, t) if task and task.path_kind == kind else None
            if snap is None:
                return self._not_found("freepik", "Not found")
            return 200, bodies.freepik_task(task, snap[0]), {}

        return await self.serve(request, "freepik", "status", task_id, answer)

    # ------------------------------------------------------------ evolink

    async def evolink_status(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]

        def answer(t: float) -> Answer:
            if self.sim.check_ids("evolink") and not task_id.startswith(bodies.EVOLINK_ID_PREFIX):
                return 400, bodies.evolink_invalid_id(), {}
            task = self.sim.task("evolink", task_id)
            snap = lifecycle(task, t) if task else None
            if snap is None:
                return self._not_found("evolink")
            return 200, bodies.evolink_task(task, snap[0], snap[1], self.sim.wall, self.sim.clock.scale), {}

        return await self.serve(request, "evolink", "status", task_id, answer)

    async def evolink_credits(self, request: Request) -> Response:
        if self.sim.strict:
            return self.missing(request, "evolink", "balance")

        def answer(t: float) -> Answer:
            left, used = self.sim.balance("evolink", t)
            return 200, bodies.evolink_credits(left, used), {}

        return await self.serve(request, "evolink", "balance", None, answer)

    # ------------------------------------------------------------ the Comfy proxy's other vendors, acme

    def _vendor_answer(self, vendor: str, task_id: str | None, kind: str | None = None) -> Callable[[float], Answer]:
        def answer(t: float) -> Answer:
            if not task_id:
                return 400, {"error": "bad_request", "message": "task id required"}, {}
            task = self.sim.task(vendor, task_id)
            snap = lifecycle(task, t) if task and (kind is None or task.path_kind == kind) else None
            if snap is None:
                expired = task is not None and task.expires is not None and t >= task.expires
                status, body = vendors.not_found(vendor, task_id, expired)
                return status, body, {}
            status, body = vendors.answer(vendor, task, snap[0], snap[1], self.sim.wall)
            return status, body, {}
        return answer

    def vendor_route(self, vendor: str) -> Callable[[Request], Any]:
        """The handler of ``vendor``'s poll path (tui/sim/vendors.py ROUTES)."""

        async def handler(request: Request) -> Response:
            params = request.path_params
            kind: str | None = None
            if vendor == "kling":  # v1/{videos|images}/{endpoint}/{id}
                kind, _, task_id = params["path"].rstrip("/").rpartition("/")
            elif vendor == "minimax":
                task_id = request.query_params.get("task_id")
            elif vendor == "veo":  # the operation name comes in the body
                data = await _json_body(request)
                name = data.get("operationName") if isinstance(data, dict) else None
                task_id = name if isinstance(name, str) else None
                kind = params["kind"]
            else:
                task_id = params["id"]
            return await self.serve(request, vendor, "status", task_id, self._vendor_answer(vendor, task_id, kind))

        return handler

    # ------------------------------------------------------------ elsewhere

    async def unknown(self, request: Request) -> Response:
        t = self.sim.now()
        self.sim.record(Record(time=t, wall=self.sim.wall(t), provider=None, method=request.method,
                               path=request.url.path, endpoint="other", task_id=None, status=404,
                               auth_ok=False))
        return JSONResponse({"message": "Not Found"}, status_code=404)

    # ------------------------------------------------------------ /_sim control

    async def ctl_requests(self, request: Request) -> Response:
        return JSONResponse({"requests": [r.to_dict() for r in self.sim.requests]})

    async def ctl_violations(self, request: Request) -> Response:
        return JSONResponse({"violations": [v.to_dict() for v in self.sim.violations]})

    async def ctl_reset(self, request: Request) -> Response:
        data = await _json_body(request)
        self.sim.reset()
        if isinstance(data, dict) and data.get("time") is not None:
            self.sim.clock.set(float(data["time"]))
        return JSONResponse({"ok": True, "time": self.sim.now()})

    async def ctl_clock(self, request: Request) -> Response:
        if request.method == "POST":
            data = await _json_body(request)
            if not isinstance(data, dict):
                return JSONResponse({"error": 'body must be {"advance": s} or {"set": t} or {"speed": x}'},
                                    status_code=400)
            try:
                if "speed" in data:
                    self.sim.clock.speed = float(data["speed"])
                if "set" in data:
                    self.sim.clock.set(float(data["set"]))
                if "advance" in data:
                    self.sim.clock.advance(float(data["advance"]))
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"time": self.sim.now(), "speed": self.sim.clock.speed, "epoch": self.sim.epoch})

    async def ctl_tasks(self, request: Request) -> Response:
        data = await _json_body(request)
        if not isinstance(data, dict):
            return JSONResponse({"error": 'body must be {"tasks": [...], "faults": [...]}'}, status_code=400)
        try:
            shift = self.sim.now() if data.get("relative") else 0.0
            tasks = [SimTask.model_validate(_shifted(t, shift, ("created", "start", "end", "expires")))
                     for t in data.get("tasks") or []]
            faults = [Fault.model_validate(_shifted(f, shift, ("start", "end")))
                      for f in data.get("faults") or []]
            providers = {name: ProviderSpec.model_validate(spec)
                         for name, spec in (data.get("providers") or {}).items()}
            added = self.sim.add(tasks, faults, providers)
            if data.get("strict") is not None:
                self.sim.scenario.strict = bool(data["strict"])
        except (ValidationError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"added": added, "faults": len(faults), "tasks": len(self.sim.scenario.tasks)})

    async def ctl_scenario(self, request: Request) -> Response:
        return Response(self.sim.scenario.to_json(), media_type="application/json")


def _shifted(item: dict[str, Any], shift: float, names: tuple[str, ...]) -> dict[str, Any]:
    if not shift:
        return item
    return {k: (v + shift if k in names and isinstance(v, (int, float)) else v) for k, v in item.items()}


def make_app(sim: Simulator, *, files: bool = False) -> Starlette:
    """The ASGI app serving ``sim``; ``files``: its result links can be fetched
    (tui/sim/files.py: ``/_sim/files/...``, links rewritten to this server)."""
    h = _Sim(sim)
    any_method = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        Route("/proxy/freepik/v1/ai/{path:path}", h.comfy_status, methods=["GET"]),
        Route("/customers/balance", h.comfy_balance, methods=["GET"]),
        Route("/get-task-status", h.upscayl_status, methods=["POST"]),
        Route("/get-upscayl-history", h.upscayl_history, methods=["POST"]),
        Route("/getImage", h.qolaba_status, methods=["POST"]),
        Route("/v1/tasks/{task_id}", h.evolink_status, methods=["GET"]),
        Route("/v1/credits", h.evolink_credits, methods=["GET"]),
        Route("/v1/ai/{path:path}", h.freepik_get, methods=["GET"]),
        *[Route(path, h.vendor_route(vendor), methods=[method])
          for vendor, (method, path) in vendors.ROUTES.items()],
        Route("/_sim/requests", h.ctl_requests, methods=["GET"]),
        Route("/_sim/violations", h.ctl_violations, methods=["GET"]),
        Route("/_sim/reset", h.ctl_reset, methods=["POST"]),
        Route("/_sim/clock", h.ctl_clock, methods=["GET", "POST"]),
        Route("/_sim/tasks", h.ctl_tasks, methods=["POST"]),
        Route("/_sim/scenario", h.ctl_scenario, methods=["GET"]),
    ]
    if files:
        from starlette.middleware import Middleware

        from .files import PREFIX, ResultLinks, file_route

        routes.append(Route(PREFIX + "{path:path}", file_route(sim), methods=["GET"]))
        routes.append(Route("/{path:path}", h.unknown, methods=any_method))
        return Starlette(routes=routes, middleware=[Middleware(ResultLinks)])
    routes.append(Route("/{path:path}", h.unknown, methods=any_method))
    return Starlette(routes=routes)
