"""Records, Retry-After violations, budgets, fault scheduling, the clock and
the /_sim control endpoints."""

from __future__ import annotations

import httpx
import pytest

from tui.sim import SimClock

EV = "/v1/tasks/evolink-running"


def get(sim, path: str = EV, provider: str = "evolink") -> httpx.Response:
    h = {"upscayl": {"X-API-Key": sim.key("upscayl")}}.get(provider, {"Authorization": f"Bearer {sim.key(provider)}"})
    return httpx.get(f"{sim.base_url}{path}", headers=h, verify=False)


def upscayl(sim, task_id: str = "upscayl-running") -> httpx.Response:
    return httpx.post(f"{sim.base_url}/get-task-status", json={"data": {"taskId": task_id}},
                      headers={"X-API-Key": sim.key("upscayl")}, verify=False)


def test_every_request_is_recorded(sim):
    get(sim)
    httpx.get(f"{sim.base_url}{EV}", headers={"Authorization": "Bearer nope"}, verify=False)
    sim.advance(5)
    upscayl(sim, "upscayl-done")
    recs = sim.requests
    assert [(r.provider, r.method, r.path, r.task_id, r.status, r.auth_ok, r.endpoint) for r in recs] == [
        ("evolink", "GET", EV, "evolink-running", 200, True, "status"),
        ("evolink", "GET", EV, "evolink-running", 401, False, "status"),
        ("upscayl", "POST", "/get-task-status", "upscayl-done", 200, True, "status"),
    ]
    assert [r.time for r in recs] == [0, 0, 5]
    assert recs[2].wall - recs[0].wall == 5


def test_requests_inside_an_announced_retry_after_window_are_violations(sim, sim_fault):
    sim.add(faults=[sim_fault("rate_limit", "evolink", retry_after=10, count=1)])
    first = get(sim)
    assert first.status_code == 429 and first.headers["retry-after"] == "10"
    sim.advance(4)
    assert get(sim).status_code == 200  # the fault is used up, but the client was told to wait 10 s
    get(sim, "/v1/tasks/evolink-done")
    assert get(sim, "/customers/balance", "comfy").status_code == 200  # another provider: no window
    sim.advance(6)
    get(sim)  # t=10: the wait is over
    v = sim.violations
    assert [(x.provider, x.time, x.window_end, x.early_by) for x in v] == [
        ("evolink", 4, 10, 6), ("evolink", 4, 10, 6)]
    assert [r.violation for r in sim.requests] == [False, True, True, False, False]


@pytest.mark.parametrize("kind,provider,wait", [
    ("rate_limit_text", "evolink", 60),  # fallback_suggestion "retry after 60 seconds"
    ("rate_limit_text", "upscayl", 3600),  # "Try again in 1 hour"
])
def test_a_wait_given_only_in_the_body_opens_a_window_too(sim, sim_fault, kind, provider, wait):
    sim.add(faults=[sim_fault(kind, provider, count=1)])
    call = upscayl if provider == "upscayl" else get
    assert call(sim).status_code == 429
    sim.advance(wait - 1)
    call(sim)
    sim.advance(1)
    call(sim)
    assert [v.time for v in sim.violations] == [wait - 1]


def test_bare_429_announces_nothing(sim, sim_fault):
    sim.add(faults=[sim_fault("rate_limit_bare", "evolink", count=1)])
    assert get(sim).status_code == 429
    get(sim)
    assert sim.violations == []


def test_window_scales_with_clock_speed(sim_factory, sim_fault, sim_scenario, sim_task):
    clock = SimClock(speed=10)  # 10 sim s per real second: "wait 3 s" covers 30 sim s
    sim = sim_factory(sim_scenario(sim_task("evolink", "e", "running"),
                                   faults=[sim_fault("rate_limit", "evolink", retry_after=3, count=1)]), clock=clock)
    get(sim, "/v1/tasks/e")
    t429 = sim.requests[0].time
    sim.advance(20)
    get(sim, "/v1/tasks/e")
    sim.advance(20)
    get(sim, "/v1/tasks/e")
    assert len(sim.violations) == 1
    assert sim.violations[0].window_end == pytest.approx(t429 + 30)


