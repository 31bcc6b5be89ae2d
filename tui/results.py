"""Downloading the results of succeeded tasks (``tasktui pull``).

Pure asyncio + httpx; no Textual.  Rules this module keeps:

- Only http(s) links are fetched.  The client is a fresh one with no default
  headers, no auth and no cookies: a provider's API key goes to its own API base
  URL only, never to a file host (result links are public or pre-signed).
- Files are named by us, never by the server: ``{provider}/{label or
  kind}/{task_id}-{n}.{ext}`` under the destination, the extension from the
  content type (else from the URL path), every component sanitised, and the
  final path checked to lie inside the destination.  Content-Disposition is
  ignored.
- A download goes to ``{task_id}-{n}.part`` and is renamed only once complete
  (length as promised, hash as given by the host): a final name always holds a
  complete file.  A run that finds a ``.part`` asks for the rest with a Range
  request (206 appends, 200 starts again).
- A file already there is checked with a Range request from its size (416 or an
  equal Content-Length: complete, nothing is transferred).
- 403/404/410 from the file host is "expired", not an HTTP error.
- A size cap (``max_bytes``) stops a file that is or grows too large.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import unquote, urlsplit

import httpx

from .model import SUCCEEDED, Task
from .text import clean, is_web_url

DEFAULT_MAX_BYTES = 2 * 1024**3  # one result file; beyond this it is refused
EXPIRED_STATUSES = frozenset({403, 404, 410})
MAX_COMPONENT = 100  # characters of one sanitised path component (bytes stay < 255)
USER_AGENT = "tasktui-pull"
# Headers that carry credentials: a client given to pull must not send them by default.
_SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "x-key", "cookie", "proxy-authorization")

# Content type -> extension.  mimetypes would do most, but its answers vary by
# platform (image/jpeg -> .jpe on some); this table is what a user expects.
EXTENSIONS: dict[str, str] = {
    "image/png": "png", "image/jpeg": "jpg", "image/jpg": "jpg", "image/pjpeg": "jpg",
    "image/webp": "webp", "image/gif": "gif", "image/avif": "avif", "image/heic": "heic",
    "image/heif": "heif", "image/bmp": "bmp", "image/tiff": "tiff", "image/svg+xml": "svg",
    "video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov", "video/x-matroska": "mkv",
    "video/mpeg": "mpeg", "video/ogg": "ogv",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav",
    "audio/wave": "wav", "audio/ogg": "ogg", "audio/flac": "flac", "audio/x-flac": "flac",
    "audio/aac": "aac", "audio/mp4": "m4a", "audio/x-m4a": "m4a", "audio/webm": "weba",
    "application/zip": "zip", "application/json": "json", "application/pdf": "pdf",
    "model/gltf-binary": "glb", "text/plain": "txt",
}
_EXT_OK = re.compile(r"^[a-z0-9]{1,8}$")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


# ---------------------------------------------------------------- names


def safe_component(text: Any, fallback: str = "_") -> str:
    """One path component that can only name an entry inside its folder.

    Control and invisible characters, separators (/ and \\), NUL, ``:`` and the
    characters Windows forbids become ``_``; leading dots and spaces go (no ``.``,
    ``..`` or hidden files); reserved device names get a ``_`` prefix; the result
    is at most MAX_COMPONENT characters.  A name that had to change gets a short
    hash of the original so that two different names never collide."""
    raw = "" if text is None else str(text)
    out = clean(raw, 4 * MAX_COMPONENT)
    out = unicodedata.normalize("NFC", out)
    out = re.sub(r'[\x00/\\:*?"<>|]', "_", out)
    out = out.strip().lstrip(". ").rstrip(". ")
    if out.split(".")[0].lower() in _RESERVED:
        out = "_" + out
    changed = out != raw
    if len(out) > MAX_COMPONENT:
        out, changed = out[:MAX_COMPONENT], True
    if not out:
        return fallback if not raw else f"{fallback}~{_short_hash(raw)}"
    if changed and raw:
        out = f"{out}~{_short_hash(raw)}"
    return out


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def extension(content_type: str | None, url: str) -> str:
    """The file extension for a response: from its content type, else from the
    URL path's last suffix (letters and digits only), else ``bin``."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in EXTENSIONS:
        return EXTENSIONS[ctype]
    path = unquote(urlsplit(url).path)
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    if "." in name:
        ext = name.rsplit(".", 1)[-1].lower()
        if _EXT_OK.match(ext):
            return "jpg" if ext == "jpeg" else ext
    return "bin"


