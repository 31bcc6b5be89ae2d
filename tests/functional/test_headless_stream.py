"""Headless output streams (issue 15): ``ls --json``, ``export --format json|csv``
write rows as they are read, so their memory does not grow with the store;
``add``/``rm`` of one id never load it; ``add -`` writes 1,000 ids per transaction.

Real SQLite files; peak memory is the ``ru_maxrss`` of a child process (read by
a small wrapper process, so each figure is one command's own), compared with
the same command on a store 100 times smaller: a ratio, never a fixed size or time.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import main
from tui.headless import ADD_BATCH, dumps, to_csv, write_export, write_json_array
from tui.model import Task
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]
BIG, SMALL = 200_000, 2_000
RATIO = 1.5  # constant memory: the big store's peak at most this times the small one's

PEAK = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if r.returncode:
    sys.exit(f"exit {r.returncode}: {r.stderr}")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_DB=str(db), TASKTUI_CONFIG=str(db.parent / "missing.toml"), CI="true")
    return env


def peak_kb(db: Path, *argv: str, stdin: str | None = None) -> int:
    """Peak resident memory (KiB) of ``tasktui ARGV`` against ``db``."""
    cmd = [sys.executable, "-c", PEAK, sys.executable, "-m", "tui", *argv]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(db), capture_output=True, text=True, timeout=600,
                       input=stdin)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def build(path: Path, n: int) -> Path:
    with Store(path) as store:
        for start in range(0, n, 50_000):
            store.add("evolink", [f"task-unified-{i:08d}" for i in range(start, min(n, start + 50_000))],
                      label="batch-7")
        store.apply([Task("evolink", "task-unified-00000001", state="failed", error="=HYPERLINK(\"x\")",
                          progress=float("inf"))])
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stream")
    (root / "big").mkdir()
    (root / "small").mkdir()
    return build(root / "big" / "tasks.db", BIG), build(root / "small" / "tasks.db", SMALL)


@pytest.mark.parametrize("argv", [("ls", "--json"), ("ls",), ("export",), ("export", "--format", "csv"),
                                  ("ls", "--json", "--filter", "state:failed"),
                                  ("add", "evolink", "task-unified-new"), ("rm", "evolink", "task-unified-00000005")])
def test_memory_does_not_grow_with_the_store(stores, argv):
    big, small = stores
    small_kb = peak_kb(small, *argv)
    big_kb = peak_kb(big, *argv)
    assert big_kb <= RATIO * small_kb, f"{argv}: {big_kb} KiB at {BIG:,} tasks, {small_kb} KiB at {SMALL:,}"


def test_ls_json_of_the_big_store_is_every_row_as_a_json_array(stores):
    big, _ = stores
    proc = subprocess.Popen([sys.executable, "-m", "tui", "ls", "--json"], cwd=ROOT, env=_env(big),
                            stdout=subprocess.PIPE, text=True)
    first = last = None
    rows = 0
    for line in proc.stdout:  # read as it comes: this test holds no more than the command does
        first = line if first is None else first
        last = line
        rows += line == "  {\n"
    assert proc.wait(timeout=600) == 0
    assert first == "[\n" and last == "]\n" and rows == BIG


def test_streamed_json_and_csv_are_the_bytes_of_the_whole_documents():
    tasks = [Task("evolink", "a", state="failed", error="=1+1", label="-x", progress=float("nan"),
                  results=["https://x/1.png", "https://x/2.png"], details={"k": "v"}),
             Task("freepik", "b\u202e", state="running", label="@SUM(A1)", credits=float("inf")),
             Task("comfy", "c", state="succeeded", label="multi\nline\r\"quoted\"")]
    out = io.StringIO()
    assert write_json_array((t.to_dict() for t in tasks), out) == 3
    assert out.getvalue() == dumps([t.to_dict() for t in tasks], indent=2) + "\n"
    data = json.loads(out.getvalue(), parse_constant=lambda c: pytest.fail(f"non-finite {c} in JSON"))
    assert data[0]["progress"] is None and data[1]["credits"] is None
    out = io.StringIO()
    assert write_json_array(iter(()), out) == 0 and out.getvalue() == "[]\n" and json.loads(out.getvalue()) == []
    out = io.StringIO()
    assert write_export(tasks, "csv", out) == 3
    assert out.getvalue() == to_csv(tasks)
    assert "'=1+1" in out.getvalue() and "'@SUM(A1)" in out.getvalue() and "'-x" in out.getvalue()
    out = io.StringIO()
    assert write_export(tasks, "json", out) == 3 and json.loads(out.getvalue())[2]["task_id"] == "c"


def test_add_from_stdin_writes_a_thousand_ids_per_transaction(tmp_path, monkeypatch, capsys):
    for key in list(os.environ):
        if key.startswith("TASKTUI_"):
            monkeypatch.delenv(key)
    db = tmp_path / "tasks.db"
    monkeypatch.setenv("TASKTUI_DB", str(db))
    monkeypatch.setenv("TASKTUI_CONFIG", str(tmp_path / "missing.toml"))
    n = 2 * ADD_BATCH + 500
    lines = [f"task-unified-{i:06d}" for i in range(n)] + ["task-unified-000007", "# a comment", ""]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["add", "evolink", "-", "task-unified-000003", "task-unified-extra"]) == 0
    out = capsys.readouterr().out
    assert f"added {n + 1} evolink tasks" in out and "1 already tracked" not in out
    with sqlite3.connect(db) as conn:
        seq = conn.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()[0]
        count = conn.execute("SELECT COUNT(*) FROM tasks WHERE deleted = 0").fetchone()[0]
    assert count == n + 1
    assert seq == 4  # three batches from stdin, then the arguments' one new id


def test_streamed_json_matches_json_dumps_on_random_documents():
    """The fast writer (flat members through the C encoder's pieces) against
    ``json.dumps(indent=2)``: seeded random documents of every JSON type, escapes,
    non-BMP text, lone surrogates, non-finite numbers (null)."""
    import random

    rnd = random.Random(15)

    def value(depth: int = 0):
        kinds = [lambda: None, lambda: True, lambda: False, lambda: rnd.randint(-10**15, 10**15),
                 lambda: rnd.choice([0.1, -2.5e-300, 1e300, float("nan"), float("inf"), -0.0, 1e16, 123.456]),
                 lambda: "".join(rnd.choice('ab"\\\n\t\u202e\x00\x1f\x7fé中😀\ud800') for _ in range(rnd.randrange(6))),
                 lambda: [value(depth + 1) for _ in range(rnd.randrange(3))],
                 lambda: {f"k{i}é\"\n": value(depth + 1) for i in range(rnd.randrange(3))}, lambda: {}, lambda: []]
        return kinds[rnd.randrange(10 if depth < 3 else 6)]()

    for _ in range(2000):
        items = [{f"f{i}": value() for i in range(rnd.randrange(6))} for _ in range(rnd.randrange(4))]
        items += [value()] if rnd.random() < 0.3 else []
        out = io.StringIO()
        write_json_array(items, out)
        assert out.getvalue() == (dumps(items, indent=2) + "\n" if items else "[]\n"), items
