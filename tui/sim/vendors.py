"""The Comfy proxy's other vendors (issue 19), served at their own poll paths
behind ``/proxy/<vendor>/...``, and one made-up vendor (``acme``) for testing
providers a user declares in the config.

Written from the vendors' published answers (their API docs, SDKs and
ComfyUI's ``comfy_api_nodes``, named beside each body), NOT from the
catalogue files in tui/providers/catalogue: the simulator is the world the
catalogue is checked against, so it must not be derived from it.  Nothing
here imports tui.providers.

Each vendor: ``ROUTES[vendor]`` (method, Starlette path), ``answer(vendor,
task, state, progress, wall)`` -> (HTTP status, body) for a task that
exists, ``not_found(vendor, task_id, expired)`` -> (HTTP status, body) for one
that does not (``expired``: the vendor knew it once).  ``state`` is the
simulator's lifecycle state (queued running succeeded failed cancelled); a
vendor without a word for one uses its nearest (no queued word: running;
no cancel: failed).  Auth: the Comfy proxy takes the Comfy key as
``X-API-KEY`` or ``Authorization: Bearer`` (``comfy_api_nodes``); acme takes
its own key as a Bearer token.
"""

from __future__ import annotations

import datetime as _dt
import zlib
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # scenario imports this module
    from .scenario import SimTask

Wall = Callable[[float], float]

# Behind the Comfy proxy, with the Comfy key.
PROXY_VENDORS: tuple[str, ...] = ("kling", "runway", "luma", "minimax", "seedance", "wan", "sora", "tripo",
                                  "pixverse", "vidu", "stability", "veo")
# Made up for declared-provider tests: its own path and key (see ``acme``).
OWN_VENDORS: tuple[str, ...] = ("acme",)
VENDORS: tuple[str, ...] = PROXY_VENDORS + OWN_VENDORS

# The kind a task of the vendor is polled on when none is given (None: kinds unused).
# Kling: ComfyUI nodes_kling.py PATH_TEXT_TO_VIDEO = "/proxy/kling/v1/videos/text2video".
# Veo: nodes_veo2.py polls "/proxy/veo/{model}/poll"; veo-2.0-generate-001 is its first model.
DEFAULT_KINDS: dict[str, str | None] = {v: None for v in VENDORS}
DEFAULT_KINDS.update(kling="videos/text2video", veo="veo-2.0-generate-001")

# (method, path) per vendor; ``{id}`` / ``{kind}`` as Starlette path parameters.
# ComfyUI comfy_api_nodes (nodes_*.py) poll paths.
ROUTES: dict[str, tuple[str, str]] = {
    "kling": ("GET", "/proxy/kling/v1/{path:path}"),  # v1/{videos|images}/{endpoint}/{task_id}
    "runway": ("GET", "/proxy/runway/tasks/{id}"),
    "luma": ("GET", "/proxy/luma/generations/{id}"),
    "minimax": ("GET", "/proxy/minimax/query/video_generation"),  # ?task_id=
    "seedance": ("GET", "/proxy/byteplus/api/v3/contents/generations/tasks/{id}"),
    "wan": ("GET", "/proxy/wan/api/v1/tasks/{id}"),
    "sora": ("GET", "/proxy/openai/v1/videos/{id}"),
    "tripo": ("GET", "/proxy/tripo/v2/openapi/task/{id}"),
    "pixverse": ("GET", "/proxy/pixverse/video/result/{id}"),
    "vidu": ("GET", "/proxy/vidu/tasks/{id}/creations"),
    "stability": ("GET", "/proxy/stability/v2beta/results/{id}"),
    "veo": ("POST", "/proxy/veo/{kind}/poll"),  # body {"operationName": id}
    "acme": ("GET", "/acme/v2/jobs/{id}"),
}


def kling_poll_kind(kind: str | None) -> str:
    """A Kling kind as given (``text2video``, ``videos/image2video``,
    ``images/generations``) -> the part of the path between ``v1/`` and the id.
    The short names are the video endpoints (nodes_kling.py PATH_*_VIDEO)."""
    kind = (kind or DEFAULT_KINDS["kling"] or "").strip("/")
    return kind if "/" in kind else f"videos/{kind}"


