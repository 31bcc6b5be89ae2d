"""The catalogue's vendors and a provider the user declares, end to end against the
simulator (tui/sim/vendors.py: bodies written from the vendors' published answers,
not from the catalogue files) on 127.0.0.1 and a real SQLite file.

Every vendor gets a task that goes queued -> running -> succeeded, one that
fails, one the vendor does not know, and where the vendor has the words, one
that is cancelled and one it has forgotten (Tripo's "expired": one it gave up
on, a failure).  The real CLI (``tasktui add`` and ``wait --json``) follows
them to their ends; the same check also runs through
the Engine and the Store directly (``Engine.poll_once``), so the catalogue path
is proven whatever the command line accepts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.sim.vendors import PROXY_VENDORS
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]
PATIENCE = 90.0  # seconds a subprocess may take to poll everything once (a safety limit, not a timing check)

# Vendors with a cancelled word (Runway CANCELLED, BytePlus cancelled, DashScope CANCELED, Tripo cancelled).
CANCELS = ("runway", "seedance", "wan", "tripo")
# Vendors whose answer for a task they once had says so (Tripo "expired", PixVerse status 6 deleted).
FORGETS = ("tripo", "pixverse")
# Of those, the ones whose word is a failure of the task, with the error it must begin with: Tripo's
# "expired" is a finalized status of a task that failed (platform.tripo3d.ai/docs/task; ComfyUI's
# nodes_tripo.py failed_statuses), not a task it does not know (its 404, code 2001).
EXPIRED_FAILS = {"tripo": "expired: "}
# Vendors whose success carries no web link: MiniMax a file id, Sora a content endpoint,
# Stability the image itself (base64), Veo a gs:// URI.
NO_LINK = ("minimax", "sora", "stability", "veo")
# Vendors that answer an unknown id with an error in a 200 (MiniMax base_resp 2013, PixVerse a
# non-zero ErrCode): the request is refused, so the task ends failed, not not_found.
REFUSES_UNKNOWN = ("minimax", "pixverse")
# Vendors whose failure answer carries the task's error text where the entry reads it.
ERROR_TEXT = ("kling", "runway", "luma", "minimax", "seedance", "wan", "sora", "vidu", "veo")


def ids(vendor: str) -> dict[str, str]:
    """role -> task id (PixVerse ids are numbers: its video_id is an int)."""
    if vendor == "pixverse":
        return {"ok": "1001", "bad": "1002", "gone": "1003", "old": "1004"}
    roles = ["ok", "bad", "gone"] + (["stop"] if vendor in CANCELS else []) + (["old"] if vendor in FORGETS else [])
    return {role: f"{vendor}-{role}" for role in roles}


def scenario(build, sim_task, vendors=PROXY_VENDORS, declared=("acme",)):
    """Every live task queued at t=0: running from t=30, ended at t=90."""
    tasks = []
    for v in tuple(vendors) + tuple(declared):
        for role, tid in ids(v).items():
            if role == "gone":
                continue
            if role == "old":
                tasks.append(sim_task(v, tid, "expired"))
                continue
            end = {"ok": "succeeded", "bad": "failed", "stop": "cancelled"}[role]
            extra = {}
            if end == "succeeded":
                extra["results"] = [f"https://sim.tasktui.invalid/{v}/{tid}/0.mp4"]
            if end == "failed":
                extra["error"] = "simulated failure"
            if v == "kling" and role == "bad":
                extra["kind"] = "image2video"  # polled on videos/image2video
            tasks.append(sim_task(v, tid, "queued", created=-10, start=30, end=90, end_state=end, **extra))
    return build(*tasks)


def expected(vendor: str) -> dict[str, dict]:
    """task id -> what its end must be."""
    out = {}
    for role, tid in ids(vendor).items():
        if role == "ok":
            links = [] if vendor in NO_LINK else [f"https://sim.tasktui.invalid/{vendor}/{tid}/0.mp4"]
            out[tid] = {"state": "succeeded", "results": links}
        elif role == "bad":
            out[tid] = {"state": "failed"}
            if vendor in ERROR_TEXT or vendor == "acme":
                out[tid]["error"] = "simulated failure"
        elif role == "gone":
            out[tid] = {"state": "failed" if vendor in REFUSES_UNKNOWN else "not_found"}
        elif role == "stop":
            out[tid] = {"state": "cancelled"}
        elif role == "old":
            out[tid] = ({"state": "failed", "error_starts": EXPIRED_FAILS[vendor]} if vendor in EXPIRED_FAILS
                        else {"state": "not_found"})
    return out


# A provider the user declares for acme (tui/sim/vendors.py acme: GET /acme/v2/jobs/{id}, Bearer key).
ACME = """
[providers.acme]
type = "declared"
api_key = "{key}"
base_url = "{base}"
poll_interval = 0.1
rate_limit = "600/s"

