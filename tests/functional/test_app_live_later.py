"""The dashboard over a store whose live tasks are read after its first frame (issue 15):
the first frame and its rows come from indexed queries while the read is held (on an
event the test sets, never a sleep); the engine starts polling once the live tasks are
in, and polls every one of them; a task seen running at the first frame that ends before
or after they came in is still announced.  Both backends: a SQLite file in tmp_path, a
real PostgreSQL database."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.pg import PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from test_app_fixtures import make_config, screen_text, wait_for
from tui.app import make_app
from tui.config import load_config
from tui.engine import Engine
from tui.model import Task
from tui.stores import open_store


@pytest.fixture(params=["sqlite", "pg"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return tmp_path / "tasks.db"
    return request.getfixturevalue("pg_url")


def hold(store: Any) -> threading.Event:
    """Hold the store's reading thread before its snapshot until the event is set."""
    go = threading.Event()
    read = store._read_live_tx

    def held(conn: Any) -> Any:
        assert go.wait(60), "the test never let the read go"
        return read(conn)

    store._read_live_tx = held
    return go


async def test_first_frame_and_rows_come_before_the_live_tasks(target: Any) -> None:
    with open_store(target) as writer:
        writer.add("evolink", [f"run-{i}" for i in range(4)] + [f"old-{i}" for i in range(3)])
        writer.apply([Task("evolink", f"run-{i}", state="running", progress=20.0) for i in range(4)]
                     + [Task("evolink", f"old-{i}", state="succeeded") for i in range(3)])
        store = open_store(target, scope="live")  # as run_dashboard opens it
        try:
            go = hold(store)
            app = make_app(make_config(), store, None, offline=True)
            async with app.run_test(size=(140, 30)) as pilot:
                await wait_for(pilot, lambda: "run-3" in screen_text(app) and "old-2" in screen_text(app))
                assert store.live_pending  # the rows came from the window's queries, not memory
                assert app.task_list.count == 7 and store.tasks() == []
                # a task running at the first frame ends before the live tasks are in: news
                writer.apply([Task("evolink", "run-0", state="succeeded")])
                await wait_for(pilot, lambda: "evolink:run-0" in [k for k, _ in app._news])
                assert store.live_pending
                frozen = gc.get_freeze_count()
                go.set()
                await wait_for(pilot, lambda: not store.live_pending)
                assert sorted(t.task_id for t in store.tasks()) == ["run-1", "run-2", "run-3"]
                # kept out of the garbage collector's walks, as what on_mount found
                await wait_for(pilot, lambda: gc.get_freeze_count() >= frozen + 3)
                # and one that ends after: news too (the list learned its state when they came)
                writer.apply([Task("evolink", "run-2", state="failed", error="boom")])
                await wait_for(pilot, lambda: "evolink:run-2" in [k for k, _ in app._news])
                assert "evolink:run-1" not in [k for k, _ in app._news]
        finally:
            store.close()


async def test_the_engine_polls_every_live_task_once_they_are_in(target: Any, tmp_path: Path, sim_factory,
                                                                  sim_task, sim_scenario) -> None:
    live_ids = [f"live-{i}" for i in range(5)]
    sim = sim_factory(sim_scenario(*(sim_task("evolink", i, "running") for i in live_ids),
                                   sim_task("evolink", "ended-0", "succeeded")))
    path = tmp_path / "config.toml"
    path.write_text(sim.config_toml(("evolink",)), encoding="utf-8")
    config = load_config(path)
    with open_store(target) as writer:
        writer.add("evolink", [*live_ids, "ended-0"])
        writer.apply([Task("evolink", "ended-0", state="succeeded")])
    store = open_store(target, scope="live")
    try:
        go = hold(store)
        engine = Engine(config, store)  # built before the app, as run_dashboard does
        app = make_app(config, store, engine, config_path=path)
        async with app.run_test(size=(140, 30)) as pilot:
            await wait_for(pilot, lambda: "live-4" in screen_text(app))
            assert store.live_pending
            assert engine._live_wait is not None and not engine._live_wait.done()
            assert all(w.runner is None for w in engine.workers.values())  # no polling yet
            assert not [r for r in sim.requests if r.endpoint == "status"]
            go.set()

            def polled() -> set[str]:
                return {r.task_id for r in sim.requests if r.endpoint == "status"}

            await wait_for(pilot, lambda: set(live_ids) <= polled(), timeout=60)
            assert "ended-0" not in polled()
            assert all(w.runner is not None for w in engine.workers.values())
        assert all(w.runner is None for w in engine.workers.values())
    finally:
        store.close()


async def test_an_engine_stopped_before_the_live_tasks_came_never_polls(tmp_path: Path, sim_factory, sim_task,
                                                                       sim_scenario) -> None:
    sim = sim_factory(sim_scenario(sim_task("evolink", "live-0", "running")))
    path = tmp_path / "config.toml"
    path.write_text(sim.config_toml(("evolink",)), encoding="utf-8")
    with open_store(tmp_path / "tasks.db") as writer:
        writer.add("evolink", ["live-0"])
    store = open_store(tmp_path / "tasks.db", scope="live")
    try:
        store.defer_live()
        engine = Engine(load_config(path), store)
        await engine.start()
        waiting = engine._live_wait
        assert waiting is not None and not waiting.done()
        await engine.stop()
        assert waiting.cancelled() and engine._live_wait is None
        told = asyncio.Event()
        loop = asyncio.get_running_loop()
        store.load_live(lambda: loop.call_soon_threadsafe(told.set))
        await asyncio.wait_for(told.wait(), 30)
        assert store.finish_live()
        assert all(w.runner is None for w in engine.workers.values()) and not sim.requests
    finally:
        store.close()


def test_a_headless_round_reads_the_live_tasks_first(tmp_path: Path, sim_factory, sim_task, sim_scenario) -> None:
    """``poll_once`` (tasktui poll) over a store opened with scope "live": no thread, the
    live tasks are read at once and each is asked."""
    sim = sim_factory(sim_scenario(*(sim_task("evolink", f"live-{i}", "running") for i in range(3))))
    path = tmp_path / "config.toml"
    path.write_text(sim.config_toml(("evolink",)), encoding="utf-8")
    with open_store(tmp_path / "tasks.db") as writer:
        writer.add("evolink", [f"live-{i}" for i in range(3)])
    store = open_store(tmp_path / "tasks.db", scope="live")
    try:
        engine = Engine(load_config(path), store)
        assert store.live_pending

        async def once() -> None:
            try:
                await engine.poll_once()
            finally:
                await engine.stop()

        asyncio.run(once())
        assert not store.live_pending
        assert {r.task_id for r in sim.requests if r.endpoint == "status"} == {f"live-{i}" for i in range(3)}
    finally:
        store.close()
