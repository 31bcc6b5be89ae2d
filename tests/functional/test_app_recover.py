"""The dashboard's daily-driver extras (issue #13 gaps 6, 10, 11): read-only
mode, desktop notifications when a filter's tasks have all ended, retrying a
provider after a refused key, and reloading the config (ctrl+r, SIGHUP)
without a restart.  Real parts: a SQLite file in tmp_path, the simulator on
127.0.0.1 for the engine."""

from __future__ import annotations

import dataclasses

import pytest

from test_app_fixtures import NOW, clock, fill_store, make_config, plain, wait_for
from tui.app import make_app
from tui.config import load_config
from tui.engine import Engine
from tui.model import Task
from tui.store import Store, StoreError


def footer_keys(app) -> set[str]:
    """The actions the footer offers now (what the screen's bindings show)."""
    return {b.action for _, b, enabled, _ in app.screen.active_bindings.values() if enabled and b.show}


def header(app) -> str:
    return plain(app.query_one("#header"))


# ---------------------------------------------------------------- read-only


async def test_readonly_runs_no_engine_hides_writing_keys_and_says_so(tmp_path):
    fill_store(tmp_path / "tasks.db").close()
    store = Store(tmp_path / "tasks.db", readonly=True, clock=clock)
    engine = Engine(make_config(), store)
    app = make_app(make_config(), store, engine, clock=clock, readonly=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert app.engine is None  # no poller at all, even when one was handed in
        assert "READ-ONLY" in header(app)
        shown = footer_keys(app)
        assert "filter" in shown and "detail" in shown
        assert not shown & {"add", "forget", "refresh", "pause", "download", "retry_provider"}
        # the keys do nothing: no form, no confirm, the store untouched
        before = len(store)
        for key in ("a", "x", "r", "p", "d", "R"):
            await pilot.press(key)
        await pilot.pause()
        assert len(app.screen_stack) == 1 and len(store) == before
        palette = [c.title for c in app.get_system_commands(app.screen)]
        assert "Filter" in palette and "Add tasks" not in palette and "Forget task" not in palette
        assert "Refresh now" not in palette and "Retry provider now" not in palette
    with pytest.raises(StoreError):
        store.add("evolink", ["x"])  # the store itself is read-only too
    store.close()


async def test_readonly_follows_what_another_process_writes(tmp_path):
    fill_store(tmp_path / "tasks.db").close()
    store = Store(tmp_path / "tasks.db", readonly=True, clock=clock)
    app = make_app(make_config(readonly=True), store, clock=clock)  # [ui] readonly
    async with app.run_test(size=(120, 30)) as pilot:
        assert app.readonly and "READ-ONLY" in header(app)
        writer = Store(tmp_path / "tasks.db", clock=clock)  # another process polls and writes
        writer.add("evolink", ["written-elsewhere"])
        writer.close()
        await wait_for(pilot, lambda: store.get("evolink:written-elsewhere") is not None)
        await wait_for(pilot, lambda: "evolink:written-elsewhere" in app.task_list.tasks)
    store.close()


def test_readonly_dashboard_opens_the_store_read_only(tmp_path, monkeypatch):
    """run_dashboard with --readonly: the store is opened read-only and no engine is built."""
    import tui.app as app_mod
    import tui.engine as engine_mod
    import tui.stores as stores_mod

    fill_store(tmp_path / "tasks.db").close()
    seen = {}
    real_open = stores_mod.open_store

    def spy_open(target, readonly=False, **kw):
        seen["readonly"] = readonly
        return real_open(target, readonly=readonly, **kw)

    def no_engine(*a, **kw):
        raise AssertionError("read-only must build no engine")

    monkeypatch.setattr(stores_mod, "open_store", spy_open)
    monkeypatch.setattr(engine_mod, "Engine", no_engine)
    monkeypatch.setattr(app_mod.TaskTUI, "run", lambda self, **kw: None)
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    assert app_mod.run_dashboard(tmp_path / "config.toml", tmp_path / "tasks.db", False, True) == 0
    assert seen["readonly"] is True


# ---------------------------------------------------------------- desktop notifications


def _running(n: int) -> list[Task]:
    return [Task(provider="evolink", task_id=f"job-{i}", label="render" if i < 2 else "other",
                 state="running", created_at=NOW - 60, updated_at=NOW - 5) for i in range(n)]


def _end(path, keys_states: dict[str, str], error: str | None = None) -> None:
    """Another process stores the end of some tasks."""
    writer = Store(path, clock=clock)
    ended = [dataclasses.replace(writer.get(k), state=s, error=error if s != "succeeded" else None,
                                 updated_at=NOW) for k, s in keys_states.items()]
    writer.apply(ended)
    writer.close()


@pytest.mark.parametrize("mode, expected", [
    ("osc9", "\x1b]9;tasktui: 2 tasks ended: 1 succeeded, 1 did not (filter label:render)\x07"),
    ("osc777", "\x1b]777;notify;tasktui;2 tasks ended: 1 succeeded, 1 did not (filter label:render)\x07"),
])
async def test_desktop_notification_when_the_filters_tasks_have_all_ended(tmp_path, mode, expected, monkeypatch):
    monkeypatch.delenv("TMUX", raising=False)
    path = tmp_path / "tasks.db"
    fill_store(path, _running(3), events=False).close()
    store = Store(path, clock=clock)
    app = make_app(make_config(notify=mode), store, clock=clock)
    written: list[str] = []
    async with app.run_test(size=(120, 30)) as pilot:
        app.terminal_out = written.append  # what the app hands its terminal driver
        app.use_filter("label:render")
        _end(path, {"evolink:job-0": "succeeded"})
        await wait_for(pilot, lambda: app.news_text() is not None)
        assert written == []  # job-1 still runs: the filter's tasks have not all ended
        _end(path, {"evolink:job-1": "failed"}, error="boom \x1b]9;pwned\x07 \x1b[31mred")
        await wait_for(pilot, lambda: written != [])
        assert written == [expected]
        assert "pwned" not in written[0]  # no provider text reaches the terminal
    store.close()


async def test_desktop_notification_inside_tmux_and_off_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1,0")
    path = tmp_path / "tasks.db"
    fill_store(path, _running(1), events=False).close()
    store = Store(path, clock=clock)
    app = make_app(make_config(notify="osc9"), store, clock=clock)
    written: list[str] = []
    async with app.run_test(size=(120, 30)) as pilot:
        app.terminal_out = written.append
        _end(path, {"evolink:job-0": "succeeded"})
        await wait_for(pilot, lambda: written != [])
    assert written == ["\x1bPtmux;\x1b\x1b]9;tasktui: 1 task ended: 1 succeeded\x07\x1b\\"]
    store.close()

    fill_store(tmp_path / "b.db", _running(1), events=False).close()
    store = Store(tmp_path / "b.db", clock=clock)
    app = make_app(make_config(), store, clock=clock)  # default: news in the header only
    written = []
    async with app.run_test(size=(120, 30)) as pilot:
        app.terminal_out = written.append
        _end(tmp_path / "b.db", {"evolink:job-0": "succeeded"})
        await wait_for(pilot, lambda: app.news_text() is not None)
        await pilot.pause(0.1)
    assert written == [] and app.notify_mode is None
    store.close()


# ---------------------------------------------------------------- retry a provider, reload the config


def _sim_config(path, sim, key: str, extra: str = "") -> None:
    path.write_text(f'[providers.evolink]\napi_key = "{key}"\nbase_url = "{sim.base_url}"\n'
                    f'poll_interval = 0.2\nrate_limit = "600/s"\n{extra}', encoding="utf-8")


def _evolink_requests(sim) -> list:
    return [r for r in sim.requests if r.provider == "evolink"]


async def test_R_retries_the_selected_tasks_provider_after_a_refused_key(tmp_path, sim, sim_fault):
    sim.add(faults=[sim_fault("auth", "evolink", count=1, status=401)])  # the key is refused once
    path = tmp_path / "config.toml"
    _sim_config(path, sim, sim.key("evolink"))
    config = load_config(path)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-done"])
    engine = Engine(config, store)
    app = make_app(config, store, engine, config_path=path)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: engine.status("evolink").state == "auth_failed", timeout=30)
        await wait_for(pilot, lambda: "evolink" in header(app) and "⚠" in header(app))
        asked = len(_evolink_requests(sim))
        await pilot.press("R")
        await wait_for(pilot, lambda: store.get("evolink:evolink-done").state == "succeeded", timeout=30)
        assert len(_evolink_requests(sim)) > asked
        assert engine.status("evolink").state == "ok"
        await wait_for(pilot, lambda: "⚠" not in header(app))
    store.close()


