"""EvoLink tasks: ``GET /v1/tasks/{id}`` for one task, ``GET /v1/credits`` for
the balance.

Docs: seeds/evolink-task-detail.md and providers.md §5.  A task carries
``progress`` 0-100, ``results`` links plus ``result_data`` items (whose media
links join the results), ``task_info.estimated_time`` (our ``eta``),
``usage.credits_reserved`` (our ``credits``) and, when failed,
``error {code, message, type}`` (``request_cancelled``: the task was cancelled).
Error bodies are ``{error: {code, message, type, param?, fallback_suggestion?}}``;
a 400 about the task id (``invalid_task_id``) means it can never be found.  The
balance a key can spend is the lower of its own and the account's bucket.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..model import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    BadResponse,
    Balance,
    NotFound,
    ProviderError,
    Task,
    clamp_progress,
    epoch,
)
from ..text import clean, clean_or_none, clean_url
from .vocabulary import Vocabulary
from .base import Provider, Request, generic_error_message, path_part

# EvoLink's task status words (the seed documents: pending, processing,
# completed, failed), and their other spellings, accepted in case.
VOCABULARY = Vocabulary({
    QUEUED: ("pending", "queued"),
    RUNNING: ("processing", "running"),
    SUCCEEDED: ("completed", "succeeded"),
    FAILED: ("failed",),
    CANCELLED: ("cancelled", "canceled"),
})
MEDIA_FIELDS = ("image_url", "video_url", "audio_url", "stream_audio_url")


def _text(value: Any) -> str | None:
    """Provider text, cleaned; a non-text value (object, list) counts as absent."""
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return clean_or_none(value)


def _number(value: Any) -> float | None:
    """A count or a duration: numbers and numeric strings; anything else is None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _object(value: Any) -> dict | None:
    return value if isinstance(value, dict) else None


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [u for u in (clean_url(v) for v in value if isinstance(v, str)) if u]


def _items(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _error(value: Any) -> Any:
    if isinstance(value, str):  # a bare message
        return {"message": value}
    return _object(value)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, (int, float)) and value == 1)


Text = Annotated[str | None, BeforeValidator(_text)]
Number = Annotated[float | None, BeforeValidator(_number)]


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class EvolinkError(Lenient):
    code: Text = None  # an HTTP code (int) in error bodies, a business code (str) in tasks
    message: Text = None
    type: Text = None
    param: Text = None
    fallback_suggestion: Text = None


class ResultItem(Lenient):
    result_id: Text = None
    duration: Number = None
    tags: Any = None
    title: Text = None
    image_url: Any = None
    audio_url: Any = None
    stream_audio_url: Any = None
    video_url: Any = None


class TaskInfo(Lenient):
    can_cancel: Any = None
    estimated_time: Number = None
    video_duration: Number = None


class Usage(Lenient):
    billing_rule: Text = None
    credits_reserved: Number = None
    user_group: Text = None


class EvolinkTask(Lenient):
    created: Any = None
    id: Text = None
    model: Text = None
    object: Text = None
    progress: Any = None
    results: Annotated[list[str], BeforeValidator(_urls)] = Field(default_factory=list)
    result_data: Annotated[list[ResultItem], BeforeValidator(_items)] = Field(default_factory=list)
    status: Text  # required: without it the answer is not a task
    task_info: Annotated[TaskInfo | None, BeforeValidator(_object)] = None
    type: Text = None
    usage: Annotated[Usage | None, BeforeValidator(_object)] = None
    error: Annotated[EvolinkError | None, BeforeValidator(_error)] = None


class CreditBucket(Lenient):
    remaining_credits: Number = None
    used_credits: Number = None
    unlimited_credits: Any = None


class CreditsData(Lenient):
    token: Annotated[CreditBucket | None, BeforeValidator(_object)] = None
    user: Annotated[CreditBucket | None, BeforeValidator(_object)] = None


class CreditsAnswer(Lenient):
    success: Any = None
    message: Text = None
    data: Annotated[CreditsData | None, BeforeValidator(_object)] = None


