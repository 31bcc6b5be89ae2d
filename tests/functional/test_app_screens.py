"""The dashboard's sub-screens under Pilot (issue 13: bugs 6 and 15, gap 5): the add form's
live preview of parsed ids, provider guess and discard question; every modal's own footer
keys; ``q``/``esc`` leaving the error log and help; the error log's full message, jump to
task, width-filling message column and task failures.  Real SQLite store in tmp_path,
fixed clock, no engine."""

from __future__ import annotations

from textual.widgets import DataTable, Footer, TextArea
from textual.widgets._footer import FooterKey

from test_app_fixtures import NOW, clock, fill_store, make_config, notices, plain, wait_for
from tui.app import make_app
from tui.model import Event, Task
from tui.screens.add import AddTaskScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.errors import COLUMNS, MESSAGE, ErrorLogScreen, ErrorMessageScreen, column_widths, middle
from tui.screens.help import HelpScreen

EVO = "task-unified-1756817821-4x3rx6ny"  # docs.evolink.ai get-task-detail example (seeds/evolink-task-detail.md)
UUID = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"  # seeds/freepik-hyperflux-list-tasks.md example


def app_for(tmp_path, tasks=None):
    store = fill_store(tmp_path / "tasks.db", tasks)
    return make_app(make_config(tmp_path), store, clock=clock, config_path=tmp_path / "config.toml"), store


def footer_keys(screen) -> dict[str, str]:
    """key -> description of the FooterKeys the screen's own Footer shows."""
    footer = screen.query_one(Footer)
    return {k.key: k.description for k in footer.query(FooterKey)}


async def open_add(pilot, app) -> AddTaskScreen:
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, AddTaskScreen))
    return app.screen


async def paste(pilot, screen, text: str) -> None:
    area = screen.query_one("#add-ids", TextArea)
    area.focus()
    area.insert(text)
    await wait_for(pilot, lambda: screen.parsed.values or screen.parsed.invalid)


# ---------------------------------------------------------------- add form


async def test_add_form_shows_the_parsed_ids_and_their_count(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        assert "no ids yet" in plain(screen.query_one("#add-parsed"))
        await paste(pilot, screen, '"a-1", a-2\na-3 a-1')
        await wait_for(pilot, lambda: "3 ids: a-1, a-2, a-3" in plain(screen.query_one("#add-parsed")))
        assert "1 duplicate dropped" in plain(screen.query_one("#add-parsed"))


async def test_add_form_takes_the_id_out_of_a_pasted_url_and_guesses_the_provider(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        assert screen.query_one("#add-provider").value == "comfy"  # the cursor task's provider
        await paste(pilot, screen, f"https://api.evolink.ai/v1/tasks/{EVO}")
        await wait_for(pilot, lambda: screen.query_one("#add-provider").value == "evolink")
        assert f"1 id: {EVO}" in plain(screen.query_one("#add-parsed"))
        assert not screen.query_one("#add-warnings").display
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: f"evolink:{EVO}" in store)
        assert f"evolink:https" not in " ".join(store.keys())


async def test_add_form_fills_the_kind_a_comfy_url_names(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        await paste(pilot, screen, f"https://api.comfy.org/proxy/freepik/v1/ai/image-relight/{UUID}")
        await wait_for(pilot, lambda: screen.query_one("#add-kind").value == "image-relight")
        assert screen.query_one("#add-provider").value == "comfy"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: f"comfy:{UUID}" in store)
        assert store.get(f"comfy:{UUID}").kind == "image-relight"


async def test_add_form_does_not_override_a_provider_the_user_chose_and_warns_on_shape(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        screen.query_one("#add-provider").value = "freepik"  # the user's choice
        await pilot.pause()
        await paste(pilot, screen, f"{EVO} not-a-uuid")
        warnings = screen.query_one("#add-warnings")
        await wait_for(pilot, lambda: warnings.display)
        assert screen.query_one("#add-provider").value == "freepik"
        text = plain(warnings)
        assert "looks like an EvoLink id; Freepik ids are UUIDs" in text and "+1 more" in text


async def test_add_form_flags_invalid_ids_and_adds_only_the_valid_ones(tmp_path):
    app, store = app_for(tmp_path)
    long = "L" * 300
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        screen.query_one("#add-provider").value = "upscayl"
        await paste(pilot, screen, f"good-1 {long} bad\x07x good-2")
        warnings = screen.query_one("#add-warnings")
        await wait_for(pilot, lambda: warnings.display)
        assert "2 invalid, not added" in plain(warnings) and "longer than 200 characters" in plain(warnings)
        assert "2 ids: good-1, good-2" in plain(screen.query_one("#add-parsed"))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "upscayl:good-2" in store)
        assert not any(len(k) > 250 for k in store.keys())
        assert len(store) == 22


async def test_esc_on_a_filled_add_form_asks_before_discarding(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        await paste(pilot, screen, "keep-me")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "1 id typed" in plain(app.screen.query_one("#confirm-question"))
        await pilot.press("escape")  # no: back to the form, text kept
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.query_one("#add-ids", TextArea).text == "keep-me"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not isinstance(app.screen, (ConfirmScreen, AddTaskScreen)))
        assert "upscayl:keep-me" not in store and len(store) == 20
        # an empty form closes at once
        await open_add(pilot, app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, AddTaskScreen))


