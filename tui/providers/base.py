"""What every provider module shares: the request shape, the HTTP call, and the
classification of answers into a ``Task`` or one typed ``ProviderError``.

A provider module knows its API and nothing else: no scheduling, no UI, no
store.  It subclasses ``Provider`` and fills in three things per endpoint:
the request (``status_request``), and the reading of a 2xx answer
(``read_status``).  Errors are classified here, by HTTP status, from the
message the provider's ``error_message`` pulls out of its own error shape.

Every public ``parse_*`` / ``fetch_*`` ends in a value or a ``ProviderError``;
nothing else escapes (a provider's pydantic ValidationError, a KeyError of a
wrong shape, invalid UTF-8 ... all become ``BadResponse``).
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from ..model import (
    AuthError,
    Balance,
    BadResponse,
    ClientError,
    NotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Task,
    Transient,
)
from ..text import clean

USER_AGENT = "tasktui"
_HEADER_SAFE = re.compile(r"[\x21-\x7e]*")  # what an API key may hold to travel in a header


@dataclass(slots=True)
class Request:
    """One HTTP request, as data (so tests can assert on it without a network)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None

    def __repr__(self) -> str:  # never show header values: they hold the key
        return f"Request({self.method} {self.url})"


class Provider:
    """Base class of the five provider clients."""

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str | None] = None
    default_rate_limit: ClassVar[str] = "60/m"  # conservative when the docs are silent
    default_poll_interval: ClassVar[float] = 5.0
    default_kind: ClassVar[str | None] = None
    has_list: ClassVar[bool] = False  # one request answers for every task of a kind
    has_balance: ClassVar[bool] = False

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        base = base_url or self.default_base_url
        if not base:
            raise ValueError(f"{self.name}: base_url is required (the provider documents none)")
        self.api_key = api_key
        self.base_url = base.rstrip("/")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    # ------------------------------------------------------------ to override

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def status_request(self, task_id: str, kind: str | None = None) -> Request:
        raise NotImplementedError

    def read_status(self, task_id: str, kind: str | None, data: Any, response: httpx.Response) -> Task:
        """Map a decoded 2xx answer to a Task (may raise ProviderError)."""
        raise NotImplementedError

    def list_request(self, kind: str | None = None) -> Request:
        raise NotImplementedError(f"{self.name} has no list endpoint")

    def read_list(self, kind: str | None, data: Any, response: httpx.Response) -> list[Task]:
        raise NotImplementedError

    def balance_request(self) -> Request:
        raise NotImplementedError(f"{self.name} has no balance endpoint")

    def read_balance(self, data: Any, response: httpx.Response) -> Balance:
        raise NotImplementedError

    def error_message(self, data: Any) -> tuple[str | None, str | None]:
        """(message, code) from this provider's error body; data may be anything."""
        return generic_error_message(data)

    def read_error_body(self, task_id: str | None, kind: str | None, data: Any,
                        response: httpx.Response) -> Task | None:
        """A non-2xx answer that still describes the task (Qolaba's 500). Default: none."""
        return None

    # ---- kinds and hints
    # What a provider declares about its kinds (the path part a task is polled
    # on) and about tasks that go quiet.  The engine and the CLI read these;
    # nothing here makes a request.

    known_kinds: ClassVar[tuple[str, ...]] = ()  # poll kinds the provider documents; () = kinds unused
    poll_kinds: ClassVar[dict[str, str]] = {}  # create path -> poll path, where they differ
    daily_limits: ClassVar[dict[str, int]] = {}  # poll kind -> documented requests per day
    stall_after: ClassVar[float] = 1800.0  # seconds without a change before a task may be lost

    def poll_kind(self, kind: str | None) -> str | None:
        """The kind a task is polled on: a create path mapped to its poll path
        (``skin-enhancer/faithful`` -> ``skin-enhancer``); any other kind as given."""
        if kind is None:
            return None
        return self.poll_kinds.get(kind.strip().strip("/"), kind)

    def is_known_kind(self, kind: str) -> bool:
        """Whether ``kind`` (a create or poll path) is one the provider documents."""
        kind = kind.strip().strip("/")
        return kind in self.poll_kinds or kind in self.known_kinds

    def check_kind(self, kind: str | None) -> str | None:
        """A one-line warning when ``kind`` is not one the provider documents (or
        cannot be a path at all); None when it is fine or kinds are unused.  An
        unknown kind still works: it is polled as given."""
        if kind is None or not self.known_kinds:
            return None
        try:
            path_part(kind.strip().strip("/"), "kind", keep_slash=True, provider=self.name)
        except ClientError as exc:
            return exc.message
        if self.is_known_kind(kind):
            return None
        return f"unknown kind {clean(kind, 80)!r} for {self.name}; known: {', '.join(self.known_kinds)}"

    def status_path(self, task_id: str, kind: str | None = None) -> str:
        """The path a status request for this task goes to (for messages)."""
        try:
            url = self.status_request(task_id, kind or self.default_kind).url
        except ProviderError as exc:
            return f"(no request: {exc.message})"
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    def stall_hint(self, task: Task) -> str | None:
        """A provider-specific reason a quiet task may be lost, or None."""
        return None

    # ------------------------------------------------------------ helpers

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def request(self, method: str, path: str, body: Any = None) -> Request:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self.auth_headers()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return Request(method, self.url(path), headers, body)

    def task(self, task_id: str, kind: str | None, **values: Any) -> Task:
        return Task(provider=self.name, task_id=task_id, kind=kind, updated_at=time.time(), **values)

    # ------------------------------------------------------------ parsing

    def parse_status(self, task_id: str, kind: str | None, response: httpx.Response) -> Task:
        kind = kind or self.default_kind
        return self.scrub_task(self._guard(lambda data: self.read_status(task_id, kind, data, response),
                                           response, task_id=task_id, kind=kind))

    def parse_list(self, kind: str | None, response: httpx.Response) -> list[Task]:
        kind = kind or self.default_kind
        tasks = self._guard(lambda data: self.read_list(kind, data, response), response)
        return [self.scrub_task(t) for t in tasks]

    def parse_balance(self, response: httpx.Response) -> Balance:
        return self._guard(lambda data: self.read_balance(data, response), response)

    def _guard(self, read, response: httpx.Response, task_id: str | None = None,
               kind: str | None = None):
        try:
            data = decode_json(response, self.name) if response.content else None
        except BadResponse as exc:
            if 200 <= response.status_code < 300:
                raise self.scrub(exc) from None
            data = None  # an HTML 502 page etc.: classify by status below
        try:
            if not 200 <= response.status_code < 300:
                task = self.read_error_body(task_id, kind, data, response)
                if task is not None:
                    return task
                raise self.error_for(response, data)
            if data is None:
                raise BadResponse("empty body", status=response.status_code, provider=self.name)
            return read(data)
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            if exc.status is None:
                exc.status = response.status_code
            raise self.scrub(exc)
        except Exception as exc:  # wrong shape: pydantic, KeyError, TypeError ...
            raise self.scrub(BadResponse(f"unexpected answer shape ({type(exc).__name__}: {clean(exc, 200)})",
                                         status=response.status_code, provider=self.name)) from None

    def scrub(self, exc: ProviderError) -> ProviderError:
        """Blank our API key out of an error's text (a server may echo it back)."""
        key = self.api_key
        if key and len(key) >= 4:
            exc.message = exc.message.replace(key, "***")
            exc.args = (exc.message,)
            if exc.code:
                exc.code = exc.code.replace(key, "***")
        return exc

    def scrub_task(self, task: Task) -> Task:
        """Blank our API key out of everything a task answer carries (text fields
        and the raw answer, which the store keeps), in case a server echoed it."""
        key = self.api_key
        if not key or len(key) < 4:
            return task
        for name in ("error", "model", "provider_status", "kind"):
            value = getattr(task, name)
            if isinstance(value, str) and key in value:
                setattr(task, name, value.replace(key, "***"))
        if any(key in url for url in task.results):
            task.results = [url.replace(key, "***") for url in task.results]
        task.raw = _scrub_value(task.raw, key)
        return task

    def error_for(self, response: httpx.Response, data: Any) -> ProviderError:
        """The typed error for a non-2xx answer, with the provider's own message."""
        status = response.status_code
        message, code = self.error_message(data)
        if not message:
            message = describe_body(response)
        message = clean(message, 500)
        wait = retry_after(response.headers.get("retry-after"), message, data)
        kw = dict(status=status, provider=self.name, code=code)
        if status in (401, 403):
            return AuthError(message, **kw)
        if status == 402:
            return QuotaExhausted(message, **kw)
        if status == 404:
            return NotFound(message, **kw)
        if status == 429:
            return RateLimited(message, retry_after=wait, **kw)
        if status >= 500 or status == 408:
            return Transient(message, retry_after=wait, **kw)
        return ClientError(message, **kw)

    # ------------------------------------------------------------ HTTP

    async def send(self, client: httpx.AsyncClient, request: Request) -> httpx.Response:
        """Send and read the whole body; network faults become ``Transient``."""
        if not _HEADER_SAFE.fullmatch(self.api_key or ""):  # httpx's error would echo the key
            raise AuthError("the API key holds characters an HTTP header cannot carry",
                            provider=self.name)
        try:
            return await client.request(request.method, request.url, headers=request.headers,
                                        json=request.json)
        except (UnicodeEncodeError, httpx.LocalProtocolError):  # its message echoes the headers
            raise ClientError("the request could not be sent (invalid characters)",
                              provider=self.name) from None
        except httpx.TimeoutException as exc:
            raise Transient(f"timed out ({type(exc).__name__})", provider=self.name) from None
        except httpx.HTTPError as exc:  # connect errors, resets, protocol errors, decoding
            raise self.scrub(Transient(f"network error: {type(exc).__name__}: {clean(exc, 200)}",
                                       provider=self.name)) from None
        except OSError as exc:
            raise self.scrub(Transient(f"network error: {clean(exc, 200)}", provider=self.name)) from None

    async def fetch_status(self, client: httpx.AsyncClient, task_id: str,
                           kind: str | None = None) -> Task:
        response = await self.send(client, self.status_request(task_id, kind or self.default_kind))
        return self.parse_status(task_id, kind, response)

    async def fetch_list(self, client: httpx.AsyncClient, kind: str | None = None) -> list[Task]:
        response = await self.send(client, self.list_request(kind or self.default_kind))
        return self.parse_list(kind, response)

    async def fetch_balance(self, client: httpx.AsyncClient) -> Balance:
        response = await self.send(client, self.balance_request())
        return self.parse_balance(response)


