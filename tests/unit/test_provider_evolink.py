"""EvoLink client: request shapes, every documented body and status, balance,
bad bodies, hostile text, and real HTTP round trips over 127.0.0.1."""

from __future__ import annotations

import email.utils
import importlib.util
from pathlib import Path
import json
import socket
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from tui.providers.evolink import Evolink
from http_server import HttpServer

KEY = "evk-test-0123456789abcdef"


def _published():
    """tests/data/published_evolink.py: bodies published by EvoLink."""
    path = Path(__file__).parents[1] / "data" / "published_evolink.py"
    spec = importlib.util.spec_from_file_location("published_evolink", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PUB = _published()
ID = "task-unified-1756817821-4x3rx6ny"

SEED_200 = {  # seeds/evolink-task-detail.md
    "created": 1756817821,
    "id": ID,
    "model": "gpt-4o-image",
    "object": "image.generation.task",
    "progress": 100,
    "results": ["http://example.com/image.jpg"],
    "status": "completed",
    "task_info": {"can_cancel": False},
    "type": "image",
}
CREATED = {  # providers.md §5: the create answer, same object as the status GET
    "created": 1756817821, "id": ID, "model": "gpt-image-2", "object": "image.generation.task",
    "progress": 0, "status": "pending", "task_info": {"can_cancel": True, "estimated_time": 100},
    "type": "image", "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"},
}


def err(code, message, type_, **extra):
    return {"error": {"code": code, "message": message, "type": type_, **extra}}


SEED_ERRORS = [  # (status, body, error class, retry_after) from the seed and providers.md
    # a 400 about the task id ends the task as not found (issue 11; it used to be a
    # ClientError, retried for ever with no error shown)
    (400, err(400, "Invalid task ID format", "invalid_request_error", param="task_id"), NotFound, None),
    (401, err(401, "Invalid or expired token", "authentication_error"), AuthError, None),
    (402, err(402, "Insufficient quota", "insufficient_quota_error",
              fallback_suggestion="https://evolink.ai/dashboard/billing"), QuotaExhausted, None),
    (403, err(403, "Access denied", "permission_error"), AuthError, None),
    (404, err(404, "Task not found or expired", "not_found_error", param="task_id"), NotFound, None),
    (413, err(413, "Request too large", "request_too_large_error"), ClientError, None),
    (429, err(429, "Rate limit exceeded", "rate_limit_error", fallback_suggestion="retry after 60 seconds"),
     RateLimited, 60.0),
    (500, err(500, "Internal server error", "internal_server_error", fallback_suggestion="try again later"),
     Transient, None),
    (502, err(502, "Upstream service error", "upstream_error", fallback_suggestion="try again later"),
     Transient, None),
    (503, err(503, "Service temporarily unavailable", "service_unavailable_error",
              fallback_suggestion="retry after 30 seconds"), Transient, 30.0),
]


@pytest.fixture
def ev() -> Evolink:
    return Evolink(KEY)


def ok(body, status=200, **headers) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# ---------------------------------------------------------------- requests


def test_class_contract():
    p = make_provider("evolink", KEY)
    assert isinstance(p, Evolink)
    assert p.name == "evolink" and p.base_url == "https://api.evolink.ai"
    assert p.has_balance and not p.has_list and p.default_kind is None
    rate, per = p.default_rate_limit.split("/")
    assert per in ("s", "m", "h") and int(rate) > 0


def test_status_request_shape(ev):
    req = ev.status_request(ID, None)
    assert (req.method, req.url, req.json) == ("GET", f"https://api.evolink.ai/v1/tasks/{ID}", None)
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["Accept"] == "application/json"
    assert KEY not in repr(req)
    assert ev.status_request("a/../b?c", "video").url == "https://api.evolink.ai/v1/tasks/a%2F..%2Fb%3Fc"


def test_balance_request_shape():
    req = Evolink(KEY, "http://127.0.0.1:1/evo/").balance_request()
    assert (req.method, req.url) == ("GET", "http://127.0.0.1:1/evo/v1/credits")
    assert req.headers["Authorization"] == f"Bearer {KEY}"


# ---------------------------------------------------------------- documented 200 bodies


def test_seed_example(ev):
    t = ev.parse_status(ID, None, ok(SEED_200))
    assert (t.provider, t.task_id, t.state, t.provider_status) == ("evolink", ID, "succeeded", "completed")
    assert t.progress == 100.0 and t.results == ["http://example.com/image.jpg"]
    assert t.model == "gpt-4o-image" and t.kind == "image"
    assert t.created_at == 1756817821.0 and t.to_dict()["created_at"] == "2025-09-02T12:57:01Z"
    assert t.error is None and t.credits is None and t.eta is None and t.label is None
    assert t.raw == SEED_200 and t.updated_at