def target_folder(dest: Path, task: Task) -> Path:
    """``dest/{provider}/{label or kind}`` with both parts sanitised."""
    return dest / safe_component(task.provider) / safe_component(task.label or task.kind or "results")


def file_stem(task: Task, n: int) -> str:
    """``{task_id}-{n}`` sanitised (n counts from 1)."""
    return f"{safe_component(task.task_id)}-{n}"


def inside(dest: Path, path: Path) -> bool:
    """True when ``path`` (symlinks resolved) lies inside ``dest``."""
    try:
        root = dest.resolve()
        return os.path.commonpath([root, path.resolve()]) == str(root)
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------- results


@dataclass(slots=True)
class PullResult:
    """What became of one result link.

    ``status``: ``downloaded`` (complete now, ``resumed`` when a partial file was
    continued), ``skipped`` (already complete), ``expired`` (403/404/410 from the
    file host), ``too_large`` (over the cap), ``refused`` (not an http(s) link, or
    a name outside the destination), ``error`` (anything else; a partial file is
    kept to resume).
    """

    provider: str
    task_id: str
    n: int
    url: str
    status: str
    path: str | None = None
    bytes: int = 0  # transferred in this run
    size: int | None = None  # the file's full size, when known
    http_status: int | None = None
    message: str | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.task_id}"

    @property
    def ok(self) -> bool:
        return self.status in ("downloaded", "resumed", "skipped")

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "task_id": self.task_id, "n": self.n, "url": self.url,
            "status": self.status, "path": self.path, "bytes": self.bytes, "size": self.size,
            "http_status": self.http_status, "message": self.message,
        }


@dataclass(slots=True)
class Progress:
    """A progress report: one file's and the whole run's bytes."""

    key: str
    n: int
    path: str | None
    done: int  # bytes of this file on disk
    total: int | None  # its full size, when known
    overall_done: int  # bytes transferred in this run, all files
    overall_total: int | None  # bytes to transfer, over the files whose size is known so far
    speed: float  # bytes per second, over this run
    eta: float | None  # seconds left for the known bytes
    finished: PullResult | None = None  # set on the file's last report


ProgressCallback = Callable[[Progress], Any]


def fresh_client(timeout: float = 30.0) -> httpx.AsyncClient:
    """A client for file hosts: no default headers beyond a user agent, no auth,
    no cookies kept, redirects followed (pre-signed links often redirect)."""
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
        timeout=httpx.Timeout(timeout, read=max(timeout, 60.0)),
        trust_env=False,
    )


def check_client(client: httpx.AsyncClient) -> None:
    """Refuse a client that would send credentials to a file host."""
    names = {k.lower() for k in client.headers.keys()}
    bad = sorted(names & set(_SECRET_HEADERS))
    if bad or client.auth is not None or len(client.cookies):
        raise ValueError("a download client must carry no credentials"
                         f" ({', '.join(bad) or 'auth or cookies'}): use results.fresh_client()")


