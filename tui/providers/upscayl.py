"""Upscayl Cloud: ``POST {base}/get-task-status`` with ``{"data": {"taskId": id}}``.

The history (``POST {base}/get-upscayl-history``, openapi.yaml) is not used as
a list: its rows (``ProcessingTask``) carry no task id, so it can never answer
for a tracked task, and it spends the same 100/hour budget (``has_list`` is
False).  A file's ``path`` is a storage path, not a link: results hold only the
http(s) ``downloadLink``/``downloadUrl``; the path(s) and the expiry go to
``details``.  ``creditsDeducted: false`` means nothing is charged yet.

Two status enums are documented and both are read: the docs'
``ENHANCING PROCESSING PROCESSED PROCESSING_FAILED`` and openapi.yaml's
``pending processing completed failed``.  ENHANCING is mapped to *running*:
the name says the image is being worked on, and Upscayl reports no separate
waiting state in that enum (``progress`` tells how far along it is).
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from ..model import (
    AuthError,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    BadResponse,
    ClientError,
    NotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Task,
    Transient,
    clamp_progress,
    epoch,
    iso,
)
from ..text import clean, clean_or_none, clean_url, is_web_url
from .vocabulary import Vocabulary
from .base import Provider, Request, retry_after

# Upscayl's status words (openapi.yaml and providers.md), and other spellings
# of the same states, accepted in case.
VOCABULARY = Vocabulary({
    QUEUED: ("PENDING",),
    RUNNING: ("ENHANCING", "PROCESSING"),
    SUCCEEDED: ("PROCESSED", "COMPLETED"),
    FAILED: ("PROCESSING_FAILED", "FAILED"),
})

# Error codes of openapi.yaml that name their class whatever the HTTP status.
CODES: dict[str, type[ProviderError]] = {
    "UNAUTHORIZED": AuthError,
    "INSUFFICIENT_CREDITS": QuotaExhausted,
    "RATE_LIMIT_EXCEEDED": RateLimited,
    "NOT_FOUND": NotFound,
    "INTERNAL_SERVER_ERROR": Transient,
}




class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


class FileData(_Lenient):
    fileName: str | None = None
    path: str | None = None
    downloadLink: str | None = None
    downloadUrl: str | None = None
    createdAt: Any = None  # seconds or milliseconds
    expiresAt: Any = None

    def link(self) -> str | None:
        """The download link (http/https only); a storage ``path`` is not one."""
        for value in (self.downloadLink, self.downloadUrl):
            url = clean_url(value)
            if url and is_web_url(url):
                return url
        return None


class TaskData(_Lenient):
    status: str | None = None
    progress: Any = None  # "40", "40.5", "", 40 ...: read by clamp_progress
    files: list[FileData | str] | None = None  # objects as documented; a bare link accepted
    deductedCredits: Any = None
    creditsDeducted: Any = None
    model: str | None = None
    scale: Any = None
    error: Any = None
    createdAt: Any = None


class Upscayl(Provider):
    name = "upscayl"
    vocabulary = VOCABULARY
    default_base_url = "https://api.upscayl.org"
    default_rate_limit = "100/h"  # x-rateLimit of /get-task-status (openapi.yaml)
    default_poll_interval = 60.0  # 100 calls an hour leave < 2 a minute for all tasks
    default_kind = None
    # History rows carry no task id (openapi.yaml ProcessingTask): no list.
    has_list = False

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def status_request(self, task_id: str, kind: str | None = None) -> Request:
        return self.request("POST", "/get-task-status", {"data": {"taskId": task_id}})

    def read_status(self, task_id: str, kind: str | None, data: Any, response: httpx.Response) -> Task:
        if not isinstance(data, dict):
            raise BadResponse(f"expected a JSON object, got {type(data).__name__}",
                              status=response.status_code)
        inner = data.get("data")
        if not isinstance(inner, dict):
            message, code = self.error_message(data)
            if code or data.get("error") is not None:  # an error body with a 200
                raise self.error_from(code, message or "error without message", response, data)
            raise BadResponse(f"answer has no task data{': ' + message if message else ''}",
                              status=response.status_code)
        return self.task_from(task_id, kind, inner, data, response)

    def task_from(self, task_id: str, kind: str | None, inner: dict, raw: Any,
                  response: httpx.Response) -> Task:
        """One task object (``data`` of a status answer, or a history row) -> Task."""
        item = TaskData.model_validate(inner)
        if item.status is None:
            raise BadResponse("answer has no task status", status=response.status_code)
        status = clean(item.status, 80)
        state = VOCABULARY.state(status)
        links = [f.link() if isinstance(f, FileData) else clean_url(f) for f in item.files or []]
        results = [url for url in links if url and is_web_url(url)]
        files = [f for f in item.files or [] if isinstance(f, FileData)]
        times = [t for t in (epoch(f.createdAt) for f in files) if t is not None]
        created = epoch(item.createdAt) or (min(times) if times else None)
        error = clean_or_none(item.error, 1000) if item.error not in ("", None) else None
        details: dict[str, str] = VOCABULARY.details(self.name, status)
        paths = [p for p in (clean_or_none(f.path, 500) for f in files) if p]
        if paths:
            details["storage path"] = "\n".join(dict.fromkeys(paths))
        expiries = [t for t in (epoch(f.expiresAt) for f in files) if t is not None]
        if expiries:
            details["expires"] = iso(min(expiries))
        credits = number(item.deductedCredits)
        if item.creditsDeducted is False or str(item.creditsDeducted).strip().lower() == "false":
            if credits:  # not charged yet: say what will be
                details["credits to deduct"] = f"{credits:g}"
            credits = None
        return self.task(
            task_id, kind, state=state, provider_status=status or None,
            progress=clamp_progress(item.progress), results=results, error=error,
            model=clean_or_none(item.model, 120), credits=credits,
            created_at=created, details=details, raw=raw,
        )

    def error_for(self, response: httpx.Response, data: Any) -> ProviderError:
        """By HTTP status; only a generic 400 lets a documented code name the class
        (and never as Transient: a 4xx is not cured by asking again)."""
        exc = super().error_for(response, data)
        cls = CODES.get((exc.code or "").upper())
        if response.status_code != 400 or cls in (None, Transient) or isinstance(exc, cls):
            return exc
        return self.error_from(exc.code, exc.message, response, data)

    def error_from(self, code: str | None, message: str, response: httpx.Response,
                   data: Any) -> ProviderError:
        cls = CODES.get((code or "").upper(), ClientError)
        wait = retry_after(response.headers.get("retry-after"), message, data)
        kw = dict(status=response.status_code, provider=self.name, code=code)
        if cls in (RateLimited, Transient):
            kw["retry_after"] = wait
        return cls(clean(message, 500), **kw)



def number(value: Any) -> float | None:
    """A credit count given as a number or a numeric string; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None
