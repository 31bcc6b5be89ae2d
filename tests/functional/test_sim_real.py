"""The simulator's published variants (beyond the seeds) and its strict mode.

Each body is checked against a model written here from the published source
named beside it, not from the simulator or the provider clients.  Real HTTP on
127.0.0.1, the sim clock frozen."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictInt, StrictStr, \
    ValidationError, model_validator

from tui.sim import Scenario, generate
from tui.sim.scenario import POLL_KINDS, split_variant
from tui.sim.serve import STRICT_ENV, strict_wanted

ROOT = Path(__file__).resolve().parents[2]
UUID_A = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"
UUID_B = "146b6c7f-0b8a-43b9-b35d-6489e6daee92"
UUID_C = "246b6c7f-0b8a-43b9-b35d-6489e6daee93"


def headers(sim, provider: str) -> dict[str, str]:
    key = sim.key(provider)
    return {"upscayl": {"X-API-Key": key}, "freepik": {"x-freepik-api-key": key}}.get(
        provider, {"Authorization": f"Bearer {key}"})


# ---------------------------------------------------------------- comfy


class ComfyTaskResponse(BaseModel):
    """ComfyUI comfy_api_nodes/apis/magnific.py ``TaskResponse`` (2026): unwraps ``data``
    when it is a dict; ``status`` read with AliasChoices("status", "task_status")."""

    task_id: str = Field(...)
    status: str = Field(validation_alias=AliasChoices("status", "task_status"))
    generated: list[str] | None = Field(None)

    @model_validator(mode="before")
    @classmethod
    def unwrap_data(cls, values: dict) -> dict:
        if "data" in values and isinstance(values["data"], dict):
            return values["data"]
        return values


# Comfy-Org/ComfyUI comfy_api_nodes/util/client.py (commit 5e14d79): the poller's words,
# compared after lower-casing; anything else counts as "active" (running).
COMFY_DONE = {"succeeded", "succeed", "success", "completed", "finished", "done", "complete"}
COMFY_FAILED = {"cancelled", "canceled", "canceling", "fail", "failed", "error"}
COMFY_QUEUED = {"created", "queued", "queueing", "submitted", "initializing", "wait", "in_queue"}


def comfy_get(client, sim, kind: str, task_id: str) -> httpx.Response:
    return client.get(f"/proxy/freepik/v1/ai/{kind}/{task_id}", headers=headers(sim, "comfy"))


def test_comfy_task_status_and_lower_words_read_as_comfyui_reads_them(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(
        sim_task("comfy", UUID_A, "succeeded", variant="task_status"),
        sim_task("comfy", UUID_B, "running", variant="bare+task_status+lower"),
        sim_task("comfy", UUID_C, "cancelled", variant="lower"),
        sim_task("comfy", "c-queued", "queued", variant="lower"),
        sim_task("comfy", "c-failed", "failed", variant="lower"),
        sim_task("comfy", "c-plain", "succeeded"),
    ))
    with httpx.Client(base_url=sim.base_url) as client:
        a, b, c, q, f, plain = (comfy_get(client, sim, "image-relight", i).json()
                                for i in (UUID_A, UUID_B, UUID_C, "c-queued", "c-failed", "c-plain"))
    # wrapped, task_status instead of status, enum words
    assert set(a) == {"data"} and "status" not in a["data"] and a["data"]["task_status"] == "COMPLETED"
    assert ComfyTaskResponse.model_validate(a).generated == [f"https://sim.tasktui.invalid/comfy/{UUID_A}/0.png"]
    # bare (style-transfer's documented 200) + task_status + lower-case: a running word the poller calls active
    assert "data" not in b and b["task_status"] == "in_progress" and b["task_id"] == UUID_B
    running = ComfyTaskResponse.model_validate(b).status
    assert running not in COMFY_DONE | COMFY_FAILED | COMFY_QUEUED
    words = {ComfyTaskResponse.model_validate(x).status: x for x in (c, q, f)}
    assert set(words) == {"cancelled", "created", "failed"}
    assert "cancelled" in COMFY_FAILED and "failed" in COMFY_FAILED and "created" in COMFY_QUEUED
    # without a flavor the seed's shape is unchanged
    assert plain["data"]["status"] == "COMPLETED" and "task_status" not in plain["data"]


def test_a_task_flavor_adds_to_the_provider_variant(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(sim_task("comfy", UUID_A, "succeeded", variant="lower"),
                                   comfy={"variant": "bare+task_status"}))
    body = httpx.get(f"{sim.base_url}/proxy/freepik/v1/ai/image-relight/{UUID_A}", headers=headers(sim, "comfy")).json()
    assert body == {"generated": [f"https://sim.tasktui.invalid/comfy/{UUID_A}/0.png"], "task_status": "succeeded",
                    "task_id": UUID_A}


# ---------------------------------------------------------------- create path / poll path


@pytest.mark.parametrize("provider,prefix", [("comfy", "/proxy/freepik/v1/ai"), ("freepik", "/v1/ai")])
@pytest.mark.parametrize("mode", ["creative", "faithful", "flexible"])
def test_skin_enhancer_is_created_per_mode_and_served_only_at_its_poll_path(
        sim_factory, sim_task, sim_scenario, provider, prefix, mode):
    # ComfyUI comfy_api_nodes/nodes_magnific.py: POST skin-enhancer/<mode>, GET skin-enhancer/{id};
    # Freepik's index (docs.magnific.com): POST /creative|/faithful|/flexible, GET skin-enhancer/{task-id}.
    task = sim_task(provider, UUID_A, "succeeded", kind=f"skin-enhancer/{mode}")
    assert task.path_kind == "skin-enhancer"
    sim = sim_factory(sim_scenario(task))
    with httpx.Client(base_url=sim.base_url, headers=headers(sim, provider)) as client:
        right = client.get(f"{prefix}/skin-enhancer/{UUID_A}")
        wrong = client.get(f"{prefix}/skin-enhancer/{mode}/{UUID_A}")
        other = client.get(f"{prefix}/image-relight/{UUID_A}")
    assert right.status_code == 200
    assert ComfyTaskResponse.model_validate(right.json()).status == "COMPLETED"
    assert wrong.status_code == 404 and other.status_code == 404
    assert [r.status for r in sim.requests] == [200, 404, 404]


def test_poll_kind_can_be_given_for_other_families(sim_factory, sim_task, sim_scenario):
    # providers.md §4 (freepik-mcp ai_polling_service.py): create image-to-video/kling-std, poll image-to-video/kling
    sim = sim_factory(sim_scenario(sim_task("freepik", UUID_A, "running", kind="image-to-video/kling-std",
                                            poll_kind="image-to-video/kling")))
    with httpx.Client(base_url=sim.base_url, headers=headers(sim, "freepik")) as client:
        assert client.get(f"/v1/ai/image-to-video/kling/{UUID_A}").json()["data"]["status"] == "IN_PROGRESS"
        assert client.get(f"/v1/ai/image-to-video/kling-std/{UUID_A}").status_code == 404
    assert set(POLL_KINDS.values()) == {"skin-enhancer"}


# ---------------------------------------------------------------- upscayl


class FileData(BaseModel):
    """The seed's FileData (docs.upscayl.org get-task-status): ``path``, no link field."""

    model_config = ConfigDict(extra="forbid")
    fileName: StrictStr
    fileType: StrictStr
    fileSize: StrictInt
    originalFileName: StrictStr
    path: StrictStr
    createdAt: StrictInt
    expiresAt: StrictInt
    dimensions: dict


