"""Crash safety and concurrency of the store, with real processes and kill -9.

A writer process prints each id only after ``add()`` returned; the test kills it
at random moments and then checks that every printed (acknowledged) id is in the
database and that SQLite's integrity check passes.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.store import Store

HELPER = Path(__file__).resolve().parents[1] / "helpers_store.py"
ROOT = HELPER.parent.parent
WAIT = 60.0  # generous: only reached when something is broken

pytestmark = pytest.mark.slow


def spawn(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
    """The helper as a process with unbuffered byte pipes (nothing hides in a buffer)."""
    return subprocess.Popen([sys.executable, str(HELPER), *args], cwd=ROOT, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)


def first_line(proc: subprocess.Popen, timeout: float = WAIT) -> str:
    """Everything the process printed up to and including its first newline (or EOF)."""
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                proc.kill()
                pytest.fail(f"no output from {proc.args} in {timeout} s")
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
    return buf.decode()


def kill_and_collect(proc: subprocess.Popen, head: str = "") -> list[str]:
    """kill -9, then every complete line the process printed (a cut last line is dropped)."""
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read().decode()  # to EOF: the writer is gone
    err = proc.stderr.read().decode()
    proc.wait(timeout=WAIT)
    assert proc.returncode == -signal.SIGKILL, f"writer died on its own:\n{err}"
    lines = (head + rest).split("\n")
    return [line for line in lines[:-1] if line]


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_acknowledged_adds_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    acknowledged: list[str] = []
    kills = 0
    for cycle in range(50):
        batch = rng.choice(("1", "1", "7", "40"))
        proc = spawn("adder", str(db), f"c{cycle}-", batch)
        head = ""
        if rng.random() < 0.8:  # mostly mid-write; sometimes while opening
            head = first_line(proc)
        time.sleep(rng.uniform(0.0, 0.08))  # picks the kill moment; nothing waits on it
        acknowledged += kill_and_collect(proc, head)
        kills += 1
    assert kills >= 50
    assert len(acknowledged) > 100, "the writers hardly wrote anything: the test proves little"
    assert integrity(db) == "ok", f"seed {seed}"
    with Store(db) as store:
        missing = [i for i in acknowledged if f"evolink:{i}" not in store]
        assert missing == [], f"seed {seed}: {len(missing)} acknowledged ids lost"
        assert all(t.label == "crash" for t in store.tasks())
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM tasks WHERE deleted = 0").fetchone()[0] == len(store)


def test_apply_rounds_are_atomic_under_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "rounds.db"
    tasks = 300
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    last_acked = 0
    for _ in range(12):
        proc = spawn("applier", str(db), str(tasks))
        head = first_line(proc)
        time.sleep(rng.uniform(0.0, 0.15))
        lines = kill_and_collect(proc, head)
        if lines:
            last_acked = max(last_acked, int(lines[-1]))
        assert integrity(db) == "ok", f"seed {seed}"
        with Store(db) as store:
            statuses = {t.provider_status for t in store.tasks()}
            assert len(store) == tasks
            # all or nothing: every task shows the same round, and it is at least the last acknowledged
            assert len(statuses) == 1, f"seed {seed}: a round was half applied: {sorted(statuses)[:5]}"
            (status,) = statuses
            stored = int(status[1:]) if status else 0
            assert stored >= last_acked
            assert store.counters()["evolink"] == {"round": stored}
            assert store.events(limit=1)[0].message == f"round {stored}"
            assert store.raw("evolink:t0") == {"round": stored}
            assert len(store.history(f"evolink:t{tasks - 1}")) == stored
    assert last_acked > 0


def test_ten_writers_at_once(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    Store(db).close()  # the schema exists; the writers race on rows, not on creation
    procs = [spawn("burst", str(db), f"w{n}-", "200", stdin=subprocess.PIPE) for n in range(10)]
    try:
        for proc in procs:
            assert first_line(proc).strip() == "ready"
        for proc in procs:
            proc.stdin.write(b"go\n")
        results = [tuple(b.decode() for b in proc.communicate(timeout=240)) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (out, err) in zip(procs, results):
        assert "locked" not in out + err
        assert proc.returncode == 0 and out.strip() == "done", out + err
    with Store(db) as store:
        assert len(store) == 2000
        assert all(f"evolink:w{n}-{k}" in store for n in range(10) for k in range(200))
    assert integrity(db) == "ok"
