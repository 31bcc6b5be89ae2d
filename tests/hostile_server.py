"""A hostile HTTP server on 127.0.0.1 with byte-level control of every answer.

It is raw asyncio (no HTTP library on the server side), so it can do what no
well-behaved server does: trickle headers, send a body one byte a second,
stream chunks forever, serve a gzip bomb, promise a length and hang up.  It
runs its own event loop in a thread, so sync tests, async tests and tests that
drive a subprocess can all use it.

Usage (a pytest fixture, ``hostile``)::

    from hostile_server import hostile, json_answer, slow_headers  # noqa: F401 (fixture)

    async def test_x(hostile):
        hostile.serve(slow_headers())            # every request, until changed
        hostile.serve(json_answer({"a": 1}), path="/v1/tasks/t1", count=1)  # first match wins
        ...  # point a client at hostile.base_url
        seen = hostile.wait_for_requests(1)      # the requests it saw: method, path, headers, body
        hostile.wait_for_hangups(1)              # connections the client closed before the answer ended

An answer is an ``async def answer(conn)``: ``conn.request`` is what the client
sent; ``await conn.write(b"...")`` writes raw bytes (raises ``ClientGone`` once
the client hung up); ``await conn.pause(s)`` paces the answer (server-side
pacing, never a test's wait).  Builders for the usual hostile answers follow
the class.  The server never waits for a fixed time on behalf of a test: tests
wait for the events it records.
"""

from __future__ import annotations

import asyncio
import json
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import pytest

Answer = Callable[["Conn"], Awaitable[None]]


class ClientGone(Exception):
    """The client closed the connection while the server was still answering."""


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Rule:
    answer: Answer
    path: str | None = None  # exact path (query included), or None for any
    count: int | None = None  # answers left; None: unlimited


@dataclass
class Conn:
    request: Seen
    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader | None = None
    written: int = 0
    closed_by_client: bool = False

    async def write(self, data: bytes) -> None:
        if self.writer.is_closing() or (self.reader is not None and self.reader.at_eof()):
            raise ClientGone  # a client that hung up (HTTP/1.1 clients never half-close)
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            raise ClientGone from None
        self.written += len(data)

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class HostileServer:
    """See the module docstring."""

    host: str = "127.0.0.1"
    requests: list[Seen] = field(default_factory=list)
    hangups: int = 0  # connections the client closed mid-answer
    finished: int = 0  # answers written to the end
    rules: list[Rule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task] = set()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("hostile server did not start")
        self.base_url = f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------ control

    def serve(self, answer: Answer, path: str | None = None, count: int | None = None) -> None:
        """Answer matching requests with ``answer``; rules added later are tried first."""
        with self._cond:
            self.rules.insert(0, Rule(answer, path, count))

    def reset(self) -> None:
        with self._cond:
            self.rules.clear()
            self.requests.clear()
            self.hangups = self.finished = 0

    def wait_for_requests(self, n: int = 1, timeout: float = 30.0) -> list[Seen]:
        """Block until at least ``n`` requests were read; returns them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"saw {len(self.requests)} requests, wanted {n}")
            return list(self.requests)

    def wait_for_hangups(self, n: int = 1, timeout: float = 30.0) -> int:
        """Block until the client closed ``n`` connections before their answers ended."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.hangups >= n, timeout):
                raise TimeoutError(f"saw {self.hangups} hang-ups, wanted {n}")
            return self.hangups

    def close(self) -> None:
        async def shutdown() -> None:
            tasks = [t for t in self._tasks if not t.done()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._server.close()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # ------------------------------------------------------------ serving

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, self.host, 0, limit=1 << 20))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _pick(self, seen: Seen) -> Answer:
        with self._cond:
            for rule in self.rules:
                if rule.path is not None and rule.path != seen.path:
                    continue
                if rule.count is not None:
                    if rule.count <= 0:
                        continue
                    rule.count -= 1
                return rule.answer
        return json_answer({"message": "no answer scripted for this path"}, status=404)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            while True:  # keep-alive: one answer per request on this connection
                seen = await _read_request(reader)
                if seen is None:
                    return
                with self._cond:
                    self.requests.append(seen)
                    self._cond.notify_all()
                conn = Conn(seen, writer, reader)
                try:
                    await self._pick(seen)(conn)
                except ClientGone:
                    with self._cond:
                        self.hangups += 1
                        self._cond.notify_all()
                    return
                with self._cond:
                    self.finished += 1
                    self._cond.notify_all()
                if writer.is_closing():
                    return
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Seen | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    length = int(headers.get("content-length") or 0)
    if length:
        body = await reader.readexactly(length)
    return Seen(method, path, headers, body)


