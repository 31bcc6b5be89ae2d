"""The simulator pushes (tui/sim/push.py) to the real receiver (tui/push.py) over HTTP on
127.0.0.1, which writes to a real SQLite store: Freepik webhooks signed right, wrong,
not at all, stale, replayed, duplicated, out of order, retried after a 500, and lost;
EvoLink callbacks (hints: the receiver's poller asks the simulator) retried after a
500 at 1, 2, 4 s of sim time, and lost.  With 10 % of pushes lost, one safety-net
poll round (Engine.poll_once) leaves no task missed.

The receiver runs in the test's event loop; the pusher blocks on HTTP, so it runs in
a worker thread (``asyncio.to_thread``).  Sim time is frozen and moved by the test."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tui.providers import make_provider
from tui.push import DirectPoller, PushReceiver, start_server
from tui.sim.push import RETRIES, PushOptions
from tui.store import Store

SECRET = "fp-sim-webhook-secret-0123456789"
TOKEN = "tok_" + "Z9y8X7w6V5u4T3s2R1q0" * 2
FP_KIND = "text-to-image/hyperflux"
PATIENCE = 30.0  # seconds to wait for a write the test needs (a safety limit, not a timing check)


class Clock:
    """Epoch seconds, movable: shared by the receiver and the pusher where a test moves time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Front:
    """An ASGI front that answers 500 to the first ``fail`` deliveries, then passes them on
    (a receiver behind a proxy having a bad moment)."""

    def __init__(self, app, fail: int) -> None:
        self.app, self.fail, self.failed = app, fail, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.failed < self.fail:
            self.failed += 1
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "internal"}'})
            return
        await self.app(scope, receive, send)


async def until(check, what: str) -> None:
    """Wait (yielding to the receiver's loop) until ``check()`` holds."""
    deadline = time.monotonic() + PATIENCE
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


def queued(sim_task, provider, task_id, end="succeeded", **fields):
    """Queued at t=0, running from t=30, ended at t=90."""
    extra = {"error": "simulated failure"} if end == "failed" else {}
    if provider == "freepik":
        extra["kind"] = FP_KIND
    return sim_task(provider, task_id, "queued", created=-10, start=30, end=90, end_state=end, **{**extra, **fields})


def evo_id(n: int) -> str:
    return f"task-unified-1756817821-{n:08d}"


class World:
    """The simulator, the receiver on 127.0.0.1 and the store, wired together."""

    def __init__(self, sim, store, tmp_path) -> None:
        self.sim, self.store, self.tmp_path = sim, store, tmp_path
        self.server = self.task = None
        self.pusher = None
        self.clock = Clock()

    async def start(self, front_fail: int = 0, **pusher_kw) -> "World":
        providers = {p: make_provider(p, self.sim.key(p), self.sim.base_url) for p in ("freepik", "evolink")}
        self.poller = DirectPoller(self.store, providers)
        self.receiver = PushReceiver(self.store, providers, secrets={"freepik": [SECRET]}, token=TOKEN,
                                     on_hint=self.poller, clock=self.clock,
                                     rate=1000.0, burst=1000.0)  # 120 pushes at once from one source: no 429 here
        self.front = Front(self.receiver.app, front_fail)
        self.server, self.task, port = await start_server(self.front, "127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"
        self.pusher = self.sim.pusher(freepik_url=f"{base}/hooks/freepik", freepik_secret=SECRET,
                                      evolink_url=f"{base}/hooks/evolink/{TOKEN}", clock=self.clock, **pusher_kw)
        for t in self.sim.scenario.tasks:
            self.store.add(t.provider, [t.task_id], kind=FP_KIND if t.provider == "freepik" else None)
        return self

    async def at(self, t: float):
        """Move the sim clock to ``t`` and pump; the attempts made."""
        self.sim.clock.set(t)
        return await asyncio.to_thread(self.pusher.pump)

    def state(self, provider: str, task_id: str) -> str:
        return self.store.get(f"{provider}:{task_id}").state

    def states(self, provider: str, task_id: str) -> list[str]:
        return [h[1] for h in self.store.history(f"{provider}:{task_id}")]

    def counts(self, provider: str = "freepik") -> dict:
        return self.receiver.counts[provider]

    def polls(self, provider: str) -> list:
        return [r for r in self.sim.requests if r.provider == provider and r.endpoint == "status"]

    async def stop(self) -> None:
        if self.pusher is not None:
            await asyncio.to_thread(self.pusher.close)
        if self.server is not None:
            self.server.should_exit = True
            await self.task
        await self.poller.close()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "tasks.db")
    yield s
    s.close()


