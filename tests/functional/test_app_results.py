"""Results in the dashboard (issue 17): the detail view's half-block preview of a
result fetched from a real file host on 127.0.0.1 (tests/file_server.py),
left/right through a task's results, expiry and downloaded files, OSC 8 links;
``o`` opens (or copies over SSH) and never a non-http(s) link; ``d`` downloads
into ``[results] dir``; snapshots of the detail with a preview.

Pilot over a real SQLite store, fixed clock, no engine; every wait is for an
event (a request the server saw, text on screen), never a fixed sleep."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from file_server import HOLD
from test_app_fixtures import NOW, clock, fill_store, make_config, notices, plain, wait_for
from tui.app import make_app
from tui.model import Task
from tui.preview import PreviewCache, fetch_preview
from tui.screens.detail import DetailScreen

pytestmark = pytest.mark.usefixtures("preview_cache")  # each test its own preview cache


def done_task(task_id: str, results: list[str], **kw) -> Task:
    # EvoLink states 24 h for its links: finished 21 h ago -> "expires in 3 h"
    return Task("evolink", task_id, state="succeeded", provider_status="completed", results=results,
                created_at=NOW - 21 * 3600 - 60, updated_at=NOW - 21 * 3600, finished_at=NOW - 21 * 3600, **kw)


def app_for(tmp_path, tasks, config=None):
    store = fill_store(tmp_path / "tasks.db", tasks, events=False)
    return make_app(config or make_config(), store, clock=clock), store


def shown(app, part: str) -> str:
    return plain(app.screen.query_one(f"#detail-{part}"))


def drawn(app) -> bool:
    return isinstance(app.screen, DetailScreen) and "\u2580" in shown(app, "preview")


async def open_detail(pilot, app, key: str) -> None:
    assert app.task_list.select(key)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.key == key)


# ---------------------------------------------------------------- preview


async def test_detail_previews_the_image_and_steps_through_results(tmp_path, file_host):
    task = done_task("e-1", [file_host.url("/img.png"), file_host.url("/clip.mp4"), file_host.url("/expired410")])
    app, store = app_for(tmp_path, [task])
    saved = tmp_path / "out" / "e-1-1.png"
    store.set_files(task.key, [str(saved)])
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, app, task.key)
        await wait_for(pilot, lambda: drawn(app))
        result = shown(app, "result")
        assert "Result 1 of 3" in result and file_host.url("/img.png") in result
        assert "expires in 3 h" in result and str(saved) in result
        # drawn at the preview area's size: the 4x4 square fills its height, 2 pixel rows a cell
        area = app.screen.query_one("#detail-preview")
        lines = app.screen.query_one("#detail-preview").content.plain.split("\n")
        width, height = area.content_size
        assert len(lines) == height and len(lines[0]) == min(width, 2 * height)
        first = app.screen.query_one("#detail-preview").content.spans[0].style
        assert first.color.triplet == (255, 0, 0) and first.bgcolor.triplet == (255, 0, 0)  # red quadrant

        await pilot.press("right")
        await wait_for(pilot, lambda: "video/mp4" in shown(app, "preview"))
        assert "Result 2 of 3" in shown(app, "result")
        assert "0:04.5" in shown(app, "preview")  # the duration from the movie header
        await pilot.press("right")
        await wait_for(pilot, lambda: "expired" in shown(app, "preview"))
        assert "Result 3 of 3" in shown(app, "result") and "HTTP 410" in shown(app, "preview")
        await pilot.press("right")  # wraps to the first, drawn from the cache this time
        await wait_for(pilot, lambda: drawn(app) and "Result 1 of 3" in shown(app, "result"))
        await pilot.press("left")
        await wait_for(pilot, lambda: "Result 3 of 3" in shown(app, "result"))
    assert [r.path for r in file_host.requests].count("/img.png") == 1  # the second showing came from the cache
    assert file_host.violations == []


async def test_the_detail_starts_at_the_first_image_result(tmp_path, file_host):
    task = done_task("e-first", [file_host.url("/clip.mp4"), file_host.url("/img.webp?sig=abc"), file_host.url("/img.png")])
    app, store = app_for(tmp_path, [task])
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, app, task.key)
        await wait_for(pilot, lambda: drawn(app))
        assert "Result 2 of 3" in shown(app, "result")
        first = app.screen.query_one("#detail-preview").content.spans[0].style
        assert first.color.triplet == (0, 128, 128)  # the teal WebP
        await pilot.press("left")
        await wait_for(pilot, lambda: "video/mp4" in shown(app, "preview"))
    assert [s.path for s in file_host.requests] == ["/img.webp?sig=abc", "/clip.mp4"]


async def test_the_preview_is_redrawn_at_the_new_size_when_the_terminal_resizes(tmp_path, file_host):
    task = done_task("e-size", [file_host.url("/img.png")])
    app, store = app_for(tmp_path, [task])

    def lines() -> list[str]:
        return app.screen.query_one("#detail-preview").content.plain.split("\n")

    async with app.run_test(size=(80, 24)) as pilot:
        await open_detail(pilot, app, task.key)
        await wait_for(pilot, lambda: drawn(app))
        small = len(lines())
        await pilot.resize_terminal(160, 50)
        await wait_for(pilot, lambda: drawn(app) and len(lines()) > small)
        area = app.screen.query_one("#detail-preview")
        assert len(lines()) == area.content_size.height
    assert [s.path for s in file_host.requests] == ["/img.png"]  # drawn again, not fetched again


async def test_a_key_is_answered_while_a_slow_preview_loads(tmp_path, file_host):
    # neither link is named like an image, so the detail starts at the slow one (the
    # second is the PNG typed only as bytes: sniffed, then drawn)
    task = done_task("e-slow", [file_host.url("/slow.bin"), file_host.url("/dl/result")])
    app, store = app_for(tmp_path, [task])
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, app, task.key)
        await wait_for(pilot, lambda: "loading…" in shown(app, "preview"))
        # the host has sent part of the file and holds the rest: the fetch is under way
        await file_host.await_for(lambda seen: any(s.path == "/slow.bin" and s.sent >= HOLD for s in seen))
        await pilot.press("right")
        await wait_for(pilot, lambda: "Result 2 of 2" in shown(app, "result") and drawn(app))
        slow = next(s for s in file_host.requests if s.path == "/slow.bin")
        assert slow.sent == HOLD  # answered while the slow fetch had not finished
        await pilot.press("escape")  # and leaving works at once too
        await wait_for(pilot, lambda: not isinstance(app.screen, DetailScreen))


async def test_only_a_succeeded_task_is_previewed(tmp_path, file_host):
    task = Task("evolink", "e-failed", state="failed", results=[file_host.url("/img.png")],
                created_at=NOW - 60, updated_at=NOW - 30)
    app, store = app_for(tmp_path, [task])
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, app, task.key)
        await wait_for(pilot, lambda: "Result 1 of 1" in shown(app, "result"))
        assert not app.screen.query_one("#detail-preview").display
    assert file_host.requests == []


async def test_result_links_are_osc8_hyperlinks_and_inert_text(tmp_path, file_host):
    hostile = "https://cdn.example.com/[bold]x[/bold]/[link=https://evil.example]y[/link].png"
    task = Task("evolink", "e-links", state="failed", results=[hostile, "file:///etc/passwd"],
                created_at=NOW - 60, updated_at=NOW - 30)
    app, store = app_for(tmp_path, [task])
    async with app.run_test(size=(160, 40)) as pilot:
        await open_detail(pilot, app, task.key)
        await wait_for(pilot, lambda: "Result 1 of 2" in shown(app, "result"))
        text = app.screen.query_one("#detail-result").content
        assert hostile in text.plain  # shown as it is, never markup
        links = [s.style.link for s in text.spans if not isinstance(s.style, str) and s.style.link]
        assert links == [hostile]
        await pilot.press("right")
        await wait_for(pilot, lambda: "Result 2 of 2" in shown(app, "result"))
        text = app.screen.query_one("#detail-result").content
        assert "file:///etc/passwd" in text.plain and "not a web link" in text.plain
        assert not [s for s in text.spans if not isinstance(s.style, str) and s.style.link]


# ---------------------------------------------------------------- open


async def test_o_opens_the_selected_result_or_copies_it_without_a_display(tmp_path, file_host, monkeypatch):
    import tui.preview

    opened: list[str] = []
    local = {"ok": True}
    monkeypatch.setattr(tui.preview, "can_open_locally", lambda *a, **k: local["ok"])
    monkeypatch.setattr(tui.preview, "open_url", lambda url: opened.append(url) or True)
    urls = [file_host.url("/img.png"), file_host.url("/clip.mp4")]
    bad = Task("evolink", "e-bad", state="succeeded", results=["file:///etc/passwd"],
               created_at=NOW - 70, updated_at=NOW - 60, finished_at=NOW - 60)
    app, store = app_for(tmp_path, [done_task("e-open", urls), bad])
    async with app.run_test(size=(120, 40)) as pilot:
        said = notices(app)
        assert app.task_list.select("evolink:e-open")
        await pilot.press("o")
        await wait_for(pilot, lambda: opened == [urls[0]])
        await open_detail(pilot, app, "evolink:e-open")
        await pilot.press("right", "o")
        await wait_for(pilot, lambda: opened == [urls[0], urls[1]])
        local["ok"] = False  # over SSH: the URL is copied instead, and the user told
        await pilot.press("o")
        await wait_for(pilot, lambda: app.clipboard == urls[1])
        assert any("copied the URL" in t for t, _ in said)
        assert opened == urls
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DetailScreen))
        local["ok"] = True
        assert app.task_list.select("evolink:e-bad")
        app.copy_to_clipboard("unchanged")
        await pilot.press("o")
        await wait_for(pilot, lambda: any("not opened" in m for _, m in said))
    assert opened == urls and app.clipboard == "unchanged"


# ---------------------------------------------------------------- download


async def test_d_downloads_the_selected_task_into_the_results_dir(tmp_path, file_host):
    config = make_config()
    config.results = SimpleNamespace(dir=str(tmp_path / "out"))  # [results] dir (read with getattr)
    task = done_task("e-dl", [file_host.url("/img.png"), file_host.url("/clip.mp4")], label="cats")
    app, store = app_for(tmp_path, [task], config)
    async with app.run_test(size=(120, 40)) as pilot:
        said = notices(app)
        await open_detail(pilot, app, task.key)
        await pilot.press("d")
        await wait_for(pilot, lambda: any(t == "Downloaded" for t, _ in said))
        note = next(m for t, m in said if t == "Downloaded")
        assert "2 file(s) in " + str(tmp_path / "out") in note
        files = store.get(task.key).files
        assert len(files) == 2 and all(Path(f).is_file() and Path(f).is_relative_to(tmp_path / "out")
                                       for f in files)
        assert Path(files[0]).read_bytes() == file_host.body("/img.png")
        # the detail shows where they are, and how the download ended
        await wait_for(pilot, lambda: all(f in shown(app, "result") for f in files))
        assert "download done: 2 of 2 files" in shown(app, "result")
    assert file_host.violations == []


async def test_d_without_a_results_dir_uses_the_current_folder(tmp_path, file_host, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = done_task("e-here", [file_host.url("/img.jpg")])
    running = Task("evolink", "e-running", state="running", created_at=NOW - 10, updated_at=NOW - 5)
    app, store = app_for(tmp_path, [task, running])
    async with app.run_test(size=(120, 40)) as pilot:
        said = notices(app)
        assert app.task_list.select(running.key)
        await pilot.press("d")
        await wait_for(pilot, lambda: any("succeeded" in m for _, m in said))
        assert app.task_list.select(task.key)
        await pilot.press("d")
        await wait_for(pilot, lambda: bool(store.get(task.key).files))
        assert Path(store.get(task.key).files[0]).is_relative_to(tmp_path)
    # one download (the summary pane may also have fetched its preview while the cursor rested there)
    assert [s.path for s in file_host.requests if s.headers.get("user-agent") != "tasktui-preview"] == ["/img.jpg"]


async def test_download_progress_shows_in_the_detail(tmp_path, file_host):
    config = make_config()
    config.results = {"dir": str(tmp_path / "out")}  # a plain table works as well
    task = done_task("e-prog", [file_host.url("/slow.bin")])
    app, store = app_for(tmp_path, [task], config)
    async with app.run_test(size=(120, 40)) as pilot:
        said = notices(app)
        await open_detail(pilot, app, task.key)
        await pilot.press("d")
        # the host holds the rest of the file: the detail says how far it got
        await wait_for(pilot, lambda: "downloading 0 of 1 files… (file 1: 100.0 kB of 300.0 kB)"
                       in shown(app, "result"))
        await pilot.press("d")  # a second press while it runs starts nothing
        await wait_for(pilot, lambda: any("Already downloading" in m for _, m in said))
        file_host.release()
        await wait_for(pilot, lambda: "download done: 1 of 1 files" in shown(app, "result"))
        assert Path(store.get(task.key).files[0]).read_bytes() == file_host.body("/slow.bin")
    assert sum(s.path == "/slow.bin" for s in file_host.requests) == 2  # the preview's and the download's


async def test_d_downloads_the_marked_tasks(tmp_path, file_host, monkeypatch):
    from tui.widgets.task_list import TaskList

    if not hasattr(TaskList, "marked"):
        pytest.skip("the task list has no marks yet")
    monkeypatch.chdir(tmp_path)
    import tui.widgets.summary as summary

    monkeypatch.setattr(summary, "thumb_url", lambda task: None)  # no summary preview: count downloads only
    a = done_task("e-a", [file_host.url("/img.png")])
    b = done_task("e-b", [file_host.url("/img.webp")])
    c = done_task("e-c", [file_host.url("/img.jpg")])
    app, store = app_for(tmp_path, [a, b, c])
    async with app.run_test(size=(120, 40)) as pilot:
        said = notices(app)
        app.task_list.marks.update({a.key, c.key})
        assert app.task_list.select(b.key)
        await pilot.press("d")
        await wait_for(pilot, lambda: bool(store.get(a.key).files) and bool(store.get(c.key).files))
        await wait_for(pilot, lambda: any("2 file(s) in" in m for _, m in said))
        assert store.get(b.key).files == []
    assert sorted(s.path for s in file_host.requests) == ["/img.jpg", "/img.png"]  # each marked task's file once


# ---------------------------------------------------------------- snapshots

SNAP_URL = "https://cdn.example.com/evolink/result-1.png"  # no port in the picture


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_detail_with_a_preview(snap_compare, tmp_path, file_host, size):
    """The served 4x4 PNG, cached under a fixed URL (the server's port changes from
    run to run and would be in the picture); the snapshot waits for the drawing."""
    import asyncio

    cache = PreviewCache()
    p = asyncio.run(fetch_preview(file_host.url("/img.png"), cache))
    assert p.status == "ok" and p.data == file_host.body("/img.png")
    cache.put(SNAP_URL, {"kind": p.kind, "content_type": p.content_type, "size": p.size,
                         "width": p.width, "height": p.height}, p.data)
    task = done_task("e-snap", [SNAP_URL, "https://cdn.example.com/evolink/result-2.mp4"], label="cats")
    app, store = app_for(tmp_path, [task])

    async def before(pilot):
        await pilot.press("enter")
        await wait_for(pilot, lambda: drawn(app))

    assert snap_compare(app, run_before=before, terminal_size=size)
