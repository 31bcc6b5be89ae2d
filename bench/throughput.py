"""Refresh throughput and event-loop lag: N running EvoLink tasks against the
simulator on 127.0.0.1 (in its own process).

6. Throughput: tasks refreshed per second by one engine round, against bare
   httpx GETs of the same URLs at the same concurrency.  Goal: >= 80 %.
7. Responsiveness: event-loop lag (how late a 5 ms ticker wakes) while the
   round runs.  Baseline: the lag during the bare httpx run.  Goal: p99 < 50 ms.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from .common import Result, percentile
from .simproc import SimProcess

CONCURRENCY = 16


class LagProbe:
    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.lags: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, loop.time() - t0 - self.period))


async def _measure(work) -> tuple[float, list[float]]:
    probe = LagProbe()
    ticker = asyncio.create_task(probe.run())
    t0 = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - t0
    ticker.cancel()
    return elapsed, probe.lags


async def _bare(base_url: str, key: str, ids: list[str]) -> tuple[float, list[float]]:
    import httpx

    sem = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async def one(task_id: str) -> None:
            async with sem:
                r = await client.get(f"{base_url}/v1/tasks/{task_id}")
                r.json()

        async def work() -> None:
            await asyncio.gather(*(one(i) for i in ids))

        return await _measure(work)


async def _engine(base_url: str, key: str, ids: list[str]) -> tuple[float, list[float], int]:
    from tui.config import parse_config
    from tui.engine import Engine
    from tui.store import Store

    config = parse_config(
        f'[providers.evolink]\napi_key = "{key}"\nbase_url = "{base_url}"\n'
        f'poll_interval = 0.1\nrate_limit = "100000/s"\nconcurrency = {CONCURRENCY}\ntimeout = 30\n')
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "t.db")
        store.add("evolink", ids)
        engine = Engine(config, store)
        try:
            elapsed, lags = await _measure(engine.poll_once)
            refreshed = sum(1 for t in store.tasks() if t.state == "running")
        finally:
            await engine.stop()
            store.close()
    return elapsed, lags, refreshed


def run(quick: bool = False) -> list[Result]:
    from tui.sim import build_scenario, sim_task

    n = 1_000 if quick else 10_000
    ids = [f"task-unified-{i:06d}" for i in range(n)]
    tasks = [sim_task("evolink", i, "running", end=1e9) for i in ids]
    scenario = build_scenario(*tasks)
    key = scenario.providers["evolink"].key
    with SimProcess(scenario) as sim:
        asyncio.run(_bare(sim.base_url, key, ids[: n // 10]))  # warm up the server
        b_elapsed, b_lags = asyncio.run(_bare(sim.base_url, key, ids))
        e_elapsed, e_lags, refreshed = asyncio.run(_engine(sim.base_url, key, ids))
    ours, base = n / e_elapsed, n / b_elapsed
    share = ours / base
    p99, bp99 = percentile(e_lags, 99), percentile(b_lags, 99)
    return [
        Result("throughput", f"{n:,} running EvoLink tasks, c={CONCURRENCY}", ours, "tasks/s", base,
               "bare httpx", ">= 80 % of bare httpx", share >= 0.8 and refreshed == n,
               notes=f"{share:.0%} of bare httpx; {refreshed:,}/{n:,} refreshed", higher_is_better=True),
        Result("loop lag", f"p99 while {n:,} tasks refresh", p99, "s", bp99, "lag under bare httpx",
               "p99 < 50 ms", p99 < 0.050,
               notes=f"max {max(e_lags, default=0) * 1e3:.0f} ms over {len(e_lags)} ticks"),
    ]
