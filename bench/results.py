"""Results: how fast a preview appears once its bytes are here, and how close
`tasktui pull` comes to a bare httpx download of the same file.

8. Preview: a 4-megapixel result (JPEG and PNG, made with Pillow here) rendered
   as half-blocks for the detail view at 80x24 and 160x50.  Goal: <= 300 ms
   after the bytes arrive.  The floor (not a competitor): Pillow decoding the
   same bytes at full size.  Then the Kitty and Sixel pictures of the same
   result, which follow the half-blocks where the terminal draws them (scaled to
   the box's pixels at 10x20-pixel cells and encoded, in a worker thread: off the
   keystroke path), with their size on the wire.
9. Download throughput: one file from a file host on 127.0.0.1 (Python's
   http.server in its own process) through ``tui.results.pull`` against a bare
   ``httpx`` stream written to disk, alternating, median of the runs.  Goal:
   >= 80 % of the bare stream.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Result, median

PREVIEW_CELLS = {"80x24": (76, 16), "160x50": (100, 40)}  # the preview box of the detail view at that size


def _photo(fmt: str, size: tuple[int, int]) -> bytes:
    """A 4 MP picture with detail (gradients and noise), not a flat colour."""
    from PIL import Image

    w, h = size
    noise = Image.effect_noise((w, h), 64).convert("L")
    grad = Image.linear_gradient("L").resize((w, h))
    img = Image.merge("RGB", (noise, grad, grad.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def _preview(quick: bool) -> list[Result]:
    from PIL import Image

    from tui.preview import render_halfblocks

    rounds = 3 if quick else 9
    out = []
    for fmt, size in (("JPEG", (2304, 1728)), ("PNG", (2048, 2048))):
        data = _photo(fmt, size)
        floor = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            Image.open(io.BytesIO(data)).load()
            floor.append(time.perf_counter() - t0)
        for label, (w, h) in PREVIEW_CELLS.items():
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                lines = render_halfblocks(data, w, h)
                times.append(time.perf_counter() - t0)
                assert lines
            value = median(times) * 1000
            out.append(Result("results", f"preview 4 MP {fmt} at {label}", value, "ms",
                              baseline=median(floor) * 1000, baseline_name="Pillow full decode (floor)",
                              goal="<= 300 ms", ok=value <= 300, floor=True,
                              notes=f"{len(data) / 1e6:.1f} MB file, {size[0]}x{size[1]}"))
            out.extend(_picture(data, fmt, size, label, (w, h), rounds, median(floor)))
    return out


def _picture(data: bytes, fmt: str, size: tuple[int, int], label: str, cells: tuple[int, int], rounds: int,
             floor: float) -> list[Result]:
    """The Kitty upload and the Sixel string of ``data`` for a box of ``cells``."""
    from tui import graphics

    cols, rows, px_w, px_h = graphics.fit_cells(size[0], size[1], cells[0], cells[1], graphics.DEFAULT_CELL)
    ways = {"Kitty": lambda img: graphics.kitty_upload(graphics.png_bytes(img), 1, cols, rows),
            "Sixel": graphics.sixel}
    out = []
    for name, encode in ways.items():
        times, wire = [], 0
        for _ in range(rounds):
            t0 = time.perf_counter()
            wire = len(encode(graphics.scaled(data, px_w, px_h)))
            times.append(time.perf_counter() - t0)
        value = median(times) * 1000
        out.append(Result("results", f"{name} picture 4 MP {fmt} at {label}", value, "ms",
                          baseline=floor * 1000, baseline_name="Pillow full decode (floor)",
                          goal="<= 300 ms (in a thread, after the half-blocks)", ok=value <= 300, floor=True,
                          notes=f"{px_w}x{px_h} px, {wire / 1e6:.2f} MB to the terminal"))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FileHost:
    """``python -m http.server`` over a folder holding one file, in its own process."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                                      "--directory", str(folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:  # wait for the port to answer (the event we need), with a deadline
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("the file host did not start")
                time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _bare(url: str, dest: Path) -> float:
    import httpx

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        async with client.stream("GET", url) as resp:
            resp.raise_for_status()
            with open(dest, "wb") as f:
                async for chunk in resp.aiter_bytes():
                    f.write(chunk)
    return time.perf_counter() - t0


async def _pull(url: str, dest: Path) -> float:
    from tui import results
    from tui.model import Task

    task = Task("comfy", f"t{time.monotonic_ns()}", state="succeeded", results=[url])
    t0 = time.perf_counter()
    got = await results.pull(None, [task], dest, max_bytes=1 << 34)
    elapsed = time.perf_counter() - t0
    assert got and got[0].status == "downloaded", got
    return elapsed


def _throughput(quick: bool) -> list[Result]:
    size = (8 if quick else 64) * 1024 * 1024
    rounds = 3 if quick else 5
    with tempfile.TemporaryDirectory(prefix="tasktui-bench-") as tmp:
        root = Path(tmp)
        (root / "host").mkdir()
        (root / "host" / "big.mp4").write_bytes(os.urandom(size))
        host = FileHost(root / "host")
        try:
            bare, ours = [], []
            for n in range(rounds):  # alternate, so a busy minute hits both alike
                bare.append(asyncio.run(_bare(host.url("big.mp4"), root / f"bare-{n}.mp4")))
                ours.append(asyncio.run(_pull(host.url("big.mp4"), root / f"pull-{n}")))
        finally:
            host.close()
    mb = size / 1e6
    value, baseline = mb / median(ours), mb / median(bare)
    share = value / baseline
    return [Result("results", f"download {size >> 20} MiB from 127.0.0.1", value, "MB/s", baseline=baseline,
                   baseline_name="bare httpx stream", goal=">= 80 % of bare httpx", ok=share >= 0.8,
                   higher_is_better=True, notes=f"{share:.0%} of the bare stream, median of {rounds}")]


def run(quick: bool = False) -> list[Result]:
    return _preview(quick) + _throughput(quick)
