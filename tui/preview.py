"""Previews of results: fetch (with a size cap), cache on disk by URL, and draw an
image in the terminal with Unicode half-blocks.

- ``fetch_preview(url, cache, max_bytes)`` fetches an image's bytes (at most
  ``max_bytes``, default 20 MB) or, for video and audio, only what tells its type,
  size and duration (headers, and an MP4's movie header when it comes first).
  Only http(s) links; a fresh client with no credentials (the API key goes to
  the provider's API only); 403/404/410 is "expired".
- ``PreviewCache``: files under the user cache dir (``previews/``), named by a
  hash of the URL, least recently used evicted past a byte cap.
- ``render_halfblocks(image_bytes, width, height)``: the image fitted into
  ``width`` x ``height`` cells, aspect ratio kept, each cell an upper half block
  ``▀`` whose foreground is the upper pixel and background the lower: works in
  every terminal with true colour, over SSH and in tmux.  Rich ``Text`` lines
  (``to_strips`` makes Textual strips).

Kitty graphics and Sixel are not used: ``textual-image`` 0.12 (the newest on
the index) raises ``ValueError: height and width must be > 0`` inside Textual
8's ``run_test`` (its Sixel and TGP widgets need the terminal's pixel size), and
it probes the terminal on import; half-blocks need neither.

Pillow, Rich and Textual are imported lazily: importing this module costs
nothing for headless commands.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .text import clean, is_web_url

DEFAULT_MAX_BYTES = 20 * 1024**2  # one preview's download
DEFAULT_CACHE_BYTES = 200 * 1024**2  # the whole preview cache on disk
HEAD_BYTES = 256 * 1024  # of a video/audio file, read to find its duration
EXPIRED_STATUSES = frozenset({403, 404, 410})
UPPER_HALF = "\u2580"  # ▀


class PreviewError(Exception):
    """An image that cannot be read (not an image, damaged, a decompression bomb)."""


def cache_dir() -> Path:
    """``$TASKTUI_CACHE`` or ``<user cache dir>/tasktui``, then ``previews``."""
    root = os.environ.get("TASKTUI_CACHE")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("tasktui")
    return Path(root).expanduser() / "previews"


# ---------------------------------------------------------------- cache


class PreviewCache:
    """A folder of ``<sha256(url)>.json`` (what is known) and ``.bin`` (the bytes,
    images only).  Reading an entry refreshes its time; ``put`` evicts the least
    recently used entries until the folder holds at most ``max_bytes``."""

    def __init__(self, root: str | os.PathLike[str] | None = None, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.root = Path(root) if root is not None else cache_dir()
        self.max_bytes = max_bytes

    def _paths(self, url: str) -> tuple[Path, Path]:
        name = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()
        return self.root / f"{name}.json", self.root / f"{name}.bin"

    def get(self, url: str) -> tuple[dict, bytes | None] | None:
        meta_path, data_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            data = data_path.read_bytes() if meta.get("has_data") else None
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("url") != url:
            return None
        now = time.time()
        for p in (meta_path, data_path):
            try:
                os.utime(p, (now, now))
            except OSError:
                pass
        return meta, data

    def put(self, url: str, meta: dict, data: bytes | None) -> None:
        meta_path, data_path = self._paths(url)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if data is not None:
                _atomic_write(data_path, data)
            _atomic_write(meta_path, json.dumps({**meta, "url": url, "has_data": data is not None}).encode())
        except OSError:
            return  # a cache that cannot be written is no cache, not an error
        self.evict()

    def size(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _entries(self) -> list[tuple[float, int, str]]:
        """(last use, bytes, stem) of each entry."""
        out: dict[str, list[float]] = {}
        try:
            with os.scandir(self.root) as it:
                for e in it:
                    stem, dot, ext = e.name.rpartition(".")
                    if not dot or ext not in ("json", "bin"):
                        continue
                    try:
                        st = e.stat()
                    except OSError:
                        continue
                    slot = out.setdefault(stem, [0.0, 0])
                    slot[0] = max(slot[0], st.st_mtime)
                    slot[1] += st.st_size
        except OSError:
            return []
        return [(t, int(n), stem) for stem, (t, n) in out.items()]

    def evict(self) -> None:
        entries = sorted(self._entries())
        total = sum(n for _, n, _ in entries)
        for _, n, stem in entries:
            if total <= self.max_bytes:
                break
            for ext in ("json", "bin"):
                try:
                    (self.root / f"{stem}.{ext}").unlink()
                except OSError:
                    pass
            total -= n


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- fetching


@dataclass(slots=True)
class Preview:
    """What a preview of one result link found.

    ``status``: ok, expired (403/404/410), too_large, refused (not http(s)),
    error.  ``kind``: image, video, audio, other.  ``data``: the image's bytes."""

    url: str
    status: str
    kind: str | None = None
    content_type: str | None = None
    size: int | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    data: bytes | None = field(default=None, repr=False)
    message: str | None = None
    cached: bool = False

    def describe(self) -> str:
        """One line: ``video/mp4 · 1.2 MB · 0:04.5`` (or why there is nothing)."""
        if self.status != "ok":
            return self.message or self.status
        parts = [self.content_type or self.kind or "unknown type"]
        if self.width and self.height:
            parts.append(f"{self.width}×{self.height}")
        if self.size is not None:
            parts.append(human_bytes(self.size))
        if self.duration is not None:
            parts.append(duration_text(self.duration))
        return " · ".join(parts)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def duration_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    m, s = divmod(seconds, 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def kind_of(content_type: str | None, head: bytes = b"") -> str:
    """image / video / audio / other, from the type, else from the first bytes."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    major = ctype.split("/")[0]
    if major in ("image", "video", "audio") and ctype != "image/svg+xml":
        return major
    sniffed = sniff(head)
    return sniffed[0] if sniffed else "other"


def sniff(head: bytes) -> tuple[str, str] | None:
    """(kind, content type) from magic bytes, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "image/gif"
    if head[4:8] == b"ftyp":
        return ("audio", "audio/mp4") if head[8:11] == b"M4A" else ("video", "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "video/webm"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio", "audio/wav"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio", "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio", "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio", "audio/flac"
    return None


def mp4_duration(head: bytes) -> float | None:
    """Seconds from an MP4/MOV's ``moov/mvhd`` box when it is in ``head``."""
    def boxes(data: bytes, start: int, end: int):
        i = start
        while i + 8 <= end:
            size, kind = struct.unpack(">I4s", data[i:i + 8])
            header = 8
            if size == 1 and i + 16 <= end:
                size = struct.unpack(">Q", data[i + 8:i + 16])[0]
                header = 16
            elif size == 0:
                size = end - i
            if size < header:
                return
            yield kind, i + header, min(i + size, end)
            i += size

    for kind, body, end in boxes(head, 0, len(head)):
        if kind != b"moov":
            continue
        for sub, sbody, send in boxes(head, body, end):
            if sub != b"mvhd" or send - sbody < 20:
                continue
            version = head[sbody]
            try:
                if version == 1:
                    timescale, duration = struct.unpack(">IQ", head[sbody + 20:sbody + 32])
                else:
                    timescale, duration = struct.unpack(">II", head[sbody + 12:sbody + 20])
            except struct.error:
                return None
            if timescale and duration not in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
                return duration / timescale
            return None
    return None


def _header_duration(headers: httpx.Headers) -> float | None:
    for name in ("x-content-duration", "content-duration"):
        try:
            value = float(headers.get(name, ""))
        except ValueError:
            continue
        if 0 < value < 10**7:
            return value
    return None


def _length(headers: httpx.Headers) -> int | None:
    try:
        value = int(headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _from_cache(url: str, hit: tuple[dict, bytes | None]) -> Preview:
    meta, data = hit
    known = {k: meta.get(k) for k in ("kind", "content_type", "size", "duration", "width", "height")}
    return Preview(url, "ok", data=data, cached=True, **known)


def fresh_client(timeout: float = 20.0) -> httpx.AsyncClient:
    """No default headers but a user agent, no auth, no cookies, no proxy settings
    from the environment: nothing of the user's reaches a file host."""
    return httpx.AsyncClient(headers={"User-Agent": "tasktui-preview"}, follow_redirects=True,
                             timeout=httpx.Timeout(timeout), trust_env=False)


async def fetch_preview(url: str, cache: PreviewCache | None = None, max_bytes: int = DEFAULT_MAX_BYTES, *,
                        client: httpx.AsyncClient | None = None, duration: float | None = None) -> Preview:
    """Fetch what a preview of ``url`` needs (see the module doc).  Never raises for
    the link's trouble: the Preview says it.  ``duration``: the provider's figure,
    used when the file does not tell."""
    if not is_web_url(url):
        return Preview(url, "refused", message="not an http(s) link: never fetched")
    if cache is not None:
        hit = cache.get(url)
        if hit is not None:
            return _from_cache(url, hit)
    # One fetch per link at a time: the detail and the summary pane (or a resize that
    # redraws both) asking for the same link while it loads share the one download.
    key = (id(asyncio.get_running_loop()), url, max_bytes)
    entry = _INFLIGHT.get(key)
    if entry is None:
        entry = _INFLIGHT[key] = [asyncio.ensure_future(
            _fetch_and_keep(url, cache, max_bytes, client, duration)), 0]
        entry[0].add_done_callback(lambda _done: _INFLIGHT.pop(key, None))
    entry[1] += 1
    try:
        return await asyncio.shield(entry[0])
    except asyncio.CancelledError:
        if entry[1] == 1:
            entry[0].cancel()  # the last one waiting left (the screen closed): stop the download
        raise
    finally:
        entry[1] -= 1


# (loop, url, cap) -> [the fetch under way, how many wait for it]
_INFLIGHT: dict[tuple[int, str, int], list[Any]] = {}


async def _fetch_and_keep(url: str, cache: PreviewCache | None, max_bytes: int,
                          client: httpx.AsyncClient | None, duration: float | None) -> Preview:
    own = client is None
    http = fresh_client() if own else client
    if not own:
        from .results import check_client

        check_client(http)
    try:
        preview = await _fetch(http, url, max_bytes, duration)
    except (httpx.HTTPError, OSError) as exc:
        preview = Preview(url, "error", message=clean(f"cannot fetch the preview: {type(exc).__name__} {exc}", 300))
    finally:
        if own:
            await http.aclose()
    if preview.status == "ok" and cache is not None:
        cache.put(url, {"kind": preview.kind, "content_type": preview.content_type, "size": preview.size,
                        "duration": preview.duration, "width": preview.width, "height": preview.height},
                  preview.data)
    return preview


async def _fetch(http: httpx.AsyncClient, url: str, max_bytes: int, duration: float | None) -> Preview:
    async with http.stream("GET", url) as resp:
        if resp.status_code in EXPIRED_STATUSES:
            return Preview(url, "expired", message=f"the link has expired (HTTP {resp.status_code} from the file host)")
        if resp.status_code != 200:
            return Preview(url, "error", message=f"HTTP {resp.status_code} from the file host")
        ctype = clean(resp.headers.get("content-type", ""), 100).split(";")[0].strip().lower() or None
        size = _length(resp.headers)
        head_duration = _header_duration(resp.headers)
        body = bytearray()
        declared = kind_of(ctype)
        generic = ctype in (None, "application/octet-stream", "binary/octet-stream")
        # an image is read whole; a video or audio file only as far as its header; a
        # file of another named type not at all; an untyped one whole (it may be an image)
        limit = max_bytes if declared == "image" or generic else HEAD_BYTES if declared != "other" else 64
        if (declared == "image" or generic) and size is not None and size > max_bytes:
            return Preview(url, "too_large", kind=declared, content_type=ctype, size=size,
                           message=f"too large to preview ({human_bytes(size)}, cap {human_bytes(max_bytes)})")
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) >= limit:
                break
        if limit == max_bytes and len(body) >= max_bytes and (size is None or size > len(body)):
            return Preview(url, "too_large", kind=declared, content_type=ctype, size=size,
                           message=f"too large to preview (over the cap of {human_bytes(max_bytes)})")
    data = bytes(body)
    kind = kind_of(ctype, data[:64])
    if ctype in (None, "application/octet-stream", "binary/octet-stream"):
        sniffed = sniff(data[:64])
        ctype = sniffed[1] if sniffed else ctype
    if kind == "image":
        try:
            width, height = image_size(data)
        except PreviewError as exc:
            return Preview(url, "error", kind=kind, content_type=ctype, size=size, message=str(exc))
        return Preview(url, "ok", kind=kind, content_type=ctype, size=size if size is not None else len(data),
                       width=width, height=height, data=data)
    found = head_duration
    if found is None and kind in ("video", "audio"):
        found = mp4_duration(data)
    return Preview(url, "ok", kind=kind, content_type=ctype, size=size, duration=found if found is not None
                   else duration)


# ---------------------------------------------------------------- drawing


def _open(image_bytes: bytes):
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(image_bytes))
        img.size  # noqa: B018 - parsed header
    except Image.DecompressionBombError as exc:
        raise PreviewError(f"image too large to draw: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for bad input
        raise PreviewError(f"not an image Pillow can read ({type(exc).__name__})") from None
    return img


def image_size(image_bytes: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from the header only."""
    return _open(image_bytes).size


def fit(img_w: int, img_h: int, width: int, height: int) -> tuple[int, int]:
    """(columns, pixel rows) of an image fitted into ``width`` x ``height`` cells
    (two pixel rows a cell), aspect ratio kept: a cell is about twice as tall as
    wide, so one cell column and half a cell row make a square pixel."""
    if img_w <= 0 or img_h <= 0 or width <= 0 or height <= 0:
        return 0, 0
    scale = min(width / img_w, (2 * height) / img_h)
    cols = max(1, min(width, round(img_w * scale)))
    rows = max(1, min(2 * height, round(img_h * scale)))
    return cols, rows


def pixels(image_bytes: bytes, width: int, height: int,
           background: tuple[int, int, int] = (0, 0, 0)) -> list[list[tuple[int, int, int]]]:
    """The image's RGB pixels fitted into ``width`` x ``height`` cells (rows of
    columns; an odd last row is padded with ``background``).  The first frame of
    an animation; transparency composited over ``background``."""
    from PIL import Image

    img = _open(image_bytes)
    cols, rows = fit(img.size[0], img.size[1], width, height)
    if not cols:
        return []
    try:
        if img.format == "JPEG":
            img.draft("RGB", (cols, rows))  # decode at a reduced scale: a 4 MP photo in a few ms
        img.seek(0)
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            base = Image.new("RGBA", rgba.size, (*background, 255))
            img = Image.alpha_composite(base, rgba).convert("RGB")
        elif img.mode != "RGB":
            img = img.convert("RGB")
        else:
            img.load()  # decode now (an RGB image needs no converted copy: 10 % of a 4 MP PNG's time)
        if img.size != (cols, rows):
            shrink = img.size[0] >= cols and img.size[1] >= rows
            img = img.resize((cols, rows), Image.Resampling.BOX if shrink else Image.Resampling.NEAREST,
                             reducing_gap=3.0 if shrink else None)
    except PreviewError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file fails at decode time
        raise PreviewError(f"the image cannot be decoded ({type(exc).__name__})") from None
    data = img.tobytes()
    out = []
    for y in range(rows):
        row = data[y * cols * 3:(y + 1) * cols * 3]
        out.append([(row[i], row[i + 1], row[i + 2]) for i in range(0, len(row), 3)])
    if rows % 2:
        out.append([background] * cols)
    return out


def render_halfblocks(image_bytes: bytes, width: int, height: int,
                      background: tuple[int, int, int] = (0, 0, 0)) -> list[Any]:
    """The image as Rich ``Text`` lines of ``▀`` cells (fg = upper pixel, bg = lower),
    at most ``width`` x ``height`` cells, aspect ratio kept.  ``PreviewError`` for
    bytes that are no readable image."""
    from rich.color import Color, ColorType
    from rich.color_triplet import ColorTriplet
    from rich.style import Style
    from rich.text import Span, Text

    grid = pixels(image_bytes, width, height, background)
    colours: dict[tuple[int, int, int], Color] = {}
    styles: dict[tuple, Style] = {}

    def colour(rgb: tuple[int, int, int]) -> Color:
        c = colours.get(rgb)
        if c is None:
            c = colours[rgb] = Color("#%02x%02x%02x" % rgb, ColorType.TRUECOLOR, triplet=ColorTriplet(*rgb))
        return c

    lines = []
    for y in range(0, len(grid), 2):
        upper, lower = grid[y], grid[y + 1]
        spans: list[Span] = []
        start, prev = 0, None
        for x, pair in enumerate(zip(upper, lower)):
            if pair != prev:
                if prev is not None:
                    spans.append(Span(start, x, styles[prev]))
                if pair not in styles:
                    styles[pair] = Style.from_color(colour(pair[0]), colour(pair[1]))
                start, prev = x, pair
        if prev is not None:
            spans.append(Span(start, len(upper), styles[prev]))
        lines.append(Text(UPPER_HALF * len(upper), spans=spans, no_wrap=True, overflow="crop"))
    return lines


def as_text(lines: list[Any]) -> Any:
    """One Rich ``Text`` of the lines (for a ``Static``)."""
    from rich.text import Text

    return Text("\n", no_wrap=True).join(lines)


def to_strips(lines: list[Any]) -> list[Any]:
    """Textual ``Strip`` objects of the lines (for a widget's ``render_line``)."""
    from rich.segment import Segment
    from textual.strip import Strip

    out = []
    for line in lines:
        segments = [Segment(line.plain[span.start:span.end], span.style) for span in line.spans]
        out.append(Strip(segments, line.cell_len))
    return out


# ---------------------------------------------------------------- opening


def can_open_locally(environ: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a browser or viewer can show something here: not over SSH, and on
    Linux only with a display.  Otherwise the caller copies the URL and says so."""
    import sys

    env = os.environ if environ is None else environ
    platform = platform or sys.platform
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return False
    if platform.startswith(("darwin", "win")):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def open_url(url: str) -> bool:
    """Open an http(s) link (or a local file path that exists) in the local browser or
    viewer; False when it is no web link, or nothing can open it."""
    import webbrowser

    if is_web_url(url):
        target = url
    elif os.path.isfile(url):
        target = Path(url).resolve().as_uri()
    else:
        return False
    try:
        return bool(webbrowser.open(target))
    except webbrowser.Error:
        return False
