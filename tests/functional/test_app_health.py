"""A task that cannot progress is never silently stuck on screen (issue 11):
its row carries a mark, its summary and detail say why; and ctrl+c quits like
q (issue 13).  Pilot over a real SQLite store, fixed clock, no engine."""

from __future__ import annotations

from test_app_fixtures import NOW, clock, fill_store, make_config, plain, screen_text, wait_for
from tui.app import make_app
from tui.model import Task
from tui.screens.detail import DetailScreen

REASON = "Celery answers PENDING for ids it never saw or whose result expired"


def tasks() -> list[Task]:
    return [
        Task("qolaba", "q-stalled", state="queued", provider_status="PENDING", stalled=REASON,
             poll_path="/api/v1/task-status/q-stalled", created_at=NOW - 4000, updated_at=NOW - 30),
        Task("comfy", "c-failing", state="running", progress=30.0, last_error="HTTP 502 transient: bad gateway",
             last_error_at=NOW - 180, failed_polls=4, poll_path="/proxy/freepik/v1/ai/skin-enhancer/c-failing",
             created_at=NOW - 600, updated_at=NOW - 20),
        Task("evolink", "e-healthy", state="running", progress=50.0, created_at=NOW - 60, updated_at=NOW - 10),
        Task("upscayl", "u-done", state="succeeded", details={"storage path": "users/abc/x.jpg"},
             created_at=NOW - 900, updated_at=NOW - 40, finished_at=NOW - 40),
    ]


def app_for(tmp_path):
    store = fill_store(tmp_path / "tasks.db", tasks(), events=False)
    return make_app(make_config(tmp_path), store, clock=clock, config_path=tmp_path / "config.toml"), store


def line_of(app, task_id: str) -> str:
    return next(line for line in screen_text(app).splitlines() if task_id in line)


async def test_rows_mark_stalled_and_failing_tasks(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        assert "⚠ ○ queued" in line_of(app, "q-stalled")
        assert "! ▶ running" in line_of(app, "c-failing")
        healthy = line_of(app, "e-healthy")
        assert "▶ running" in healthy and "⚠" not in healthy and "!" not in healthy
        # the engine's next write clears one mark and sets another: the rows follow
        store.apply([Task("comfy", "c-failing", state="running", progress=30.0),
                     Task("evolink", "e-healthy", state="running", progress=50.0, failed_polls=1,
                          last_error="timed out", last_error_at=NOW)])
        await wait_for(pilot, lambda: "! ▶ running" in line_of(app, "e-healthy"))
        assert "!" not in line_of(app, "c-failing")


async def test_summary_says_why_a_task_is_stuck(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 30)) as pilot:
        assert app.task_list.select("qolaba:q-stalled")
        await wait_for(pilot, lambda: "q-stalled" in plain(app.query_one("#summary")))
        summary = plain(app.query_one("#summary"))
        assert "stalled" in summary and "Celery answers PENDING" in summary


async def test_detail_shows_last_error_time_path_count_reason_and_details(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 50)) as pilot:
        assert app.task_list.select("comfy:c-failing")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        text = plain(app.screen.query_one("#detail-fields"))
        assert "HTTP 502 transient: bad gateway" in text
        assert "2027-01-15T07:57:00Z" in text and "3m ago" in text  # when it failed, and how long ago
        assert "/proxy/freepik/v1/ai/skin-enhancer/c-failing" in text
        assert "failed polls" in text and "4" in text
        await pilot.press("escape")
        assert app.task_list.select("qolaba:q-stalled")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.key == "qolaba:q-stalled")
        text = plain(app.screen.query_one("#detail-fields"))
        assert "stalled" in text and REASON in text and "/api/v1/task-status/q-stalled" in text
        await pilot.press("escape")
        assert app.task_list.select("upscayl:u-done")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.key == "upscayl:u-done")
        text = plain(app.screen.query_one("#detail-fields"))
        assert "storage path" in text and "users/abc/x.jpg" in text


async def test_ctrl_c_quits_cleanly_like_q(tmp_path):
    for where in ("main", "detail"):
        (tmp_path / where).mkdir()
        app, store = app_for(tmp_path / where)
        async with app.run_test(size=(120, 30)) as pilot:
            if where == "detail":
                await pilot.press("enter")
                await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
            await pilot.press("ctrl+c")
            await wait_for(pilot, lambda: app.return_code is not None)
        assert app.return_code == 0
        store.close()


