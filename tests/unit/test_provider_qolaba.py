"""Qolaba provider: request shape (refID via kind "ref:..."), Celery states,
every output shape, the 500-that-is-a-task, errors, and a real HTTP round
trip over 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import httpx
import pytest

from tui.model import (
    AuthError,
    BadResponse,
    ClientError,
    NotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from tui.providers import make_provider
from tui.providers.qolaba import Qolaba
from http_server import HttpServer

FIXTURES = Path(__file__).parents[1] / "data" / "qolaba"
KEY = "qlb_SECRETKEY_0123456789abcdef"
BASE = "https://ml.qolaba.example"
TID = "9d1c7a52-1f0b-4b7e-9a7e-3f1c2d4e5f60"


def _published():
    """tests/data/published_qolaba.py: bodies as Qolaba's backend code builds them."""
    path = Path(__file__).parents[1] / "data" / "published_qolaba.py"
    spec = importlib.util.spec_from_file_location("published_qolaba", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PUB = _published()


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def qol() -> Qolaba:
    return Qolaba(KEY, base_url=BASE)


def parse(p: Qolaba, status: int, body=None, *, content: bytes | None = None, headers=None,
          kind: str | None = None):
    if content is not None:
        response = httpx.Response(status, content=content, headers=headers)
    else:
        response = httpx.Response(status, json=body, headers=headers)
    return p.parse_status(TID, kind, response)


def answer(**fields):
    body = {"time_required": "", "error": "", "error_data": "", "input": "", "output": "",
            "app_id": "", "task_id": TID, "status": ""}
    body.update(fields)
    return body


# ---------------------------------------------------------------- request


def test_class_attributes_and_no_default_base():
    assert Qolaba.name == "qolaba"
    assert Qolaba.default_base_url is None
    assert Qolaba.has_list is False and Qolaba.has_balance is False
    with pytest.raises(ValueError, match="base_url"):
        Qolaba(KEY)
    with pytest.raises(ValueError) as info:
        make_provider("qolaba", KEY)
    assert KEY not in str(info.value)
    assert isinstance(make_provider("qolaba", KEY, base_url=BASE), Qolaba)


def test_status_request_without_ref(qol):
    req = qol.status_request(TID)
    assert req.method == "POST"
    assert req.url == f"{BASE}/getImage"
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["Content-Type"] == "application/json"
    assert req.json == {"id": TID}
    assert KEY not in repr(req) and KEY not in repr(qol)


@pytest.mark.parametrize(
    "kind, body",
    [
        ("ref:order-42", {"id": TID, "refID": "order-42"}),
        ("ref:", {"id": TID}),
        ("text-to-image", {"id": TID}),  # any other kind is ignored
        (None, {"id": TID}),
    ],
)
def test_status_request_ref_from_kind(qol, kind, body):
    assert qol.status_request(TID, kind).json == body


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "status, state",
    [
        ("PENDING", "queued"),
        ("STARTED", "running"),
        ("RETRY", "running"),
        ("SUCCESS", "succeeded"),
        ("FAILURE", "failed"),
        ("FAILED", "failed"),
        ("REVOKED", "cancelled"),
        ("success", "succeeded"),
        ("", "unknown"),
        ("WEIRD", "unknown"),
    ],
)
def test_celery_states(qol, status, state):
    task = parse(qol, 200, answer(status=status))
    assert task.state == state
    assert task.provider_status == (status or None)
    assert (task.provider, task.task_id, task.label) == ("qolaba", TID, None)


def test_docs_example_all_empty(qol):
    task = parse(qol, 200, fixture("docs_empty.json"))
    assert task.state == "unknown"
    assert task.provider_status is None
    assert task.results == [] and task.error is None and task.model is None


def test_success_example(qol):
    body = fixture("success.json")
    task = parse(qol, 200, body, kind="ref:order-42")
    assert task.state == "succeeded"
    assert task.results == ["https://storage.googleapis.com/qolaba/results/9d1c-0.png",
                            "https://storage.googleapis.com/qolaba/results/9d1c-1.png"]
    assert task.model == "sdxl-text2img"
    assert task.kind == "ref:order-42"
    assert task.error is None
    assert task.raw == body


def test_pending_example(qol):
    task = parse(qol, 200, fixture("pending.json"))
    assert task.state == "queued"
    assert task.results == [] and task.model is None


@pytest.mark.parametrize(
    "output, results",
    [
        ({"result": ["https://a/1.png", "https://a/2.png"], "Has_NSFW_Content": [False, True]},
         ["https://a/1.png", "https://a/2.png"]),
        ({"result": "https://a/1.png"}, ["https://a/1.png"]),
        (["https://a/1.png", "https://a/2.png"], ["https://a/1.png", "https://a/2.png"]),
        ("https://a/1.png", ["https://a/1.png"]),
        ("", []),
        (None, []),
        ({}, []),
        ([], []),
        ({"Has_NSFW_Content": [False]}, []),
        ([{"url": "https://a/1.png"}, "", None], ["https://a/1.png"]),
    ],
)
def test_output_shapes(qol, output, results):
    assert parse(qol, 200, answer(status="SUCCESS", output=output)).results == results