@pytest.fixture
async def world(sim_factory, sim_scenario, store, tmp_path):
    made = []

    async def make(*tasks, front_fail: int = 0, **pusher_kw) -> World:
        w = World(sim_factory(sim_scenario(*tasks)), store, tmp_path)
        made.append(w)
        return await w.start(front_fail, **pusher_kw)

    yield make
    for w in made:
        await w.stop()


# ---------------------------------------------------------------- signed right


async def test_signed_webhooks_carry_freepik_tasks_to_their_ends_without_a_poll(world, sim_task):
    w = await world(queued(sim_task, "freepik", "fp-ok"), queued(sim_task, "freepik", "fp-bad", "failed"),
                    queued(sim_task, "freepik", "fp-stop", "cancelled"))
    assert await w.at(20) == []  # nothing changed yet
    made = await w.at(45)
    assert sorted((a.task_id, a.state, a.status) for a in made) == [
        ("fp-bad", "running", 200), ("fp-ok", "running", 200), ("fp-stop", "running", 200)]
    assert {w.state("freepik", t) for t in ("fp-ok", "fp-bad", "fp-stop")} == {"running"}  # stored before the 200
    made = await w.at(100)
    assert sorted((a.task_id, a.state, a.status) for a in made) == [
        ("fp-bad", "failed", 200), ("fp-ok", "succeeded", 200), ("fp-stop", "cancelled", 200)]
    assert w.state("freepik", "fp-ok") == "succeeded" and w.store.get("freepik:fp-ok").results
    assert w.state("freepik", "fp-bad") == "failed" and w.state("freepik", "fp-stop") == "cancelled"
    assert w.states("freepik", "fp-ok")[-2:] == ["running", "succeeded"]
    assert w.counts()["accepted"] == 6 and w.polls("freepik") == []  # push only: no request to the provider
    assert await w.at(200) == []  # each change is announced once
    sig = made[0].headers["webhook-signature"]
    assert sig.startswith("v1,") and made[0].headers["webhook-id"].startswith("msg_")


async def test_evolink_callbacks_are_hints_that_poll_once(world, sim_task):
    ids = [evo_id(1), evo_id(2)]
    w = await world(queued(sim_task, "evolink", ids[0]), queued(sim_task, "evolink", ids[1], "failed"))
    assert await w.at(45) == []  # EvoLink calls back only at the end
    made = await w.at(100)
    assert sorted((a.task_id, a.state, a.status) for a in made) == [
        (ids[0], "succeeded", 202), (ids[1], "failed", 202)]
    body = json.loads(made[0].body)
    assert body["id"] in ids and body["status"] in ("completed", "failed")  # the task-detail object, unsigned
    assert "webhook-signature" not in made[0].headers
    await until(lambda: w.state("evolink", ids[0]) == "succeeded" and w.state("evolink", ids[1]) == "failed",
                "hinted tasks polled and stored")
    assert sorted(r.task_id for r in w.polls("evolink")) == sorted(ids)  # one poll per callback


# ---------------------------------------------------------------- signed wrong, unsigned, stale


@pytest.mark.parametrize("how,why", [
    (PushOptions(sign="wrong"), "bad_signature"),
    (PushOptions(sign="none"), "bad_signature"),
    (PushOptions(stale=600.0), "stale"),
])
async def test_refused_deliveries_store_nothing_and_are_retried(world, sim_task, how, why):
    w = await world(queued(sim_task, "freepik", "fp-1"), options=how)
    made = await w.at(45)
    assert [(a.state, a.status) for a in made] == [("running", 401)]
    headers = made[0].headers
    assert ("webhook-signature" in headers) == (how.sign != "none")
    assert (abs(int(headers["webhook-timestamp"]) - time.time()) > 500) == (how.stale > 0)
    assert w.state("freepik", "fp-1") == "unknown" and w.states("freepik", "fp-1") == []
    assert w.counts()["rejected"][why] == 1 and w.counts()["accepted"] == 0
    # a refusal is no 2xx: the sender tries again on the Standard Webhooks schedule (sim time)
    assert w.pusher.pending_retries == [("freepik", "fp-1", 1, 45 + RETRIES["freepik"][0])]
    assert await w.at(45 + RETRIES["freepik"][0] - 0.5) == []
    made = await w.at(45 + RETRIES["freepik"][0])
    assert [(a.attempt, a.status) for a in made] == [(1, 401)]
    assert w.state("freepik", "fp-1") == "unknown" and w.counts()["rejected"][why] == 2


