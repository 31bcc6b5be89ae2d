"""Previews: half-block drawing of known images, fetching against a real file host on
127.0.0.1 (tests/file_server.py), the on-disk LRU cache."""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest

from file_server import HOLD, make_mp4, make_png
from tui import preview as P

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


@pytest.fixture
def cache(tmp_path: Path) -> P.PreviewCache:
    return P.PreviewCache(tmp_path / "cache", max_bytes=10**7)


def cells(line) -> list[tuple[str, tuple, tuple]]:
    """(character, fg rgb, bg rgb) of every cell of a rendered line."""
    out = []
    for span in line.spans:
        for ch in line.plain[span.start:span.end]:
            style = span.style
            out.append((ch, style.color.get_truecolor(None)[:3] if style.color else None,
                        style.bgcolor.get_truecolor(None)[:3] if style.bgcolor else None))
    return out


def image(size: tuple[int, int], colour, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, fmt)
    return buf.getvalue()


# ---------------------------------------------------------------- drawing


def test_a_known_image_gives_the_expected_colours_in_the_expected_cells():
    # 4x4: red | green over blue | white, each quadrant 2x2 pixels
    lines = P.render_halfblocks(make_png(), 4, 2)
    assert [line.plain for line in lines] == ["▀▀▀▀", "▀▀▀▀"]
    assert [[(fg, bg) for _, fg, bg in cells(line)] for line in lines] == [
        [(RED, RED), (RED, RED), (GREEN, GREEN), (GREEN, GREEN)],
        [(BLUE, BLUE), (BLUE, BLUE), (WHITE, WHITE), (WHITE, WHITE)],
    ]
    # at half the size every cell is one quadrant's pixel over the one below it
    small = P.render_halfblocks(make_png(), 2, 1)
    assert [[(fg, bg) for _, fg, bg in cells(line)] for line in small] == [[(RED, BLUE), (GREEN, WHITE)]]


def test_the_upper_pixel_is_the_foreground_and_the_lower_the_background():
    from PIL import Image

    img = Image.new("RGB", (1, 2))
    img.putpixel((0, 0), RED)
    img.putpixel((0, 1), BLUE)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert [(fg, bg) for _, fg, bg in cells(P.render_halfblocks(buf.getvalue(), 1, 1)[0])] == [(RED, BLUE)]


@pytest.mark.parametrize("size, box, expect", [
    ((4, 4), (10, 2), (4, 2)),  # limited by height: 4 pixel rows = 2 lines, 4 columns
    ((4, 4), (40, 20), (40, 20)),  # grows to fill the height, square kept
    ((16, 4), (8, 8), (8, 1)),  # wide: limited by width
    ((4, 16), (80, 4), (2, 4)),  # tall: 8 pixel rows, 2 columns
    ((2000, 1000), (80, 24), (80, 20)),
])
def test_the_aspect_ratio_is_kept(size, box, expect):
    lines = P.render_halfblocks(image(size, RED), *box)
    assert (max(line.cell_len for line in lines), len(lines)) == expect
    assert all(line.cell_len == expect[0] for line in lines)


def test_an_odd_pixel_row_ends_on_the_background():
    lines = P.render_halfblocks(image((2, 3), GREEN), 2, 2, background=(10, 20, 30))
    assert [[(fg, bg) for _, fg, bg in cells(line)] for line in lines] == [
        [(GREEN, GREEN)] * 2, [(GREEN, (10, 20, 30))] * 2]


def test_transparency_is_drawn_over_the_background():
    lines = P.render_halfblocks(image((2, 2), (255, 0, 0, 0), mode="RGBA"), 2, 1, background=(1, 2, 3))
    assert [(fg, bg) for _, fg, bg in cells(lines[0])] == [((1, 2, 3), (1, 2, 3))] * 2


def test_jpeg_webp_gif_and_palette_images_draw():
    for fmt, mode, colour in (("JPEG", "RGB", (255, 128, 0)), ("WEBP", "RGB", (0, 128, 128)),
                              ("GIF", "P", 1), ("PNG", "L", 200)):
        lines = P.render_halfblocks(image((8, 8), colour, mode, fmt), 4, 2)
        assert len(lines) == 2 and all(line.cell_len == 4 for line in lines), fmt
    orange = cells(P.render_halfblocks(image((16, 16), (255, 128, 0), fmt="JPEG"), 2, 1)[0])
    assert all(abs(a - b) <= 4 for _, fg, _ in orange for a, b in zip(fg, (255, 128, 0)))


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, make_mp4()])
def test_bytes_that_are_no_image_raise_a_preview_error(data):
    with pytest.raises(P.PreviewError):
        P.render_halfblocks(data, 10, 5)