def test_create_answer_shape(ev):
    t = ev.parse_status(ID, None, ok(CREATED))
    assert (t.state, t.progress, t.eta, t.credits, t.model) == ("queued", 0.0, 100.0, 2.5, "gpt-image-2")
    assert t.results == []


def test_kind_given_wins_over_type(ev):
    assert ev.parse_status(ID, "my-kind", ok(SEED_200)).kind == "my-kind"
    assert ev.parse_status(ID, None, ok({**SEED_200, "type": None})).kind is None


@pytest.mark.parametrize(
    "status, state",
    [("pending", "queued"), ("processing", "running"), ("completed", "succeeded"), ("failed", "failed"),
     ("cancelled", "cancelled"), ("canceled", "cancelled"), ("COMPLETED", "succeeded"),
     ("paused", "unknown"), ("", "unknown")],
)
def test_statuses(ev, status, state):
    t = ev.parse_status(ID, None, ok({**SEED_200, "status": status}))
    assert t.state == state
    assert t.provider_status == (status or None)


def test_result_data_links_join_results(ev):
    body = {**SEED_200, "type": "audio", "object": "audio.generation.task",
            "results": ["https://cdn/a.mp3", "https://cdn/cover.png"],
            "result_data": [
                {"result_id": "r1", "duration": 184.2, "tags": "pop, upbeat", "title": "Song",
                 "image_url": "https://cdn/cover.png", "audio_url": "https://cdn/a.mp3",
                 "stream_audio_url": "https://cdn/a.m3u8", "video_url": None},
                {"result_id": "r2", "video_url": "https://cdn/v.mp4", "audio_url": ""},
                "not an item", None,
            ]}
    t = ev.parse_status(ID, None, ok(body))
    assert t.results == ["https://cdn/a.mp3", "https://cdn/cover.png", "https://cdn/a.m3u8", "https://cdn/v.mp4"]
    assert t.kind == "audio"


def test_task_info_and_usage_variants(ev):
    body = {**SEED_200, "status": "processing", "progress": 40,
            "task_info": {"can_cancel": True, "estimated_time": "120", "video_duration": 8},
            "usage": {"billing_rule": "per_second", "credits_reserved": "12.5", "user_group": "vip"}}
    t = ev.parse_status(ID, None, ok(body))
    assert (t.state, t.progress, t.eta, t.credits) == ("running", 40.0, 120.0, 12.5)
    weird = {**SEED_200, "task_info": "n/a", "usage": [1], "progress": "abc"}
    t = ev.parse_status(ID, None, ok(weird))
    assert (t.eta, t.credits, t.progress) == (None, None, None)
    zero = {**SEED_200, "task_info": {"estimated_time": 0}}
    assert ev.parse_status(ID, None, ok(zero)).eta is None


@pytest.mark.parametrize("value, expected", [(55, 55.0), ("70", 70.0), (150, 100.0), (-1, 0.0), (None, None)])
def test_progress(ev, value, expected):
    assert ev.parse_status(ID, None, ok({**SEED_200, "progress": value})).progress == expected


@pytest.mark.parametrize("created, expected", [(1756817821000, 1756817821.0), ("2025-09-02T12:57:01Z", 1756817821.0),
                                               (None, None), ("soon", None), (0, None)])
def test_created(ev, created, expected):
    assert ev.parse_status(ID, None, ok({**SEED_200, "created": created})).created_at == expected


def test_failed_task_error(ev):
    body = {**SEED_200, "status": "failed", "progress": 30, "results": [],
            "error": {"code": "content_policy_violation", "message": "Prompt rejected by safety system",
                      "type": "invalid_request_error"}}
    t = ev.parse_status(ID, None, ok(body))
    assert t.state == "failed" and t.error == "Prompt rejected by safety system (content_policy_violation)"
    same = {**body, "error": {"code": "generation_timeout", "message": "generation_timeout: took too long"}}
    assert ev.parse_status(ID, None, ok(same)).error == "generation_timeout: took too long"
    code_only = {**body, "error": {"code": "unknown_error"}}
    assert ev.parse_status(ID, None, ok(code_only)).error == "unknown_error"
    bare = {**body, "error": "it broke"}
    assert ev.parse_status(ID, None, ok(bare)).error == "it broke"
    assert ev.parse_status(ID, None, ok({**body, "error": None})).error is None


# ---------------------------------------------------------------- documented errors


