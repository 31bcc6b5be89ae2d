"""Providers a user declares in the config: validation (one-line errors), the
answer paths, an end-to-end poll over real HTTP on 127.0.0.1, ``provider test``,
and a fuzzer: any JSON answer gives a Task or a typed ProviderError."""

from __future__ import annotations

import argparse
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui import model
from tui.config import ConfigError, load_config, parse_config
from tui.providers import make_provider
from tui.providers.catalogue import Declaration, parse_path
from tui.providers.declared import add_parser, cmd_provider_test, declared_class, find, provider_for

SECRET = "sk-declared-0123456789"

MYVENDOR = """
[providers.myvendor]
type = "declared"
api_key = "{key}"
base_url = "{base}"
poll_interval = 2
auth_header = "X-Token"
auth_scheme = "raw"
headers = {{ "X-Api-Version" = "2024-01" }}
default_kind = "video"

[providers.myvendor.request]
path = "/v2/{{kind}}/jobs/{{id}}"
query = {{ verbose = "1" }}

[providers.myvendor.paths]
status = "job.state"
progress = "job.percent"
results = ["job.outputs[*].url", "job.preview"]
error = "job.failure.reason"
model = "job.model"
credits = "job.cost"
created_at = "job.created"
details = {{ "queue position" = "job.queue[0]" }}

[providers.myvendor.states]
queued = ["waiting"]
running = ["working", "Rendering"]
succeeded = ["done"]
failed = ["error"]

[providers.myvendor.listing]
path = "/v2/{{kind}}/jobs"
items = "jobs"
task_id = "job.id"

[providers.myvendor.balance]
path = "/v2/account"
remaining = "credits.left"
unit = "credits"
"""


def config_text(base: str = "http://127.0.0.1:9") -> str:
    return MYVENDOR.format(key=SECRET, base=base)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.toml", environ={})
    return info.value.problems


# ---------------------------------------------------------------- the config


def test_a_declared_provider_loads_with_its_defaults_and_builds():
    config = parse_config(config_text(), "cfg.toml", environ={})
    pc = config.providers["myvendor"]
    assert pc.declared and pc.poll_interval == 2 and str(pc.rate_limit) == "60/m" and pc.kinds == ["video"]
    p = provider_for("myvendor", config)
    req = p.status_request("j 1")
    assert req.url == "http://127.0.0.1:9/v2/video/jobs/j%201?verbose=1"
    assert req.headers["X-Token"] == SECRET and req.headers["X-Api-Version"] == "2024-01"
    assert "Authorization" not in req.headers and SECRET not in repr(req) and SECRET not in repr(pc)
    assert p.has_list and p.has_balance and p.name == "myvendor"


def test_a_catalogue_entry_with_its_own_base_url_and_key():
    text = ('[providers.kling-direct]\ncatalogue = "kling"\napi_key = "jwt-abc"\n'
            'base_url = "https://api-singapore.klingai.com"\nauth_scheme = "bearer"\n'
            '[providers.kling-direct.request]\npath = "/v1/{kind}/{id}"\n'
            '[providers.kling]\napi_key = "comfyui-k"\n')
    config = parse_config(text, "cfg.toml", environ={})
    direct = provider_for("kling-direct", config)
    req = direct.status_request("t1", "image2video")
    assert req.url == "https://api-singapore.klingai.com/v1/videos/image2video/t1"
    assert req.headers["Authorization"] == "Bearer jwt-abc"
    proxied = provider_for("kling", config).status_request("t1")
    assert proxied.url == "https://api.comfy.org/proxy/kling/v1/videos/text2video/t1"
    assert config.providers["kling"].poll_interval == 16.0  # the entry's default


