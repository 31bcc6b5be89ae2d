"""The engine against the real simulator on 127.0.0.1 and a real SQLite store.

The simulator's clock is frozen unless a test says otherwise: tests move sim
time with ``sim.advance``.  Nothing here sleeps a fixed time; waits poll for a
condition with a generous timeout.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tui.config import parse_config
from tui.engine import Engine
from tui.model import PROVIDERS
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]
GENEROUS = 30.0  # seconds a condition may take on a slow, busy machine


def config_for(base_url: str, providers=PROVIDERS, keys=None, **per_provider) -> object:
    """A parsed config for ``providers`` served at ``base_url``.  ``per_provider``:
    ``evolink={"rate_limit": "30/m"}``; defaults: poll_interval 0.1, rate_limit 600/s."""
    lines = []
    for name in providers:
        opts = {"api_key": (keys or {}).get(name, f"sim-key-{name}"), "base_url": base_url,
                "poll_interval": 0.1, "rate_limit": "600/s", **per_provider.get(name, {})}
        lines.append(f"[providers.{name}]")
        for k, v in opts.items():
            lines.append(f"{k} = {_toml(v)}")
        lines.append("")
    return parse_config("\n".join(lines))


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return '"' + str(v) + '"'


async def until(condition, timeout: float = GENEROUS, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def reqs(sim, provider=None, endpoint=None):
    return [r for r in sim.requests if (provider is None or r.provider == provider)
            and (endpoint is None or r.endpoint == endpoint)]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "tasks.db")
    yield s
    s.close()


# ---------------------------------------------------------------- lifecycles


async def test_every_provider_reaches_every_end_state(sim, sim_task, store):
    sim.add([sim_task("qolaba", "qolaba-revoked", "cancelled")])
    store.add("qolaba", ["qolaba-revoked"])
    for p in PROVIDERS:
        store.add(p, [f"{p}-queued", f"{p}-running", f"{p}-done", f"{p}-failed", f"{p}-missing"])
    store.add("freepik", ["freepik-cancelled"])
    store.add("evolink", ["evolink-expired"])
    engine = Engine(config_for(sim.base_url), store)
    try:
        await engine.poll_once()
        for p in PROVIDERS:
            done = store.get(f"{p}:{p}-done")
            assert done.state == "succeeded", (p, done)
            assert done.results and all(u.startswith("https://sim.tasktui.invalid/") for u in done.results)
            failed = store.get(f"{p}:{p}-failed")
            if p == "qolaba":
                # Qolaba's backend wraps every exception (a dead Redis too) in 500 + FAILED:
                # not proof of a failed task, so it never ends one (issue 11); it shows as a failed poll
                assert failed.state == "unknown" and failed.failed_polls == 1 and failed.last_error, failed
                continue
            assert failed.state == "failed", (p, failed)
            if p in ("upscayl", "evolink"):  # the Freepik shapes carry no message
                assert failed.error, (p, failed)
            assert store.get(f"{p}:{p}-running").state == "running"
            # Upscayl's docs enum has no "queued" word: PROCESSING reads as running
            assert store.get(f"{p}:{p}-queued").state == ("running" if p == "upscayl" else "queued")
            missing = store.get(f"{p}:{p}-missing").state
            # Celery (qolaba) answers PENDING for an id it does not know: no 404 exists there
            assert missing == ("queued" if p == "qolaba" else "not_found"), (p, missing)
        assert store.get("freepik:freepik-cancelled").state == "cancelled"
        assert store.get("qolaba:qolaba-revoked").state == "cancelled"  # Celery REVOKED
        assert store.get("evolink:evolink-expired").state == "not_found"
        running = store.get("evolink:evolink-running")
        assert running.progress == 50 and running.credits == 2.0

        sim.advance(200)  # every queued and running task has ended by now
        await engine.poll_once()
        for p in PROVIDERS:
            for name in ("queued", "running"):
                t = store.get(f"{p}:{p}-{name}")
                assert t.state == "succeeded" and t.results, (p, name, t)
        assert sim.violations == []
        # terminal tasks are never asked again
        before = len(sim.requests)
        await engine.poll_once()
        asked = {r.task_id for r in sim.requests[before:] if r.endpoint == "status"}
        assert asked == {"qolaba-missing", "qolaba-failed"}  # the only ones still live (see above)
        assert not any(r.endpoint == "list" for r in sim.requests[before:])
        # every answer and its history are in SQLite, not only in memory
        with Store(store.path) as other:
            assert other.get("comfy:comfy-queued").state == "succeeded"
            assert [h[1] for h in other.history("comfy:comfy-queued")][-2:] == ["queued", "succeeded"]
            assert other.counters()["evolink"]["requests"] >= 7
    finally:
        await engine.stop()


async def test_freepik_one_list_then_detail_only_for_completed(sim, sim_task, store):
    sim.add([sim_task("freepik", f"fp-{i}", "running") for i in range(6)])
    ids = [f"fp-{i}" for i in range(6)] + ["freepik-done", "freepik-failed"]
    store.add("freepik", ids)
    engine = Engine(config_for(sim.base_url, providers=("freepik",)), store)
    try:
        await engine.poll_once()
        lists = reqs(sim, "freepik", "list")
        details = reqs(sim, "freepik", "status")
        assert len(lists) == 1 and lists[0].path == "/v1/ai/text-to-image/hyperflux"
        # a fresh engine probes with one status request (never the list: issue 11), then the
        # list; a detail only for the task the list saw COMPLETED (results only in the detail)
        assert [r.task_id for r in details] == ["fp-0", "freepik-done"]
        assert store.get("freepik:freepik-done").results
        assert all(store.get(f"freepik:fp-{i}").state == "running" for i in range(6))

        sim.advance(100)
        sim.reset()
        await engine.poll_once()
        assert len(reqs(sim, "freepik", "list")) == 1
        assert sorted(r.task_id for r in reqs(sim, "freepik", "status")) == sorted(f"fp-{i}" for i in range(6))
        assert all(store.get(f"freepik:fp-{i}").results for i in range(6))
    finally:
        await engine.stop()


async def test_freepik_discover_adds_tasks_nobody_added(sim, sim_task, store):
    sim.add([sim_task("freepik", "found-1", "running"), sim_task("freepik", "found-2", "queued")])
    store.add("freepik", ["freepik-running"])
    config = config_for(sim.base_url, providers=("freepik",), freepik={"discover": True})
    engine = Engine(config, store)
    try:
        await engine.poll_once()
        keys = {t.key for t in store.tasks()}
        assert {"freepik:found-1", "freepik:found-2", "freepik:freepik-done"} <= keys
        assert store.get("freepik:found-1").state == "running"
        assert store.get("freepik:found-2").state == "queued"
        # a removed task is not brought back by the next list
        store.remove(["freepik:found-1"])
        await engine.poll_once()
        assert "freepik:found-1" not in store
    finally:
        await engine.stop()


# ---------------------------------------------------------------- faults


async def test_per_task_bad_answer_keeps_last_state_and_is_logged(sim, sim_fault, store):
    store.add("evolink", ["evolink-running", "evolink-queued"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        assert store.get("evolink:evolink-running").state == "running"
        sim.add(faults=[sim_fault("malformed", "evolink", task_id="evolink-running", count=1)])
        sim.advance(40)
        engine.refresh_now()
        await engine.poll_once()
        assert store.get("evolink:evolink-running").state == "running"  # kept, not clobbered
        assert store.get("evolink:evolink-queued").state == "running"  # others went on
        events = store.events(provider="evolink")
        assert events and events[0].kind == "bad_response" and events[0].task_id == "evolink-running"
        # one task's poll failed: the provider is answering but not all is well (issue 11:
        # never `ok` while answers fail); the next clean answer makes it ok again
        status = engine.status("evolink")
        assert status.state == "degraded" and "polls failing" in status.cause
        engine.refresh_now()
        await engine.poll_once()
        assert engine.status("evolink").state == "ok" and engine.status("evolink").cause is None
    finally:
        await engine.stop()


async def test_retry_after_is_respected_then_polling_resumes(sim_factory, sim_task, sim_scenario,
                                                             sim_fault, store):
    # real-time sim (speed 1): the announced window really ends
    tasks = [sim_task("evolink", f"e{i}", "running") for i in range(12)]
    sim = sim_factory(sim_scenario(*tasks, faults=[sim_fault("rate_limit", "evolink", retry_after=1, count=1)]),
                      speed=1.0)
    store.add("evolink", [t.task_id for t in tasks])
    engine = Engine(config_for(sim.base_url, providers=("evolink",), evolink={"concurrency": 4}), store)
    await engine.start()
    try:
        await until(lambda: engine.status("evolink").state == "rate_limited", what="rate_limited")
        s = engine.status("evolink")
        assert s.retry_at is not None and s.rate_limited == 1
        q = {row["provider"]: row for row in engine.quota()}["evolink"]
        assert q["state"] == "rate_limited" and q["retry_at"].endswith("Z")
        await until(lambda: all(store.get(f"evolink:e{i}").state == "running" for i in range(12)),
                    what="polling after the window")
        assert engine.status("evolink").state == "ok"
    finally:
        await engine.stop()
    statuses = [r.status for r in reqs(sim, "evolink")]
    assert statuses[0] == 429 and statuses.count(429) == 1 and statuses.count(200) >= 12
    assert sim.violations == []


async def test_unknown_provider_budget_429s_are_waited_out(sim_factory, sim_task, sim_scenario, store):
    # the provider's real budget (10/s) is below what we were told (600/s): its 429s carry
    # Retry-After, and nothing may arrive before that wait is over.  (One request at a
    # time: a request already in flight when a 429 is issued cannot be called back.)
    tasks = [sim_task("evolink", f"e{i}", "running") for i in range(30)]
    sim = sim_factory(sim_scenario(*tasks, evolink={"budget": "10/s"}), speed=1.0)
    store.add("evolink", [t.task_id for t in tasks])
    engine = Engine(config_for(sim.base_url, providers=("evolink",), evolink={"concurrency": 1}), store)
    await engine.start()
    try:
        await until(lambda: sum(r.status == 429 for r in reqs(sim, "evolink")) >= 2, what="two 429s")
        await until(lambda: all(store.get(f"evolink:e{i}").state == "running" for i in range(30)),
                    what="every task polled despite the 429s")
    finally:
        await engine.stop()
    assert sim.violations == []
    assert engine.status("evolink").rate_limited >= 2


async def test_text_only_retry_hint_blocks_across_processes(sim, sim_fault, store):
    """Upscayl says "Try again in 1 hour" in the body only; a second engine on the
    same database (another ``tasktui poll``) must not ask before the hour is over."""
    sim.add(faults=[sim_fault("rate_limit_text", "upscayl", count=1)])
    store.add("upscayl", ["upscayl-running", "upscayl-queued"])
    config = config_for(sim.base_url, providers=("upscayl",))
    engine = Engine(config, store)
    await engine.poll_once()
    await engine.stop()
    assert [r.status for r in reqs(sim, "upscayl")] == [429]
    s = engine.status("upscayl")
    assert s.state == "rate_limited" and s.retry_at is not None
    import time
    assert 3500 < s.retry_at - time.time() <= 3601

    again = Engine(config, store)
    for _ in range(3):
        await again.poll_once()
    await again.stop()
    assert len(reqs(sim, "upscayl")) == 1 and sim.violations == []
    assert again.status("upscayl").state == "rate_limited"
    assert store.events(provider="upscayl")[0].kind == "rate_limited"


async def test_engine_budget_is_never_exceeded(sim_factory, sim_task, sim_scenario, store):
    tasks = [sim_task("evolink", f"b{i}", "running") for i in range(20)]
    sim = sim_factory(sim_scenario(*tasks, evolink={"budget": "30/m"}))
    store.add("evolink", [t.task_id for t in tasks])
    engine = Engine(config_for(sim.base_url, providers=("evolink",), evolink={"rate_limit": "30/m"}), store)
    await engine.start()
    try:
        await until(lambda: len(reqs(sim, "evolink")) >= 6, what="six requests")
        s = engine.status("evolink")
        assert s.budget == "30/m" and s.budget_capacity == 4  # one per connection
    finally:
        await engine.stop()
    assert not any(r.over_budget or r.status == 429 for r in reqs(sim, "evolink"))
    assert sim.violations == []


async def test_refused_key_stops_polling_logs_once_and_resumes(sim, store):
    store.add("comfy", [f"c{i}" for i in range(10)] + ["comfy-done"])
    config = config_for(sim.base_url, providers=("comfy",), keys={"comfy": "wrong-key-123456"})
    engine = Engine(config, store)
    try:
        for _ in range(3):
            await engine.poll_once()
        assert len(reqs(sim, "comfy")) == 1  # one probe, then nothing
        s = engine.status("comfy")
        assert s.state == "auth_failed" and s.errors == 1
        events = store.events(provider="comfy")
        assert len(events) == 1 and events[0].kind == "auth_failed" and events[0].status == 401
        assert "wrong-key-123456" not in repr(events) + str(engine.quota()) + str(store.counters())
        # the user fixed the key: a new config resumes polling
        await engine.reconfigure(config_for(sim.base_url, providers=("comfy",)))
        await engine.poll_once()
        assert store.get("comfy:comfy-done").state == "succeeded"
        assert engine.status("comfy").state == "ok"
    finally:
        await engine.stop()


async def test_resume_provider_after_revoked_key(sim, sim_fault, store):
    sim.add(faults=[sim_fault("auth", "evolink", count=1, status=403)])
    store.add("evolink", ["evolink-done"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        assert engine.status("evolink").state == "auth_failed"
        engine.resume_provider("evolink")
        await engine.poll_once()
        assert store.get("evolink:evolink-done").state == "succeeded"
    finally:
        await engine.stop()


async def test_quota_exhausted_probes_rarely(sim, sim_fault, store):
    sim.add(faults=[sim_fault("quota", "evolink", endpoint="status")])
    store.add("evolink", ["evolink-running", "evolink-queued"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        for _ in range(5):
            await engine.poll_once()
        statuses = [r.status for r in reqs(sim, "evolink", "status")]
        assert statuses == [402]
        q = {row["provider"]: row for row in engine.quota()}["evolink"]
        assert q["state"] == "quota_exhausted" and q["retry_at"] is not None
    finally:
        await engine.stop()


async def test_dead_network_goes_offline_and_keeps_going(store):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store.add("evolink", ["e1", "e2", "e3"])
    engine = Engine(config_for(f"http://127.0.0.1:{port}", providers=("evolink",),
                               evolink={"timeout": 2.0}), store)
    await engine.start()
    try:
        await until(lambda: engine.status("evolink").state in ("offline", "backing_off"), what="offline")
        assert engine.status("evolink").state == "offline"
        await until(lambda: store.events(provider="evolink"), what="an event")
        event = store.events(provider="evolink")[0]
        assert event.kind == "transient" and event.status is None
        assert all(store.get(f"evolink:e{i}").state == "unknown" for i in (1, 2, 3))  # nothing lost
        assert not engine.workers["evolink"].runner.done()  # still running, backing off
        assert engine.status("evolink").requests <= 3
    finally:
        await engine.stop()


async def test_server_errors_back_off_then_recover(sim, sim_fault, store):
    sim.add(faults=[sim_fault("server_error", "comfy", count=2, status=503)])
    store.add("comfy", ["comfy-done", "comfy-failed"])
    engine = Engine(config_for(sim.base_url, providers=("comfy",)), store)
    await engine.start()
    try:
        await until(lambda: store.get("comfy:comfy-done").state == "succeeded"
                    and store.get("comfy:comfy-failed").state == "failed", what="recovery")
        assert engine.status("comfy").state == "ok"
        assert [r.status for r in reqs(sim, "comfy")][:2] == [503, 503]
        assert sim.violations == []
    finally:
        await engine.stop()


async def test_timeouts_and_proxy_pages_back_off_not_offline(sim, sim_fault, store):
    sim.add(faults=[sim_fault("slow", "evolink", endpoint="status", delay=5.0, count=1),
                    sim_fault("html_502", "evolink", endpoint="status", count=1)])
    store.add("evolink", ["evolink-done"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",), evolink={"timeout": 0.3}), store)
    try:
        await engine.poll_once()
        assert engine.status("evolink").state == "backing_off"  # a timeout is not a dead network
        assert store.events(provider="evolink")[0].message.startswith("timed out")
        engine.refresh_now()  # the user insists: the backoff wait is skipped, not a Retry-After
        await engine.poll_once()
        event = store.events(provider="evolink")[0]
        assert event.status == 502 and event.kind == "transient" and "HTML page" in event.message
        assert engine.status("evolink").state == "backing_off"
        engine.refresh_now()
        await engine.poll_once()
        assert store.get("evolink:evolink-done").state == "succeeded"
        assert engine.status("evolink").state == "ok"
        assert store.get("evolink:evolink-done").error is None
    finally:
        await engine.stop()


# ---------------------------------------------------------------- live engine


async def test_add_from_another_process_is_picked_up_and_polled(sim, tmp_path, store):
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    await engine.start()
    try:
        env = {"TASKTUI_DB": str(store.path), "TASKTUI_CONFIG": str(tmp_path / "none.toml"), "CI": "true"}
        import os
        r = subprocess.run([sys.executable, "-m", "tui", "add", "evolink", "evolink-done", "--label", "x"],
                           cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        await until(lambda: (t := store.get("evolink:evolink-done")) is not None and t.state == "succeeded",
                    what="the other process's task polled")
        assert store.get("evolink:evolink-done").label == "x"
    finally:
        await engine.stop()


async def test_pause_stops_rounds_and_refresh_now_still_works(sim, store):
    store.add("evolink", ["evolink-running"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    engine.pause()
    await engine.start()
    try:
        await asyncio.sleep(0)  # let the worker run its (paused) first turn
        assert engine.status("evolink").paused
        engine.refresh_now()
        await until(lambda: len(reqs(sim, "evolink")) >= 1, what="one refresh while paused")
        engine.resume()
        await until(lambda: len(reqs(sim, "evolink")) >= 3, what="polling after resume")
    finally:
        await engine.stop()


async def test_no_request_leaves_while_paused_and_polling_resumes_after(sim, store):
    """Paused, the worker sends nothing, not even for a task added meanwhile; a
    second engine (another provider on the same simulator) is the clock: while
    it polls ten times, the paused one would have polled too."""
    store.add("evolink", ["evolink-running"])
    store.add("qolaba", ["qolaba-running"])
    paused = Engine(config_for(sim.base_url, providers=("evolink",)), store, adaptive=False)
    witness = Engine(config_for(sim.base_url, providers=("qolaba",)), store, adaptive=False)
    paused.pause()
    await paused.start()
    await witness.start()
    try:
        await until(lambda: len(reqs(sim, "qolaba", "status")) >= 3, what="the witness polling")
        store.add("evolink", ["evolink-queued"])  # a new task wakes the paused worker
        seen = len(reqs(sim, "qolaba", "status"))
        await until(lambda: len(reqs(sim, "qolaba", "status")) >= seen + 10, what="ten more witness polls")
        assert reqs(sim, "evolink") == []  # not one request reached the provider
        assert paused.status("evolink").paused
        paused.resume()
        await until(lambda: {r.task_id for r in reqs(sim, "evolink", "status")} >= {"evolink-running",
                                                                                   "evolink-queued"},
                    what="both tasks polled after resume")
        assert not paused.status("evolink").paused
    finally:
        await paused.stop()
        await witness.stop()


async def test_balance_is_fetched_and_counted(sim, store):
    store.add("evolink", ["evolink-done"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        s = engine.status("evolink")
        assert s.balance is not None and s.balance > 0
        assert len(reqs(sim, "evolink", "balance")) == 1
        assert s.requests == len(reqs(sim, "evolink"))
        assert s.credits_spent == 2.0
        assert sum(s.rpm) == s.requests and len(s.rpm) == 60
        await engine.poll_once()  # not due again for balance_interval
        assert len(reqs(sim, "evolink", "balance")) == 1
    finally:
        await engine.stop()


async def test_adaptive_polling_spends_fewer_requests_than_fixed(sim_factory, sim_task, sim_scenario, tmp_path):
    """Same tasks, same lifecycle: count status requests until all are done.  In
    virtual time (the simulator's clock is frozen and moved in steps together with
    the engine's), so the comparison holds however busy the machine is."""
    wall = 1_800_000_000.0  # the engine's wall clock at virtual time 0 (the scenario's epoch)

    def scenario():
        # 40 s jobs at different stages; evolink reports progress and an estimated time
        scenario = sim_scenario(*[sim_task("evolink", f"j{i}", "running", created=-30.0, start=-5.0 * i,
                                           end=40.0 - 5.0 * i) for i in range(4)])
        scenario.epoch = wall
        return scenario

    async def run(adaptive: bool, name: str) -> int:
        sim = sim_factory(scenario())
        store = Store(tmp_path / f"{name}.db")
        store.add("evolink", [f"j{i}" for i in range(4)])
        now = [0.0]
        engine = Engine(config_for(sim.base_url, providers=("evolink",), evolink={"poll_interval": 1.0}),
                        store, adaptive=adaptive, clock=lambda: now[0], wall=lambda: wall + now[0])
        try:
            while not all(t.terminal for t in store.tasks()) and now[0] < 600.0:
                sim.sim.clock.set(now[0])
                await engine.poll_due()
                now[0] += 0.5
        finally:
            await engine.stop()
        assert all(t.terminal for t in store.tasks()), f"{name}: not every task seen ended"
        store.close()
        return len(reqs(sim, "evolink", "status"))

    fixed = await run(False, "fixed")
    adaptive = await run(True, "adaptive")
    assert fixed >= 4 * 20  # about one poll a second per task, for 20-40 s each
    assert adaptive * 3 < fixed, (adaptive, fixed)


async def test_an_answer_the_store_refuses_does_not_sink_the_round(sim, tmp_path):
    class PickyStore(Store):
        def apply(self, updates, events=(), counters=None, discovered=False, *, health=None):
            updates = list(updates)
            if any(t.task_id == "evolink-failed" for t in updates):
                raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
            return super().apply(updates, events, counters, discovered, health=health)

    store = PickyStore(tmp_path / "picky.db")
    try:
        store.add("evolink", ["evolink-done", "evolink-failed", "evolink-running"])
        engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
        await engine.poll_once()
        await engine.stop()
        assert store.get("evolink:evolink-done").state == "succeeded"
        assert store.get("evolink:evolink-running").state == "running"
        assert store.get("evolink:evolink-failed").state == "unknown"
        events = store.events(provider="evolink")
        assert [(e.task_id, e.kind) for e in events] == [("evolink-failed", "bad_response")]
        assert store.counters()["evolink"]["requests"] == 4  # 3 tasks + the balance
    finally:
        store.close()


async def test_tight_budget_reaches_every_task_before_asking_any_again(sim_factory, sim_task, sim_scenario,
                                                                        store):
    tasks = [sim_task("qolaba", f"q{i:02d}", "running") for i in range(20)]
    sim = sim_factory(sim_scenario(*tasks))
    store.add("qolaba", [t.task_id for t in tasks])
    # 10/s with a burst of 1: far fewer requests than 20 tasks at a 0.1 s interval want
    engine = Engine(config_for(sim.base_url, providers=("qolaba",), qolaba={"rate_limit": "10/s"}), store)
    await engine.start()
    try:
        await until(lambda: len(reqs(sim, "qolaba")) >= 30, what="thirty requests")
    finally:
        await engine.stop()
    asked = [r.task_id for r in reqs(sim, "qolaba")]
    assert sorted(asked[:20]) == sorted(t.task_id for t in tasks)  # nobody starves
    assert not any(r.over_budget or r.status == 429 for r in reqs(sim, "qolaba"))


async def test_an_internal_error_is_logged_and_polling_goes_on(sim, tmp_path):
    class BrokenOnce(Store):  # a bug anywhere in a round (here: the task list read) must not stop polling
        armed = False

        def tasks(self):
            if self.armed:
                self.armed = False
                raise RuntimeError("boom")
            return super().tasks()

    store = BrokenOnce(tmp_path / "broken.db")
    try:
        store.add("evolink", ["evolink-done"])
        engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
        store.armed = True
        await engine.start()
        try:
            await until(lambda: store.get("evolink:evolink-done").state == "succeeded", what="recovery")
            internal = [e for e in store.events(provider="evolink") if e.kind == "internal"]
            assert len(internal) == 1 and "RuntimeError: boom" in internal[0].message
        finally:
            await engine.stop()
    finally:
        store.close()


async def test_retry_window_with_a_fake_clock(sim, sim_fault, store):
    """The engine's notion of time is injectable: a 30 s Retry-After is honoured to
    the second without waiting 30 s (the sim's own window is not checked here)."""

    class Clock:
        t = 1000.0

        def __call__(self) -> float:
            return self.t

    clock = Clock()
    sim.add(faults=[sim_fault("rate_limit", "qolaba", retry_after=30, count=1)])
    store.add("qolaba", ["qolaba-done"])
    engine = Engine(config_for(sim.base_url, providers=("qolaba",)), store, clock=clock,
                    wall=lambda: 1.7e9 + clock.t)
    try:
        await engine.poll_once()
        assert engine.status("qolaba").retry_at == pytest.approx(1.7e9 + 1000 + 30.25)
        clock.t += 30.0
        await engine.poll_once()
        assert len(reqs(sim, "qolaba")) == 1  # 0.25 s margin left
        clock.t += 0.5
        await engine.poll_once()
        assert [r.status for r in reqs(sim, "qolaba")] == [429, 200]
        assert store.get("qolaba:qolaba-done").state == "succeeded"
        assert engine.status("qolaba").state == "ok"
    finally:
        await engine.stop()


async def test_freepik_detail_waiting_for_budget_goes_before_the_next_list(sim, store):
    store.add("freepik", ["freepik-running", "freepik-done"])
    # one token at a time: the list takes it, the detail has to wait for the next one
    engine = Engine(config_for(sim.base_url, providers=("freepik",),
                               freepik={"rate_limit": "2/s", "concurrency": 1}), store)
    try:
        worker = engine.workers["freepik"]
        await engine.poll_once()  # a fresh engine probes with a status request, never the list
        assert [(r.endpoint, r.task_id) for r in reqs(sim, "freepik")] == [("status", "freepik-running")]
        await until(lambda: worker.budget.available >= 1, what="a token")
        await engine.poll_once()
        assert [r.endpoint for r in reqs(sim, "freepik")] == ["status", "list"]
        assert store.get("freepik:freepik-done").state == "unknown"  # not marked done without results
        await until(lambda: worker.budget.available >= 1, what="a token")
        await engine.poll_once()
        assert [(r.endpoint, r.task_id) for r in reqs(sim, "freepik")] == [
            ("status", "freepik-running"), ("list", None), ("status", "freepik-done")]
        done = store.get("freepik:freepik-done")
        assert done.state == "succeeded" and done.results
    finally:
        await engine.stop()


def test_the_provider_gets_the_configs_timeout_and_body_cap(store):
    # one table of defaults: what the config says (or its DEFAULT_*), never a figure of the engine's own
    from tui.config import DEFAULT_MAX_BODY, DEFAULT_TIMEOUT

    engine = Engine(config_for("http://127.0.0.1:9", providers=("evolink", "qolaba"),
                               evolink={"timeout": 7.5, "max_body": 2048}), store)
    evolink, qolaba = engine.workers["evolink"].provider, engine.workers["qolaba"].provider
    assert (evolink.deadline, evolink.max_body) == (7.5, 2048)
    assert (qolaba.deadline, qolaba.max_body) == (DEFAULT_TIMEOUT, DEFAULT_MAX_BODY)
