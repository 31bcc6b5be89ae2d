"""Comfy API proxy for Freepik/Magnific tasks (relight, style transfer, ...).

Status: ``GET {base}/proxy/freepik/v1/ai/{kind}/{id}``, ``kind`` the poll path
(a skin-enhancer task created on ``skin-enhancer/<mode>`` is polled on
``skin-enhancer``, as ComfyUI's nodes_magnific.py does); the answer is
``{data: {task_id, status, generated}}`` (documented for GET) or the bare
``{task_id, status, generated}`` (documented for style transfer's POST): both
are read.  Balance: ``GET {base}/customers/balance``, whose ``*_micros``
fields hold cents (providers.md §1).
"""

from __future__ import annotations

import math
from typing import Any

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from ..model import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    AuthError,
    Balance,
    BadResponse,
    ProviderError,
    Task,
)
from ..text import clean, clean_or_none, clean_url
from .vocabulary import Vocabulary
from .base import Provider, Request, path_part

# Lower-cased, as ComfyUI's poller compares them (comfy_api_nodes/util/client.py:
# COMPLETED_STATUSES, FAILED_STATUSES, QUEUED_STATUSES), plus the running words of
# the Freepik enum (IN_PROGRESS) and of the other vendors behind the proxy.
VOCABULARY = Vocabulary({
    SUCCEEDED: ("succeeded", "succeed", "success", "completed", "finished", "done"),
    FAILED: ("fail", "failed", "error"),
    CANCELLED: ("cancelled", "canceled"),
    QUEUED: ("created", "queued", "queueing", "submitted"),
    RUNNING: ("in_progress", "processing", "running"),
})
BALANCE_FIELDS = ("effective_balance_micros", "amount_micros", "prepaid_balance_micros",
                  "cloud_credit_balance_micros")  # comfy-cli's order: the first non-zero wins


class TaskData(BaseModel):
    """``FreepikTaskData``: every field optional, extra fields kept."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    task_id: str | None = None
    # ComfyUI's TaskResponse: AliasChoices("status", "task_status")
    status: str | None = Field(None, validation_alias=AliasChoices("status", "task_status"))
    generated: list[Any] | None = None


class BalanceData(BaseModel):
    """``/customers/balance``.  Despite the names, the amounts are cents."""

    model_config = ConfigDict(extra="allow")

    amount_micros: float | None = None
    effective_balance_micros: float | None = None
    prepaid_balance_micros: float | None = None
    cloud_credit_balance_micros: float | None = None
    currency: str | None = None


class Comfy(Provider):
    name = "comfy"
    vocabulary = VOCABULARY
    default_base_url = "https://api.comfy.org"
    # Comfy documents no rate limit.  Its own client polls one task every 10 s;
    # 30 requests a minute keeps a dozen tasks moving without hammering it.
    default_rate_limit = "30/m"
    default_poll_interval = 10.0  # ComfyUI's relight node: poll_interval=10.0
    default_kind = "image-relight"
    has_balance = True

    def auth_headers(self) -> dict[str, str]:
        # Exactly one header, as ComfyUI's get_auth_header: an API key ("comfyui-...")
        # in X-API-KEY, anything else (a Firebase JWT) as a bearer token.
        if self.api_key.startswith("comfyui-"):
            return {"X-API-KEY": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}

    # The Magnific paths ComfyUI's nodes create and poll on (nodes_magnific.py);
    # skin-enhancer creates on .../skin-enhancer/<mode> but polls .../skin-enhancer/{id}.
    known_kinds = ("image-relight", "image-style-transfer", "image-upscaler", "image-upscaler-precision-v2",
                   "skin-enhancer")
    poll_kinds = {f"skin-enhancer/{mode}": "skin-enhancer" for mode in ("creative", "faithful", "flexible")}

    def status_request(self, task_id: str, kind: str | None = None) -> Request:
        kind = (self.poll_kind(kind or self.default_kind) or "").strip().strip("/")
        path = (f"/proxy/freepik/v1/ai/{path_part(kind, 'kind', keep_slash=True, provider=self.name)}"
                f"/{path_part(task_id, 'task id', provider=self.name)}")
        return self.request("GET", path)

    def read_status(self, task_id: str, kind: str | None, data: Any, response: httpx.Response) -> Task:
        if not isinstance(data, dict):
            raise BadResponse(f"expected a JSON object, got {type(data).__name__}",
                              status=response.status_code)
        body = data.get("data") if isinstance(data.get("data"), dict) else data
        item = TaskData.model_validate(body)
        if item.status is None:
            raise BadResponse("answer has no task status", status=response.status_code)
        status = clean(item.status, 80)
        state = VOCABULARY.state(status)
        results = [url for url in map(clean_url, item.generated or []) if url]
        error = None
        if state == FAILED:
            extra = item.model_extra or {}
            error = clean_or_none(extra.get("error") or extra.get("message"), 1000)
        return self.task(task_id, kind, state=state, provider_status=status or None,
                         results=results, error=error, details=VOCABULARY.details(self.name, status), raw=data)

    def balance_request(self) -> Request:
        return self.request("GET", "/customers/balance")

    def read_balance(self, data: Any, response: httpx.Response) -> Balance:
        if not isinstance(data, dict):
            raise BadResponse("balance answer is not a JSON object", status=response.status_code)
        item = BalanceData.model_validate(data)
        # comfy-cli (cloud/billing.py): the first NON-ZERO of BALANCE_FIELDS, so a zero
        # effective balance cannot hide a positive prepaid one; 0 only when all are 0.
        amounts = [v for v in (getattr(item, name) for name in BALANCE_FIELDS)
                   if v is not None and math.isfinite(v)]
        if not amounts:
            raise BadResponse("balance answer has no amount", status=response.status_code)
        cents = next((v for v in amounts if v != 0), 0.0)
        unit = clean(item.currency or "usd", 10).lower() or "usd"
        return Balance(provider=self.name, remaining=cents / 100, unit=unit, raw=data)

    def error_for(self, response: httpx.Response, data: Any) -> ProviderError:
        """The base's classes, except 409: ComfyUI says "There is a problem with your
        account", so polling stops (as for a refused key) and says why."""
        exc = super().error_for(response, data)
        if response.status_code == 409:
            return AuthError(f"problem with your account (HTTP 409): {exc.message}",
                             status=409, provider=self.name, code=exc.code)
        return exc


