"""Freepik (Magnific) AI tasks: ``GET /v1/ai/{kind}`` lists every task of a
kind, ``GET /v1/ai/{kind}/{task_id}`` answers for one.

Docs: seeds/freepik-hyperflux-list-tasks.md and providers.md §4.  Bodies come
wrapped (``{data: {...}}``) or bare (webhook payloads, Comfy's style transfer);
both are read.  Statuses: CREATED IN_PROGRESS COMPLETED FAILED, and CANCELLED
as Freepik's own client treats it.  The task id is always the last path
segment; kinds may hold slashes (``image-to-video/kling``).  A kind given as
its create path is polled (and listed) on its poll path where the two differ
(``skin-enhancer/faithful`` -> ``skin-enhancer``, ``poll_kinds``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..model import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, BadResponse, ProviderError, Task
from ..text import clean, clean_or_none, clean_url
from .vocabulary import Vocabulary
from .base import Provider, Request, generic_error_message, path_part

# The task-status enum of Freepik's API (CREATED, IN_PROGRESS, COMPLETED, FAILED),
# and other spellings of the same states, accepted in case.
VOCABULARY = Vocabulary({
    QUEUED: ("CREATED", "PENDING"),
    RUNNING: ("IN_PROGRESS", "PROCESSING"),
    SUCCEEDED: ("COMPLETED",),
    FAILED: ("FAILED",),
    CANCELLED: ("CANCELLED", "CANCELED"),
})


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (str, int, float)):
        return clean_or_none(value)
    raise ValueError(f"expected text, got {type(value).__name__}")


def _urls(value: Any) -> list[str]:
    """``generated``: a list of links (a lone string, or ``{url}`` items, accepted)."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"expected a list of links, got {type(value).__name__}")
    out: dict[str, None] = {}  # ordered and de-duplicated in linear time (a provider may send 100,000)
    for item in value:
        if isinstance(item, dict):
            item = item.get("url")
        url = clean_url(item) if isinstance(item, str) else None
        if url:
            out[url] = None
    return list(out)


Text = Annotated[str | None, BeforeValidator(_text)]
Urls = Annotated[list[str], BeforeValidator(_urls)]


class FreepikTask(BaseModel):
    """``task-detail`` data: ``{task_id, status, generated: [uri], has_nsfw?}``."""

    model_config = ConfigDict(extra="allow")

    task_id: Text = None
    status: Text  # required by every documented shape
    generated: Urls = Field(default_factory=list)
    has_nsfw: Any = None
    error: Any = None  # undocumented; kept if a failed task says why
    message: Any = None


