"""The thrift bench's yardstick and scenario: the fixed poller it computes is the
engine's own fixed poller (``adaptive = false``) on the same tasks, the best
fixed interval is the longest one at an equal-or-better p95, and the simulator
announces a noisy eta when a scenario gives one.

Against the simulator on 127.0.0.1, in virtual time (no wall-clock comparison).
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import percentile  # noqa: E402
from bench.thrift import STEP, _length, best_fixed, fixed_poller  # noqa: E402
from tui.config import parse_config  # noqa: E402
from tui.engine import Engine  # noqa: E402
from tui.model import TERMINAL  # noqa: E402
from tui.store import Store  # noqa: E402

WALL = 1_800_000_000.0


async def _engine_fixed(sim, store, tasks, provider: str, interval: float) -> tuple[int, dict[str, float]]:
    """The engine with ``adaptive = false``, tasks added when created: (requests, seen at)."""
    text = (f'[providers.{provider}]\napi_key = "{sim.key(provider)}"\nbase_url = "{sim.base_url}"\n'
            f'poll_interval = {interval}\nrate_limit = "20/s"\nconcurrency = 4\nbalance_interval = 0\n\n'
            f'[engine]\nadaptive = false\n')
    vt = 0.0
    engine = Engine(parse_config(text), store, clock=lambda: vt, wall=lambda: WALL + vt)
    added: set[str] = set()
    seen: dict[str, float] = {}
    try:
        while len(seen) < len(tasks) and vt < 2000.0:
            sim.sim.clock.set(vt)
            new = [t.task_id for t in tasks if t.created <= vt and t.task_id not in added]
            if new:
                store.add(provider, new)
                added.update(new)
            await engine.poll_due()
            for t in tasks:
                task = store.get(f"{provider}:{t.task_id}")
                if t.task_id not in seen and task is not None and task.state in TERMINAL:
                    seen[t.task_id] = vt
            vt += STEP
    finally:
        await engine.stop()
    requests = sum(1 for r in sim.requests if r.provider == provider and r.endpoint in ("status", "list"))
    return requests, seen


async def test_the_computed_fixed_poller_is_the_engines_fixed_poller(sim_factory, sim_task, sim_scenario,
                                                                    tmp_path):
    tasks = [sim_task("comfy", f"c{i}", "running", created=c, start=c, end=c + d)
             for i, (c, d) in enumerate([(0.0, 12.0), (3.2, 40.0), (7.7, 33.3), (20.0, 5.5), (21.0, 61.0)])]
    scenario = sim_scenario(*tasks)
    scenario.epoch = WALL
    sim = sim_factory(scenario)
    store = Store(tmp_path / "fixed.db")
    try:
        requests, seen = await _engine_fixed(sim, store, tasks, "comfy", 5.0)
    finally:
        store.close()
    computed, delays = fixed_poller(tasks, 5.0)
    assert requests == computed
    assert sorted(seen[t.task_id] - t.end for t in tasks) == pytest.approx(sorted(delays))


async def test_the_computed_list_poller_asks_no_more_than_the_engines(sim_factory, sim_task, sim_scenario,
                                                                     tmp_path):
    """Freepik's fixed poller is computed as the cheapest one can be (one list every
    I on a grid, new tasks wait for it): the engine's own never asks less."""
    tasks = [sim_task("freepik", f"f{i}", "running", created=c, start=c, end=c + d)
             for i, (c, d) in enumerate([(0.0, 12.0), (3.2, 40.0), (7.7, 33.3), (20.0, 5.5), (21.0, 61.0)])]
    scenario = sim_scenario(*tasks)
    scenario.epoch = WALL
    sim = sim_factory(scenario)
    store = Store(tmp_path / "list.db")
    try:
        requests, seen = await _engine_fixed(sim, store, tasks, "freepik", 5.0)
    finally:
        store.close()
    computed, delays = fixed_poller(tasks, 5.0, listing=True)
    assert computed <= requests
    assert percentile(delays, 95) <= 5.0 + STEP


