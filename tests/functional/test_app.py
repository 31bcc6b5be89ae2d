"""The dashboard under Textual's Pilot, over a real SQLite store (tmp_path),
with a fixed clock and no engine (offline): keys, filter, screens, safety."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static, TextArea

from test_app_fixtures import (HOSTILE_ERROR, HOSTILE_LABEL, NOW, clock, fill_store, make_config,
                               notices, plain, screen_text, wait_for)
from tui.app import make_app
from tui.model import Task
from tui.screens.add import AddTaskScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.detail import DetailScreen
from tui.screens.errors import ErrorLogScreen
from tui.screens.help import HelpScreen
from tui.store import Store


def app_for(tmp_path, tasks=None, **ui):
    store = fill_store(tmp_path / "tasks.db", tasks)
    config = make_config(tmp_path, **ui)
    return make_app(config, store, clock=clock, config_path=tmp_path / "config.toml"), store


async def test_list_shows_every_task_sorted_by_last_update(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        tasks = app.task_list
        assert len(tasks.index) == 20
        # newest update first: task 0 was updated 1 s ago, task 19 96 s ago
        assert tasks.index[0] == "comfy:comfy-task-000"
        assert tasks.index[-1] == "evolink:evolink-task-019"
        text = screen_text(app)
        assert "PROVIDER" in text and "STATE" in text
        assert "▶ running" in text and "✓ succeeded" in text and "✗ failed" in text
        assert "? not found" in text and "⊘ cancelled" in text
        assert "1s ago" in text  # ages come from the injected clock
        header = plain(app.query_one("#header"))
        assert "OFFLINE" in header and "running" in header


async def test_cursor_keys_move_by_task(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        first = tasks.index[0]
        assert tasks.cursor_key == first
        await pilot.press("j", "j", "down")
        assert tasks.cursor_key == tasks.index[3]
        await pilot.press("k", "up")
        assert tasks.cursor_key == tasks.index[1]
        await pilot.press("end")
        assert tasks.cursor_key == tasks.index[-1]
        await pilot.press("home")
        assert tasks.cursor_key == first
        await pilot.press("pagedown")
        assert tasks.cursor_row > 1
        await pilot.press("pageup")
        assert tasks.cursor_key == first
        # the summary follows the cursor
        await pilot.press("j")
        await pilot.pause()
        summary = plain(app.query_one("#summary"))
        assert tasks.index[1].split(":", 1)[1] in summary


async def test_mouse_click_selects_a_row(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        await pilot.click("#tasks", offset=(10, 4))  # line 0 is the header
        assert tasks.cursor_key == tasks.index[3]
        await pilot.double_click("#tasks", offset=(10, 6))
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert app.screen.key == tasks.index[5]


async def test_filter_language_narrows_as_you_type(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        await pilot.press("slash")
        assert app.query_one("#filter-input").has_focus
        await pilot.press(*"batch")  # bare word: label substring
        assert set(tasks.index) == {t.key for t in store.tasks() if t.label == "batch-7"}
        assert "7 of 20" in plain(app.query_one("#filter-count"))
        assert "7/20 shown" in plain(app.query_one("#header"))
        await pilot.press("enter")  # keep the filter, back to the list
        assert tasks.has_focus and len(tasks.index) == 7
        await pilot.press("escape")  # clears
        assert len(tasks.index) == 20

        async def query(q: str) -> set[str]:
            await pilot.press("slash")
            inp = app.query_one("#filter-input")
            inp.value = q
            await pilot.pause()
            return set(tasks.index)

        assert await query("provider:evolink") == {t.key for t in store.tasks() if t.provider == "evolink"}
        assert await query("state:failed") == {t.key for t in store.tasks() if t.state == "failed"}
        assert await query("-state:succeeded") == {t.key for t in store.tasks() if t.state != "succeeded"}
        both = await query("provider:comfy -label:batch")
        assert both == {t.key for t in store.tasks() if t.provider == "comfy" and t.label is None}
        assert await query("flux running") == {
            t.key for t in store.tasks() if t.model == "flux-dev" and t.state == "running"}
        assert await query("nothing-matches-this") == set()
        assert "0 of 20" in plain(app.query_one("#filter-count"))


async def test_narrowing_while_typing_equals_a_fresh_filter(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        await pilot.press("slash", *"state:do")  # 'do' matches nothing; 'done' is a group
        assert tasks.index == []
        await pilot.press(*"ne")
        assert set(tasks.index) == {t.key for t in store.tasks() if t.terminal}
        await pilot.press(*" evo")
        assert set(tasks.index) == {t.key for t in store.tasks() if t.terminal and t.provider == "evolink"}


async def test_enter_opens_detail_with_every_field_history_and_raw(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        key = next(t.key for t in store.tasks() if t.state == "succeeded")
        assert tasks.select(key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        screen = app.screen
        fields = plain(screen.query_one("#detail-fields"))
        task = store.get(key)
        for needle in (task.task_id, "succeeded", "https://cdn.example.com", "credits", "2027-01-15T"):
            assert needle in fields
        history = plain(screen.query_one("#detail-history"))
        assert "succeeded" in history
        assert '"status": "SUCCEEDED"' in plain(screen.query_one("#detail-raw"))
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_hostile_provider_text_is_shown_inert(tmp_path):
    evil = Task(provider="evolink", task_id="evil-1", label=HOSTILE_LABEL, state="failed",
                error=HOSTILE_ERROR, model="[link=https://evil.example]m[/link]",
                created_at=NOW - 5, updated_at=NOW - 1,
                results=["javascript:alert(1)"], raw={"error": HOSTILE_ERROR, "x": "\u202eevil"})
    app, store = app_for(tmp_path, tasks=[evil])
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        rows = screen_text(app)
        assert "[red]x[/red]" in rows  # markup shown as typed, not interpreted
        assert "\x1b" not in rows and "\x07" not in rows
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        for wid in ("#detail-fields", "#detail-raw", "#detail-title"):
            rendered = plain(app.screen.query_one(wid))
            assert "\x1b" not in rendered and "\x07" not in rendered and "\u202e" not in rendered
        fields = plain(app.screen.query_one("#detail-fields"))
        assert "[bold]loud[/bold]" in fields and "[link=https://evil.example]" in fields
        assert "(not a web link)" in fields
        # no span of any widget's text carries a link or a style smuggled in by the provider
        for static in app.screen.query(Static):
            content = static.content
            if isinstance(content, Text):
                assert all("link" not in str(span.style) for span in content.spans)
        await pilot.press("c")  # javascript: is never copied
        assert app.clipboard == ""


async def test_copy_puts_the_first_web_result_on_the_clipboard(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        said = notices(app)
        key = next(t.key for t in store.tasks() if t.results)
        app.task_list.select(key)
        await pilot.press("c")
        assert app.clipboard == store.get(key).results[0]
        assert any("Copied" in title for title, _ in said)
        # a task without results copies nothing and says so
        app.task_list.select(next(t.key for t in store.tasks() if not t.results))
        app.copy_to_clipboard("unchanged")
        await pilot.press("c")
        assert app.clipboard == "unchanged"


async def test_forget_asks_first(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        key = tasks.cursor_key
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert key in store
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: key not in tasks.index)
        assert key not in store
        assert tasks.cursor_key is not None and tasks.cursor_key != key
    with Store(tmp_path / "tasks.db") as again:  # durable
        assert key not in again


async def test_add_form_adds_pasted_ids_to_the_store(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AddTaskScreen))
        screen = app.screen
        screen.query_one("#add-provider").value = "freepik"
        screen.query_one("#add-label").value = "pasted"
        screen.query_one("#add-kind").value = "text-to-image/hyperflux"
        area = screen.query_one("#add-ids", TextArea)
        area.focus()
        area.insert("new-1\nnew-2, new-3\n\nnew-1\n")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "freepik:new-3" in app.task_list.index)
        for i in (1, 2, 3):
            t = store.get(f"freepik:new-{i}")
            assert t is not None and t.label == "pasted" and t.kind == "text-to-image/hyperflux"
        assert len(store) == 23
        # an empty form does not close and adds nothing
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AddTaskScreen))
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, AddTaskScreen)
        assert "at least one" in plain(app.screen.query_one("#add-problem"))
        await pilot.press("escape")  # even from the text area, esc cancels
        await wait_for(pilot, lambda: not isinstance(app.screen, AddTaskScreen))
        assert len(store) == 23


def _no_bad_ends():
    """The scenario without failed, cancelled or gone tasks: the error log then
    holds the three logged events only (task failures are rows of their own)."""
    from test_app_fixtures import scenario_tasks
    from tui.model import BAD_ENDS

    return [t for t in scenario_tasks() if t.state not in BAD_ENDS]


async def test_error_log_newest_first_and_filterable(tmp_path):
    app, store = app_for(tmp_path, _no_bad_ends())
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorLogScreen))
        table = app.screen.query_one(DataTable)
        assert table.row_count == 3
        first = [str(c) for c in table.get_row_at(0)]
        assert first[1] == "comfy" and first[3] == "401" and first[4] == "auth_failed"
        last = [str(c) for c in table.get_row_at(2)]
        assert last[3] == "429" and last[6] == "12s" and "Too many requests" in last[5]
        await pilot.press("slash", *"upstream")
        assert table.row_count == 1
        assert "1 of 3" in plain(app.screen.query_one("#errors-count"))
        await pilot.press("escape")  # clears the filter first
        assert table.row_count == 3
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorLogScreen)


async def test_help_lists_keys_and_filter_language(tmp_path):
    app, store = app_for(tmp_path, saved_filters={"failures": "state:bad"})
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = plain(app.screen.query_one("#help-text"))
        for needle in ("filter the list", "stop tracking", "copy the first result URL", "provider:evo",
                       "-state:done", "state:bad"):
            assert needle in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_sort_cycles_and_updates_do_not_make_rows_jump(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        assert tasks.sort_mode == "updated"
        await pilot.press("s")
        assert tasks.sort_mode == "created"
        await pilot.press("s")
        assert tasks.sort_mode == "state"
        assert store.get(tasks.index[0]).state == "failed"
        await pilot.press("s")
        assert tasks.sort_mode == "provider"
        assert [store.get(k).provider for k in tasks.index[:4]] == ["comfy"] * 4
        await pilot.press("s", "s")
        assert tasks.sort_mode == "updated"
        before = list(tasks.index)
        last = store.get(before[-1])
        store.apply([last.copy(state="running", progress=50.0, updated_at=NOW)])
        await wait_for(pilot, lambda: "50%" in screen_text(app) or tasks.size.height < 25)
        assert tasks.index == before  # updated in place: no jump
        await pilot.press("s", "s", "s", "s", "s")  # asked: re-sorted
        assert tasks.index[0] == last.key


async def test_cursor_stays_on_its_task_when_rows_update_and_arrive(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        await pilot.press("j", "j", "j", "j", "j")
        key = tasks.cursor_key
        row = tasks.cursor_row
        # newer tasks arrive (sorted above the cursor) and the selected one changes
        store.add("evolink", ["fresh-1", "fresh-2"])
        store.apply([Task("evolink", "fresh-1", state="running", updated_at=NOW),
                     Task("evolink", "fresh-2", state="queued", updated_at=NOW),
                     store.get(key).copy(progress=99.0, state="running")])
        await wait_for(pilot, lambda: "evolink:fresh-2" in tasks.index)
        assert tasks.cursor_key == key
        assert tasks.cursor_row == row + 2
        # the filter changes: the cursor keeps its task when it still matches
        provider = store.get(key).provider
        app.apply_filter(f"provider:{provider}")
        assert tasks.cursor_key == key
        app.apply_filter("")
        assert tasks.cursor_key == key


async def test_other_process_writes_appear(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        with Store(tmp_path / "tasks.db") as other:  # like `tasktui add` in another shell
            other.add("upscayl", ["from-elsewhere"], label="cli")
        await wait_for(pilot, lambda: "upscayl:from-elsewhere" in app.task_list.index)
        assert len(app.task_list.index) == 21
        await wait_for(pilot, lambda: "from-elsewhere" in screen_text(app))  # drawn, not only listed


async def test_finished_tasks_notify(tmp_path):
    """Finished-task news goes to the header (never a toast over the columns, issue 13
    bug 8): one task by name, many as one line; a task first seen finished is not news."""
    app, store = app_for(tmp_path, bell=True)
    bells = []
    async with app.run_test(size=(140, 40)) as pilot:
        said = notices(app)
        app.bell = lambda: bells.append(1)
        running = next(t for t in store.tasks() if t.state == "running")
        store.apply([running.copy(state="succeeded", progress=100.0, updated_at=NOW)])
        await wait_for(pilot, lambda: app.news_text() is not None)
        text, bad = app.news_text()
        assert running.task_id[-6:] in text and "succeeded" in text and not bad
        assert bells == [1]  # [ui] bell = true
        app._clear_news()  # what its timer does
        live = [t for t in store.tasks() if t.state in ("running", "queued")]
        unknown = next(t for t in store.tasks() if t.state == "unknown")
        store.apply([t.copy(state="failed", updated_at=NOW) for t in live]
                    + [unknown.copy(state="succeeded", updated_at=NOW)])
        await wait_for(pilot, lambda: app.news_text() is not None)
        assert app.news_text() == (f"{len(live)} finished: ✓ 0 ✗ {len(live)}", True)
        assert not [n for n in said if "finished" in f"{n[0]} {n[1]}"]


async def test_saved_filter_digit_and_keymap(tmp_path):
    app, store = app_for(tmp_path, saved_filters={"failures": "state:bad"}, keymap={"sort": "o"})
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("1")
        assert set(app.task_list.index) == {t.key for t in store.tasks()
                                             if t.state in ("failed", "cancelled", "not_found")}
        assert app.query_one("#filter-input").value == "state:bad"
        await pilot.press("o")  # remapped from s
        assert app.task_list.sort_mode == "created"
        await pilot.press("s")  # no longer bound
        assert app.task_list.sort_mode == "created"


async def test_theme_is_saved_back_with_comments_kept(tmp_path):
    app, store = app_for(tmp_path, theme="textual-dark")
    async with app.run_test(size=(140, 40)) as pilot:
        app.theme = "nord"
        await pilot.pause()
    text = (tmp_path / "config.toml").read_text()
    assert 'theme = "nord"' in text
    assert "this comment must survive" in text


async def test_offline_refresh_and_pause_do_not_crash(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        said = notices(app)
        await pilot.press("r", "p")
        await wait_for(pilot, lambda: "Offline" in " ".join(m for _, m in said))


async def test_quota_pane_offline_shows_saved_counters(tmp_path):
    app, store = app_for(tmp_path)
    store.save_counters("evolink", {"state": "rate_limited", "requests": 42, "errors": 3,
                                    "rate_limited": 2, "balance": 1234.5, "balance_unit": "credits",
                                    "rpm": {str(int(NOW // 60)): 7}})
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        cards = {c.provider: c for c in app.query("ProviderCard")}
        text = plain(cards["evolink"].query_one(".card-text"))
        assert "offline" in text and "last: rate limited" in text
        assert "42" in text and "1,234.50 credits" in text and "7 req/min" in text
        assert "▶" in text  # tasks by state


async def test_80x24_layout_stacks_and_keeps_footer(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tasks = app.query_one("#tasks")
        side = app.query_one("#side")
        footer = app.query_one("Footer")
        assert side.region.y >= tasks.region.bottom  # stacked below the list
        assert tasks.region.width == 80 and tasks.region.height >= 10
        assert footer.region.y == 23
        assert not app.query_one("#quota").display
        await pilot.press("v")
        await pilot.pause()
        assert app.query_one("#quota").region.height > 0
        text = screen_text(app)
        assert "▶ running" in text and all(len(line) <= 80 for line in text.splitlines())


async def test_command_palette_lists_and_runs_actions(tmp_path):
    from textual.command import CommandList, CommandPalette

    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Filter", "Add tasks", "Forget task", "Copy result URL", "Error log",
                      "Pause or resume polling", "Refresh now", "Cycle sort", "Help"):
            assert title in titles
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"forget task")

        def first_hit() -> str:
            options = app.screen.query_one(CommandList)
            return str(options.get_option_at_index(0).prompt) if options.option_count else ""

        await wait_for(pilot, lambda: "Forget task" in first_hit())
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))

async def test_enter_twice_from_the_filter_opens_the_task(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("slash", *"evolink", "enter", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert app.screen.key.startswith("evolink:")


def test_run_dashboard_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    from tui.app import run_dashboard

    bad = tmp_path / "config.toml"
    bad.write_text("[providers.evolink]\npoll_interval = 'soon'\n", encoding="utf-8")
    assert run_dashboard(bad, tmp_path / "tasks.db", offline=True) == 2
    err = capsys.readouterr().err
    assert err.startswith("tasktui: ") and err.count("\n") == 1 and "config.toml" in err
    assert not (tmp_path / "tasks.db").exists()


async def test_detail_and_error_log_follow_the_store_while_open(tmp_path):
    from tui.model import Event

    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        key = app.task_list.cursor_key
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        store.apply([store.get(key).copy(state="failed", error="it broke just now", updated_at=NOW)])
        await wait_for(pilot, lambda: "it broke just now" in plain(app.screen.query_one("#detail-fields")))
        other = app.task_list.index[3]
        # one commit: the detail screen shows its half, so the whole change has been handed out
        store.apply([store.get(other).copy(state="cancelled", updated_at=NOW),
                     store.get(key).copy(state="failed", error="and again", updated_at=NOW)])
        await wait_for(pilot, lambda: "and again" in plain(app.screen.query_one("#detail-fields")))
        assert store.get(other).key in app.task_list.index
        assert app.task_list.tasks[other].state != "cancelled"  # ... the list waits (hidden)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.task_list.cursor_key == key and "✗ failed" in screen_text(app))
        assert app.task_list.tasks[other].state == "cancelled"
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorLogScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        before = table.row_count  # the logged events and the task failures
        store.log([Event(time=NOW, provider="qolaba", message="fresh trouble", status=500, kind="transient")])
        await wait_for(pilot, lambda: table.row_count == before + 1)
        assert any("fresh trouble" in " ".join(map(str, table.get_row_at(i))) for i in range(table.row_count))


async def test_rendering_cost_follows_visible_rows_not_tasks(tmp_path):
    tasks = [Task("upscayl", f"bulk-{i:05d}", state="running", progress=float(i % 100),
                  created_at=NOW - i, updated_at=NOW - i) for i in range(5000)]
    app, store = app_for(tmp_path, tasks=tasks)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        tasks_widget = app.task_list
        assert len(tasks_widget.index) == 5000
        drawn = len(tasks_widget._cache)
        assert 0 < drawn <= 30  # only the visible rows were rendered
        await pilot.press("end")
        await pilot.pause()
        assert tasks_widget.cursor_key == "upscayl:bulk-04999"
        assert "bulk-04999" in screen_text(app)
        assert len(tasks_widget._cache) <= drawn + 30


async def test_idle_means_no_repaints_until_something_changes(tmp_path):
    now = [NOW]
    store = fill_store(tmp_path / "tasks.db")
    app = make_app(make_config(), store, clock=lambda: now[0])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        tasks = app.task_list
        repaints = []
        ticks = [0]
        real_refresh, real_tick = tasks.refresh, tasks.tick
        tasks.refresh = lambda *a, **k: (repaints.append(a), real_refresh(*a, **k))[1]

        def tick():  # the app's once-a-second timer calls the list's public tick
            real_tick()
            ticks[0] += 1

        tasks.tick = tick
        await wait_for(pilot, lambda: ticks[0] >= 2)  # two ticks (and store syncs) went by
        assert repaints == []  # nothing changed: nothing redrawn
        now[0] += 1  # a second later the visible ages read differently
        seen = ticks[0]
        await wait_for(pilot, lambda: ticks[0] > seen)
        # only the rows whose age text changed are redrawn, one line each, never the whole list
        visible = min(len(tasks.index), tasks.size.height - 1)
        assert 0 < len(repaints) <= visible
        assert all(a and a[0].height == 1 for a in repaints)
        await pilot.pause()  # the lines are drawn with the new ages
        repaints.clear()
        seen = ticks[0]
        await wait_for(pilot, lambda: ticks[0] > seen)
        assert repaints == []  # drawn ages are up to date again


async def test_no_color_keeps_states_readable(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app, store = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.no_color
        text = screen_text(app)
        for label in ("▶ running", "✓ succeeded", "✗ failed", "○ queued"):
            assert label in text


def test_budget_used_and_left_from_requests_per_minute():
    from tui.widgets.quota import budget_used

    rpm = [0] * 58 + [30, 12]
    assert budget_used("100/h", rpm) == (100.0, "hour", 42)
    assert budget_used("600/m", rpm) == (600.0, "minute", 12)
    assert budget_used("10/s", rpm) is None  # minute counts cannot tell
    assert budget_used("nonsense", rpm) is None


async def test_bulk_add_from_elsewhere_keeps_the_cursor(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("j", "j")
        key = app.task_list.cursor_key
        with Store(tmp_path / "tasks.db") as other:
            other.add("freepik", [f"bulk-{i}" for i in range(2500)])
        await wait_for(pilot, lambda: len(app.task_list.index) == 2520)
        assert app.task_list.cursor_key == key
        assert set(app.task_list.order) == {t.key for t in store.tasks()}
        with Store(tmp_path / "tasks.db") as other:
            other.remove([f"freepik:bulk-{i}" for i in range(2500)])
        await wait_for(pilot, lambda: len(app.task_list.index) == 20)
        assert app.task_list.cursor_key == key


async def test_api_keys_never_reach_the_screen_even_when_echoed(tmp_path):
    from tui.config import load_config
    from tui.model import Event

    secret = "sk-live-SECRET-0123456789"
    path = tmp_path / "config.toml"
    path.write_text(f'[providers.evolink]\napi_key = "{secret}"\n', encoding="utf-8")
    config = load_config(path)
    leaky = Task(provider="evolink", task_id="leak-1", state="failed", model=f"m-{secret}",
                 error=f"invalid key {secret} for this task", created_at=NOW - 9, updated_at=NOW,
                 raw={"error": f"Authorization: Bearer {secret}"})
    store = fill_store(tmp_path / "tasks.db", [leaky])
    store.log([Event(time=NOW, provider="evolink", message=f"401: key {secret} refused", status=401,
                     kind="auth_failed")])
    app = make_app(config, store, clock=clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        seen = [screen_text(app), plain(app.query_one("#summary"))]
        assert "[redacted]" in seen[1]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        seen += [plain(app.screen.query_one(w)) for w in ("#detail-fields", "#detail-raw")]
        assert "[redacted]" in seen[-1]
        await pilot.press("escape", "e")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorLogScreen))
        seen.append(" ".join(str(c) for c in app.screen.query_one(DataTable).get_row_at(0)))
        for text in seen:
            assert secret not in text and "0123456789" not in text
