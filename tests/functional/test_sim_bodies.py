"""Every body the simulator answers, validated against the response schemas of
the seed documents (models written here from the seeds, not imported from the
provider modules).  Real HTTP on 127.0.0.1."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import httpx
import pytest
from pydantic import AnyUrl, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from tui.sim import generate
from tui.sim.state import lifecycle


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):  # documented extras (providers.md) are allowed
    model_config = ConfigDict(extra="allow")


# ---- comfy: FreepikTaskResponse / FreepikTaskData / FreepikErrorResponse


class FreepikTaskData(Strict):
    generated: list[AnyUrl]
    status: Literal["CREATED", "IN_PROGRESS", "COMPLETED", "FAILED"]
    task_id: UUID


class FreepikTaskResponse(Strict):
    data: FreepikTaskData


class FreepikErrorResponse(Strict):
    error: StrictStr
    message: StrictStr


# ---- upscayl: the 200 schema of POST /get-task-status

UPSCAYL_MODELS = Literal["upscayl-standard-4x", "upscayl-lite-4x", "clear-boost-4x", "crystal-plus-4x",
                         "digital-art-4x", "digital-art-plus-4x", "natural-max-4x", "natural-plus-4x",
                         "nature-boost-4x", "pure-boost-4x", "quick-clear-4x", "texture-boost-4x"]


class Dimensions(Strict):
    width: StrictInt
    height: StrictInt


class FileData(Open):
    fileName: StrictStr
    fileType: StrictStr
    fileSize: StrictInt
    originalFileName: StrictStr
    path: StrictStr
    createdAt: StrictInt
    expiresAt: StrictInt
    dimensions: Dimensions


class UpscaylData(Open):
    status: Literal["ENHANCING", "PROCESSING", "PROCESSED", "PROCESSING_FAILED",
                    "pending", "processing", "completed", "failed"]
    progress: StrictStr
    files: list[FileData]
    deductedCredits: StrictInt
    creditsDeducted: StrictBool
    model: UPSCAYL_MODELS
    scale: int = Field(ge=1, le=8)
    saveImageAs: StrictStr
    compression: StrictInt
    batchMode: StrictBool


class UpscaylStatus(Strict):
    status: StrictStr
    data: UpscaylData


class UpscaylError(Strict):
    error: StrictStr
    message: StrictStr


# ---- qolaba: the /getImage body keys (200 and 500 alike)

QOLABA_KEYS = {"time_required", "error", "error_data", "input", "output", "app_id", "task_id", "status"}
QOLABA_STATUSES = {"PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "FAILED", "REVOKED"}


# ---- freepik: list schema and task-detail; errors {message}


class FreepikListItem(Strict):
    task_id: UUID
    status: Literal["CREATED", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"]


class FreepikList(Strict):
    data: list[FreepikListItem]


class FreepikDetailData(Strict):
    task_id: UUID
    status: Literal["CREATED", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"]
    generated: list[AnyUrl]


class FreepikDetail(Strict):
    data: FreepikDetailData


class FreepikError(Strict):
    message: StrictStr


# ---- evolink: TaskDetailResponse and ErrorResponse


class TaskInfo(Open):
    can_cancel: StrictBool


class TaskDetailResponse(Open):
    created: StrictInt
    id: StrictStr
    model: StrictStr
    object: Literal["image.generation.task", "video.generation.task", "audio.generation.task"]
    progress: int = Field(ge=0, le=100)
    results: list[AnyUrl]
    status: Literal["pending", "processing", "completed", "failed"]
    task_info: TaskInfo
    type: Literal["image", "video", "audio", "text"]


class EvolinkErrorDetail(Strict):
    code: StrictInt
    message: StrictStr
    type: StrictStr
    param: StrictStr | None = None
    fallback_suggestion: StrictStr | None = None


class ErrorResponse(Strict):
    error: EvolinkErrorDetail


ERROR_MODELS = {"comfy": FreepikErrorResponse, "upscayl": UpscaylError, "freepik": FreepikError,
                "evolink": ErrorResponse}


def check_error_shape(provider: str, response: httpx.Response) -> None:
    """A non-2xx JSON body in the provider's own error shape."""
    body = response.json()
    if provider == "qolaba":
        assert set(body) == {"detail"} and isinstance(body["detail"], str)
    else:
        ERROR_MODELS[provider].model_validate(body)


# ---------------------------------------------------------------- helpers