@pytest.mark.parametrize(
    "error, error_data, text",
    [
        ("", "", None),
        (None, None, None),
        ("boom", "", "boom"),
        ("", "details here", "details here"),
        ("boom", "details here", "boom: details here"),
        ("boom", "boom", "boom"),
        ({"message": "bad prompt"}, None, "bad prompt"),
        ("failed", {"detail": "NSFW content"}, "failed: NSFW content"),
        (None, {"code": 7}, '{"code": 7}'),
    ],
)
def test_error_fields(qol, error, error_data, text):
    task = parse(qol, 200, answer(status="FAILURE", error=error, error_data=error_data))
    assert task.state == "failed"
    assert task.error == text


@pytest.mark.parametrize("time_required", ["", None, {}, {"startup_time": 1.5, "runtime": 9}])
def test_time_required_variants(qol, time_required):
    assert parse(qol, 200, answer(status="STARTED", time_required=time_required)).state == "running"


def test_numbers_where_strings_expected(qol):
    task = parse(qol, 200, answer(status="SUCCESS", app_id=17, task_id=99, output="https://a/1"))
    assert task.model == "17" and task.task_id == TID  # the tracked id is kept


def test_hostile_strings_are_cleaned(qol):
    body = answer(status="FAILURE\x1b[2J", app_id="\x1b]52;c;ZXZpbA==\x07sdxl",
                  error="out\x1b[31m of\x00 memory\u202e",
                  output={"result": ["https://a/1.png\x1b]8;;http://evil\x07"]})
    task = parse(qol, 200, body)
    assert task.state == "failed"
    assert task.provider_status == "FAILURE"
    assert task.model == "sdxl"
    assert task.error == "out of memory"
    assert task.results == ["https://a/1.png"]


@pytest.mark.parametrize(
    "body",
    [
        {"unrelated": 1},
        {},
        {"error": "bad", "message": "not a task"},
        [TID],
        "SUCCESS",
        answer(status={"x": 1}),
        answer(time_required=[1, 2]),
    ],
)
def test_wrong_shapes_are_bad_response(qol, body):
    with pytest.raises(BadResponse) as info:
        parse(qol, 200, body)
    assert info.value.provider == "qolaba"


@pytest.mark.parametrize("content", [b"", b"<html><title>x</title></html>", b"{nope", b"\xff\xfe"])
def test_unreadable_200_is_bad_response(qol, content):
    with pytest.raises(BadResponse):
        parse(qol, 200, content=content)


# ---------------------------------------------------------------- a 500 with the task shape
# Reversed in issue 11: these tests used to expect a 500 carrying the task shape
# to END the task (failed, or cancelled for REVOKED).  Qolaba's backend wraps
# EVERY exception, infrastructure faults included, into that shape with status
# FAILED (handle_exceptions), so a 500 proves nothing about the task: it is a
# Transient the engine keeps polling through; a 200 FAILED is final.


def test_500_task_shape_is_an_unconfirmed_failure(qol):
    body = fixture("failed_500.json")
    with pytest.raises(Transient) as info:
        parse(qol, 500, body)
    assert info.value.code == "unconfirmed_failure"
    assert "CUDA out of memory: Tried to allocate 2.00 GiB" in info.value.message
    assert info.value.status == 500


@pytest.mark.parametrize("body", [answer(status="", task_id=TID), answer(status="REVOKED"),
                                  answer(status="PENDING", error="lost")])
def test_500_with_other_task_shapes_is_transient(qol, body):
    with pytest.raises(Transient):
        parse(qol, 500, body)


@pytest.mark.parametrize(
    "body, message",
    [
        (fixture("docs_empty.json"), "server error with an empty task answer"),
        (answer(task_id="", status="", error="worker crashed"), "worker crashed"),
        ({"detail": "Internal Server Error"}, "Internal Server Error"),
        (None, "empty answer (HTTP 500)"),
        (answer(task_id=TID, time_required=[1]), None),  # task-like but unreadable
    ],
)
def test_500_without_task_is_transient(qol, body, message):
    with pytest.raises(Transient) as info:
        if body is None:
            parse(qol, 500, content=b"")
        else:
            parse(qol, 500, body)
    assert info.value.status == 500
    if message:
        assert info.value.message == message


def test_html_502_is_transient(qol):
    with pytest.raises(Transient) as info:
        parse(qol, 502, content=b"<html><head><title>502 Bad Gateway</title></head></html>",
              headers={"content-type": "text/html"})
    assert "502 Bad Gateway" in info.value.message


# ---------------------------------------------------------------- other errors


@pytest.mark.parametrize(
    "status, body, error, message",
    [
        (401, {"detail": "Not authenticated"}, AuthError, "Not authenticated"),
        (403, {"detail": "Invalid token"}, AuthError, "Invalid token"),
        (402, {"message": "Insufficient balance"}, QuotaExhausted, "Insufficient balance"),
        (404, {"detail": "Not Found"}, NotFound, "Not Found"),
        (429, {"detail": "Too many requests, retry after 30 seconds"}, RateLimited, None),
        (422, {"detail": [{"loc": ["body", "id"], "msg": "field required", "type": "missing"}]},
         ClientError, "field required"),
        (400, {"error": "bad", "message": "id is invalid"}, ClientError, "id is invalid"),
        (503, "Service Unavailable", Transient, "Service Unavailable"),
        (408, None, Transient, None),
    ],
)
def test_error_statuses(qol, status, body, error, message):
    with pytest.raises(error) as info:
        parse(qol, status, body)
    assert info.value.status == status
    if message:
        assert info.value.message == message


