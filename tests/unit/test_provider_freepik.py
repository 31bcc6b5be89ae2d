"""Freepik client: request shapes, every documented body and status, bad bodies,
hostile text, and real HTTP round trips over 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

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
    RateLimited,
    Transient,
)
from tui.providers import make_provider
from tui.providers.freepik import Freepik
from http_server import HttpServer

KEY = "fpk-test-0123456789abcdef"
ID = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"
KIND = "text-to-image/hyperflux"


def _published():
    """tests/data/published_freepik.py: facts and bodies published by Freepik/Magnific."""
    path = Path(__file__).parents[1] / "data" / "published_freepik.py"
    spec = importlib.util.spec_from_file_location("published_freepik", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PUB = _published()


@pytest.fixture
def fp() -> Freepik:
    return Freepik(KEY)


def ok(body, status=200, **headers) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# ---------------------------------------------------------------- requests


def test_class_contract():
    p = make_provider("freepik", KEY)
    assert isinstance(p, Freepik)
    assert p.name == "freepik" and p.base_url == "https://api.freepik.com"
    assert p.default_kind == KIND and p.default_rate_limit == "10/s"
    assert p.has_list and not p.has_balance


def test_status_request_shape(fp):
    req = fp.status_request(ID, None)
    assert req.method == "GET" and req.json is None
    assert req.url == f"https://api.freepik.com/v1/ai/{KIND}/{ID}"
    assert req.headers["x-freepik-api-key"] == KEY
    assert "Authorization" not in req.headers
    assert req.headers["Accept"] == "application/json"
    assert KEY not in repr(req)


def test_list_request_shape(fp):
    req = fp.list_request(None)
    assert (req.method, req.url) == ("GET", f"https://api.freepik.com/v1/ai/{KIND}")
    assert fp.list_request("image-relight").url == "https://api.freepik.com/v1/ai/image-relight"


def test_kinds_with_slashes_and_id_is_last_segment(fp):
    assert fp.status_request("abc", "image-to-video/kling").url == \
        "https://api.freepik.com/v1/ai/image-to-video/kling/abc"
    assert fp.status_request("abc", "/skin-enhancer/").url == "https://api.freepik.com/v1/ai/skin-enhancer/abc"
    assert fp.status_request("abc", " / ").url == f"https://api.freepik.com/v1/ai/{KIND}/abc"
    # an id can never climb out of its segment
    url = fp.status_request("../../v1/credits?x=1", KIND).url
    assert url == f"https://api.freepik.com/v1/ai/{KIND}/..%2F..%2Fv1%2Fcredits%3Fx%3D1"
    assert httpx.Request("GET", url).url.raw_path == f"/v1/ai/{KIND}/..%2F..%2Fv1%2Fcredits%3Fx%3D1".encode()


def test_base_url_override():
    p = Freepik(KEY, "http://127.0.0.1:8765/freepik/")
    assert p.status_request("t", None).url == f"http://127.0.0.1:8765/freepik/v1/ai/{KIND}/t"
    assert p.status_request("t", None).headers["x-freepik-api-key"] == KEY


def test_magnific_host_gets_the_magnific_header():
    req = Freepik(KEY, "https://api.magnific.com").status_request("t", None)
    assert req.url == f"https://api.magnific.com/v1/ai/{KIND}/t"
    assert req.headers["x-magnific-api-key"] == KEY and "x-freepik-api-key" not in req.headers


# ---------------------------------------------------------------- documented 200 bodies


def test_seed_list_example(fp):
    # seeds/freepik-hyperflux-list-tasks.md: the same id twice
    body = {"data": [{"task_id": ID, "status": "IN_PROGRESS"}, {"task_id": ID, "status": "IN_PROGRESS"}]}
    tasks = fp.parse_list(None, ok(body))
    assert len(tasks) == 1
    t = tasks[0]
    assert (t.provider, t.task_id, t.kind, t.state, t.provider_status) == ("freepik", ID, KIND, "running", "IN_PROGRESS")
    assert t.results == [] and t.error is None and t.progress is None and t.updated_at
    assert t.label is None


def test_list_of_many_kinds_and_states(fp):
    body = {"data": [
        {"task_id": "a", "status": "CREATED"},
        {"task_id": "b", "status": "COMPLETED", "generated": ["https://ai-statics.freepik.com/b.jpg"]},
        {"task_id": "c", "status": "FAILED"},
        {"task_id": "a", "status": "IN_PROGRESS"},  # a later entry for the same id wins
    ]}
    tasks = fp.parse_list("image-to-video/kling", ok(body))
    assert [(t.task_id, t.state) for t in tasks] == [("a", "running"), ("b", "succeeded"), ("c", "failed")]
    assert tasks[1].results == ["https://ai-statics.freepik.com/b.jpg"]
    assert {t.kind for t in tasks} == {"image-to-video/kling"}


def test_empty_list(fp):
    assert fp.parse_list(None, ok({"data": []})) == []


@pytest.mark.parametrize(
    "status, state, kept",
    [("CREATED", "queued", "CREATED"), ("IN_PROGRESS", "running", "IN_PROGRESS"),
     ("COMPLETED", "succeeded", "COMPLETED"), ("FAILED", "failed", "FAILED"),
     ("CANCELLED", "cancelled", "CANCELLED"), ("completed", "succeeded", "completed"),
     (" in progress ", "running", "in progress"), ("REVIEWING", "unknown", "REVIEWING"),
     ("", "unknown", None), (None, "unknown", None)],
)
def test_statuses(fp, status, state, kept):
    t = fp.parse_status(ID, None, ok({"data": {"task_id": ID, "status": status, "generated": []}}))
    assert (t.state, t.provider_status) == (state, kept)


def test_hyperflux_examples(fp):
    # providers.md §4: CREATED, IN_PROGRESS, COMPLETED (with generated), FAILED
    created = fp.parse_status(ID, KIND, ok({"data": {"generated": [], "task_id": ID, "status": "CREATED"}}))
    assert created.state == "queued" and created.results == []
    done = fp.parse_status(ID, KIND, ok({"data": {
        "generated": ["https://ai-statics.freepik.com/content/mg-upscaler/a.jpg",
                      "https://ai-statics.freepik.com/content/mg-upscaler/b.jpg"],
        "task_id": ID, "status": "COMPLETED"}}))
    assert done.state == "succeeded" and done.terminal
    assert done.results == ["https://ai-statics.freepik.com/content/mg-upscaler/a.jpg",
                            "https://ai-statics.freepik.com/content/mg-upscaler/b.jpg"]
    assert done.raw["data"]["task_id"] == ID
    failed = fp.parse_status(ID, KIND, ok({"data": {"generated": [], "task_id": ID, "status": "FAILED"}}))
    assert failed.state == "failed" and failed.error is None


def test_has_nsfw_variants(fp):
    # Mystic's completed example carries has_nsfw: [false]; parse it optionally
    for flag in ([False], True, None):
        t = fp.parse_status(ID, "mystic", ok({"data": {"task_id": ID, "status": "COMPLETED",
                                                       "generated": ["https://x/y.png"], "has_nsfw": flag}}))
        assert t.state == "succeeded" and t.results == ["https://x/y.png"] and t.kind == "mystic"


def test_unwrapped_body(fp):
    # webhook payloads and Comfy's style transfer come without the data wrapper
    t = fp.parse_status(ID, None, ok({"task_id": ID, "status": "COMPLETED", "generated": ["https://a/b.png"]}))
    assert t.state == "succeeded" and t.results == ["https://a/b.png"]


def test_generated_variants(fp):
    body = {"data": {"task_id": ID, "status": "COMPLETED",
                     "generated": ["https://a/1.png", "https://a/1.png", {"url": "https://a/2.png"}, 7, None, ""]}}
    assert fp.parse_status(ID, None, ok(body)).results == ["https://a/1.png", "https://a/2.png"]
    single = {"data": {"task_id": ID, "status": "COMPLETED", "generated": "https://a/3.png"}}
    assert fp.parse_status(ID, None, ok(single)).results == ["https://a/3.png"]
    missing = {"data": {"task_id": ID, "status": "IN_PROGRESS"}}
    assert fp.parse_status(ID, None, ok(missing)).results == []


def test_failed_task_reason_if_any(fp):
    body = {"data": {"task_id": ID, "status": "FAILED", "generated": [], "error": "\x1b[31mNSFW\x1b[0m content"}}
    assert fp.parse_status(ID, None, ok(body)).error == "NSFW content"
    body = {"data": {"task_id": ID, "status": "FAILED", "error": {"message": "model overloaded"}}}
    assert fp.parse_status(ID, None, ok(body)).error == "model overloaded"


def test_status_answered_by_a_list(fp):
    body = {"data": [{"task_id": "other", "status": "FAILED"}, {"task_id": ID, "status": "COMPLETED"}]}
    assert fp.parse_status(ID, None, ok(body)).state == "succeeded"
    with pytest.raises(BadResponse, match="not in the answer"):
        fp.parse_status("missing", None, ok(body))


# ---------------------------------------------------------------- documented errors


@pytest.mark.parametrize(
    "message",
    ["Parameter 'page' must be greater than 0", "Parameter 'query' must not be empty",
     "Parameter 'filter' is not valid", "Parameter ':attribute' is not valid"],
)
def test_400_examples(fp, message):
    with pytest.raises(ClientError) as info:
        fp.parse_list(None, ok({"message": message}, 400))
    assert info.value.message == message and info.value.status == 400


def test_400_problem_json_lists_reasons(fp):
    body = {"message": "Your request parameters didn't validate.",
            "invalid_params": [{"name": "page", "reason": "Parameter 'page' must be greater than 0"},
                               {"name": "per_page", "reason": "Parameter 'per_page' must be greater than 0"}]}
    resp = httpx.Response(400, content=json.dumps(body).encode(),
                          headers={"content-type": "application/problem+json"})
    with pytest.raises(ClientError) as info:
        fp.parse_status(ID, None, resp)
    msg = info.value.message
    assert msg.startswith("Your request parameters didn't validate.")
    assert "page: Parameter 'page' must be greater than 0" in msg
    assert "per_page: Parameter 'per_page' must be greater than 0" in msg


def test_400_problem_nested_and_partial(fp):
    nested = {"problem": {"message": "Bad", "invalid_params": [{"name": "seed", "reason": "too big"}]}}
    with pytest.raises(ClientError, match=r"Bad \(seed: too big\)"):
        fp.parse_status(ID, None, ok(nested, 400))
    only_params = {"invalid_params": [{"name": "prompt"}, "free text", 5]}
    with pytest.raises(ClientError, match="prompt; free text; 5"):
        fp.parse_status(ID, None, ok(only_params, 400))
    titled = {"title": "Bad Request", "detail": "prompt is required"}
    with pytest.raises(ClientError, match="prompt is required"):
        fp.parse_status(ID, None, ok(titled, 400))


@pytest.mark.parametrize("message", ["Invalid API key", "Missing API key"])
def test_401_examples(fp, message):
    with pytest.raises(AuthError) as info:
        fp.parse_status(ID, None, ok({"message": message}, 401))
    assert info.value.message == message and info.value.kind == "auth_failed"


def test_404_not_found(fp):
    with pytest.raises(NotFound):
        fp.parse_status(ID, None, ok({"message": "Not found"}, 404))
    with pytest.raises(NotFound, match="empty answer"):
        fp.parse_status(ID, None, httpx.Response(404))


def test_429_too_many_requests(fp):
    with pytest.raises(RateLimited) as info:
        fp.parse_list(None, ok({"message": "Too many requests"}, 429))
    assert info.value.message == "Too many requests" and info.value.retry_after is None
    with pytest.raises(RateLimited) as info:
        fp.parse_list(None, ok({"message": "Too many requests"}, 429, **{"Retry-After": "3"}))
    assert info.value.retry_after == 3.0


@pytest.mark.parametrize(
    "status, body, message",
    [(500, {"message": "Internal Server Error"}, "Internal Server Error"),
     (503, {"message": "Service Unavailable. Please try again later."}, "Service Unavailable. Please try again later."),
     (500, {"error": "INTERNAL", "message": "boom"}, "boom")],  # Comfy's FreepikErrorResponse shape
)
def test_5xx_transient(fp, status, body, message):
    with pytest.raises(Transient) as info:
        fp.parse_status(ID, None, ok(body, status))
    assert info.value.message == message and info.value.retry_after is None


def test_html_5xx_is_transient(fp):
    page = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
    with pytest.raises(Transient, match="502 Bad Gateway"):
        fp.parse_status(ID, None, httpx.Response(502, content=page, headers={"content-type": "text/html"}))


# ---------------------------------------------------------------- bad bodies


@pytest.mark.parametrize(
    "content",
    [b"<!doctype html><html><title>Freepik</title></html>", b"Service is up", b"\xff\xfe\xfa",
     b"", b"[]", b"null", b'"COMPLETED"', b'{"data": "x"}', b'{"data": {}}', b'{"data": {"task_id": "x"}}',
     b'{"data": {"status": {"a": 1}}}', b'{"data": {"status": "COMPLETED", "generated": 5}}',
     b'{"data": {"status": "COMPLETED", "task_id": ["x"]}}', b'{"data": [1, 2]}'],
)
def test_bad_status_bodies(fp, content):
    with pytest.raises(BadResponse) as info:
        fp.parse_status(ID, None, httpx.Response(200, content=content))
    assert info.value.provider == "freepik"


@pytest.mark.parametrize(
    "content",
    [b"<html></html>", b"", b"{}", b'{"data": {}}', b'{"data": "x"}', b'{"data": [1]}',
     b'{"data": [{"task_id": "a"}]}', b"\xc3\x28"],
)
def test_bad_list_bodies(fp, content):
    with pytest.raises(BadResponse):
        fp.parse_list(None, httpx.Response(200, content=content))


def test_unreadable_list_entries_are_skipped_if_others_read(fp):
    body = {"data": [{"task_id": "a"}, 7, {"task_id": "b", "status": "CREATED"}, {"task_id": "c", "status": []}]}
    assert [(t.task_id, t.state) for t in fp.parse_list(None, ok(body))] == [("b", "queued")]
    with pytest.raises(BadResponse, match=r"data\.0\.status"):
        fp.parse_list(None, ok({"data": [{"task_id": "a"}, {"task_id": "c", "status": []}]}))


def test_list_items_without_id_are_skipped(fp):
    body = {"data": [{"status": "COMPLETED"}, {"task_id": "", "status": "FAILED"}, {"task_id": "z", "status": "CREATED"}]}
    assert [t.task_id for t in fp.parse_list(None, ok(body))] == ["z"]


# ---------------------------------------------------------------- hostile text


def test_hostile_strings_are_cleaned(fp):
    body = {"data": {
        "task_id": ID,
        "status": "\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07FAILED\u202e",
        "generated": ["\x1b]8;;https://evil\x1b\\https://ai-statics.freepik.com/ok.jpg", "https://a/has space.png"],
        "error": "[bold red]boom[/] \x9b31m" + "x" * 100_000,
    }}
    t = fp.parse_status(ID, None, ok(body))
    assert t.state == "failed" and t.provider_status == "FAILED"
    assert t.results == ["https://ai-statics.freepik.com/ok.jpg"]
    assert t.error.startswith("[bold red]boom[/] x") and len(t.error) <= 500
    for text in (t.provider_status, t.error, *t.results):
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u202e" for c in text)


def test_hostile_list_ids_and_error_messages(fp):
    tasks = fp.parse_list(None, ok({"data": [{"task_id": "a\x1b[31mb\x07", "status": "CREATED"}]}))
    assert tasks[0].task_id == "ab"
    with pytest.raises(ClientError) as info:
        fp.parse_status(ID, None, ok({"message": "\x1b]52;c;ZXZpbA==\x07bad [link=x]y[/link]"}, 400))
    assert info.value.message == "bad [link=x]y[/link]"


def test_key_never_in_errors(fp):
    bodies = [(400, {"message": f"bad key {KEY}"}), (401, {"message": f"Invalid API key: {KEY}"}),
              (404, {}), (429, {"message": KEY}), (500, {"error": KEY, "message": "x"}),
              (200, f"<html>{KEY}</html>"), (200, {"data": {"status": {KEY: 1}}})]
    for status, body in bodies:
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        with pytest.raises(ProviderError) as info:
            fp.parse_status(ID, None, httpx.Response(status, content=content))
        err = info.value
        assert KEY not in str(err) and KEY not in repr(err) and KEY not in str(err.code)


# ---------------------------------------------------------------- any JSON at all

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
KEYS = st.sampled_from(["data", "task_id", "status", "generated", "has_nsfw", "message", "invalid_params", "problem", "name", "reason", "error", "url"]) | st.text(max_size=8)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(KEYS, inner, max_size=6), max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(body=ANY_JSON, status=st.sampled_from([200, 200, 200, 400, 401, 402, 404, 429, 500, 503]))
def test_any_json_ends_in_a_value_or_a_provider_error(body, status):
    p = Freepik(KEY)
    response = httpx.Response(status, content=json.dumps(body).encode())
    for call in (lambda p, r: p.parse_status(ID, None, r), lambda p, r: p.parse_list(None, r)):
        try:
            value = call(p, response)
        except ProviderError as exc:
            assert exc.provider == "freepik" and isinstance(exc.message, str)
            continue
        assert status == 200
        for task in value if isinstance(value, list) else [value]:
            texts = [getattr(task, f, None) for f in ("task_id", "state", "provider_status", "error", "model")]
            texts += getattr(task, "results", [])
            for text in texts:
                assert text is None or not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)


# ---------------------------------------------------------------- over a real socket


DEFAULT_404 = (404, {"message": "Not found"})  # what the one test server answers for a path no route names


async def test_round_trip_status_and_list():
    routes = {
        f"/v1/ai/{KIND}/{ID}": (200, {"data": {"task_id": ID, "status": "COMPLETED",
                                               "generated": ["https://ai-statics.freepik.com/a.jpg"]}}),
        f"/v1/ai/{KIND}": (200, {"data": [{"task_id": ID, "status": "COMPLETED"},
                                          {"task_id": "b", "status": "IN_PROGRESS"}]}),
        "/v1/ai/image-to-video/kling/gone": (404, {"message": "Not found"}),
    }
    async with HttpServer(routes, default=DEFAULT_404) as srv, httpx.AsyncClient(timeout=10) as client:
        p = make_provider("freepik", KEY, srv.url)
        task = await p.fetch_status(client, ID)
        assert task.state == "succeeded" and task.results == ["https://ai-statics.freepik.com/a.jpg"]
        assert task.kind == KIND
        listed = await p.fetch_list(client)
        assert [(t.task_id, t.state) for t in listed] == [(ID, "succeeded"), ("b", "running")]
        with pytest.raises(NotFound):
            await p.fetch_status(client, "gone", "image-to-video/kling")
    methods_paths = [(m, t) for m, t, _ in srv.requests]
    assert methods_paths == [("GET", f"/v1/ai/{KIND}/{ID}"), ("GET", f"/v1/ai/{KIND}"),
                             ("GET", "/v1/ai/image-to-video/kling/gone")]
    for _, _, headers in srv.requests:
        assert headers["x-freepik-api-key"] == KEY and "authorization" not in headers


async def test_closed_port_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = make_provider("freepik", KEY, f"http://127.0.0.1:{port}")
    async with httpx.AsyncClient(timeout=10) as client:
        with pytest.raises(Transient) as info:
            await p.fetch_status(client, ID)
        with pytest.raises(Transient):
            await p.fetch_list(client)
    assert info.value.provider == "freepik" and KEY not in repr(info.value)


async def test_server_slower_than_timeout_is_transient():
    async with HttpServer({f"/v1/ai/{KIND}/{ID}": "hang"}, default=DEFAULT_404) as srv:
        async with httpx.AsyncClient(timeout=0.3) as client:
            p = make_provider("freepik", KEY, srv.url)
            with pytest.raises(Transient, match="timed out"):
                await p.fetch_status(client, ID)


# ---------------------------------------------------------------- kinds (issue 11)


@pytest.mark.parametrize("create, poll", sorted(PUB.CREATE_TO_POLL.items()))
def test_polls_on_the_documented_poll_path(fp, create, poll):
    """A task tracked with its create path is polled (and listed) on its poll path."""
    assert fp.poll_kind(create) == poll
    assert fp.status_request(ID, create).url == f"https://api.freepik.com/v1/ai/{poll}/{ID}"
    assert fp.status_path(ID, create) == f"/v1/ai/{poll}/{ID}"
    assert fp.list_request(create).url == f"https://api.freepik.com/v1/ai/{poll}"
    assert fp.check_kind(create) is None and fp.check_kind(poll) is None


@pytest.mark.parametrize("kind", PUB.DOCUMENTED_KINDS)
def test_documented_kinds_are_known(fp, kind):
    assert fp.check_kind(kind) is None
    assert fp.status_request(ID, kind).url == f"https://api.freepik.com/v1/ai/{kind}/{ID}"


def test_unknown_kind_warns_and_is_still_used(fp):
    warning = fp.check_kind("text-to-image/hyperflux-9")
    assert warning.startswith("unknown kind 'text-to-image/hyperflux-9' for freepik; known: ")
    assert "skin-enhancer" in warning and "mystic" in warning
    assert fp.status_request(ID, "text-to-image/hyperflux-9").url.endswith(f"/hyperflux-9/{ID}")
    assert fp.check_kind(None) is None


def test_daily_limits_per_service(fp):
    """docs.freepik.com/ratelimits: requests per day per key and service."""
    expected = {PUB.SERVICE_KIND[service]: n for service, n in PUB.DAILY_LIMITS.items()}
    assert Freepik.daily_limits == expected
    assert all(kind in Freepik.known_kinds for kind in Freepik.daily_limits)


# ---------------------------------------------------------------- ids that could reach other endpoints (issue 12 item 11)


@pytest.mark.parametrize("task_id", [".", "..", ""])
def test_dot_and_empty_ids_are_refused(fp, task_id):
    """httpx resolves dot segments: /BASE/.. would be another endpoint on the host."""
    with pytest.raises(ClientError) as info:
        fp.status_request(task_id, KIND)
    assert info.value.provider == 'freepik'
    assert "invalid task id" in info.value.message


def test_other_characters_are_percent_encoded(fp):
    url = fp.status_request("../x?y#z%2e", KIND).url
    assert url.endswith("/..%2Fx%3Fy%23z%252e")
    assert httpx.Request("GET", url).url.raw_path.endswith(b"/..%2Fx%3Fy%23z%252e")


@pytest.mark.parametrize("kind", ["..", "../v1/credits", "a/../b", "./x", "x/.", "a//b"])
def test_kinds_with_dot_segments_are_refused(fp, kind):
    with pytest.raises(ClientError) as info:
        fp.status_request("abc", kind)
    assert "invalid kind" in info.value.message
    assert fp.check_kind(kind) == info.value.message
    with pytest.raises(ClientError):
        fp.list_request(kind)
