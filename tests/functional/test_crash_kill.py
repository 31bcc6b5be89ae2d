"""Crash safety of the real processes: ``kill -9`` the dashboard and ``tasktui
wait`` at random moments of their refresh rounds, while other processes add
tasks; afterwards every acknowledged task is there and SQLite is intact.

(tests/functional/test_store_crash.py kills bare store writers; this kills the programs.)
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KILLS = 30
# Each round starts two Python processes and waits for the victim's first request:
# on a loaded 2-core machine that is 5-20 s, so these tests get their own limit
# (the suite's 300 s is for tests that wait on nothing slower than a thread).
SLOW = pytest.mark.timeout(1200)

DASHBOARD = r"""
import asyncio, ctypes, signal, sys
try:  # die with the test process, whatever ends it (PR_SET_PDEATHSIG; Linux)
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
except Exception:
    pass
from tui.app import make_app
from tui.config import load_config
from tui.engine import Engine
from tui.store import Store

config = load_config(sys.argv[1])
store = Store(sys.argv[2])
app = make_app(config, store, Engine(config, store))

async def main():
    async with app.run_test(size=(120, 40)):
        print("ready", flush=True)
        while True:
            await asyncio.sleep(0.05)

asyncio.run(main())
"""


@pytest.fixture
def world(sim_factory, tmp_path):
    from tui.sim import generate
    from tui.store import Store

    # Lifecycles of hours of sim time: tasks stay running for the whole test, so
    # ``wait`` never ends on its own before the kill (the kill count stays meaningful).
    sim = sim_factory(generate(seed=11, n_tasks=60, faults=False, horizon=100_000), speed=20.0)
    config = tmp_path / "config.toml"
    text = sim.config_toml().replace('base_url = ', 'poll_interval = 0.1\nrate_limit = "1000/s"\nbase_url = ')
    config.write_text(text)
    config.chmod(0o600)
    db = tmp_path / "tasks.db"
    with Store(db) as store:
        for t in sim.sim.scenario.tasks:
            store.add(t.provider, [t.task_id], kind=t.kind, label="sim")
    env = {**os.environ, "TASKTUI_CONFIG": str(config), "TASKTUI_DB": str(db), "PYTHONPATH": str(ROOT)}
    return sim, config, db, env


def _add(env: dict, ids: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui", "add", "evolink", *ids, "--label", "acked"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check(db: Path, acknowledged: set[str]) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    from tui.store import Store

    with Store(db, readonly=True) as store:
        missing = [i for i in acknowledged if f"evolink:{i}" not in store]
    assert not missing, f"{len(missing)} acknowledged tasks lost, e.g. {missing[:3]}"


@SLOW
def test_kill_dashboard_and_wait_at_random_moments(world):
    sim, config, db, env = world
    rng = random.Random(1234)
    acknowledged: set[str] = set()
    kills = 0
    unseen = 0  # victims killed before any request of theirs was seen (must stay 0)
    for round_no in range(KILLS):
        if round_no % 2:
            cmd = [sys.executable, "-c", DASHBOARD, str(config), str(db)]
        else:
            cmd = [sys.executable, "-m", "tui", "wait", "--timeout", "60"]
        seen = len(sim.requests)  # before the victim starts: every later request is its own
        victim = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ids = [f"acked-{round_no:03d}-{n}" for n in range(3)]
        adder = None
        try:
            adder = _add(env, ids)
            kills, unseen = _one_round(sim, victim, adder, seen, rng, kills, unseen, acknowledged, ids)
        finally:  # whatever failed above, no process of this round outlives the test
            for proc in (victim, adder):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
    assert kills >= KILLS * 0.8, f"only {kills} of {KILLS} processes were still running when killed"
    assert unseen == 0, f"{unseen} victims were killed before their first request reached the simulator"
    _check(db, acknowledged)
    assert len(acknowledged) == 3 * KILLS


def _one_round(sim, victim, adder, seen, rng, kills, unseen, acknowledged, ids):
    """One victim's life: its first request, a random moment more, kill -9; the adder's answer."""
    # A random moment of its polling: wait for the event (the victim's first request
    # reached the simulator), not for a fixed time a busy machine may not honour.
    deadline = time.monotonic() + 120
    while len(sim.requests) <= seen and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    polled = len(sim.requests) > seen
    time.sleep(rng.uniform(0.0, 0.8))  # then a round, a write, a sleep between rounds
    if victim.poll() is None:
        victim.send_signal(signal.SIGKILL)
        kills += 1
        unseen += not polled
    victim.wait(30)
    out, err = adder.communicate(timeout=60)
    if adder.returncode == 0:  # acknowledged: it must survive every kill
        acknowledged.update(ids)
    assert "database is locked" not in err
    return kills, unseen


@SLOW
def test_ten_adders_while_a_dashboard_runs(world):
    sim, config, db, env = world
    dash = subprocess.Popen([sys.executable, "-c", DASHBOARD, str(config), str(db)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert dash.stdout.readline().strip() == "ready"
        adders = [_add(env, [f"p{p}-{i:03d}" for i in range(200)]) for p in range(10)]
        for a in adders:
            out, err = a.communicate(timeout=120)
            assert a.returncode == 0, err
            assert "locked" not in err.lower()
        assert dash.poll() is None, "the dashboard died"
    finally:
        dash.kill()
        dash.wait(30)
    _check(db, {f"p{p}-{i:03d}" for p in range(10) for i in range(200)})