@pytest.mark.parametrize("table,key,reason", [
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "s" }\nrequest = { path = "/tasks" }\n', "providers.x.request", "has no {id}"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { done = ["ok"] }\n'
     'paths = { status = "s" }\nrequest = { path = "/t/{id}" }\n', "providers.x.states", "unknown state 'done'"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "s" }\nrequest = { path = "/t/{id}" }\npoll_intervall = 3\n', "providers.x.poll_intervall",
     "did you mean 'poll_interval'?"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "s", stauts = "t" }\nrequest = { path = "/t/{id}" }\n', "providers.x.paths.stauts",
     "unknown key 'stauts'"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "a..b" }\nrequest = { path = "/t/{id}" }\n', "providers.x.paths.status[0]", "is not a path"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "s" }\nrequest = { path = "/t/{task}" }\n', "providers.x.request.path",
     "unknown placeholder '{task}'"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\n'
     'states = { succeeded = ["ok"], failed = ["OK"] }\npaths = { status = "s" }\nrequest = { path = "/t/{id}" }\n',
     "providers.x.states", "'OK' is in both"),
    ('type = "declared"\napi_key = "k"\nstates = { succeeded = ["ok"] }\npaths = { status = "s" }\n'
     'request = { path = "/t/{id}" }\n', "providers.x.base_url", "required"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "s" }\nrequest = { path = "/t/{id}" }\nstatus_defalt = "x"\n', "providers.x.status_defalt",
     "did you mean 'status_default'?"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "s" }\nrequest = { path = "/t/{id}" }\nstatus_by_http = { "2xx" = "ok" }\n',
     "providers.x.status_by_http", "'2xx' is not an HTTP status code"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "s" }\nrequest = { path = "/t/{id}" }\nstatus_by_http = { "202" = "busy" }\n',
     "providers.x", "status_by_http.202: 'busy' is not one of the words in [states]"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nstates = { succeeded = ["ok"] }\n'
     'paths = { status = "s" }\nrequest = { path = "/t/{id}" }\nstatus_default = "busy"\n',
     "providers.x", "status_default: 'busy' is not one of the words"),
    ('type = "declard"\napi_key = "k"\n', "providers.x.type", "did you mean 'declared'?"),
    ('catalogue = "klin"\napi_key = "k"\n', "providers.x.catalogue", "did you mean 'kling'?"),
    ('type = "declared"\napi_key = "k"\nbase_url = "http://127.0.0.1:9"\nrequest = { path = "/t/{id}" }\n'
     'states = { succeeded = ["ok"] }\n', "providers.x.paths", "required key is missing"),
])
def test_bad_declarations_give_one_line_errors(table, key, reason):
    found = problems(f"[providers.x]\n{table}")
    assert any(line.startswith(f"cfg.toml: {key}: ") and reason in line for line in found), found
    assert all("\n" not in line for line in found)


def test_config_check_names_declared_providers(tmp_path, capsys):
    from tui.config import cmd_check

    cfg = tmp_path / "config.toml"
    cfg.write_text(config_text() + '[providers.kling]\napi_key = "comfyui-k"\n'
                   '[providers.luma2]\ncatalogue = "luma"\napi_key = "k"\npoll_interval = 9\nenabled = false\n')
    cfg.chmod(0o600)
    assert cmd_check(argparse.Namespace(config=str(cfg))) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {cfg}: 3 providers (myvendor [declared], kling [catalogue], luma2 [disabled, declared])")


def test_provider_config_built_directly():
    from pydantic import ValidationError

    from tui.config import ProviderConfig

    kling = ProviderConfig(name="kling", api_key="k")  # a catalogue entry by its name
    assert kling.declared and kling.base_url == "https://api.comfy.org" and kling.poll_interval == 16.0
    assert ProviderConfig.model_validate(kling).declaration is kling.declaration
    assert not ProviderConfig(name="comfy", api_key="k").declared
    d = parse_config(config_text(), "cfg.toml", environ={}).providers["myvendor"].declaration
    own = ProviderConfig(name="mine", api_key="k", base_url="https://h.example", declaration=d)
    assert own.declaration is d and own.kinds == ["video"]
    with pytest.raises(ValidationError, match="unknown provider 'nope'"):
        ProviderConfig(name="nope", api_key="k", base_url="http://x", poll_interval=1, rate_limit="1/s")
    with pytest.raises(ValidationError):
        ProviderConfig(name="mine", api_key="k", base_url="http://x", declaration={"request": {}})


