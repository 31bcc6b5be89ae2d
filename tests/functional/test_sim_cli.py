"""``tasktui simulate`` as a real subprocess: it prints a base URL that answers."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str) -> tuple[subprocess.Popen, "queue.Queue[str]"]:
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tui", "simulate", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def read_until(lines: "queue.Queue[str]", pattern: str, timeout: float = 60) -> list[str]:
    """Lines up to and including the first one matching ``pattern`` (polls, generous timeout)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"no line matching {pattern!r} in {seen!r}")


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_simulate_prints_a_base_url_that_answers_and_a_usable_config():
    proc, lines = start("--port", "0", "--seed", "3", "--tasks", "10")
    try:
        head = read_until(lines, r"listening on http://127\.0\.0\.1:\d+")
        url = re.search(r"(http://127\.0\.0\.1:\d+)", head[-1]).group(1)
        out = head + read_until(lines, r"^tasktui add evolink ")
        text = "".join(out)
        config = tomllib.loads("\n".join(line for line in text.splitlines()
                                         if line.startswith(("[providers.", "api_key", "base_url", "rate_limit"))))
        assert set(config["providers"]) == {"comfy", "upscayl", "qolaba", "freepik", "evolink"}
        assert all(p["base_url"] == url for p in config["providers"].values())
        add = next(line for line in text.splitlines() if line.startswith("tasktui add evolink "))
        task_id = add.split()[3]
        key = config["providers"]["evolink"]["api_key"]
        r = httpx.get(f"{url}/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code in (200, 404, 429, 500, 502, 503) and r.status_code != 401
        assert httpx.get(f"{url}/_sim/clock", timeout=30).json()["speed"] == 1.0
        read_until(lines, re.escape(f"GET  /v1/tasks/{task_id} -> {r.status_code}"))  # one line per request
    finally:
        code = stop(proc)
    assert code == 0


def test_simulate_serves_a_scenario_file(tmp_path):
    from tui.sim import build_scenario, sim_task

    path = tmp_path / "s.json"
    build_scenario(sim_task("freepik", "046b6c7f-0b8a-43b9-b35d-6489e6daee91", "succeeded")).dump(path)
    proc, lines = start("--port", "0", "--scenario", str(path), "--speed", "0")
    try:
        url = re.search(r"(http://[\d.]+:\d+)", read_until(lines, "listening on")[-1]).group(1)
        r = httpx.get(f"{url}/v1/ai/text-to-image/hyperflux", headers={"x-freepik-api-key": "sim-key-freepik"},
                      timeout=30)
        assert r.json() == {"data": [{"task_id": "046b6c7f-0b8a-43b9-b35d-6489e6daee91", "status": "COMPLETED"}]}
    finally:
        stop(proc)


def test_simulate_with_a_bad_scenario_file_says_why(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[tasks]]\nprovider = "nobody"\ntask_id = "x"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tui", "simulate", "--port", "0", "--scenario", str(path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "bad.toml" in done.stderr and "nobody" in done.stderr


def test_cmd_simulate_reports_a_busy_port(capsys):
    import argparse
    import socket

    from tui.sim.serve import cmd_simulate

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = argparse.Namespace(host="127.0.0.1", port=busy.getsockname()[1], scenario=None, seed=1, tasks=5,
                                  speed=1.0)
        assert cmd_simulate(args) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_deliberate_drops_are_not_logged_to_the_terminal(tmp_path):
    from tui.sim import Fault, build_scenario, sim_task

    path = tmp_path / "s.json"
    build_scenario(sim_task("evolink", "e1", "running"),
                   faults=[Fault(kind="drop", provider="evolink")]).dump(path)
    proc, lines = start("--port", "0", "--scenario", str(path))
    try:
        url = re.search(r"(http://[\d.]+:\d+)", read_until(lines, "listening on")[-1]).group(1)
        for _ in range(3):
            try:
                httpx.get(f"{url}/v1/tasks/e1", headers={"Authorization": "Bearer sim-key-evolink"}, timeout=30)
            except httpx.RemoteProtocolError:
                pass
            else:
                raise AssertionError("the connection was not dropped")
        read_until(lines, r"/v1/tasks/e1 -> 200 \[drop\]")
    finally:
        stop(proc)
    err = proc.stderr.read()
    assert "Exception in ASGI application" not in err and "SimulatedDrop" not in err
