"""Upscayl provider: request shape, both status enums, files and credits,
error codes, and a real HTTP round trip over 127.0.0.1."""

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
from tui.providers.upscayl import Upscayl
from http_server import HttpServer

FIXTURES = Path(__file__).parents[1] / "data" / "upscayl"
KEY = "ups_SECRETKEY_abcdef123456"
TID = "task_8f3a2c"


def _published():
    """tests/data/published_upscayl.py: bodies published by Upscayl."""
    path = Path(__file__).parents[1] / "data" / "published_upscayl.py"
    spec = importlib.util.spec_from_file_location("published_upscayl", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PUB = _published()


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def ups() -> Upscayl:
    return Upscayl(KEY)


def parse(p: Upscayl, status: int, body=None, *, content: bytes | None = None, headers=None):
    if content is not None:
        response = httpx.Response(status, content=content, headers=headers)
    else:
        response = httpx.Response(status, json=body, headers=headers)
    return p.parse_status(TID, None, response)


def wrap(**data):
    return {"status": "success", "data": data}


# ---------------------------------------------------------------- request


def test_class_attributes():
    assert Upscayl.name == "upscayl"
    assert Upscayl.default_base_url == "https://api.upscayl.org"
    assert Upscayl.default_rate_limit == "100/h"
    assert Upscayl.has_balance is False
    assert isinstance(make_provider("upscayl", KEY), Upscayl)


def test_status_request(ups):
    req = ups.status_request(TID)
    assert req.method == "POST"
    assert req.url == "https://api.upscayl.org/get-task-status"
    assert req.headers["X-API-Key"] == KEY
    assert "Authorization" not in req.headers
    assert req.headers["Content-Type"] == "application/json"
    assert req.json == {"data": {"taskId": TID}}
    assert KEY not in repr(req) and KEY not in repr(ups)


def test_status_request_custom_base():
    req = Upscayl(KEY, base_url="http://127.0.0.1:8080/").status_request("x y/z")
    assert req.url == "http://127.0.0.1:8080/get-task-status"
    assert req.json == {"data": {"taskId": "x y/z"}}  # the id travels in the body, untouched


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "status, state",
    [
        ("ENHANCING", "running"),
        ("PROCESSING", "running"),
        ("PROCESSED", "succeeded"),
        ("PROCESSING_FAILED", "failed"),
        ("pending", "queued"),
        ("processing", "running"),
        ("completed", "succeeded"),
        ("failed", "failed"),
        ("ARCHIVED", "unknown"),
    ],
)
def test_both_enums(ups, status, state):
    task = parse(ups, 200, wrap(status=status))
    assert task.state == state
    assert task.provider_status == status
    assert (task.provider, task.task_id, task.kind, task.label) == ("upscayl", TID, None, None)


def test_docs_example_processed(ups):
    body = fixture("status_processed.json")
    task = parse(ups, 200, body)
    assert task.state == "succeeded"
    assert task.progress == 100.0
    assert task.results == ["https://cdn.upscayl.org/users/1412v4124v/1k2jj2b3c-cnb1234ij.jpg?sig=abc"]
    assert task.credits == 10
    assert task.model == "upscayl-standard-4x"
    assert task.created_at == 1640995200  # seconds
    assert task.error is None
    assert task.raw == body


def test_openapi_example_processing_ms_timestamps(ups):
    task = parse(ups, 200, fixture("status_openapi_processing.json"))
    assert task.state == "running"
    assert task.progress == 40.5
    # no link given: a storage path is not a result (issue 11 reversed the old rule
    # that put the path in results); it is kept as a detail
    assert task.results == []
    assert task.details["storage path"] == "users/u1/a.png"
    assert task.created_at == pytest.approx(1763920000.0)  # milliseconds
    assert task.credits is None
    assert task.model == "digital-art-4x"


def test_failed_example(ups):
    task = parse(ups, 200, fixture("status_failed.json"))
    assert task.state == "failed"
    assert task.error == "Image dimensions exceed the maximum allowed"
    assert task.progress is None
    # creditsDeducted: false -> nothing charged yet (issue 11; this used to say 0)
    assert task.credits is None
    assert task.results == []


