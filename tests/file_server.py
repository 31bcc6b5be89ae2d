"""A file host on 127.0.0.1 for downloads and previews: raw asyncio, its own loop
in a thread (so async tests, sync tests and tests that drive a subprocess can
all use it), every answer under the test's control.

What it serves (``FileServer.url(name)``):

- ``/img.png`` (4x4: red, green / blue, white quadrants), ``/img.jpg`` (16x16
  solid orange), ``/img.webp`` (8x8 solid teal): made with Pillow when the
  server starts; ``/clip.mp4`` (``video/mp4``: an ``ftyp`` box and a ``moov``
  whose ``mvhd`` says 4.5 s), ``/song.mp3`` (``audio/mpeg``, ``ID3`` + bytes)
- ``/big.bin``: 300,000 bytes, all static files answer Range requests (206,
  416 past the end) unless ``server.ranges = False`` (then 200 and the whole
  file), or ``"from_zero"`` (a 206 from byte 0 whatever was asked)
- ``/slow.bin``: 300,000 bytes; a request WITHOUT a Range header gets the
  first ``HOLD`` bytes, then nothing until ``release()`` or the client leaves;
  a Range request is answered at once
- ``/dies.bin``: promises 300,000 bytes, sends ``HOLD`` and hangs up
- ``/huge.bin``: Content-Length of 10 GB, zeros until the client leaves;
  ``/huge-nolength.bin``: the same with no length (chunked)
- ``/expired403``, ``/expired404``, ``/expired410``: those statuses
- ``/hostile``: a PNG with ``Content-Disposition: attachment;
  filename="../../../../escaped.png"`` (the name must never be used)
- ``/md5-bad.bin``: a ``Content-MD5`` that does not match the body (``/md5-good.bin``: one that does)
- ``/dl/<any name>``: the PNG as ``application/octet-stream`` (the name is the only hint)
- anything else: 404

Every request is recorded (``requests``: method, path, headers lower-cased);
one that carries an ``Authorization``, ``X-API-Key`` or ``Cookie`` header, or
any string in ``secrets``, is also put in ``violations``.  Tests wait for what
they need with ``wait_for(predicate)`` (a condition variable, no polling).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import struct
import threading
from dataclasses import dataclass, field
from typing import Callable

HOLD = 100_000  # bytes /slow.bin and /dies.bin send before they stop
SIZE = 300_000
FORBIDDEN = ("authorization", "x-api-key", "cookie", "proxy-authorization")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0  # the status answered (0 until the head is written)
    sent: int = 0  # body bytes written


@dataclass
class File:
    body: bytes
    ctype: str
    headers: dict[str, str] = field(default_factory=dict)


def _pattern(n: int, seed: int) -> bytes:
    """n bytes that differ at every offset (a wrong resume shows)."""
    out = bytearray()
    block = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{block}".encode()).digest()
        block += 1
    return bytes(out[:n])


def make_png() -> bytes:
    from PIL import Image

    img = Image.new("RGB", (4, 4))
    for x in range(4):
        for y in range(4):
            img.putpixel((x, y), [[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (255, 255, 255)]][y // 2][x // 2])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def make_image(fmt: str, size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {"lossless": True}
                                                      if fmt == "WEBP" else {}))
    return buf.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def make_mp4(duration_s: float = 4.5, timescale: int = 1000) -> bytes:
    """An MP4 header (ftyp, then moov/mvhd version 0) and some filler: enough for a
    reader of the movie header, not a playable film."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    mvhd = _box(b"mvhd", struct.pack(">B3xIIII", 0, 0, 0, timescale, int(duration_s * timescale)) + bytes(80))
    moov = _box(b"moov", mvhd)
    return ftyp + moov + _box(b"mdat", _pattern(50_000, 9))


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, File] = {}
        self.requests: list[Seen] = []
        self.violations: list[Seen] = []
        self.secrets: list[str] = []
        self.ranges = True
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._release: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="file-server", daemon=True)
        self._build()
        self._thread.start()
        self._started.wait(10)

    # ------------------------------------------------------------ content

    def _build(self) -> None:
        png = make_png()
        self.files["/img.png"] = File(png, "image/png")
        self.files["/img.jpg"] = File(make_image("JPEG", (16, 16), (255, 128, 0)), "image/jpeg")
        self.files["/img.webp"] = File(make_image("WEBP", (8, 8), (0, 128, 128)), "image/webp")
        self.files["/clip.mp4"] = File(make_mp4(), "video/mp4")
        self.files["/song.mp3"] = File(b"ID3\x04\x00\x00\x00\x00\x00\x00" + _pattern(20_000, 3), "audio/mpeg")
        self.files["/big.bin"] = File(_pattern(SIZE, 1), "application/octet-stream")
        self.files["/slow.bin"] = File(_pattern(SIZE, 2), "application/octet-stream")
        self.files["/dies.bin"] = File(_pattern(SIZE, 4), "application/octet-stream")
        self.files["/hostile"] = File(png, "image/png", {
            "Content-Disposition": 'attachment; filename="../../../../escaped.png"; filename*=UTF-8\'\'%2E%2E%2Fx'})
        body = _pattern(5_000, 5)
        self.files["/md5-bad.bin"] = File(body, "application/octet-stream", {
            "Content-MD5": base64.b64encode(hashlib.md5(b"something else").digest()).decode()})
        self.files["/md5-good.bin"] = File(body, "application/octet-stream", {
            "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()})

    def body(self, name: str) -> bytes:
        return self.files[name].body

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return self.base_url + name

    # ------------------------------------------------------------ control

    def release(self) -> None:
        """Let held /slow.bin answers go on."""
        self._loop.call_soon_threadsafe(self._release.set)

    def wait_for(self, predicate: Callable[[list[Seen]], bool], timeout: float = 30.0) -> list[Seen]:
        """Block until ``predicate(requests)`` holds (checked at every change)."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.requests), timeout):
                raise AssertionError(f"file server: condition not met; saw {self.requests}")
            return list(self.requests)

    async def await_for(self, predicate: Callable[[list[Seen]], bool], timeout: float = 30.0) -> list[Seen]:
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def reset(self) -> None:
        with self._cond:
            self.requests.clear()
            self.violations.clear()

    def close(self) -> None:
        async def shutdown() -> None:
            self._server.close()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # ------------------------------------------------------------ serving

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._release = asyncio.Event()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        seen = Seen(method, path, headers)
        with self._cond:
            self.requests.append(seen)
            text = head.decode("latin-1")
            if any(h in headers for h in FORBIDDEN) or any(s and s in text for s in self.secrets):
                self.violations.append(seen)
            self._cond.notify_all()
        try:
            await self._answer(seen, reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass
            self._changed()

    async def _head(self, seen: Seen, writer: asyncio.StreamWriter, status: int,
                    headers: dict[str, str]) -> None:
        reason = {200: "OK", 206: "Partial Content", 403: "Forbidden", 404: "Not Found", 410: "Gone",
                  416: "Range Not Satisfiable"}.get(status, "X")
        text = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write((text + "Connection: close\r\n\r\n").encode("latin-1"))
        await writer.drain()
        seen.status = status
        self._changed()

    async def _send(self, seen: Seen, writer: asyncio.StreamWriter, data: bytes) -> None:
        for i in range(0, len(data), 16_384):
            writer.write(data[i:i + 16_384])
            await writer.drain()
            seen.sent += len(data[i:i + 16_384])
        self._changed()

    async def _answer(self, seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = seen.path.split("?")[0]
        if path.startswith("/expired"):
            status = int(path[len("/expired"):] or 410)
            await self._head(seen, writer, status, {"Content-Type": "application/xml", "Content-Length": "13"})
            await self._send(seen, writer, b"<Error></Error>"[:13])
            return
        if path in ("/huge.bin", "/huge-nolength.bin"):
            chunked = path == "/huge-nolength.bin"
            await self._head(seen, writer, 200, {"Content-Type": "application/octet-stream",
                                                 **({"Transfer-Encoding": "chunked"} if chunked
                                                    else {"Content-Length": str(10**10)})})
            block = bytes(65_536)
            while True:  # until the client leaves (ConnectionError)
                writer.write((b"10000\r\n" + block + b"\r\n") if chunked else block)
                await writer.drain()
                seen.sent += len(block)
        file = self.files.get(path)
        if file is None and path.startswith("/dl/"):  # any name: the PNG, typed only as bytes
            file = File(self.files["/img.png"].body, "application/octet-stream")
        if file is None or seen.method not in ("GET", "HEAD"):
            await self._head(seen, writer, 404, {"Content-Length": "0"})
            return
        body = file.body
        start = 0
        rng = seen.headers.get("range", "")
        base = {"Content-Type": file.ctype, "Accept-Ranges": "bytes", **file.headers}
        if rng and self.ranges and rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            start = 0 if self.ranges == "from_zero" else int(first or 0)
            end = int(last) if last else len(body) - 1
            if start >= len(body):
                await self._head(seen, writer, 416, {"Content-Range": f"bytes */{len(body)}", "Content-Length": "0"})
                return
            end = min(end, len(body) - 1)
            await self._head(seen, writer, 206, {**base, "Content-Range": f"bytes {start}-{end}/{len(body)}",
                                                 "Content-Length": str(end - start + 1)})
            await self._send(seen, writer, body[start:end + 1])
            return
        await self._head(seen, writer, 200, {**base, "Content-Length": str(len(body))})
        if seen.method == "HEAD":
            return
        if path in ("/slow.bin", "/dies.bin"):
            await self._send(seen, writer, body[:HOLD])
            if path == "/dies.bin":
                return  # hang up with the rest unsent
            gone = asyncio.ensure_future(reader.read(1))
            released = asyncio.ensure_future(self._release.wait())
            await asyncio.wait({gone, released}, return_when=asyncio.FIRST_COMPLETED)
            for f in (gone, released):
                f.cancel()
            if not self._release.is_set():
                return
            await self._send(seen, writer, body[HOLD:])
            return
        await self._send(seen, writer, body)