def test_budget_answers_429_once_spent(sim_factory, sim_scenario, sim_task):
    sim = sim_factory(sim_scenario(sim_task("upscayl", "u", "running"), upscayl={"budget": "3/m"}))
    codes = [upscayl(sim, "u").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    over = upscayl(sim, "u")  # still over; and inside the announced window
    body = over.json()
    assert over.headers["retry-after"] == "60"
    assert body == {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests. Try again in 60 seconds"}
    assert [r.over_budget for r in sim.requests] == [False] * 3 + [True] * 3
    assert len(sim.violations) == 2
    sim.advance(60)
    assert upscayl(sim, "u").status_code == 200  # the minute rolled over


def test_budgets_are_per_provider(sim_factory, sim_scenario, sim_task):
    sim = sim_factory(sim_scenario(sim_task("upscayl", "u", "running"), sim_task("evolink", "e", "running"),
                                   upscayl={"budget": "1/h"}))
    assert [upscayl(sim, "u").status_code for _ in range(2)] == [200, 429]
    assert [get(sim, "/v1/tasks/e").status_code for _ in range(5)] == [200] * 5


def test_fault_scheduling_window_count_task_and_endpoint(sim, sim_fault):
    sim.add(faults=[
        sim_fault("server_error", "evolink", start=10, end=20),
        sim_fault("not_found", "evolink", task_id="evolink-done", count=2),
        sim_fault("quota", None, endpoint="balance"),  # any provider, balance calls only
    ])
    assert get(sim).status_code == 200  # before the 5xx window
    assert [get(sim, "/v1/tasks/evolink-done").status_code for _ in range(3)] == [404, 404, 200]
    assert get(sim, "/v1/credits").status_code == 402
    assert get(sim, "/customers/balance", "comfy").status_code == 402
    sim.advance(10)
    assert get(sim).status_code == 500
    assert get(sim, "/v1/credits").status_code == 500  # the first matching fault wins
    sim.advance(10)
    assert get(sim).status_code == 200  # the window closed
    assert [r.fault for r in sim.requests] == [None, "not_found", "not_found", None, "quota", "quota",
                                                "server_error", "server_error", None]


def test_lifecycle_follows_the_clock(sim):
    def status():
        return get(sim).json()["status"], get(sim).json()["progress"]

    assert status() == ("processing", 50)
    sim.advance(15)
    assert status() == ("processing", 75)
    sim.clock.set(30)
    assert status() == ("completed", 100)
    sim.clock.set(-31)  # before it started
    assert status() == ("pending", 0)
    sim.clock.set(-41)  # before it was created
    assert get(sim).status_code == 404


def test_clock_speed_and_set():
    ticks = iter([0.0, 0.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0])
    clock = SimClock(speed=10, timer=lambda: next(ticks))
    assert clock.now() == 0
    assert clock.now() == 20
    clock.advance(5)
    assert clock.now() == 35
    clock.set(100)
    assert clock.now() == 100
    with pytest.raises(ValueError):
        SimClock(speed=-1)
    frozen = SimClock(speed=0)
    assert frozen.now() == frozen.now() == 0 and frozen.scale == 1


def test_control_endpoints(sim):
    base = sim.base_url
    get(sim)
    assert [r["path"] for r in httpx.get(f"{base}/_sim/requests").json()["requests"]] == [EV]
    r = httpx.post(f"{base}/_sim/clock", json={"advance": 12.5}).json()
    assert r["time"] == 12.5 and r["speed"] == 0
    assert httpx.post(f"{base}/_sim/clock", json={"set": 30}).json()["time"] == 30
    assert httpx.post(f"{base}/_sim/clock", json="nope").status_code == 400
    added = httpx.post(f"{base}/_sim/tasks", json={
        "relative": True,
        "tasks": [{"provider": "evolink", "task_id": "late", "created": 0, "start": 5, "end": 10}],
        "faults": [{"kind": "rate_limit", "provider": "evolink", "task_id": "late", "count": 1, "retry_after": 2}],
    })
    assert added.json()["added"] == 1
    assert get(sim, "/v1/tasks/late").status_code == 429
    httpx.post(f"{base}/_sim/clock", json={"advance": 5})
    assert get(sim, "/v1/tasks/late").json()["status"] == "processing"  # created at 30, started at 35
    assert [v["task_id"] for v in httpx.get(f"{base}/_sim/violations").json()["violations"]] == []
    bad = httpx.post(f"{base}/_sim/tasks", json={"tasks": [{"provider": "nobody", "task_id": "x"}]})
    assert bad.status_code == 400 and "nobody" in bad.json()["error"]
    n = len(sim.scenario.tasks)
    bad = httpx.post(f"{base}/_sim/tasks", json={"tasks": [{"provider": "comfy", "task_id": "y"}],
                                                 "providers": {"upscayl": {"key": "k", "variant": "odd"}}})
    assert bad.status_code == 400 and "variant" in bad.json()["error"]
    assert len(sim.scenario.tasks) == n  # nothing half-applied
    scenario = httpx.get(f"{base}/_sim/scenario").json()
    assert any(t["task_id"] == "late" for t in scenario["tasks"])
    assert httpx.post(f"{base}/_sim/reset", json={"time": 0}).json() == {"ok": True, "time": 0}
    assert sim.requests == [] and sim.now() == 0


def test_key_rotation_at_runtime(sim):
    from tui.sim import ProviderSpec

    old = sim.key("evolink")
    sim.add(providers={"evolink": ProviderSpec(key="new-key")})
    assert httpx.get(f"{sim.base_url}{EV}", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert httpx.get(f"{sim.base_url}{EV}", headers={"Authorization": "Bearer new-key"}).status_code == 200


def test_on_request_hook_sees_each_record(sim):
    seen = []
    sim.sim.on_request = seen.append
    get(sim)
    assert [r.task_id for r in seen] == ["evolink-running"]