# ---------------------------------------------------------------- shared helpers


def _scrub_value(value: Any, key: str, depth: int = 0) -> Any:
    """``value`` (decoded JSON) with ``key`` blanked out of every string in it."""
    if isinstance(value, str):
        return value.replace(key, "***") if key in value else value
    if depth > 64:  # kept for display only: cut, rather than walk it (and keep a key deep inside)
        return "… (nested too deep)"
    if isinstance(value, dict):
        return {_scrub_value(k, key, depth + 1): _scrub_value(v, key, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v, key, depth + 1) for v in value]
    return value


def decode_json(response: httpx.Response, provider: str = "") -> Any:
    """The body as JSON, or ``BadResponse`` saying what it was instead."""
    body = response.content
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadResponse("answer is not valid UTF-8", status=response.status_code,
                          provider=provider) from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadResponse(f"answer is not JSON: {describe_body(response)}",
                          status=response.status_code, provider=provider) from None


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)


def describe_body(response: httpx.Response) -> str:
    """A short human description of a body we could not use."""
    body = response.content
    if not body:
        return f"empty answer (HTTP {response.status_code})"
    text = body[:2000].decode("utf-8", "replace")
    ctype = response.headers.get("content-type", "")
    if "html" in ctype or text.lstrip()[:1] == "<":
        m = _TITLE.search(text)
        title = clean(m.group(1), 120) if m else ""
        return f"HTML page (HTTP {response.status_code}){': ' + title if title else ''}"
    return clean(text, 200) or f"HTTP {response.status_code}"