[providers.acme.request]
path = "/acme/v2/jobs/{{id}}"

[providers.acme.paths]
status = "job.phase"
progress = "job.percent"
results = "job.outputs[*].href"
error = "job.problem.text"
model = "job.engine"
created_at = "job.created"

[providers.acme.states]
queued = ["waiting"]
running = ["working"]
succeeded = ["done"]
failed = ["broken"]
cancelled = ["stopped"]
"""


def write_config(tmp_path: Path, sim, vendors=PROXY_VENDORS, declared=True) -> Path:
    lines = []
    for v in vendors:  # a catalogue entry: only the key and where the proxy is
        lines += [f"[providers.{v}]", f'api_key = "{sim.key("comfy")}"', f'base_url = "{sim.base_url}"',
                  "poll_interval = 0.1", 'rate_limit = "600/s"', ""]
    text = "\n".join(lines)
    if declared:
        text += ACME.format(key=sim.key("acme"), base=sim.base_url)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def env_for(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_DB=str(tmp_path / "tasks.db"), TASKTUI_CONFIG=str(tmp_path / "config.toml"), CI="true")
    return env


def cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", *argv], cwd=ROOT, env=env_for(tmp_path),
                          capture_output=True, text=True, input="", timeout=120)


def live_ids(sim) -> set[tuple[str, str]]:
    return {(t.provider, t.task_id) for t in sim.scenario.tasks if t.expires is None}


def wait_for_polls(sim, wanted: set[tuple[str, str]], since: int, proc=None) -> None:
    """Until every (vendor, id) in ``wanted`` had a 2xx answer after record number ``since``."""
    deadline = time.monotonic() + PATIENCE
    while True:
        seen = {(r.provider, r.task_id) for r in sim.requests[since:] if r.status < 300}
        if wanted <= seen:
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"wait ended early: {proc.communicate()}")
        assert time.monotonic() < deadline, f"never polled: {sorted(wanted - seen)}"
        time.sleep(0.05)


def check_ends(tasks: dict[str, dict], vendors) -> None:
    """``tasks``: task id -> Task fields (from wait --json or the store)."""
    for v in vendors:
        for tid, want in expected(v).items():
            got = tasks[tid]
            assert got["provider"] == v, (tid, got)
            for field, value in want.items():
                if field == "error":
                    assert value in (got.get("error") or ""), (tid, got)
                elif field == "error_starts":
                    assert (got.get("error") or "").startswith(value), (tid, got)
                else:
                    assert got[field] == value, (tid, field, got)


def check_lifecycle(store: Store, vendors) -> None:
    """The tasks that went through the lifecycle were seen queued, then running, then at their end."""
    for v in vendors:
        for role, tid in ids(v).items():
            if role not in ("ok", "bad", "stop"):
                continue
            states = [h[1] for h in store.history(f"{v}:{tid}")]
            end = {"ok": "succeeded", "bad": "failed", "stop": "cancelled"}[role]
            # Stability, PixVerse and Veo have no queued word: their tasks read running at once.
            first = "running" if v in ("stability", "pixverse", "veo") else "queued"
            assert states[-1] == end and first in states and "running" in states, (tid, states)
            assert states.index(first) <= states.index("running") < len(states) - 1, (tid, states)


ALL = tuple(PROXY_VENDORS) + ("acme",)


def test_catalogue_and_declared_through_add_and_wait(sim_factory, sim_task, sim_scenario, tmp_path):
    sim = sim_factory(scenario(sim_scenario, sim_task))
    write_config(tmp_path, sim)
    for v in ALL:
        roles = ids(v)
        for role, tid in roles.items():
            argv = ["add", v, tid]
            if v == "kling" and role == "bad":
                argv += ["--kind", "image2video"]
            r = cli(tmp_path, *argv)
            assert r.returncode == 0, (v, r.stderr)
    proc = subprocess.Popen([sys.executable, "-m", "tui", "wait", "--json", "--timeout", "300"], cwd=ROOT,
                            env=env_for(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_polls(sim, live_ids(sim), 0, proc)  # every live task seen queued
        mark = len(sim.requests)
        sim.clock.set(45)  # all running
        wait_for_polls(sim, live_ids(sim), mark, proc)
        sim.clock.set(100)  # all ended
        out, err = proc.communicate(timeout=PATIENCE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err  # some end failed or not found
    tasks = {d["task_id"]: d for d in json.loads(out)}
    assert len(tasks) == sum(len(ids(v)) for v in ALL)
    check_ends(tasks, ALL)
    assert sim.key("comfy") not in out + err and sim.key("acme") not in out + err
    with Store(tmp_path / "tasks.db") as store:
        check_lifecycle(store, ALL)
    paths = {r.path for r in sim.requests if r.task_id == "kling-bad"}
    assert paths == {"/proxy/kling/v1/videos/image2video/kling-bad"}


async def test_catalogue_and_declared_through_the_engine(sim_factory, sim_task, sim_scenario, tmp_path):
    """The same world through Engine + Store, no command line: the catalogue path itself."""
    from tui.config import load_config
    from tui.engine import Engine

    sim = sim_factory(scenario(sim_scenario, sim_task))
    config = load_config(write_config(tmp_path, sim))
    with Store(tmp_path / "tasks.db") as store:
        for v in ALL:
            for role, tid in ids(v).items():
                store.add(v, [tid], kind="image2video" if (v, role) == ("kling", "bad") else None)
        engine = Engine(config, store)
        try:
            await engine.poll_once()
            assert {t.state for t in store.tasks() if t.task_id in {i for _, i in live_ids(sim)}} <= {
                "queued", "running"}
            sim.clock.set(45)
            await engine.poll_once()
            sim.clock.set(100)
            for _ in range(5):  # a few rounds: a round polls what is due within the budget
                await engine.poll_once()
                if all(t.terminal for t in store.tasks()):
                    break
        finally:
            await engine.stop()
        tasks = {t.task_id: t.to_dict() for t in store.tasks()}
        check_ends(tasks, ALL)
        check_lifecycle(store, ALL)


@pytest.mark.parametrize("vendor", ALL)
def test_every_vendor_refuses_a_wrong_key_in_its_shape(sim, vendor):
    import httpx

    from tui.sim.vendors import ROUTES

    method, path = ROUTES[vendor]
    url = sim.base_url + path.replace("{path:path}", "videos/text2video/x").replace("{id}", "x").replace(
        "{kind}", "veo-2.0-generate-001")
    r = httpx.request(method, url, headers={"Authorization": "Bearer wrong"}, json={"operationName": "x"})
    assert r.status_code == 401 and r.json()
    assert sim.requests[-1].provider == vendor and not sim.requests[-1].auth_ok


async def test_the_simulators_own_config_serves_its_vendors(sim_factory, sim_task, sim_scenario, tmp_path):
    """``sim.config_toml()`` (printed by ``tasktui simulate``) configures the vendors its tasks use:
    a proxy vendor with the Comfy key, acme declared."""
    from tui.config import parse_config
    from tui.engine import Engine

    sim = sim_factory(sim_scenario(sim_task("kling", "k-done", "succeeded"), sim_task("acme", "a-run", "running")))
    config = parse_config(sim.config_toml())
    assert {"kling", "acme"} <= set(config.providers) and "luma" not in config.providers
    with Store(tmp_path / "tasks.db") as store:
        store.add("kling", ["k-done"])
        store.add("acme", ["a-run"])
        engine = Engine(config, store)
        try:
            await engine.poll_once()
        finally:
            await engine.stop()
        assert store.get("kling:k-done").state == "succeeded" and store.get("kling:k-done").results
        assert store.get("acme:a-run").state == "running" and store.get("acme:a-run").progress == 50


def test_tripo_expired_and_unknown_through_the_simulator_add_and_wait(sim_factory, sim_task, sim_scenario, tmp_path):
    """Tripo alone: the simulator serves its published not-found row (404, code 2001) and an
    "expired" task; ``add`` + ``wait --json`` end the expired task failed, with an error that
    begins "expired: ", and the unknown id not_found."""
    import httpx

    from tui.providers import make_provider

    sim = sim_factory(sim_scenario(sim_task("tripo", "tripo-old", "expired"),
                                   sim_task("tripo", "tripo-done", "succeeded",
                                            results=["https://sim.tasktui.invalid/tripo/a.glb"])))
    provider = make_provider("tripo", sim.key("comfy"), sim.base_url)
    served = {}
    for tid in ("tripo-old", "tripo-gone"):
        req = provider.status_request(tid)
        served[tid] = httpx.request(req.method, req.url, headers=req.headers)
    assert served["tripo-gone"].status_code == 404 and served["tripo-gone"].json()["code"] == 2001
    assert served["tripo-old"].status_code == 200 and served["tripo-old"].json()["data"]["status"] == "expired"

    write_config(tmp_path, sim, vendors=("tripo",), declared=False)
    r = cli(tmp_path, "add", "tripo", "tripo-old", "tripo-gone", "tripo-done")
    assert r.returncode == 0, r.stderr
    r = cli(tmp_path, "wait", "--json", "--timeout", "60")
    assert r.returncode == 1, r.stderr  # some end failed or not found
    tasks = {d["task_id"]: d for d in json.loads(r.stdout)}
    old = tasks["tripo-old"]
    assert old["state"] == "failed" and old["provider_status"] == "expired", old
    assert old["error"].startswith("expired: "), old
    assert tasks["tripo-gone"]["state"] == "not_found", tasks["tripo-gone"]
    assert tasks["tripo-done"]["state"] == "succeeded", tasks["tripo-done"]
    assert sim.key("comfy") not in r.stdout + r.stderr
