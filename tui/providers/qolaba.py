"""Qolaba legacy ML API: ``POST {base}/getImage`` with ``{"id": id, "refID": ref?}``.

The answer to 200 *and* 500 is one task shape, ``{time_required, error,
error_data, input, output, app_id, task_id, status}`` with Celery states.  A
200 is the task: FAILED/FAILURE there is final.  A 500 is never proof that the
task failed: the backend wraps *every* exception, a Redis outage included,
into ``500 {error, error_data, status: "FAILED", task_id: null}``
(``handle_exceptions`` in the backend code, providers.md §3).  So a 500 with
status FAILED is ``Transient`` with code ``unconfirmed_failure`` and the
backend's words; the engine keeps polling and marks the task if it persists.
(An earlier rule here ended the task on such a 500: it was wrong.)

On SUCCESS the backend leaves ``task_id`` null and keeps the app id inside
``input`` (``input.app_id``): the model is the top ``app_id``, else that one.
Celery answers PENDING for ids it never saw or whose result expired, so a
long PENDING gets a stall hint.

No base URL is documented anywhere, so the config must give one.

A task's ``kind`` is otherwise unused here, so it carries the optional
reference id: track a task with kind ``ref:<refID>`` and ``refID`` is sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from ..model import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    BadResponse,
    ProviderError,
    Task,
    Transient,
)
from ..text import clean, clean_or_none, clean_url
from .vocabulary import Vocabulary
from .base import Provider, Request, generic_error_message

# Celery's task states, which Qolaba's status answer passes through.
VOCABULARY = Vocabulary({
    QUEUED: ("PENDING", "RECEIVED"),  # PENDING: also what Celery says of unknown or expired ids
    RUNNING: ("STARTED", "RETRY"),
    SUCCEEDED: ("SUCCESS",),
    FAILED: ("FAILURE", "FAILED"),
    CANCELLED: ("REVOKED",),
})
REF_PREFIX = "ref:"
# Keys that mark a body as the task shape ("error" alone does not: {error, message} is an error).
TASK_KEYS = ("status", "task_id", "output", "error_data", "app_id", "time_required")


class TaskAnswer(BaseModel):
    """``APITaskResponse``: every field optional; ``""`` stands for "none" anywhere."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    time_required: dict[str, Any] | str | None = None  # {startup_time, runtime} or ""
    error: Any = None  # str or dict
    error_data: Any = None  # str or dict
    input: Any = None
    output: Any = None  # {result: [urls], Has_NSFW_Content: [...]}, [urls], "url" or ""
    app_id: str | None = None
    task_id: str | None = None
    status: str | None = None


class Qolaba(Provider):
    name = "qolaba"
    vocabulary = VOCABULARY
    default_base_url = None  # not documented: the config must say
    default_rate_limit = "30/m"  # undocumented: stay well clear of any limit
    default_poll_interval = 5.0
    default_kind = None

    def status_request(self, task_id: str, kind: str | None = None) -> Request:
        body: dict[str, str] = {"id": task_id}
        ref = ref_id(kind)
        if ref:
            body["refID"] = ref
        return self.request("POST", "/getImage", body)

    def read_status(self, task_id: str, kind: str | None, data: Any, response: httpx.Response) -> Task:
        if not isinstance(data, dict) or not any(k in data for k in TASK_KEYS):
            raise BadResponse("answer is not a task", status=response.status_code)
        item = TaskAnswer.model_validate(data)
        status = clean(item.status or "", 80)
        return self.task(
            task_id, kind, state=VOCABULARY.state(status),
            provider_status=status or None, results=output_urls(item.output),
            error=task_error(item.error, item.error_data), model=model_of(item),
            details=VOCABULARY.details(self.name, status), raw=data,
        )

    def error_for(self, response: httpx.Response, data: Any) -> ProviderError:
        """The base's classes; a 500 saying FAILED is an *unconfirmed* failure."""
        exc = super().error_for(response, data)
        status = data.get("status") if isinstance(data, dict) else None
        if (response.status_code == 500 and isinstance(status, str)
                and VOCABULARY.state(status) == FAILED):
            return Transient(f"the server answered HTTP 500 with status {clean(status, 20)}, as it does for its "
                             f"own faults too (not confirmed): {exc.message}",
                             status=500, provider=self.name, code="unconfirmed_failure",
                             retry_after=exc.retry_after)
        return exc

    def stall_hint(self, task: Task) -> str | None:
        if (task.provider_status or "").strip().upper() == "PENDING":
            return "Celery answers PENDING for ids it never saw or whose result expired: check the id (and refID)"
        return None

    def error_message(self, data: Any) -> tuple[str | None, str | None]:
        if isinstance(data, dict):
            if "detail" in data:  # FastAPI's own errors: {detail: str | [{msg, loc}]}
                return describe(data["detail"]) or None, None
            if any(k in data for k in TASK_KEYS):
                said = task_error(data.get("error"), data.get("error_data"))
                return said or "server error with an empty task answer", None
        return generic_error_message(data)



def ref_id(kind: str | None) -> str | None:
    """``"ref:abc"`` -> ``"abc"``; any other kind -> None."""
    if kind and kind.startswith(REF_PREFIX):
        return kind[len(REF_PREFIX):].strip() or None
    return None


def model_of(item: TaskAnswer) -> str | None:
    """The app id: the documented top-level field, else ``input.app_id`` (SUCCESS)."""
    model = clean_or_none(item.app_id, 120)
    if model is None and isinstance(item.input, dict) and isinstance(item.input.get("app_id"), (str, int)):
        model = clean_or_none(item.input["app_id"], 120)
    return model


def output_urls(output: Any) -> list[str]:
    """Result links from every documented shape of ``output``."""
    found: list[str] = []

    def walk(value: Any, depth: int = 0) -> None:
        if depth > 4 or value is None:
            return
        if isinstance(value, str):
            url = clean_url(value)
            if url:
                found.append(url)
        elif isinstance(value, list):
            for v in value:
                walk(v, depth + 1)
        elif isinstance(value, dict):
            for key in ("result", "results", "url", "urls", "image_url", "images"):
                if key in value:
                    walk(value[key], depth + 1)

    walk(output)
    return list(dict.fromkeys(found))


def describe(value: Any) -> str:
    """Text of an error field that may be a string, a dict or a list."""
    if value is None or value == "":
        return ""
    if isinstance(value, dict):
        for key in ("message", "detail", "error", "msg"):
            if isinstance(value.get(key), str) and value[key].strip():
                return clean(value[key], 1000)
        return clean(json.dumps(value, ensure_ascii=False, default=str), 1000)
    if isinstance(value, list):
        return clean("; ".join(filter(None, (describe(v) for v in value))), 1000)
    return clean(value, 1000)


def task_error(error: Any, error_data: Any) -> str | None:
    """``error`` and ``error_data`` as one message (None when both are empty)."""
    parts = [p for p in (describe(error), describe(error_data)) if p]
    if len(parts) == 2 and parts[1] in parts[0]:
        parts = parts[:1]
    return clean(": ".join(parts), 1000) or None
