"""Every provider against a hostile HTTP server (tests/hostile_server.py).

Issue 12, items 2, 3, 8 and 9 at the HTTP boundary: slow headers, a slow-loris
body and an endless chunked stream end at the request's overall deadline with a
``Transient``; a gzip bomb and an endless plain body stop at the decoded body
cap with a ``BadResponse`` (and memory stays small, measured in a subprocess);
a key echoed back in any of 20 altered forms never survives into an error, a
task or its raw answer.  pytest-timeout guards every hang; nothing here asserts
on time.

Task bodies are the simulator's (``tui.sim.bodies``), which builds each
provider's published shapes (seeds/*.md, providers.md) with their sources named
there; an echo of the key is put into fields each parser keeps.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from hostile_server import (  # noqa: F401 (hostile is a fixture)
    body_answer,
    close_mid_body,
    endless_chunked,
    gzip_bomb,
    hostile,
    huge_plain,
    json_answer,
    raw_answer,
    silent,
    slow_body,
    slow_headers,
)
from tui.model import PROVIDERS, BadResponse, ProviderError, Task, Transient
from tui.providers import make_provider

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk_live/Ab+Cd=Ef:Gh0123456789xyzQRS"  # header-safe, with characters quoting changes
DEADLINE = 1.0


def provider_at(name: str, base_url: str, key: str = KEY, **attrs):
    p = make_provider(name, key, base_url)
    p.deadline = DEADLINE
    for k, v in attrs.items():
        setattr(p, k, v)
    return p


async def fetch(p) -> Task:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as client:
        return await p.fetch_status(client, "t1", None)


# ---------------------------------------------------------------- deadline (item 2)


HANGS = {
    "slow headers": lambda: slow_headers(interval=0.1),
    "no answer at all": silent,
    "slow-loris body": lambda: slow_body(interval=0.2),
    "endless chunked stream": lambda: endless_chunked(interval=0.02),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("hang", list(HANGS))
async def test_a_request_ends_at_its_overall_deadline(hostile, provider, hang):
    hostile.serve(HANGS[hang]())
    p = provider_at(provider, hostile.base_url)
    with pytest.raises(Transient) as info:
        await fetch(p)
    assert info.value.message == "timed out after 1s (overall deadline)"
    assert info.value.provider == provider
    assert len(hostile.wait_for_requests(1)) == 1


async def test_the_deadline_defaults_to_30_s_and_is_per_call(hostile):
    p = make_provider("evolink", KEY, hostile.base_url)
    assert p.deadline == 30.0
    hostile.serve(slow_headers(interval=0.05))
    async with httpx.AsyncClient() as client:
        with pytest.raises(Transient, match=r"timed out after 0\.5s \(overall deadline\)"):
            await p.send(client, p.status_request("t1"), deadline=0.5)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("provider, endpoint", [("freepik", "list"), ("comfy", "balance"),
                                                ("evolink", "balance")])  # Upscayl has no list (issue 11)
async def test_list_and_balance_requests_have_the_same_limits(hostile, provider, endpoint):
    p = provider_at(provider, hostile.base_url)
    async with httpx.AsyncClient() as client:
        call = (lambda: p.fetch_list(client)) if endpoint == "list" else (lambda: p.fetch_balance(client))
        hostile.serve(endless_chunked(interval=0.02))
        with pytest.raises(Transient) as info:
            await call()
        assert info.value.message == "timed out after 1s (overall deadline)"
        hostile.serve(gzip_bomb())
        with pytest.raises(BadResponse) as info:
            await call()
        assert info.value.message == "answer larger than 4 MiB"
    assert len(hostile.wait_for_requests(2)) == 2


@pytest.mark.parametrize("bad", [None, 0, -1, float("inf"), float("nan"), "5", True])
async def test_a_bad_deadline_or_cap_falls_back_to_the_default(hostile, bad, monkeypatch):
    """There is always a deadline and a cap: a bad value gets the default, never 'none'."""
    from tui.providers import base

    monkeypatch.setattr(base, "DEADLINE", 0.5)  # the default, shortened for the test
    p = provider_at("evolink", hostile.base_url, max_body=bad)
    p.deadline = bad
    hostile.serve(huge_plain(claim=None))
    async with httpx.AsyncClient() as client:
        with pytest.raises(BadResponse) as info:
            await p.send(client, p.status_request("t1"))
    assert info.value.message == "answer larger than 4 MiB"
    hostile.serve(slow_headers(interval=0.05))
    async with httpx.AsyncClient() as client:
        with pytest.raises(Transient) as info:
            await p.send(client, p.status_request("t1"))
    assert info.value.message == "timed out after 0.5s (overall deadline)"


# ---------------------------------------------------------------- body cap (item 3)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("bomb", ["gzip bomb", "endless plain body", "500 MB promised"])
async def test_a_big_answer_stops_at_the_decoded_cap(hostile, provider, bomb):
    hostile.serve({"gzip bomb": gzip_bomb, "endless plain body": lambda: huge_plain(claim=None),
                   "500 MB promised": huge_plain}[bomb]())
    p = provider_at(provider, hostile.base_url, deadline=60.0)
    assert p.max_body == 4 * 1024 * 1024
    with pytest.raises(BadResponse) as info:
        await fetch(p)
    assert info.value.message == "answer larger than 4 MiB"
    assert info.value.status == 200
    if bomb != "gzip bomb":  # (4 MB fit in the sockets' buffers: it may all be "sent")
        hostile.wait_for_hangups(1)  # we stopped reading and hung up


async def test_the_cap_is_configurable_and_counts_decoded_bytes(hostile):
    import gzip

    body = json.dumps({"id": "t1", "status": "completed", "pad": " " * 5000}).encode()
    hostile.serve(body_answer(gzip.compress(body), headers={"Content-Encoding": "gzip"}))
    p = provider_at("evolink", hostile.base_url, max_body=2000)
    with pytest.raises(BadResponse) as info:
        await fetch(p)
    assert info.value.message == "answer larger than 2000 bytes"
    p.max_body = 64 * 1024  # the same gzip answer under a larger cap is read and decoded
    task = await fetch(p)
    assert task.state == "succeeded" and task.provider_status == "completed"


async def test_deflate_and_identity_answers_are_read(hostile):
    import zlib

    body = json.dumps({"id": "t1", "status": "processing", "progress": 40}).encode()
    p = provider_at("evolink", hostile.base_url)
    for enc, data in (("deflate", zlib.compress(body)), ("deflate", zlib.compress(body)[2:-4]),
                      ("identity", body), ("gzip, identity", __import__("gzip").compress(body))):
        hostile.serve(body_answer(data, headers={"Content-Encoding": enc}))
        task = await fetch(p)
        assert (task.state, task.progress) == ("running", 40.0), enc


async def test_a_corrupt_gzip_body_is_a_bad_response(hostile):
    hostile.serve(body_answer(b"\x1f\x8b\x08\x00 not really gzip", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(BadResponse, match="could not be decoded"):
        await fetch(provider_at("evolink", hostile.base_url))


async def test_an_answer_cut_mid_body_is_transient(hostile):
    hostile.serve(close_mid_body())
    with pytest.raises(Transient, match="network error"):
        await fetch(provider_at("evolink", hostile.base_url))


MEMORY_SCRIPT = textwrap.dedent("""
    import asyncio, resource, sys, tracemalloc
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))  # a broken cap fails, not the machine
    import httpx
    from tui.providers import make_provider
    async def main():
        p = make_provider(sys.argv[1], "k" * 20, sys.argv[2])
        p.deadline = 120
        async with httpx.AsyncClient() as client:
            await p.send(client, p.status_request("t1"))  # warm imports and the pool
            tracemalloc.start()
            try:
                await p.send(client, p.status_request("t1"))
            except Exception as exc:
                print(type(exc).__name__, exc.message if hasattr(exc, "message") else exc)
            print(tracemalloc.get_traced_memory()[1])
    asyncio.run(main())
