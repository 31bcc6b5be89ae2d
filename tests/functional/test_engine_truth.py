"""The engine tells the truth (issues 11 and 12): optional endpoints never gate a
task, no live task is silently stuck, permanent and transient errors are told
apart, the provider's state is honest, daily limits, slow requests, capped waits,
failed store writes and bounded discovery.

Every test runs the engine against the simulator on 127.0.0.1 (its clock frozen
unless said otherwise) and reads what happened from the simulator's request log
and from a real SQLite store: never from fixed sleeps.  The simulator's bodies
and strict mode follow the published documents (see tui/sim/scenario.py for
each variant's source: the Upscayl history rows of openapi.yaml carry no task id,
Qolaba's backend wraps every exception in 500 + FAILED ...).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tui.budget import DailyBudget
from tui.engine import DEGRADED, OPTIONAL_RETRY, Engine
from tui.model import NOT_FOUND
from tui.store import Store

from hostile_server import hostile, json_answer, slow_body  # noqa: F401 (fixture)
from test_engine_sim import config_for, reqs, until


class Clock:
    """The engine's monotonic clock, moved by hand."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def engine_on(clock: Clock, config, store) -> Engine:
    return Engine(config, store, clock=clock, wall=lambda: 1.8e9 + clock.t)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "tasks.db")
    yield s
    s.close()


FREEPIK_IDS = ["freepik-done", "freepik-failed", "freepik-running", "freepik-queued", "freepik-cancelled"]


def freepik_ends_right(store) -> None:
    ends = {i: store.get(f"freepik:{i}").state for i in FREEPIK_IDS}
    assert ends == {"freepik-done": "succeeded", "freepik-failed": "failed", "freepik-running": "succeeded",
                    "freepik-queued": "succeeded", "freepik-cancelled": "cancelled"}, ends


# ---------------------------------------------------------------- 1. an optional endpoint is never a gate


@pytest.mark.parametrize("fault", ["not_found", "malformed", "html_502", "wrong_shape", "server_error"])
async def test_a_broken_list_is_switched_off_and_every_task_still_ends(sim, sim_fault, store, fault):
    sim.add(faults=[sim_fault(fault, "freepik", endpoint="list")])
    store.add("freepik", FREEPIK_IDS)
    engine = Engine(config_for(sim.base_url, providers=("freepik",)), store)
    try:
        for _ in range(3):
            await engine.poll_once()
        sim.advance(200)
        for _ in range(2):
            await engine.poll_once()
        freepik_ends_right(store)
        # the list was asked once, then each task on its own, in the same round
        assert len(reqs(sim, "freepik", "list")) == 1
        asked = {r.task_id for r in reqs(sim, "freepik", "status")}
        assert asked == set(FREEPIK_IDS)
        off = [e for e in store.events(provider="freepik") if "switched off" in e.message]
        assert len(off) == 1 and "list" in off[0].message  # one event, naming the reason
        blob = store.counters()["freepik"]
        assert "list:text-to-image/hyperflux" in blob["endpoints_off"]
        assert engine.status("freepik").state == "ok"
    finally:
        await engine.stop()


async def test_a_switched_off_list_is_tried_again_rarely(sim, sim_fault, store):
    clock = Clock()
    sim.add(faults=[sim_fault("not_found", "freepik", endpoint="list", count=1)])
    store.add("freepik", ["freepik-running", "freepik-queued"])
    engine = engine_on(clock, config_for(sim.base_url, providers=("freepik",)), store)
    try:
        await engine.poll_once()
        await engine.poll_once()
        assert len(reqs(sim, "freepik", "list")) == 1
        clock.t += OPTIONAL_RETRY + 1
        await engine.poll_once()
        assert len(reqs(sim, "freepik", "list")) == 2  # tried again, and it works now
        assert [r.status for r in reqs(sim, "freepik", "list")] == [404, 200]
    finally:
        await engine.stop()