@pytest.mark.parametrize("status, body, cls, wait", SEED_ERRORS, ids=[str(e[0]) for e in SEED_ERRORS])
def test_seed_errors(ev, status, body, cls, wait):
    with pytest.raises(cls) as info:
        ev.parse_status(ID, None, ok(body, status))
    e = info.value
    assert type(e) is cls and e.status == status and e.provider == "evolink"
    assert e.message.startswith(body["error"]["message"])
    assert e.code == body["error"]["type"]
    assert e.retry_after == wait


def test_402_message_points_to_billing(ev):
    with pytest.raises(QuotaExhausted) as info:
        ev.parse_status(ID, None, ok(SEED_ERRORS[2][1], 402))
    assert info.value.message == "Insufficient quota (https://evolink.ai/dashboard/billing)"


def test_429_retry_after_header_first(ev):
    body = SEED_ERRORS[6][1]
    with pytest.raises(RateLimited) as info:
        ev.parse_status(ID, None, ok(body, 429, **{"Retry-After": "5"}))
    assert info.value.retry_after == 5.0
    date = email.utils.formatdate(time.time() + 90, usegmt=True)
    with pytest.raises(RateLimited) as info:
        ev.parse_status(ID, None, ok(body, 429, **{"Retry-After": date}))
    assert 30 < info.value.retry_after <= 91
    with pytest.raises(RateLimited) as info:
        ev.parse_status(ID, None, ok({"error": {"code": 429, "message": "slow"}}, 429))
    assert info.value.retry_after is None


def test_errors_on_balance_endpoint(ev):
    with pytest.raises(AuthError):
        ev.parse_balance(ok(SEED_ERRORS[1][1], 401))
    with pytest.raises(Transient):
        ev.parse_balance(httpx.Response(502, content=b"<html><title>Bad gateway</title></html>"))


# ---------------------------------------------------------------- balance


def test_balance_is_the_lower_bucket():
    # issue 11: the key can spend the lower of its own bucket and the account's
    # (this test used to expect the user bucket whatever the key's limit)
    body = {"success": True, "message": "ok", "data": {
        "token": {"remaining_credits": 50, "unlimited_credits": False, "used_credits": 5},
        "user": {"remaining_credits": 1234.5, "used_credits": 99}}}
    b = Evolink(KEY).parse_balance(ok(body))
    assert (b.provider, b.remaining, b.used, b.unit) == ("evolink", 50.0, 5.0, "credits")
    assert b.note == "key 50 · account 1234.5 credits"
    assert b.raw == body


def test_balance_token_only_and_unlimited():
    ev = Evolink(KEY)
    token = {"success": True, "data": {"token": {"remaining_credits": "50", "unlimited_credits": False,
                                                 "used_credits": "5"}}}
    assert (ev.parse_balance(ok(token)).remaining, ev.parse_balance(ok(token)).used) == (50.0, 5.0)
    unlimited = {"success": True, "data": {"token": {"remaining_credits": 0, "unlimited_credits": True,
                                                     "used_credits": 7}}}
    b = ev.parse_balance(ok(unlimited))
    # the note is Balance.note now (issue 11), no longer written into the raw answer
    assert b.remaining is None and b.used == 7.0 and b.note == "key unlimited"
    user_blank = {"success": True, "data": {"user": {"remaining_credits": None},
                                            "token": {"remaining_credits": 3, "used_credits": 1}}}
    assert ev.parse_balance(ok(user_blank)).remaining == 3.0


@pytest.mark.parametrize(
    "body, match",
    [({"success": False, "message": "token revoked"}, "token revoked"),
     ({"success": True, "data": {}}, "no user or token"),
     ({"success": True}, "no user or token"),
     ({"success": True, "data": "x"}, "no user or token"),
     ([1, 2], "expected an object")],
)
def test_balance_bad_bodies(body, match):
    with pytest.raises(BadResponse, match=match):
        Evolink(KEY).parse_balance(ok(body))


# ---------------------------------------------------------------- bad bodies


@pytest.mark.parametrize(
    "content",
    [b"<!DOCTYPE html><html><head><title>EvoLink</title></head></html>", b"OK", b"\xff\xfe\x00{",
     b"", b"[]", b"null", b"42", b'"completed"', b"{}", b'{"id": "x", "progress": 5}',
     b'{"error": {"code": 500, "message": "oops"}}'],
)
def test_bad_bodies(ev, content):
    with pytest.raises(BadResponse) as info:
        ev.parse_status(ID, None, httpx.Response(200, content=content))
    assert info.value.provider == "evolink"