async def test_ctrl_r_reloads_a_new_key_and_a_bad_config_keeps_the_old_one(tmp_path, sim):
    path = tmp_path / "config.toml"
    _sim_config(path, sim, "sk-wrong-key")
    config = load_config(path)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-done"])
    engine = Engine(config, store)
    app = make_app(config, store, engine, config_path=path)
    notes: list[str] = []
    async with app.run_test(size=(160, 50)) as pilot:
        real_notify = app.notify
        app.notify = lambda message, **kw: (notes.append(f"{kw.get('title', '')}: {message}"),
                                            real_notify(message, **kw))[1]
        await wait_for(pilot, lambda: engine.status("evolink").state == "auth_failed", timeout=30)

        path.write_text("[providers.evolink\n", encoding="utf-8")  # broken TOML
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any(n.startswith("Config not reloaded") for n in notes))
        assert app.config is config and engine.status("evolink").state == "auth_failed"
        assert "kept the config in use" in notes[-1] and "\n" not in notes[-1]

        _sim_config(path, sim, sim.key("evolink"), '[ui]\nsaved_filters = { mine = "state:done" }\n')
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any(n.startswith("Config reloaded") for n in notes))
        assert not any(n.startswith("A config reload") for n in notes), notes
        await wait_for(pilot, lambda: store.get("evolink:evolink-done").state == "succeeded", timeout=30)
        assert app.config is not config and app.filters == [("mine", "state:done")]
        said = next(n for n in notes if n.startswith("Config reloaded"))
        assert "evolink" in said and sim.key("evolink") not in said and "sk-wrong-key" not in said
    store.close()


