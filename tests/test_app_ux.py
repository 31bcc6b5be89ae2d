"""Daily-driver gaps of issue 13 under Pilot, over a real SQLite store (tmp_path),
a fixed clock and no engine unless one is given: the error log's jump, the add
form's skipped ids, marks and bulk actions, notifications, provider health,
sorting by column."""

from __future__ import annotations

from textual.widgets import DataTable

from test_app_fixtures import NOW, clock, fill_store, make_config, plain, screen_text, wait_for
from tui.app import make_app
from tui.model import Task
from tui.screens.add import AddRequest, AddTaskScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.errors import ErrorLogScreen


def app_for(tmp_path, tasks=None, engine=None, **ui):
    store = fill_store(tmp_path / "tasks.db", tasks)
    config = make_config(tmp_path, **ui)
    app = make_app(config, store, engine, clock=clock, config_path=tmp_path / "config.toml")
    return app, store


def messages(app) -> str:
    return "\n".join(f"{n.title or ''}: {n.message}" for n in app._notifications)


# ---------------------------------------------------------------- error log jump


async def test_error_log_jump_selects_the_task_even_when_the_filter_hides_it(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        app.use_filter("provider:comfy")
        await pilot.pause()
        assert "evolink:evolink-task-004" not in app.task_list.index
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorLogScreen))
        screen = app.screen
        table = screen.query_one(DataTable)
        row = next(i for i, r in enumerate(screen.shown) if r.key == "evolink:evolink-task-004")
        table.move_cursor(row=row)
        await pilot.press("g")
        await wait_for(pilot, lambda: not isinstance(app.screen, ErrorLogScreen))
        await pilot.pause()
        assert app.task_list.cursor_key == "evolink:evolink-task-004"
        assert app.query_text == ""  # the filter hid it: cleared
        assert app.task_list.has_focus
        assert "evolink-task-004" in plain(app.query_one("#summary"))


async def test_error_log_jump_keeps_a_filter_that_shows_the_task(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        app.use_filter("provider:comfy")
        await pilot.pause()
        assert app.task_list.cursor_key != "comfy:comfy-task-015"
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorLogScreen))
        screen = app.screen
        row = next(i for i, r in enumerate(screen.shown) if r.key == "comfy:comfy-task-015")
        screen.query_one(DataTable).move_cursor(row=row)
        await pilot.press("g")
        await wait_for(pilot, lambda: app.task_list.cursor_key == "comfy:comfy-task-015")
        assert app.query_text == "provider:comfy"


async def test_add_form_result_names_skipped_ids_and_warnings(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AddTaskScreen))
        app.screen.dismiss(AddRequest("evolink", ["task-unified-1", "task-unified-2"], None, None,
                                      skipped=['"x y": has a space', '"": empty'],
                                      warnings=["abc does not look like an evolink id"]))
        await wait_for(pilot, lambda: "Tracking" in messages(app))
        text = messages(app)
        assert "Tracking 2 new evolink task(s)" in text
        assert "2 invalid ids skipped" in text
        assert "abc does not look like an evolink id" in text