async def test_filter_flags_a_state_no_task_can_have(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.press("slash", *"state:faild")
        await wait_for(pilot, lambda: "did you mean 'failed'" in plain(app.query_one("#filter-count")))
        await pilot.press(*["backspace"] * 5, *"fail")
        await wait_for(pilot, lambda: "did you mean" not in plain(app.query_one("#filter-count")))


async def test_header_says_when_the_task_database_is_gone(tmp_path):
    # issue 12: a deleted database is never silent (the store notices; the header says it)
    app, store = app_for(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        assert "task database" not in plain(app.query_one("#header"))
        (tmp_path / "tasks.db").unlink()
        await wait_for(pilot, lambda: "⚠ task database" in plain(app.query_one("#header")))


async def test_a_failed_poll_written_as_health_only_marks_the_row(tmp_path):
    # the engine's path for a poll that failed: health without an answer (Store.apply(health=...))
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        assert "!" not in line_of(app, "e-healthy")
        store.apply([], health={"evolink:e-healthy": {"failed_polls": 2, "last_error": "HTTP 503 transient",
                                                      "last_error_at": NOW - 5}})
        await wait_for(pilot, lambda: "! ▶ running" in line_of(app, "e-healthy"))
        store.apply([], health={"evolink:e-healthy": {"stalled": "no answer for 2 h"}})
        await wait_for(pilot, lambda: "⚠ ▶ running" in line_of(app, "e-healthy"))


async def test_ids_stay_distinguishable_at_80_columns(tmp_path):
    # issue 13 bug 4: EvoLink ids share a long prefix; the label must not push their ends away
    ids = ["task-unified-1756817821-4x3rx6ny", "task-unified-1756817821-5qfatx6d"]
    store = fill_store(tmp_path / "tasks.db",
                       [Task("evolink", i, label="a-rather-long-batch-label", state="running",
                             created_at=NOW - 60, updated_at=NOW - n) for n, i in enumerate(ids)], events=False)
    app = make_app(make_config(tmp_path), store, clock=clock)
    for size in ((80, 24), (120, 30), (160, 40)):
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            lines = [line for line in screen_text(app).splitlines() if "evolink" in line]
            assert len(lines) == 2
            assert "4x3rx6ny" in lines[0] and "5qfatx6d" in lines[1], (size, lines)
            if size[0] >= 160:
                assert "a-rather-long" in lines[0]  # wide enough: the label has a column of its own
        app = make_app(make_config(tmp_path), store, clock=clock)


def test_fit_middle_keeps_both_ends_in_exact_cells():
    from rich.cells import cell_len

    from tui.widgets.cells import fit_middle

    assert fit_middle("task-unified-1756817821-5qfatx6d", 17) == "task-uni…5qfatx6d"
    assert fit_middle("short", 8) == "short   "
    for text in ("猫の写真猫の写真猫の写真", "ab🎨🎨🎨🎨🎨cd", "x" * 50):
        for width in range(1, 20):
            assert cell_len(fit_middle(text, width)) == width


async def test_progress_sort_counts_a_succeeded_task_as_100_percent(tmp_path):
    # issue 13 bug 9: the column shows 100 % for it, so the sort must agree
    store = fill_store(tmp_path / "tasks.db", [
        Task("evolink", "half", state="running", progress=50.0, updated_at=NOW - 1),
        Task("evolink", "none", state="queued", updated_at=NOW - 2),
        Task("evolink", "done", state="succeeded", updated_at=NOW - 3),
        Task("evolink", "most", state="running", progress=90.0, updated_at=NOW - 4)], events=False)
    app = make_app(make_config(tmp_path), store, clock=clock)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        app.task_list.sort_mode = "progress"
        await pilot.pause()
        assert app.task_list.index == ["evolink:done", "evolink:most", "evolink:half", "evolink:none"]


async def test_relative_times_in_summary_and_detail_tick(tmp_path):
    # issue 13 bug 7: "(10s ago)" must move on with the clock, as the list's ages do
    now = [NOW]
    store = fill_store(tmp_path / "tasks.db", [Task("evolink", "e1", state="running", created_at=NOW - 10,
                                                    updated_at=NOW - 10)], events=False)
    app = make_app(make_config(tmp_path), store, clock=lambda: now[0])
    async with app.run_test(size=(140, 30)) as pilot:
        await wait_for(pilot, lambda: "(10s ago)" in plain(app.query_one("#summary")))
        now[0] += 120
        await wait_for(pilot, lambda: "(2m ago)" in plain(app.query_one("#summary")))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert "(2m ago)" in plain(app.screen.query_one("#detail-fields"))
        now[0] += 3600
        await wait_for(pilot, lambda: "(1h ago)" in plain(app.screen.query_one("#detail-fields")))


async def test_a_filter_warning_never_squeezes_the_input(tmp_path):
    # issue 13 bug 5: at 80-120 columns "unknown field 'provdier:'" took the whole bar
    for width in (80, 120):
        (tmp_path / str(width)).mkdir()
        app, store = app_for(tmp_path / str(width))
        async with app.run_test(size=(width, 24)) as pilot:
            await pilot.press("slash", *"provdier:evolink")
            count = app.query_one("#filter-count")
            await wait_for(pilot, lambda: "unknown field" in plain(count))
            await pilot.pause()
            field = app.query_one("#filter-input")
            assert field.region.width >= width // 3, (width, field.region, count.region)
            assert count.region.right <= width
        store.close()


async def test_a_short_terminal_keeps_rows_for_the_list(tmp_path):
    # issue 13 bug 10: at 40x10 the fixed summary pane left the list no rows
    app, store = app_for(tmp_path)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        assert app.task_list.region.height >= 6  # its header and five tasks at least
        assert not app.query_one("#side").display
    (tmp_path / "tall").mkdir()
    app, store = app_for(tmp_path / "tall")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.query_one("#side").display  # at 80x24 the summary stays


def test_the_progress_track_differs_from_its_fill_without_colour():
    from tui.widgets.cells import bar

    done, rest = bar(40.0, 10)
    assert done == "━━━━" and rest and set(rest) & set(done) == set()
