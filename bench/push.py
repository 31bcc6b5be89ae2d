"""Push against poll: status requests per task and the end-to-seen delay for the
same simulated batch, polled by the adaptive engine alone, by fixed-interval
polling, and by the adaptive engine with the push receiver (tui/push.py) fed by
the simulator's own webhooks (Freepik, signed) and callbacks (EvoLink), all in
one run; then the push run again with 10 % of the pushes lost.

Deterministic, in virtual time (as bench/thrift.py): the simulator's clock is
frozen and moved in steps, the engine runs on the same virtual clock, and the
pushes due at each step are sent over real HTTP on 127.0.0.1 to the receiver
served in the engine's own event loop (what ``tasktui collect --listen`` runs).
A callback makes the engine poll that task at once; a signed webhook is stored
as the answer and marks the task fed by push (``details["pushed_at"]``); the
engine is told which providers push (``Engine.set_push``), and how it polls
push-fed tasks (the safety net) is the worker's policy.  The providers are
declared ``push = "callback"`` / ``push = "webhook"`` (their tasks created with
the push address: fed by push from first sight, docs/push.md); one more run
without the declaration shows what it saves.

Two batches: the second is added once the first has ended, so the engine has
learned these tasks' lengths (what the safety net's check near the predicted
end uses), as a collector that has run for a while has; its numbers are the
measure, the first batch's are in the notes.  ``--quick``: one batch.

Goals (issue 18): requests per task with push <= 1.2 on EvoLink and <= 0.2 on
Freepik, p95 end-to-seen delay <= 1 s, zero tasks missed with 10 % of pushes lost.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

from .common import Result, percentile

PROVIDERS = ("evolink", "freepik")
STEP = 0.5  # virtual seconds per step
FLOOR = 2.0  # poll_interval
FIXED = 10.0  # the fixed poller's interval
SECRET = "whsec_YmVuY2gtcHVzaC1zZWNyZXQtMDEyMzQ1Njc4OQ=="
TOKEN = "bench" + "Tok3n" * 6
KIND = "text-to-image/hyperflux"


def _scenario(n: int, seed: int = 5, batches: int = 2):
    """``batches`` batches of ``n`` tasks, the next added once the last one ended (at
    ``at``): the first meets an engine that has learned nothing, the next one an engine
    that learned this kind's lengths from the first (as a collector running for a while)."""
    from tui.sim import build_scenario, sim_task

    rng = random.Random(seed)
    tasks, adds, at = [], [], 0.0
    for b in range(batches):
        ids = []
        for i in range(n):
            provider = PROVIDERS[i % len(PROVIDERS)]
            created = at - rng.uniform(1, 5)  # every task exists when it is added (an unknown id is a 404) ...
            start = at + rng.uniform(1, 60)  # ... and starts after (so its pushes come while the receiver listens)
            end = start + rng.choice((30, 60, 120, 300, 600, 900)) * rng.uniform(0.8, 1.2)
            task_id = f"{provider}-{b}-{i:04d}"
            ids.append(f"{provider}:{task_id}")
            tasks.append(sim_task(provider, task_id, "queued", created=created, start=start,
                                  end=end, end_state="succeeded", curve="linear"))
        adds.append((at, ids))
        at = max(t.end for t in tasks) + 30.0
    scenario = build_scenario(*tasks)
    scenario.epoch = 1_800_000_000.0
    return scenario, adds