def test_429_wait_from_text(qol):
    with pytest.raises(RateLimited) as info:
        parse(qol, 429, {"detail": "Too many requests, retry after 30 seconds"})
    assert info.value.retry_after == 30


def test_key_never_in_errors_or_task(qol):
    cases = [
        (401, {"detail": f"invalid token {KEY}"}),
        (500, answer(task_id="", status="", error=f"Bearer {KEY}")),
        (200, answer(status=[KEY])),
    ]
    for status, body in cases:
        with pytest.raises(ProviderError) as info:
            parse(qol, status, body)
        for text in (str(info.value), repr(info.value), info.value.message):
            assert KEY not in text
    task = parse(qol, 200, answer(status="FAILED", error=f"auth {KEY} rejected"))
    assert KEY not in task.error and "***" in task.error
    with pytest.raises(Transient) as info:  # a 500 FAILED is not final (issue 11), and masked too
        parse(qol, 500, answer(status="FAILED", error=f"auth {KEY} rejected"))
    assert KEY not in info.value.message and "***" in info.value.message


# ---------------------------------------------------------------- real HTTP


async def test_round_trip_over_localhost():
    def reply(request):
        asked = json.loads(request["body"])
        if asked["id"] == TID:
            return 200, json.dumps(fixture("success.json")).encode()
        if asked["id"] == "broken":
            return 500, json.dumps(fixture("failed_500.json")).encode()
        return 500, json.dumps(fixture("docs_empty.json")).encode()

    async with HttpServer(reply) as server, httpx.AsyncClient(timeout=10) as client:
        p = make_provider("qolaba", KEY, base_url=server.url)
        task = await p.fetch_status(client, TID, "ref:order-42")
        assert task.state == "succeeded" and len(task.results) == 2
        with pytest.raises(Transient) as info:  # a 500 FAILED is unconfirmed (issue 11)
            await p.fetch_status(client, "broken")
        assert info.value.code == "unconfirmed_failure" and "CUDA out of memory" in info.value.message
        with pytest.raises(Transient):
            await p.fetch_status(client, "other")
    first = server.seen[0]
    assert (first["method"], first["path"]) == ("POST", "/getImage")
    assert first["headers"]["authorization"] == f"Bearer {KEY}"
    assert json.loads(first["body"]) == {"id": TID, "refID": "order-42"}
    assert json.loads(server.seen[1]["body"]) == {"id": "broken"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_closed_port_is_transient():
    p = Qolaba(KEY, base_url=f"http://127.0.0.1:{closed_port()}")
    async with httpx.AsyncClient(timeout=10) as client:
        with pytest.raises(Transient) as info:
            await p.fetch_status(client, TID)
    assert info.value.provider == "qolaba" and info.value.status is None
    assert KEY not in str(info.value) and KEY not in repr(info.value)


# ---------------------------------------------------------------- published bodies (issue 11)


@pytest.mark.parametrize("body", [PUB.INFRA_500, PUB.INFRA_500_SHORT])
def test_infrastructure_500_does_not_end_the_task(qol, body):
    """handle_exceptions wraps a Redis outage as 500 {status: FAILED}: keep polling."""
    with pytest.raises(Transient) as info:
        parse(qol, 500, body)
    assert info.value.code == "unconfirmed_failure"
    assert "Error 111 connecting to redis:6379. Connection refused." in info.value.message
    assert "Internal Error" in info.value.message


def test_200_failed_is_final(qol):
    task = parse(qol, 200, PUB.FAILED_200)
    assert task.state == "failed"
    assert task.error == "Internal Error: CUDA out of memory"
    assert parse(qol, 200, {**PUB.FAILED_200, "status": "FAILURE"}).state == "failed"


def test_success_model_from_input_app_id(qol):
    """Worker.create_task: on SUCCESS the app id is only in input (task_id null)."""
    task = parse(qol, 200, PUB.SUCCESS)
    assert task.state == "succeeded"
    assert task.model == "sdxl-text2img"
    assert task.results == PUB.SUCCESS["output"]["result"]
    assert parse(qol, 200, {**PUB.SUCCESS, "app_id": "top-level"}).model == "top-level"  # the docs' field first


def test_pending_has_a_stall_hint(qol):
    task = parse(qol, 200, PUB.PENDING)
    assert task.state == "queued"
    assert qol.stall_hint(task) == ("Celery answers PENDING for ids it never saw or whose result expired: "
                                    "check the id (and refID)")
    assert qol.stall_hint(parse(qol, 200, {**PUB.PENDING, "status": "STARTED"})) is None
    assert qol.stall_hint(parse(qol, 200, PUB.SUCCESS)) is None
