"""Comfy provider: request shape, parsing of every documented body, errors,
and a real HTTP round trip over 127.0.0.1."""

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
from tui.providers.comfy import Comfy
from http_server import HttpServer

FIXTURES = Path(__file__).parents[1] / "data" / "comfy"


def _published():
    """tests/data/published_comfy.py: bodies and rules published by Comfy/ComfyUI."""
    path = Path(__file__).parents[1] / "data" / "published_comfy.py"
    spec = importlib.util.spec_from_file_location("published_comfy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PUB = _published()
KEY = "comfyui-SECRETKEY1234567890"
TID = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def comfy() -> Comfy:
    return Comfy(KEY)


def parse(p: Comfy, status: int, body=None, *, content: bytes | None = None, headers=None,
          task_id: str = TID, kind: str | None = None):
    if content is not None:
        response = httpx.Response(status, content=content, headers=headers)
    else:
        response = httpx.Response(status, json=body, headers=headers)
    return p.parse_status(task_id, kind, response)


# ---------------------------------------------------------------- request


def test_class_attributes():
    assert Comfy.name == "comfy"
    assert Comfy.default_base_url == "https://api.comfy.org"
    assert Comfy.default_kind == "image-relight"
    assert Comfy.default_poll_interval == 10.0
    assert Comfy.has_balance is True and Comfy.has_list is False
    assert isinstance(make_provider("comfy", KEY), Comfy)


def test_status_request_default_kind(comfy):
    req = comfy.status_request(TID)
    assert req.method == "GET"
    assert req.url == f"https://api.comfy.org/proxy/freepik/v1/ai/image-relight/{TID}"
    # exactly one auth header (issue 11): an API key goes in X-API-KEY only, as
    # ComfyUI's get_auth_header does; it used to be sent as a bearer too
    assert req.headers["X-API-KEY"] == KEY
    assert "Authorization" not in req.headers
    assert req.json is None


def test_status_request_other_kind_and_base():
    p = Comfy("jwt.token.value", base_url="http://127.0.0.1:9999/")
    # skin-enhancer is created on .../skin-enhancer/faithful but polled on
    # .../skin-enhancer/{id} (ComfyUI nodes_magnific.py); this test used to expect
    # the create path, a route that does not exist (issue 11)
    req = p.status_request("abc", "skin-enhancer/faithful")
    assert req.url == "http://127.0.0.1:9999/proxy/freepik/v1/ai/skin-enhancer/abc"
    assert p.status_request("abc", "/image-relight/").url.endswith("/v1/ai/image-relight/abc")
    assert req.headers["Authorization"] == "Bearer jwt.token.value"
    assert "X-API-KEY" not in req.headers  # a JWT is not a Comfy API key


def test_status_request_quotes_hostile_ids(comfy):
    req = comfy.status_request("a/../b?x=1#f")
    assert req.url.endswith("/image-relight/a%2F..%2Fb%3Fx%3D1%23f")
    for bad in ("", ".", ".."):
        with pytest.raises(ClientError):
            comfy.status_request(bad)
    with pytest.raises(ClientError):
        comfy.status_request("x", "image-relight/../../customers")


def test_request_repr_hides_key(comfy):
    assert KEY not in repr(comfy.status_request(TID))
    assert KEY not in repr(comfy)


def test_balance_request(comfy):
    req = comfy.balance_request()
    assert (req.method, req.url) == ("GET", "https://api.comfy.org/customers/balance")
    # a comfyui- key travels in X-API-KEY only (issue 11: one auth header, as ComfyUI)
    assert req.headers["X-API-KEY"] == KEY and "Authorization" not in req.headers


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "status, state",
    [
        ("CREATED", "queued"),
        ("IN_PROGRESS", "running"),
        ("COMPLETED", "succeeded"),
        ("FAILED", "failed"),
        ("CANCELLED", "cancelled"),
        ("in_progress", "running"),
        ("PAUSED", "unknown"),
    ],
)
@pytest.mark.parametrize("wrapped", [True, False])
def test_states_wrapped_and_bare(comfy, status, state, wrapped):
    item = {"task_id": TID, "status": status, "generated": []}
    task = parse(comfy, 200, {"data": item} if wrapped else item)
    assert task.state == state
    assert task.provider_status == status
    assert task.provider == "comfy" and task.task_id == TID and task.kind == "image-relight"
    assert task.progress is None and task.label is None
    assert task.updated_at is not None


def test_completed_fixture(comfy):
    body = fixture("status_completed.json")
    task = parse(comfy, 200, body)
    assert task.state == "succeeded"
    assert task.results == ["https://ai-statics.freepik.com/content/relight/046b6c7f.jpg"]
    assert task.raw == body
    assert task.error is None