def generic_error_message(data: Any) -> tuple[str | None, str | None]:
    """Messages in the shapes the five providers use:
    ``{message}``, ``{error, message}``, ``{error: {message, type, code}}``, a bare string."""
    if isinstance(data, str):
        return clean(data, 500) or None, None
    if not isinstance(data, dict):
        return None, None
    err = data.get("error")
    if isinstance(err, dict):
        msg = err.get("message")
        code = err.get("type") or err.get("code")
        return (clean(msg, 500) or None) if msg is not None else None, clean(code, 80) or None if code is not None else None
    msg = data.get("message")
    code = err if isinstance(err, (str, int)) else None
    if msg is None and isinstance(err, str):
        msg, code = err, None
    if isinstance(msg, (str, int, float)):
        return clean(msg, 500) or None, (clean(code, 80) or None) if code is not None else None
    return None, (clean(code, 80) or None) if code is not None else None


_WAIT = re.compile(
    r"(?:retry|try again)\s+(?:after|in)\s+(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?)?\b",
    re.I,
)
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_wait_text(text: str | None) -> float | None:
    """'retry after 60 seconds' / 'Try again in 1 hour' -> seconds."""
    if not text:
        return None
    m = _WAIT.search(text)
    if not m:
        return None
    unit = (m.group(2) or "s")[0].lower()
    return float(m.group(1)) * _UNITS.get(unit, 1)


def retry_after(header: str | None, message: str | None = None, data: Any = None) -> float | None:
    """Seconds to wait: the Retry-After header (seconds or HTTP date), else a
    suggestion in the body (EvoLink ``fallback_suggestion``, Upscayl's message)."""
    if header:
        header = header.strip()
        try:
            seconds = float(header)
            if math.isfinite(seconds):  # "inf" / "nan" are no answer
                return max(0.0, seconds)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    texts: list[str] = []
    if isinstance(data, dict):
        err = data.get("error")
        for source in (err if isinstance(err, dict) else {}, data):
            value = source.get("fallback_suggestion")
            if isinstance(value, str):
                texts.append(value)
    if message:
        texts.append(message)
    for text in texts:
        wait = parse_wait_text(text)
        if wait is not None:
            return wait
    return None


# ---------------------------------------------------------------- path parts


def path_part(value: str, what: str, keep_slash: bool = False, provider: str | None = None) -> str:
    """``value`` percent-encoded for one URL path segment (or several, with
    ``keep_slash``).  An empty value, or a ``.``/``..``/empty segment, is refused
    with a ``ClientError``: httpx would resolve it to another endpoint."""
    value = str(value)
    segments = value.split("/") if keep_slash else [value]
    if not value or any(s in ("", ".", "..") for s in segments):
        raise ClientError(f"invalid {what}: {clean(value, 80)!r}", provider=provider)
    return quote(value, safe="/" if keep_slash else "")