def test_an_unknown_name_says_how_to_declare_and_the_five_cannot_be_redeclared():
    (line,) = problems('[providers.openai]\napi_key = "x"\n')
    assert "unknown provider 'openai'" in line and 'type = "declared"' in line and "kling" in line
    found = problems('[providers.comfy]\napi_key = "x"\ntype = "kling"\n')
    assert any("providers.comfy.type" in p and "built-in" in p for p in found)
    assert SECRET not in " ".join(problems(config_text().replace('"video"', "3")))


# ---------------------------------------------------------------- paths and answers


def test_paths():
    data = {"a": {"b": [{"u": 1}, {"u": None}, {"u": 3}], "c": [[5, 6]]}, "x.y": 1}
    assert find(data, "a.b[*].u") == [1, 3]
    assert find(data, "a.b[2].u") == [3] and find(data, "a.b[9].u") == [] and find(data, "a.b[3].u") == []
    assert find(data, "a.c[0][1]") == [6] and find(data, "a.nope") == [] and find([7], "[0]") == [7]
    assert find("text", "a") == [] and find(data, "a.b.u") == []
    assert parse_path("data.task_result.videos[*].url") == ("data", "task_result", "videos", "*", "url")
    for bad in ("", "a..b", "a[x]", "a b", ".a", "a["):
        with pytest.raises(ValueError):
            parse_path(bad)


def declared(base: str = "http://127.0.0.1:9"):
    return provider_for("myvendor", parse_config(config_text(base), "cfg.toml", environ={}))


def answer(**job):
    return httpx.Response(200, json={"job": job})


def test_every_declared_fact_is_read():
    task = declared().parse_status("j1", None, answer(
        state="DONE", percent="75", outputs=[{"url": "https://cdn/x.mp4"}, {"url": "ftp://no"}, {"url": "https://cdn/x.mp4"}],
        preview="https://cdn/p.jpg", model="m-1", cost=12.5, created="2026-01-02T03:04:05Z", queue=[4]))
    assert (task.state, task.provider_status, task.progress) == ("succeeded", "DONE", 75.0)
    assert task.results == ["https://cdn/x.mp4", "https://cdn/p.jpg"]
    assert task.model == "m-1" and task.credits == 12.5 and task.created_at == 1767323045.0
    assert task.details == {"queue position": "4"} and task.kind == "video"
    failed = declared().parse_status("j1", None, answer(state="error", failure={"reason": "[red]boom\x1b[2J"}))
    assert failed.state == "failed" and "\x1b" not in failed.error and "boom" in failed.error


def test_progress_is_scaled_and_kept_within_0_to_100():
    assert declared().parse_status("j1", None, answer(state="working", percent=250)).progress == 100.0
    assert declared().parse_status("j1", None, answer(state="working", percent="-3")).progress == 0.0
    runway = make_provider("runway", "comfyui-k")  # progress 0..1 (runwayml/sdk-python TaskRetrieveResponse)
    assert runway.parse_status("t", None, httpx.Response(200, json={"status": "RUNNING", "progress": 0.25})).progress == 25.0
    assert runway.parse_status("t", None, httpx.Response(200, json={"status": "RUNNING", "progress": 7})).progress == 100.0


def test_an_unknown_word_is_unknown_with_the_word_and_a_hint():
    task = declared().parse_status("j1", None, answer(state="Paused"))
    assert task.state == model.UNKNOWN and task.provider_status == "Paused"
    assert "not in myvendor's vocabulary" in task.details["hint"] and "states" in task.details["hint"]
    assert "Paused" in task.details["hint"]


def test_no_status_is_a_bad_response_naming_the_path():
    with pytest.raises(model.BadResponse, match="job.state"):
        declared().parse_status("j1", None, answer(percent=3))
    with pytest.raises(model.BadResponse):
        declared().parse_status("j1", None, httpx.Response(200, json=[1, 2]))


def test_errors_stay_classified_by_status_and_the_key_is_masked():
    p = declared()
    with pytest.raises(model.NotFound):
        p.parse_status("j1", None, httpx.Response(404, json={"message": "no such job"}))
    with pytest.raises(model.RateLimited) as info:
        p.parse_status("j1", None, httpx.Response(429, json={"message": f"slow down {SECRET}"},
                                                  headers={"retry-after": "7"}))
    assert info.value.retry_after == 7 and SECRET not in info.value.message
    task = p.parse_status("j1", None, answer(state="error", failure={"reason": f"key {SECRET} refused"}))
    assert SECRET not in task.error and SECRET not in json.dumps(task.raw)


