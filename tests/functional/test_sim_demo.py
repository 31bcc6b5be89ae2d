"""``tasktui demo``: DemoEnv's simulator, private temp config and temp store;
``cmd_demo`` wiring (dashboard or headless)."""

from __future__ import annotations

import argparse
import io
import os
import stat
import sys

import httpx
import pytest

from tui.demo import DemoEnv, cmd_demo, demo_config, demo_scenario, run_headless
from tui.sim.scenario import PROVIDERS
from tui.sim.state import lifecycle


@pytest.fixture(autouse=True)
def no_user_files(tmp_path, monkeypatch):
    """Point every user path somewhere we can check stays empty."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(home))
    monkeypatch.setenv("TASKTUI_CONFIG", str(home / "user-config.toml"))
    monkeypatch.setenv("TASKTUI_DB", str(home / "user.db"))
    yield home
    assert list(home.iterdir()) == []  # the demo never touched the user's config or DB


def test_demo_env_builds_a_private_world():
    from tui.config import load_config
    from tui.store import Store

    with DemoEnv(seed=3, tasks=15) as env:
        assert env.base_url.startswith("http://127.0.0.1:") and env.sim.base_url == env.base_url
        mode = stat.S_IMODE(os.stat(env.config_path).st_mode)
        assert mode == 0o600
        config = load_config(env.config_path)
        assert set(config.enabled()) == set(PROVIDERS)
        for name, p in config.enabled().items():
            assert p.base_url == env.base_url and p.key == env.sim.key(name)
        store = Store(env.db_path)
        try:
            tracked = {(t.provider, t.task_id) for t in store.tasks()}
            assert tracked == {(t.provider, t.task_id) for t in env.scenario.tasks}
            assert all(t.label for t in store.tasks())
        finally:
            store.close()
        r = httpx.get(f"{env.base_url}/_sim/clock")
        assert r.status_code == 200
        where = env.dir
    assert not where.exists()  # cleaned up
    with pytest.raises(httpx.TransportError):  # and the simulator stopped
        httpx.get(f"{env.base_url}/_sim/clock", timeout=2)


def test_demo_scenario_moves_within_five_seconds():
    sc = demo_scenario(seed=7, tasks=50)
    assert all(t.created <= 0 for t in sc.tasks)  # every tracked id exists from the start
    moving = [t for t in sc.tasks if (lifecycle(t, 0) or ("gone",))[0] != (lifecycle(t, 5) or ("gone",))[0]]
    assert len(moving) >= 3
    running = [t for t in sc.tasks if lifecycle(t, 0)[0] == "running"]
    assert any(lifecycle(t, 5)[1] > lifecycle(t, 0)[1] for t in running)  # progress fills
    assert any(f.kind.startswith("rate_limit") and f.start < 5 for f in sc.faults)
    assert any(t.end_state == "failed" and 0 < t.end for t in sc.tasks)  # a failure happens on screen
    assert any(t.credits and t.end_state == "succeeded" and 0 < t.end < 60 for t in sc.tasks)


def test_demo_config_parses_and_names_every_freepik_kind():
    from tui.config import parse_config

    sc = demo_scenario(seed=7, tasks=50)
    text = demo_config("http://127.0.0.1:9", sc)
    config = parse_config(text)
    assert config.providers["freepik"].kinds[0] == "text-to-image/hyperflux"
    assert "mystic" in config.providers["freepik"].kinds


def test_cmd_demo_opens_the_dashboard_on_the_demo_world(monkeypatch):
    import tui.app

    seen = {}

    def fake_dashboard(config_path, db_path, offline):
        seen.update(config=config_path, db=db_path, offline=offline, exists=(config_path.exists(), db_path.exists()))
        return 0

    monkeypatch.setattr(tui.app, "run_dashboard", fake_dashboard)
    args = argparse.Namespace(seed=7, tasks=10, speed=1.0, headless=False)
    assert cmd_demo(args) == 0
    assert seen["offline"] is False and seen["exists"] == (True, True)
    assert not seen["config"].exists()  # removed afterwards


async def test_headless_demo_polls_every_task_to_its_end():
    # speed 20: the whole 60 s scenario plays in a few real seconds; we wait for
    # every task to be terminal (with a generous cap), never a fixed time.
    with DemoEnv(seed=5, tasks=12, speed=20) as env:
        out = io.StringIO()
        counts = await run_headless(env, out=out, every=0.2, max_seconds=120)
        expected: dict[str, int] = {}
        for t in env.scenario.tasks:
            end = "not_found" if t.expires is not None and t.expires <= env.sim.now() else t.end_state
            expected[end] = expected.get(end, 0) + 1
        lines = out.getvalue().splitlines()
        assert lines and all(line.startswith("t=") for line in lines)
        assert sum(counts.values()) == 12
        # every task ended as the scenario says (an expired one may be seen before it expired)
        assert counts.get("failed", 0) == expected.get("failed", 0)
        assert counts.get("cancelled", 0) == expected.get("cancelled", 0)
        assert counts.get("succeeded", 0) + counts.get("not_found", 0) == (
            expected.get("succeeded", 0) + expected.get("not_found", 0))
        assert env.sim.violations == []  # the engine kept to every Retry-After


def test_cmd_demo_headless_prints_progress_until_done(capsys):
    # seed 7: its faults announce waits of 3 s at most (seed 2 has EvoLink say "retry after 30 seconds",
    # which the engine honours in real time: a minute of the suite spent waiting)
    args = argparse.Namespace(seed=7, tasks=8, speed=30.0, headless=True)
    assert cmd_demo(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("tasktui demo: simulator at http://127.0.0.1:")
    assert any(line.startswith("t=") for line in out)
    assert out[-1].startswith("done: ") and "queued" not in out[-1] and "running" not in out[-1]


def test_demo_killed_by_sigterm_leaves_no_temp_files(tmp_path):
    import re
    import signal
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(root), "CI": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "tui", "demo", "--headless", "--tasks", "5", "--speed", "0.01"],
                            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # printed once the world is built
        assert re.match(r"tasktui demo: simulator at http://127\.0\.0\.1:\d+", first)
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tasktui-demo-")]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tasktui-demo-")]
