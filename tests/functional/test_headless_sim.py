"""``tasktui poll / wait / quota`` as subprocesses against the simulator on
127.0.0.1 and a real SQLite file (TASKTUI_CONFIG / TASKTUI_DB in the env)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tui.model import PROVIDERS
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, base_url: str, providers=PROVIDERS, keys=None, **extra) -> Path:
    lines = []
    for name in providers:
        key = (keys or {}).get(name, f"sim-key-{name}")
        lines += [f"[providers.{name}]", f'api_key = "{key}"', f'base_url = "{base_url}"',
                  "poll_interval = 0.1", 'rate_limit = "600/s"']
        lines += [f"{k} = {v}" for k, v in extra.get(name, {}).items()]
        lines.append("")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)  # it holds literal keys: a readable file gets a warning on stderr
    return path


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_DB=str(tmp_path / "tasks.db"), TASKTUI_CONFIG=str(tmp_path / "config.toml"),
               CI="true")
    return env


def cli(tmp_path: Path, *argv: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", *argv], cwd=ROOT, env=env_for(tmp_path),
                          capture_output=True, text=True, input="", timeout=timeout)


def add(tmp_path: Path, provider: str, *ids: str) -> None:
    r = cli(tmp_path, "add", provider, *ids)
    assert r.returncode == 0, r.stderr


def no_secrets(*outputs: str) -> None:
    for out in outputs:
        for p in PROVIDERS:
            assert f"sim-key-{p}" not in out
        assert "wrong-key" not in out


def test_wait_exit_0_when_all_succeed(sim, tmp_path):
    write_config(tmp_path, sim.base_url)
    for p in PROVIDERS:
        add(tmp_path, p, f"{p}-done")
    r = cli(tmp_path, "wait", "--json", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert sorted(d["provider"] for d in data) == sorted(PROVIDERS)
    assert all(d["state"] == "succeeded" and d["results"] for d in data)
    assert r.stderr == ""  # not a TTY: no progress lines
    no_secrets(r.stdout, r.stderr)


def test_wait_exit_1_when_any_fails_or_is_gone(sim, tmp_path):
    write_config(tmp_path, sim.base_url, providers=("evolink", "freepik"))
    add(tmp_path, "evolink", "evolink-done", "evolink-expired")
    add(tmp_path, "freepik", "freepik-cancelled")
    r = cli(tmp_path, "wait", "--json")
    assert r.returncode == 1, r.stderr
    states = {d["task_id"]: d["state"] for d in json.loads(r.stdout)}
    assert states == {"evolink-done": "succeeded", "evolink-expired": "not_found",
                      "freepik-cancelled": "cancelled"}


def test_wait_follows_a_running_task_to_its_end(sim, sim_task, tmp_path):
    # a short job (EvoLink's estimated_time says 1.5 s) so the engine looks again soon
    sim.add([sim_task("evolink", "short-job", "running", created=-1.0, start=-1.0, end=0.5)])
    write_config(tmp_path, sim.base_url, providers=("evolink",))
    add(tmp_path, "evolink", "short-job")
    proc = subprocess.Popen([sys.executable, "-m", "tui", "wait", "--timeout", "120"], cwd=ROOT,
                            env=env_for(tmp_path), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(r.task_id == "short-job" and r.status == 200 for r in sim.requests):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "wait never polled the task"
            time.sleep(0.05)
        sim.advance(60)  # the task ends in sim time
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    with Store(tmp_path / "tasks.db") as store:
        t = store.get("evolink:short-job")
        assert t.state == "succeeded" and t.progress == 100 and t.results
        assert [h[1] for h in store.history(t.key)][-2:] == ["running", "succeeded"]


def test_wait_timeout_is_exit_2(sim, tmp_path):
    write_config(tmp_path, sim.base_url, providers=("comfy",))
    add(tmp_path, "comfy", "comfy-queued")  # the sim clock is frozen: it never starts
    assert cli(tmp_path, "poll").returncode == 0  # its state is known (a busy machine may not poll within 1.5 s)
    r = cli(tmp_path, "wait", "--timeout", "1.5", "--json")
    assert r.returncode == 2
    assert "timed out" in r.stderr and "1 of 1" in r.stderr
    assert json.loads(r.stdout)[0]["state"] == "queued"


def test_wait_refused_key_is_exit_2_quickly_with_few_requests(sim, tmp_path):
    write_config(tmp_path, sim.base_url, providers=("evolink", "comfy"), keys={"evolink": "wrong-key-0000"})
    add(tmp_path, "evolink", *[f"e{i}" for i in range(20)])
    add(tmp_path, "comfy", "comfy-queued")
    r = cli(tmp_path, "wait", "--timeout", "300")
    assert r.returncode == 2
    assert "evolink" in r.stderr and "credentials refused" in r.stderr and "timed out" not in r.stderr
    assert len([q for q in sim.requests if q.provider == "evolink"]) <= 2
    no_secrets(r.stdout, r.stderr)


def test_wait_filter_limits_the_tasks_waited_for(sim, tmp_path):
    write_config(tmp_path, sim.base_url, providers=("evolink", "comfy"))
    add(tmp_path, "evolink", "evolink-done")
    add(tmp_path, "comfy", "comfy-queued")  # never ends, but does not match
    r = cli(tmp_path, "wait", "--filter", "provider:evolink", "--json", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert [d["task_id"] for d in json.loads(r.stdout)] == ["evolink-done"]
    r = cli(tmp_path, "wait", "--filter", "label:nothing-has-this")
    assert r.returncode == 2 and "no tasks match" in r.stderr  # no match is trouble (issue 13)


def test_poll_prints_one_round_and_quota_counts_it(sim, tmp_path):
    write_config(tmp_path, sim.base_url, providers=("evolink", "upscayl"))
    add(tmp_path, "evolink", "evolink-running", "evolink-done")
    add(tmp_path, "upscayl", "upscayl-failed")
    r = cli(tmp_path, "poll", "--json")
    assert r.returncode == 0, r.stderr
    states = {d["task_id"]: (d["state"], d["progress"]) for d in json.loads(r.stdout)}
    assert states == {"evolink-running": ("running", 50.0), "evolink-done": ("succeeded", 100.0),
                      "upscayl-failed": ("failed", states["upscayl-failed"][1])}
    r = cli(tmp_path, "poll")
    assert r.returncode == 0 and r.stdout.splitlines()[0].split()[0] == "PROVIDER"
    sent = {p: sum(1 for q in sim.requests if q.provider == p) for p in ("evolink", "upscayl")}

    r = cli(tmp_path, "quota", "--json")
    assert r.returncode == 0, r.stderr
    rows = {q["provider"]: q for q in json.loads(r.stdout)}
    assert rows["evolink"]["requests"] == sent["evolink"] and rows["upscayl"]["requests"] == sent["upscayl"]
    assert rows["evolink"]["balance"] is not None and rows["upscayl"]["balance"] is None
    assert rows["evolink"]["credits_spent"] == 4.0  # the running task reserves credits too
    assert rows["evolink"]["tasks"]["succeeded"] == 1 and rows["upscayl"]["tasks"]["failed"] == 1
    assert rows["evolink"]["state"] == "ok" and rows["evolink"]["errors"] == 0
    no_secrets(r.stdout, r.stderr)


def test_retry_window_holds_across_cli_runs(sim, sim_fault, tmp_path):
    sim.add(faults=[sim_fault("rate_limit_text", "upscayl", count=1)])  # "Try again in 1 hour"
    write_config(tmp_path, sim.base_url, providers=("upscayl",))
    add(tmp_path, "upscayl", "upscayl-running")
    r = cli(tmp_path, "poll")
    assert r.returncode == 0 and "upscayl: rate_limited" in r.stderr
    for _ in range(2):
        assert cli(tmp_path, "poll").returncode == 0
    r = cli(tmp_path, "wait", "--timeout", "1")
    assert r.returncode == 2 and "timed out" in r.stderr
    assert [q.status for q in sim.requests if q.provider == "upscayl"] == [429]
    assert sim.violations == []
    q = json.loads(cli(tmp_path, "quota", "--json").stdout)[0]
    assert q["state"] == "rate_limited" and q["retry_at"] and q["rate_limited"] == 1


def test_wait_spends_requests_on_the_waited_tasks_only(sim, tmp_path):
    write_config(tmp_path, sim.base_url, providers=("evolink", "qolaba"))
    add(tmp_path, "evolink", "evolink-done")
    add(tmp_path, "qolaba", "qolaba-running", "qolaba-queued")
    r = cli(tmp_path, "wait", "--filter", "provider:evolink", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert not [q for q in sim.requests if q.provider == "qolaba"]
    before = len(sim.requests)
    r = cli(tmp_path, "wait", "--filter", "provider:evolink", "--timeout", "60")
    assert r.returncode == 0 and len(sim.requests) == before  # already done: nobody is asked


def test_wait_shows_progress_lines_on_a_terminal(sim, tmp_path):
    import pty

    write_config(tmp_path, sim.base_url, providers=("comfy",))
    add(tmp_path, "comfy", "comfy-queued", "comfy-done")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tui", "wait", "--timeout", "2"], cwd=ROOT,
                            env=env_for(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the other side closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        proc.wait(timeout=60)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 2
    assert "waiting: " in text and "/2 done" in text and "timed out" in text


def test_wait_exits_2_listing_the_tasks_when_the_provider_is_out_of_credits(sim_factory, sim_scenario, sim_task,
                                                                              sim_fault, tmp_path):
    # 402 on every status request: nothing left can progress, so wait says so now,
    # not at its timeout (issue 11)
    sim = sim_factory(sim_scenario(sim_task("evolink", "e-1", "running"), sim_task("evolink", "e-2", "queued"),
                                   faults=[sim_fault("quota", "evolink")]))
    write_config(tmp_path, sim.base_url, providers=("evolink",))
    add(tmp_path, "evolink", "e-1", "e-2")
    started = time.monotonic()
    r = cli(tmp_path, "wait", "--timeout", "240")
    assert r.returncode == 2, r.stderr
    assert "timed out" not in r.stderr and time.monotonic() - started < 200
    assert "nothing left can progress" in r.stderr
    assert "evolink:e-1 — evolink: out of credits" in r.stderr and "evolink:e-2 — " in r.stderr
    no_secrets(r.stdout, r.stderr)


def test_wait_names_a_task_whose_polls_keep_failing_and_exits_2_when_it_is_stuck(sim_factory, sim_scenario,
                                                                                  sim_task, sim_fault, tmp_path):
    # every status request for the task answers 500: the engine marks it stalled after
    # a few failed polls; it was the only task, so nothing left can progress (issue 11)
    sim = sim_factory(sim_scenario(sim_task("evolink", "e-sick", "running"),
                                   faults=[sim_fault("server_error", "evolink", status=500)]))
    write_config(tmp_path, sim.base_url, providers=("evolink",))
    add(tmp_path, "evolink", "e-sick")
    r = cli(tmp_path, "wait", "--timeout", "240")
    assert r.returncode == 2, r.stderr
    assert "timed out" not in r.stderr
    assert "tasktui: evolink:e-sick stalled: " in r.stderr  # said while waiting
    assert "nothing left can progress" in r.stderr and "evolink:e-sick — " in r.stderr
    with Store(tmp_path / "tasks.db") as store:
        t = store.get("evolink:e-sick")
        assert t.stalled and t.failed_polls >= 1 and t.last_error and t.state == "unknown"
    no_secrets(r.stdout, r.stderr)
