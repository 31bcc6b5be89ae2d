"""The built-in catalogue: every entry loads, asks the path ComfyUI polls, and
reads its vendor's published answers (tests/data/published_catalogue.py) into
the right Task or typed error."""

from __future__ import annotations

import httpx
import pytest

from tests.data.published_catalogue import CASES, READER_ONLY
from tui import model
from tui.providers import known_names, make_provider, provider_class
from tui.providers.catalogue import catalogue_entry, catalogue_names
from tui.providers.declared import DeclaredProvider

KEY = "comfyui-0123456789abcdef"


def test_every_entry_loads_and_has_published_answers():
    names = catalogue_names()
    assert {"kling", "runway", "luma", "minimax", "seedance", "wan", "sora", "tripo", "pixverse", "vidu",
            "stability"} <= set(names)
    for name in names:
        entry = catalogue_entry(name)
        assert entry.source, name  # every entry says where its shapes come from
        assert entry.base_url == "https://api.comfy.org" and entry.auth_scheme == "comfy"
        assert name in CASES, f"no published answers for {name}"
        labels = " ".join(label for label, *_ in CASES[name])
        for need in ("success", "failure", "not found"):
            assert need in labels, (name, need)
        assert any(exp.get("state") in ("running", "queued") for *_, exp in CASES[name]), name
    assert set(CASES) <= set(names)
    assert set(names) <= set(known_names()) and known_names()[:5] == model.PROVIDERS


# ComfyUI comfy_api_nodes (nodes_*.py) poll paths, written here independently of the TOML files.
POLL_PATHS = [
    ("kling", "t1", None, "GET", "/proxy/kling/v1/videos/text2video/t1"),
    ("kling", "t1", "image2video", "GET", "/proxy/kling/v1/videos/image2video/t1"),
    ("kling", "t1", "images/generations", "GET", "/proxy/kling/v1/images/generations/t1"),
    ("runway", "t1", None, "GET", "/proxy/runway/tasks/t1"),
    ("luma", "t1", None, "GET", "/proxy/luma/generations/t1"),
    ("minimax", "t1", None, "GET", "/proxy/minimax/query/video_generation?task_id=t1"),
    ("seedance", "t1", None, "GET", "/proxy/byteplus/api/v3/contents/generations/tasks/t1"),
    ("wan", "t1", None, "GET", "/proxy/wan/api/v1/tasks/t1"),
    ("sora", "t1", None, "GET", "/proxy/openai/v1/videos/t1"),
    ("tripo", "t1", None, "GET", "/proxy/tripo/v2/openapi/task/t1"),
    ("pixverse", "321", None, "GET", "/proxy/pixverse/video/result/321"),
    ("vidu", "t1", None, "GET", "/proxy/vidu/tasks/t1/creations"),
    ("stability", "t1", None, "GET", "/proxy/stability/v2beta/results/t1"),
    ("veo", "projects/p/operations/1", None, "POST", "/proxy/veo/veo-2.0-generate-001/poll"),
]


@pytest.mark.parametrize("name,task_id,kind,method,path", POLL_PATHS)
def test_poll_path_and_auth_as_comfyui(name, task_id, kind, method, path):
    p = make_provider(name, KEY)
    req = p.status_request(task_id, kind)
    assert req.method == method
    assert req.url == "https://api.comfy.org" + path
    assert req.headers["X-API-KEY"] == KEY and "Authorization" not in req.headers
    if name == "veo":
        assert req.json == {"operationName": task_id}
    jwt = make_provider(name, "eyJhbGciOi.jwt").status_request(task_id, kind)
    assert jwt.headers["Authorization"] == "Bearer eyJhbGciOi.jwt" and "X-API-KEY" not in jwt.headers


