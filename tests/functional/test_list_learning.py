"""Freepik: lengths learned from the tasks its list names that nobody here tracks (a
teammate's, another script's), so a cold start (a first run, a new kind) need not wait
for five tracked tasks to end (issue 15: state-only providers "learn from durations per
kind and from the list endpoint where it exists").  The list is Freepik's published
shape, ``{"data": [{"task_id", "status"}]}`` (the seed freepik-hyperflux-list-tasks.md,
its example; the simulator serves it), asked over HTTP on 127.0.0.1 in virtual time."""

from __future__ import annotations

import pytest

STEP = 0.5


def _scenario():
    from tui.sim import build_scenario, sim_task

    tasks = [sim_task("freepik", "tracked", "running", created=-10.0, start=0.0, end=3000.0)]
    # begun after the first list: their lengths can be learned (created -> end, as a tracked task's)
    strangers = {f"other-{i}": (30.0 + 25 * i, 100.0 + 15 * i) for i in range(6)}
    for task_id, (created, length) in strangers.items():
        tasks.append(sim_task("freepik", task_id, "running", created=created, start=created + 2,
                              end=created + length, end_state="succeeded"))
    # named by the first list already: when it began is not known, so nothing is learned from it
    tasks.append(sim_task("freepik", "older", "running", created=-50.0, start=-40.0, end=150.0))
    scenario = build_scenario(*tasks)
    scenario.epoch = 1_800_000_000.0
    return scenario, strangers


async def test_lengths_are_learned_from_untracked_tasks_the_list_names(tmp_path):
    from tui.config import parse_config
    from tui.engine import Engine
    from tui.sim import SimServer
    from tui.store import Store

    scenario, strangers = _scenario()
    with SimServer(scenario, speed=0.0) as sim:
        config = parse_config(f'[providers.freepik]\napi_key = "{sim.key("freepik")}"\n'
                              f'base_url = "{sim.base_url}"\npoll_interval = 2\nrate_limit = "20/s"\n'
                              f'balance_interval = 0\n')
        store = Store(tmp_path / "tasks.db")
        store.add("freepik", ["tracked"])  # no kind: listed under the provider's default kind
        vt = 0.0
        engine = Engine(config, store, clock=lambda: vt, wall=lambda: scenario.epoch + vt)
        try:
            while vt <= 700.0:
                sim.sim.clock.set(vt)
                await engine.poll_due()
                vt += STEP
        finally:
            await engine.stop()
            store.close()
        lists = sorted(r.time for r in sim.requests if r.endpoint == "list")
        by_id = {t.task_id: t for t in scenario.tasks}
    worker = engine.workers["freepik"]
    kind = worker.provider.default_kind
    assert len(lists) >= 10
    # what each list showed of a stranger: born between the list before the first that named it
    # and that one; ended between the last list that saw it live and the first that saw it done
    expected = []
    for task_id, (created, length) in strangers.items():
        t = by_id[task_id]
        first = next(i for i, at in enumerate(lists) if at >= t.created)
        done = next(i for i, at in enumerate(lists) if at >= t.end)
        assert first > 0 and done > first, (task_id, lists)
        learned = (lists[done - 1] + lists[done]) / 2 - (lists[first - 1] + lists[first]) / 2
        gaps = (lists[first] - lists[first - 1]) + (lists[done] - lists[done - 1])
        assert abs(learned - length) <= gaps / 2 + STEP, (task_id, learned, length)  # within the lists' spacing
        expected.append(learned)
    for key in ((kind, ""), ("", "")):  # the list's kind, and where tasks added without one learn
        got = worker.durations[key].values()
        assert sorted(got) == pytest.approx(sorted(expected)), (key, got, expected)
    assert worker.strangers == {}  # each watched to its end, then let go