def test_upscayl_path_only_files_and_uncharged_credits(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(
        sim_task("upscayl", "u-path", "succeeded", variant="path_only", credits=4),
        sim_task("upscayl", "u-uncharged", "succeeded", variant="openapi+uncharged", credits=6),
        sim_task("upscayl", "u-link", "succeeded", credits=2),
    ))
    with httpx.Client(base_url=sim.base_url, headers=headers(sim, "upscayl")) as client:
        path, unch, link = (client.post("/get-task-status", json={"data": {"taskId": i}}).json()["data"]
                            for i in ("u-path", "u-uncharged", "u-link"))
    assert path["status"] == "PROCESSED" and path["creditsDeducted"] is True and path["deductedCredits"] == 4
    for f in path["files"]:
        FileData.model_validate(f)  # no downloadLink / thumbnailLink
        assert f["path"] == "users/sim/u-path.jpg" and not f["path"].startswith(("http://", "https://"))
    assert unch["status"] == "completed" and unch["creditsDeducted"] is False and unch["deductedCredits"] == 6
    assert unch["files"][0]["downloadLink"].startswith("https://")
    assert link["files"][0]["downloadLink"].startswith("https://") and link["creditsDeducted"] is True


# ---------------------------------------------------------------- qolaba


# qolaba_modal_docs src/data_models/ModalAppSchemas.py APITaskResponse (what the backend stores and answers)
class APITaskResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_required: dict | None = {}
    error: str | None = None
    error_data: str | dict | None = None
    input: dict | None = {}
    output: dict | list | None = {}
    task_id: str | None = None
    status: str  # Literal["SUCCESS", "FAILED", "PENDING"] there


