"""The shared test server (tests/http_server.py) does what the tests rely on."""

from __future__ import annotations

import httpx
import pytest

from http_server import HANG, HttpServer, Reply


def test_routes_by_path_and_by_method_with_a_default(http_server):
    srv = http_server({"/a": (200, {"x": 1}), ("POST", "/b"): (500, b"boom", {"Retry-After": "3"})},
                      default=(404, {"message": "gone"}))
    assert httpx.get(f"{srv.url}/a").json() == {"x": 1}
    r = httpx.post(f"{srv.url}/b", json={"q": 2})
    assert (r.status_code, r.content, r.headers["retry-after"]) == (500, b"boom", "3")
    assert httpx.get(f"{srv.url}/b").json() == {"message": "gone"}  # GET /b names no route
    assert [(s.method, s.path) for s in srv.seen] == [("GET", "/a"), ("POST", "/b"), ("GET", "/b")]
    assert srv.seen[1].json() == {"q": 2} and srv.seen[1]["headers"]["content-type"] == "application/json"


def test_a_function_answers_and_waiting_is_for_the_event(http_server):
    srv = http_server(lambda seen: Reply(201, seen.path.upper(), content_type="text/plain"))
    r = httpx.get(f"{srv.url}/echo")
    assert (r.status_code, r.text, r.headers["content-type"]) == (201, "/ECHO", "text/plain")
    assert len(srv.wait_for_requests(1)) == 1
    with pytest.raises(TimeoutError):
        srv.wait_for_requests(2, timeout=0.2)


def test_hang_times_a_client_out_and_reopen_keeps_the_port():
    with HttpServer({"/slow": HANG, "/ok": (200, {})}) as srv:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{srv.url}/slow", timeout=0.3)
        port = srv.port
        srv.close()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/ok", timeout=5)
        srv.reopen()
        assert srv.port == port and httpx.get(f"{srv.url}/ok", timeout=5).status_code == 200