async def test_sighup_reloads_while_the_terminal_answers(tmp_path, sim, monkeypatch):
    import os
    import signal

    path = tmp_path / "config.toml"
    _sim_config(path, sim, "sk-wrong-key")
    config = load_config(path)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-done"])
    engine = Engine(config, store)
    app = make_app(config, store, engine, config_path=path)
    monkeypatch.setattr(app, "terminal_alive", lambda: True)  # a real terminal: see test_tmux.py
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: engine.status("evolink").state == "auth_failed", timeout=30)
        _sim_config(path, sim, sim.key("evolink"))
        os.kill(os.getpid(), signal.SIGHUP)  # `kill -HUP`: reload, not hang up
        await wait_for(pilot, lambda: store.get("evolink:evolink-done").state == "succeeded", timeout=30)
        assert app.return_code is None and app.is_running
    store.close()


# ---------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_readonly(snap_compare, tmp_path, size):
    """READ-ONLY in the header; no Add, Forget, Refresh or Pause in the footer."""
    from test_app_fixtures import scenario_tasks

    fill_store(tmp_path / "tasks.db", scenario_tasks()[:8]).close()
    store = Store(tmp_path / "tasks.db", readonly=True, clock=clock)
    assert snap_compare(make_app(make_config(), store, clock=clock, readonly=True), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_bad_config_on_reload(snap_compare, tmp_path, size):
    """ctrl+r on a broken config: one line says why, the old config stays."""
    from test_app_fixtures import scenario_tasks

    store = fill_store(tmp_path / "tasks.db", scenario_tasks()[:8])
    path = tmp_path / "config.toml"
    path.write_text("[ui]\nthem = \"nord\"\n", encoding="utf-8")
    assert snap_compare(make_app(make_config(), store, clock=clock, config_path=path), press=["ctrl+r"],
                        terminal_size=size)


async def test_R_on_the_quota_table_retries_that_rows_provider(tmp_path, sim, sim_fault):
    from tui.widgets.quota import QuotaTable

    sim.add(faults=[sim_fault("auth", "qolaba", count=1, status=401)])  # qolaba's key refused once
    path = tmp_path / "config.toml"
    path.write_text("".join(f'[providers.{p}]\napi_key = "{sim.key(p)}"\nbase_url = "{sim.base_url}"\n'
                            f'poll_interval = 0.2\nrate_limit = "600/s"\n\n' for p in ("evolink", "qolaba")),
                    encoding="utf-8")
    config = load_config(path)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-done"])
    store.add("qolaba", ["qolaba-done"])
    engine = Engine(config, store)
    app = make_app(config, store, engine, config_path=path)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: engine.status("qolaba").state == "auth_failed", timeout=30)
        app.go_to_task("evolink:evolink-done")  # the list's task is evolink's: R must not pick it
        table = app.query_one(QuotaTable)
        table.focus()
        await wait_for(pilot, lambda: table.selected() is not None)
        for _ in range(table.row_count):
            if table.selected() == "qolaba":
                break
            await pilot.press("down")
        assert table.selected() == "qolaba"
        await pilot.press("R")
        await wait_for(pilot, lambda: store.get("qolaba:qolaba-done").state == "succeeded", timeout=30)
        assert engine.status("qolaba").state == "ok"
    store.close()