TIMES = (-30.0, 0.0, 4.0, 15.0, 30.0, 60.0, 120.0)


def headers(sim, provider: str) -> dict[str, str]:
    key = sim.key(provider)
    return {"upscayl": {"X-API-Key": key}, "freepik": {"x-freepik-api-key": key}}.get(
        provider, {"Authorization": f"Bearer {key}"})


def status_call(client: httpx.Client, sim, task, h: dict[str, str] | None = None) -> httpx.Response:
    """The documented status request for ``task``, with the right key (or headers ``h``)."""
    h = headers(sim, task.provider) if h is None else h
    if task.provider == "comfy":
        return client.get(f"/proxy/freepik/v1/ai/{task.path_kind}/{task.task_id}", headers=h)
    if task.provider == "upscayl":
        return client.post("/get-task-status", json={"data": {"taskId": task.task_id}}, headers=h)
    if task.provider == "qolaba":
        return client.post("/getImage", json={"id": task.task_id}, headers=h)
    if task.provider == "freepik":
        return client.get(f"/v1/ai/{task.path_kind}/{task.task_id}", headers=h)
    return client.get(f"/v1/tasks/{task.task_id}", headers=h)


def validate_status(task, response: httpx.Response, variant: str) -> str:
    """Validate one status answer; return the provider status it reported."""
    body = response.json()
    p = task.provider
    if p == "comfy":
        data = (FreepikTaskResponse.model_validate(body).data if variant == "wrapped"
                else FreepikTaskData.model_validate(body))
        assert str(data.task_id) == task.task_id
        return data.status
    if p == "upscayl":
        data = UpscaylStatus.model_validate(body).data
        assert 0 <= int(data.progress) <= 100
        docs = {"ENHANCING", "PROCESSING", "PROCESSED", "PROCESSING_FAILED"}
        assert (data.status in docs) == (variant == "docs")
        return data.status
    if p == "qolaba":
        assert set(body) == QOLABA_KEYS
        assert body["task_id"] == task.task_id and body["status"] in QOLABA_STATUSES
        assert response.status_code == (500 if body["status"] == "FAILURE" else 200)
        return body["status"]
    if p == "freepik":
        data = FreepikDetail.model_validate(body).data
        assert str(data.task_id) == task.task_id
        return data.status
    detail = TaskDetailResponse.model_validate(body)
    assert detail.id == task.task_id
    return detail.status


@pytest.fixture(scope="module")
def scenario():
    return generate(seed=11, n_tasks=60, faults=False)


VARIANT_SETS = [
    {"comfy": "wrapped", "upscayl": "docs", "qolaba": "500"},
    {"comfy": "bare", "upscayl": "openapi", "qolaba": "200"},
]