async def test_upscayl_is_asked_task_by_task_from_the_first_round(sim, store):
    """The published history rows (openapi.yaml ProcessingTask) carry no task id: the
    history can never answer for a tracked task, so Upscayl has no list; its statuses
    are asked from the very first round and the history never is."""
    store.add("upscayl", ["upscayl-done", "upscayl-failed", "upscayl-running"])
    engine = Engine(config_for(sim.base_url, providers=("upscayl",)), store)
    try:
        for n in range(6):
            await engine.poll_once()
            if n == 0:  # statuses in the very first round
                assert {r.task_id for r in reqs(sim, "upscayl", "status")} == {
                    "upscayl-done", "upscayl-failed", "upscayl-running"}
        assert store.get("upscayl:upscayl-done").state == "succeeded"
        assert store.get("upscayl:upscayl-failed").state == "failed"
        assert not reqs(sim, "upscayl", "list")
        assert not [e for e in store.events(provider="upscayl") if "switched off" in e.message]
        assert engine.status("upscayl").state == "ok"
    finally:
        await engine.stop()


async def test_a_list_that_names_no_tracked_task_is_switched_off(sim, store, monkeypatch):
    """A list that answers but never names a tracked task (as Upscayl's history would) is
    useless: asked a few times at most, switched off with one event, statuses carry on."""
    from tui.providers.freepik import Freepik

    monkeypatch.setattr(Freepik, "read_list", lambda self, kind, data, response: [])  # answers, names none
    store.add("freepik", FREEPIK_IDS)
    engine = Engine(config_for(sim.base_url, providers=("freepik",)), store)
    try:
        for _ in range(8):
            await engine.poll_once()
        assert 1 <= len(reqs(sim, "freepik", "list")) <= 3
        off = [e for e in store.events(provider="freepik") if "switched off" in e.message]
        assert len(off) == 1 and "named none" in off[0].message
        assert store.get("freepik:freepik-done").state == "succeeded"
        assert store.get("freepik:freepik-failed").state == "failed"
    finally:
        await engine.stop()


async def test_strict_server_every_provider_ends_right(sim_factory, sim_scenario, store):
    """A server that serves only each seed document's endpoint (no list, history or
    balance: 404): every provider's tasks still end, by status calls."""
    from tui.sim import sim_task

    ids = {p: [f"{p}-done", f"{p}-running"] for p in ("comfy", "upscayl", "qolaba", "freepik")}
    ids["evolink"] = ["task-unified-done", "task-unified-running"]  # the documented id format
    tasks = [sim_task(p, name, "succeeded" if name.endswith("done") else "running", end=30.0)
             for p, names in ids.items() for name in names]
    sim = sim_factory(sim_scenario(*tasks, strict=True))
    for p, names in ids.items():
        store.add(p, names)
    engine = Engine(config_for(sim.base_url), store)
    try:
        await engine.poll_once()
        sim.advance(200)
        await engine.poll_once()
        for p, names in ids.items():
            for name in names:
                t = store.get(f"{p}:{name}")
                assert t.state == "succeeded", (p, t)
        assert all(engine.status(p).state == "ok" for p in ids), engine.quota()
    finally:
        await engine.stop()


