"""Push instead of poll: an HTTP receiver for provider webhooks (issue 18).

Routes, under a configurable prefix (``--path-prefix``, default none)::

    POST {prefix}/hooks/freepik            Freepik webhooks, signed
    POST {prefix}/hooks/freepik/{kind}     the same; ``kind`` is the poll kind of a task
                                           this URL was given to (used for discovery)
    POST {prefix}/hooks/evolink/{token}    EvoLink callbacks, unsigned: the path carries
                                           a per-install random token

Freepik (docs.freepik.com/webhooks, the Standard Webhooks scheme): every delivery
carries ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``, a
space-separated list of ``v<N>,<base64>`` entries, each base64(HMAC-SHA256(secret,
"{id}.{timestamp}.{raw body}")).  Freepik's page says to "encode the secret key as
bytes"; the Standard Webhooks libraries take a ``whsec_`` secret and base64-decode
the rest.  Both forms of a configured secret are tried.  A delivery is accepted
when one entry matches (constant-time compare), its timestamp is within
``TOLERANCE`` of our clock, and its id was not seen before.  The body ("the same as
the corresponding GET endpoint response, but without the ``data`` field") is read
by ``Freepik.parse_webhook`` and written to the store BEFORE the 2xx answer, so a
crash before the write leaves the delivery unanswered and the provider retries it.
A status older than the stored one (an IN_PROGRESS arriving after COMPLETED) never
moves a task back.  A valid delivery for an untracked task adds it, labelled
``webhook`` (unless the user removed it).

EvoLink (providers.md §5): a callback is a hint, never the truth.  Accepted only
for tracked, unfinished task ids; it calls ``on_push(key)`` (a push came: push
works) then ``on_hint(key)`` so the engine polls that task now (one request), and
answers 202.  A wrong token is 404; an untracked
or finished task is 200 and nothing happens.

Every route: bodies over ``MAX_BODY`` are 413, more than ``rate`` requests per
second per source (burst ``burst``) is 429.  No header value, signature, secret or
token is ever logged.  Counts of what arrived and why it was refused are kept in
the provider's counters blob in the store, under the key ``"push"``, with
``polls_saved``: signed updates that told something the store did not know (each
one a status request the engine did not need; a lower bound, since the engine
also polls a push-fed task only as a safety net).  A task a signed update was
stored for carries ``details["pushed_at"]`` (epoch seconds): the engine polls it
only as a safety net.

This module imports nothing heavy at import time: ``add_parser`` is cheap for the CLI.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets as _secrets
import stat
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable

from .model import NOT_FOUND, QUEUED, RUNNING, TERMINAL, UNKNOWN, Task

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes of one delivery read; more is 413
TOLERANCE = 300.0  # seconds a webhook-timestamp may be off our clock (either way)
SEEN_IDS = 10_000  # webhook-ids remembered for de-duplication
RATE = 20.0  # requests per second per source, on average ...
BURST = 100.0  # ... with bursts up to this many (a batch of tasks ending at once)
SOURCES = 4096  # sources whose rate is tracked at once (least recent forgotten)
HINT_GAP = 5.0  # seconds: repeated callbacks for one task within this make one hint
FLUSH_EVERY = 5.0  # seconds between writes of the counters of refused requests
PUSH_KEY = "push"  # key of the push counters in a provider's counters blob
PUSHED_AT = "pushed_at"  # details key of a task a signed push updated: epoch seconds, as text (the engine's
#                          worker reads it: such a task is polled only as a safety net)
TOKEN_FILE = "push-token"  # next to the task database, mode 0600
DEFAULT_PORT = 8787
POLLS_AT_ONCE = 4  # a standalone listener's polls of hinted tasks in flight at once
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_PREFIX_RE = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")
_VERSION_RE = re.compile(r"^v[0-9]+$")
_KIND_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")

# What a counter may be named (``rejected`` holds the refusals).
REJECTIONS = ("bad_signature", "stale", "unknown_task", "too_large", "rate", "bad_payload", "unknown_token")


# ---------------------------------------------------------------- signatures


def secret_keys(secret: str) -> list[bytes]:
    """The HMAC keys one configured secret stands for: its bytes as written (Freepik's
    page: "encode the secret key as bytes") and, for a ``whsec_`` secret, the base64
    after the prefix (the Standard Webhooks libraries)."""
    secret = secret.strip()
    if not secret:
        return []
    keys = [secret.encode()]
    if secret.startswith("whsec_"):
        try:
            keys.append(base64.b64decode(secret[len("whsec_"):], validate=True))
        except (binascii.Error, ValueError):
            pass
    return keys


def sign(secret: str | bytes, msg_id: str, timestamp: str | int, body: bytes) -> str:
    """``v1,<base64>`` for one delivery, with ``secret`` used as given (bytes) or as
    its UTF-8 bytes (str).  For tests and the simulator."""
    key = secret if isinstance(secret, bytes) else secret.encode()
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_signature(secrets: Iterable[str], msg_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether one ``v<N>,<base64>`` entry of ``header`` is the HMAC of this delivery
    under one of ``secrets`` (constant-time compare of the digests)."""
    given: list[bytes] = []
    for entry in header.split()[:16]:  # a few keys in rotation, not thousands
        version, _, value = entry.partition(",")
        if not _VERSION_RE.match(version) or not value:
            continue
        try:
            given.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not given:
        return False
    content = f"{msg_id}.{timestamp}.".encode() + body
    ok = False
    for secret in secrets:
        for key in secret_keys(secret):
            expected = hmac.new(key, content, hashlib.sha256).digest()
            for sig in given:
                ok |= hmac.compare_digest(expected, sig)  # no early exit
    return ok