def test_the_best_fixed_interval_is_the_longest_at_an_equal_or_better_p95(sim_task):
    tasks = [sim_task("comfy", f"c{i}", "running", created=i * 7.3, start=i * 7.3, end=i * 7.3 + 10 + i * 13.1)
             for i in range(40)]
    interval, requests, p95 = best_fixed(tasks, 20.0)
    assert p95 <= 20.0
    assert fixed_poller(tasks, interval)[0] == requests
    longer = percentile(fixed_poller(tasks, interval + STEP)[1], 95)
    assert longer > 20.0  # half a step longer is already worse than the p95 asked for
    assert best_fixed(tasks, 1000.0)[1] < requests  # a looser p95 needs fewer requests


def test_the_noisy_scenario_has_heavy_tails():
    import random

    rng = random.Random(1)
    lengths = sorted(_length(rng) for _ in range(4000))
    median = lengths[len(lengths) // 2]
    assert lengths[0] >= 10.0 and lengths[-1] <= 7200.0
    assert lengths[int(0.99 * len(lengths))] > 10 * median  # far longer than the typical task
    assert sum(lengths) / len(lengths) > 1.5 * median


def test_the_simulator_announces_the_eta_a_scenario_gives(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(
        sim_task("evolink", "task-unified-late", "running", created=-10.0, start=-5.0, end=50.0, eta=90.0),
        sim_task("evolink", "task-unified-true", "running", created=-10.0, start=-5.0, end=50.0),
    ))
    headers = {"Authorization": f"Bearer {sim.key('evolink')}"}
    with httpx.Client(base_url=sim.base_url, headers=headers) as client:
        late, true = (client.get(f"/v1/tasks/task-unified-{i}").json() for i in ("late", "true"))
    assert late["task_info"]["estimated_time"] == 90  # off by half: 60 s long
    assert true["task_info"]["estimated_time"] == 60


async def test_upscayls_budget_goes_where_the_ends_are():
    """Upscayl at its real 100/h, 24 tasks over an hour (the bench's case): the
    adaptive engine sees the typical end sooner than the engine's fixed poller at
    the interval that fits that budget, and its p95 no later, under the same
    budget, never over it."""
    from bench.thrift import _measured, _run, _scenario, fixed_at_budget

    scenario = _scenario(24, seed=11, warm=0, providers=("upscayl",), upscayl={"budget": "100/h"})
    ours = await _run(scenario, rates={"upscayl": "100/h"})
    interval, _, _ = fixed_at_budget(_measured(scenario), 100, 3600)
    fixed = await _run(scenario, rates={"upscayl": "100/h"}, fixed=interval)
    o, f = ours["by"]["upscayl"], fixed["by"]["upscayl"]
    assert ours["over_budget"] == 0 and ours["violations"] == 0 and o["missed"] == 0
    assert o["requests"] <= f["requests"] + 2  # the same budget, spent
    assert o["median"] < 0.8 * f["median"], (o, f)
    assert o["p95"] <= f["p95"], (o, f)  # the slowest ends too (first polls placed, rates measured)


async def test_a_scripts_batch_on_freepiks_list_costs_no_more_than_an_even_list_cadence():
    """Freepik, a script's batch: 40 tasks submitted within 5 s, after a warm-up batch
    whose lengths were learned (bench/thrift.py's batch case, on the seed where
    skipping the chance spacings between learned lengths cost most).  The adds share
    lists (one per step of the kind at most, not one per add), and tasktui sends no
    more requests than the fixed list poller at the same p95 (one list every I, one
    detail per task), counted from the simulator's log."""
    from bench.thrift import _batch, _measured, _run

    scenario = _batch(40, 3)
    ours = await _run(scenario)
    o = ours["by"]["freepik"]
    assert ours["violations"] == 0 and o["missed"] == 0
    first = sorted(t for p, t in ours["lists"] if p == "freepik" and 0.0 <= t <= 6.0)
    assert len(first) <= 2, first  # forty adds over 5 s: two lists, not one per add
    interval, requests, fixed95 = best_fixed(_measured(scenario), o["p95"], listing=True)
    assert o["requests"] <= requests, (o, interval, requests, fixed95)