def _iso(epoch: float, ms: bool = True) -> str:
    stamp = _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc)
    if ms:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _results(task: SimTask, state: str) -> list[str]:
    return list(task.results) if state == "succeeded" else []


def _error(task: SimTask, state: str) -> str:
    return task.error or ("cancelled" if state == "cancelled" else "generation failed")


# ---------------------------------------------------------------- bodies


def kling(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """Kling's query answer: the official format as resellers reproduce it
    (gpt.morphogen.top/en/video/keling/query-results-official.html) with the fields
    of ComfyUI comfy_api_nodes/apis/__init__.py (KlingTaskStatus submitted/processing/
    succeed/failed; created_at ms; task_result.videos[*] / images[*])."""
    word = {"queued": "submitted", "running": "processing", "succeeded": "succeed"}.get(state, "failed")
    created = int(wall(task.created) * 1000)
    data: dict[str, Any] = {"task_id": task.task_id, "task_status": word, "task_status_msg": "",
                            "created_at": created, "updated_at": created}
    if word == "failed":
        data["task_status_msg"] = _error(task, state)
    results = _results(task, state)
    if results:
        if kling_poll_kind(task.kind).startswith("images/"):
            data["task_result"] = {"images": [{"index": i, "url": u} for i, u in enumerate(results)]}
        else:
            data["task_result"] = {"videos": [{"id": f"{task.task_id}-{i}", "url": u, "duration": "5"}
                                              for i, u in enumerate(results)]}
    return 200, {"code": 0, "message": "SUCCEED", "request_id": f"req-{task.task_id}", "data": data}


def runway(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """github:runwayml/sdk-python src/runwayml/types/task_retrieve_response.py: {id, createdAt,
    status PENDING/THROTTLED/RUNNING/SUCCEEDED/FAILED/CANCELLED, progress 0..1 while running,
    output [urls] when SUCCEEDED, failure + failureCode when FAILED}."""
    word = {"queued": "PENDING", "running": "RUNNING", "succeeded": "SUCCEEDED", "failed": "FAILED",
            "cancelled": "CANCELLED"}[state]
    body: dict[str, Any] = {"id": task.task_id, "status": word, "createdAt": _iso(wall(task.created))}
    if state == "running":
        body["progress"] = round(progress / 100.0, 4)
    if state == "succeeded":
        body["output"] = _results(task, state)
    if state == "failed":
        body.update(failure=_error(task, state), failureCode="INTERNAL.BAD_OUTPUT.CODE01")
    return 200, body


def luma(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """github:lumalabs/lumaai-api openapi.yaml Generation / ComfyUI apis/luma_api.py LumaGeneration:
    {id, generation_type, state queued/dreaming/completed/failed, failure_reason, created_at,
    assets {video}, model, request}.  No cancelled state: a cancelled task reads failed."""
    word = {"queued": "queued", "running": "dreaming", "succeeded": "completed"}.get(state, "failed")
    results = _results(task, state)
    return 200, {"id": task.task_id, "generation_type": "video", "state": word,
                 "failure_reason": _error(task, state) if word == "failed" else None,
                 "created_at": _iso(wall(task.created)),
                 "assets": {"video": results[0]} if results else None,
                 "model": task.model or "ray-2", "request": {"prompt": "a simulated prompt"}}


def minimax(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """MiniMax's query answer (platform.minimax.io openapi.json; Baidu Qianfan's MiniMax page):
    {task_id, status Queueing/Preparing/Processing/Success/Fail, file_id when Success,
    base_resp {status_code, status_msg}}; a failed task carries 1027 "output video sensitive"
    (or the task's error).  The video is a file id, not a link."""
    word = {"queued": "Queueing", "running": "Processing", "succeeded": "Success"}.get(state, "Fail")
    body: dict[str, Any] = {"task_id": task.task_id, "status": word,
                            "base_resp": {"status_code": 0, "status_msg": "success"}}
    if word == "Success":
        body.update(file_id=str(zlib.crc32(task.task_id.encode()) * 1000 + 7), video_width=1280, video_height=720)
    if word == "Fail":
        body["base_resp"] = {"status_code": 1027, "status_msg": task.error or "output video sensitive"}
    return 200, body


def seedance(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """BytePlus ModelArk "Query a video generation task" (docs.byteplus.com/en/docs/ModelArk/1521309),
    ComfyUI nodes_bytedance.py TaskStatusResponse: {id, model, status queued/running/cancelled/
    succeeded/failed, content {video_url}, error {code, message}, usage, created_at, updated_at (s)}."""
    created = int(wall(task.created))
    body: dict[str, Any] = {"id": task.task_id, "model": task.model or "seedance-1-0-pro-250528",
                            "status": state, "created_at": created, "updated_at": created}
    results = _results(task, state)
    if results:
        body["content"] = {"video_url": results[0]}
        body["usage"] = {"completion_tokens": 246840, "total_tokens": 246840}
    if state == "failed":
        body["error"] = {"code": "OutputVideoSensitiveContentDetected", "message": _error(task, state)}
    return 200, body


def wan(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """DashScope task query (docs.qwencloud.com/api-reference/video-generation/wan-text-to-video/
    query-result; ComfyUI nodes_wan.py VideoTaskStatusResponse): {request_id, output {task_id,
    task_status PENDING/RUNNING/SUCCEEDED/FAILED/CANCELED, submit_time, video_url, code, message}}."""
    word = {"queued": "PENDING", "running": "RUNNING", "succeeded": "SUCCEEDED", "failed": "FAILED",
            "cancelled": "CANCELED"}[state]
    submitted = _dt.datetime.fromtimestamp(wall(task.created)).strftime("%Y-%m-%d %H:%M:%S.000")
    output: dict[str, Any] = {"task_id": task.task_id, "task_status": word, "submit_time": submitted}
    results = _results(task, state)
    if results:
        output["video_url"] = results[0]
        output["task_metrics"] = {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    if state == "failed":
        output.update(code="InvalidParameter", message=_error(task, state))
    body: dict[str, Any] = {"request_id": f"req-{task.task_id}", "output": output}
    if results:
        body["usage"] = {"video_count": 1, "video_duration": 5}
    return 200, body


def sora(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """OpenAI's video object (platform.openai.com/docs/api-reference/videos/object): {id,
    object "video", model, status queued/in_progress/completed/failed, progress, created_at,
    size, seconds, quality, error {code, message}}.  The video is fetched from
    /v1/videos/{id}/content: no link in the object."""
    word = {"queued": "queued", "running": "in_progress", "succeeded": "completed"}.get(state, "failed")
    body: dict[str, Any] = {"id": task.task_id, "object": "video", "model": task.model or "sora-2",
                            "status": word, "progress": int(progress) if word != "failed" else 0,
                            "created_at": int(wall(task.created)), "size": "1280x720", "seconds": "8",
                            "quality": "standard"}
    if word == "completed":
        body["progress"] = 100
    if word == "failed":
        body["error"] = {"code": "moderation_blocked", "message": _error(task, state)}
    return 200, body


def tripo(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """Tripo's task answer (platform.tripo3d.ai/docs/task; ComfyUI apis/tripo_api.py TripoTaskResponse):
    {code 0, data {task_id, type, status queued/running/success/failed/cancelled (banned/expired/unknown: failed),
    input, output {pbr_model, rendered_image}, progress 0..100, create_time (s)}}."""
    word = {"queued": "queued", "running": "running", "succeeded": "success", "failed": "failed",
            "cancelled": "cancelled"}[state]
    results = _results(task, state)
    output: dict[str, Any] = {}
    if results:
        output["pbr_model"] = results[0]
        if len(results) > 1:
            output["rendered_image"] = results[1]
    data: dict[str, Any] = {"task_id": task.task_id, "type": "text_to_model", "status": word,
                            "input": {"prompt": "a small cat"}, "progress": 100 if word == "success" else int(progress),
                            "create_time": int(wall(task.created))}
    if output:
        data["output"] = output
    return 200, {"code": 0, "data": data}


def pixverse(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """ComfyUI apis/pixverse_api.py PixverseGenerationStatusResponse {ErrCode, ErrMsg, Resp {id,
    status, url, create_time, outputWidth, outputHeight}}; PixverseStatus 1 successful,
    5 generating, 6 deleted, 7 contents moderation, 8 failed.  No queued word: 5."""
    code = {"queued": 5, "running": 5, "succeeded": 1, "failed": 8, "cancelled": 8}[state]
    if state == "failed" and task.error and "moderation" in task.error.lower():
        code = 7
    results = _results(task, state)
    return 200, {"ErrCode": 0, "ErrMsg": "Success",
                 "Resp": {"id": int(task.task_id) if task.task_id.isdigit() else task.task_id, "status": code,
                          "url": results[0] if results else "", "create_time": _iso(wall(task.created), ms=False),
                          "outputWidth": 1280, "outputHeight": 720}}


def vidu(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """Vidu "Get generation" (platform.vidu.com/docs/get-generation; ComfyUI nodes_vidu.py
    TaskStatusResponse; the proxy's schema, docs.comfy.org/api-reference/api-nodes/
    get-proxyvidutasks-creations): {id, state created/queueing/processing/success/failed,
    err_code, creations [{id, url, cover_url, watermarked_url, moderation_url}]}.  No cancel: failed."""
    word = {"queued": "queueing", "running": "processing", "succeeded": "success"}.get(state, "failed")
    return 200, {"id": task.task_id, "state": word,
                 "err_code": (task.error or "AuditSubmitIllegal") if word == "failed" else "",
                 "creations": [{"id": f"{task.task_id}-{i}", "url": u, "cover_url": u + ".jpg",
                                "watermarked_url": u, "moderation_url": []}
                               for i, u in enumerate(_results(task, state))]}


# A 1x1 PNG: Stability answers the image itself (base64), not a link.
_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def stability(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """Stability's async results (platform.stability.ai/docs/api-reference#tag/Results; ComfyUI
    apis/stability_api.py StabilityResultsGetResponse): 202 {id, status "in-progress"} until done,
    then 200 {image (base64), finish_reason SUCCESS | CONTENT_FILTERED, seed}."""
    if state in ("queued", "running"):
        return 202, {"id": task.task_id, "status": "in-progress"}
    if state == "succeeded":
        return 200, {"image": _PNG, "finish_reason": "SUCCESS", "seed": 343940597}
    return 200, {"image": None, "finish_reason": "CONTENT_FILTERED", "seed": 343940597}


def veo(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """A Vertex AI long-running operation (cloud.google.com/vertex-ai/generative-ai/docs/
    model-reference/veo-video-generation; ComfyUI apis VeoGenVidPollResponse): {name} while
    running (no ``done``), then {name, done true, response {videos [{gcsUri, mimeType}]}} or
    {name, done true, error {code, message}}."""
    if state in ("queued", "running"):
        return 200, {"name": task.task_id}
    if state == "succeeded":
        return 200, {"name": task.task_id, "done": True,
                     "response": {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                                  "videos": [{"gcsUri": f"gs://sim-bucket/{i}/sample_0.mp4", "mimeType": "video/mp4"}
                                             for i, _ in enumerate(_results(task, state))]}}
    return 200, {"name": task.task_id, "done": True, "error": {"code": 3, "message": _error(task, state)}}


def acme(task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    """A made-up vendor (no real API): a job under ``job`` with its own words, for a provider a
    user declares in the config.  Phases waiting/working/done/broken/stopped."""
    word = {"queued": "waiting", "running": "working", "succeeded": "done", "failed": "broken",
            "cancelled": "stopped"}[state]
    job: dict[str, Any] = {"id": task.task_id, "phase": word, "percent": int(progress),
                           "created": _iso(wall(task.created)), "engine": task.model or "acme-render-2",
                           "outputs": [{"href": u} for u in _results(task, state)]}
    if state == "failed":
        job["problem"] = {"text": _error(task, state)}
    return 200, {"job": job}


BODIES: dict[str, Callable[[SimTask, str, float, Wall], tuple[int, Any]]] = {
    "kling": kling, "runway": runway, "luma": luma, "minimax": minimax, "seedance": seedance, "wan": wan,
    "sora": sora, "tripo": tripo, "pixverse": pixverse, "vidu": vidu, "stability": stability, "veo": veo,
    "acme": acme,
}


def answer(vendor: str, task: SimTask, state: str, progress: float, wall: Wall) -> tuple[int, Any]:
    return BODIES[vendor](task, state, progress, wall)


def not_found(vendor: str, task_id: str, expired: bool = False) -> tuple[int, Any]:
    """The vendor's answer for a task it does not have (``expired``: it had it once)."""
    if vendor == "kling":  # KlingErrorResponse {code, message, request_id}; 1203 "Requested resource does not exist"
        return 404, {"code": 1203, "message": "Requested resource does not exist", "request_id": "req-404"}
    if vendor == "runway":  # docs.dev.runwayml.com: 404 for a deleted or unknown task
        return 404, {"error": "Task not found"}
    if vendor == "luma":  # lumaai-api openapi.yaml Error {detail}
        return 404, {"detail": "Generation not found"}
    if vendor == "minimax":  # errors come in a 200 with a non-zero base_resp.status_code (2013 invalid params)
        return 200, {"task_id": "", "status": "",
                     "base_resp": {"status_code": 2013, "status_msg": "invalid params, task not found"}}
    if vendor == "seedance":  # BytePlus error {error {code, message, param, type}}
        return 404, {"error": {"code": "ResourceNotFound", "message": "The specified task is not found.",
                               "param": "", "type": "NotFound"}}
    if vendor == "wan":  # DashScope: UNKNOWN = "the task does not exist or its status is unknown" (24 h retention)
        return 200, {"request_id": "req-unknown", "output": {"task_id": task_id, "task_status": "UNKNOWN"}}
    if vendor == "sora":  # OpenAI's error object
        return 404, {"error": {"message": f"Video with id '{task_id}' not found.", "type": "invalid_request_error",
                               "param": None, "code": None}}
    if vendor == "tripo":
        # A task Tripo gave up on reads "expired" (a finalized status: the task failed, platform.tripo3d.ai/docs/task);
        # an id it does not know is its published 404 row: code 2001 "Task not found." (2000 is the generation
        # rate limit, a 429), in its error body {code, message, suggestion}.
        if expired:
            return 200, {"code": 0, "data": {"task_id": task_id, "type": "text_to_model", "status": "expired"}}
        return 404, {"code": 2001, "message": "Task not found.",
                     "suggestion": "Please check if you passed the correct task id."}
    if vendor == "pixverse":  # a deleted video is status 6; an unknown id a non-zero ErrCode
        if expired:
            return 200, {"ErrCode": 0, "ErrMsg": "Success",
                         "Resp": {"id": int(task_id) if task_id.isdigit() else task_id, "status": 6}}
        return 200, {"ErrCode": 500044, "ErrMsg": "Video not found", "Resp": None}
    if vendor == "vidu":
        return 404, {"code": 404, "reason": "TaskNotFound", "message": "task not found"}
    if vendor == "stability":  # results expire after 24 h: 404 {id, name, errors}
        return 404, {"id": task_id[:32], "name": "not_found", "errors": [f"Generation ID {task_id} not found"]}
    if vendor == "veo":  # google.rpc.Status
        return 404, {"error": {"code": 404, "message": "Operation not found", "status": "NOT_FOUND"}}
    return 404, {"problem": "no such job"}  # acme


def unauthorized(vendor: str) -> tuple[int, Any]:
    """A refused key: the Comfy proxy's 401 for its vendors, acme's own."""
    if vendor in OWN_VENDORS:
        return 401, {"problem": "bad token"}
    return 401, {"error": "unauthorized", "message": "Unauthorized: invalid or missing token"}