async def _run(scenario, *, adaptive: bool, interval: float, push: bool, lose: float = 0.0,
               declare: bool = True) -> dict:
    from tui.config import PUSH_OF, parse_config
    from tui.engine import Engine
    from tui.model import TERMINAL
    from tui.push import PushReceiver, start_server
    from tui.sim import SimServer
    from tui.sim.push import PushOptions
    from tui.store import Store

    scenario, adds = scenario
    ends = {f"{t.provider}:{t.task_id}": t.end for t in scenario.tasks}
    horizon = max(ends.values()) + 1200  # the safety net's 10 minutes, twice
    with SimServer(scenario, speed=0.0) as sim, tempfile.TemporaryDirectory() as tmp:
        text = "".join(
            f'[providers.{p}]\napi_key = "{sim.key(p)}"\nbase_url = "{sim.base_url}"\n'
            f'poll_interval = {interval:.2f}\nrate_limit = "20/s"\nconcurrency = 8\nbalance_interval = 0.0\n'
            + (f'webhook_secret = "{SECRET}"\n' if p == "freepik" else "")
            + (f'push = "{PUSH_OF[p]}"\n' if push and declare else "") + "\n" for p in PROVIDERS)
        text += f"[engine]\nadaptive = {'true' if adaptive else 'false'}\n"
        config = parse_config(text)
        store = Store(Path(tmp) / "t.db")
        waiting = list(adds)

        def add_due(vt: float) -> None:
            while waiting and waiting[0][0] <= vt:
                _, keys = waiting.pop(0)
                for p in PROVIDERS:
                    store.add(p, [k.split(":", 1)[1] for k in keys if k.startswith(p + ":")],
                              kind=KIND if p == "freepik" else None)

        add_due(0.0)
        vt = 0.0
        engine = Engine(config, store, clock=lambda: vt, wall=lambda: scenario.epoch + vt)
        server = serving = pusher = None
        if push:
            from tui.providers import make_provider

            providers = {p: make_provider(p, sim.key(p), sim.base_url) for p in PROVIDERS}
            receiver = PushReceiver(store, providers, secrets={"freepik": [SECRET]}, token=TOKEN,
                                    on_hint=lambda key: engine.refresh_now([key]), on_push=engine.note_push,
                                    rate=1e6, burst=1e6)
            server, serving, port = await start_server(receiver.app, "127.0.0.1", 0)
            engine.set_push(receiver.routes)
            base = f"http://127.0.0.1:{port}"
            pusher = sim.pusher(freepik_url=f"{base}/hooks/freepik", freepik_secret=SECRET,
                                evolink_url=f"{base}/hooks/evolink/{TOKEN}", since=-1.0,
                                options=PushOptions(lose=lose), seed=11)
        seen: dict[str, float] = {}
        pushes = 0
        try:
            while vt <= horizon and len(seen) < len(ends):
                sim.sim.clock.set(vt)
                add_due(vt)
                if pusher is not None:
                    pushes += len(await asyncio.to_thread(pusher.pump))
                await engine.poll_due()
                for key in ends.keys() - seen.keys():
                    task = store.get(key)
                    if task is not None and task.state in TERMINAL:
                        seen[key] = vt
                vt += STEP
        finally:
            if pusher is not None:
                pusher.close()
            if server is not None:
                server.should_exit = True
                await serving
            await engine.stop()
            store.close()
        asked = [r for r in sim.requests if r.endpoint != "balance"]
        lost = len(pusher.lost()) if pusher is not None else 0
    delays = {k: seen[k] - ends[k] for k in seen}
    out: dict = {"missed": len(ends) - len(seen), "violations": len(sim.violations), "pushes": pushes, "lost": lost}
    for b, (at, keys) in enumerate(adds):  # each batch's requests: those sent after it was added
        until = adds[b + 1][0] if b + 1 < len(adds) else float("inf")
        out[b] = part = {}
        for p in PROVIDERS:
            mine = [k for k in keys if k.startswith(p + ":")]
            sent = sum(1 for r in asked if r.provider == p and at <= r.time < until)
            part[p] = {"per_task": sent / max(1, len(mine)),
                       "p95": percentile([delays[k] for k in mine if k in delays], 95)}
        part["p95"] = percentile([delays[k] for k in keys if k in delays], 95)
    return out


def run(quick: bool = False) -> list[Result]:
    n = 20 if quick else 80
    scenario = _scenario(n, batches=1 if quick else 2)  # --quick: a smoke run, one batch
    adaptive = asyncio.run(_run(scenario, adaptive=True, interval=FLOOR, push=False))
    fixed = asyncio.run(_run(scenario, adaptive=False, interval=FIXED, push=False))
    pushed = asyncio.run(_run(scenario, adaptive=True, interval=FLOOR, push=True))
    undeclared = None if quick else asyncio.run(_run(scenario, adaptive=True, interval=FLOOR, push=True,
                                                     declare=False))
    lossy = asyncio.run(_run(scenario, adaptive=True, interval=FLOOR, push=True, lose=0.1))
    goals = {"evolink": 1.2, "freepik": 0.2}
    warm, cold = (0 if quick else 1), 0  # the second batch (lengths learned from the first) is the measure; the first in notes
    rows = []
    for p in PROVIDERS:
        ours = pushed[warm][p]["per_task"]
        rows.append(Result(
            "push", f"{n // 2} {p} tasks, requests per task", ours, "req", adaptive[warm][p]["per_task"],
            "adaptive polling, no push", f"<= {goals[p]}", ours <= goals[p],
            notes=f"fixed every {FIXED:g} s: {fixed[warm][p]['per_task']:.1f} req/task, "
                  f"p95 {fixed[warm][p]['p95']:.1f} s; adaptive: p95 {adaptive[warm][p]['p95']:.1f} s; with push: "
                  f"p95 {pushed[warm][p]['p95']:.1f} s; first batch (nothing learned yet): push "
                  f"{pushed[cold][p]['per_task']:.2f}, adaptive {adaptive[cold][p]['per_task']:.2f} req/task; "
                  f"push without `push = \"{'callback' if p == 'evolink' else 'webhook'}\"` (first poll kept): "
                  + (f"{undeclared[warm][p]['per_task']:.2f} req/task" if undeclared else "not run (--quick)")))
    rows.append(Result(
        "push", f"{n} tasks, p95 end-to-seen delay", pushed[warm]["p95"], "s", adaptive[warm]["p95"],
        "adaptive polling, no push", "<= 1 s", pushed[warm]["p95"] <= 1.0 and pushed[cold]["p95"] <= 1.0,
        notes=f"{pushed['pushes']} pushes (all batches); first batch p95 {pushed[cold]['p95']:.2f} s; "
              f"fixed p95 {fixed[warm]['p95']:.1f} s; violations {pushed['violations']}"))
    rows.append(Result(
        "push", f"{n if quick else 2 * n} tasks, 10 % of pushes lost: tasks missed", lossy["missed"], "tasks", pushed["missed"],
        "push, none lost", "0 missed", lossy["missed"] == 0 and lossy["violations"] == 0,
        notes=f"{lossy['lost']} pushes lost; requests per task evolink {lossy[warm]['evolink']['per_task']:.2f}, "
              f"freepik {lossy[warm]['freepik']['per_task']:.2f}; p95 {lossy[warm]['p95']:.1f} s"))
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
