"""Every fault kind, for every provider, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tui.sim import Fault, build_scenario, sim_task
from tui.sim.serve import SimServer

PROVIDERS = ("comfy", "upscayl", "qolaba", "freepik", "evolink")
KINDS = ("rate_limit", "rate_limit_text", "rate_limit_bare", "quota", "auth", "not_found", "server_error",
         "html_502", "malformed", "invalid_utf8", "empty", "wrong_shape", "slow", "drop")


def headers(sim, provider: str) -> dict[str, str]:
    key = sim.key(provider)
    return {"upscayl": {"X-API-Key": key}, "freepik": {"x-freepik-api-key": key}}.get(
        provider, {"Authorization": f"Bearer {key}"})


def call(sim, provider: str, task_id: str, timeout: float = 10.0, h: dict | None = None) -> httpx.Response:
    h = headers(sim, provider) if h is None else h
    with httpx.Client(base_url=sim.base_url, timeout=timeout, headers=h, verify=False) as c:  # plain http: skip loading CAs
        if provider == "comfy":
            return c.get(f"/proxy/freepik/v1/ai/image-relight/{task_id}")
        if provider == "upscayl":
            return c.post("/get-task-status", json={"data": {"taskId": task_id}})
        if provider == "qolaba":
            return c.post("/getImage", json={"id": task_id})
        if provider == "freepik":
            return c.get(f"/v1/ai/text-to-image/hyperflux/{task_id}")
        return c.get(f"/v1/tasks/{task_id}")


@pytest.fixture(scope="module")
def fsim():
    """One server: for every provider and fault kind a running task ``f-<kind>`` that always gets it."""
    tasks, faults = [], []
    for p in PROVIDERS:
        tasks.append(sim_task(p, "ok", "running"))
        for kind in KINDS:
            tasks.append(sim_task(p, f"f-{kind}", "running"))
            extra = {"rate_limit": {"retry_after": 7}, "server_error": {"status": 503},
                     "slow": {"delay": 30}}.get(kind, {})
            faults.append(Fault(kind=kind, provider=p, task_id=f"f-{kind}", **extra))
        tasks.append(sim_task(p, "f-slow-short", "running"))
        faults.append(Fault(kind="slow", provider=p, task_id="f-slow-short", delay=0.2))
    with SimServer(build_scenario(*tasks, faults=faults), speed=0) as server:
        yield server


def error_body(provider: str, r: httpx.Response) -> dict:
    body = r.json()
    if provider == "evolink":
        assert set(body) == {"error"} and isinstance(body["error"]["code"], int)
        assert body["error"]["code"] == r.status_code
    elif provider in ("upscayl", "comfy"):
        assert set(body) == {"error", "message"}
    elif provider == "qolaba":
        assert set(body) == {"detail"}
    else:
        assert set(body) == {"message"}
    return body


def message(provider: str, body: dict) -> str:
    if provider == "evolink":
        return body["error"]["message"]
    return body["detail"] if provider == "qolaba" else body["message"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_fault_answers_normally(fsim, provider):
    r = call(fsim, provider, "ok")
    assert r.status_code == 200 and r.json()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limit_with_retry_after_header(fsim, provider):
    r = call(fsim, provider, "f-rate_limit")
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    body = error_body(provider, r)
    if provider == "evolink":
        assert body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limit_with_the_wait_only_in_the_body(fsim, provider):
    r = call(fsim, provider, "f-rate_limit_text")
    assert r.status_code == 429 and "retry-after" not in r.headers
    body = error_body(provider, r)
    if provider == "evolink":
        assert body["error"]["fallback_suggestion"] == "retry after 60 seconds"
    elif provider == "upscayl":
        assert body == {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests. Try again in 1 hour"}
    else:
        assert message(provider, body) == "Too many requests. Try again in 60 seconds"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bare_rate_limit(fsim, provider):
    r = call(fsim, provider, "f-rate_limit_bare")
    assert r.status_code == 429 and "retry-after" not in r.headers
    body = error_body(provider, r)
    assert "fallback_suggestion" not in body.get("error", {}) if provider == "evolink" else True
    if provider == "freepik":
        assert body == {"message": "Too many requests"}  # the documented body


@pytest.mark.parametrize("provider", PROVIDERS)
def test_quota_exhausted_402(fsim, provider):
    r = call(fsim, provider, "f-quota")
    assert r.status_code == 402
    body = error_body(provider, r)
    if provider == "evolink":
        assert body["error"]["type"] == "insufficient_quota_error"
        assert body["error"]["fallback_suggestion"].startswith("https://")
    if provider == "upscayl":
        assert body["error"] == "INSUFFICIENT_CREDITS"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_auth_fault_refuses_a_good_key(fsim, provider):
    r = call(fsim, provider, "f-auth")
    assert r.status_code == 401
    error_body(provider, r)
    assert fsim.requests[-1].auth_ok is True and fsim.requests[-1].fault == "auth"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_not_found_fault(fsim, provider):
    r = call(fsim, provider, "f-not_found")
    assert r.status_code == 404
    error_body(provider, r)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_server_error(fsim, provider):
    r = call(fsim, provider, "f-server_error")
    assert r.status_code == 503
    body = error_body(provider, r)
    if provider == "evolink":
        assert body["error"] == {"code": 503, "message": "Service Unavailable. Please try again later.",
                                 "type": "service_unavailable_error",
                                 "fallback_suggestion": "retry after 30 seconds"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_html_502_page(fsim, provider):
    r = call(fsim, provider, "f-html_502")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in r.text


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_json(fsim, provider):
    r = call(fsim, provider, "f-malformed")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_utf8(fsim, provider):
    r = call(fsim, provider, "f-invalid_utf8")
    assert r.status_code == 200
    with pytest.raises(UnicodeDecodeError):
        r.content.decode("utf-8")


def test_retry_after_as_an_http_date(fsim):
    import email.utils
    import time

    fsim.add(faults=[Fault(kind="rate_limit", provider="evolink", task_id="ok", retry_after=5,
                           retry_after_date=True, count=1)])
    before = time.time()
    r = call(fsim, "evolink", "ok")
    assert r.status_code == 429
    when = email.utils.parsedate_to_datetime(r.headers["retry-after"]).timestamp()
    assert before + 5 <= when <= time.time() + 7


@pytest.mark.parametrize("provider", PROVIDERS)
def test_empty_body(fsim, provider):
    r = call(fsim, provider, "f-empty")
    assert r.status_code == 200 and r.content == b""


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_shape(fsim, provider):
    r = call(fsim, provider, "f-wrong_shape")
    assert r.status_code == 200 and isinstance(r.json(), list)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_slow_answer_exceeds_a_short_client_timeout(fsim, provider):
    with pytest.raises(httpx.ReadTimeout):
        call(fsim, provider, "f-slow", timeout=0.5)  # the sim waits 30 s


@pytest.mark.parametrize("provider", PROVIDERS)
def test_slow_answer_still_answers_a_patient_client(fsim, provider):
    r = call(fsim, provider, "f-slow-short", timeout=30)
    assert r.status_code == 200 and r.json()
    assert fsim.requests[-1].fault == "slow"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_dropped_connection(fsim, provider):
    with pytest.raises(httpx.RemoteProtocolError, match="peer closed connection"):
        call(fsim, provider, "f-drop")


def test_dropped_connection_really_closes_the_socket_mid_answer(fsim):
    sock = socket.create_connection(("127.0.0.1", fsim.port), timeout=10)
    with sock:
        sock.sendall(b"GET /v1/tasks/f-drop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     + fsim.key("evolink").encode() + b"\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # returns b"" at EOF: the server closed
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int([line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][0])
    assert 0 < len(body) < length


@pytest.mark.parametrize("provider", PROVIDERS)
def test_auth_is_checked_before_faults(fsim, provider):
    r = call(fsim, provider, "f-rate_limit", h={"X-API-Key": "bad", "x-freepik-api-key": "bad",
                                                   "Authorization": "Bearer bad"})
    assert r.status_code == 401
