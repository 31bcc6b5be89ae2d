"""Scale: the dashboard's task list and the store at 1k .. 1M stored tasks.

A team store after a year of batches: almost every task finished (97 %), the rest live.
Each size is built once, with plain SQL into a schema made by ``tui.store.Store``, and
kept under the bench tmp dir ($TASKTUI_BENCH_DIR, default /tmp/tasktui-bench) for the
next run.

Measured, per size, today's path (the dashboard opens its store with scope "live" and
the list reads windows of it) against the baseline kept here (``baseline_load``: the
loader before it, every row made a Task in memory, which ``Store(scope="all")`` still is):

- first frame: Pilot, from ``run_test`` to the first frame with the list filled;
- peak RSS of the process that opened it (a child process per case: ru_maxrss);
- filter: a query typed key by key, the time of each key in the widget (p50/p95);
- sort: one key press (``s``) to the list re-sorted;
- scroll to the end: ``end`` to the frame showing the last row.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from .common import Result, percentile

SIZES_FULL = (1_000, 10_000, 100_000, 300_000, 1_000_000)
SIZES_QUICK = (1_000, 10_000)
PROVIDERS = ("comfy", "upscayl", "qolaba", "freepik", "evolink")
MODELS = ("gpt-4o-image", "upscayl-standard-4x", "flux-dev", "wan2.5", "hyperflux", "relight-v2")
ENDED = ("succeeded",) * 8 + ("failed", "cancelled")


def bench_dir() -> Path:
    path = Path(os.environ.get("TASKTUI_BENCH_DIR", "/tmp/tasktui-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def build(n: int, *, seed: int = 1, path: Path | None = None) -> Path:
    """The store of ``n`` tasks (built once, then reused)."""
    path = path or bench_dir() / f"scale-{n}.db"
    done = path.with_suffix(".ok")
    if done.exists() and path.exists():
        return path
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    from tui.store import Store

    Store(path).close()  # the schema, at the current version
    import sqlite3

    rng = random.Random(seed)
    now = time.time()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    rows = []
    for i in range(n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        task_id = f"{provider[:3]}-{i:07d}-{rng.randrange(16**6):06x}"
        live = rng.random() < 0.03
        state = rng.choice(("queued", "running")) if live else rng.choice(ENDED)
        created = now - rng.randrange(365 * 86_400)
        updated = created + rng.randrange(3_600)
        rows.append((f"{provider}:{task_id}", provider, task_id, "image", f"batch-{i // 20_000}", state,
                     state.upper(), 100.0 if state == "succeeded" else float(rng.randrange(100)),
                     f'["https://cdn.example.com/{task_id}.png"]' if state == "succeeded" else "[]",
                     rng.choice(MODELS), rng.choice((None, 1.0, 2.5)), created, updated,
                     updated if state in ENDED else None, i + 1, i + 1))
        if len(rows) >= 50_000:
            _insert(conn, rows)
            rows = []
    _insert(conn, rows)
    conn.execute("UPDATE meta SET value = ? WHERE name = 'seq'", (n + 1,))
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    done.write_text("ok")
    return path


def _insert(conn, rows) -> None:
    conn.executemany(
        "INSERT INTO tasks (key, provider, task_id, kind, label, state, provider_status, progress, results,"
        " model, credits, created_at, updated_at, finished_at, rev, seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


# ---------------------------------------------------------------- the baseline


def baseline_load(path: Path) -> dict:
    """Today's loader before the window (kept here, not in tui/): every row -> a Task in a dict."""
    import sqlite3

    from tui.model import Task
    from tui.store import _TASK_COLS, _details_dict, _results_list

    conn = sqlite3.connect(path)
    index = {}
    for row in conn.execute(f"SELECT {_TASK_COLS} FROM tasks WHERE deleted = 0 ORDER BY id"):
        (provider, task_id, kind, label, state, pstatus, progress, results, error, model, credits,
         created, updated, finished, last_error, last_error_at, failed_polls, stalled, poll_path,
         details, eta, rev, files, polled, nxt) = row
        index[provider + ":" + task_id] = Task(
            provider, task_id, kind, label, state, pstatus, progress,
            _results_list(results) if results != "[]" else [], error, model, credits, created, updated,
            finished, last_error, last_error_at, failed_polls or 0, stalled, poll_path,
            _details_dict(details) if details else {}, None, None, rev, [], polled, nxt)
    conn.close()
    return index


# ---------------------------------------------------------------- one case, in a child process

CHILD = r'''
import asyncio, json, resource, sys, time
from pathlib import Path
path, scope, query = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
from tui.config import Config
from tui.stores import open_store
from tui.app import make_app
store = open_store(path, scope=scope)
app = make_app(Config(), store, None, offline=True)
out = {}

async def main():
    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        await pilot.pause()
        out["first_frame"] = time.perf_counter() - t0
        keys = []
        await pilot.press("slash")
        for ch in query:
            t = time.perf_counter()
            await pilot.press(ch)
            keys.append(time.perf_counter() - t)
        out["filter_keys"] = keys
        out["filtered"] = tasks.count
        await pilot.press("escape")
        tasks.focus()
        t = time.perf_counter()
        await pilot.press("s")
        await pilot.pause()
        out["sort"] = time.perf_counter() - t
        t = time.perf_counter()
        await pilot.press("end")
        await pilot.pause()
        out["scroll_end"] = time.perf_counter() - t
        out["count"] = tasks.count

asyncio.run(main())
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
'''

BASE_CHILD = r'''
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from bench.scale import baseline_load
index = baseline_load(Path(sys.argv[1]))
print(json.dumps({"load": time.perf_counter() - t0, "n": len(index),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def _child(code: str, *args: str) -> dict:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=root,
                          timeout=1800, env={**os.environ, "PYTHONPATH": str(root)})
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, query: str = "state:fail flux") -> dict:
    path = build(n)
    live = _child(CHILD, str(path), "live", query)
    base = _child(BASE_CHILD, str(path))
    return {"n": n, "live": live, "baseline": base}


def run(quick: bool = False) -> list[Result]:
    out: list[Result] = []
    for n in SIZES_QUICK if quick else SIZES_FULL:
        m = measure(n)
        live, base = m["live"], m["baseline"]
        keys = live["filter_keys"]
        out.append(Result("scale", f"{n:,} tasks: first frame", live["first_frame"], "s",
                          baseline=base["load"], baseline_name="old loader (load only)"))
        out.append(Result("scale", f"{n:,} tasks: peak RSS", live["rss_mb"], "MB",
                          baseline=base["rss_mb"], baseline_name="old loader"))
        out.append(Result("scale", f"{n:,} tasks: filter key p50", percentile(keys, 50), "s"))
        out.append(Result("scale", f"{n:,} tasks: filter key p95", percentile(keys, 95), "s"))
        out.append(Result("scale", f"{n:,} tasks: sort key", live["sort"], "s"))
        out.append(Result("scale", f"{n:,} tasks: scroll to end", live["scroll_end"], "s"))
    return out


if __name__ == "__main__":
    for size in (int(a) for a in sys.argv[1:]) if len(sys.argv) > 1 else SIZES_QUICK:
        print(json.dumps(measure(size)))