async def test_a_failing_balance_is_switched_off_once(sim, sim_fault, store):
    clock = Clock()
    sim.add(faults=[sim_fault("html_502", "evolink", endpoint="balance")])
    store.add("evolink", ["evolink-done", "evolink-running"])
    engine = engine_on(clock, config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        for _ in range(3):
            clock.t += 400  # past balance_interval: only the switch-off keeps it quiet
            await engine.poll_once()
        assert len(reqs(sim, "evolink", "balance")) == 1
        assert store.get("evolink:evolink-done").state == "succeeded"
        off = [e for e in store.events(provider="evolink") if "switched off" in e.message]
        assert len(off) == 1 and off[0].message.startswith("balance") and off[0].status == 502
    finally:
        await engine.stop()


async def test_the_engine_keeps_the_push_receivers_counts_in_the_counters_blob(sim, store):
    """tui.push stores its counts under "push" in the provider's counters blob; the
    engine's own writes of that blob carry them over (issue 18: quota shows them)."""
    clock = Clock()
    store.add("evolink", ["evolink-running"])
    push = {"received": 3, "accepted": 2, "rejected": {"bad_signature": 1}}
    store.apply([], (), {"evolink": {"push": push}})
    engine = engine_on(clock, config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        blob = store.counters()["evolink"]
        assert blob["requests"] >= 1  # the engine wrote the blob ...
        assert blob["push"] == push  # ... and the receiver's part is still there
    finally:
        await engine.stop()


# GET /v1/ai/text-to-image/hyperflux/{task-id}, 200 example (docs.freepik.com, "Get the status of
# one hyperflux task"; the seed's list document has the same task object)
FREEPIK_DONE = {"data": {"generated": ["https://openapi-generator.tech", "https://openapi-generator.tech"],
                         "task_id": "046b6c7f-0b8a-43b9-b35d-6489e6daee91", "status": "COMPLETED"}}


async def test_a_list_echoing_the_key_in_other_forms_is_switched_off_masked(hostile, store):
    """A hostile list answer: HTML-ish text echoing the key URL-encoded, base64 and in
    upper case.  The one switch-off event, the counters and the quota carry none of it."""
    import base64
    import json
    from urllib.parse import quote

    key = "fpk-Secret/Key+123456"
    echo = f"bad key {quote(key, safe='')} {base64.b64encode(key.encode()).decode()} {key.upper()}"
    task_id = FREEPIK_DONE["data"]["task_id"]
    hostile.serve(json_answer({"message": echo}, status=500), path="/v1/ai/text-to-image/hyperflux")
    hostile.serve(json_answer(FREEPIK_DONE), path=f"/v1/ai/text-to-image/hyperflux/{task_id}")
    store.add("freepik", [task_id, "00000000-0000-4000-8000-000000000001"])
    hostile.serve(json_answer({"data": {"task_id": "00000000-0000-4000-8000-000000000001",
                                        "status": "IN_PROGRESS", "generated": []}}),
                  path="/v1/ai/text-to-image/hyperflux/00000000-0000-4000-8000-000000000001")
    engine = Engine(config_for(hostile.base_url, providers=("freepik",), keys={"freepik": key}), store)
    try:
        await engine.poll_once()
        await engine.poll_once()
        assert store.get(f"freepik:{task_id}").state == "succeeded"
        off = [e for e in store.events(provider="freepik") if "switched off" in e.message]
        assert len(off) == 1
        shown = json.dumps([e.message for e in store.events(provider="freepik")]) + json.dumps(
            engine.quota()) + json.dumps(store.counters())
        for form in (key, quote(key, safe=""), base64.b64encode(key.encode()).decode(), key.upper()):
            assert form not in shown, form
    finally:
        await engine.stop()


# ---------------------------------------------------------------- 2. never silently stuck


async def test_failing_polls_are_counted_then_stalled_then_cleared(sim, sim_fault, store):
    sim.add(faults=[sim_fault("server_error", "evolink", task_id="evolink-running", status=500, count=3)])
    # the first (the probe) answers, and keeps answering: the provider is not backing off
    store.add("evolink", ["evolink-queued", "evolink-running"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        t = store.get("evolink:evolink-running")
        assert t.failed_polls == 1 and "HTTP 500" in t.last_error and t.last_error_at is not None
        assert t.stalled is None and t.poll_path == "/v1/tasks/evolink-running"
        await engine.poll_once()
        await engine.poll_once()
        t = store.get("evolink:evolink-running")
        assert t.failed_polls == 3 and t.stalled and t.stalled.startswith("polls failing since ")
        assert "HTTP 500" in t.stalled
        assert t.state == "unknown"  # a transient error never ends a task
        await engine.poll_once()  # the fault is spent: it answers again
        t = store.get("evolink:evolink-running")
        assert t.state == "running" and t.failed_polls == 0 and t.stalled is None and t.last_error is None
        with Store(store.path) as other:  # in SQLite, not only in memory
            assert other.get("evolink:evolink-running").failed_polls == 0
    finally:
        await engine.stop()


async def test_an_answer_in_the_same_state_clears_the_failed_polls(sim, sim_fault, store):
    store.add("evolink", ["evolink-running", "evolink-queued"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        sim.add(faults=[sim_fault("server_error", "evolink", task_id="evolink-queued", status=500, count=1)])
        await engine.poll_once()
        assert store.get("evolink:evolink-queued").failed_polls == 1
        await engine.poll_once()  # queued again: nothing else changed, the mark still goes
        t = store.get("evolink:evolink-queued")
        assert t.state == "queued" and t.failed_polls == 0 and t.last_error is None
    finally:
        await engine.stop()


async def test_a_task_that_does_not_move_is_stalled_with_the_reason(sim, store):
    clock = Clock()
    store.add("qolaba", ["qolaba-queued"])  # Celery PENDING, frozen sim: it never moves
    engine = engine_on(clock, config_for(sim.base_url, providers=("qolaba",)), store)
    try:
        provider = engine.workers["qolaba"].provider
        after = provider.stall_after
        await engine.poll_once()
        clock.t += after - 5
        await engine.poll_once()
        assert store.get("qolaba:qolaba-queued").stalled is None
        clock.t += 10
        await engine.poll_once()
        t = store.get("qolaba:qolaba-queued")
        assert t.stalled and t.stalled.startswith(f"no change for {int(after + 5) // 60}m")
        hint = provider.stall_hint(t)
        if hint:
            assert hint in t.stalled
        s = engine.status("qolaba")
        assert s.state == DEGRADED and "stalled" in s.cause
        sim.advance(200)  # it moves: the mark goes
        await engine.poll_once()
        t = store.get("qolaba:qolaba-queued")
        assert t.state == "succeeded" and t.stalled is None
        assert engine.status("qolaba").state == "ok"
    finally:
        await engine.stop()


async def test_the_stall_waits_for_four_times_what_tasks_like_it_take(sim, store, monkeypatch):
    from tui.providers import make_provider

    monkeypatch.setattr(type(make_provider("evolink", "k" * 8)), "stall_after", 10.0)
    clock = Clock()
    store.add("evolink", ["evolink-queued"])
    # what an earlier run learned of tasks like it (the sim's evolink-queued: kind image, gpt-image-1)
    store.save_counters("evolink", {"durations": {"image\tgpt-image-1": [40.0, 50.0, 60.0]}})
    engine = engine_on(clock, config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        task = store.get("evolink:evolink-queued")
        assert (task.kind, task.model) == ("image", "gpt-image-1")
        clock.t += 150  # past stall_after, not past 4 x 50 s
        await engine.poll_once()
        assert store.get("evolink:evolink-queued").stalled is None
        clock.t += 60
        await engine.poll_once()
        stalled = store.get("evolink:evolink-queued").stalled
        assert stalled.startswith("no change for 3m") and "tasks like it take ~50s" in stalled
    finally:
        await engine.stop()


# ---------------------------------------------------------------- 3. permanent vs transient


async def test_404_on_a_task_never_seen_alive_names_the_path_and_the_kinds(sim, store):
    store.add("comfy", ["comfy-done"], kind="image-relite")  # a typo in --kind
    engine = Engine(config_for(sim.base_url, providers=("comfy",)), store)
    try:
        await engine.poll_once()
        t = store.get("comfy:comfy-done")
        assert t.state == NOT_FOUND
        assert t.error.startswith("not found at /proxy/freepik/v1/ai/image-relite/comfy-done — wrong --kind?")
        assert "image-relight" in t.error  # the known kinds
    finally:
        await engine.stop()


async def test_re_adding_with_the_right_kind_polls_the_right_path(sim, store):
    store.add("comfy", ["comfy-done"], kind="image-relite")
    engine = Engine(config_for(sim.base_url, providers=("comfy",)), store)
    try:
        await engine.poll_once()
        assert store.get("comfy:comfy-done").state == NOT_FOUND
        store.add("comfy", ["comfy-done"], kind="image-relight")  # the store brings it back
        await engine.poll_once()
        t = store.get("comfy:comfy-done")
        assert t.state == "succeeded" and t.poll_path == "/proxy/freepik/v1/ai/image-relight/comfy-done"
    finally:
        await engine.stop()


async def test_a_re_added_kind_starts_its_failed_poll_count_afresh(sim, sim_fault, store):
    sim.add(faults=[sim_fault("server_error", "comfy", task_id="comfy-running", status=500, count=3)])
    store.add("comfy", ["comfy-queued", "comfy-running"], kind="image-relight")
    engine = Engine(config_for(sim.base_url, providers=("comfy",)), store)
    try:
        await engine.poll_once()
        await engine.poll_once()
        assert store.get("comfy:comfy-running").failed_polls == 2
        store.add("comfy", ["comfy-running"], kind="image-upscaler")  # polled elsewhere from now on
        await engine.poll_once()
        t = store.get("comfy:comfy-running")
        assert t.failed_polls == 1 and t.stalled is None  # not the third failure of the old route
        assert t.poll_path == "/proxy/freepik/v1/ai/image-upscaler/comfy-running"
    finally:
        await engine.stop()


async def test_a_task_seen_alive_then_404_is_simply_gone(sim, sim_fault, store):
    store.add("evolink", ["evolink-running"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        sim.add(faults=[sim_fault("not_found", "evolink", task_id="evolink-running")])
        await engine.poll_once()
        t = store.get("evolink:evolink-running")
        assert t.state == NOT_FOUND and "wrong --kind" not in t.error
    finally:
        await engine.stop()


async def test_another_4xx_about_a_task_ends_it_failed_with_the_message(sim, sim_fault, store):
    sim.add(faults=[sim_fault("server_error", "evolink", task_id="evolink-running", status=422)])
    store.add("evolink", ["evolink-running", "evolink-done"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        t = store.get("evolink:evolink-running")
        assert t.state == "failed" and t.error.startswith("request refused (HTTP 422)")
        assert store.get("evolink:evolink-done").state == "succeeded"
        before = len(reqs(sim, "evolink", "status"))
        await engine.poll_once()
        assert len(reqs(sim, "evolink", "status")) == before  # ended: never asked again
    finally:
        await engine.stop()


async def test_transient_and_bad_answers_never_end_a_task(sim, sim_fault, store):
    sim.add(faults=[sim_fault("server_error", "evolink", task_id="evolink-done", status=500),
                    sim_fault("wrong_shape", "evolink", task_id="evolink-running")])
    store.add("evolink", ["evolink-queued", "evolink-done", "evolink-running"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        for _ in range(4):
            await engine.poll_once()
        for name in ("evolink-done", "evolink-running"):
            t = store.get(f"evolink:{name}")
            assert t.state == "unknown" and t.failed_polls == 4 and t.stalled, t
    finally:
        await engine.stop()


async def test_qolaba_500_failed_is_not_a_failed_task(sim, store):
    """Qolaba's backend answers 500 + FAILED for any exception (a dead Redis too):
    not proof the task failed; it shows as a failed poll and is asked again."""
    store.add("qolaba", ["qolaba-done", "qolaba-failed"])  # the default variant: 500 + FAILED
    engine = Engine(config_for(sim.base_url, providers=("qolaba",)), store)
    try:
        await engine.poll_once()
        await engine.poll_once()
        t = store.get("qolaba:qolaba-failed")
        assert t.state == "unknown" and t.failed_polls == 2 and "HTTP 500" in t.last_error
        assert len([r for r in reqs(sim, "qolaba", "status") if r.task_id == "qolaba-failed"]) == 2
    finally:
        await engine.stop()


# ---------------------------------------------------------------- 4. the provider's state is honest


async def test_quota_says_degraded_while_a_status_answers_500(sim, sim_fault, store):
    sim.add(faults=[sim_fault("server_error", "evolink", task_id="evolink-running", status=500)])
    store.add("evolink", ["evolink-done", "evolink-running", "evolink-queued"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        row = {q["provider"]: q for q in engine.quota()}["evolink"]
        assert row["state"] == "degraded" and "polls failing" in row["cause"] and "HTTP 500" in row["cause"]
        blob = store.counters()["evolink"]
        assert blob["state"] == "degraded" and blob["cause"] == row["cause"]
        await engine.poll_once()
        assert engine.status("evolink").state == "degraded"  # still failing: still not ok
    finally:
        await engine.stop()
    # a fresh `tasktui quota` (a new engine, no request) reads the tasks' stored health
    fresh = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    row = {q["provider"]: q for q in fresh.quota()}["evolink"]
    assert row["state"] == "degraded" and "polls failing" in row["cause"]
    await fresh.stop()


# ---------------------------------------------------------------- 5. daily limits


async def test_freepik_daily_limit_is_a_second_budget_per_kind(sim, store, monkeypatch):
    from tui.providers.freepik import Freepik

    monkeypatch.setattr(Freepik, "daily_limits", {"text-to-image/hyperflux": 3})
    store.add("freepik", ["freepik-running", "freepik-queued", "freepik-done"])
    engine = Engine(config_for(sim.base_url, providers=("freepik",)), store)
    try:
        for _ in range(4):
            await engine.poll_once()
        assert len(reqs(sim, "freepik")) == 3  # the day's three, then nothing
        daily = store.counters()["freepik"]["daily"]["text-to-image/hyperflux"]
        assert daily["limit"] == 3 and daily["used"] == 3 and daily["reset_at"] > time.time()
        live = [t for t in store.tasks() if not t.terminal]
        assert live and all(t.stalled and t.stalled.startswith(
            "daily limit of 3 requests reached for text-to-image/hyperflux; resumes ") for t in live)
    finally:
        await engine.stop()


async def test_daily_limits_can_be_turned_off(sim, store, monkeypatch):
    from tui.providers.freepik import Freepik

    monkeypatch.setattr(Freepik, "daily_limits", {"text-to-image/hyperflux": 1})
    store.add("freepik", ["freepik-running", "freepik-queued"])
    engine = Engine(config_for(sim.base_url, providers=("freepik",), freepik={"daily_limits": False}), store)
    try:
        for _ in range(3):
            await engine.poll_once()
        assert len(reqs(sim, "freepik")) >= 3
        assert "daily" not in store.counters()["freepik"]
    finally:
        await engine.stop()


def test_daily_budget_resets_at_utc_midnight():
    wall = Clock(86400.0 * 20000 + 100)
    d = DailyBudget(2, wall)
    assert d.take() and d.take() and not d.take()
    assert d.reset_at == 86400.0 * 20001
    wall.t = 86400.0 * 20001 + 1
    assert d.available == 2 and d.take()
    other = DailyBudget(2, wall)
    other.restore(1, 86400.0 * 20002)
    assert other.available == 1
    other.restore(2, 86400.0 * 20001)  # yesterday's count does not carry over
    assert other.available == 1


# ---------------------------------------------------------------- 6. one slow request never holds the others


@pytest.mark.parametrize("slow_first", [False, True])
async def test_a_trickling_status_does_not_keep_the_others_out_of_the_store(sim, sim_fault, store, slow_first):
    """The slow task last, or first (then it is a fresh engine's probe: after a few
    seconds another task is probed alongside it, and the rest follow that answer)."""
    sim.add(faults=[sim_fault("slow", "evolink", task_id="evolink-running", endpoint="status", delay=120.0)])
    fast = ["evolink-done", "evolink-failed", "evolink-queued"]
    store.add("evolink", ["evolink-running", *fast] if slow_first else [*fast, "evolink-running"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",), evolink={"timeout": 300.0}), store)
    round_ = asyncio.ensure_future(engine.poll_once())
    try:
        with Store(store.path) as reader:  # another process's view: only what was written
            def others_stored() -> bool:
                reader.sync()
                return (reader.get("evolink:evolink-done").state == "succeeded"
                        and reader.get("evolink:evolink-failed").state == "failed"
                        and reader.get("evolink:evolink-queued").state == "queued")

            await until(others_stored, what="the fast answers in the store")
        assert not round_.done()  # the slow one is still out
        assert not reqs(sim, "evolink", "status") or all(
            r.task_id != "evolink-running" for r in reqs(sim, "evolink", "status"))
    finally:
        round_.cancel()
        await asyncio.gather(round_, return_exceptions=True)
        await engine.stop()


async def test_a_round_gives_up_a_request_at_its_deadline(sim, sim_fault, store, monkeypatch):
    sim.add(faults=[sim_fault("slow", "evolink", task_id="evolink-running", endpoint="status", delay=120.0)])
    store.add("evolink", ["evolink-done", "evolink-running"])
    engine = Engine(config_for(sim.base_url, providers=("evolink",), evolink={"timeout": 300.0}), store)
    engine.workers["evolink"].round_deadline = 1.5  # seconds, instead of 2 x timeout + 5
    try:
        await engine.poll_once()  # returns at the deadline, not after 120 s
        t = store.get("evolink:evolink-running")
        assert t.failed_polls == 1 and "deadline" in t.last_error
        assert store.get("evolink:evolink-done").state == "succeeded"
    finally:
        await engine.stop()


# ---------------------------------------------------------------- 7. no permanent lockout


async def test_a_huge_retry_after_is_capped_and_r_lets_one_request_through(sim, sim_fault, store):
    clock = Clock()
    sim.add(faults=[sim_fault("rate_limit", "evolink", retry_after=1e9, count=1)])
    store.add("evolink", ["evolink-done", "evolink-running"])
    engine = engine_on(clock, config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        s = engine.status("evolink")
        wall_now = 1.8e9 + clock.t
        assert s.state == "rate_limited" and s.retry_at <= wall_now + 3600 + 1
        await engine.poll_once()
        assert len(reqs(sim, "evolink")) == 1  # the (capped) wait is honoured
        engine.refresh_now()  # the `r` key
        await engine.poll_once()
        assert [r.status for r in reqs(sim, "evolink")][:2] == [429, 200]
        assert engine.status("evolink").state == "ok"  # the answer decides
        assert store.get("evolink:evolink-done").state == "succeeded"
    finally:
        await engine.stop()


async def test_r_on_a_provider_that_still_refuses_honours_the_new_answer(sim, sim_fault, store):
    clock = Clock()
    sim.add(faults=[sim_fault("rate_limit", "evolink", retry_after=600, count=2)])
    store.add("evolink", ["evolink-done", "evolink-running"])
    engine = engine_on(clock, config_for(sim.base_url, providers=("evolink",)), store)
    try:
        await engine.poll_once()
        engine.refresh_now()
        await engine.poll_once()
        assert [r.status for r in reqs(sim, "evolink")] == [429, 429]  # one request, no more
        assert engine.status("evolink").state == "rate_limited"
        await engine.poll_once()
        assert len(reqs(sim, "evolink")) == 2
        engine.refresh_now(["evolink:evolink-done"])  # an add or a webhook hint: no bypass
        await engine.poll_once()
        assert len(reqs(sim, "evolink")) == 2
    finally:
        await engine.stop()


async def test_a_saved_wait_of_decades_is_capped_on_restart(sim, store):
    store.save_counters("evolink", {"state": "rate_limited", "retry_at": time.time() + 3e9})
    engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
    try:
        assert engine.status("evolink").retry_at <= time.time() + 3600 + 5
    finally:
        await engine.stop()


# ---------------------------------------------------------------- 8. a failed store write


async def test_answers_are_kept_when_the_store_cannot_write(sim, sim_fault, tmp_path):
    from tui import store as store_module

    WriteError = getattr(store_module, "StoreWriteError", store_module.StoreError)

    class FullDisk(Store):
        full = False

        def apply(self, *args, **kwargs):
            if self.full:
                raise WriteError("database or disk is full")
            return super().apply(*args, **kwargs)

    store = FullDisk(tmp_path / "full.db")
    try:
        store.add("evolink", ["evolink-done", "evolink-running"])
        engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
        store.full = True
        await engine.poll_once()
        assert engine.store_problem and "disk is full" in engine.store_problem
        assert store.get("evolink:evolink-done").state == "unknown"  # nothing written ...
        # ... but nothing lost: the next round fails to ask evolink-done, yet its
        # earlier answer is written as soon as the store works again
        sim.add(faults=[sim_fault("server_error", "evolink", task_id="evolink-done", status=503, count=1)])
        store.full = False
        engine.refresh_now()
        await engine.poll_once()
        assert engine.store_problem is None
        done = store.get("evolink:evolink-done")
        assert done.state == "succeeded" and done.results
        assert store.counters()["evolink"]["requests"] >= 4
    finally:
        await engine.stop()
        store.close()


async def test_kept_answers_and_later_failures_are_written_in_order(sim, sim_fault, tmp_path):
    from tui import store as store_module

    WriteError = getattr(store_module, "StoreWriteError", store_module.StoreError)

    class FullDisk(Store):
        full = False

        def apply(self, *args, **kwargs):
            if self.full:
                raise WriteError("database or disk is full")
            return super().apply(*args, **kwargs)

    store = FullDisk(tmp_path / "full.db")
    try:
        store.add("evolink", ["evolink-queued", "evolink-running"])
        engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
        store.full = True
        await engine.poll_once()  # running, 50 %: kept in memory
        sim.add(faults=[sim_fault("server_error", "evolink", task_id="evolink-running", status=500, count=2)])
        await engine.poll_once()  # then a failed poll of it: kept too, newer than the answer
        store.full = False
        await engine.poll_once()  # another failed poll; everything kept is written first
        t = store.get("evolink:evolink-running")
        assert t.state == "running" and t.progress == 50  # the kept answer
        assert t.failed_polls == 2 and "HTTP 500" in t.last_error  # and both failures after it
        events = store.events(provider="evolink")
        assert [e.status for e in events if e.task_id == "evolink-running"] == [500, 500]  # kept events too
        sim.advance(100)
        await engine.poll_once()  # a fresh answer clears it
        t = store.get("evolink:evolink-running")
        assert t.state == "succeeded" and t.failed_polls == 0 and t.last_error is None
    finally:
        await engine.stop()
        store.close()


async def test_a_kept_failure_does_not_outlive_a_later_kept_answer(sim, sim_fault, tmp_path):
    from tui import store as store_module

    WriteError = getattr(store_module, "StoreWriteError", store_module.StoreError)

    class FullDisk(Store):
        full = False

        def apply(self, *args, **kwargs):
            if self.full:
                raise WriteError("attempt to write a readonly database")
            return super().apply(*args, **kwargs)

    store = FullDisk(tmp_path / "ro.db")
    try:
        store.add("evolink", ["evolink-queued", "evolink-running"])
        sim.add(faults=[sim_fault("server_error", "evolink", task_id="evolink-running", status=500, count=1)])
        engine = Engine(config_for(sim.base_url, providers=("evolink",)), store)
        store.full = True
        await engine.poll_once()  # a failed poll: kept
        await engine.poll_once()  # then an answer: kept, newer
        assert "readonly" in engine.store_problem
        store.full = False
        engine.refresh_now()
        await engine.poll_once()
        t = store.get("evolink:evolink-running")
        assert t.state == "running" and t.failed_polls == 0 and t.last_error is None
    finally:
        await engine.stop()
        store.close()


# ---------------------------------------------------------------- 9. discovery has a bound


async def test_discovery_is_capped_per_round_and_in_total(sim, sim_task, store):
    from tui.config import parse_config

    sim.add([sim_task("freepik", f"found-{i}", "running") for i in range(12)])
    text = (f'[engine]\ndiscover_max_round = 4\ndiscover_max_total = 6\n\n'
            f'[providers.freepik]\napi_key = "sim-key-freepik"\nbase_url = "{sim.base_url}"\n'
            f'poll_interval = 0.1\nrate_limit = "600/s"\ndiscover = true\n')
    store.add("freepik", ["freepik-running"])
    engine = Engine(parse_config(text), store)
    try:
        await engine.poll_once()
        assert len(store) == 1 + 4
        await engine.poll_once()
        await engine.poll_once()
        assert len(store) == 1 + 6
        caps = [e.message for e in store.events(provider="freepik") if "discovery" in e.message]
        assert len(caps) == 2  # once per cap
    finally:
        await engine.stop()
