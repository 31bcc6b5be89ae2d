"""A provider whose tasks are created with a push address (issue 18,
``[providers.evolink] push = "callback"`` / ``[providers.freepik] push = "webhook"``):
while this process receives its pushes, a new task is fed by push from first sight,
not polled until its push comes or the safety net's check near its predicted end.

Over real HTTP on 127.0.0.1: the simulator serves the provider's API and sends its
callbacks / signed webhooks (tui/sim/push.py) to the receiver (tui/push.py) served
in the test's own event loop; engine and simulator share one virtual clock moved one
second a step.  What was polled is the simulator's request log.  The callback body
the simulator sends is EvoLink's task-detail object (providers.md section 5, the
seeds' ``GET /v1/tasks/{id}`` answer), the webhook the Freepik task-detail body
without ``data`` (docs.freepik.com/webhooks).
"""

from __future__ import annotations

import asyncio

from tui.config import parse_config
from tui.engine import Engine
from tui.model import NOT_FOUND, SUCCEEDED
from tui.push import PushReceiver, start_server
from tui.providers import make_provider
from tui.sim import build_scenario, sim_task
from tui.sim.push import PushOptions
from tui.store import Store

WALL = 1_800_000_000.0
SECRET = "whsec_dGVzdC1wdXNoLWRlY2xhcmVkLXNlY3JldC0wMTIzNDU="
TOKEN = "declared" + "T0k3n" * 6
NET = 60.0  # [listen] safety_net, short so a test stays short


class Run:
    def __init__(self, sim, tmp_path, *, declare: bool, learned: list[float] | None = None,
                 ids: dict[str, list[str]] | None = None) -> None:
        self.sim = sim
        self.store = Store(tmp_path / "tasks.db")
        for provider, task_ids in (ids or {}).items():
            self.store.add(provider, task_ids, kind="text-to-image/hyperflux" if provider == "freepik" else None)
        if learned:  # lengths an earlier run learned (what the engine keeps in the store)
            self.store.save_counters("evolink", {"durations": {"image\tgpt-image-1": learned}, "saved_at": WALL})
        self.vt = 0.0
        text = "".join(
            f'[providers.{p}]\napi_key = "{sim.key(p)}"\nbase_url = "{sim.base_url}"\npoll_interval = 1.0\n'
            f'rate_limit = "600/s"\nbalance_interval = 0\n'
            + (f'webhook_secret = "{SECRET}"\n' if p == "freepik" else "")
            + (f'push = "{"callback" if p == "evolink" else "webhook"}"\n' if declare else "") + "\n"
            for p in ("evolink", "freepik"))
        text += f"[listen]\nsafety_net = {NET}\n"
        self.engine = Engine(parse_config(text), self.store, clock=lambda: self.vt, wall=lambda: WALL + self.vt)

    async def __aenter__(self) -> "Run":
        providers = {p: make_provider(p, self.sim.key(p), self.sim.base_url) for p in ("evolink", "freepik")}
        receiver = PushReceiver(self.store, providers, secrets={"freepik": [SECRET]}, token=TOKEN,
                                on_hint=lambda key: self.engine.refresh_now([key]), on_push=self.engine.note_push,
                                rate=1e6, burst=1e6, clock=lambda: WALL + self.vt)
        self.server, self.serving, port = await start_server(receiver.app, "127.0.0.1", 0)
        self.engine.set_push(receiver.routes)
        base = f"http://127.0.0.1:{port}"
        self.pusher = self.sim.pusher(freepik_url=f"{base}/hooks/freepik", freepik_secret=SECRET,
                                      evolink_url=f"{base}/hooks/evolink/{TOKEN}", since=-1.0,
                                      options=self.options, clock=lambda: WALL + self.vt, seed=3)
        return self

    options = PushOptions()

    async def __aexit__(self, *exc) -> None:
        self.pusher.close()
        self.server.should_exit = True
        await self.serving
        await self.engine.stop()
        self.store.close()

    async def step_to(self, until: float) -> None:
        while self.vt <= until:
            self.sim.sim.clock.set(self.vt)
            await asyncio.to_thread(self.pusher.pump)
            await self.engine.poll_due()
            self.vt += 1.0

    def polls(self, task_id: str) -> list[float]:
        return [r.time for r in self.sim.requests if r.task_id == task_id and r.endpoint != "balance"]

    def lists(self, provider: str) -> list[float]:
        return [r.time for r in self.sim.requests if r.provider == provider and r.task_id is None
                and r.endpoint != "balance"]