# ---------------------------------------------------------------- bounded memories


class SeenIds:
    """webhook-ids already handled, forgotten after ``ttl`` seconds or beyond ``limit``."""

    def __init__(self, limit: int = SEEN_IDS, ttl: float = 2 * TOLERANCE) -> None:
        self.limit, self.ttl = limit, ttl
        self._ids: OrderedDict[str, float] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._ids:
            when = next(iter(self._ids.values()))
            if now - when <= self.ttl and len(self._ids) <= self.limit:
                break
            self._ids.popitem(last=False)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._ids

    def add(self, msg_id: str, now: float) -> None:
        self._ids[msg_id] = now
        self._ids.move_to_end(msg_id)
        self._expire(now)

    def __len__(self) -> int:
        return len(self._ids)


class RateLimiter:
    """A token bucket per source (an IP), ``rate`` per second up to ``burst``;
    at most ``limit`` sources tracked (the least recent forgotten)."""

    def __init__(self, rate: float = RATE, burst: float = BURST, limit: int = SOURCES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.limit, self.clock = rate, burst, limit, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, source: str) -> bool:
        now = self.clock()
        tokens, last = self._buckets.pop(source, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        ok = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if ok else tokens, now)
        while len(self._buckets) > self.limit:
            self._buckets.popitem(last=False)
        return ok

    def wait(self, source: str) -> float:
        """Seconds until ``source`` may send again (for Retry-After)."""
        tokens, _ = self._buckets.get(source, (self.burst, 0.0))
        return max(0.0, (1.0 - tokens) / self.rate) if self.rate > 0 else 60.0


# ---------------------------------------------------------------- order


def _rank(state: str) -> int:
    """How far along a state is: a push never moves a task to a lower rank."""
    if state in (UNKNOWN, NOT_FOUND):
        return 0
    if state == QUEUED:
        return 1
    if state == RUNNING:
        return 2
    return 3 if state in TERMINAL else 0


def moves_back(old: Task, new: Task) -> bool:
    """Whether ``new`` (a pushed status) would move ``old`` backwards: to an earlier
    state, or from one end to another (a task ends once)."""
    if _rank(new.state) < _rank(old.state):
        return True
    return old.state in TERMINAL and old.state != NOT_FOUND and new.state != old.state


def news(old: Task, new: Task) -> bool:
    """Whether a pushed status tells something the stored task does not: another
    state, progress or set of results (what a poll would have been needed for)."""
    return (new.state != old.state or new.progress != old.progress
            or list(new.results) != list(old.results) or new.provider_status != old.provider_status)


# ---------------------------------------------------------------- the receiver


def empty_counts() -> dict[str, Any]:
    return {"received": 0, "accepted": 0, "duplicate": 0, "out_of_order": 0, "discovered": 0,
            "hints": 0, "ignored": 0, "store_failed": 0, "polls_saved": 0, "last_at": None,
            "rejected": dict.fromkeys(REJECTIONS, 0)}


