"""Scenarios: files, validation, deterministic generation, the test builders."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tui.sim import Scenario, generate, sim_task, small_scenario
from tui.sim.scenario import PROVIDERS, parse_rate
from tui.sim.state import lifecycle

TOML = """
seed = 3

[providers.evolink]
key = "ev-key"
[providers.upscayl]
key = "up-key"
variant = "openapi"
budget = "100/h"

[[tasks]]
provider = "evolink"
task_id = "task-unified-1"
kind = "video"
created = -5
start = 0
end = 20
credits = 3.5
results = ["https://example.com/v.mp4"]

[[tasks]]
provider = "upscayl"
task_id = "u-1"
end_state = "failed"
error = "too big"

[[faults]]
kind = "rate_limit"
provider = "upscayl"
start = 2
end = 4
retry_after = 9
"""


def test_load_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(TOML)
    sc = Scenario.load(path)
    assert sc.key("evolink") == "ev-key" and sc.providers["upscayl"].budget == "100/h"
    ev, up = sc.tasks
    assert (ev.kind, ev.created, ev.end, ev.credits) == ("video", -5, 20, 3.5)
    assert (up.end_state, up.error, up.start, up.end) == ("failed", "too big", 0, 10)
    assert sc.faults[0].retry_after == 9 and sc.faults[0].active(3) and not sc.faults[0].active(4)


def test_json_round_trip(tmp_path):
    sc = generate(seed=5, n_tasks=30)
    path = tmp_path / "s.json"
    sc.dump(path)
    assert Scenario.load(path) == sc


@pytest.mark.parametrize("bad,word", [
    ({"tasks": [{"provider": "nobody", "task_id": "x"}]}, "nobody"),
    ({"tasks": [{"provider": "comfy", "task_id": "x", "start": 5, "end": 1}]}, "created <= start <= end"),
    ({"tasks": [{"provider": "comfy", "task_id": "x"}, {"provider": "comfy", "task_id": "x"}]}, "duplicate"),
    ({"providers": {"upscayl": {"key": "k", "variant": "weird"}}}, "variant"),
    ({"providers": {"upscayl": {"key": "k", "budget": "lots"}}}, "rate must look like"),
    ({"faults": [{"kind": "meteor"}]}, "kind"),
    ({"tasks": [{"provider": "comfy", "task_id": "x", "colour": "red"}]}, "colour"),
])
def test_validation_names_the_problem(bad, word):
    with pytest.raises(ValidationError, match=word):
        Scenario.model_validate(bad)


def test_parse_rate():
    assert parse_rate("100/h") == (100, 3600)
    assert parse_rate("10/s") == (10, 1)
    assert parse_rate(" 60 / min ") == (60, 60)
    with pytest.raises(ValueError):
        parse_rate("fast")


def test_generate_is_deterministic():
    assert generate(seed=42, n_tasks=40) == generate(seed=42, n_tasks=40)
    assert generate(seed=42, n_tasks=40) != generate(seed=43, n_tasks=40)


def test_generated_mix():
    sc = generate(seed=7, n_tasks=50)
    assert {t.provider for t in sc.tasks} == set(PROVIDERS) == set(sc.providers)
    for p in PROVIDERS:
        assert any(t.end_state == "failed" for t in sc.tasks_of(p)), p
    assert len({sc.key(p) for p in PROVIDERS}) == 5
    assert sum(t.credits for t in sc.tasks) > 0
    # a rate-limit episode on one provider, and some other trouble
    kinds = [f.kind for f in sc.faults]
    assert sum(k.startswith("rate_limit") for k in kinds) == 1
    assert "server_error" in kinds and "html_502" in kinds
    # hostile provider text is in the mix (clients must clean it)
    assert any(t.error and "\x1b" in t.error for t in sc.tasks)
    # one finished task expires at t=5
    assert sum(t.expires is not None for t in sc.tasks) == 1


def test_generated_things_happen_within_five_seconds():
    sc = generate(seed=7, n_tasks=50)
    changed = [t for t in sc.tasks if lifecycle(t, 0) != lifecycle(t, 5)]
    states_at_0 = {(lifecycle(t, 0) or ("absent",))[0] for t in sc.tasks}
    assert {"queued", "running", "succeeded", "failed"} <= states_at_0
    assert len([t for t in changed if (lifecycle(t, 0) or ("x",))[0] != (lifecycle(t, 5) or ("x",))[0]]) >= 3
    assert any(f.kind.startswith("rate_limit") and f.start <= 5 for f in sc.faults)


def test_generate_options():
    sc = generate(seed=1, n_tasks=10, providers=("evolink", "upscayl"), faults=False, budgets={"upscayl": "100/h"})
    assert set(sc.providers) == {"evolink", "upscayl"} and sc.faults == []
    assert sc.providers["upscayl"].budget == "100/h"
    assert generate(seed=1, n_tasks=0).tasks == []


@pytest.mark.parametrize("state", ["queued", "running", "succeeded", "failed", "cancelled"])
def test_sim_task_is_in_the_asked_state(state):
    t = sim_task("freepik", "x", state, at=100)
    assert lifecycle(t, 100)[0] == state
    assert lifecycle(t, 100 + 200)[0] == t.end_state


def test_sim_task_expired_and_overrides():
    assert lifecycle(sim_task("evolink", "x", "expired"), 0) is None
    t = sim_task("evolink", "x", "running", model="veo3-fast", credits=9)
    assert (t.model, t.credits) == ("veo3-fast", 9)
    with pytest.raises(ValueError):
        sim_task("evolink", "x", "sleeping")


def test_progress_curves():
    from tui.sim import SimTask

    base = dict(provider="evolink", task_id="x", created=0, start=0, end=100)

    lin = SimTask(**base, curve="linear")
    steps = SimTask(**base, curve="steps")
    stall = SimTask(**base, curve="stall")
    ease = SimTask(**base, curve="ease")
    failed = SimTask(**base, end_state="failed")
    assert lifecycle(lin, 50) == ("running", 50)
    assert lifecycle(steps, 60)[1] == 50
    assert lifecycle(stall, 90)[1] == pytest.approx(70)
    assert lifecycle(ease, 25)[1] < 25 and lifecycle(ease, 75)[1] > 75
    assert lifecycle(failed, 100) == ("failed", 60)  # a failure stops short
    assert lifecycle(lin, 100) == ("succeeded", 100)


def test_small_scenario_is_what_conftest_documents():
    sc = small_scenario()
    ids = {(t.provider, t.task_id) for t in sc.tasks}
    for p in PROVIDERS:
        assert sc.key(p) == f"sim-key-{p}"
        for name, state in (("queued", "queued"), ("running", "running"), ("done", "succeeded"),
                            ("failed", "failed")):
            assert (p, f"{p}-{name}") in ids
            assert lifecycle(next(t for t in sc.tasks if t.task_id == f"{p}-{name}"), 0)[0] == state
    assert ("freepik", "freepik-cancelled") in ids and ("evolink", "evolink-expired") in ids
    assert sc.faults == []