def _check(model: type[BaseModel], data: Any) -> Any:
    """Validate or raise a short ``BadResponse`` naming the field."""
    if not isinstance(data, dict):
        raise BadResponse(f"unexpected answer shape: expected an object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadResponse(f"unexpected answer shape: {loc}: {first['msg']}") from None


def state_of(status: str | None, err: EvolinkError | None = None) -> str:
    """The state; a failed task whose error code is ``request_cancelled`` was cancelled."""
    state = VOCABULARY.state(status)
    if state == FAILED and err is not None and (err.code or "").strip().lower() == "request_cancelled":
        return CANCELLED
    return state


def _amount(value: float | None) -> str:
    """12.5 -> "12.5", 40.0 -> "40", 99416.4429 -> "99416.44"; None -> "?"."""
    if value is None:
        return "?"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def task_error(err: EvolinkError | None) -> str | None:
    """A failed task's error: the message, with the business code when it adds to it."""
    if err is None:
        return None
    message, code = err.message, err.code
    if message and code and code not in message:
        return clean(f"{message} ({code})", 500)
    return message or code


class Evolink(Provider):
    name = "evolink"
    vocabulary = VOCABULARY
    default_base_url = "https://api.evolink.ai"
    default_rate_limit = "60/m"  # no documented limit: one request a second is conservative
    default_poll_interval = 5.0
    has_balance = True

    # ------------------------------------------------------------ requests

    def status_request(self, task_id: str, kind: str | None = None) -> Request:
        return self.request("GET", f"/v1/tasks/{path_part(task_id, 'task id', provider=self.name)}")

    def balance_request(self) -> Request:
        return self.request("GET", "/v1/credits")

    # ------------------------------------------------------------ answers

    def read_status(self, task_id: str, kind: str | None, data: Any, response: httpx.Response) -> Task:
        row: EvolinkTask = _check(EvolinkTask, data)
        results = dict.fromkeys(row.results)  # ordered, de-duplicated in linear time
        for item in row.result_data:
            for name in MEDIA_FIELDS:
                results.update(dict.fromkeys(_urls(getattr(item, name))))
        info, usage = row.task_info, row.usage
        return self.task(
            task_id,
            kind or row.type,
            state=state_of(row.status, row.error),
            provider_status=row.status,
            progress=clamp_progress(row.progress),
            results=list(results),
            error=task_error(row.error),
            model=row.model,
            credits=usage.credits_reserved if usage else None,
            created_at=epoch(row.created),
            eta=info.estimated_time if info and info.estimated_time and info.estimated_time > 0 else None,
            details=VOCABULARY.details(self.name, row.status),
            raw=data,
        )

    def read_balance(self, data: Any, response: httpx.Response) -> Balance:
        body: CreditsAnswer = _check(CreditsAnswer, data)
        if body.success is False:
            raise BadResponse(f"credits request refused: {body.message or 'no reason given'}")
        if body.data is None or (body.data.user is None and body.data.token is None):
            raise BadResponse("unexpected answer shape: data: no user or token credits")
        user, token = body.data.user, body.data.token
        # The key spends from two buckets: its own (token) and the account's (user).
        # What it can spend is the lower one, unless the key has no cap of its own.
        unlimited = token is not None and _flag(token.unlimited_credits)
        buckets = [b for b in (user, None if unlimited else token) if b is not None and b.remaining_credits is not None]
        spend = min(buckets, key=lambda b: b.remaining_credits) if buckets else None
        used = spend.used_credits if spend is not None else (token or user).used_credits
        note = None
        if token is not None:
            parts = ["key unlimited" if unlimited else f"key {_amount(token.remaining_credits)}"]
            if user is not None and user.remaining_credits is not None:
                parts.append(f"account {_amount(user.remaining_credits)}")
            note = " · ".join(parts) + ("" if parts == ["key unlimited"] else " credits")
        return Balance(self.name, spend.remaining_credits if spend is not None else None, used,
                       raw=data, note=note)

    def error_for(self, response: httpx.Response, data: Any) -> ProviderError:
        """The base's classes, except a 400 about the task id (``param: task_id``,
        or code ``invalid_task_id``): the id can never be found, so NotFound."""
        exc = super().error_for(response, data)
        err = data.get("error") if isinstance(data, dict) else None
        if response.status_code == 400 and isinstance(err, dict) and (
                err.get("param") == "task_id" or err.get("code") == "invalid_task_id"):
            code = err.get("code") if isinstance(err.get("code"), str) else exc.code
            return NotFound(exc.message, status=400, provider=self.name, code=_text(code) or exc.code)
        return exc

    def error_message(self, data: Any) -> tuple[str | None, str | None]:
        """``{error: {code, message, type, fallback_suggestion}}``; the suggestion
        (a wait, a billing link) is worth showing, so it joins the message."""
        message, code = generic_error_message(data)
        err = data.get("error") if isinstance(data, dict) else None
        hint = _text(err.get("fallback_suggestion")) if isinstance(err, dict) else None
        if hint and message and hint not in message:
            message = clean(f"{message} ({hint})", 500)
        return message or hint, code

    # ------------------------------------------------------------ push

    def parse_webhook(self, payload: bytes | str | dict, kind: str | None = None) -> Task:
        """One ``callback_url`` delivery as a Task.  EvoLink posts "the same object as
        the task query" on completed, failed or cancelled (providers.md §5), so it is
        read like a poll answer; its ``id`` names the task.  Callbacks are unsigned:
        the receiver (tui/push.py) treats the result as a hint to poll, never as the
        truth.  Raises ``BadResponse`` for a body that is not JSON, not a task, or
        names no id; nothing else escapes.
        """
        try:
            data = json.loads(payload) if isinstance(payload, (bytes, bytearray, str)) else payload
        except (ValueError, RecursionError):
            raise BadResponse("callback body is not JSON", provider=self.name) from None
        try:
            if isinstance(data, dict) and isinstance(data.get("data"), dict) and "status" not in data:
                data = data["data"]  # a wrapped body, should one come
            row: EvolinkTask = _check(EvolinkTask, data)
            task_id = (row.id or _text(data.get("task_id")) or "").strip()
            if not task_id or len(task_id) > 256 or not task_id.isprintable():
                raise BadResponse("callback body names no usable task id")
            task = self.read_status(task_id, kind, data, None)  # type: ignore[arg-type]
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            raise self.scrub(exc) from None
        except Exception as exc:
            raise self.scrub(BadResponse(f"unexpected callback shape ({type(exc).__name__}: {clean(exc, 200)})",
                                         provider=self.name)) from None
        return self.scrub_task(task)