def _merge_counts(saved: Any) -> dict[str, Any]:
    """Counts saved by an earlier run, read defensively (the blob is shared)."""
    counts = empty_counts()
    if not isinstance(saved, dict):
        return counts
    for name, value in saved.items():
        if name == "rejected" and isinstance(value, dict):
            for why, n in value.items():
                if why in counts["rejected"] and isinstance(n, int) and n >= 0:
                    counts["rejected"][why] = n
        elif name == "last_at" and isinstance(value, (int, float)):
            counts["last_at"] = float(value)
        elif name in counts and isinstance(value, int) and value >= 0:
            counts[name] = value
    return counts


def _json(status: int, body: dict, headers: dict[str, str] | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


class PushReceiver:
    """The receiver: ``app`` is a Starlette application (serve it with uvicorn).

    ``providers``: name -> Provider client (``freepik``, ``evolink``; either may be
    missing: its route then does not exist).  ``secrets``: name -> the webhook
    secrets to accept (several during a rotation); Freepik's route exists only with
    one.  ``token``: the EvoLink path token.  ``on_hint(key)``: poll that task now.
    ``on_push(key)``: a signed update of that task was stored, or an EvoLink
    callback about it came (before its ``on_hint``): the engine may treat the task
    as fed by push, and knows pushes arrive.  Both hooks are called after the answer is decided and
    must not block; what they raise is logged, never answered.
    Use from the thread that owns ``store`` (the asyncio thread).
    """

    def __init__(self, store: Any, providers: dict[str, Any], *, secrets: dict[str, list[str]] | None = None,
                 token: str | None = None, on_hint: Callable[[str], Any] | None = None,
                 on_push: Callable[[str], Any] | None = None, path_prefix: str = "",
                 clock: Callable[[], float] = time.time, max_body: int = MAX_BODY,
                 tolerance: float = TOLERANCE, rate: float = RATE, burst: float = BURST,
                 hint_gap: float = HINT_GAP, flush_every: float = FLUSH_EVERY) -> None:
        self.store = store
        self.providers = dict(providers)
        self.secrets = {name: [s for s in values if s and s.strip()]
                        for name, values in (secrets or {}).items()}
        self.token = token
        self.on_hint = on_hint
        self.on_push = on_push
        self.prefix = normalize_prefix(path_prefix)
        self.clock = clock
        self.max_body = max_body
        self.tolerance = tolerance
        self.limiter = RateLimiter(rate, burst)
        self.seen = SeenIds(ttl=2 * tolerance)
        self.hint_gap = hint_gap
        self._hinted: OrderedDict[str, float] = OrderedDict()
        self.flush_every = flush_every
        self.dirty: set[str] = set()
        saved = self._stored_counters()
        self.counts: dict[str, dict[str, Any]] = {
            name: _merge_counts((saved.get(name) or {}).get(PUSH_KEY)) for name in ("freepik", "evolink")}
        self.app = self._build()

    # ------------------------------------------------------------ routes

    @property
    def routes(self) -> dict[str, str]:
        """provider -> the path its deliveries go to (EvoLink's with the token)."""
        out = {}
        if self.has_freepik:
            out["freepik"] = f"{self.prefix}/hooks/freepik"
        if self.has_evolink:
            out["evolink"] = f"{self.prefix}/hooks/evolink/{self.token}"
        return out

    @property
    def has_freepik(self) -> bool:
        return "freepik" in self.providers and bool(self.secrets.get("freepik"))

    @property
    def has_evolink(self) -> bool:
        return "evolink" in self.providers and bool(self.token)

    def _build(self):
        from contextlib import asynccontextmanager

        from starlette.applications import Starlette
        from starlette.routing import Route

        routes = []
        if self.has_freepik:
            routes += [Route(f"{self.prefix}/hooks/freepik", self.freepik, methods=["POST"]),
                       Route(f"{self.prefix}/hooks/freepik/{{kind:path}}", self.freepik, methods=["POST"])]
        if self.has_evolink:
            routes.append(Route(f"{self.prefix}/hooks/evolink/{{token}}", self.evolink, methods=["POST"]))

        @asynccontextmanager
        async def lifespan(app):
            task = asyncio.create_task(self._flush_loop())
            try:
                yield
            finally:
                task.cancel()
                self.flush()

        return Starlette(routes=routes, lifespan=lifespan)

    # ------------------------------------------------------------ counting

    def _count(self, provider: str, name: str, reason: str | None = None) -> None:
        counts = self.counts[provider]
        if name == "rejected":
            counts["rejected"][reason] = counts["rejected"].get(reason, 0) + 1
        else:
            counts[name] = counts.get(name, 0) + 1
        self.dirty.add(provider)

    def _stored_counters(self) -> dict[str, dict]:
        try:
            return self.store.counters() or {}
        except Exception:
            return {}

    def _blob(self, provider: str, counts: dict[str, Any]) -> dict[str, Any]:
        """The provider's whole counters blob (as stored) with our ``push`` key in it."""
        blob = dict(self._stored_counters().get(provider) or {})
        blob[PUSH_KEY] = counts
        return blob

    def flush(self) -> bool:
        """Write the counters that changed since the last write; False if the store refused."""
        ok = True
        for provider in sorted(self.dirty):
            try:
                self.store.apply([], counters={provider: self._blob(provider, self.counts[provider])})
            except Exception as exc:
                log.warning("push counters of %s not saved: %s", provider, _one_line(exc))
                ok = False
                continue
            self.dirty.discard(provider)
        return ok

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every)
            if self.dirty:
                self.flush()

    # ------------------------------------------------------------ common checks

    def _source(self, request: Any) -> str:
        return request.client.host if request.client else "?"

    async def _body(self, request: Any) -> bytes | None:
        """The raw body, or None when it is larger than ``max_body``."""
        length = request.headers.get("content-length")
        if length is not None:
            try:
                if int(length) > self.max_body:
                    return None
            except ValueError:
                return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _admit(self, provider: str, request: Any) -> tuple[Any, bytes | None]:
        """Rate and size checks: (refusal answer or None, body)."""
        source = self._source(request)
        self._count(provider, "received")
        if not self.limiter.allow(source):
            self._count(provider, "rejected", "rate")
            log.info("%s push refused: too many requests from %s", provider, source)
            wait = max(1, int(self.limiter.wait(source) + 0.999))
            return _json(429, {"error": "too many requests"}, {"Retry-After": str(wait)}), None
        body = await self._body(request)
        if body is None:
            self._count(provider, "rejected", "too_large")
            log.info("%s push refused: body over %d bytes from %s", provider, self.max_body, source)
            return _json(413, {"error": f"body over {self.max_body} bytes"}), None
        return None, body

    def _tracked(self, key: str) -> Task | None:
        """The stored task, as of now: another process (``tasktui add``, a poller) may
        have added or moved it since we last looked (one PRAGMA when nothing changed)."""
        try:
            self.store.sync()
        except Exception as exc:
            log.warning("task database not readable: %s", _one_line(exc))
        return self.store.get(key)

    def _tell(self, hook: Callable[[str], Any] | None, key: str) -> None:
        if hook is None:
            return
        try:
            result = hook(key)
            if asyncio.iscoroutine(result):
                asyncio.ensure_future(result)
        except Exception as exc:
            log.warning("push hook failed for %s: %s", key, _one_line(exc))

    # ------------------------------------------------------------ Freepik

    async def freepik(self, request: Any):
        provider = "freepik"
        refusal, body = await self._admit(provider, request)
        if refusal is not None:
            return refusal
        source = self._source(request)
        kind = request.path_params.get("kind") or None
        if kind is not None and (len(kind) > 200 or not _KIND_RE.match(kind)):
            return _json(404, {"error": "not found"})  # not a URL we hand out
        headers = request.headers
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        signature = headers.get("webhook-signature", "")
        if not (msg_id and stamp and signature) or len(msg_id) > 256 or not msg_id.isprintable():
            return self._refuse(provider, "bad_signature", source, 401, "missing or bad webhook headers")
        try:
            when = float(int(stamp.strip()))
        except ValueError:
            return self._refuse(provider, "bad_signature", source, 401, "bad webhook-timestamp")
        if abs(self.clock() - when) > self.tolerance:
            return self._refuse(provider, "stale", source, 401, "webhook-timestamp too far from now")
        if not verify_signature(self.secrets.get(provider, []), msg_id, stamp, body, signature):
            return self._refuse(provider, "bad_signature", source, 401, "signature does not match")
        now = self.clock()
        if msg_id in self.seen:
            self._count(provider, "duplicate")
            return _json(200, {"ok": True, "duplicate": True})
        # From here on no await: the check above and the record below see the same state.
        try:
            update = self.providers[provider].parse_webhook(body, kind)
        except Exception as exc:  # BadResponse; anything else is a bug, answered the same
            return self._refuse(provider, "bad_payload", source, 400, _one_line(getattr(exc, "message", exc)))
        key = update.key
        old = self._tracked(key)
        counts = _copy_counts(self.counts[provider])
        counts["last_at"] = now
        tasks: list[Task] = []
        outcome = "stored"
        marked = {**update.details, PUSHED_AT: f"{now:.3f}"}
        if old is None:
            tasks = [update.copy(label="webhook", kind=kind, updated_at=now, details=marked)]
            counts["discovered"] += 1
            counts["accepted"] += 1
            outcome = "added"
        elif moves_back(old, update):
            counts["out_of_order"] += 1
            outcome = "older than stored"
        else:
            tasks = [update.copy(kind=None, updated_at=now, details=marked)]  # the stored kind stays
            counts["accepted"] += 1
            if news(old, update):
                counts["polls_saved"] += 1  # a change the engine would have needed a status request to see
        try:
            self.store.apply(tasks, counters={provider: self._blob(provider, counts)}, discovered=old is None)
        except Exception as exc:  # StoreWriteError, StoreBusy ...: no 2xx, so the provider retries
            self._count(provider, "store_failed")
            log.warning("freepik push for %s not stored: %s", key, _one_line(exc))
            return _json(503, {"error": "not stored, retry later"}, {"Retry-After": "5"})
        self.counts[provider] = counts
        self.dirty.discard(provider)
        self.seen.add(msg_id, now)
        if old is None and self.store.get(key) is None:
            outcome = "ignored (removed by the user)"
        log.info("freepik push %s: %s -> %s", key, update.provider_status, outcome)
        if tasks and self.store.get(key) is not None:
            self._tell(self.on_push, key)
        return _json(200, {"ok": True, "task": update.task_id, "result": outcome})

    def _refuse(self, provider: str, why: str, source: str, status: int, text: str):
        self._count(provider, "rejected", why)
        log.info("%s push refused (%s) from %s", provider, why.replace("_", " "), source)
        return _json(status, {"error": text})

    # ------------------------------------------------------------ EvoLink

    async def evolink(self, request: Any):
        provider = "evolink"
        source = self._source(request)
        self._count(provider, "received")
        if not self.limiter.allow(source):
            self._count(provider, "rejected", "rate")
            wait = max(1, int(self.limiter.wait(source) + 0.999))
            return _json(429, {"error": "too many requests"}, {"Retry-After": str(wait)})
        given = request.path_params.get("token", "")
        if not (self.token and hmac.compare_digest(given.encode(), self.token.encode())):
            self._count(provider, "rejected", "unknown_token")
            log.info("evolink callback refused (unknown token) from %s", source)
            return _json(404, {"error": "not found"})
        body = await self._body(request)
        if body is None:
            self._count(provider, "rejected", "too_large")
            return _json(413, {"error": f"body over {self.max_body} bytes"})
        try:
            hint = self.providers[provider].parse_webhook(body)
        except Exception as exc:
            return self._refuse(provider, "bad_payload", source, 400, _one_line(getattr(exc, "message", exc)))
        key = hint.key
        old = self._tracked(key)
        now = self.clock()
        self.counts[provider]["last_at"] = now
        if old is None:
            self._count(provider, "rejected", "unknown_task")
            log.info("evolink callback for an untracked task ignored")
            return _json(200, {"ok": True, "result": "untracked, ignored"})
        if old.terminal and old.state != NOT_FOUND:
            self._count(provider, "ignored")
            return _json(200, {"ok": True, "result": "already finished"})
        last = self._hinted.get(key)
        if last is not None and now - last < self.hint_gap:
            self._count(provider, "duplicate")
            return _json(202, {"ok": True, "result": "poll already asked"})
        self._hinted[key] = now
        self._hinted.move_to_end(key)
        while len(self._hinted) > SEEN_IDS:
            self._hinted.popitem(last=False)
        self._count(provider, "hints")
        self._count(provider, "accepted")
        log.info("evolink callback for %s: poll asked", key)
        self._tell(self.on_push, key)  # a push came (push works), then the poll it asks for
        self._tell(self.on_hint, key)
        return _json(202, {"ok": True, "result": "poll asked"})