def test_bare_fixture_keeps_requested_kind(comfy):
    task = parse(comfy, 200, fixture("status_bare_created.json"), kind="image-style-transfer")
    assert task.state == "queued"
    assert task.kind == "image-style-transfer"
    assert task.results == []


def test_extra_fields_and_missing_generated(comfy):
    task = parse(comfy, 200, {"data": {"status": "IN_PROGRESS", "has_nsfw": [False], "x": {"y": 1}}})
    assert task.state == "running"
    assert task.results == []


def test_failed_with_message_is_kept(comfy):
    task = parse(comfy, 200, {"data": {"task_id": TID, "status": "FAILED", "generated": [],
                                       "message": "image too small"}})
    assert task.state == "failed"
    assert task.error == "image too small"


def test_hostile_strings_are_cleaned(comfy):
    body = {"data": {"task_id": TID, "status": "\x1b[2JWEIRD\x07",
                     "generated": ["https://x.example/a.png\x1b]52;c;ZXZpbA==\x07",
                                   "\x1b[31m", "not a url with spaces"],
                     "error": "boom"}}
    task = parse(comfy, 200, body)
    assert task.state == "unknown"
    assert task.provider_status == "WEIRD"
    assert task.results == ["https://x.example/a.png"]
    body["data"]["status"] = "FAILED"
    body["data"]["error"] = "bad\x1b]0;title\x07 \x00thing\u202e"
    assert parse(comfy, 200, body).error == "bad thing"


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"task_id": TID}},  # no status
        {"data": {"status": {"nested": 1}}},
        {"data": {"status": "COMPLETED", "generated": "https://x/a.png"}},
        {"unrelated": True},
        [1, 2, 3],
        "COMPLETED",
        None,
    ],
)
def test_wrong_shapes_are_bad_response(comfy, body):
    with pytest.raises(BadResponse) as info:
        parse(comfy, 200, body)
    assert info.value.provider == "comfy"


@pytest.mark.parametrize("content", [b"", b"<html><title>oops</title></html>", b"{not json", b"\xff\xfe"])
def test_unreadable_200_is_bad_response(comfy, content):
    with pytest.raises(BadResponse):
        parse(comfy, 200, content=content)


# ---------------------------------------------------------------- errors


def test_404_not_found(comfy):
    with pytest.raises(NotFound) as info:
        parse(comfy, 404, content=b"")
    assert info.value.status == 404
    with pytest.raises(NotFound):
        parse(comfy, 404, {"message": "Task not found"})


def test_500_error_body_is_transient_with_message(comfy):
    with pytest.raises(Transient) as info:
        parse(comfy, 500, fixture("error_500.json"))
    assert info.value.message == "upstream relight service failed"
    assert info.value.code == "Internal Server Error"
    assert info.value.status == 500


@pytest.mark.parametrize(
    "status, error",
    [(401, AuthError), (403, AuthError), (402, QuotaExhausted), (429, RateLimited),
     (400, ClientError), (408, Transient), (502, Transient), (503, Transient)],
)
def test_statuses(comfy, status, error):
    with pytest.raises(error):
        parse(comfy, status, {"error": "x", "message": "m"})


def test_html_502_is_transient(comfy):
    with pytest.raises(Transient) as info:
        parse(comfy, 502, content=b"<html><head><title>502 Bad Gateway</title></head></html>",
              headers={"content-type": "text/html"})
    assert "502 Bad Gateway" in info.value.message


def test_429_retry_after_header(comfy):
    with pytest.raises(RateLimited) as info:
        parse(comfy, 429, {"message": "slow down"}, headers={"Retry-After": "17"})
    assert info.value.retry_after == 17


def test_hostile_error_message_cleaned(comfy):
    with pytest.raises(Transient) as info:
        parse(comfy, 500, {"error": "E", "message": "\x1b]52;c;ZXZpbA==\x07fail\x1b[2J"})
    assert info.value.message == "fail"


def test_key_never_in_errors(comfy):
    # a server that echoes the key back in its message, in a 401 and in a bad shape
    cases = [
        (401, {"error": "unauthorized", "message": f"bad key {KEY}"}),
        (200, {"data": {"status": ["COMPLETED", KEY]}}),
        (500, {"message": f"Authorization: Bearer {KEY}"}),
    ]
    for status, body in cases:
        with pytest.raises(ProviderError) as info:
            parse(comfy, status, body)
        for text in (str(info.value), repr(info.value), info.value.message):
            assert KEY not in text
        assert "***" in info.value.message


def test_key_masked_in_task_error(comfy):
    task = parse(comfy, 200, {"data": {"status": "FAILED", "message": f"token {KEY} expired"}})
    assert task.error == "token *** expired"