def host_hash(headers: httpx.Headers) -> tuple[str, str] | None:
    """(algorithm, hex digest) the file host gives for the whole body, if any:
    ``x-goog-hash: md5=<b64>`` (Google Cloud Storage), ``Content-MD5: <b64>``."""
    for value in headers.get_list("x-goog-hash"):
        for part in value.split(","):
            name, _, digest = part.strip().partition("=")
            if name.lower() == "md5" and digest:
                hexd = _b64_hex(digest)
                if hexd:
                    return "md5", hexd
    digest = headers.get("content-md5")
    if digest:
        hexd = _b64_hex(digest)
        if hexd:
            return "md5", hexd
    return None


def _b64_hex(value: str) -> str | None:
    try:
        raw = base64.b64decode(value.strip() + "==", validate=False)
    except (ValueError, TypeError):
        return None
    return raw.hex() if len(raw) == 16 else None


def _file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` -> (start, total); ``bytes */TOTAL`` -> (None, total)."""
    m = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _length(headers: httpx.Headers) -> int | None:
    try:
        value = int(headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _existing(folder: Path, stem: str) -> Path | None:
    """A complete file of ``stem`` from an earlier run (any extension), if any."""
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    for name in sorted(names):
        if name.startswith(stem + ".") and not name.endswith(".part") and "." not in name[len(stem) + 1:]:
            return folder / name
    return None


class _Run:
    """Shared counters of one pull (for overall progress)."""

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self.on_progress = on_progress
        self.started = time.monotonic()
        self.done = 0
        self.total = 0  # bytes still expected, summed over files whose size is known

    def report(self, key: str, n: int, path: Path | None, done: int, total: int | None,
               finished: PullResult | None = None) -> None:
        if self.on_progress is None:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        speed = self.done / elapsed
        left = max(self.total - self.done, 0)
        eta = left / speed if speed > 0 and self.total else None
        self.on_progress(Progress(key, n, str(path) if path else None, done, total, self.done,
                                  self.total or None, speed, eta, finished))


async def pull(store: Any, tasks: Iterable[Task], dest_dir: str | os.PathLike[str], *,
               client: httpx.AsyncClient | None = None, on_progress: ProgressCallback | None = None,
               max_bytes: int | None = None, concurrency: int = 3) -> list[PullResult]:
    """Download every result link of the succeeded ``tasks`` under ``dest_dir``.

    Records the complete files of each task in ``store`` (``set_files``; pass
    ``store=None`` not to).  ``client``: a client with no credentials (checked),
    else a fresh one.  ``on_progress`` gets a ``Progress`` per chunk and one with
    ``finished`` set per file.  Never raises for one file's trouble: each link
    gets a ``PullResult``.
    """
    dest = Path(dest_dir).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    cap = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    own = client is None
    http = fresh_client() if own else client
    check_client(http)
    run = _Run(on_progress)
    limit = asyncio.Semaphore(max(1, concurrency))
    chosen = [t for t in tasks if t.state == SUCCEEDED and t.results]

    async def one(task: Task, n: int, url: str) -> PullResult:
        async with limit:
            try:
                result = await _fetch(http, run, dest, task, n, url, cap)
            except Exception as exc:  # noqa: BLE001 - one link's trouble never stops the rest
                result = PullResult(task.provider, task.task_id, n, url, "error",
                                    message=clean(f"{type(exc).__name__}: {exc}", 300))
            run.report(task.key, n, Path(result.path) if result.path else None,
                       result.size or 0, result.size, finished=result)
            return result

    try:
        jobs = [one(t, n, url) for t in chosen for n, url in enumerate(t.results, 1)]
        results = list(await asyncio.gather(*jobs))
    finally:
        if own:
            await http.aclose()
    if store is not None:
        record(store, chosen, results)
    return results


def record(store: Any, tasks: list[Task], results: list[PullResult]) -> None:
    """Write each task's complete files to the store: those of this run first, then
    earlier ones that still exist."""
    by_key: dict[str, list[str]] = {}
    for r in results:
        if r.ok and r.path:
            by_key.setdefault(r.key, []).append(r.path)
    for task in tasks:
        current = store.get(task.key) if hasattr(store, "get") else None
        old = list(current.files) if current is not None else list(task.files)
        new = by_key.get(task.key, [])
        keep = new + [p for p in old if p not in new and os.path.isfile(p)]
        if keep != old:
            store.set_files(task.key, keep)


async def _fetch(http: httpx.AsyncClient, run: _Run, dest: Path, task: Task, n: int, url: str,
                 cap: int) -> PullResult:
    base = PullResult(task.provider, task.task_id, n, url, "refused")
    if not is_web_url(url) or not urlsplit(url).hostname:
        base.message = "not an http(s) link: never fetched"
        return base
    folder = target_folder(dest, task)
    stem = file_stem(task, n)
    part = folder / f"{stem}.part"
    if not inside(dest, part):
        base.message = "its file name would fall outside the destination folder"
        return base
    folder.mkdir(parents=True, exist_ok=True)
    if not inside(dest, folder):  # a symlinked folder pointing out
        base.message = "its folder leads outside the destination folder"
        return base

    final = _existing(folder, stem)
    if final is not None and inside(dest, final):
        checked = await _check_complete(http, final, url, base)
        if checked is not None:
            return checked
        # the local file is not what the host has: download it again (a .part of its own)
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    async with http.stream("GET", url, headers=headers) as resp:
        base.http_status = resp.status_code
        if resp.status_code in EXPIRED_STATUSES:
            base.status = "expired"
            base.message = f"the link has expired (HTTP {resp.status_code} from the file host)"
            return base
        if resp.status_code == 416 and offset:
            part.unlink(missing_ok=True)  # the .part is no prefix of the file: start again
            return await _fetch(http, run, dest, task, n, url, cap)
        if resp.status_code not in (200, 206):
            base.status = "error"
            base.message = f"HTTP {resp.status_code} from the file host"
            return base
        resumed = False
        if resp.status_code == 206:
            start, total = _content_range(resp.headers.get("content-range"))
            if start != offset:  # not the range we asked for: start again
                part.unlink(missing_ok=True)
                return await _fetch(http, run, dest, task, n, url, cap)
            resumed = True
            length = _length(resp.headers)
            if total is None and length is not None:
                total = offset + length
        else:
            offset = 0
            total = _length(resp.headers)
        base.size = total
        if total is not None and total > cap:
            base.status = "too_large"
            base.message = f"{total} bytes is over the cap of {cap} bytes"
            return base
        ext = extension(resp.headers.get("content-type"), str(resp.url))
        final = folder / f"{stem}.{ext}"
        if not inside(dest, final):
            base.message = "its file name would fall outside the destination folder"
            return base
        expected = host_hash(resp.headers) if not resumed else None
        if total is not None:
            run.total += total - offset
        done = offset
        hasher = hashlib.md5() if expected else None
        # unbuffered appends, chunks as they arrive (a chunk size would hold bytes back):
        # what arrived is on disk even if the process is killed
        with open(part, "ab" if resumed else "wb", buffering=0) as out:
            try:
                async for chunk in resp.aiter_raw() if _identity(resp) else resp.aiter_bytes():
                    if done + len(chunk) > cap:
                        out.close()
                        part.unlink(missing_ok=True)
                        base.status = "too_large"
                        base.message = f"more than the cap of {cap} bytes"
                        base.bytes = done - offset
                        return base
                    out.write(chunk)
                    if hasher:
                        hasher.update(chunk)
                    done += len(chunk)
                    run.done += len(chunk)
                    run.report(task.key, n, final, done, total)
            except (httpx.TransportError, httpx.StreamError) as exc:
                base.status = "error"
                base.bytes = done - offset
                base.message = clean(f"the transfer broke off after {done} bytes ({type(exc).__name__});"
                                     " run pull again to resume", 300)
                base.path = None
                return base
    base.bytes = done - offset
    if total is not None and done != total:
        base.status = "error"
        base.message = f"got {done} of {total} bytes; run pull again to resume"
        return base
    if expected and hasher and hasher.hexdigest() != expected[1]:
        part.unlink(missing_ok=True)
        base.status = "error"
        base.message = f"content hash mismatch ({expected[0]}): the file was discarded"
        return base
    os.replace(part, final)
    base.status = "resumed" if resumed else "downloaded"
    base.path = str(final.resolve())
    base.size = done
    return base


def _identity(resp: httpx.Response) -> bool:
    """True when the body is not content-encoded: read raw so that a Range offset
    counts the bytes of the file itself."""
    return resp.headers.get("content-encoding", "identity").lower() in ("", "identity")


async def _check_complete(http: httpx.AsyncClient, final: Path, url: str,
                          base: PullResult) -> PullResult | None:
    """Is the file already there the host's whole file?  A Range request from its
    size: 416 (nothing after it) or an answer whose length equals it means yes,
    nothing is transferred.  An expired link keeps the local copy.  None: no."""
    size = final.stat().st_size
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={size}-"} if size else {})}
    async with http.stream("GET", url, headers=headers) as resp:
        base.http_status = resp.status_code
        total: int | None = None
        if resp.status_code == 416:
            _, total = _content_range(resp.headers.get("content-range"))
            total = size if total is None else total
        elif resp.status_code == 206:
            _, total = _content_range(resp.headers.get("content-range"))
        elif resp.status_code == 200:
            total = _length(resp.headers)
            expected = host_hash(resp.headers)
            if total == size and expected and _file_digest(final, expected[0]) != expected[1]:
                total = None  # same size, other content
        elif resp.status_code in EXPIRED_STATUSES:
            base.status, base.path, base.size = "skipped", str(final.resolve()), size
            base.message = f"already here; the link has expired (HTTP {resp.status_code})"
            return base
        else:
            base.status, base.path, base.size = "skipped", str(final.resolve()), size
            base.message = f"already here; the host answered HTTP {resp.status_code} to the check"
            return base
    if total == size:
        base.status, base.path, base.size = "skipped", str(final.resolve()), size
        base.message = "already complete"
        return base
    return None


# ---------------------------------------------------------------- expiry

# Result links whose lifetime a provider states, counted from the task's end.
# EvoLink: "Note: Download URLs expire in 24 hours. Save results promptly."
# (EvoLinkAI/evolink-media-mcp, packages/core/src/tools/check-task.ts).
LINK_LIFETIME: dict[str, float] = {"evolink": 24 * 3600.0}


def expires_at(task: Task) -> float | None:
    """When the task's result links stop working, if the provider says: a time in
    its answer (Upscayl's file ``expiresAt``, kept in ``details["expires"]``), else
    the stated lifetime after the task ended (EvoLink: 24 h).  None: not stated."""
    from .model import epoch

    stated = epoch(task.details.get("expires")) if task.details.get("expires") else None
    if stated is not None:
        return stated
    lifetime = LINK_LIFETIME.get(task.provider)
    if lifetime and task.state == SUCCEEDED and task.finished_at is not None:
        return task.finished_at + lifetime
    return None


def expiry_text(task: Task, now: float) -> str | None:
    """``expires in 3 h`` / ``expires in 25 min`` / ``expired 2 h ago`` (None: not stated)."""
    at = expires_at(task)
    if at is None or not task.results:
        return None
    left = at - now
    span = _span(abs(left))
    return f"expires in {span}" if left > 0 else f"expired {span} ago"


def expiry_soon(task: Task, now: float) -> bool:
    """True in the last quarter of the links' lifetime, and once they have expired:
    the row's marker.  The lifetime runs from the task's end (or creation)."""
    at = expires_at(task)
    if at is None or not task.results:
        return False
    start = task.finished_at or task.created_at
    if start is None or start >= at:
        return at - now < 3600  # no known start: the last hour
    return (at - now) <= (at - start) / 4


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


# ---------------------------------------------------------------- command


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class _Lines:
    """Plain progress for a pipe or a log: one line per finished file."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __call__(self, p: Progress) -> None:
        r = p.finished
        if r is None:
            return
        where = r.path or f"{r.provider}:{r.task_id} #{r.n}"
        extra = f" ({r.message})" if r.message and r.status not in ("downloaded", "resumed") else ""
        size = f" {human_bytes(r.size)}" if r.size is not None and r.ok else ""
        print(f"{r.status:<10} {where}{size}{extra}", file=self.stream, flush=True)


class _Bars:
    """A terminal's progress: a bar per file being fetched and one overall
    (bytes, speed, ETA), with Rich (no Textual)."""

    def __init__(self, stream, force_terminal: bool | None = None, width: int | None = None) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress as Bars, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self.console = Console(file=stream, force_terminal=force_terminal, width=width)
        self.bars = Bars(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                         TransferSpeedColumn(), TimeRemainingColumn(), console=self.console,
                         transient=False)
        self.overall = self.bars.add_task("all files", total=None)
        self.files: dict[tuple[str, int], Any] = {}

    def __enter__(self) -> "_Bars":
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def __call__(self, p: Progress) -> None:
        ident = (p.key, p.n)
        bar = self.files.get(ident)
        if bar is None and p.finished is None:
            name = clean(Path(p.path).name if p.path else f"{p.key} #{p.n}", 40)
            bar = self.files[ident] = self.bars.add_task(name, total=p.total)
        if bar is not None:
            self.bars.update(bar, completed=p.done, total=p.total)
        self.bars.update(self.overall, completed=p.overall_done, total=p.overall_total)
        r = p.finished
        if r is not None:
            if bar is not None:
                self.bars.remove_task(bar)
                self.files.pop(ident, None)
            where = clean(r.path or f"{r.provider}:{r.task_id} #{r.n}", 200)
            extra = f" ({clean(r.message, 200)})" if r.message and not r.ok else ""
            self.console.print(f"{r.status:<10} {where}{extra}", markup=False, highlight=False)


def add_arguments(parser: Any) -> None:
    """The options of ``tasktui pull`` (defined with the CLI, which builds them without httpx)."""
    from .cli import pull_arguments

    pull_arguments(parser)


def cmd_pull(args: Any) -> int:
    """``tasktui pull``: exit 0 when every link is downloaded or already here, 1 when
    some expired, were too large or failed, 2 for trouble before any download."""
    from . import headless

    @headless.command
    def run(args: Any) -> int:
        pred = headless.matcher(getattr(args, "filter", "") or "")
        store = headless.open_store(args)
        try:
            tasks = [t for t in store.tasks() if pred(t) and t.state == SUCCEEDED and t.results]
            if not tasks:
                headless._say("no succeeded tasks with results" + (" match the filter" if args.filter else ""))
                if args.json:
                    print("[]")
                return headless.EXIT_OK
            mb = getattr(args, "max_size", None)
            cap = int(mb * 10**6) if mb else None
            stream = sys.stderr
            if stream.isatty() and not args.json:
                with _Bars(stream) as bars:
                    results = asyncio.run(pull(store, tasks, args.dir, on_progress=bars, max_bytes=cap))
            else:
                results = asyncio.run(pull(store, tasks, args.dir, on_progress=None if args.json else _Lines(stream),
                                           max_bytes=cap))
        finally:
            store.close()
        if args.json:
            print(headless.dumps([r.to_dict() for r in results], indent=2))
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        headless._say(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        return headless.EXIT_OK if all(r.ok for r in results) else headless.EXIT_BAD_END

    return run(args)


def main(argv: list[str] | None = None) -> int:
    """``python -m tui.results`` = ``tasktui pull`` (until the CLI wires it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="tasktui pull", description="download the results of succeeded tasks")
    add_arguments(parser)
    parser.add_argument("--db", metavar="PATH", default=None, help="task database")
    return cmd_pull(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