def qolaba_post(client, sim, task_id: str) -> httpx.Response:
    return client.post("/getImage", json={"id": task_id}, headers=headers(sim, "qolaba"))


def test_qolaba_backend_shape(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(
        sim_task("qolaba", "q-done", "succeeded", model="sdxl-text-to-image", variant="backend"),
        sim_task("qolaba", "q-run", "running", variant="backend"),
        sim_task("qolaba", "q-fail", "failed", variant="200+backend", error="CUDA out of memory"),
        sim_task("qolaba", "q-fail500", "failed", variant="backend"),
    ))
    with httpx.Client(base_url=sim.base_url) as client:
        done, run, fail, fail500, unknown = (qolaba_post(client, sim, i)
                                             for i in ("q-done", "q-run", "q-fail", "q-fail500", "nope"))
    d = APITaskResponse.model_validate(done.json())
    # Worker.create_task: status SUCCESS, task_id unset, the app id inside ``input``
    assert done.status_code == 200 and d.status == "SUCCESS" and d.task_id is None
    assert "app_id" not in done.json() and d.input["app_id"] == "sdxl-text-to-image"
    assert d.output["result"] and all(u.startswith("https://") for u in d.output["result"])
    assert set(d.time_required) == {"startup_time", "runtime"}
    # no track_started: a running task still reads PENDING
    assert run.status_code == 200 and APITaskResponse.model_validate(run.json()).status == "PENDING"
    assert run.json()["task_id"] == "q-run"
    f = APITaskResponse.model_validate(fail.json())
    assert fail.status_code == 200 and f.status == "FAILED" and f.error == "CUDA out of memory"
    g = APITaskResponse.model_validate(fail500.json())
    assert fail500.status_code == 500 and g.status == "FAILED" and g.task_id is None
    # Celery: an id it never saw is PENDING, not 404
    assert unknown.status_code == 200 and unknown.json()["status"] == "PENDING"


def test_qolaba_infrastructure_500_then_the_task_answers(sim_factory, sim_task, sim_scenario, sim_fault):
    sim = sim_factory(sim_scenario(
        sim_task("qolaba", "q-ok", "succeeded"),
        faults=[sim_fault("infra_error", "qolaba", task_id="q-ok", count=2)],
    ))
    with httpx.Client(base_url=sim.base_url) as client:
        answers = [qolaba_post(client, sim, "q-ok") for _ in range(3)]
    # src/utils/Exceptions.py handle_exceptions: a one-argument exception (redis ConnectionError)
    # becomes error=INTERNAL_ERROR, error_data=str(exc.args), status FAILED, code 500
    assert [a.status_code for a in answers] == [500, 500, 200]
    assert answers[0].json() == {"time_required": {}, "error": "Internal Error",
                                 "error_data": "('Error 111 connecting to redis:6379. Connection refused.',)",
                                 "input": {}, "output": {}, "task_id": None, "status": "FAILED"}
    APITaskResponse.model_validate(answers[1].json())
    assert answers[2].json()["status"] == "SUCCESS"
    assert [r.fault for r in sim.requests] == ["infra_error", "infra_error", None]


def test_infra_error_elsewhere_is_the_provider_own_500(sim, sim_fault):
    sim.add(faults=[sim_fault("infra_error", "evolink", count=1)])
    r = httpx.get(f"{sim.base_url}/v1/tasks/evolink-done", headers=headers(sim, "evolink"))
    assert r.status_code == 500 and r.json()["error"]["type"] == "internal_server_error"


# ---------------------------------------------------------------- evolink


class EvolinkStringError(BaseModel):
    """docs.evolink.ai/en/api-manual/task-management/get-task-detail.md, the 400 example: code is a string."""

    model_config = ConfigDict(extra="forbid")
    code: StrictStr
    message: StrictStr
    type: StrictStr
    param: StrictStr