async def test_reload_adds_and_removes_providers_in_the_quota_table(tmp_path, sim):
    from tui.widgets.quota import QuotaTable

    path = tmp_path / "config.toml"
    _sim_config(path, sim, sim.key("evolink"))
    config = load_config(path)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-done"])
    store.add("qolaba", ["qolaba-done"])
    engine = Engine(config, store)
    app = make_app(config, store, engine, config_path=path)
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.query_one(QuotaTable)
        await wait_for(pilot, lambda: store.get("evolink:evolink-done").state == "succeeded", timeout=30)
        assert store.get("qolaba:qolaba-done").state != "succeeded"  # not configured: not polled
        assert "qolaba" not in {str(r.value) for r in table.rows}
        path.write_text(f'[providers.qolaba]\napi_key = "{sim.key("qolaba")}"\nbase_url = "{sim.base_url}"\n'
                        'poll_interval = 0.2\nrate_limit = "600/s"\n', encoding="utf-8")
        await pilot.press("ctrl+r")  # qolaba added, evolink removed
        await wait_for(pilot, lambda: store.get("qolaba:qolaba-done").state == "succeeded", timeout=30)
        assert set(engine.workers) == {"qolaba"} and app.providers == ["qolaba"]
        await wait_for(pilot, lambda: {str(r.value) for r in table.rows} == {"evolink", "qolaba"})
        # a removed provider's tasks stay, so its stored health stays listed (not polled any more)
    store.close()


async def test_reload_reads_a_config_written_after_start_and_keeps_one_deleted(tmp_path, sim):
    path = tmp_path / "config.toml"  # no file at start: an empty config, nothing polled
    config = load_config(path)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-done"])
    engine = Engine(config, store)
    app = make_app(config, store, engine, config_path=path)
    async with app.run_test(size=(160, 50)) as pilot:
        assert engine.workers == {}
        _sim_config(path, sim, sim.key("evolink"))  # written while the dashboard runs
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: store.get("evolink:evolink-done").state == "succeeded", timeout=30)
        path.unlink()  # deleted: the config in use stays
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app._reloading)
        assert set(engine.workers) == {"evolink"} and app.config.path == path
    store.close()