@pytest.mark.parametrize(
    "progress, expected",
    [("40", 40.0), ("40.5", 40.5), ("", None), (None, None), (55, 55.0), (12.5, 12.5),
     ("150", 100.0), ("-3", 0.0), ("n/a", None), ({"x": 1}, None)],
)
def test_progress_variants(ups, progress, expected):
    data = {"status": "ENHANCING"} if progress is None else {"status": "ENHANCING", "progress": progress}
    assert parse(ups, 200, wrap(**data)).progress == expected


def test_missing_progress_key(ups):
    assert parse(ups, 200, {"status": "success", "data": {"status": "PROCESSING"}}).progress is None


@pytest.mark.parametrize(
    "file, link",
    [
        ({"downloadLink": "https://a/1", "downloadUrl": "https://b/2", "path": "p/3"}, "https://a/1"),
        ({"downloadUrl": "https://b/2", "path": "p/3"}, "https://b/2"),
        # a path is never a result (issue 11 reversed the old rule that fell back to it)
        ({"path": "p/3"}, None),
        ({"downloadLink": "", "downloadUrl": None, "path": "p/3"}, None),
        ({"downloadLink": "users/u/x.png"}, None),  # not http(s): not a result either
        ({"fileName": "x.png"}, None),
    ],
)
def test_file_link_precedence(ups, file, link):
    task = parse(ups, 200, wrap(status="PROCESSED", files=[file]))
    assert task.results == ([link] if link else [])


def test_several_files_and_bare_links(ups):
    task = parse(ups, 200, wrap(status="completed", files=[
        {"downloadLink": "https://a/1", "createdAt": 1700000100},
        {"downloadUrl": "https://a/2", "createdAt": 1700000000000},
        "https://a/3",
    ]))
    assert task.results == ["https://a/1", "https://a/2", "https://a/3"]
    assert task.created_at == 1700000000  # earliest, seconds and ms mixed


def test_credits_as_string(ups):
    assert parse(ups, 200, wrap(status="PROCESSED", deductedCredits="4")).credits == 4.0
    assert parse(ups, 200, wrap(status="PROCESSED", deductedCredits="many")).credits is None


def test_hostile_strings_are_cleaned(ups):
    body = wrap(status="PROCESSING_FAILED\x1b[2J", model="\x1b]52;c;ZXZpbA==\x07digital-art-4x",
                error="bad\x1b[31m input\x00\u202e",
                files=[{"downloadLink": "https://a/1\x1b]8;;http://evil\x07"}])
    task = parse(ups, 200, body)
    assert task.state == "failed"
    assert task.provider_status == "PROCESSING_FAILED"
    assert task.model == "digital-art-4x"
    assert task.error == "bad input"
    assert task.results == ["https://a/1"]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "data": {"progress": "10"}},  # data.status missing
        {"status": "success"},
        {"status": "success", "data": None},
        {"status": "success", "data": {"status": {"x": 1}}},
        {"status": "success", "data": {"status": "PROCESSED", "files": "https://a/1"}},
        ["PROCESSED"],
        "PROCESSED",
    ],
)
def test_wrong_shapes_are_bad_response(ups, body):
    with pytest.raises(BadResponse) as info:
        parse(ups, 200, body)
    assert info.value.provider == "upscayl"


@pytest.mark.parametrize("content", [b"", b"<!doctype html><title>x</title>", b"{oops", b"\xff\xfe"])
def test_unreadable_200_is_bad_response(ups, content):
    with pytest.raises(BadResponse):
        parse(ups, 200, content=content)


# ---------------------------------------------------------------- errors


def test_429_try_again_in_one_hour(ups):
    with pytest.raises(RateLimited) as info:
        parse(ups, 429, fixture("error_429.json"))
    assert info.value.retry_after == 3600
    assert info.value.code == "RATE_LIMIT_EXCEEDED"
    assert info.value.message == "Too many requests. Try again in 1 hour"


