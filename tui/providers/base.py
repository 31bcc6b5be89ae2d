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

import asyncio
import email.utils
import json
import math
import re
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
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
from ..redact import has_secret, redact, redact_value
from ..text import clean

USER_AGENT = "tasktui"
DEADLINE = 30.0  # seconds a whole request may take (headers and body), unless the engine says
MAX_BODY = 4 * 1024 * 1024  # bytes of a decoded answer we read, unless the engine says
MAX_RESULTS = 100  # result links kept per task (the first ones, duplicates dropped)
MAX_LIST = 10_000  # rows of one list answer read
MAX_RETRY_AFTER = 86400.0  # the longest wait a provider may ask for (the engine caps further)
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


class Provider(ABC):
    """Base class of every provider client (the five, and declared ones).

    An abstract base: a subclass that leaves out ``status_request`` or
    ``read_status`` cannot be created (``TypeError`` at instantiation), and one
    that says ``has_list`` / ``has_balance`` without the two methods that serve
    it fails when the class is defined (``__init_subclass__``)."""

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str | None] = None
    default_rate_limit: ClassVar[str] = "60/m"  # conservative when the docs are silent
    default_poll_interval: ClassVar[float] = 5.0
    default_kind: ClassVar[str | None] = None
    has_list: ClassVar[bool] = False  # one request answers for every task of a kind
    has_balance: ClassVar[bool] = False
    # Set per instance by whoever builds the provider (the engine, from the config):
    deadline: float = DEADLINE  # overall limit of one request, headers and body (seconds)
    max_body: int = MAX_BODY  # decoded answer size limit (bytes)
    list_cut: int = 0  # rows the last list answer held beyond MAX_LIST (dropped)

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        base = base_url or self.default_base_url
        if not base:
            raise ValueError(f"{self.name}: base_url is required (the provider documents none)")
        self.api_key = api_key
        self.base_url = base.rstrip("/")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    # What a capability flag needs defined: a class that claims a list or a
    # balance endpoint and does not say how to ask and read it is refused when
    # it is defined, not at its first round.
    _CAPABILITIES: ClassVar[dict[str, tuple[str, ...]]] = {
        "has_list": ("list_request", "read_list"),
        "has_balance": ("balance_request", "read_balance"),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for flag, methods in Provider._CAPABILITIES.items():
            if not getattr(cls, flag, False):
                continue
            missing = [m for m in methods if getattr(cls, m) is getattr(Provider, m)]
            if missing:
                raise TypeError(f"{cls.__name__} sets {flag} but does not define {', '.join(missing)}")

    # ------------------------------------------------------------ to override

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @abstractmethod
    def status_request(self, task_id: str, kind: str | None = None) -> Request:
        """The request that asks for one task's status."""

    @abstractmethod
    def read_status(self, task_id: str, kind: str | None, data: Any, response: httpx.Response) -> Task:
        """Map a decoded 2xx answer to a Task (may raise ProviderError)."""

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
        """A Task of this provider; its results lose duplicates and are cut to
        MAX_RESULTS (a note in ``details`` says how many there were)."""
        results = values.get("results")
        if results:
            unique = list(dict.fromkeys(results))  # linear, first occurrence kept
            if len(unique) > MAX_RESULTS:
                details = dict(values.get("details") or {})
                details["results"] = f"first {MAX_RESULTS} of {len(unique)} links kept"
                values["details"] = details
                unique = unique[:MAX_RESULTS]
            values["results"] = unique
        credits = values.get("credits")
        if credits is not None and not (isinstance(credits, (int, float)) and math.isfinite(credits) and credits >= 0):
            values["credits"] = None  # a cost below zero or past a float is no cost (it would skew every total)
            details = dict(values.get("details") or {})
            details["credits"] = f"provider said {str(credits)[:40]}: not counted"
            values["details"] = details
        return Task(provider=self.name, task_id=task_id, kind=kind, updated_at=time.time(), **values)

    # ------------------------------------------------------------ parsing

    def parse_status(self, task_id: str, kind: str | None, response: httpx.Response) -> Task:
        kind = kind or self.default_kind
        return self.scrub_task(self._guard(lambda data: self.read_status(task_id, kind, data, response),
                                           response, task_id=task_id, kind=kind))

    def parse_list(self, kind: str | None, response: httpx.Response) -> list[Task]:
        """At most MAX_LIST rows are read (``list_cut`` says how many more there were)."""
        kind = kind or self.default_kind
        self.list_cut = 0

        def read(data: Any) -> list[Task]:
            data, self.list_cut = cap_rows(data, MAX_LIST)
            return self.read_list(kind, data, response)

        tasks = self._guard(read, response)
        if len(tasks) > MAX_LIST:
            self.list_cut += len(tasks) - MAX_LIST
            tasks = tasks[:MAX_LIST]
        # an id that holds our key (echoed) is no task of ours: never stored, never polled
        return [self.scrub_task(t) for t in tasks if not has_secret(t.task_id, self.api_key)]

    def parse_balance(self, response: httpx.Response) -> Balance:
        balance = self._guard(lambda data: self.read_balance(data, response), response)
        key = self.api_key
        balance.raw = redact_value(balance.raw, key)
        balance.unit = redact(balance.unit, key)
        if balance.note is not None:
            balance.note = redact(balance.note, key)
        return balance

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
        """Mask our API key, in every form ``tui.redact`` knows, out of an error's
        text (a server may echo it back, altered)."""
        key = self.api_key
        exc.message = redact(exc.message, key)
        exc.args = (exc.message,)
        if exc.code:
            exc.code = redact(exc.code, key)
        return exc

    def scrub_task(self, task: Task) -> Task:
        """Mask our API key out of everything a task answer carries (text fields,
        results, details and the raw answer, which the store keeps), in case a
        server echoed it.  ``provider`` and ``task_id`` are ours, not the server's."""
        key = self.api_key
        if not key:
            return task
        for f in fields(Task):
            if f.name in ("provider", "task_id"):
                continue
            value = getattr(task, f.name)
            if isinstance(value, (str, list, dict)) or f.name == "raw":
                setattr(task, f.name, redact_value(value, key) if not isinstance(value, str)
                        else redact(value, key))
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

    async def send(self, client: httpx.AsyncClient, request: Request,
                   deadline: float | None = None) -> httpx.Response:
        """Send and read the whole body, within ``deadline`` seconds overall
        (default ``self.deadline``: headers, a trickled body and an endless stream
        all end there) and ``self.max_body`` decoded bytes.  Network faults and the
        deadline become ``Transient``; a bigger answer is ``BadResponse``.  The
        response returned holds the decoded body (``content``)."""
        if not _HEADER_SAFE.fullmatch(self.api_key or ""):  # httpx's error would echo the key
            raise AuthError("the API key holds characters an HTTP header cannot carry",
                            provider=self.name)
        limit = self.deadline if deadline is None else deadline
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < limit < math.inf:
            limit = DEADLINE  # never no deadline: a bad value gets the default
        timer = asyncio.timeout(limit)
        try:
            async with timer:
                return await self._exchange(client, request)
        except TimeoutError:
            if not timer.expired():
                raise
            raise Transient(f"timed out after {limit:g}s (overall deadline)", provider=self.name) from None

    async def _exchange(self, client: httpx.AsyncClient, request: Request) -> httpx.Response:
        try:
            async with client.stream(request.method, request.url, headers=request.headers,
                                     json=request.json) as response:
                body = await self._read_body(response)
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            raise self.scrub(exc) from None
        except (UnicodeEncodeError, httpx.LocalProtocolError):  # its message echoes the headers
            raise ClientError("the request could not be sent (invalid characters)",
                              provider=self.name) from None
        except httpx.TimeoutException as exc:
            raise Transient(f"timed out ({type(exc).__name__})", provider=self.name) from None
        except httpx.HTTPError as exc:  # connect errors, resets, protocol errors
            raise self.scrub(Transient(f"network error: {type(exc).__name__}: {clean(exc, 200)}",
                                       provider=self.name)) from None
        except OSError as exc:
            raise self.scrub(Transient(f"network error: {clean(exc, 200)}", provider=self.name)) from None
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
        extensions = {k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")}
        return httpx.Response(response.status_code, headers=headers, content=body,
                              request=response.request, extensions=extensions)

    async def _read_body(self, response: httpx.Response) -> bytes:
        """The decoded body, read as it arrives; stops past ``max_body`` decoded bytes
        (a gzip answer is inflated by at most that much, never all at once)."""
        limit = self.max_body
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            limit = MAX_BODY  # never no cap: a bad value gets the default
        status = response.status_code

        def too_big() -> BadResponse:
            return BadResponse(f"answer larger than {size_text(limit)}", status=status, provider=self.name)

        codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in _INFLATERS):
            raise BadResponse(f"answer in an encoding we did not ask for: {clean(', '.join(codings), 60)}",
                              status=status, provider=self.name)
        declared = response.headers.get("content-length", "")
        if not codings and declared.isdigit() and int(declared) > limit:
            raise too_big()
        inflater = Inflater(codings[0]) if codings else None
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            for data in inflater.feed(raw, limit - size + 1) if inflater else (raw,):
                size += len(data)
                if size > limit:
                    raise too_big()
                chunks.append(data)
        if inflater:
            data = inflater.end()
            size += len(data)
            if size > limit:
                raise too_big()
            chunks.append(data)
        return b"".join(chunks)

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


_BODY_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


def size_text(n: int) -> str:
    """4194304 -> "4 MiB", 2000 -> "2000 bytes"."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


_INFLATERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Inflater:
    """Content-Encoding gzip or deflate (zlib-wrapped or raw, as httpx accepts),
    inflating at most ``room`` bytes per ``feed`` so a bomb never expands past
    the caller's limit."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self.wbits = _INFLATERS[coding]
        self.obj = zlib.decompressobj(self.wbits)
        self.started = False

    STEP = 256 * 1024  # bytes inflated at a time

    def feed(self, data: bytes, room: int) -> list[bytes]:
        """The next decoded pieces of ``data``, at most ``room`` bytes in all."""
        pieces: list[bytes] = []
        room = max(1, room)
        while True:
            try:
                out = self.obj.decompress(data, min(room, self.STEP))
            except zlib.error as exc:
                if self.coding == "deflate" and not self.started and self.wbits > 0:  # raw deflate
                    self.wbits = -zlib.MAX_WBITS
                    self.obj = zlib.decompressobj(self.wbits)
                    continue
                raise BadResponse(f"answer could not be decoded ({self.coding}: {clean(exc, 80)})") from None
            self.started = True
            pieces.append(out)
            room -= len(out)
            data = self.obj.unconsumed_tail
            if not data or room <= 0:
                return pieces

    def end(self) -> bytes:
        try:
            return self.obj.flush()
        except zlib.error as exc:
            raise BadResponse(f"answer could not be decoded ({self.coding}: {clean(exc, 80)})") from None


def cap_rows(data: Any, limit: int) -> tuple[Any, int]:
    """A list answer (a bare list, or ``{data: [...]}``) cut to ``limit`` rows,
    and how many rows were dropped."""
    if isinstance(data, list) and len(data) > limit:
        return data[:limit], len(data) - limit
    if isinstance(data, dict) and isinstance(data.get("data"), list) and len(data["data"]) > limit:
        return {**data, "data": data["data"][:limit]}, len(data["data"]) - limit
    return data, 0


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
    return cap_wait(float(m.group(1)) * _UNITS.get(unit, 1))


def cap_wait(seconds: float) -> float:
    """A wait a provider asked for, within 0 .. MAX_RETRY_AFTER (NaN: 0)."""
    if seconds != seconds:  # NaN
        return 0.0
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def retry_after(header: str | None, message: str | None = None, data: Any = None) -> float | None:
    """Seconds to wait: the Retry-After header (seconds or HTTP date), else a
    suggestion in the body (EvoLink ``fallback_suggestion``, Upscayl's message).
    Never more than MAX_RETRY_AFTER (a day): ``1e12`` or a date in year 9999 is a day."""
    if header:
        header = header.strip()[:200]
        try:
            seconds = float(header)
            if math.isfinite(seconds):  # "inf" / "nan" are no answer
                return cap_wait(seconds)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
                wait = when.timestamp() - time.time() if when is not None else None
            except (TypeError, ValueError, IndexError, OverflowError, OSError):
                wait = None
            if wait is not None:
                return cap_wait(wait)
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