@pytest.mark.parametrize("variants", VARIANT_SETS, ids=["documented", "alternate"])
def test_every_status_body_matches_the_seed_schema(sim_factory, scenario, variants):
    sc = scenario.model_copy(deep=True)
    for name, variant in variants.items():
        sc.providers[name].variant = variant
    sim = sim_factory(sc)
    seen: dict[str, set[str]] = {p: set() for p in sc.providers}
    with httpx.Client(base_url=sim.base_url, verify=False) as client:
        for t in TIMES:
            sim.clock.set(t)
            for task in sc.tasks:
                r = status_call(client, sim, task)
                if lifecycle(task, t) is None:  # not created yet, or expired
                    if task.provider == "qolaba":  # Celery: unknown ids are PENDING
                        assert r.status_code == 200 and r.json()["status"] == "PENDING"
                    else:
                        assert r.status_code == 404
                        check_error_shape(task.provider, r)
                    continue
                assert r.status_code in (200, 500), r.text
                variant = variants.get(task.provider, "default")
                seen[task.provider].add(validate_status(task, r, variant))
    # every state of every provider was exercised
    assert {"CREATED", "IN_PROGRESS", "COMPLETED", "FAILED"} <= seen["comfy"]
    assert {"CREATED", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"} <= seen["freepik"]
    assert {"pending", "processing", "completed", "failed"} <= seen["evolink"]
    if variants["upscayl"] == "docs":
        assert {"PROCESSING", "ENHANCING", "PROCESSED", "PROCESSING_FAILED"} <= seen["upscayl"]
    else:
        assert {"pending", "processing", "completed", "failed"} <= seen["upscayl"]
    failed = "FAILURE" if variants["qolaba"] == "500" else "FAILED"
    assert {"PENDING", "STARTED", "SUCCESS", failed, "REVOKED"} <= seen["qolaba"]


def test_results_appear_only_on_success(sim_factory, scenario):
    sim = sim_factory(scenario)
    sim.clock.set(200)
    with httpx.Client(base_url=sim.base_url, verify=False) as client:
        for task in scenario.tasks:
            if lifecycle(task, 200) is None:
                continue
            body = status_call(client, sim, task).json()
            urls = {
                "comfy": lambda b: (b.get("data") or b)["generated"],
                "upscayl": lambda b: [f["downloadLink"] for f in b["data"]["files"] if "downloadLink" in f],
                "qolaba": lambda b: (b["output"] or {}).get("result", []),
                "freepik": lambda b: b["data"]["generated"],
                "evolink": lambda b: b["results"],
            }[task.provider](body)
            assert urls == (task.results if task.end_state == "succeeded" else [])


def test_progress_is_reported_where_documented(sim, sim_task):
    sim.add([sim_task("upscayl", "u1", "running"), sim_task("evolink", "e1", "running")])
    with httpx.Client(base_url=sim.base_url, verify=False) as client:
        up = client.post("/get-task-status", json={"taskId": "u1"}, headers=headers(sim, "upscayl"))
        ev = client.get("/v1/tasks/e1", headers=headers(sim, "evolink"))
        sim.advance(15)
        ev2 = client.get("/v1/tasks/e1", headers=headers(sim, "evolink"))
    assert up.json()["data"]["progress"] == "50"  # a string, as documented; openapi form {"taskId"} accepted
    assert ev.json()["progress"] == 50 and ev2.json()["progress"] == 75


def test_evolink_extras(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(
        sim_task("evolink", "ok", "succeeded", kind="video", credits=12.5),
        sim_task("evolink", "bad", "failed", error="content flagged"),
        sim_task("evolink", "gone", "cancelled"),
    ))
    with httpx.Client(base_url=sim.base_url, headers=headers(sim, "evolink"), verify=False) as client:
        ok, bad, gone = (client.get(f"/v1/tasks/{i}").json() for i in ("ok", "bad", "gone"))
    assert ok["object"] == "video.generation.task" and ok["type"] == "video"
    assert ok["result_data"][0]["video_url"] == ok["results"][0]
    assert ok["usage"]["credits_reserved"] == 12.5 and ok["task_info"]["estimated_time"] == 60
    assert bad["status"] == "failed" and bad["error"]["message"] == "content flagged"
    assert isinstance(bad["error"]["code"], str)
    assert gone["status"] == "failed" and gone["error"]["code"] == "request_cancelled"


def test_freepik_list_and_detail_paths(sim_factory, sim_task, sim_scenario):
    a = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"
    b = "146b6c7f-0b8a-43b9-b35d-6489e6daee92"
    c = "246b6c7f-0b8a-43b9-b35d-6489e6daee93"
    sim = sim_factory(sim_scenario(
        sim_task("freepik", a, "running"),
        sim_task("freepik", b, "succeeded"),
        sim_task("freepik", c, "running", kind="image-upscaler-precision-v2"),
        sim_task("freepik", "not-yet", "running", created=50, start=60, end=70),
    ))
    with httpx.Client(base_url=sim.base_url, headers=headers(sim, "freepik"), verify=False) as client:
        listed = client.get("/v1/ai/text-to-image/hyperflux")
        other = client.get("/v1/ai/image-upscaler-precision-v2")
        detail = client.get(f"/v1/ai/image-upscaler-precision-v2/{c}")
        wrong_kind = client.get(f"/v1/ai/text-to-image/hyperflux/{c}")
        unknown = client.get("/v1/ai/text-to-image/hyperflux/346b6c7f-0b8a-43b9-b35d-6489e6daee94")
        empty = client.get("/v1/ai/text-to-image/flux-dev")
    body = FreepikList.model_validate(listed.json())
    assert {(str(i.task_id), i.status) for i in body.data} == {(a, "IN_PROGRESS"), (b, "COMPLETED")}
    assert [str(i.task_id) for i in FreepikList.model_validate(other.json()).data] == [c]
    assert FreepikDetail.model_validate(detail.json()).data.status == "IN_PROGRESS"
    assert wrong_kind.status_code == 404 and unknown.status_code == 404
    FreepikError.model_validate(unknown.json())
    assert empty.status_code == 200 and empty.json() == {"data": []}
    assert [r.endpoint for r in sim.requests] == ["list", "list", "status", "status", "status", "list"]


def test_upscayl_history_lists_existing_tasks(sim):
    # Rows are openapi.yaml ProcessingTask (upscayl/upscayl docs/openapi.yaml), which has no
    # task id: the simulator used to add "taskId", a reading no published document backs.
    r = httpx.post(f"{sim.base_url}/get-upscayl-history", json={"limit": 20}, headers=headers(sim, "upscayl"))
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success"
    assert len(body["data"]) == 4
    for item in body["data"]:
        UpscaylData.model_validate(item)
        assert not {"taskId", "task_id", "id", "_id"} & set(item)
    assert sorted(i["status"] for i in body["data"]) == ["ENHANCING", "PROCESSED", "PROCESSING",
                                                        "PROCESSING_FAILED"]
    assert body["pagination"] == {"total": 4, "hasMore": False, "nextOffset": None}


def test_qolaba_ref_id_and_unknown_ids(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(sim_task("qolaba", "q1", "succeeded", ref_id="ref-7")))
    url, h = f"{sim.base_url}/getImage", headers(sim, "qolaba")
    with_ref = httpx.post(url, json={"id": "q1", "refID": "ref-7"}, headers=h).json()
    without = httpx.post(url, json={"id": "q1"}, headers=h).json()
    missing = httpx.post(url, json={}, headers=h)
    assert with_ref["status"] == "SUCCESS" and with_ref["output"]["result"]
    assert without["status"] == "PENDING" and set(without) == QOLABA_KEYS
    assert missing.status_code == 422


def test_balances(sim_factory, sim_task, sim_scenario):
    sim = sim_factory(sim_scenario(
        sim_task("comfy", "c1", "running", credits=30),  # ends at t=30
        sim_task("evolink", "e1", "running", credits=2.5),
        sim_task("evolink", "e2", "failed", credits=7),  # failures are not billed
        comfy={"balance": 1000}, evolink={"balance": 100},
    ))
    with httpx.Client(base_url=sim.base_url, verify=False) as client:
        def both():
            c = client.get("/customers/balance", headers=headers(sim, "comfy"))
            e = client.get("/v1/credits", headers=headers(sim, "evolink"))
            assert c.status_code == e.status_code == 200
            return c.json(), e.json()

        c0, e0 = both()
        sim.advance(30)
        c1, e1 = both()
    assert c0["amount_micros"] == 1000 and c1["amount_micros"] == 970  # cents, despite the name
    assert c0["currency"] == "usd" and set(c0) >= {"effective_balance_micros", "prepaid_balance_micros"}
    assert e0["success"] is True
    assert e0["data"]["token"]["remaining_credits"] == 100 and e0["data"]["user"]["used_credits"] == 0
    assert e1["data"]["token"]["remaining_credits"] == 97.5 and e1["data"]["token"]["used_credits"] == 2.5


@pytest.mark.parametrize("provider", ["comfy", "upscayl", "qolaba", "freepik", "evolink"])
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_auth_is_checked_with_the_provider_401_shape(sim, sim_task, provider, key):
    task = sim_task(provider, f"{provider}-running", "running")
    h = {}
    if key:
        h = {"upscayl": {"X-API-Key": key}, "freepik": {"x-freepik-api-key": key}}.get(
            provider, {"Authorization": f"Bearer {key}"})
    with httpx.Client(base_url=sim.base_url, verify=False) as client:
        r = status_call(client, sim, task, h)
    assert r.status_code == 401
    check_error_shape(provider, r)
    if provider == "freepik":
        assert r.json()["message"] == ("Invalid API key" if key else "Missing API key")
    if provider == "evolink":
        assert r.json()["error"]["type"] == "authentication_error"
    rec = sim.requests[-1]
    assert rec.provider == provider and rec.status == 401 and rec.auth_ok is False


def test_wrong_header_for_the_provider_is_refused(sim):
    # the upscayl key in a Bearer header is not how Upscayl authenticates
    r = httpx.post(f"{sim.base_url}/get-task-status", json={"data": {"taskId": "upscayl-done"}},
                   headers={"Authorization": f"Bearer {sim.key('upscayl')}"})
    assert r.status_code == 401 and r.json()["error"] == "UNAUTHORIZED"


def test_unknown_paths_are_recorded(sim):
    r = httpx.get(f"{sim.base_url}/nope")
    assert r.status_code == 404
    assert sim.requests[-1].provider is None and sim.requests[-1].path == "/nope"