def _copy_counts(counts: dict[str, Any]) -> dict[str, Any]:
    out = dict(counts)
    out["rejected"] = dict(counts["rejected"])
    return out


def _one_line(value: Any) -> str:
    from .text import clean

    return clean(str(value), 300)


# ---------------------------------------------------------------- URLs, token


def normalize_prefix(prefix: str | None) -> str:
    """``"hooks/"`` -> ``"/hooks"``; ``""`` and ``"/"`` -> ``""``; ValueError for odd characters."""
    prefix = (prefix or "").strip()
    if prefix in ("", "/"):
        return ""
    prefix = "/" + prefix.strip("/")
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"path prefix {prefix!r}: use letters, digits and . _ ~ - between slashes")
    return prefix


def webhook_urls(public_url: str, prefix: str, token: str | None, providers: Iterable[str] = ("freepik", "evolink"),
                 ) -> dict[str, str]:
    """provider -> the URL to pass when creating tasks (``webhook_url``, ``callback_url``)."""
    from urllib.parse import urlsplit

    base = public_url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"public URL {public_url!r}: expected http(s)://host[:port][/path]")
    prefix = normalize_prefix(prefix)
    out = {}
    if "freepik" in providers:
        out["freepik"] = f"{base}{prefix}/hooks/freepik"
    if "evolink" in providers and token:
        out["evolink"] = f"{base}{prefix}/hooks/evolink/{token}"
    return out


