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


# ---------------------------------------------------------------- marks and bulk actions


def row_of(app, task_id: str) -> str:
    return next(line for line in screen_text(app).splitlines() if task_id in line)


async def test_space_marks_rows_with_a_visible_mark_and_the_header_counts_them(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        first, second, third = tasks.index[:3]
        await pilot.press("space", "space")  # marks and moves down: two rows marked
        assert tasks.marked == [first, second] and tasks.cursor_key == third
        assert row_of(app, first.split(":")[1]).startswith("*")  # readable without colour
        assert row_of(app, third.split(":")[1]).startswith(" ")
        assert "* 2 marked" in plain(app.query_one("#header"))
        await pilot.press("up", "space")  # unmarks the second
        assert tasks.marked == [first]
        assert row_of(app, second.split(":")[1]).startswith(" ")
        await pilot.press("u")
        assert tasks.marked == []
        assert "marked" not in plain(app.query_one("#header"))
        assert row_of(app, first.split(":")[1]).startswith(" ")


async def test_mark_all_shown_then_forget_names_the_count(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        app.use_filter("state:failed")
        await pilot.pause()
        failed = set(app.task_list.index)
        assert len(failed) == 2
        await pilot.press("asterisk")
        assert set(app.task_list.marked) == failed
        await pilot.press("escape")  # marks outlive the filter
        assert len(app.task_list.index) == 20 and set(app.task_list.marked) == failed
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "2 marked tasks" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: not any(k in store for k in failed))
        assert len(store) == 18
        await wait_for(pilot, lambda: len(app.task_list.index) == 18)
        assert app.task_list.marks == set()
        assert "Forgot 2 tasks" in messages(app)


async def test_forget_without_marks_still_asks_about_the_selected_task(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        key = app.task_list.cursor_key
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert key.split(":")[1] in str(app.screen.query_one("#confirm-question").render())


async def test_copy_with_marks_copies_their_ids_one_a_line(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        copied = []
        app.copy_to_clipboard = copied.append
        first, second = app.task_list.index[:2]
        await pilot.press("space", "space", "c")
        assert copied == [f"{first.split(':', 1)[1]}\n{second.split(':', 1)[1]}"]
        assert "Copied the marked ids" in messages(app)


async def test_refresh_with_marks_refreshes_only_them(tmp_path, sim):
    from tui.config import load_config
    from tui.engine import Engine
    from tui.store import Store

    path = tmp_path / "config.toml"
    path.write_text(sim.config_toml(), encoding="utf-8")
    config = load_config(path)
    store = Store(tmp_path / "live.db")
    store.add("evolink", ["evolink-running", "evolink-queued", "evolink-done"])
    engine = Engine(config, store)
    asked = []
    real = engine.refresh_now

    def spy(keys=None):
        asked.append(None if keys is None else sorted(keys))
        real(keys)

    engine.refresh_now = spy
    app = make_app(config, store, engine, config_path=path)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.task_list.index) == 3)
        await pilot.press("space")
        marked = app.task_list.marked
        assert len(marked) == 1
        await pilot.press("r")
        assert asked[-1] == marked
        assert "Refreshing 1 marked task(s)" in messages(app)
        await pilot.press("u", "r")
        assert asked[-1] is None
    store.close()


# ---------------------------------------------------------------- notifications (bug 8)


async def test_finished_task_news_goes_to_the_header_not_over_the_columns(tmp_path):
    app, store = app_for(tmp_path, bell=True)
    bells = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.bell = lambda: bells.append(1)
        running = next(t for t in store.tasks() if t.state == "running")
        store.apply([running.copy(state="succeeded", progress=100.0, updated_at=NOW)])
        await wait_for(pilot, lambda: "succeeded" in plain(app.query_one("#header")).split("│")[0]
                       and running.task_id[-6:] in plain(app.query_one("#header")))
        assert not [n for n in app._notifications if "succeeded" in f"{n.title} {n.message}"]
        assert bells == [1]
        # many at once: one short line, joined with what is already shown
        live = [t for t in store.tasks() if t.state in ("running", "queued")]
        store.apply([t.copy(state="failed", updated_at=NOW) for t in live])
        total = len(live) + 1
        await wait_for(pilot, lambda: f"{total} finished: ✓ 1 ✗ {len(live)}" in plain(app.query_one("#header")))
        assert list(app._notifications) == []  # no toast at all
        app._clear_news()  # what its timer does
        assert "finished" not in plain(app.query_one("#header"))


async def test_n_toggles_finished_task_news(tmp_path):
    app, store = app_for(tmp_path, bell=True)
    bells = []
    async with app.run_test(size=(140, 40)) as pilot:
        app.bell = lambda: bells.append(1)
        await pilot.press("n")
        assert app.notifications_on is False
        assert "news off" in messages(app)
        running = [t for t in store.tasks() if t.state == "running"]
        store.apply([running[0].copy(state="succeeded", progress=100.0, updated_at=NOW)])
        await wait_for(pilot, lambda: app.task_list.tasks[running[0].key].state == "succeeded")
        app._announce()  # what the coalescing timer does
        assert app.news_text() is None and bells == []
        await pilot.press("n")
        assert app.notifications_on is True
        store.apply([running[1].copy(state="failed", updated_at=NOW)])
        await wait_for(pilot, lambda: app.news_text() is not None)
        assert "failed" in plain(app.query_one("#header"))


# ---------------------------------------------------------------- provider health


async def test_quota_card_shows_degraded_cause_daily_budgets_off_endpoints_and_last_answer(tmp_path):
    app, store = app_for(tmp_path)
    # the blob the engine saves (tui/engine/health.py ProviderHealth.encode)
    store.save_counters("freepik", {
        "state": "degraded", "cause": "2 tasks stalled: the status path answers 404",
        "requests": 9, "last_answer_at": NOW - 75,
        "daily": {"text-to-image": {"limit": 100, "used": 100, "reset_at": NOW + 3600},
                  "image-upscaler": {"limit": 50, "used": 7, "reset_at": NOW + 3600}},
        "endpoints_off": {"list:mystic": {"reason": "HTTP 404 on the list path", "until": NOW + 600}},
    })
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        cards = {c.provider: c for c in app.query("ProviderCard")}
        text = plain(cards["freepik"].query_one(".card-text"))
        assert "last: degraded" in text
        assert "cause" in text and "2 tasks stalled: the status path answers 404" in text
        assert "answered 1m ago" in text
        assert "image-upscaler 7/50" in text and "text-to-image 100/100 spent until 09:00:00" in text
        assert "list:mystic off until 08:10:00: HTTP 404 on the list path" in text
        other = plain(cards["comfy"].query_one(".card-text"))
        assert "cause" not in other and "daily" not in other and "answered" not in other


def test_live_card_reads_cause_and_health_extras():
    from types import SimpleNamespace

    from tui.engine.health import ProviderHealth
    from tui.widgets.quota import health_lines, info_from_status, problem

    status = SimpleNamespace(state="degraded", paused=False, retry_at=None, requests=3, errors=1,
                             rate_limited=0, credits_spent=0.0, balance=None, balance_unit=None,
                             budget="100/h", budget_capacity=100.0, budget_available=99, rpm=[0] * 60,
                             last_error=None, cause="1 task's polls fail: HTTP 502")
    health = ProviderHealth(name="comfy", last_answer_at=NOW - 5,
                            daily={"relight": {"limit": 10, "used": 2, "reset_at": NOW + 60}})
    info = info_from_status(status, health)
    lines = dict(health_lines(info, NOW))
    assert lines["cause"] == "1 task's polls fail: HTTP 502"
    assert lines["answered"] == "5s ago" and lines["daily"] == "relight 2/10"
    assert problem(info) == "degraded"


class _Worker:
    def __init__(self, state="ok", last_answer_at=None):
        from types import SimpleNamespace

        self.state = state
        self.h = SimpleNamespace(last_answer_at=last_answer_at)


class _Engine:
    """Only what the header reads of an engine: its providers' health (state, last answer)."""

    paused = False
    store_problem = None

    def __init__(self, workers):
        self.workers = workers

    def health(self):
        from tui.engine.health import ProviderHealth

        return [ProviderHealth(name=name, state=w.state, last_answer_at=w.h.last_answer_at)
                for name, w in self.workers.items()]

    def status(self, name):
        raise KeyError(name)

    async def start(self):
        pass

    async def stop(self):
        pass


async def test_header_shows_last_answer_per_provider_and_a_stuck_poller_differs_from_a_quiet_one(tmp_path):
    tasks = [Task("comfy", "c1", state="running", created_at=NOW - 60, updated_at=NOW - 5),
             Task("evolink", "e1", state="queued", created_at=NOW - 900, updated_at=NOW - 600),
             Task("qolaba", "q1", state="succeeded", created_at=NOW - 900, updated_at=NOW - 800)]
    engine = _Engine({"comfy": _Worker(last_answer_at=NOW - 4),
                      "evolink": _Worker(last_answer_at=NOW - 600),  # live tasks, silent 10 min
                      "qolaba": _Worker(last_answer_at=NOW - 800)})  # nothing to poll: quiet is fine
    app, store = app_for(tmp_path, tasks, engine=engine)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        header = plain(app.query_one("#header"))
        assert "comfy 4s" in header
        assert "⚠ evolink no answer for 10m" in header and "evolink 10m!" in header
        assert "qolaba idle" in header and "qolaba no answer" not in header
        engine.paused = True  # paused: silence is expected
        app._update_header()
        header = plain(app.query_one("#header"))
        assert "no answer" not in header and "evolink 10m" in header


# ---------------------------------------------------------------- sorting by column


def sorted_keys(store, mode, reverse=False):
    from tui.widgets.task_list import SORTS

    return [t.key for t in sorted(store.tasks(), key=SORTS[mode], reverse=reverse)]


async def test_sort_keys_move_between_columns_and_reverse(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        assert tasks.sort_mode == "updated"
        newest = tasks.index[0]
        await pilot.press("S")
        assert tasks.sort_reverse and tasks.sort_mode == "updated"
        assert tasks.index[-1] == newest  # oldest first now
        assert "sort: updated ↑ reversed" in plain(app.query_one("#header"))
        await pilot.press("greater_than_sign")  # next column, same direction
        assert tasks.sort_mode == "created" and tasks.sort_reverse
        assert tasks.index == [k for k in sorted_keys(store, "created", reverse=True)]
        await pilot.press("less_than_sign", "less_than_sign")
        assert tasks.sort_mode == "progress"
        await pilot.press("S")
        assert not tasks.sort_reverse
        assert tasks.index == sorted_keys(store, "progress")
        header = plain(app.query_one("#header"))
        assert "sort: progress" in header and "reversed" not in header


async def test_reversed_sort_keeps_new_tasks_in_place(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        await pilot.press("S")  # updated, oldest first
        store.add("evolink", ["brand-new"])
        store.apply([Task("evolink", "brand-new", state="queued", created_at=NOW, updated_at=NOW)])
        await wait_for(pilot, lambda: "evolink:brand-new" in tasks.index)
        assert tasks.index[-1] == "evolink:brand-new"  # the newest goes last when reversed
        assert tasks.index == sorted_keys(store, "updated", reverse=True)


async def test_click_on_a_column_title_sorts_by_it_and_again_reverses(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        title = tasks.render_line(0).text
        await pilot.click("#tasks", offset=(title.index("STATE") + 1, 0))
        await wait_for(pilot, lambda: tasks.sort_mode == "state")
        assert not tasks.sort_reverse and tasks.index == sorted_keys(store, "state")
        await pilot.click("#tasks", offset=(title.index("STATE") + 1, 0))
        await wait_for(pilot, lambda: tasks.sort_reverse)
        assert tasks.index == sorted_keys(store, "state", reverse=True)
        await pilot.click("#tasks", offset=(title.index("PROVIDER") + 1, 0))
        await wait_for(pilot, lambda: tasks.sort_mode == "provider")
        assert not tasks.sort_reverse
        await pilot.click("#tasks", offset=(title.index("AGE"), 0))
        await wait_for(pilot, lambda: tasks.sort_mode == "created")
        await pilot.click("#tasks", offset=(title.index("UPDATED") + 2, 0))
        await wait_for(pilot, lambda: tasks.sort_mode == "updated")
        await pilot.click("#tasks", offset=(title.index("TASK") + 1, 0))  # not a sort column
        await pilot.pause()
        assert tasks.sort_mode == "updated"


# ---------------------------------------------------------------- follow mode


async def test_follow_mode_keeps_the_cursor_on_the_latest_change(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        first = tasks.cursor_key
        target = tasks.index[10]
        # without follow, a change elsewhere leaves the cursor alone
        store.apply([store.get(target).copy(state="failed", updated_at=NOW + 1)])
        await wait_for(pilot, lambda: tasks.tasks[target].state == "failed")
        assert tasks.cursor_key == first
        await pilot.press("f")
        assert app.follow and "FOLLOW" in plain(app.query_one("#header"))
        a, b = tasks.index[12], tasks.index[15]
        store.apply([store.get(a).copy(progress=10.0, updated_at=NOW + 2),
                     store.get(b).copy(progress=20.0, updated_at=NOW + 3)])
        await wait_for(pilot, lambda: tasks.cursor_key == b)
        await wait_for(pilot, lambda: b.split(":", 1)[1] in plain(app.query_one("#summary")))
        await pilot.press("f")
        assert not app.follow and "FOLLOW" not in plain(app.query_one("#header"))
        store.apply([store.get(a).copy(progress=30.0, updated_at=NOW + 4)])
        await wait_for(pilot, lambda: tasks.tasks[a].progress == 30.0)
        assert tasks.cursor_key == b


# ---------------------------------------------------------------- snapshots (80x24 and 160x50)

import pytest  # noqa: E402


def snapshot_app(tmp_path):
    store = fill_store(tmp_path / "tasks.db")
    store.save_counters("freepik", {
        "state": "degraded", "cause": "2 tasks stalled: the status path answers 404", "requests": 9,
        "last_answer_at": NOW - 75,
        "daily": {"text-to-image": {"limit": 100, "used": 100, "reset_at": NOW + 3600}},
        "endpoints_off": {"list:mystic": {"reason": "HTTP 404 on the list path", "until": NOW + 600}}})
    return make_app(make_config(), store, clock=clock)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_marks_reversed_sort_follow_and_news(snap_compare, tmp_path, size):
    app = snapshot_app(tmp_path)

    async def setup(pilot):
        tasks = app.task_list
        tasks.set_sort("progress", True)
        for key in tasks.index[1:4]:
            tasks.toggle_mark(key)
        app.follow = True
        app._news = [("evolink:evolink-task-004", "succeeded"), ("comfy:comfy-task-010", "failed")]
        app._update_header()
        await pilot.pause()

    assert snap_compare(app, run_before=setup, terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_quota_pane_with_provider_health(snap_compare, tmp_path, size):
    app = snapshot_app(tmp_path)

    async def setup(pilot):
        if size[0] < 110:
            await pilot.press("v")
        app.query_one("#quota").scroll_to_widget(
            next(c for c in app.query("ProviderCard") if c.provider == "freepik"), animate=False)
        await pilot.pause()

    assert snap_compare(app, run_before=setup, terminal_size=size)


async def test_header_keeps_marks_follow_and_sort_in_view_at_80_columns(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("space", "f", "S")
        header = plain(app.query_one("#header"))
        assert "* 1 marked" in header and "FOLLOW" in header and "sort updated ↑ rev" in header
        assert "▶6" in header and "running" not in header  # symbols only: the words did not fit
    app, store = app_for(tmp_path / "wide")
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        assert "▶ 6 running" in plain(app.query_one("#header"))  # room: words stay


# ---------------------------------------------------------------- the installed tasktui in tmux


@pytest.mark.tmux
def test_tmux_marks_bulk_forget_column_sort_and_error_log_jump(tmp_path):
    import shlex
    import time
    import shutil
    from pathlib import Path

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    from test_tmux import Tmux

    store = fill_store(tmp_path / "tasks.db")
    store.close()
    (tmp_path / "config.toml").write_text("# empty: offline dashboard\n", encoding="utf-8")
    env = {"TASKTUI_DB": str(tmp_path / "tasks.db"), "TASKTUI_CONFIG": str(tmp_path / "config.toml"),
           "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    exe = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tasktui"
    if not exe.exists():
        pytest.skip("tasktui is not installed in .venv")
    term = Tmux(140, 40, f"{shlex.quote(str(exe))} --offline", env)
    try:
        term.wait_for("comfy-task-000")
        term.wait_for("Filter")
        # marks + bulk forget: mark the first two rows, x, the confirm names the count
        term.press("Space")
        term.press("Space")
        term.wait_for("* 2 marked")
        lines = term.screen().splitlines()
        assert any(line.startswith("*comfy    comfy-task-000") for line in lines)
        term.press("x")
        term.wait_for("Forget 2 marked tasks")
        term.press("y")
        term.wait_for("Forgot 2 tasks")
        term.wait_for("comfy-task-000", absent=True)
        # column sort: S reverses, > moves to the next column (updated -> created)
        term.press("S")
        term.wait_for("sort: updated ↑ reversed")
        term.press(">")
        term.wait_for("sort: created ↑ reversed")
        # error log jump: e, pick the evolink-task-004 row, g goes to it in the list
        term.press("e")
        term.wait_for("Too many requests")  # the log's rows are in
        # keys typed right after "/" can reach the table before the filter has the focus
        # (and do nothing there): type one letter until the filter shows it (it has the
        # focus then), clear it (ctrl+u), then type the query
        term.press("/")
        for attempt in range(30):
            term.type("e")
            try:
                term.wait_for("filter: provider, task", timeout=2, absent=True)
                break
            except AssertionError:
                continue
        term.press("C-u")
        term.wait_for("filter: provider, task")
        term.type("evolink-task-004")
        term.wait_for("1 of")
        # Tab moves the focus in a binding that runs after the key went round the
        # focused filter: a "g" sent right behind it can still land in the filter.
        # Wait for the table's cursor row to light up (the table has the focus) first,
        # from the row as the filter drew it (its first row is then the task's)
        deadline = time.monotonic() + 60
        while "evolink-task-004" not in term.screen().splitlines()[2]:
            assert time.monotonic() < deadline, term.screen()
            time.sleep(0.1)  # polling interval, not a wait for the app
        row = term.screen(escapes=True).splitlines()[2]
        term.press("Tab")  # from the filter to the table
        term.wait_restyled(2, row)
        term.press("g")
        term.wait_for("Error log", absent=True)
        summary = term.wait_for("task id  evolink-task-004")
        assert "evolink-task-004" in summary
        term.press("q")
        term.wait_for("EXITED:0")
    finally:
        term.kill()


async def test_marks_hidden_by_the_filter_are_named_and_removed_tasks_lose_their_mark(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        first, second = tasks.index[:2]
        await pilot.press("space", "space")
        app.use_filter(second.split(":", 1)[1])  # only the second is shown
        await pilot.pause()
        assert tasks.index == [second]
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#confirm-question").render())
        assert "2 marked tasks" in question and "1 hidden by the filter" in question
        await pilot.press("n")
        store.remove([first])  # gone by another way (another process, the CLI)
        await wait_for(pilot, lambda: first not in tasks.tasks)
        assert tasks.marked == [second]
        await wait_for(pilot, lambda: "* 1 marked" in plain(app.query_one("#header")))
