"""Per-task freshness: the engine writes when the provider last answered about a
task (``polled_at``) and when its plan asks next (``next_poll_at``; None once the
task ended) through the store, in the round that polled the task.

Against the simulator on 127.0.0.1, in virtual time: the simulator's clock is
frozen and moved by the test, the engine runs on the same clock, so "within the
round" is exact (the round's wall time is WALL + vt) and nothing waits on the
machine.
"""

from __future__ import annotations

import pytest

from tui.config import parse_config
from tui.engine import Engine
from tui.store import Store

WALL = 1_800_000_000.0  # the engine's wall clock at virtual time 0
FLOOR = 2.0


class _Clock:
    def __init__(self) -> None:
        self.vt = 0.0


def _config(sim, *providers: str) -> str:
    return "".join(f'[providers.{p}]\napi_key = "{sim.key(p)}"\nbase_url = "{sim.base_url}"\n'
                   f'poll_interval = {FLOOR}\nrate_limit = "20/s"\nconcurrency = 4\nbalance_interval = 0\n\n'
                   for p in providers)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "fresh.db")
    yield s
    s.close()


async def _round(engine: Engine, sim, clock: _Clock, vt: float) -> None:
    clock.vt = vt
    sim.sim.clock.set(vt)
    await engine.poll_due()


def _reopened(store: Store, tmp_path, key: str):
    """The task as another process reads it from the file (not this store's memory)."""
    other = Store(tmp_path / "fresh.db")
    try:
        return other.get(key)
    finally:
        other.close()


async def test_a_poll_writes_when_it_answered_and_when_it_asks_next(sim_factory, sim_task, sim_scenario,
                                                                   store, tmp_path):
    tasks = [sim_task("evolink", "task-unified-run", "running", created=-40.0, start=-30.0, end=300.0),
             sim_task("comfy", "c-run", "running", created=-5.0, start=-5.0, end=300.0),
             sim_task("freepik", "f-run", "running", created=-5.0, start=-5.0, end=300.0),
             sim_task("evolink", "task-unified-done", "succeeded", at=0.0),
             sim_task("comfy", "c-done", "succeeded", at=0.0),
             sim_task("comfy", "c-soon", "running", created=-5.0, start=-5.0, end=8.0)]
    scenario = sim_scenario(*tasks)
    scenario.epoch = WALL
    sim = sim_factory(scenario)
    for p in ("evolink", "comfy", "freepik"):
        store.add(p, [t.task_id for t in tasks if t.provider == p])
    clock = _Clock()
    engine = Engine(parse_config(_config(sim, "evolink", "comfy", "freepik")), store,
                    clock=lambda: clock.vt, wall=lambda: WALL + clock.vt)
    try:
        assert store.get("comfy:c-run").polled_at is None  # never asked yet
        await _round(engine, sim, clock, 0.0)
        await _round(engine, sim, clock, 1.0)  # the first round probes one task: the rest follow
        for key in ("evolink:task-unified-run", "comfy:c-run", "freepik:f-run"):
            task = _reopened(store, tmp_path, key)
            asked = [r.time for r in sim.requests if r.provider == key.split(":")[0]]
            assert task.polled_at in (WALL + 0.0, WALL + 1.0), key  # the round that asked it
            assert task.polled_at - WALL in asked
            assert task.next_poll_at is not None and task.next_poll_at > task.polled_at, key
            assert task.next_poll_at >= task.polled_at + FLOOR  # never before the floor
        for key in ("evolink:task-unified-done", "comfy:c-done"):
            task = _reopened(store, tmp_path, key)
            assert task.terminal and task.polled_at is not None
            assert task.next_poll_at is None, key  # ended: nothing scheduled

        # a round that does not ask a task leaves its freshness alone
        before = {k: (t.polled_at, t.next_poll_at) for k in ("comfy:c-run",)
                  for t in [store.get(k)]}
        asked = len(sim.requests)
        await _round(engine, sim, clock, 1.5)
        if len(sim.requests) == asked:
            assert (store.get("comfy:c-run").polled_at, store.get("comfy:c-run").next_poll_at) == before["comfy:c-run"]

        # a task seen running, then ended: nothing scheduled any more
        vt = 1.5
        while not store.get("comfy:c-soon").terminal:
            assert store.get("comfy:c-soon").next_poll_at is not None
            vt = max(vt + 0.5, store.get("comfy:c-soon").next_poll_at - WALL)
            assert vt < 120.0
            await _round(engine, sim, clock, vt)
        ended = _reopened(store, tmp_path, "comfy:c-soon")
        assert ended.polled_at == WALL + vt and ended.next_poll_at is None

        # the next poll comes when next_poll_at said, and moves both
        due = max(vt + 0.5, store.get("comfy:c-run").next_poll_at - WALL)
        await _round(engine, sim, clock, due)
        task = store.get("comfy:c-run")
        assert task.polled_at == WALL + due
        assert task.next_poll_at > WALL + due
    finally:
        await engine.stop()


async def test_a_failed_poll_moves_next_poll_at_and_an_http_error_counts_as_an_answer(
        sim_factory, sim_task, sim_scenario, sim_fault, store):
    tasks = [sim_task("comfy", "c1", "running", created=-5.0, start=-5.0, end=600.0),
             sim_task("comfy", "c2", "running", created=-5.0, start=-5.0, end=600.0)]
    faults = [sim_fault("server_error", "comfy", task_id="c2", start=5.0)]
    scenario = sim_scenario(*tasks, faults=faults)
    scenario.epoch = WALL
    sim = sim_factory(scenario)
    store.add("comfy", ["c1", "c2"])
    clock = _Clock()
    engine = Engine(parse_config(_config(sim, "comfy")), store, clock=lambda: clock.vt,
                    wall=lambda: WALL + clock.vt)
    try:
        await _round(engine, sim, clock, 0.0)
        await _round(engine, sim, clock, 1.0)
        first = store.get("comfy:c2")
        assert first.polled_at is not None and first.failed_polls == 0
        vt = 1.0
        while store.get("comfy:c2").failed_polls == 0:  # until c2's next poll, which fails
            vt = max(vt + 0.5, store.get("comfy:c2").next_poll_at - WALL)
            assert vt < 120.0
            await _round(engine, sim, clock, vt)
        task = store.get("comfy:c2")
        assert task.failed_polls == 1 and task.last_error
        assert task.polled_at == WALL + vt  # the 500 was an answer about it, in this round
        assert task.next_poll_at is not None and task.next_poll_at > WALL + vt  # the backoff's retry
    finally:
        await engine.stop()