def test_lenient_shapes_are_read(ev):
    body = {"status": "processing", "results": "https://cdn/one.png", "result_data": {"oops": 1},
            "model": {"name": "x"}, "progress": 12.7, "extra_field": [1, 2]}
    t = ev.parse_status(ID, None, ok(body))
    assert (t.state, t.results, t.model, t.progress) == ("running", ["https://cdn/one.png"], None, 12.7)


# ---------------------------------------------------------------- hostile text


def test_hostile_strings_are_cleaned(ev):
    body = {**SEED_200, "status": "failed",
            "model": "\x1b[2J\x1b]0;pwned\x07gpt\u202e-4o",
            "results": ["\x1b]52;c;cm0gLXJmIH4=\x07https://cdn/x.png", "https://cdn/has space.png"],
            "error": {"code": "\x9b31mservice_error", "message": "[red]boom[/red]\x00" + "y" * 100_000}}
    t = ev.parse_status(ID, None, ok(body))
    assert t.model == "gpt-4o"
    assert t.results == ["https://cdn/x.png"]
    assert t.error.startswith("[red]boom[/red]y") and len(t.error) <= 500
    for text in (t.model, t.error, t.provider_status, *t.results):
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in text)


def test_hostile_error_message(ev):
    body = err(400, "\x1b]8;;https://evil\x1b\\bad id\x1b]8;;\x1b\\ [b]x[/b]", "invalid_request_error\x07")
    with pytest.raises(ClientError) as info:
        ev.parse_status(ID, None, ok(body, 400))
    assert info.value.message == "bad id [b]x[/b]" and info.value.code == "invalid_request_error"


def test_key_never_in_errors(ev):
    cases = [(401, err(401, f"Invalid or expired token {KEY}", "authentication_error")),
             (429, err(429, "slow", KEY, fallback_suggestion=f"retry after 1 second, {KEY}")),
             (500, f"<html><title>{KEY}</title></html>"), (200, f"not json {KEY}"), (200, {"id": KEY})]
    for status, body in cases:
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        for call in (lambda r: ev.parse_status(ID, None, r), ev.parse_balance):
            with pytest.raises(ProviderError) as info:
                call(httpx.Response(status, content=content))
            e = info.value
            assert KEY not in str(e) and KEY not in repr(e) and KEY not in str(e.code)


# ---------------------------------------------------------------- any JSON at all

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
KEYS = st.sampled_from(["id", "status", "progress", "results", "result_data", "image_url", "video_url", "task_info", "estimated_time", "usage", "credits_reserved", "error", "code", "message", "fallback_suggestion", "created", "model", "type", "success", "data", "user", "token", "remaining_credits", "unlimited_credits"]) | st.text(max_size=8)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(KEYS, inner, max_size=6), max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(body=ANY_JSON, status=st.sampled_from([200, 200, 200, 400, 401, 402, 404, 429, 500, 503]))
def test_any_json_ends_in_a_value_or_a_provider_error(body, status):
    p = Evolink(KEY)
    response = httpx.Response(status, content=json.dumps(body).encode())
    for call in (lambda p, r: p.parse_status(ID, None, r), lambda p, r: p.parse_balance(r)):
        try:
            value = call(p, response)
        except ProviderError as exc:
            assert exc.provider == "evolink" and isinstance(exc.message, str)
            continue
        assert status == 200
        for task in value if isinstance(value, list) else [value]:
            texts = [getattr(task, f, None) for f in ("task_id", "state", "provider_status", "error", "model")]
            texts += getattr(task, "results", [])
            for text in texts:
                assert text is None or not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)


# ---------------------------------------------------------------- over a real socket


DEFAULT_404 = (404, err(404, "Task not found or expired", "not_found_error"))  # what the one test server answers for a path no route names


async def test_round_trip_status_balance_and_errors():
    credits = {"success": True, "message": "ok", "data": {
        "token": {"remaining_credits": 10, "unlimited_credits": False, "used_credits": 1},
        "user": {"remaining_credits": 321, "used_credits": 12}}}
    routes = {
        f"/v1/tasks/{ID}": (200, CREATED),
        "/v1/credits": (200, credits),
        "/v1/tasks/busy": (429, SEED_ERRORS[6][1], {"Retry-After": "7"}),
        "/v1/tasks/broken": (200, b"<html><title>Maintenance</title></html>"),
    }
    async with HttpServer(routes, default=DEFAULT_404) as srv, httpx.AsyncClient(timeout=10) as client:
        p = make_provider("evolink", KEY, srv.url)
        task = await p.fetch_status(client, ID)
        assert (task.state, task.eta, task.credits) == ("queued", 100.0, 2.5)
        balance = await p.fetch_balance(client)
        # the key's own bucket (10) is the lower one: that is what it can spend (issue 11)
        assert (balance.remaining, balance.used) == (10.0, 1.0)
        assert balance.note == "key 10 · account 321 credits"
        with pytest.raises(RateLimited) as info:
            await p.fetch_status(client, "busy")
        assert info.value.retry_after == 7.0
        with pytest.raises(NotFound):
            await p.fetch_status(client, "gone")
        with pytest.raises(BadResponse, match="Maintenance"):
            await p.fetch_status(client, "broken")
    assert [(m, t) for m, t, _ in srv.requests] == [
        ("GET", f"/v1/tasks/{ID}"), ("GET", "/v1/credits"), ("GET", "/v1/tasks/busy"),
        ("GET", "/v1/tasks/gone"), ("GET", "/v1/tasks/broken")]
    for _, _, headers in srv.requests:
        assert headers["authorization"] == f"Bearer {KEY}"