def test_402_insufficient_credits(ups):
    with pytest.raises(QuotaExhausted) as info:
        parse(ups, 402, fixture("error_402.json"))
    assert info.value.message == "Not enough credits to process request"
    assert info.value.code == "INSUFFICIENT_CREDITS"


@pytest.mark.parametrize(
    "status, body, error",
    [
        (400, "Bad Request: Missing User ID", ClientError),
        (500, "Error getting data", Transient),
        (400, {"error": "BAD_REQUEST", "message": "taskId is required"}, ClientError),
        (401, {"error": "UNAUTHORIZED", "message": "Invalid API key"}, AuthError),
        (403, {"error": "FORBIDDEN", "message": "no"}, AuthError),
        (404, {"error": "NOT_FOUND", "message": "Task not found"}, NotFound),
        (500, {"error": "INTERNAL_SERVER_ERROR", "message": "oops"}, Transient),
        (400, {"error": "MISSING_REQUIRED_FIELDS", "message": "data.taskId"}, ClientError),
        (413, {"error": "FILE_SIZE_EXCEEDED", "message": "too big"}, ClientError),
        (503, None, Transient),
        # a documented code wins over a surprising status
        (400, {"error": "INSUFFICIENT_CREDITS", "message": "Not enough credits"}, QuotaExhausted),
        (400, {"error": "RATE_LIMIT_EXCEEDED", "message": "Try again in 1 hour"}, RateLimited),
        (400, {"error": "NOT_FOUND", "message": "Task not found"}, NotFound),
        # ... but only a generic 400, and never into a retry-forever Transient
        (400, {"error": "INTERNAL_SERVER_ERROR", "message": "oops"}, ClientError),
        (413, {"error": "INTERNAL_SERVER_ERROR", "message": "too large"}, ClientError),
        (403, {"error": "NOT_FOUND", "message": "x"}, AuthError),
        (500, {"error": "NOT_FOUND", "message": "x"}, Transient),
    ],
)
def test_error_classification(ups, status, body, error):
    with pytest.raises(error) as info:
        parse(ups, status, body)
    assert info.value.status == status
    assert info.value.message
    if isinstance(body, str):
        assert info.value.message == body


def test_code_override_keeps_retry_after(ups):
    with pytest.raises(RateLimited) as info:
        parse(ups, 400, {"error": "RATE_LIMIT_EXCEEDED", "message": "Try again in 1 hour"})
    assert info.value.retry_after == 3600


def test_success_without_data_says_what_it_got(ups):
    with pytest.raises(BadResponse) as info:
        parse(ups, 200, {"status": "error", "message": "Task lookup failed"})
    assert "Task lookup failed" in info.value.message


def test_error_body_with_200(ups):
    with pytest.raises(NotFound):
        parse(ups, 200, {"error": "NOT_FOUND", "message": "Task not found"})
    with pytest.raises(ClientError):
        parse(ups, 200, {"error": "BAD_REQUEST", "message": "Missing taskId"})


def test_html_502_is_transient(ups):
    with pytest.raises(Transient) as info:
        parse(ups, 502, content=b"<html><title>502 Bad Gateway</title></html>",
              headers={"content-type": "text/html"})
    assert "502 Bad Gateway" in info.value.message


def test_hostile_error_message_is_cleaned(ups):
    with pytest.raises(ClientError) as info:
        parse(ups, 400, "\x1b[2J\x1b]52;c;ZXZpbA==\x07Bad Request\x07")
    assert info.value.message == "Bad Request"


def test_key_never_in_errors(ups):
    cases = [
        (401, {"error": "UNAUTHORIZED", "message": f"unknown key {KEY}"}),
        (400, f"Bad Request: {KEY}"),
        (200, {"status": "success", "data": {"status": [KEY]}}),
    ]
    for status, body in cases:
        with pytest.raises(ProviderError) as info:
            parse(ups, status, body)
        for text in (str(info.value), repr(info.value), info.value.message):
            assert KEY not in text


def test_key_masked_in_task_error(ups):
    task = parse(ups, 200, wrap(status="PROCESSING_FAILED", error=f"key {KEY} has no access"))
    assert task.error == "key *** has no access"


# ---------------------------------------------------------------- no history (list)


