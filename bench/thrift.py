"""Polling thrift: status requests per task, and the delay between a task's
real end and the store showing it, for tasktui's adaptive schedule against
fixed-interval polling.

Deterministic, in virtual time: the simulator's clock is frozen and moved in
steps, and the engine runs on the same virtual clock, so an hour of polling
takes seconds and no number depends on how busy the machine is.

Tasks have known durations (30 s to 15 min) and start times.  EvoLink tasks
report progress and ``estimated_time``, Upscayl tasks report progress, Comfy
tasks report nothing but their state.  Both pollers run the same engine with
the same request budget; the baseline has ``adaptive = false`` and, per
provider, the fixed interval whose p95 delay matches tasktui's for that
provider's tasks, so the request counts compare at equal delay.

Goal: at least 5x fewer requests for an equal or better p95 delay; zero
requests over a provider's budget or inside a Retry-After window.

The notes give each provider's ratio and median delays too: the overall ratio
is dominated by the provider whose matched fixed interval is shortest, and a
provider's p95 can be set by the tasks that had already ended when polling
began (both pollers see those at their first request; "ended before" counts
them).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

from .common import Result, median, percentile

PROVIDERS = ("evolink", "upscayl", "comfy")
STEP = 0.5  # virtual seconds per step
FLOOR = 2.0  # poll_interval, the same for both


def _scenario(n: int, seed: int = 3):
    from tui.sim import build_scenario, sim_task

    rng = random.Random(seed)
    tasks = []
    for i in range(n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        created = -rng.uniform(0, 60)  # every task exists when polling starts
        start = created + rng.uniform(0, 20)
        end = start + rng.choice((30, 60, 120, 300, 600, 900)) * rng.uniform(0.8, 1.2)
        tasks.append(sim_task(provider, f"{provider}-{i:04d}", "running", created=created, start=start,
                              end=end, end_state="succeeded", curve="linear"))
    scenario = build_scenario(*tasks)
    scenario.epoch = 1_800_000_000.0
    return scenario


async def _run(scenario, adaptive: bool, intervals: dict[str, float], budget: str) -> dict:
    from tui.config import parse_config
    from tui.engine import Engine
    from tui.model import TERMINAL
    from tui.sim import SimServer
    from tui.store import Store

    ends = {f"{t.provider}:{t.task_id}": t.end for t in scenario.tasks}
    horizon = max(ends.values()) + 600
    with SimServer(scenario, speed=0.0) as sim, tempfile.TemporaryDirectory() as tmp:
        text = "".join(
            f'[providers.{p}]\napi_key = "{sim.key(p)}"\nbase_url = "{sim.base_url}"\n'
            f'poll_interval = {intervals[p]:.2f}\nrate_limit = "{budget}"\nconcurrency = 8\n\n' for p in PROVIDERS)
        text += f"[engine]\nadaptive = {'true' if adaptive else 'false'}\n"
        store = Store(Path(tmp) / "t.db")
        for p in PROVIDERS:
            store.add(p, [t.task_id for t in scenario.tasks if t.provider == p])
        vt = 0.0
        engine = Engine(parse_config(text), store, clock=lambda: vt, wall=lambda: scenario.epoch + vt)
        seen: dict[str, float] = {}
        try:
            while vt <= horizon and len(seen) < len(ends):
                sim.sim.clock.set(vt)
                await engine.poll_due()
                for key in ends.keys() - seen.keys():
                    task = store.get(key)
                    if task is not None and task.state in TERMINAL:
                        seen[key] = vt
                vt += STEP
        finally:
            await engine.stop()
            store.close()
        status = [r for r in sim.requests if r.endpoint != "balance"]  # status and list calls
        violations = len(sim.violations)
    delays = {k: seen[k] - ends[k] for k in seen}
    by = {p: [d for k, d in delays.items() if k.startswith(p + ":")] for p in PROVIDERS}
    per = {p: sum(1 for r in status if r.provider == p) for p in PROVIDERS}
    return {
        "requests": len(status), "per_task": len(status) / len(ends), "p95": percentile(list(delays.values()), 95),
        "missed": len(ends) - len(seen), "violations": violations,
        "by": {p: (per[p] / max(1, len(by[p])), percentile(by[p], 95)) for p in PROVIDERS},
        "requests_by": per, "median_by": {p: median(by[p]) for p in PROVIDERS},
        "ended_before": {p: sum(1 for k, end in ends.items() if k.startswith(p + ":") and end <= 0)
                         for p in PROVIDERS},
    }


def run(quick: bool = False) -> list[Result]:
    n = 30 if quick else 150
    scenario = _scenario(n)
    budget = "20/s"
    ours = asyncio.run(_run(scenario, adaptive=True, intervals=dict.fromkeys(PROVIDERS, FLOOR), budget=budget))
    # Fixed polling sees 95 % of ends within 0.95 I: per provider, the interval
    # that matches tasktui's p95 delay for that provider's tasks.
    fixed = {p: max(FLOOR, ours["by"][p][1] / 0.95) for p in PROVIDERS}
    base = asyncio.run(_run(scenario, adaptive=False, intervals=fixed, budget=budget))
    fewer = base["requests"] / max(1, ours["requests"])
    # the goal: 5x fewer requests for an equal or better p95 (ours no later than
    # the baseline's, within a step of the virtual clock), with no violation
    ok = fewer >= 5 and ours["p95"] <= base["p95"] + STEP and ours["violations"] == 0 and ours["missed"] == 0
    detail = "; ".join(
        f"{p}: {ours['by'][p][0]:.1f} req/task, p95 {ours['by'][p][1]:.1f} s, median {ours['median_by'][p]:.1f} s "
        f"(fixed every {fixed[p]:.1f} s: {base['by'][p][0]:.1f} req/task, p95 {base['by'][p][1]:.1f} s, "
        f"median {base['median_by'][p]:.1f} s: "
        f"{base['requests_by'][p] / max(1, ours['requests_by'][p]):.1f}x fewer; "
        f"ended before: {ours['ended_before'][p]})"
        for p in PROVIDERS)
    return [
        Result("polling thrift", f"{n} tasks, requests per task", ours["per_task"], "req", base["per_task"],
               "fixed, matched p95", ">= 5x fewer", ok,
               notes=f"{fewer:.1f}x fewer requests; {detail}"),
        Result("polling thrift", f"{n} tasks, p95 end-to-seen delay", ours["p95"], "s", base["p95"],
               "fixed, matched p95", "equal or better than fixed (within a step)",
               ours["p95"] <= base["p95"] + STEP,
               notes=f"violations {ours['violations']}, tasks never seen ended {ours['missed']}"),
    ]
