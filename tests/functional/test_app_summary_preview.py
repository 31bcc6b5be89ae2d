"""The summary pane previews the selected task's first image result where it has
room left under the fields (issue 17), against a real file host on 127.0.0.1."""

from __future__ import annotations

import pytest

from file_server import HOLD
from test_app_fixtures import NOW, clock, fill_store, make_config, plain, wait_for
from tui.app import make_app
from tui.model import Task
from tui.widgets.summary import TaskSummary, thumb_url

pytestmark = pytest.mark.usefixtures("preview_cache")  # each test its own preview cache

HALF = "\u2580"  # the half-block cell the preview is drawn with


def done(task_id: str, results: list[str], state: str = "succeeded") -> Task:
    return Task("evolink", task_id, state=state, provider_status="completed", results=results,
                created_at=NOW - 120, updated_at=NOW - 60, finished_at=NOW - 60 if state == "succeeded" else None)


def app_for(tmp_path, tasks):
    store = fill_store(tmp_path / "tasks.db", tasks, events=False)
    return make_app(make_config(), store, clock=clock), store


def summary(app) -> str:
    return plain(app.query_one("#summary", TaskSummary))


async def test_the_summary_previews_the_first_image_of_the_selected_task(tmp_path, file_host):
    a = done("s-img", [file_host.url("/clip.mp4"), file_host.url("/img.png")])
    b = done("s-run", [file_host.url("/img.jpg")], state="running")
    app, _ = app_for(tmp_path, [a, b])
    async with app.run_test(size=(160, 50)) as pilot:
        assert app.task_list.select(a.key)
        await wait_for(pilot, lambda: HALF in summary(app))
        assert [s.path for s in file_host.requests] == ["/img.png"]  # the image, never the video
        assert app.query_one("#summary", TaskSummary).thumb.url == file_host.url("/img.png")
        assert app.task_list.select(b.key)  # a running task: no preview, nothing fetched
        await wait_for(pilot, lambda: "s-run" in summary(app) and HALF not in summary(app))
        assert [s.path for s in file_host.requests] == ["/img.png"]


async def test_no_preview_where_the_pane_has_no_room(tmp_path, file_host):
    a = done("s-img", [file_host.url("/img.png")])
    app, _ = app_for(tmp_path, [a])
    async with app.run_test(size=(160, 50)) as pilot:
        assert app.task_list.select(a.key)
        await wait_for(pilot, lambda: HALF in summary(app))
        await pilot.resize_terminal(160, 18)  # the fields fill the pane: the picture goes
        await wait_for(pilot, lambda: "s-img" in summary(app) and HALF not in summary(app))


async def test_a_key_is_answered_while_the_summary_preview_loads(tmp_path, file_host):
    a = done("s-slow", [file_host.url("/slow.bin?x.png")])
    b = done("s-other", [])
    app, _ = app_for(tmp_path, [a, b])
    async with app.run_test(size=(160, 50)) as pilot:
        assert app.task_list.select(a.key)
        await file_host.await_for(lambda seen: any(s.path.startswith("/slow.bin") and s.sent >= HOLD for s in seen))
        assert app.task_list.select(b.key)  # the fetch is held mid-file: the cursor still moves
        await wait_for(pilot, lambda: "s-other" in summary(app))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen")


def test_only_image_named_links_of_succeeded_tasks_are_previewed():
    ok = done("t", ["https://h/a.mp4", "https://h/b.PNG?sig=1", "https://h/c.jpg"])
    assert thumb_url(ok) == "https://h/b.PNG?sig=1"
    assert thumb_url(ok.copy(state="running")) is None
    assert thumb_url(ok.copy(results=["https://h/a.mp4", "file:///x.png", "javascript:x.png"])) is None
    assert thumb_url(None) is None


# ---------------------------------------------------------------- snapshots

SNAP_URL = "https://cdn.example.com/evolink/summary-1.png"  # no port in the picture


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_summary_with_a_preview(snap_compare, tmp_path, file_host, size):
    """The served PNG cached under a fixed URL (the server's port would be in the
    picture); the snapshot waits for the summary's drawing where it fits."""
    import asyncio

    from tui.preview import PreviewCache, fetch_preview

    cache = PreviewCache()
    p = asyncio.run(fetch_preview(file_host.url("/img.png"), cache))
    assert p.status == "ok"
    cache.put(SNAP_URL, {"kind": p.kind, "content_type": p.content_type, "size": p.size,
                         "width": p.width, "height": p.height}, p.data)
    task = done("s-snap", [SNAP_URL])
    app, _ = app_for(tmp_path, [task])

    async def before(pilot):
        assert app.task_list.select(task.key)
        widget = app.query_one("#summary", TaskSummary)
        await wait_for(pilot, lambda: widget.thumb is not None)  # fetched (from the cache)
        await pilot.pause()

    assert snap_compare(app, run_before=before, terminal_size=size)


async def test_the_picture_is_decoded_once_while_the_fields_tick(tmp_path, file_host, monkeypatch):
    """The fields' relative times redraw the pane every second; the picture is
    drawn from its first decoding until the link or the room changes."""
    import tui.preview as preview

    calls = []
    real = preview.render_halfblocks
    monkeypatch.setattr(preview, "render_halfblocks", lambda *a, **k: calls.append(a[1:]) or real(*a, **k))
    now = [NOW]
    a = done("s-tick", [file_host.url("/img.png")])
    store = fill_store(tmp_path / "tasks.db", [a], events=False)
    app = make_app(make_config(), store, clock=lambda: now[0])
    async with app.run_test(size=(160, 50)) as pilot:
        assert app.task_list.select(a.key)
        await wait_for(pilot, lambda: HALF in summary(app))
        first = summary(app)
        for _ in range(3):  # "(2m ago)" -> "(3m ago)" ...: the fields change, the picture stays
            now[0] += 60
            await wait_for(pilot, lambda: summary(app) != first)
            first = summary(app)
        assert len(calls) == 1 and HALF in summary(app)