def token_path(db: str | os.PathLike | None = None) -> Path:
    """Where the EvoLink path token lives: beside the task database (the user data dir)."""
    from .paths import db_path

    return Path(db_path(db)).parent / TOKEN_FILE


def load_token(path: str | os.PathLike) -> str:
    """The per-install token at ``path``, made (random, mode 0600) on first use."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(_secrets.token_urlsafe(32) + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)
    token = path.read_text(encoding="utf-8", errors="replace").strip()
    if not _TOKEN_RE.match(token):
        raise ValueError(f"{path}: not a token (16-256 of A-Z a-z 0-9 _ -); delete it to make a new one")
    return token


# ---------------------------------------------------------------- serving


async def start_server(app: Any, host: str = "127.0.0.1", port: int = 0, *,
                       forwarded_allow_ips: str | None = None) -> tuple[Any, asyncio.Task, int]:
    """Serve ``app`` with uvicorn in this event loop (no logging setup of its own, no
    access log: EvoLink's path holds the token).  Returns (server, task, port); stop
    with ``server.should_exit = True; await task``."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            proxy_headers=bool(forwarded_allow_ips), forwarded_allow_ips=forwarded_allow_ips,
                            server_header=False, date_header=False, lifespan="on",
                            timeout_keep_alive=5, limit_concurrency=200)
    server = uvicorn.Server(config)

    async def run() -> None:
        # _serve: serve() without taking over SIGINT/SIGTERM (the dashboard owns them)
        serve = getattr(server, "_serve", None) or server.serve
        try:
            await serve()
        except SystemExit:  # uvicorn exits when it cannot bind or start up
            raise OSError(f"cannot listen on {host}:{port}") from None

    task = asyncio.ensure_future(run())
    while not server.started:  # uvicorn says when its sockets are bound
        if task.done():
            task.result()  # raises why it could not start
            raise OSError(f"cannot listen on {host}:{port}")
        await asyncio.sleep(0.01)
    bound = port
    for srv in server.servers:
        for sock in srv.sockets:
            bound = sock.getsockname()[1]
    return server, task, bound


