"""Push safety net (issue 18): a task whose updates arrive by push is polled only as a
safety net (every ``safety_net`` seconds, and once near its predicted end); a push
that stops arriving (no push about a task far past its learned duration) brings
normal polling back and the provider's health says "push silent".

In virtual time against the simulator on 127.0.0.1 (its clock frozen and moved in
steps together with the engine's) and a real SQLite store: what was polled is the
simulator's request log.  A push is what tui/push.py's receiver does: the update
stored, then ``on_push(key)`` (here the worker's ``note_push``), or, from a receiver
in another process, the task marked ``details["pushed_at"]`` in the store.
"""

from __future__ import annotations

import pytest

from tui.config import parse_config
from tui.engine import Engine
from tui.sim import build_scenario, sim_task
from tui.store import Store

WALL = 1_800_000_000.0  # the engine's wall clock at virtual time 0 (the scenario's epoch)
KEY = "evolink:p1"


class Run:
    """An engine and the simulator on one virtual clock, moved one second a step."""

    def __init__(self, sim_factory, tmp_path, end: float, typical: float | None = None,
                 safety_net: float = 600.0, eta: float | None = None) -> None:
        scenario = build_scenario(sim_task("evolink", "p1", "running", created=-10.0, start=-5.0, end=end, eta=eta))
        scenario.epoch = WALL
        self.sim = sim_factory(scenario)
        self.store = Store(tmp_path / "tasks.db")
        self.store.add("evolink", ["p1"])
        if typical is not None:  # durations learned by an earlier run (what the engine keeps in the store)
            self.store.save_counters("evolink", {"durations": {"image\tgpt-image-1": [typical]}, "saved_at": WALL})
        self.vt = 0.0
        text = (f'[providers.evolink]\napi_key = "{self.sim.key("evolink")}"\nbase_url = "{self.sim.base_url}"\n'
                'poll_interval = 1.0\nrate_limit = "600/s"\nbalance_interval = 0\n')
        self.engine = Engine(parse_config(text), self.store, clock=lambda: self.vt, wall=lambda: WALL + self.vt)
        self.worker = self.engine.workers["evolink"]
        self.worker.safety_net = safety_net

    async def step_to(self, until: float, at=None) -> None:
        while self.vt <= until:
            if at is not None:
                at(self.vt)
            self.sim.sim.clock.set(self.vt)
            await self.engine.poll_due()
            self.vt += 1.0

    def push(self) -> None:
        """A push about p1 (its state as it is) was stored: the receiver's hook."""
        self.worker.note_push(KEY)

    def polls(self, after: float = -1.0, before: float = 1e12) -> list[float]:
        return [r.time for r in self.sim.requests
                if r.provider == "evolink" and r.endpoint == "status" and after < r.time < before]

    def health(self):
        (h,) = self.engine.health()
        return h

    async def close(self) -> None:
        await self.engine.stop()
        self.store.close()


@pytest.fixture
async def run(sim_factory, tmp_path):
    runs = []

    def make(**kw) -> Run:
        r = Run(sim_factory, tmp_path / str(len(runs)), **kw)
        runs.append(r)
        return r

    for n in range(2):
        (tmp_path / str(n)).mkdir()
    yield make
    for r in runs:
        await r.close()


async def test_a_pushed_task_is_polled_only_by_the_safety_net(run):
    """The push of its end is lost: nothing is asked until the safety net (600 s)
    finds it ended; the same task without push is polled far more often."""
    pushed = run(end=300.0)
    await pushed.step_to(0)
    pushed.push()
    await pushed.step_to(700)
    assert pushed.polls(after=0.5, before=600.0) == []
    net = pushed.polls(after=600.0)
    assert net and net[0] <= 602.0
    assert pushed.store.get(KEY).state == "succeeded"
    assert len(pushed.polls()) <= 3
    polled = run(end=300.0)
    await polled.step_to(700)
    assert polled.store.get(KEY).state == "succeeded"
    assert polled.polls(after=0.5, before=600.0)  # polling as usual: it is seen ended well before


async def test_once_near_the_predicted_end(run):
    """Tasks like it take 200 s (learned): one poll near created + 200 finds the
    ended task whose push was lost, long before the safety net."""
    r = run(end=185.0, typical=200.0)
    await r.step_to(0)
    r.push()
    await r.step_to(260)
    polls = r.polls(after=0.5)
    assert len(polls) == 1 and 185.0 <= polls[0] <= 192.0, polls
    assert r.store.get(KEY).state == "succeeded"


async def test_push_silent_brings_polling_back_and_a_push_ends_it(run):
    """Tasks like it take 50 s; no push for a task 170 s old: the provider is degraded
    with "push silent" and the task is polled as usual again, at once (the safety net
    alone would wait till 640 s); a push later makes push the feed again (state ok,
    no polls for a while)."""
    r = run(end=5000.0, typical=50.0)
    await r.step_to(0)
    r.push()
    await r.step_to(150)
    assert r.health().state == "ok"
    assert len(r.polls(after=0.5, before=150.0)) <= 1  # the one near the predicted end (40 s)
    await r.step_to(300)
    h = r.health()
    assert h.state == "degraded" and "push silent" in (h.cause or ""), h
    assert len(r.polls(after=155.0, before=175.0)) == 1  # polled as usual again, from the moment it is said
    assert any("push silent" in e.message for e in r.store.events(limit=50))
    r.push()
    await r.step_to(400)
    assert r.health().state == "ok"
    assert r.polls(after=302.0, before=400.0) == []


async def test_a_push_stored_by_another_process_marks_the_task(run, tmp_path):
    """A receiver in another process (``tasktui listen``) stores the update with
    details["pushed_at"]: the engine polls that task only as a safety net too."""
    r = run(end=300.0)
    await r.step_to(0)
    other = Store(r.store.path)
    task = other.get(KEY).copy(details={"pushed_at": str(WALL + 1.0)})
    other.apply([task])
    other.close()
    await r.step_to(500)
    assert r.polls(after=1.5, before=500.0) == []


async def test_a_refresh_asks_a_pushed_task_once(run):
    """An EvoLink callback's hint (or ``r``) asks a push-fed task now: one request."""
    r = run(end=5000.0)
    await r.step_to(0)
    r.push()
    await r.step_to(20)
    assert r.polls(after=0.5) == []
    r.engine.refresh_now({KEY})
    await r.step_to(100)
    assert len(r.polls(after=20.5, before=100.0)) == 1