""")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("bomb", ["gzip bomb", "endless plain body"])
def test_peak_memory_stays_near_the_cap(hostile, bomb):
    """4 MB of gzip inflating to 4 GB, or an endless body: the client's peak
    traced memory stays under three times the 4 MiB cap (count, not time)."""
    answer = gzip_bomb if bomb == "gzip bomb" else (lambda: huge_plain(claim=None))
    hostile.serve(json_answer({"id": "t1", "status": "completed"}), count=1)  # the warm-up request
    hostile.serve(answer(), path="/v1/tasks/t1")
    hostile.serve(json_answer({"id": "t1", "status": "completed"}), count=1)
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, "evolink", hostile.base_url], cwd=ROOT,
                         capture_output=True, text=True, timeout=200)
    assert out.returncode == 0, out.stderr[-2000:]
    said, peak = out.stdout.strip().splitlines()
    assert said == "BadResponse answer larger than 4 MiB"
    assert int(peak) < 12 * 1024 * 1024, f"peak {int(peak) >> 20} MiB"  # about 4.6 MiB; unbounded inflate: 140


# ---------------------------------------------------------------- key echoes (item 8)


def echoes(key: str) -> dict[str, str]:
    """20 forms of a key a server might echo back."""
    b = key.encode()
    n = len(key)
    return {
        "as is": key,
        "upper": key.upper(),
        "lower": key.lower(),
        "swapped case": key.swapcase(),
        "quote": quote(key),
        "quote safe=''": quote(key, safe=""),
        "quote_plus": quote_plus(key),
        "quote, lower-case escapes": quote(key, safe="").lower(),
        "double quote": quote(quote(key, safe=""), safe=""),
        "json-escaped slash": key.replace("/", "\\/"),
        "base64": base64.b64encode(b).decode(),
        "base64 unpadded": base64.b64encode(b).decode().rstrip("="),
        "urlsafe base64": base64.urlsafe_b64encode(b).decode(),
        "urlsafe unpadded": base64.urlsafe_b64encode(b).decode().rstrip("="),
        "basic user:key": "Basic " + base64.b64encode(b"someuser:" + b).decode(),
        "basic key:": "Basic " + base64.b64encode(b + b":").decode(),
        "hex": b.hex(),
        "HEX": b.hex().upper(),
        "long prefix": key[: int(n * 0.7)],
        "long suffix": key[-int(n * 0.7):],
    }


ECHOES = echoes(KEY)


def forms_in(text: str) -> list[str]:
    return [name for name, form in ECHOES.items() if form in text or form.lower() in text.lower()]


def task_body(provider: str, said: str) -> tuple[int, dict]:
    """A failed task of ``provider`` (the simulator's published shapes) carrying ``said``."""
    from tui.sim import bodies
    from tui.sim.scenario import sim_task

    t = sim_task(provider, "t1", "failed", error=said, model=f"model {said}")
    if provider == "comfy":
        body = bodies.comfy_task(t, "failed", "wrapped")
        body["data"]["error"] = said  # extra field, kept by the parser for a failed task
    elif provider == "freepik":
        body = bodies.freepik_task(t, "failed")
        body["data"]["error"] = said
    elif provider == "upscayl":
        body = bodies.upscayl_task(t, "failed", 10, lambda x: 1.8e9 + x, "docs")
    elif provider == "qolaba":
        body = bodies.qolaba_task(t, "failed", "200")[1]  # status FAILED with a 200
    else:
        body = bodies.evolink_task(t, "failed", 10, lambda x: 1.8e9 + x)
    body["debug"] = {"echo": said, said: [said]}  # raw answer only
    return 200, body


def assert_clean(obj, where: str) -> None:
    text = obj if isinstance(obj, str) else repr(obj)
    found = forms_in(text)
    assert not found, f"{where}: {found} in {text[:300]!r}"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_echoed_key_in_any_form_never_survives(hostile, provider):
    from tui.sim import bodies

    p = provider_at(provider, hostile.base_url)
    for name, form in ECHOES.items():
        said = f"invalid key {form} (sent {form})"
        for status, answer in (
            (401, json_answer(bodies.error_body(provider, 401, said), status=401)),
            (500, body_answer(f"debug: Authorization: {form}".encode(), status=500,
                              headers={"Content-Type": "text/plain"})),
            (502, body_answer(f"<html><title>{form}</title>{form}</html>".encode(), status=502,
                              headers={"Content-Type": "text/html"})),
        ):
            hostile.serve(answer)
            with pytest.raises(ProviderError) as info:
                await fetch(p)
            err = info.value
            assert err.status == status
            for where, value in (("str", str(err)), ("repr", repr(err)), ("args", repr(err.args)),
                                 ("code", repr(err.code))):
                assert_clean(value, f"{name} {status} {where}")
        status, body = task_body(provider, said)
        hostile.serve(json_answer(body, status=status))
        task = await fetch(p)
        assert task.state == "failed", name
        assert task.error, name
        assert_clean(repr(task), f"{name} task repr")
        assert_clean(json.dumps(task.to_dict()), f"{name} task to_dict")
        assert_clean(json.dumps(task.raw), f"{name} task raw")


# ---------------------------------------------------------------- big lists (item 9)


BIG_SCRIPT = textwrap.dedent("""
    import json, sys, httpx
    from tui.providers import make_provider
    name, n = sys.argv[1], 200_000
    links = [f"https://cdn.example.com/{i}.png" for i in range(n)] + ["https://cdn.example.com/0.png"]
    body = {
        "comfy": {"data": {"task_id": "t1", "status": "COMPLETED", "generated": links}},
        "freepik": {"data": {"task_id": "t1", "status": "COMPLETED", "generated": links}},
        "upscayl": {"status": "success", "data": {"status": "PROCESSED", "files": links}},
        "qolaba": {"task_id": "t1", "status": "SUCCESS", "output": {"result": links}},
        "evolink": {"id": "t1", "status": "completed", "results": links[: n // 2],
                    "result_data": [{"image_url": u} for u in links[n // 2:]]},
    }[name]
    p = make_provider(name, "k" * 20, "http://127.0.0.1:9")
    response = httpx.Response(200, json=body, request=httpx.Request("GET", "http://127.0.0.1:9/"))
    task = p.parse_status("t1", None, response)
    print(task.state, len(task.results), len(set(task.results)))
""")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_200000_results_are_deduplicated_and_capped(provider):
    """Runs in a subprocess so that a quadratic parse is stopped by the subprocess
    timeout, not counted on a clock: a linear one takes about 2 s, a quadratic one
    (a `url not in list` per link) 4 to 8 minutes; 40 s is far from both."""
    out = subprocess.run([sys.executable, "-c", BIG_SCRIPT, provider], cwd=ROOT, capture_output=True,
                         text=True, timeout=40)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["succeeded", "100", "100"]