def test_evolink_invalid_task_id(sim_factory, sim_task, sim_scenario):
    good = "task-unified-1756817821-4x3rx6ny"
    tasks = (sim_task("evolink", good, "succeeded"), sim_task("evolink", "legacy-id", "succeeded"))
    lax = sim_factory(sim_scenario(*tasks))
    checked = sim_factory(sim_scenario(*tasks, evolink={"check_ids": True}))
    strict = sim_factory(sim_scenario(*tasks, strict=True))
    off = sim_factory(sim_scenario(*tasks, strict=True, evolink={"check_ids": False}))

    def get(sim, i):
        return httpx.get(f"{sim.base_url}/v1/tasks/{i}", headers=headers(sim, "evolink"))

    assert get(lax, "legacy-id").status_code == 200  # off unless asked or strict
    for sim in (checked, strict):
        r = get(sim, "legacy-id")
        assert r.status_code == 400
        err = EvolinkStringError.model_validate(r.json()["error"])
        assert err.code == "invalid_task_id" and err.param == "task_id"
        assert err.message == "Invalid task ID format, must start with 'task-unified-'"
        assert get(sim, good).json()["status"] == "completed"
        assert get(sim, "task-unified-0-missing").status_code == 404
    assert get(off, "legacy-id").status_code == 200


def test_evolink_cancelled_is_failed_with_request_cancelled(sim_factory, sim_task, sim_scenario):
    # providers.md "Corrections": failed tasks can carry error.code "request_cancelled" (official MCP error-handler.ts)
    sim = sim_factory(sim_scenario(sim_task("evolink", "task-unified-1-x", "cancelled")))
    body = httpx.get(f"{sim.base_url}/v1/tasks/task-unified-1-x", headers=headers(sim, "evolink")).json()
    assert body["status"] == "failed" and body["error"]["code"] == "request_cancelled" and body["results"] == []


# ---------------------------------------------------------------- strict mode


def test_strict_mode_serves_only_the_seed_endpoints(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(
        sim_task("comfy", UUID_A, "succeeded"),
        sim_task("comfy", UUID_B, "running", kind="skin-enhancer/faithful"),
        sim_task("upscayl", "u1", "running"),
        sim_task("qolaba", "q1", "succeeded"),
        sim_task("freepik", UUID_A, "running"),
        sim_task("freepik", UUID_C, "succeeded", kind="mystic"),
        sim_task("evolink", "task-unified-1-a", "succeeded"),
        strict=True,
    ))
    assert sim.sim.strict
    with httpx.Client(base_url=sim.base_url) as c:
        served = {
            "comfy relight": comfy_get(c, sim, "image-relight", UUID_A),
            "comfy skin": comfy_get(c, sim, "skin-enhancer", UUID_B),
            "upscayl status": c.post("/get-task-status", json={"data": {"taskId": "u1"}},
                                     headers=headers(sim, "upscayl")),
            "qolaba getImage": qolaba_post(c, sim, "q1"),
            "freepik list": c.get("/v1/ai/text-to-image/hyperflux", headers=headers(sim, "freepik")),
            "freepik detail": c.get(f"/v1/ai/text-to-image/hyperflux/{UUID_A}", headers=headers(sim, "freepik")),
            "freepik mystic detail": c.get(f"/v1/ai/mystic/{UUID_C}", headers=headers(sim, "freepik")),
            "evolink detail": c.get("/v1/tasks/task-unified-1-a", headers=headers(sim, "evolink")),
        }
        missing = {
            "comfy balance": c.get("/customers/balance", headers=headers(sim, "comfy")),
            "upscayl history": c.post("/get-upscayl-history", json={"limit": 20}, headers=headers(sim, "upscayl")),
            "freepik mystic list": c.get("/v1/ai/mystic", headers=headers(sim, "freepik")),
            "freepik relight list": c.get("/v1/ai/image-relight", headers=headers(sim, "freepik")),
            "evolink credits": c.get("/v1/credits", headers=headers(sim, "evolink")),
            "no key at all": c.get("/v1/credits"),
        }
    assert {k: r.status_code for k, r in served.items()} == dict.fromkeys(served, 200)
    assert {k: r.status_code for k, r in missing.items()} == dict.fromkeys(missing, 404)
    assert [i["task_id"] for i in served["freepik list"].json()["data"]] == [UUID_A]
    recs = sim.requests
    assert [r.missing_route for r in recs] == [False] * len(served) + [True] * len(missing)
    assert [r.provider for r in recs[len(served):]] == ["comfy", "upscayl", "freepik", "freepik", "evolink",
                                                        "evolink"]
    assert all(r.status == 404 and r.auth_ok is False for r in recs[len(served):])