async def test_add_form_footer_shows_its_own_keys_and_fits_80x24(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_add(pilot, app)
        await pilot.pause()
        await wait_for(pilot, lambda: footer_keys(screen))  # drawn after a refresh
        keys = footer_keys(screen)
        assert keys.get("ctrl+s") == "Add" and keys.get("escape") == "Cancel"
        assert "q" not in keys and "a" not in keys  # not the main screen's
        footer = screen.query_one(Footer)
        assert footer.region.y == 23 and footer.region.height == 1
        await paste(pilot, screen, f"{'L' * 300} {EVO} abc")
        screen.query_one("#add-provider").value = "freepik"
        await wait_for(pilot, lambda: plain(screen.query_one("#add-warnings")).count("⚠") == 2)
        await pilot.pause()
        for wid in ("#add", "#add-parsed", "#add-warnings"):  # drawn, not clipped by the dialog
            widget = screen.query_one(wid)
            assert widget.region.height >= 1 and widget.region.bottom <= footer.region.y
            assert screen.get_widget_at(widget.region.x + 1, widget.region.y)[0] is widget
        assert "longer than 200 characters" in plain(screen.query_one("#add-warnings"))


async def test_confirm_and_help_show_their_own_footer_keys(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        await wait_for(pilot, lambda: footer_keys(app.screen))  # drawn after a refresh
        keys = footer_keys(app.screen)
        assert keys.get("y") == "Yes" and keys.get("n") == "No" and "q" not in keys
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        await wait_for(pilot, lambda: footer_keys(app.screen))  # drawn after a refresh
        keys = footer_keys(app.screen)
        assert "Close" in keys.values() and "Quit" not in keys.values()


# ---------------------------------------------------------------- q and esc go back


async def test_q_in_help_goes_back_and_never_quits(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in ("q", "escape"):
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press(key)
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
            assert app.is_running and app.return_code is None


# ---------------------------------------------------------------- error log


async def open_log(pilot, app) -> ErrorLogScreen:
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, ErrorLogScreen))
    return app.screen


def row_texts(table) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_q_and_esc_leave_the_error_log_and_never_quit(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        for key in ("q", "escape"):
            await open_log(pilot, app)
            await pilot.press(key)
            await wait_for(pilot, lambda: not isinstance(app.screen, ErrorLogScreen))
            assert app.is_running and app.return_code is None
        # q typed into the filter is a letter, not "back"
        screen = await open_log(pilot, app)
        await pilot.press("slash", "q")
        assert screen.query_one("#errors-filter").value == "q" and app.screen is screen
        await wait_for(pilot, lambda: footer_keys(screen))  # drawn after a refresh
        keys = footer_keys(screen)
        assert keys.get("escape") == "Back" and "Quit" not in keys.values()


async def test_task_failures_appear_as_their_own_kind(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_log(pilot, app)
        table = screen.query_one(DataTable)
        rows = row_texts(table)
        kinds = [r[4] for r in rows]
        assert kinds.count("task failed") == 2 and kinds.count("task cancelled") == 2
        assert kinds.count("task not found") == 2
        assert kinds.count("auth_failed") == 1 and len(rows) == 9  # 3 events + 6 tasks
        failed = next(r for r in rows if r[4] == "task failed")
        assert failed[2] == "freepik-task-003" and failed[5] == "simulated failure"
        assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)  # newest first
        assert "3 errors · 6 task failures" in plain(screen.query_one("#errors-count"))
        # a task that fails while the log is open appears; one that recovers goes
        key = next(t.key for t in store.tasks() if t.state == "running")
        store.apply([store.get(key).copy(state="failed", error="died just now", updated_at=NOW)])
        await wait_for(pilot, lambda: table.row_count == 10)
        assert "died just now" in row_texts(table)[0][5]
        gone = next(t.key for t in store.tasks() if t.state == "cancelled")
        store.remove([gone])
        await wait_for(pilot, lambda: table.row_count == 9)


async def test_message_column_uses_the_width_it_has(tmp_path):
    long = "upstream said: " + " ".join(f"word{i}" for i in range(120))
    for width in (80, 120, 200):
        app, store = app_for(tmp_path / str(width))
        store.log([Event(time=NOW, provider="freepik", message=long, task_id="freepik-task-003",
                         status=500, kind="transient")])
        async with app.run_test(size=(width, 30)) as pilot:
            screen = await open_log(pilot, app)
            table = screen.query_one(DataTable)
            await pilot.pause()
            widths = [c.width for c in table.ordered_columns]
            assert sum(widths) + 2 * len(widths) + 2 == width  # the columns fill the table
            message = str(table.get_row_at(0)[MESSAGE])
            assert len(message) == widths[MESSAGE] and message.endswith("…")
            assert message[:-1] in long
            if width == 200:
                assert widths[MESSAGE] > 100
            task = str(table.get_row_at(0)[2])  # ids differ at their ends: cut in the middle
            assert task == "freepik-task-003" if widths[2] >= 16 else (
                task.startswith("freep") and task.endswith("ask-003") and "…" in task)


def test_column_widths_and_middle_ellipsis():
    assert column_widths(80)[MESSAGE] >= 16
    for width in (80, 119, 120, 200):
        assert sum(column_widths(width)) + 2 * len(COLUMNS) + 2 == width  # padding and scrollbar
    assert len(column_widths(80)) == len(COLUMNS)
    cut = middle("task-unified-1756817821-4x3rx6ny", 14)
    assert len(cut) == 14 and cut.startswith("task-u") and cut.endswith("3rx6ny") and "…" in cut


async def test_enter_shows_the_whole_message_and_jumps_to_the_task(tmp_path):
    long = "quota for image-relight exhausted: " + "x" * 600 + " END-OF-MESSAGE"
    app, store = app_for(tmp_path)
    store.log([Event(time=NOW, provider="freepik", message=long, task_id="freepik-task-003",
                     status=429, kind="rate_limited", retry_after=30.0)])
    posted = []
    async with app.run_test(size=(100, 30), message_hook=posted.append) as pilot:
        await pilot.pause()
        results = []
        app.push_screen(ErrorLogScreen(store), results.append)
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorLogScreen))
        log = app.screen
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorMessageScreen))
        shown = plain(app.screen.query_one("#error-message"))
        assert "END-OF-MESSAGE" in shown and len(shown) == len(long)  # whole, not cut
        assert "freepik-task-003" in plain(app.screen.query_one("#error-head"))
        await wait_for(pilot, lambda: footer_keys(app.screen))  # the footer draws its keys after a refresh
        keys = footer_keys(app.screen)
        assert keys.get("enter") == "Go to task" and keys.get("escape") == "Back"
        await pilot.press("c")
        assert app.clipboard == long
        await pilot.press("escape")  # back to the log
        await wait_for(pilot, lambda: app.screen is log)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorMessageScreen))
        await pilot.press("enter")  # go to the task
        await wait_for(pilot, lambda: results == ["freepik:freepik-task-003"])
        assert not isinstance(app.screen, (ErrorLogScreen, ErrorMessageScreen))
        jumps = [m for m in posted if isinstance(m, ErrorLogScreen.JumpToTask)]
        assert [m.key for m in jumps] == ["freepik:freepik-task-003"]