def test_history_is_not_a_list_endpoint():
    # issue 11: history rows carry no task id (openapi.yaml ProcessingTask), so they can
    # never answer for a tracked task: Upscayl has no list, its tasks are asked one by one
    assert Upscayl.has_list is False
    with pytest.raises(NotImplementedError):
        Upscayl(KEY).list_request(None)


# ---------------------------------------------------------------- real HTTP


async def test_round_trip_over_localhost():
    def answer(request):
        asked = json.loads(request["body"])["data"]["taskId"]
        if request["headers"].get("x-api-key") != KEY:
            return 401, b'{"error":"UNAUTHORIZED","message":"Invalid API key"}'
        if asked == TID:
            return 200, json.dumps(fixture("status_processed.json")).encode()
        return 429, json.dumps(fixture("error_429.json")).encode()

    async with HttpServer(answer) as server, httpx.AsyncClient(timeout=10) as client:
        p = make_provider("upscayl", KEY, base_url=server.url)
        task = await p.fetch_status(client, TID)
        assert task.state == "succeeded" and task.credits == 10
        with pytest.raises(RateLimited) as info:
            await p.fetch_status(client, "other")
        assert info.value.retry_after == 3600
        with pytest.raises(AuthError):
            await Upscayl("wrong-key-000", base_url=server.url).fetch_status(client, TID)
    first = server.seen[0]
    assert (first["method"], first["path"]) == ("POST", "/get-task-status")
    assert all(seen["path"] == "/get-task-status" for seen in server.seen)
    assert first["headers"]["content-type"] == "application/json"
    assert json.loads(first["body"]) == {"data": {"taskId": TID}}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_closed_port_is_transient():
    p = Upscayl(KEY, base_url=f"http://127.0.0.1:{closed_port()}")
    async with httpx.AsyncClient(timeout=10) as client:
        with pytest.raises(Transient) as info:
            await p.fetch_status(client, TID)
    assert info.value.provider == "upscayl" and info.value.status is None
    assert KEY not in str(info.value) and KEY not in repr(info.value)


# ---------------------------------------------------------------- published bodies (issue 11)


def test_documented_file_path_is_a_detail_not_a_result(ups):
    """docs.upscayl.org: FileData has `path` (storage) and no link."""
    task = parse(ups, 200, PUB.DOCS_PROCESSED)
    assert task.state == "succeeded"
    assert task.results == []
    assert task.details["storage path"] == PUB.FILE_DATA["path"]
    assert task.details["expires"] == "2022-01-01T00:00:00Z"  # 1640995200
    assert task.credits == 10


def test_openapi_file_link_is_the_result_and_path_a_detail(ups):
    second = {**PUB.PROCESSED_FILE, "path": "users/u1/b.png", "downloadLink": None,
              "downloadUrl": "https://cdn.upscayl.org/users/u1/b.png", "expiresAt": 1764000000000}
    task = parse(ups, 200, wrap(status="completed", files=[PUB.PROCESSED_FILE, second]))
    assert task.results == [PUB.PROCESSED_FILE["downloadLink"], "https://cdn.upscayl.org/users/u1/b.png"]
    assert task.details["storage path"] == "users/u1/a.png\nusers/u1/b.png"
    assert task.details["expires"] == "2025-11-24T16:00:00Z"  # the earliest, from ms


def test_not_yet_charged_is_no_credits(ups):
    task = parse(ups, 200, PUB.DOCS_NOT_YET_CHARGED)
    assert task.credits is None
    assert task.details["credits to deduct"] == "10"
    assert "credits to deduct" not in parse(ups, 200, PUB.DOCS_PROCESSED).details


def test_openapi_example_and_no_history(ups):
    task = parse(ups, 200, PUB.OPENAPI_PROCESSING)
    assert (task.state, task.progress, task.results, task.details) == ("running", 75.0, [], {})
    # history rows have no id field, so the list can never answer for a tracked task
    assert not {"taskId", "task_id", "id", "_id"} & set(PUB.PROCESSING_TASK_PROPERTIES)
    assert Upscayl.has_list is False