def test_not_strict_serves_the_extras(sim):
    assert not sim.sim.strict
    with httpx.Client(base_url=sim.base_url) as c:
        assert c.get("/customers/balance", headers=headers(sim, "comfy")).status_code == 200
        assert c.post("/get-upscayl-history", json={}, headers=headers(sim, "upscayl")).status_code == 200
        assert c.get("/v1/credits", headers=headers(sim, "evolink")).status_code == 200
        assert c.get("/v1/ai/mystic", headers=headers(sim, "freepik")).status_code == 200
        # strict can be switched on through the control endpoint
        assert c.post("/_sim/tasks", json={"strict": True}).status_code == 200
        assert c.get("/v1/credits", headers=headers(sim, "evolink")).status_code == 404
    assert sim.sim.strict and sim.requests[-1].missing_route


# ---------------------------------------------------------------- scenarios and the command


def test_variant_strings_are_checked():
    assert split_variant("comfy", "bare+task_status+lower") == ("bare", frozenset({"task_status", "lower"}))
    assert split_variant("comfy", "lower") == (None, frozenset({"lower"}))
    assert split_variant("qolaba", None) == (None, frozenset())
    for provider, bad in [("comfy", "bare+wrapped"), ("comfy", "path_only"), ("upscayl", "docs+odd")]:
        with pytest.raises(ValueError, match="variant"):
            split_variant(provider, bad)
    with pytest.raises(ValidationError, match="variant"):
        Scenario.model_validate({"providers": {"comfy": {"key": "k", "variant": "bare+odd"}}})
    with pytest.raises(ValidationError, match="variant"):
        Scenario.model_validate({"tasks": [{"provider": "qolaba", "task_id": "q", "variant": "lower"}]})
    sc = Scenario.model_validate({"strict": True, "providers": {"comfy": {"key": "k", "variant": "bare+task_status"}},
                                  "tasks": [{"provider": "comfy", "task_id": "c", "kind": "skin-enhancer/creative"}]})
    again = Scenario.model_validate_json(sc.to_json())
    assert again.strict and again.tasks[0].path_kind == "skin-enhancer" and again.tasks[0].kind == "skin-enhancer/creative"


def test_generate_real_mixes_the_variants_in_without_moving_the_timelines():
    plain = generate(seed=5, n_tasks=120)
    real = generate(seed=5, n_tasks=120, real=True, strict=True)
    assert real.strict and not plain.strict
    assert real == generate(seed=5, n_tasks=120, real=True, strict=True)  # deterministic
    assert [(t.task_id, t.created, t.start, t.end, t.end_state) for t in plain.tasks] == \
        [(t.task_id, t.created, t.start, t.end, t.end_state) for t in real.tasks]
    kinds = {t.kind for t in real.tasks if t.provider in ("comfy", "freepik")}
    assert kinds & set(POLL_KINDS)
    flavors = {f for t in real.tasks if t.variant for f in split_variant(t.provider, t.variant)[1]}
    assert {"task_status", "lower", "path_only", "uncharged", "backend"} <= flavors
    infra = [f for f in real.faults if f.kind == "infra_error"]
    assert len(infra) == 1 and infra[0].provider == "qolaba" and infra[0].count == 2
    assert Scenario.model_validate_json(real.to_json()) == real


def test_strict_is_asked_by_flag_or_environment(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    assert not strict_wanted(SimpleNamespace())
    assert strict_wanted(SimpleNamespace(strict=True))
    monkeypatch.setenv(STRICT_ENV, "1")
    assert strict_wanted(SimpleNamespace())
    monkeypatch.setenv(STRICT_ENV, "0")
    assert not strict_wanted(SimpleNamespace(strict=False))


def test_simulate_strict_by_environment_prints_it_and_serves_no_balance(monkeypatch):
    from test_sim_cli import read_until, start, stop  # the shared subprocess helpers

    monkeypatch.setenv(STRICT_ENV, "1")
    proc, lines = start("--port", "0", "--tasks", "12", "--speed", "0")
    try:
        seen = read_until(lines, r"^strict: ")
        url = next(line.split()[-1] for line in seen if "listening on" in line)
        assert httpx.get(f"{url}/v1/credits", headers={"Authorization": "Bearer x"}).status_code == 404
        assert httpx.get(f"{url}/_sim/scenario").json()["strict"] is True
    finally:
        stop(proc)