# ---------------------------------------------------------------- replayed, duplicated, out of order


async def test_a_replayed_delivery_is_a_duplicate_then_stale(world, sim_task):
    w = await world(queued(sim_task, "freepik", "fp-1"))
    (first,) = await w.at(45)
    assert first.status == 200 and w.states("freepik", "fp-1") == ["running"]
    again = await asyncio.to_thread(w.pusher.replay, first)
    assert again.status == 200 and again.headers == first.headers
    assert w.counts()["duplicate"] == 1 and w.states("freepik", "fp-1") == ["running"]
    w.clock.offset = 400.0  # later than the receiver's tolerance (300 s): the captured timestamp is too old
    late = await asyncio.to_thread(w.pusher.replay, first)
    assert late.status == 401 and w.counts()["rejected"]["stale"] == 1
    w.clock.offset = 0.0
    tampered = await asyncio.to_thread(w.pusher.replay, first.__class__(
        **{**first.__dict__, "body": first.body.replace(b"IN_PROGRESS", b"COMPLETED")}))
    assert tampered.status == 401 and w.counts()["rejected"]["bad_signature"] == 1
    assert w.state("freepik", "fp-1") == "running"


async def test_duplicated_deliveries_are_stored_once(world, sim_task):
    w = await world(queued(sim_task, "freepik", "fp-1"), queued(sim_task, "freepik", "fp-2", "failed"),
                    options=PushOptions(duplicate=True))
    made = await w.at(45) + await w.at(100)
    assert len(made) == 8 and sum(a.duplicate for a in made) == 4
    for a in made:
        assert a.status == 200
    assert w.counts()["duplicate"] == 4 and w.counts()["accepted"] == 4
    assert w.states("freepik", "fp-1") == ["running", "succeeded"]
    assert w.states("freepik", "fp-2") == ["running", "failed"]


async def test_out_of_order_never_moves_a_task_back(world, sim_task):
    w = await world(queued(sim_task, "freepik", "fp-1"), options=PushOptions(out_of_order=True))
    made = await w.at(100)  # both changes at once, the newest first
    assert [(a.state, a.status) for a in made] == [("succeeded", 200), ("running", 200)]
    assert w.state("freepik", "fp-1") == "succeeded" and w.counts()["out_of_order"] == 1
    assert w.states("freepik", "fp-1") == ["succeeded"]


# ---------------------------------------------------------------- retried after a 500


async def test_evolink_retries_after_a_500_at_1_2_4_seconds(world, sim_task):
    eid = evo_id(7)
    w = await world(queued(sim_task, "evolink", eid), front_fail=2)
    made = await w.at(100)
    assert [(a.attempt, a.status) for a in made] == [(0, 500)]
    assert await w.at(100.5) == []  # not due yet
    made = await w.at(101)  # 1 s later
    assert [(a.attempt, a.status) for a in made] == [(1, 500)]
    assert await w.at(102.9) == []
    made = await w.at(103)  # 2 s after that
    assert [(a.attempt, a.status) for a in made] == [(2, 202)]
    await until(lambda: w.state("evolink", eid) == "succeeded", "the retried callback polled the task")
    assert w.pusher.pending_retries == [] and len(w.polls("evolink")) == 1


async def test_evolink_gives_up_after_three_retries_and_the_safety_net_finds_the_task(world, sim_task, tmp_path):
    eid = evo_id(8)
    w = await world(queued(sim_task, "evolink", eid), front_fail=99)
    times = []
    for t in (100, 101, 103, 107, 115, 200):
        times += [(a.attempt, a.sim_time, a.status) for a in await w.at(t)]
    assert times == [(0, 100, 500), (1, 101, 500), (2, 103, 500), (3, 107, 500)]  # 1 + 3 retries, then no more
    assert w.pusher.pending_retries == [] and w.state("evolink", eid) == "unknown"
    await safety_net(w, tmp_path)
    assert w.state("evolink", eid) == "succeeded"


async def test_freepik_retries_after_a_500(world, sim_task):
    w = await world(queued(sim_task, "freepik", "fp-1"), front_fail=1)
    made = await w.at(45)
    assert [(a.attempt, a.status) for a in made] == [(0, 500)] and w.state("freepik", "fp-1") == "unknown"
    made = await w.at(45 + RETRIES["freepik"][0])
    assert [(a.attempt, a.status, a.msg_id) for a in made] == [(1, 200, made[0].msg_id)]
    assert w.state("freepik", "fp-1") == "running"