def _check(model: type[BaseModel], data: Any, where: str) -> Any:
    """Validate or raise a short ``BadResponse`` naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in (where, *first["loc"]) if p != "")
        raise BadResponse(f"unexpected answer shape: {loc}: {first['msg']}") from None


def _reason(row: FreepikTask) -> str | None:
    """Why a task failed, if the answer says (not documented, so any shape)."""
    for value in (row.error, row.message):
        if isinstance(value, dict):
            value = value.get("message") or value.get("reason")
        if isinstance(value, (str, int, float)) and clean(value):
            return clean(value, 500)
    return None


def state_of(status: str | None) -> str:
    return VOCABULARY.state(status)


class Freepik(Provider):
    name = "freepik"
    vocabulary = VOCABULARY
    default_base_url = "https://api.freepik.com"
    default_rate_limit = "10/s"  # per IP: an average of 10 hits/s over 2 min (docs.freepik.com/ratelimits)
    default_poll_interval = 5.0
    default_kind = "text-to-image/hyperflux"
    has_list = True

    def auth_headers(self) -> dict[str, str]:
        # The API is being rebranded: api.magnific.com takes x-magnific-api-key (providers.md §4).
        if httpx.URL(self.base_url).host.endswith("magnific.com"):
            return {"x-magnific-api-key": self.api_key}
        return {"x-freepik-api-key": self.api_key}

    # Poll paths of the /v1/ai families docs.magnific.com lists (providers.md §4);
    # the families documented only as "image-to-video/…" etc. are FAMILIES below.
    known_kinds = (
        "image-relight", "image-style-transfer", "image-upscaler", "image-upscaler-precision",
        "image-upscaler-precision-v2", "image-expand/flux-pro", "image-expand/seedream-v4-5",
        "image-expand/ideogram", "ideogram-image-edit", "image-change-camera", "skin-enhancer",
        "image-to-prompt", "improve-prompt", "mystic", "text-to-image/hyperflux", "text-to-image/flux-dev",
        "text-to-image/flux-pro-v1-1", "text-to-image/flux-2-pro", "text-to-image/flux-2-turbo",
        "text-to-image/flux-2-klein", "text-to-image/flux-2-flex", "text-to-image/flux-kontext-pro",
        "text-to-image/flux-kontext-max", "text-to-image/imagen3", "text-to-image/imagen4-fast",
        "text-to-image/nano-banana-pro", "text-to-image/runway", "text-to-image/seedream-v4-5",
        "text-to-image/seedream-v5-lite", "text-to-image/seedream-v5-pro", "text-to-image/z-image",
        "gemini-2-5-flash-image-preview", "image-to-video/kling", "image-to-video/kling-v2-6",
        "video-upscaler", "video-upscaler/turbo", "video-upscaler-precision", "audio-isolation",
        "sound-effects", "music-generation", "music-generation/google-lyria", "music-generation/lyria-3",
        "voiceover/elevenlabs-turbo-v2-5",
    )
    FAMILIES = ("image-to-video/", "text-to-video/", "reference-to-video/", "video/", "video-edit/", "lip-sync/")
    # Create path -> poll path where they differ (providers.md §4): freepik-mcp's
    # ai_polling_service.py creates on kling-std and polls on kling; the index
    # names kling-v2-6-pro -> kling-v2-6 and skin-enhancer/<mode> -> skin-enhancer.
    poll_kinds = {
        "image-to-video/kling-std": "image-to-video/kling",
        "image-to-video/kling-v2-6-pro": "image-to-video/kling-v2-6",
        **{f"skin-enhancer/{mode}": "skin-enhancer" for mode in ("creative", "faithful", "flexible")},
    }
    # Requests per day per key and service, premium (docs.freepik.com/ratelimits).
    daily_limits = {"image-relight": 1250, "image-style-transfer": 1250, "image-upscaler": 1250, "mystic": 6000}

    def is_known_kind(self, kind: str) -> bool:
        """Also the ``-edit`` variants of text-to-image and the families the docs
        list only by prefix (``image-to-video/…``)."""
        kind = kind.strip().strip("/")
        return (super().is_known_kind(kind) or super().is_known_kind(kind.removesuffix("-edit"))
                or any(kind.startswith(f) and len(kind) > len(f) for f in self.FAMILIES))

    def _kind_path(self, kind: str | None) -> str:
        kind = (self.poll_kind(kind) or "").strip().strip("/") or self.default_kind
        return path_part(kind, "kind", keep_slash=True, provider=self.name)

    # ------------------------------------------------------------ requests

    def status_request(self, task_id: str, kind: str | None = None) -> Request:
        task = path_part(task_id, "task id", provider=self.name)
        return self.request("GET", f"/v1/ai/{self._kind_path(kind)}/{task}")

    def list_request(self, kind: str | None = None) -> Request:
        return self.request("GET", f"/v1/ai/{self._kind_path(kind)}")

    # ------------------------------------------------------------ answers

    def read_status(self, task_id: str, kind: str | None, data: Any, response: httpx.Response) -> Task:
        body = data.get("data", data) if isinstance(data, dict) else data
        if isinstance(body, list):  # a list answer: pick our task out of it
            body = next((item for item in body if isinstance(item, dict)
                         and str(item.get("task_id")) == task_id), None)
            if body is None:
                raise BadResponse(f"task {clean(task_id, 80)} is not in the answer")
        if not isinstance(body, dict):
            raise BadResponse(f"unexpected answer shape: expected an object, got {type(body).__name__}")
        return self._task(task_id, kind, _check(FreepikTask, body, "data"), data)

    def read_list(self, kind: str | None, data: Any, response: httpx.Response) -> list[Task]:
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise BadResponse("unexpected answer shape: data: expected a list of tasks")
        tasks: dict[str, Task] = {}  # one per id; a later entry wins
        problem: BadResponse | None = None
        for n, item in enumerate(items):
            try:
                row = _check(FreepikTask, item, f"data.{n}")
            except BadResponse as exc:  # one odd entry must not hide the others
                problem = problem or exc
                continue
            if row.task_id:
                tasks[row.task_id] = self._task(row.task_id, kind, row, item)
        if problem is not None and not tasks:
            raise problem
        return list(tasks.values())

    def _task(self, task_id: str, kind: str | None, row: FreepikTask, raw: Any) -> Task:
        state = state_of(row.status)
        return self.task(
            task_id,
            kind,
            state=state,
            provider_status=row.status,
            results=row.generated,
            error=_reason(row) if state in (FAILED, CANCELLED) else None,
            details=VOCABULARY.details(self.name, row.status),
            raw=raw,
        )

    def error_message(self, data: Any) -> tuple[str | None, str | None]:
        """``{message}``, problem+json ``{message, invalid_params: [{name, reason}]}``
        (also nested under ``problem``), Comfy's ``{error, message}``."""
        if isinstance(data, dict) and isinstance(data.get("problem"), dict):
            data = data["problem"]
        if isinstance(data, dict) and isinstance(data.get("invalid_params"), list):
            head = data.get("message") or data.get("detail") or data.get("title")
            reasons = []
            for p in data["invalid_params"]:
                if isinstance(p, dict):
                    name, reason = clean(p.get("name"), 80), clean(p.get("reason"), 300)
                    reasons.append(f"{name}: {reason}" if name and reason else name or reason)
                else:
                    reasons.append(clean(p, 300))
            reasons = [r for r in reasons if r]
            text = clean(head, 300) if isinstance(head, (str, int, float)) else ""
            if reasons:
                text = f"{text} ({'; '.join(reasons)})" if text else "; ".join(reasons)
            return text or None, None
        message, code = generic_error_message(data)
        if message is None and isinstance(data, dict):
            for key in ("detail", "title"):
                if isinstance(data.get(key), str):
                    return clean(data[key], 500) or None, code
        return message, code

    # ------------------------------------------------------------ push

    def parse_webhook(self, payload: bytes | str | dict, kind: str | None = None) -> Task:
        """One webhook delivery as a Task, read by the same rules as a poll answer.

        docs.freepik.com (hyperflux, mystic, imagen3 pages): the payload "is the same
        as the corresponding GET endpoint response, but without the ``data`` field",
        so ``{task_id, status, generated}``; a body still wrapped in ``data`` is read
        too.  The signature is checked by the receiver (tui/push.py) before this.
        ``kind`` is the task's poll kind when known (a webhook does not say).
        Raises ``BadResponse`` for a body that is not JSON, not a task, or names no
        ``task_id``; nothing else escapes.
        """
        try:
            data = json.loads(payload) if isinstance(payload, (bytes, bytearray, str)) else payload
        except (ValueError, RecursionError):
            raise BadResponse("webhook body is not JSON", provider=self.name) from None
        try:
            body = data.get("data", data) if isinstance(data, dict) else data
            if not isinstance(body, dict):
                raise BadResponse(f"webhook body: expected an object, got {type(body).__name__}")
            row = _check(FreepikTask, body, "webhook")
            task_id = (row.task_id or "").strip()
            if not task_id or len(task_id) > 256 or not task_id.isprintable():
                raise BadResponse("webhook body names no usable task_id")
            task = self._task(task_id, kind or self.default_kind, row, data)
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            raise self.scrub(exc) from None
        except Exception as exc:  # a wrong shape, whatever it broke
            raise self.scrub(BadResponse(f"unexpected webhook shape ({type(exc).__name__}: {clean(exc, 200)})",
                                         provider=self.name)) from None
        return self.scrub_task(task)