# ---------------------------------------------------------------- answers


def head(status: int = 200, headers: dict[str, str] | None = None, reason: str = "X") -> bytes:
    """A status line and headers, raw."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def raw_answer(data: bytes, close: bool = False) -> Answer:
    """Exactly these bytes (status line, headers and body included)."""

    async def answer(conn: Conn) -> None:
        await conn.write(data)
        if close:
            conn.writer.close()

    return answer


def body_answer(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}
    return raw_answer(head(status, all_headers) + body)


def json_answer(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return body_answer(json.dumps(obj).encode(), status, headers)


def slow_headers(interval: float = 0.2) -> Answer:
    """A status line, then header bytes one at a time, forever: the headers never end."""

    async def answer(conn: Conn) -> None:
        await conn.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while True:
            await conn.pause(interval)
            await conn.write(b"a")

    return answer


def silent() -> Answer:
    """Reads the request and never answers (the connection stays open)."""

    async def answer(conn: Conn) -> None:
        while True:
            await conn.pause(3600)

    return answer


def slow_body(interval: float = 1.0, length: int = 1000) -> Answer:
    """Headers at once, then a body of ``length`` bytes one byte every ``interval`` (slow loris)."""

    async def answer(conn: Conn) -> None:
        await conn.write(head(200, {"Content-Type": "application/json", "Content-Length": str(length)}))
        await conn.write(b"{")
        for _ in range(length - 1):
            await conn.pause(interval)
            await conn.write(b" ")

    return answer


def endless_chunked(chunk: bytes = b" ", interval: float = 0.05) -> Answer:
    """A chunked body that never ends: one small chunk every ``interval`` (a stream a
    per-read timeout never stops)."""

    async def answer(conn: Conn) -> None:
        await conn.write(head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        await conn.write(b"1\r\n[\r\n")
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while True:
            await conn.pause(interval)
            await conn.write(frame)

    return answer


def huge_plain(claim: int | None = 500 * 1024 * 1024, chunk_size: int = 64 * 1024) -> Answer:
    """A plain body as fast as the client reads it: ``claim`` bytes promised in
    Content-Length (None: chunked and endless).  Never actually sends 500 MB to a
    client that stops reading."""

    async def answer(conn: Conn) -> None:
        headers = {"Content-Type": "application/json"}
        headers.update({"Content-Length": str(claim)} if claim else {"Transfer-Encoding": "chunked"})
        await conn.write(head(200, headers))
        piece = b"[" + b" " * (chunk_size - 1)
        sent = 0
        while claim is None or sent < claim:
            data = piece[: claim - sent] if claim else piece
            if claim is None:
                data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
            await conn.write(data)
            sent += len(piece)
            piece = b" " * chunk_size

    return answer


def gzip_bomb_blocks(block: int = 1 << 20) -> tuple[bytes, bytes]:
    """(gzip header, one deflate block of ``block`` zero bytes): the block is
    byte-aligned (full flush), so repeating it makes a valid, endless gzip stream
    that inflates about 1000-fold."""
    zeros = bytes(block)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    return first[: len(first) - len(again)], again


def gzip_bomb(compressed: int = 4 * 1024 * 1024, status: int = 200) -> Answer:
    """``Content-Encoding: gzip``: about ``compressed`` bytes on the wire that
    inflate to about 1000 times as much (4 MB -> 4 GB of JSON whitespace... zeros)."""
    header, block = gzip_bomb_blocks()

    async def answer(conn: Conn) -> None:
        count = max(1, compressed // len(block))
        size = len(header) + count * len(block)
        await conn.write(head(status, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                                       "Content-Length": str(size)}))
        await conn.write(header)
        batch = block * 64
        for start in range(0, count, 64):
            await conn.write(batch if start + 64 <= count else block * (count - start))

    return answer


def close_mid_body(body: bytes = b'{"data": {"status": "COMPL', claim: int = 1000) -> Answer:
    """Promises ``claim`` bytes, sends part of the body, hangs up."""

    async def answer(conn: Conn) -> None:
        await conn.write(head(200, {"Content-Type": "application/json", "Content-Length": str(claim)}) + body)
        conn.writer.close()

    return answer


# ---------------------------------------------------------------- fixture


@pytest.fixture
def hostile():
    server = HostileServer()
    yield server
    server.close()