def test_a_path_part_is_quoted_and_a_dot_id_refused():
    p = make_provider("runway", KEY)
    assert p.status_request("a/b c").url.endswith("/proxy/runway/tasks/a%2Fb%20c")
    with pytest.raises(model.ClientError):
        p.status_request("..")
    kling = make_provider("kling", KEY)
    with pytest.raises(model.ClientError):
        kling.status_request("t", "videos/../admin")
    assert kling.check_kind("videos/nope") and "videos/text2video" in kling.check_kind("videos/nope")
    assert kling.check_kind("text2video") is None


def test_direct_base_url_keeps_the_entry():
    p = make_provider("luma", "luma-key", "https://api.lumalabs.ai/dream-machine/v1")
    assert p.status_request("g1").url == "https://api.lumalabs.ai/dream-machine/v1/proxy/luma/generations/g1"
    assert isinstance(p, DeclaredProvider) and provider_class("luma").name == "luma"


CASE_IDS = [(name, label, status, body, expected) for table in (CASES, READER_ONLY) for name, cases in table.items()
            for label, status, body, expected in cases]


@pytest.mark.parametrize("name,label,status,body,expected", CASE_IDS,
                         ids=[f"{c[0]}-{c[1]}" for c in CASE_IDS])
def test_published_answers_read_right(name, label, status, body, expected):
    p = make_provider(name, KEY)
    response = httpx.Response(status, json=body)
    if "raises" in expected:
        with pytest.raises(model.ProviderError) as info:
            p.parse_status("t1", None, response)
        assert type(info.value).__name__ == expected["raises"], info.value
        return
    task = p.parse_status("t1", None, response)
    assert task.provider == name and task.task_id == "t1"
    assert task.state != model.UNKNOWN, task.details
    for field, value in expected.items():
        if field == "error_starts":  # the text is the entry's; the test holds only what it must say first
            assert (task.error or "").startswith(value), task.error
            continue
        got = getattr(task, field)
        if field == "details":
            got = {k: v for k, v in got.items() if k in value}
        if isinstance(value, float):
            assert got == pytest.approx(value), field
        else:
            assert got == value, (field, got)
    if task.state in model.TERMINAL and task.state != model.SUCCEEDED:
        assert task.results == []
    assert task.raw == body


# ---------------------------------------------------------------- status_errors (Tripo's "expired")

def _declaration(**extra):
    from tui.providers.catalogue import Declaration

    return Declaration.model_validate({
        "request": {"path": "/v1/tasks/{id}"}, "paths": {"status": "status", "error": "message"},
        "states": {"running": ["working"], "succeeded": ["done"], "failed": ["broken", "expired"]}, **extra})


def test_status_errors_only_for_failed_or_cancelled_words():
    from pydantic import ValidationError

    d = _declaration(status_errors={"expired": "expired: gone stale"})
    assert d.status_error("EXPIRED") == "expired: gone stale" and d.status_error("broken") is None
    for bad in ({"working": "x"}, {"nope": "x"}, {"expired": ""}, {"expired": "a\nb"}, {"expired": "x" * 301}):
        with pytest.raises(ValidationError) as info:
            _declaration(status_errors=bad)
        assert "status_errors." in str(info.value), bad


def test_a_status_error_fills_in_only_where_the_answer_gives_none():
    from tui.providers.declared import declared_class

    declaration = _declaration(status_errors={"expired": "expired: gone stale"})
    p = declared_class("acme", declaration)(KEY, "https://acme.invalid")
    read = lambda body: p.parse_status("t1", None, httpx.Response(200, json=body))  # noqa: E731
    assert read({"status": "Expired"}).error == "expired: gone stale"
    assert read({"status": "expired", "message": "their own words"}).error == "their own words"
    assert read({"status": "broken"}).error is None and read({"status": "working"}).error is None


def test_tripo_expired_is_a_failure_in_the_entry():
    entry = catalogue_entry("tripo")
    vocabulary = entry.vocabulary()
    assert vocabulary.state("expired") == model.FAILED and "expired" not in entry.states.get("not_found", [])
    assert entry.status_error("expired").startswith("expired: ")
    assert entry.answer_code is not None and entry.answer_code.errors["2001"] == "not_found"
    assert entry.answer_code.errors["2000"] == "rate_limited"