# ---------------------------------------------------------------- lost, and the safety net


async def safety_net(w: World, tmp_path) -> None:
    """One poll round of the engine over every live task (the safety net)."""
    from tui.config import load_config
    from tui.engine import Engine

    cfg = tmp_path / "config.toml"
    cfg.write_text("\n".join(
        f'[providers.{p}]\napi_key = "{w.sim.key(p)}"\nbase_url = "{w.sim.base_url}"\nrate_limit = "600/s"\n'
        for p in ("freepik", "evolink")), encoding="utf-8")
    cfg.chmod(0o600)
    engine = Engine(load_config(cfg), w.store)
    try:
        await engine.poll_once()
    finally:
        await engine.stop()


async def test_ten_percent_lost_and_no_task_missed_after_the_safety_net(world, sim_task, tmp_path):
    ends = ("succeeded", "failed", "cancelled")
    tasks = [queued(sim_task, "freepik", f"fp-{i:03d}", ends[i % 3]) for i in range(40)]
    tasks += [queued(sim_task, "evolink", evo_id(i), ends[i % 2]) for i in range(40)]
    w = await world(*tasks, options=PushOptions(lose=0.1), seed=18)
    made = await w.at(45) + await w.at(100)
    lost = [a for a in made if a.lost]
    assert 0.04 * len(made) <= len(lost) <= 0.2 * len(made), len(lost)  # about a tenth of 120
    assert [(a.task_id, a.status, a.error) for a in made if not a.lost and not a.ok] == []
    lost_ends = {(a.provider, a.task_id) for a in lost if a.state in ends}
    assert lost_ends, "no final delivery was lost: the safety net would prove nothing"
    want = {(t.provider, t.task_id): t.end_state for t in tasks}

    def pushed_done() -> bool:
        return all(w.state(p, i) == end for (p, i), end in want.items() if (p, i) not in lost_ends)

    await until(pushed_done, "every pushed end stored (EvoLink: its hinted poll)")
    await until(lambda: not w.poller.pending, "hinted polls finished")
    missed = {key for key, end in want.items() if w.state(*key) != end}
    assert missed == lost_ends  # exactly the tasks whose end was lost are behind
    before = len(w.sim.requests)
    await safety_net(w, tmp_path)
    assert {key for key, end in want.items() if w.state(*key) != end} == set()  # zero missed
    asked = {r.task_id for r in w.sim.requests[before:] if r.task_id}
    assert asked <= {i for _, i in missed}  # the safety net asked only about what was behind


def test_background_pumping_and_both_signature_implementations_agree(sim, sim_task, sim_pusher):
    """``start()`` pumps from a thread as sim time passes; what it signs, tui.push verifies
    (two implementations of the Standard Webhooks scheme agree), and the whsec_ form too."""
    import base64
    import threading

    from http_server import HttpServer, Reply
    from tui.push import verify_signature

    got: list[tuple[dict, bytes]] = []
    arrived = threading.Event()

    def receive(seen):  # a webhook receiver: record, answer 204
        got.append((seen.headers, seen.body))
        if b'"fp-bg"' in seen.body:
            arrived.set()
        return Reply(204, b"", content_type=None)

    server = HttpServer(receive).start()
    try:
        raw = b"\x01\x02secret-bytes\xff"
        whsec = "whsec_" + base64.b64encode(raw).decode()
        sim.add([queued(sim_task, "freepik", "fp-bg")])
        pusher = sim_pusher(freepik_url=f"{server.url}/hooks/freepik",
                            freepik_secret=raw).start(every=0.02)
        sim.advance(45)
        assert arrived.wait(PATIENCE), "the background pump sent nothing"
        headers, body = next((h, b) for h, b in got if b'"fp-bg"' in b)
        assert json.loads(body) == {"task_id": "fp-bg", "status": "IN_PROGRESS", "generated": []}
        assert verify_signature([whsec], headers["webhook-id"], headers["webhook-timestamp"], body,
                                headers["webhook-signature"])
        assert not verify_signature(["whsec_" + base64.b64encode(b"other").decode()], headers["webhook-id"],
                                    headers["webhook-timestamp"], body, headers["webhook-signature"])
        deadline = time.monotonic() + PATIENCE
        while not any(a.task_id == "fp-bg" for a in pusher.attempts):  # recorded once the answer is read
            assert time.monotonic() < deadline, "the attempt was never recorded"
            time.sleep(0.01)
        assert [a.status for a in pusher.attempts if a.task_id == "fp-bg"] == [204]
    finally:
        server.close()
