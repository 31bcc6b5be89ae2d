"""The one throwaway HTTP server of the tests (issue #14): a real server on
127.0.0.1 and a free port, in a thread, that records every request and answers
from a route table or a function.  Used by sync and async tests alike (the
``http_server`` fixture of conftest.py starts one and stops it after the test).

    srv = http_server({"/v1/tasks/t1": (200, {"status": "processing"})})
    srv = http_server({("POST", "/getImage"): (500, b"..."), "/slow": HANG})
    srv = http_server(lambda seen: (200, {"echo": seen.json()}))     # a function of the request
    srv.url, srv.seen[0].headers["x-api-key"], srv.requests, srv.wait_for_requests(3)

An answer is a ``Reply`` or a tuple ``(status, body)`` / ``(status, body,
headers)`` / ``(status, headers, body)``, where ``body`` is bytes, text or
anything JSON can write; ``HANG`` (or the string ``"hang"``) sends nothing
until the server closes, for timeouts.  A route key is a path (with its query)
or ``(method, path)``; what no route names gets ``default`` (a JSON 404).

Also usable directly: ``with HttpServer(routes) as srv`` or
``async with HttpServer(routes) as srv``.  (tests/hostile_server.py and
tests/file_server.py build on the same stdlib server for byte-level faults.)
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Seen:
    """One request as the server received it (header names lowercased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __getitem__(self, name: str) -> Any:  # seen["path"]: the dict form older tests read
        return getattr(self, name)


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # answer nothing until the server closes
    content_type: str | None = "application/json"  # sent unless ``headers`` name one (None: none)

    def content(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


HANG = Reply(hang=True)
Answer = Callable[[Seen], Any]


def as_reply(value: Any) -> Reply:
    if isinstance(value, Reply):
        return value
    if value == "hang":
        return HANG
    if isinstance(value, tuple):
        status, *rest = value
        if len(rest) == 1:
            return Reply(int(status), rest[0])
        if len(rest) == 2:
            first, second = rest
            if isinstance(first, dict) and isinstance(second, (bytes, str)):  # (status, headers, body)
                return Reply(int(status), second, dict(first))
            return Reply(int(status), first, dict(second or {}))
    raise TypeError(f"not an answer: {value!r}")


class HttpServer:
    def __init__(self, answer: Answer | dict | None = None, *,
                 default: Any = (404, {"message": "not found"}), port: int = 0) -> None:
        if answer is None:
            answer = {}
        if isinstance(answer, dict):
            routes = answer
            answer = lambda seen: routes.get((seen.method, seen.path), routes.get(seen.path, default))  # noqa: E731
        self.answer = answer
        self.seen: list[Seen] = []
        self._cond = threading.Condition()
        self._release = threading.Event()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._port = port
        self.url = ""

    # ------------------------------------------------------------ life

    def start(self) -> "HttpServer":
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._cond:
                    outer.seen.append(seen)
                    outer._cond.notify_all()
                reply = as_reply(outer.answer(seen))
                if reply.hang:
                    outer._release.wait()
                    self.close_connection = True
                    return
                content = reply.content()
                self.send_response(reply.status)
                headers = dict(reply.headers)
                if reply.content_type and not any(k.lower() == "content-type" for k in headers):
                    headers = {"Content-Type": reply.content_type, **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(content)
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        self._release = threading.Event()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]  # a reopen listens on the same port
        self.url = f"http://127.0.0.1:{self._port}"
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"http-server-{self._httpd.server_address[1]}", daemon=True).start()
        return self

    def close(self) -> None:
        """Stop listening (a client then meets a refused connection)."""
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def reopen(self) -> "HttpServer":
        """Listen again, on the same port."""
        self.close()
        return self.start()

    def __enter__(self) -> "HttpServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "HttpServer":
        return self.start()

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ what it saw

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, path, headers) of every request, in order."""
        return [(s.method, s.path, s.headers) for s in self.seen]

    def wait_for_requests(self, n: int = 1, timeout: float = 30.0) -> list[Seen]:
        """Block until ``n`` requests have arrived (an event, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.seen) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"saw {len(self.seen)} requests, wanted {n}")
                self._cond.wait(left)
            return list(self.seen)