def test_a_damaged_image_raises_a_preview_error():
    good = image((64, 64), RED)
    with pytest.raises(P.PreviewError):
        P.render_halfblocks(good[: len(good) // 2], 10, 5)


def test_lines_become_textual_strips():
    strips = P.to_strips(P.render_halfblocks(make_png(), 4, 2))
    assert [s.cell_length for s in strips] == [4, 4]
    assert [seg.style.color.get_truecolor(None)[:3] for seg in strips[0]] == [RED, GREEN]
    assert P.as_text(P.render_halfblocks(make_png(), 4, 2)).plain == "▀▀▀▀\n▀▀▀▀"


# ---------------------------------------------------------------- fetching


async def test_images_are_fetched_with_their_type_size_and_pixels(file_host, cache):
    for name, ctype, dims in (("/img.png", "image/png", (4, 4)), ("/img.jpg", "image/jpeg", (16, 16)),
                              ("/img.webp", "image/webp", (8, 8))):
        p = await P.fetch_preview(file_host.url(name), cache)
        assert (p.status, p.kind, p.content_type, p.size, (p.width, p.height)) == (
            "ok", "image", ctype, len(file_host.body(name)), dims)
        assert p.data == file_host.body(name) and not p.cached
    assert "4×4" in (await P.fetch_preview(file_host.url("/img.png"), cache)).describe()
    assert file_host.violations == []


async def test_an_untyped_image_is_recognised_by_its_bytes(file_host, cache):
    p = await P.fetch_preview(file_host.url("/dl/anything"), cache)
    assert (p.status, p.kind, p.content_type) == ("ok", "image", "image/png")


async def test_video_and_audio_report_type_size_and_duration(file_host, cache):
    video = await P.fetch_preview(file_host.url("/clip.mp4"), cache)
    assert (video.status, video.kind, video.content_type, video.size, video.duration, video.data) == (
        "ok", "video", "video/mp4", len(file_host.body("/clip.mp4")), 4.5, None)
    assert video.describe() == f"video/mp4 · {P.human_bytes(len(file_host.body('/clip.mp4')))} · 0:04.5"
    audio = await P.fetch_preview(file_host.url("/song.mp3"), cache, duration=61.0)  # the provider's figure
    assert (audio.kind, audio.content_type, audio.size, audio.duration) == (
        "audio", "audio/mpeg", len(file_host.body("/song.mp3")), 61.0)
    assert audio.describe().endswith("1:01.0")


async def test_expired_links_say_expired(file_host, cache):
    for status in (403, 404, 410):
        p = await P.fetch_preview(file_host.url(f"/expired{status}"), cache)
        assert p.status == "expired" and f"HTTP {status}" in p.message
    assert cache.size() == 0  # nothing cached


async def test_an_image_over_the_cap_is_not_read(file_host, cache):
    big = await P.fetch_preview(file_host.url("/huge.bin"), cache, max_bytes=1_000_000)
    assert big.status == "too_large" and big.size == 10**10
    endless = await P.fetch_preview(file_host.url("/huge-nolength.bin"), cache, max_bytes=1_000_000)
    assert endless.status == "too_large" and "cap" in endless.message
    assert cache.size() == 0


async def test_only_web_links_are_fetched(file_host, cache):
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x.png", "users/u/x.png", "javascript:alert(1)"):
        assert (await P.fetch_preview(url, cache)).status == "refused"
    assert file_host.requests == []


async def test_a_client_with_credentials_is_refused(file_host, cache):
    async with httpx.AsyncClient(headers={"Authorization": "Bearer sk-x"}) as client:
        with pytest.raises(ValueError):
            await P.fetch_preview(file_host.url("/img.png"), cache, client=client)
    assert file_host.requests == []


# ---------------------------------------------------------------- cache


async def test_a_cached_preview_is_not_fetched_again(file_host, cache, tmp_path):
    first = await P.fetch_preview(file_host.url("/img.png"), cache)
    video = await P.fetch_preview(file_host.url("/clip.mp4"), cache)
    assert len(file_host.requests) == 2
    again = await P.fetch_preview(file_host.url("/img.png"), cache)
    video2 = await P.fetch_preview(file_host.url("/clip.mp4"), cache)
    assert len(file_host.requests) == 2  # both from disk
    assert again.cached and again.data == first.data and (again.width, again.height) == (4, 4)
    assert video2.cached and video2.duration == 4.5 and video2.data is None
    # another process (a new cache object on the same folder) finds it too
    other = P.PreviewCache(cache.root)
    assert (await P.fetch_preview(file_host.url("/img.png"), other)).cached


async def test_two_asking_for_one_link_while_it_loads_share_one_download(file_host, tmp_path):
    """The detail and the summary pane (two caches on one folder) ask for the same
    link while it loads: one request reaches the host, both get the picture."""
    import asyncio

    url = file_host.url("/slow.bin")
    first = asyncio.ensure_future(P.fetch_preview(url, P.PreviewCache(tmp_path / "c")))
    await file_host.await_for(lambda seen: any(s.path == "/slow.bin" and s.sent >= HOLD for s in seen))
    second = asyncio.ensure_future(P.fetch_preview(url, P.PreviewCache(tmp_path / "c")))
    await asyncio.sleep(0)  # the second is waiting too
    file_host.release()
    a, b = await asyncio.gather(first, second)
    assert a.status == b.status == "ok" and a.size == b.size == len(file_host.body("/slow.bin"))
    assert [s.path for s in file_host.requests] == ["/slow.bin"]


async def test_leaving_stops_a_shared_download_only_when_nobody_waits(file_host, tmp_path):
    import asyncio

    url = file_host.url("/slow.bin")
    first = asyncio.ensure_future(P.fetch_preview(url))
    second = asyncio.ensure_future(P.fetch_preview(url))
    await file_host.await_for(lambda seen: any(s.path == "/slow.bin" and s.sent >= HOLD for s in seen))
    (download, _waiting), = P._INFLIGHT.values()
    first.cancel()  # one screen closed: the other still waits, the download goes on
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.sleep(0)
    assert not download.done() and not second.done()
    second.cancel()  # the last one left: the download stops (the host still holds the rest)
    await asyncio.gather(second, return_exceptions=True)
    await asyncio.gather(download, return_exceptions=True)
    assert download.cancelled() and not P._INFLIGHT
    assert len(file_host.requests) == 1


def test_the_cache_evicts_the_least_recently_used_past_its_cap(tmp_path):
    cache = P.PreviewCache(tmp_path / "c", max_bytes=2_600)
    for i, url in enumerate(("https://h/a", "https://h/b")):
        cache.put(url, {"kind": "image"}, bytes(1000))
        t = 1_000_000 + i
        for p in cache.root.iterdir():
            if p.stat().st_mtime > 2_000_000:  # just written: give it a known, older time
                os.utime(p, (t, t))
    assert cache.get("https://h/a") is not None  # a is now the most recently used
    cache.put("https://h/c", {"kind": "image"}, bytes(1000))
    assert cache.get("https://h/b") is None  # the least recently used went
    assert cache.get("https://h/a") is not None and cache.get("https://h/c") is not None
    assert cache.size() <= 2_600


def test_a_damaged_or_foreign_cache_entry_is_a_miss(tmp_path):
    cache = P.PreviewCache(tmp_path / "c")
    cache.put("https://h/a", {"kind": "image"}, b"x")
    meta = next(cache.root.glob("*.json"))
    meta.write_text("{not json")
    assert cache.get("https://h/a") is None
    cache.put("https://h/a", {"kind": "image"}, b"x")
    meta.write_text('{"url": "https://h/other", "has_data": false}')
    assert cache.get("https://h/a") is None


def test_the_cache_lives_under_the_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TASKTUI_CACHE", str(tmp_path / "cc"))
    assert P.PreviewCache().root == tmp_path / "cc" / "previews"
    monkeypatch.delenv("TASKTUI_CACHE")
    import platformdirs

    assert P.cache_dir() == Path(platformdirs.user_cache_dir("tasktui")) / "previews"


# ---------------------------------------------------------------- opening


def test_opening_locally_is_off_over_ssh_and_without_a_display():
    assert P.can_open_locally({"DISPLAY": ":0"}, "linux")
    assert not P.can_open_locally({}, "linux")
    assert not P.can_open_locally({"DISPLAY": ":0", "SSH_CONNECTION": "1 2 3 4"}, "linux")
    assert P.can_open_locally({}, "darwin")


def test_open_url_refuses_what_is_no_web_link(tmp_path):
    assert P.open_url("javascript:alert(1)") is False
    assert P.open_url("file:///etc/passwd") is False
    assert P.open_url(str(tmp_path / "missing.png")) is False


def test_headless_import_of_preview_and_results_loads_neither_textual_nor_pillow():
    import subprocess
    import sys

    code = ("import sys, tui.preview, tui.results; "
            "print(sorted(m for m in ('textual', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