def _scenario(*tasks):
    scenario = build_scenario(*tasks)
    scenario.epoch = WALL
    return scenario


async def test_a_declared_providers_new_task_is_polled_only_at_its_callback(sim_factory, tmp_path):
    sim = sim_factory(_scenario(sim_task("evolink", "e1", "queued", created=-2.0, start=5.0, end=40.0,
                                         end_state="succeeded")))
    async with Run(sim, tmp_path, declare=True, ids={"evolink": ["e1"]}) as run:
        await run.step_to(39.0)
        assert run.polls("e1") == [] and run.lists("evolink") == []  # no first poll, nothing before the end
        task = run.store.get("evolink:e1")
        assert task.next_poll_at is not None and task.next_poll_at >= WALL + NET - 1  # said, not silent
        await run.step_to(42.0)
        assert [t for t in run.polls("e1")] == [40.0]  # the callback's one poll
        assert run.store.get("evolink:e1").state == SUCCEEDED


async def test_a_lost_callback_is_caught_by_the_safety_net_near_the_predicted_end(sim_factory, tmp_path):
    sim = sim_factory(_scenario(sim_task("evolink", "e1", "queued", created=-2.0, start=2.0, end=25.0,
                                         end_state="succeeded")))
    Run.options = PushOptions(lose=1.0)  # every callback lost
    try:
        async with Run(sim, tmp_path, declare=True, learned=[20.0, 25.0, 28.0, 30.0, 30.0],
                       ids={"evolink": ["e1"]}) as run:
            await run.step_to(45.0)
            assert len(run.pusher.lost()) >= 1
            polls = run.polls("e1")
            assert polls and 25.0 <= polls[0] <= 32.0  # at the predicted end (30 s learned), not at the net's 60 s
            assert run.store.get("evolink:e1").state == SUCCEEDED
    finally:
        Run.options = PushOptions()


async def test_a_wrong_id_is_reported_at_the_predicted_end_with_its_cause(sim_factory, tmp_path):
    sim = sim_factory(_scenario(sim_task("evolink", "e1", "queued", created=-2.0, start=2.0, end=20.0,
                                         end_state="succeeded")))
    async with Run(sim, tmp_path, declare=True, learned=[20.0, 22.0, 25.0, 28.0, 30.0],
                   ids={"evolink": ["e1", "typo-id"]}) as run:
        await run.step_to(40.0)
        polls = run.polls("typo-id")
        assert polls and 25.0 <= polls[0] <= 31.0 and len(polls) == 1
        task = run.store.get("evolink:typo-id")
        assert task.state == NOT_FOUND
        assert "fed by push" in task.error and "is the id right?" in task.error


async def test_freepik_webhooks_are_the_status_no_poll_at_all(sim_factory, tmp_path):
    sim = sim_factory(_scenario(sim_task("freepik", "f1", "queued", created=-2.0, start=3.0, end=30.0,
                                         end_state="succeeded")))
    async with Run(sim, tmp_path, declare=True, ids={"freepik": ["f1"]}) as run:
        await run.step_to(35.0)
        assert run.store.get("freepik:f1").state == SUCCEEDED
        assert run.polls("f1") == [] and run.lists("freepik") == []


async def test_without_the_declaration_the_first_poll_is_kept(sim_factory, tmp_path):
    sim = sim_factory(_scenario(sim_task("evolink", "e1", "queued", created=-2.0, start=5.0, end=40.0,
                                         end_state="succeeded")))
    async with Run(sim, tmp_path, declare=False, ids={"evolink": ["e1"]}) as run:
        await run.step_to(2.0)
        assert run.polls("e1")[:1] == [0.0] or run.lists("evolink")[:1] == [0.0]