def test_a_post_api_sends_its_body_template():
    d = Declaration.model_validate({
        "request": {"method": "post", "path": "/ops/{kind}:poll", "body": {"name": "{id}", "opts": ["{kind}", 1]}},
        "paths": {"status": "done"}, "states": {"succeeded": ["true"], "running": ["false"]},
        "status_default": "false", "default_kind": "m1"})
    p = declared_class("ops", d)("k", "https://h.example")
    req = p.status_request("projects/1/operations/2")
    assert (req.method, req.url) == ("POST", "https://h.example/ops/m1:poll")
    assert req.json == {"name": "projects/1/operations/2", "opts": ["m1", 1]}
    assert p.parse_status("x", None, httpx.Response(200, json={})).state == "running"
    assert p.parse_status("x", None, httpx.Response(200, json={"done": True})).state == "succeeded"


# ---------------------------------------------------------------- end to end over HTTP


class Vendor:
    """A vendor that keeps jobs in a dict (served by the shared test server)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}

    def answer(self, seen):
        path = seen.path.split("?")[0]
        if seen.headers.get("x-token") != SECRET:
            return 401, {"message": "bad token"}
        if path == "/v2/account":
            return 200, {"credits": {"left": "41.5"}}
        if path == "/v2/video/jobs":
            return 200, {"jobs": [{"job": {"id": k, **v}} for k, v in self.jobs.items()]}
        job_id = path.rsplit("/", 1)[-1]
        if job_id not in self.jobs:
            return 404, {"message": f"job {job_id} not found"}
        return 200, {"job": self.jobs[job_id]}


@pytest.fixture
def vendor(http_server):
    jobs = Vendor()
    server = http_server(jobs.answer)
    server.jobs = jobs.jobs
    return server


async def test_a_declared_provider_end_to_end_over_http(vendor, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(config_text(vendor.url).replace(f'"{SECRET}"', '"${MYVENDOR_KEY}"'))
    config = load_config(cfg, environ={"MYVENDOR_KEY": SECRET})
    p = provider_for("myvendor", config)
    vendor.jobs["j1"] = {"state": "working", "percent": 10}
    vendor.jobs["j2"] = {"state": "done", "outputs": [{"url": "https://cdn/j2.mp4"}]}
    async with httpx.AsyncClient() as client:
        running = await p.fetch_status(client, "j1")
        first = vendor.wait_for_requests(1)[0]
        assert (first.method, first.path) == ("GET", "/v2/video/jobs/j1?verbose=1")
        assert first.headers["x-token"] == SECRET
        assert (running.state, running.progress) == ("running", 10.0)
        vendor.jobs["j1"] = {"state": "done", "outputs": [{"url": "https://cdn/j1.mp4"}]}
        done = await p.fetch_status(client, "j1")
        assert done.state == "succeeded" and done.results == ["https://cdn/j1.mp4"]
        with pytest.raises(model.NotFound, match="job j9 not found"):
            await p.fetch_status(client, "j9")
        listed = {t.task_id: t.state for t in await p.fetch_list(client)}
        assert listed == {"j1": "succeeded", "j2": "succeeded"}
        balance = await p.fetch_balance(client)
        assert (balance.remaining, balance.unit) == (41.5, "credits")
        wrong = make_provider("myvendor", "wrong-key", vendor.url, declaration=config.providers["myvendor"].declaration)
        with pytest.raises(model.AuthError):
            await wrong.fetch_status(client, "j1")


# ---------------------------------------------------------------- provider test


def run_provider_test(tmp_path, capsys, body, *extra, name="myvendor", status=200):
    cfg = tmp_path / "config.toml"
    cfg.write_text(config_text())
    cfg.chmod(0o600)
    sample = tmp_path / "answer.json"
    sample.write_text(json.dumps(body))
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--config", str(cfg), "provider", "test", name, "--sample", str(sample),
                              "--status", str(status), *extra])
    assert args.command == "provider" and args.provider_command == "test"
    code = cmd_provider_test(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_provider_test_prints_the_task_and_the_paths_that_point_nowhere(tmp_path, capsys):
    code, out, err = run_provider_test(tmp_path, capsys, {"job": {"state": "working", "percent": 5}})
    assert code == 0 and "state: running" in out and "progress: 5.0" in out
    assert "points nowhere: results: job.outputs[*].url" in out and "points nowhere: status" not in out
    assert SECRET not in out + err
    code, out, _ = run_provider_test(tmp_path, capsys, {"job": {"state": "paused"}}, "--json")
    task = json.loads(out.splitlines()[0])
    assert task["state"] == "unknown" and task["provider_status"] == "paused"
    assert "vocabulary" in task["details"]["hint"]


def test_provider_test_reports_errors_and_unknown_names(tmp_path, capsys):
    code, out, err = run_provider_test(tmp_path, capsys, {"other": 1})
    assert code == 2 and "BadResponse" in err and "points nowhere: status: job.state" in out
    code, _, err = run_provider_test(tmp_path, capsys, {"message": "gone"}, status=404)
    assert code == 2 and "NotFound: gone" in err
    code, out, _ = run_provider_test(tmp_path, capsys, {"state": "dreaming"}, name="luma")
    assert code == 0 and "state: running" in out  # a catalogue entry the config does not name
    code, _, err = run_provider_test(tmp_path, capsys, {}, name="nope")
    assert code == 2 and "unknown provider 'nope'" in err and "myvendor" in err


def test_cmd_is_importable_for_the_cli():
    assert callable(cmd_provider_test)


# ---------------------------------------------------------------- fuzz

KEYS = ["job", "state", "percent", "outputs", "url", "failure", "reason", "queue", "cost", "created", "model",
        "preview", "jobs", "id", "code", "message", "data", "task_status", "status", "Resp", "ErrCode",
        "base_resp", "status_code", "done", "error", "response", "finish_reason", "progress", "x"]
LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20) \
    | st.sampled_from(["done", "working", "succeed", "SUCCESS", "Fail", "true", "1", "0"])
JSON = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(KEYS), inner, max_size=5), max_leaves=25)


def nest(path: str, value):
    """A body holding ``value`` at a declared path (lists for [n] and [*])."""
    for part in reversed(parse_path(path)):
        value = [value] if part == "*" else [None] * part + [value] if isinstance(part, int) else {part: value}
    return value


FUZZED = [declared(), *(make_provider(n, "comfyui-k") for n in ("kling", "minimax", "pixverse", "veo",
                                                                 "stability", "runway", "wan", "tripo"))]


@st.composite
def answers(draw):
    """Random JSON, or a body with a random value at one provider's status path."""
    if draw(st.booleans()):
        return draw(JSON)
    p = draw(st.sampled_from(FUZZED))
    body = nest(draw(st.sampled_from(p.declaration.paths.status)), draw(JSON))
    if isinstance(body, dict) and draw(st.booleans()):
        body.update(draw(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=3)))
    return body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=answers(), status=st.sampled_from([200, 202, 200, 400, 404, 429, 500]))
def test_any_json_answer_gives_a_task_or_a_typed_error(body, status):
    for p in FUZZED:
        response = httpx.Response(status, content=json.dumps(body).encode())
        try:
            task = p.parse_status("t1", None, response)
        except model.ProviderError:
            pass
        else:
            assert task.state in model.STATES and isinstance(task.results, list)
            assert all(isinstance(r, str) and r.startswith(("http://", "https://")) for r in task.results)
            assert task.progress is None or 0 <= task.progress <= 100
            json.dumps(task.to_dict(), allow_nan=False)
        try:
            if p.has_list:
                p.parse_list(None, response)
        except model.ProviderError:
            pass


@settings(max_examples=200, deadline=None)
@given(body=JSON)
def test_any_json_in_a_job_gives_a_task_or_a_typed_error(body):
    p = FUZZED[0]
    try:
        job = {"state": "done", "outputs": body, "percent": body, "created": body, "failure": body, "cost": body,
               "queue": body, "model": body}
        task = p.parse_status("t1", None, httpx.Response(200, content=json.dumps({"job": job}).encode()))
        json.dumps(task.to_dict(), allow_nan=False)
    except model.ProviderError:
        pass