async def test_closed_port_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = make_provider("evolink", KEY, f"http://127.0.0.1:{port}")
    async with httpx.AsyncClient(timeout=10) as client:
        with pytest.raises(Transient) as info:
            await p.fetch_status(client, ID)
        with pytest.raises(Transient):
            await p.fetch_balance(client)
    assert info.value.provider == "evolink" and KEY not in repr(info.value)


async def test_server_slower_than_timeout_is_transient():
    async with HttpServer({"/v1/credits": "hang", f"/v1/tasks/{ID}": "hang"}, default=DEFAULT_404) as srv:
        async with httpx.AsyncClient(timeout=0.3) as client:
            p = make_provider("evolink", KEY, srv.url)
            with pytest.raises(Transient, match="timed out"):
                await p.fetch_status(client, ID)
            with pytest.raises(Transient, match="timed out"):
                await p.fetch_balance(client)


# ---------------------------------------------------------------- ids that could reach other endpoints (issue 12 item 11)


@pytest.mark.parametrize("task_id", [".", "..", ""])
def test_dot_and_empty_ids_are_refused(ev, task_id):
    """httpx resolves dot segments: /BASE/.. would be another endpoint on the host."""
    with pytest.raises(ClientError) as info:
        ev.status_request(task_id, None)
    assert info.value.provider == 'evolink'
    assert "invalid task id" in info.value.message


def test_other_characters_are_percent_encoded(ev):
    url = ev.status_request("../x?y#z%2e", None).url
    assert url.endswith("/..%2Fx%3Fy%23z%252e")
    assert httpx.Request("GET", url).url.raw_path.endswith(b"/..%2Fx%3Fy%23z%252e")


# ---------------------------------------------------------------- published bodies (issue 11)


def test_invalid_task_id_is_not_found_with_the_message(ev):
    """docs.evolink.ai get-task-detail: the 400 for a malformed id ends the task."""
    with pytest.raises(NotFound) as info:
        ev.parse_status("not-a-task", None, ok(PUB.INVALID_TASK_ID_400, 400))
    assert info.value.message == "Invalid task ID format, must start with 'task-unified-'"
    assert info.value.code == "invalid_task_id" and info.value.status == 400
    with pytest.raises(NotFound):  # any 400 whose error.param is task_id
        ev.parse_status("x", None, ok(PUB.SEED_400, 400))
    with pytest.raises(ClientError):  # a 400 about something else stays a client error
        ev.parse_status("x", None, ok(err(400, "bad size", "invalid_request_error", param="size"), 400))


def test_request_cancelled_is_cancelled(ev):
    t = ev.parse_status(PUB.CANCELLED_TASK["id"], None, ok(PUB.CANCELLED_TASK))
    assert t.state == "cancelled" and t.provider_status == "failed"
    assert "request_cancelled" in t.error
    other = {**PUB.CANCELLED_TASK, "error": {"code": "generation_timeout", "message": "timed out"}}
    assert ev.parse_status(other["id"], None, ok(other)).state == "failed"


def test_published_credits_lower_bucket_and_both_in_the_note(ev):
    """docs.evolink.ai get-credits: token 99416.4429 (limited), user 1095.3996."""
    b = ev.parse_balance(ok(PUB.CREDITS))
    assert b.remaining == pytest.approx(1095.3996)
    assert b.note == "key 99416.44 · account 1095.4 credits"
    unlimited = {**PUB.CREDITS, "data": {**PUB.CREDITS["data"],
                                         "token": {**PUB.CREDITS["data"]["token"], "unlimited_credits": True}}}
    b = ev.parse_balance(ok(unlimited))
    assert b.remaining == pytest.approx(1095.3996)
    assert b.note == "key unlimited · account 1095.4 credits"
