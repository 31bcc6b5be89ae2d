"""The simulator's result files (``SimServer(files=True)``, ``tasktui simulate
--files``, the demo): every result link a simulated task answers with can be
fetched, so previews, ``o``, ``d``, ``tasktui pull`` and auto-download work
against the simulator as against a provider's file host.

Simulated results are written ``https://sim.tasktui.invalid/{provider}/{task}/{n}.{ext}``
(a host that never resolves).  With files on, every JSON answer the simulator
sends has that prefix replaced by ``{base}/_sim/files/`` of the address the
request came to, and ``GET /_sim/files/{provider}/{task}/{n}.{ext}`` answers:

- ``.png`` ``.jpg`` ``.webp``: a real small picture made with Pillow, its colours
  seeded by the path (the same path, the same bytes);
- ``.mp4``: a minimal MP4 header stating a duration; ``.mp3``: an ID3 header and noise;
- 410 for a task whose links have expired in sim time (``SimTask.expires``), as
  a file host does, and 404 for a task the scenario does not have;
- ``Range: bytes=N-`` as 206 with ``Content-Range`` (resumed downloads).

No credential is asked for or looked at: result links are public or pre-signed,
and the file host is not the provider.
"""

from __future__ import annotations

import hashlib
import io
import struct
from functools import lru_cache

from starlette.requests import Request
from starlette.responses import Response

MARKER = b"https://sim.tasktui.invalid/"
PREFIX = "/_sim/files/"
TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
         "mp4": "video/mp4", "mp3": "audio/mpeg"}


def _seed(path: str) -> bytes:
    return hashlib.sha256(path.encode("utf-8", "replace")).digest()


@lru_cache(maxsize=256)
def file_bytes(path: str) -> tuple[bytes, str] | None:
    """The bytes and content type of a simulated result file (None: no such type)."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    ctype = TYPES.get(ext)
    if ctype is None:
        return None
    seed = _seed(path)
    if ctype.startswith("image/"):
        return _picture(seed, {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}[ext]), ctype
    if ext == "mp4":
        return _mp4(4.0 + seed[0] % 8), ctype
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + (seed * 600), ctype


def _picture(seed: bytes, fmt: str, size: tuple[int, int] = (96, 64)) -> bytes:
    """A gradient between two colours of the seed, with a disc: something to see."""
    from PIL import Image, ImageDraw

    a, b = tuple(seed[0:3]), tuple(seed[3:6])
    w, h = size
    img = Image.new("RGB", size)
    px = img.load()
    for x in range(w):
        t = x / (w - 1)
        colour = tuple(int(a[i] * (1 - t) + b[i] * t) for i in range(3))
        for y in range(h):
            px[x, y] = colour
    r = 10 + seed[6] % 14
    cx, cy = 20 + seed[7] % (w - 40), 16 + seed[8] % (h - 32)
    ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(255 - v for v in a))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mp4(duration_s: float, timescale: int = 1000) -> bytes:
    """ftyp + moov/mvhd stating the duration (what a preview reads), then mdat."""
    mvhd = struct.pack(">B3xIIII", 0, 0, 0, timescale, int(duration_s * timescale)) + b"\x00" * 80
    return (_box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + _box(b"moov", _box(b"mvhd", mvhd))
            + _box(b"mdat", b"\x00" * 4096))


class ResultLinks:
    """ASGI middleware: in JSON answers, the simulated results' unresolvable host
    becomes this server's file route, at the address the client used."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or ()).get(b"host") or b"127.0.0.1"
        base = b"http://" + host + PREFIX.encode()
        start: dict | None = None
        chunks: list[bytes] = []

        async def rewrite(message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if any(k.lower() == b"content-type" and b"json" in v for k, v in headers):
                body = body.replace(MARKER, base)
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def file_route(sim):
    """The ``GET /_sim/files/{path}`` handler for ``sim`` (a ``Simulator``)."""

    async def serve(request: Request) -> Response:
        path = request.path_params["path"]
        parts = path.split("/")
        if len(parts) != 3:
            return Response("not found", 404, media_type="text/plain")
        provider, task_id, _name = parts
        task = next((t for t in sim.scenario.tasks if t.provider == provider and t.task_id == task_id), None)
        if task is None:
            return Response("not found", 404, media_type="text/plain")
        if task.expires is not None and sim.now() >= task.expires:
            return Response("this link has expired", 410, media_type="text/plain")
        made = file_bytes(path)
        if made is None:
            return Response("not found", 404, media_type="text/plain")
        body, ctype = made
        wanted = request.headers.get("range", "")
        if wanted.startswith("bytes=") and wanted[6:].rstrip("-").isdigit() and wanted.endswith("-"):
            first = int(wanted[6:-1])
            if first >= len(body):
                return Response(b"", 416, headers={"Content-Range": f"bytes */{len(body)}"})
            return Response(body[first:], 206, media_type=ctype,
                            headers={"Content-Range": f"bytes {first}-{len(body) - 1}/{len(body)}",
                                     "Accept-Ranges": "bytes"})
        return Response(body, 200, media_type=ctype, headers={"Accept-Ranges": "bytes"})

    return serve