async def test_push_silent_brings_polling_back_for_a_declared_provider(sim_factory, tmp_path):
    """No push at all, a task far past the learned lengths: "push silent", polled as usual."""
    sim = sim_factory(_scenario(sim_task("evolink", "e1", "queued", created=-2.0, start=2.0, end=400.0,
                                         end_state="succeeded")))
    async with Run(sim, tmp_path, declare=True, learned=[20.0, 20.0, 25.0, 25.0, 30.0],
                   ids={"evolink": ["e1"]}) as run:
        await run.step_to(200.0)
        (h,) = [h for h in run.engine.health() if h.name == "evolink"]
        assert "push silent" in (h.cause or "")
        said = run.polls("e1")[-1]
        assert 120.0 < said < 200.0  # polled once it was said, off the safety net's beat ...
        await run.step_to(405.0)
        assert run.store.get("evolink:e1").state == SUCCEEDED
        assert any(400.0 <= t <= 403.0 for t in run.polls("e1"))  # ... and as usual since: its end seen at once


async def test_a_receiver_that_stops_ends_the_safety_nets_waits(sim_factory, tmp_path):
    sim = sim_factory(_scenario(sim_task("evolink", "e1", "queued", created=-2.0, start=5.0, end=400.0,
                                         end_state="succeeded")))
    async with Run(sim, tmp_path, declare=True, ids={"evolink": ["e1"]}) as run:
        await run.step_to(10.0)
        assert run.polls("e1") == []
        run.engine.set_push(())  # the listener is gone: nobody will push
        await run.step_to(12.0)
        assert run.polls("e1")[:1] == [11.0]


async def test_a_long_task_is_not_push_silence_while_callbacks_of_others_come(sim_factory, tmp_path):
    """EvoLink calls back only at the end: a long task with no push is normal while
    the callbacks of other tasks arrive (each callback counts as a push)."""
    tasks = [sim_task("evolink", "long", "queued", created=-2.0, start=2.0, end=400.0, end_state="succeeded")]
    tasks += [sim_task("evolink", f"s{i}", "queued", created=-2.0, start=2.0, end=end, end_state="succeeded")
              for i, end in enumerate((100.0, 150.0, 190.0, 230.0))]
    sim = sim_factory(_scenario(*tasks))
    async with Run(sim, tmp_path, declare=True, learned=[20.0, 20.0, 25.0, 25.0, 30.0],
                   ids={"evolink": ["long", "s0", "s1", "s2", "s3"]}) as run:
        await run.step_to(235.0)
        assert run.engine.workers["evolink"].push_silent is None
        assert len(run.polls("long")) <= 4  # the net's checks (~30 s, then every 60 s), not polling as usual


async def test_a_restarted_collector_asks_a_task_it_polled_before_once(sim_factory, tmp_path):
    """Pushes may have come while nothing listened: a declared task already polled
    (an earlier run) is asked once at once, then left to the safety net."""
    sim = sim_factory(_scenario(sim_task("evolink", "e1", "queued", created=-2.0, start=5.0, end=400.0,
                                         end_state="succeeded")))
    async with Run(sim, tmp_path, declare=False, ids={"evolink": ["e1"]}) as run:
        await run.step_to(1.0)
    before = len(sim.requests)
    assert before >= 1
    async with Run(sim, tmp_path, declare=True) as run:
        await run.step_to(20.0)
        asked = [r for r in sim.requests[before:] if r.provider == "evolink" and r.endpoint != "balance"]
        assert len(asked) == 1 and asked[0].time < 2.0


async def test_refresh_all_asks_declared_tasks_too(sim_factory, tmp_path):
    sim = sim_factory(_scenario(sim_task("evolink", "e1", "queued", created=-2.0, start=5.0, end=400.0,
                                         end_state="succeeded")))
    async with Run(sim, tmp_path, declare=True, ids={"evolink": ["e1"]}) as run:
        await run.step_to(5.0)
        assert run.polls("e1") == [] and run.lists("evolink") == []
        run.engine.refresh_now()  # `r`: every task now, fed by push or not
        await run.step_to(6.0)
        assert len(run.polls("e1") + run.lists("evolink")) == 1
        await run.step_to(30.0)
        assert len(run.polls("e1") + run.lists("evolink")) == 1  # then the safety net again