async def test_g_jumps_from_the_row_and_rows_without_a_task_say_so(tmp_path):
    app, store = app_for(tmp_path)
    posted = []
    async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
        screen = await open_log(pilot, app)
        table = screen.query_one(DataTable)
        assert screen.cursor_row_data.task_id is None  # the newest row: comfy's refused key
        await pilot.press("c")  # copies the row's whole message, not a result URL
        assert app.clipboard == "Invalid API key"
        await pilot.press("g")
        await pilot.pause()
        assert app.screen is screen and not [m for m in posted if isinstance(m, ErrorLogScreen.JumpToTask)]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorMessageScreen))
        assert "go to task" not in " ".join(footer_keys(app.screen).values()).lower()
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen is screen)
        table.move_cursor(row=1)
        key = screen.cursor_row_data.key
        assert key is not None
        await pilot.press("g")
        await wait_for(pilot, lambda: not isinstance(app.screen, ErrorLogScreen))
        assert [m.key for m in posted if isinstance(m, ErrorLogScreen.JumpToTask)] == [key]
        assert app.is_running


async def test_a_forgotten_task_cannot_be_jumped_to(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        said = notices(app)
        screen = await open_log(pilot, app)
        screen.query_one(DataTable).move_cursor(row=1)
        key = screen.cursor_row_data.key
        store.remove([key])
        await pilot.press("g")
        await pilot.pause()
        assert app.screen is screen
        assert any("no longer tracked" in m for _, m in said)


async def test_error_log_rows_stay_inert_and_redacted(tmp_path):
    from test_app_fixtures import HOSTILE_ERROR

    evil = Task(provider="evolink", task_id="evil-1", state="failed", error=HOSTILE_ERROR,
                created_at=NOW - 5, updated_at=NOW - 1)
    app, store = app_for(tmp_path, tasks=[evil])
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_log(pilot, app)
        table = screen.query_one(DataTable)
        row = next(r for r in row_texts(table) if r[4] == "task failed")
        assert "[bold]loud[/bold]" in row[5] and "\x1b" not in row[5] and "\x07" not in row[5]
        table.move_cursor(row=[r[4] for r in row_texts(table)].index("task failed"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorMessageScreen))
        shown = plain(app.screen.query_one("#error-message"))
        assert "[bold]loud[/bold]" in shown and "\x1b" not in shown and "\x07" not in shown


async def test_help_lists_the_sub_screens_keys_from_their_bindings(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 60)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = plain(app.screen.query_one("#help-text"))
        for needle in ("In the error log", "esc q", "Go to task", "In the add form", "ctrl+s",
                       "esc or q closes"):
            assert needle in text


async def test_add_form_warnings_follow_a_provider_picked_after_the_paste(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add(pilot, app)
        await paste(pilot, screen, EVO)
        await wait_for(pilot, lambda: screen.query_one("#add-provider").value == "evolink")
        warnings = screen.query_one("#add-warnings")
        assert not warnings.display
        screen.query_one("#add-provider").value = "comfy"  # picked by the user afterwards
        await wait_for(pilot, lambda: warnings.display)
        assert "looks like an EvoLink id; Comfy ids are UUIDs" in plain(warnings)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: f"comfy:{EVO}" in store)  # a warning, not a refusal


# ---------------------------------------------------------------- snapshots
# Update with ``pytest tests/functional/test_app_screens.py -k snapshot --snapshot-update`` and look at them.

import pytest  # noqa: E402


def snapshot_app(tmp_path):
    app, store = app_for(tmp_path)
    store.log([Event(time=NOW, provider="evolink", task_id=EVO, status=400, kind="not_found",
                     message="Invalid task ID format, must start with 'task-unified-' "
                             "(docs.evolink.ai get-task-detail, 400 invalid_task_id)")])
    return app


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_error_log(snap_compare, tmp_path, size):
    assert snap_compare(snapshot_app(tmp_path), press=["e"], terminal_size=size)


def test_snapshot_one_error_in_full(snap_compare, tmp_path):
    assert snap_compare(snapshot_app(tmp_path), press=["e", "enter"], terminal_size=(80, 24))
