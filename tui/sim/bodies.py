"""Each provider's answer shapes, as the seed documents (and providers.md) give
them.  Pure functions: a task's snapshot in, a JSON-able body out.

``state`` here is the simulator's lifecycle state: queued, running,
succeeded, failed or cancelled.  ``wall(t)`` turns sim time into epoch
seconds and ``scale`` is sim seconds per real second: durations a provider
reports are real seconds, so a client sees a consistent world at any speed.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Callable

from .scenario import SimTask

Wall = Callable[[float], float]
NONE: frozenset[str] = frozenset()

# ---------------------------------------------------------------- status names

COMFY_STATUS = {"queued": "CREATED", "running": "IN_PROGRESS", "succeeded": "COMPLETED",
                "failed": "FAILED", "cancelled": "FAILED"}  # the Comfy enum has no CANCELLED
FREEPIK_STATUS = {**COMFY_STATUS, "cancelled": "CANCELLED"}
UPSCAYL_STATUS = {
    "docs": {"queued": "PROCESSING", "running": "ENHANCING", "succeeded": "PROCESSED",
             "failed": "PROCESSING_FAILED", "cancelled": "PROCESSING_FAILED"},
    "openapi": {"queued": "pending", "running": "processing", "succeeded": "completed",
                "failed": "failed", "cancelled": "failed"},
}
# ComfyUI's generic poller (comfy_api_nodes/util/client.py) lower-cases statuses and
# knows: done = succeeded succeed success completed finished done complete; failed =
# cancelled canceled canceling fail failed error; queued = created queued queueing
# submitted initializing wait in_queue; any other word is "active".
COMFY_LOWER = {"queued": "created", "running": "in_progress", "succeeded": "succeeded",
               "failed": "failed", "cancelled": "cancelled"}
QOLABA_STATUS = {"queued": "PENDING", "running": "STARTED", "succeeded": "SUCCESS",
                 "failed": "FAILURE", "cancelled": "REVOKED"}
# qolaba_modal_docs APITaskResponse.status is Literal["SUCCESS", "FAILED", "PENDING"]; its
# Celery app does not set track_started, so a running task still reads PENDING.
QOLABA_BACKEND = {"queued": "PENDING", "running": "PENDING", "succeeded": "SUCCESS",
                  "failed": "FAILED", "cancelled": "FAILED"}
EVOLINK_STATUS = {"queued": "pending", "running": "processing", "succeeded": "completed",
                  "failed": "failed", "cancelled": "failed"}


def _results(task: SimTask, state: str) -> list[str]:
    return list(task.results) if state == "succeeded" else []


# ---------------------------------------------------------------- comfy


def comfy_task(task: SimTask, state: str, variant: str, flavors: AbstractSet[str] = NONE) -> dict[str, Any]:
    """FreepikTaskResponse ``{"data": FreepikTaskData}``, or bare FreepikTaskData;
    flavors ``task_status`` (the key ComfyUI's TaskResponse also reads) and
    ``lower`` (the poller's lower-case words)."""
    status = (COMFY_LOWER if "lower" in flavors else COMFY_STATUS)[state]
    key = "task_status" if "task_status" in flavors else "status"
    data = {"generated": _results(task, state), key: status, "task_id": task.task_id}
    return data if variant == "bare" else {"data": data}


def comfy_balance(cents_left: float, cents_used: float) -> dict[str, Any]:
    """GET /customers/balance: the ``_micros`` fields hold cents (providers.md §1)."""
    left = int(round(cents_left))
    return {
        "amount_micros": left,
        "effective_balance_micros": left,
        "prepaid_balance_micros": left,
        "cloud_credit_balance_micros": 0,
        "currency": "usd",
    }


# ---------------------------------------------------------------- upscayl


def upscayl_task(task: SimTask, state: str, progress: float, wall: Wall, variant: str,
                 flavors: AbstractSet[str] = NONE) -> dict[str, Any]:
    """The 200 body of POST /get-task-status.  Flavor ``path_only``: files as the
    seed's FileData (``path``, no link); ``uncharged``: ``creditsDeducted: false``."""
    ms = variant == "openapi"  # openapi.yaml: Unix ms; the docs example: seconds

    def stamp(epoch: float) -> int:
        return int(epoch * 1000) if ms else int(epoch)

    done = state == "succeeded"
    base = {
        "fileName": f"{task.task_id}.jpg",
        "fileType": "image/jpeg",
        "fileSize": 123456,
        "originalFileName": "image.jpg",
        "path": f"users/sim/{task.task_id}.jpg",
        "createdAt": stamp(wall(task.created)),
        "expiresAt": stamp(wall(task.created) + 86400),
        "dimensions": {"width": 1024, "height": 1024},
    }
    files = []
    for i, url in enumerate(_results(task, state) or [None]):
        f = dict(base)
        if url is not None and done and "path_only" not in flavors:
            f.update(downloadLink=url, thumbnailLink=url, processedFileName=f"{task.task_id}-{i}.png",
                     finalFileSize=4 * 123456)
        files.append(f)
    data: dict[str, Any] = {
        "status": UPSCAYL_STATUS[variant][state],
        "progress": str(int(progress)),
        "files": files,
        "deductedCredits": int(task.credits) if done else 0,
        "creditsDeducted": done and "uncharged" not in flavors,
        "model": task.model or "upscayl-standard-4x",
        "scale": 4,
        "saveImageAs": "png",
        "compression": 80,
        "batchMode": False,
        "enhanceFace": False,
    }
    if state in ("failed", "cancelled"):
        data["error"] = task.error or ("cancelled" if state == "cancelled" else "processing failed")
    return {"status": "success", "data": data}


def upscayl_history(items: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /get-upscayl-history: rows are openapi.yaml ``ProcessingTask``, which has
    no task id (so a row cannot be matched to a tracked task)."""
    return {"status": "success", "data": items,
            "pagination": {"total": len(items), "hasMore": False, "nextOffset": None}}


# ---------------------------------------------------------------- qolaba


def qolaba_task(task: SimTask, state: str, variant: str, scale: float = 1.0,
                flavors: AbstractSet[str] = NONE) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of POST /getImage.  A failure is HTTP 500 with the
    same body (variant "500", status FAILURE) or 200 with status FAILED.
    Flavor ``backend``: the APITaskResponse qolaba_modal_docs stores (no top-level
    app_id; SUCCESS with task_id null and the app id in ``input``; PENDING while
    running; FAILED)."""
    backend = "backend" in flavors
    status = (QOLABA_BACKEND if backend else QOLABA_STATUS)[state]
    code = 200
    if state == "failed" or (backend and state == "cancelled"):
        if variant == "200":
            status = "FAILED"
        else:
            code = 500
    terminal = state in ("succeeded", "failed", "cancelled")
    results = _results(task, state)
    body = {
        "time_required": ({"startup_time": round((task.start - task.created) / scale, 2),
                           "runtime": round((task.end - task.start) / scale, 2)} if terminal else {}),
        "error": (task.error or "task failed") if state == "failed" else None,
        "error_data": ({"message": task.error or "task failed"} if state == "failed" else None),
        "input": {"app_id": task.model or "text-to-image", "prompt": "a simulated prompt"},
        "output": {"result": results, "Has_NSFW_Content": [False] * len(results)} if results else {},
        "app_id": task.model or "text-to-image",
        "task_id": task.task_id,
        "status": status,
    }
    if backend:
        del body["app_id"]
        body["input"] = {"app_id": task.model or "text-to-image", "parameters": {"prompt": "a simulated prompt"},
                         "init_parameters": {}, "ref_id": task.ref_id or "", "celery": True,
                         "inference_type": "a10g"}
        if state == "succeeded":  # Worker.create_task builds its answer without a task_id
            body["task_id"] = None
        if code == 500:  # handle_exceptions: {"error", "error_data": str, "status": "FAILED", task_id null}
            body.update(error="Internal Error", error_data=str((task.error or "task failed",)), task_id=None,
                        input={}, output={}, time_required={})
    return code, body


def qolaba_unknown(task_id: str, flavors: AbstractSet[str] = NONE) -> dict[str, Any]:
    """Celery answers PENDING for an id it does not know (or has forgotten)."""
    body = {"time_required": {}, "error": None, "error_data": None, "input": {}, "output": {},
            "app_id": None, "task_id": task_id, "status": "PENDING"}
    if "backend" in flavors:
        del body["app_id"]
    return body


# The 500 qolaba_modal_docs' handle_exceptions (src/utils/Exceptions.py) makes of
# any exception without an (error, error_data) pair, here a Redis connection
# refused: APITaskResponse(error=INTERNAL_ERROR, error_data=str(exc.args), status="FAILED").
QOLABA_REDIS_DOWN = "('Error 111 connecting to redis:6379. Connection refused.',)"


def qolaba_infra_error(error_data: str = QOLABA_REDIS_DOWN) -> dict[str, Any]:
    return {"time_required": {}, "error": "Internal Error", "error_data": error_data, "input": {},
            "output": {}, "task_id": None, "status": "FAILED"}


# ---------------------------------------------------------------- freepik


def freepik_task(task: SimTask, state: str) -> dict[str, Any]:
    """task-detail: ``{"data": {task_id, status, generated}}``."""
    return {"data": {"task_id": task.task_id, "status": FREEPIK_STATUS[state],
                     "generated": _results(task, state)}}


def freepik_list(items: list[tuple[SimTask, str]]) -> dict[str, Any]:
    return {"data": [{"task_id": t.task_id, "status": FREEPIK_STATUS[s]} for t, s in items]}


# ---------------------------------------------------------------- evolink


EVOLINK_TYPES = ("image", "video", "audio")


def evolink_task(task: SimTask, state: str, progress: float, wall: Wall, scale: float = 1.0) -> dict[str, Any]:
    """TaskDetailResponse with the extras the official MCP reads."""
    kind = task.kind if task.kind in EVOLINK_TYPES else "image"
    results = _results(task, state)
    body: dict[str, Any] = {
        "created": int(wall(task.created)),
        "id": task.task_id,
        "model": task.model or "gpt-image-1",
        "object": f"{kind}.generation.task",
        "progress": int(progress),
        "results": results,
        "status": EVOLINK_STATUS[state],
        "task_info": {"can_cancel": state == "queued",
                      "estimated_time": int(round((task.end - task.created if task.eta is None
                                                   else task.eta) / scale))},
        "type": kind,
        "usage": {"billing_rule": "per_call", "credits_reserved": task.credits, "user_group": "default"},
    }
    if results:
        key = {"image": "image_url", "video": "video_url", "audio": "audio_url"}[kind]
        body["result_data"] = [{"result_id": f"{task.task_id}-{i}", key: url} for i, url in enumerate(results)]
    if state == "failed":
        body["error"] = {"code": "generation_failed_no_content", "message": task.error or "generation failed",
                         "type": "task_error"}
    elif state == "cancelled":
        body["error"] = {"code": "request_cancelled", "message": task.error or "request cancelled",
                         "type": "task_error"}
    return body


# docs.evolink.ai/en/api-manual/task-management/get-task-detail.md, the 400 example.
EVOLINK_ID_PREFIX = "task-unified-"


def evolink_invalid_id() -> dict[str, Any]:
    """400 for an id EvoLink's format check refuses (``code`` is a string here)."""
    return {"error": {"code": "invalid_task_id",
                      "message": f"Invalid task ID format, must start with '{EVOLINK_ID_PREFIX}'",
                      "type": "invalid_request_error", "param": "task_id"}}


def evolink_credits(remaining: float, used: float) -> dict[str, Any]:
    """GET /v1/credits."""
    return {"success": True, "message": "ok",
            "data": {"token": {"remaining_credits": remaining, "unlimited_credits": False, "used_credits": used},
                     "user": {"remaining_credits": remaining, "used_credits": used}}}


# ---------------------------------------------------------------- errors

_EVOLINK_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota_error",
                  403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
                  500: "internal_server_error", 502: "upstream_error", 503: "service_unavailable_error"}
_UPSCAYL_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 402: "INSUFFICIENT_CREDITS", 403: "UNAUTHORIZED",
                  404: "NOT_FOUND", 429: "RATE_LIMIT_EXCEEDED", 500: "INTERNAL_SERVER_ERROR"}
_COMFY_CODES = {400: "bad_request", 401: "unauthorized", 402: "payment_required", 403: "forbidden",
                404: "not_found", 429: "too_many_requests", 500: "internal_error"}

MESSAGES = {
    400: "Bad Request",
    401: "Invalid API key",
    402: "Insufficient credits",
    403: "Access denied",
    404: "Task not found or expired",
    429: "Too many requests",
    500: "Internal Server Error",
    502: "Upstream service error",
    503: "Service Unavailable. Please try again later.",
}


def error_body(provider: str, status: int, message: str | None = None,
               fallback: str | None = None) -> dict[str, Any]:
    """A non-2xx body in ``provider``'s own error shape.  ``fallback`` is
    EvoLink's ``fallback_suggestion`` (other providers put a wait hint in the message)."""
    message = message or MESSAGES.get(status, "Error")
    if provider == "evolink":
        err: dict[str, Any] = {"code": status, "message": message,
                               "type": _EVOLINK_TYPES.get(status, "internal_server_error")}
        if status in (400, 404):
            err["param"] = "task_id"
        if fallback:
            err["fallback_suggestion"] = fallback
        return {"error": err}
    if provider == "upscayl":
        return {"error": _UPSCAYL_CODES.get(status, "INTERNAL_SERVER_ERROR"), "message": message}
    if provider == "comfy":  # FreepikErrorResponse {error, message}
        return {"error": _COMFY_CODES.get(status, "error"), "message": message}
    if provider == "qolaba":  # a FastAPI service: {"detail": ...}
        return {"detail": message}
    return {"message": message}  # freepik


HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            b"</body>\r\n</html>\r\n")