class Listener:
    """A receiver served in the running event loop, for ``collect --listen`` and the
    dashboard: ``listener = await Listener.start(config, store, args, on_hint=...)``,
    ``listener.urls`` (for display: EvoLink's token masked), ``await listener.stop()``."""

    def __init__(self, receiver: PushReceiver, server: Any, task: asyncio.Task, host: str, port: int) -> None:
        self.receiver, self.server, self.task, self.host, self.port = receiver, server, task, host, port

    @classmethod
    async def start(cls, config: Any, store: Any, args: Any = None, *, on_hint: Callable[[str], Any] | None = None,
                    on_push: Callable[[str], Any] | None = None) -> "Listener":
        receiver, settings = build_receiver(config, store, args, on_hint=on_hint, on_push=on_push)
        server, task, port = await start_server(receiver.app, settings["host"], settings["port"],
                                                forwarded_allow_ips=settings["forwarded_allow_ips"])
        return cls(receiver, server, task, settings["host"], port)

    @property
    def urls(self) -> dict[str, str]:
        token = self.receiver.token
        return {name: f"http://{self.host}:{self.port}" + (path.replace(token, "<token>") if token else path)
                for name, path in self.receiver.routes.items()}

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


class EngineListener:
    """The receiver as a service of an engine (``Engine.attach``): served in the
    engine's loop while the engine runs.  A callback makes the engine poll that task
    at once (``refresh_now``, one request); a stored signed update is noted
    (``note_push``); the providers it serves are the engine's push providers
    (``set_push``).  A receiver that cannot start (a port in use, a bad token file)
    is one event in the log, and the engine polls as before."""

    def __init__(self, args: Any = None) -> None:
        from types import SimpleNamespace

        self.args = args if args is not None else SimpleNamespace()
        self.listener: Listener | None = None
        self.problem: str | None = None

    @property
    def running(self) -> bool:
        return self.listener is not None

    async def start(self, engine: Any) -> None:
        from .model import Event

        try:
            self.listener = await Listener.start(engine.config, engine.store, self.args,
                                                 on_hint=lambda key: engine.refresh_now([key]),
                                                 on_push=engine.note_push)
        except (OSError, ValueError) as exc:
            self.problem = _one_line(f"webhook receiver not started: {exc}")
            log.warning("%s", self.problem)
            try:
                engine.store.log([Event(time=time.time(), provider="push", kind="push", message=self.problem)])
            except Exception:
                pass
            return
        self.problem = None
        engine.set_push(self.listener.receiver.routes)

    async def stop(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            await listener.stop()


def listen_with(engine: Any, args: Any = None) -> EngineListener:
    """Run the push receiver with ``engine`` (the dashboard's ``--listen``)."""
    service = EngineListener(args)
    engine.attach(service)
    return service


class DirectPoller:
    """``on_hint`` for a standalone ``tasktui listen`` (no engine running): poll the
    hinted task once, now, and store the answer."""

    def __init__(self, store: Any, providers: dict[str, Any]) -> None:
        self.store = store
        self.providers = providers
        self.client = None
        self.pending: set[asyncio.Task] = set()
        self.limit: asyncio.Semaphore | None = None  # made in the loop that polls

    def __call__(self, key: str) -> None:
        task = asyncio.ensure_future(self.poll(key))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def poll(self, key: str) -> None:
        import httpx

        from .model import ProviderError

        tracked = self.store.get(key)
        provider = self.providers.get(tracked.provider) if tracked else None
        if tracked is None or provider is None:
            return
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
            self.limit = asyncio.Semaphore(POLLS_AT_ONCE)
        try:
            async with self.limit:
                task = await provider.fetch_status(self.client, tracked.task_id, tracked.kind)
        except ProviderError as exc:
            log.warning("poll of %s after its callback failed: %s", key, _one_line(exc.message))
            return
        except Exception as exc:  # network
            log.warning("poll of %s after its callback failed: %s", key, _one_line(type(exc).__name__))
            return
        try:
            self.store.apply([task])
        except Exception as exc:
            log.warning("answer for %s not stored: %s", key, _one_line(exc))

    async def close(self) -> None:
        for task in list(self.pending):
            task.cancel()
        if self.client is not None:
            await self.client.aclose()


# ---------------------------------------------------------------- CLI


def add_parser(subparsers: Any, parents: Iterable[Any] = ()) -> Any:
    """``tasktui listen``; ``parents`` gives --config/--db as the other commands have them."""
    from .args import arg_port

    p = subparsers.add_parser(
        "listen", parents=list(parents), help="receive provider webhooks (Freepik, EvoLink)",
        description="Serve /hooks/freepik (signed webhooks; needs [providers.freepik] webhook_secret) "
                    "and /hooks/evolink/TOKEN (callbacks: each one makes tasktui poll that task now). "
                    "Put it behind an HTTPS reverse proxy or an SSH reverse tunnel; see docs.",
        epilog="Pass the URLs --print-urls shows as webhook_url (Freepik) and callback_url (EvoLink) "
               "when creating tasks.")
    p.add_argument("--host", default=None, help="address to listen on (default [listen] host or 127.0.0.1)")
    p.add_argument("--port", type=arg_port, default=None, help=f"port (default [listen] port or {DEFAULT_PORT})")
    p.add_argument("--path-prefix", default=None, metavar="PATH",
                   help="serve under PATH, e.g. /tasktui (default [listen] path_prefix or none)")
    p.add_argument("--public-url", default=None, metavar="URL",
                   help="the address providers reach, e.g. https://example.org (default [listen] public_url)")
    p.add_argument("--print-urls", action="store_true",
                   help="print the webhook_url / callback_url to pass when creating tasks, then exit")
    p.add_argument("--forwarded-allow-ips", default=None, metavar="IPS",
                   help="trust X-Forwarded-For from these proxy addresses (comma-separated, or *)")
    return p


def _secret_list(value: Any) -> list[str]:
    """A config value holding one secret or several (SecretStr, str, or a list of them)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _secret_list(v)]
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return [s for s in str(value).split() if s]


def listen_settings(config: Any, args: Any) -> dict[str, Any]:
    """host, port, path_prefix, public_url, token from the command line, else ``[listen]``."""
    section = getattr(config, "listen", None)

    def pick(name: str, default: Any) -> Any:
        value = getattr(args, name, None)
        if value is None and section is not None:
            value = section.get(name) if isinstance(section, dict) else getattr(section, name, None)
        return default if value is None else value

    token = None
    if section is not None:
        token = section.get("token") if isinstance(section, dict) else getattr(section, "token", None)
    token = (_secret_list(token) or [None])[0]
    return {"host": pick("host", "127.0.0.1"), "port": int(pick("port", DEFAULT_PORT)),
            "path_prefix": pick("path_prefix", ""), "public_url": pick("public_url", None), "token": token,
            "forwarded_allow_ips": pick("forwarded_allow_ips", None)}


def build_receiver(config: Any, store: Any, args: Any, *, on_hint: Callable[[str], Any] | None = None,
                   on_push: Callable[[str], Any] | None = None) -> tuple[PushReceiver, dict[str, Any]]:
    """The receiver for ``config`` (providers, secrets, token) and its settings."""
    from .providers import make_provider

    settings = listen_settings(config, args)
    providers, secrets = {}, {}
    configured = getattr(config, "providers", {}) or {}
    for name in ("freepik", "evolink"):
        pcfg = configured.get(name)
        key = getattr(pcfg, "key", "") if pcfg is not None else ""
        base = getattr(pcfg, "base_url", None) if pcfg is not None else None
        providers[name] = make_provider(name, key or "", base)
        if pcfg is not None:
            secrets[name] = _secret_list(getattr(pcfg, "webhook_secret", None))
    token = settings["token"] or load_token(token_path(getattr(args, "db", None)))
    receiver = PushReceiver(store, providers, secrets=secrets, token=token, on_hint=on_hint, on_push=on_push,
                            path_prefix=settings["path_prefix"])
    return receiver, settings


def cmd_listen(args: Any) -> int:
    """``tasktui listen``: serve the webhook routes until interrupted (or print their URLs)."""
    from .headless import Fail, command, load_config, open_store

    @command
    def run(args: Any) -> int:
        config = load_config(args)
        store = open_store(args)
        try:
            poller = DirectPoller(store, {})
            try:
                receiver, settings = build_receiver(config, store, args, on_hint=poller)
            except ValueError as exc:
                raise Fail(str(exc)) from None
            poller.providers = receiver.providers
            host, port = settings["host"], settings["port"]
            public = settings["public_url"] or f"http://{host}:{port}"
            try:
                urls = webhook_urls(public, receiver.prefix, receiver.token,
                                    [p for p, ok in (("freepik", receiver.has_freepik),
                                                     ("evolink", receiver.has_evolink)) if ok])
            except ValueError as exc:
                raise Fail(str(exc)) from None
            if not receiver.has_freepik:
                print("tasktui listen: no Freepik route: set [providers.freepik] webhook_secret",
                      file=sys.stderr)
            if args.print_urls:
                if not settings["public_url"]:
                    print("tasktui listen: no --public-url: these are local addresses; providers need "
                          "a public https:// one", file=sys.stderr)
                for name, url in urls.items():
                    what = "webhook_url" if name == "freepik" else "callback_url"
                    print(f"{name}\t{what}\t{url}")
                return 0
            logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                                format="%(asctime)s %(levelname)s %(message)s")
            try:
                return asyncio.run(_serve(receiver, poller, host, port, settings["forwarded_allow_ips"]))
            except OSError as exc:  # the port is taken, the address is not this machine's
                raise Fail(str(exc)) from None
        finally:
            store.close()

    return run(args)


async def _serve(receiver: PushReceiver, poller: DirectPoller, host: str, port: int,
                 forwarded: str | None) -> int:
    server, task, bound = await start_server(receiver.app, host, port, forwarded_allow_ips=forwarded)
    for name, path in receiver.routes.items():
        shown = path.replace(receiver.token, "<token>") if receiver.token else path
        log.info("listening on http://%s:%d%s (%s)", host, bound, shown, name)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    try:
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    except (NotImplementedError, RuntimeError):
        pass
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    waiter.cancel()
    await poller.close()
    return 0
