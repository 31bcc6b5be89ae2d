"""Signs in a task's row (issue 17): a download under way (`d`) shows its
progress in place of the task's, and result links in the last quarter of their
stated lifetime, with nothing downloaded, are marked ⧗.  A real file host on
127.0.0.1 (tests/file_server.py) and a real SQLite store."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from file_server import HOLD
from test_app_fixtures import NOW, clock, fill_store, make_config, screen_text, wait_for
from tui.app import make_app
from tui.model import Task
from tui.widgets.task_list import EXPIRY_MARK

pytestmark = pytest.mark.usefixtures("preview_cache")  # each test its own preview cache

HOUR = 3600


def ended(task_id: str, hours_ago: float, results: list[str], **kw) -> Task:
    at = NOW - hours_ago * HOUR
    return Task("evolink", task_id, state="succeeded", provider_status="completed", results=results,
                created_at=at - 60, updated_at=at, finished_at=at, **kw)


def line_of(app, task_id: str) -> str:
    return next((line for line in screen_text(app).splitlines() if task_id in line), "")


async def test_links_about_to_expire_are_marked_in_their_row(tmp_path):
    # EvoLink states 24 h: the last quarter starts 18 h after the end
    tasks = [ended("e-old", 21, ["https://cdn.example.com/a.png"]),
             ended("e-new", 1, ["https://cdn.example.com/b.png"]),
             ended("e-gone", 30, ["https://cdn.example.com/c.png"]),
             ended("e-kept", 21, ["https://cdn.example.com/d.png"], files=["/tmp/d.png"]),
             ended("e-none", 21, [])]
    store = fill_store(tmp_path / "tasks.db", tasks, events=False)
    app = make_app(make_config(), store, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: "e-none" in screen_text(app))
        assert EXPIRY_MARK in line_of(app, "e-old") and EXPIRY_MARK in line_of(app, "e-gone")
        for quiet in ("e-new", "e-kept", "e-none"):  # young links, saved files, no links
            assert EXPIRY_MARK not in line_of(app, quiet), quiet


async def test_the_mark_comes_as_time_passes(tmp_path):
    # 17.99 h after the end, then 18.01 h: its AGE and UPDATED read "18h" both times (updated
    # half an hour before the end), so only the mark can make the row be drawn again
    now = [NOW]
    task = ended("e-ages", 17.99, ["https://cdn.example.com/a.png"])
    task.updated_at = task.finished_at - 1800
    store = fill_store(tmp_path / "tasks.db", [task], events=False)
    app = make_app(make_config(), store, clock=lambda: now[0])
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: "e-ages" in line_of(app, "e-ages"))
        before = line_of(app, "e-ages")
        assert EXPIRY_MARK not in before
        now[0] += 0.02 * HOUR  # the last quarter of 24 h begins
        await wait_for(pilot, lambda: EXPIRY_MARK in line_of(app, "e-ages"))
        assert before.rstrip().endswith("18h  18h ago") and line_of(app, "e-ages").rstrip().endswith("18h  18h ago")


async def test_a_download_under_way_shows_its_progress_in_the_row(tmp_path, file_host):
    config = make_config()
    config.results = SimpleNamespace(dir=str(tmp_path / "out"))
    task = ended("e-dl", 21, [file_host.url("/slow.bin")])
    store = fill_store(tmp_path / "tasks.db", [task], events=False)
    app = make_app(config, store, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        assert app.task_list.select(task.key)
        await pilot.press("d")
        # the host sent a third of the file and holds the rest: the row says 33 %
        await file_host.await_for(lambda seen: any(s.path == "/slow.bin" and s.sent >= HOLD for s in seen))
        await wait_for(pilot, lambda: "↓ 33%" in line_of(app, "e-dl"))
        file_host.release()
        # done: the row's own progress again, and no expiry mark (the files are saved: nothing to lose)
        await wait_for(pilot, lambda: "100%" in line_of(app, "e-dl") and "↓" not in line_of(app, "e-dl")
                       and EXPIRY_MARK not in line_of(app, "e-dl"))
        assert Path(store.get(task.key).files[0]).read_bytes() == file_host.body("/slow.bin")
