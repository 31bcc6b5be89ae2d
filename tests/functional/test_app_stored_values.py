"""Issue 12 item 4: a value already in the database that no screen can show (an older
tasktui or another writer put it there) is shown as unknown; the dashboard, even
--offline, opens the list and the detail instead of crashing."""

from __future__ import annotations

import sqlite3

import pytest

from tui.app import make_app
from tui.config import Config
from tui.model import Task
from tui.store import Store


@pytest.mark.parametrize("value", [float("inf"), 1e20, -5.0])
async def test_the_dashboard_shows_a_task_whose_stored_times_no_date_can_hold(tmp_path, value):
    db = tmp_path / "tasks.db"
    with Store(db) as store:
        store.add("evolink", ["task-unified-a"])
        store.apply([Task("evolink", "task-unified-a", state="succeeded", results=["https://r/1"])])
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE tasks SET created_at = ?, finished_at = ?, updated_at = ?, progress = ?",
                     (value, value, value, value))
    conn.close()
    store = Store(db)
    try:
        task = store.get("evolink:task-unified-a")
        assert (task.created_at, task.updated_at, task.finished_at, task.progress) == (None, None, None, None)
        app = make_app(Config(), store, None)  # offline: no engine
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            assert type(app.screen).__name__ == "DetailScreen"
            await pilot.press("escape")
            await pilot.pause()
        assert app.return_code in (None, 0)
    finally:
        store.close()