# ---------------------------------------------------------------- balance


def test_balance_cents_to_usd(comfy):
    body = fixture("balance.json")
    bal = comfy.parse_balance(httpx.Response(200, json=body))
    assert bal.provider == "comfy"
    assert bal.remaining == pytest.approx(10.00)  # effective 1000 cents
    assert bal.unit == "usd"
    assert bal.raw == body


def test_balance_falls_back_to_amount(comfy):
    bal = comfy.parse_balance(httpx.Response(200, json={"amount_micros": "250", "currency": "USD"}))
    assert bal.remaining == pytest.approx(2.5)
    assert bal.unit == "usd"


@pytest.mark.parametrize("body", [{}, {"currency": "usd"}, [1], {"amount_micros": "lots"},
                                  {"effective_balance_micros": "NaN"}])
def test_balance_bad_shapes(comfy, body):
    with pytest.raises(BadResponse):
        comfy.parse_balance(httpx.Response(200, json=body))


def test_balance_402(comfy):
    with pytest.raises(QuotaExhausted):
        comfy.parse_balance(httpx.Response(402, json={"message": "Payment Required"}))


# ---------------------------------------------------------------- real HTTP


DEFAULT_404 = (404, b'{"message":"Task not found"}')  # what the one test server answers for a path no route names


async def test_round_trip_over_localhost():
    body = json.dumps(fixture("status_completed.json")).encode()
    path = f"/proxy/freepik/v1/ai/image-relight/{TID}"
    routes = {("GET", path): (200, body),
              ("GET", "/customers/balance"): (200, json.dumps(fixture("balance.json")).encode())}
    async with HttpServer(routes, default=DEFAULT_404) as server, httpx.AsyncClient(timeout=10) as client:
        p = make_provider("comfy", KEY, base_url=server.url)
        task = await p.fetch_status(client, TID)
        assert task.state == "succeeded"
        assert task.results[0].startswith("https://ai-statics.freepik.com/")
        bal = await p.fetch_balance(client)
        assert bal.remaining == pytest.approx(10.0)
        with pytest.raises(NotFound):
            await p.fetch_status(client, "missing-id")
    first = server.seen[0]
    assert (first["method"], first["path"]) == ("GET", path)
    # one auth header for a comfyui- key: X-API-KEY, no bearer (issue 11)
    assert first["headers"]["x-api-key"] == KEY and "authorization" not in first["headers"]
    assert first["body"] == b""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_closed_port_is_transient():
    p = Comfy(KEY, base_url=f"http://127.0.0.1:{closed_port()}")
    async with httpx.AsyncClient(timeout=10) as client:
        with pytest.raises(Transient) as info:
            await p.fetch_status(client, TID)
    assert info.value.provider == "comfy"
    assert info.value.status is None
    assert KEY not in str(info.value) and KEY not in repr(info.value)


# ---------------------------------------------------------------- published by ComfyUI (issue 11)


@pytest.mark.parametrize("body", [PUB.TASK_STATUS_ALIAS, PUB.TASK_STATUS_ALIAS_BARE])
def test_task_status_alias_is_read(comfy, body):
    """ComfyUI's TaskResponse reads AliasChoices("status", "task_status")."""
    task = parse(comfy, 200, body)
    inner = body.get("data", body)
    assert task.provider_status == inner["task_status"]
    assert task.state == {"COMPLETED": "succeeded", "IN_PROGRESS": "running"}[inner["task_status"]]


@pytest.mark.parametrize("word, state",
                         [(w, "succeeded") for w in PUB.COMPLETED_STATUSES]
                         + [(w, "cancelled" if w.startswith("cancel") else "failed") for w in PUB.FAILED_STATUSES]
                         + [(w, "queued") for w in PUB.QUEUED_STATUSES]
                         + [(w, "running") for w in ("in_progress", "processing", "running")])
@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_status_words_of_comfyui_poller(comfy, word, state, case):
    """Every word ComfyUI's poller knows, in any case (it lower-cases first)."""
    task = parse(comfy, 200, {"data": {"task_id": TID, "status": case(word), "generated": []}})
    assert task.state == state


def test_exactly_one_auth_header():
    """ComfyUI's get_auth_header: Bearer for a token, else X-API-KEY for an API key."""
    key = Comfy("comfyui-abc123").status_request(TID).headers
    assert key[PUB.AUTH_HEADER_FOR_API_KEY] == "comfyui-abc123" and PUB.AUTH_HEADER_FOR_TOKEN not in key
    jwt = Comfy("eyJhbGciOi.payload.sig").status_request(TID).headers
    assert jwt[PUB.AUTH_HEADER_FOR_TOKEN] == "Bearer eyJhbGciOi.payload.sig"
    assert PUB.AUTH_HEADER_FOR_API_KEY not in jwt
    assert Comfy("comfyui-abc123").balance_request().headers.get("Authorization") is None


def test_balance_first_non_zero_field(comfy):
    """comfy-cli's BALANCE_FIELDS chain: a zero effective balance does not hide prepaid cents."""
    bal = comfy.parse_balance(httpx.Response(200, json=PUB.BALANCE_ZERO_EFFECTIVE))
    assert bal.remaining == pytest.approx(15.00)  # 1500 cents of prepaid
    bal = comfy.parse_balance(httpx.Response(200, json=PUB.BALANCE_POSITIVE))
    assert bal.remaining == pytest.approx(50_000.00)  # effective, the first field
    for name in PUB.BALANCE_FIELDS:  # each field alone is read, in cents
        bal = comfy.parse_balance(httpx.Response(200, json={name: 250}))
        assert bal.remaining == pytest.approx(2.5), name
    zero = {name: 0 for name in PUB.BALANCE_FIELDS}
    assert comfy.parse_balance(httpx.Response(200, json=zero)).remaining == 0


def test_409_is_a_problem_with_the_account(comfy):
    """ComfyUI: 409 = "There is a problem with your account"; stop with that cause."""
    with pytest.raises(AuthError) as info:
        parse(comfy, 409, {"message": PUB.MESSAGE_409})
    assert info.value.message == f"problem with your account (HTTP 409): {PUB.MESSAGE_409}"
    assert info.value.status == 409
    with pytest.raises(AuthError) as info:
        parse(comfy, 409, content=b"")
    assert info.value.message.startswith("problem with your account (HTTP 409): ")


# ---------------------------------------------------------------- kinds (issue 11)


@pytest.mark.parametrize("create, poll", sorted(PUB.CREATE_TO_POLL.items()))
def test_polls_where_comfyui_polls(comfy, create, poll):
    """--kind may name the create path; the request goes to ComfyUI's poll path."""
    kind = create.removeprefix("/proxy/freepik/v1/ai/")
    assert comfy.status_request(TID, kind).url == "https://api.comfy.org" + poll.format(task_id=TID)
    assert comfy.status_path(TID, kind) == poll.format(task_id=TID)
    assert comfy.check_kind(kind) is None
    assert comfy.poll_kind(kind) == poll.removeprefix("/proxy/freepik/v1/ai/").removesuffix("/{task_id}")


def test_known_kinds_are_the_poll_paths(comfy):
    polls = {p.removeprefix("/proxy/freepik/v1/ai/").removesuffix("/{task_id}") for p in PUB.CREATE_TO_POLL.values()}
    assert set(Comfy.known_kinds) == polls
    assert comfy.status_path(TID) == f"/proxy/freepik/v1/ai/image-relight/{TID}"  # the default kind


def test_unknown_kind_warns_and_is_still_used(comfy):
    warning = comfy.check_kind("relight")
    assert warning == ("unknown kind 'relight' for comfy; known: image-relight, image-style-transfer, "
                       "image-upscaler, image-upscaler-precision-v2, skin-enhancer")
    assert comfy.status_request(TID, "relight").url.endswith(f"/v1/ai/relight/{TID}")
    assert comfy.check_kind(None) is None
    assert "\x1b" not in comfy.check_kind("x\x1b[2Jy") and "invalid kind" in comfy.check_kind("a/../b")


# ---------------------------------------------------------------- ids that could reach other endpoints (issue 12 item 11)


@pytest.mark.parametrize("task_id", [".", "..", ""])
def test_dot_and_empty_ids_are_refused(comfy, task_id):
    """httpx resolves dot segments: /BASE/.. would be another endpoint on the host."""
    with pytest.raises(ClientError) as info:
        comfy.status_request(task_id, None)
    assert info.value.provider == 'comfy'
    assert "invalid task id" in info.value.message


def test_other_characters_are_percent_encoded(comfy):
    url = comfy.status_request("../x?y#z%2e", None).url
    assert url.endswith("/..%2Fx%3Fy%23z%252e")
    assert httpx.Request("GET", url).url.raw_path.endswith(b"/..%2Fx%3Fy%23z%252e")


@pytest.mark.parametrize("kind", ["..", "../v1/credits", "a/../b", "./x", "x/.", "a//b"])
def test_kinds_with_dot_segments_are_refused(comfy, kind):
    with pytest.raises(ClientError) as info:
        comfy.status_request("abc", kind)
    assert "invalid kind" in info.value.message
    assert comfy.check_kind(kind) == info.value.message
