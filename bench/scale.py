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

``python -m bench.scale --headless [--no-baseline] 1000 ... 1000000``: ``ls --json`` and
``export`` (csv, json) at each size, time and peak memory, against the old way.

``python -m bench.scale --first-frame [--pg] [--rounds R] 1000000``: the first frame alone,
the live tasks read at open ("eager", as before) against after the first frame ("later",
as now), alternating in one run, quiet and then with two ``yes > /dev/null`` running.
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
    from tui.store import SCHEMA_VERSION

    path = path or bench_dir() / f"scale-v{SCHEMA_VERSION}-{n}.db"
    done = path.with_suffix(".ok")
    if done.exists() and path.exists():
        return path
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    from tui.store import Store

    Store(path).close()  # the schema, at the current version
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    rows = []
    for row in _rows(n, seed):
        rows.append(row)
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


_COLS = ("key, provider, task_id, kind, label, state, provider_status, progress, results,"
         " model, credits, created_at, updated_at, finished_at, hay, rev, seq")


def _rows(n: int, seed: int = 1):
    """The rows of the store of ``n`` tasks (columns _COLS), the same for both databases."""
    rng = random.Random(seed)
    now = time.time()
    for i in range(n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        task_id = f"{provider[:3]}-{i:07d}-{rng.randrange(16**6):06x}"
        live = rng.random() < 0.03
        state = rng.choice(("queued", "running")) if live else rng.choice(ENDED)
        created = now - rng.randrange(365 * 86_400)
        updated = created + rng.randrange(3_600)
        label, model = f"batch-{i // 20_000}", rng.choice(MODELS)
        hay = "\n".join((provider, task_id, label, model, "image", state.upper())).lower()  # tui.filter.hay
        yield (f"{provider}:{task_id}", provider, task_id, "image", label, state,
               state.upper(), 100.0 if state == "succeeded" else float(rng.randrange(100)),
               f'["https://cdn.example.com/{task_id}.png"]' if state == "succeeded" else "[]",
               model, rng.choice((None, 1.0, 2.5)), created, updated,
               updated if state in ENDED else None, hay, i + 1, i + 1)


def _insert(conn, rows) -> None:
    conn.executemany(f"INSERT INTO tasks ({_COLS}) VALUES ({', '.join('?' * 17)})", rows)


def build_pg(url: str, n: int, *, seed: int = 1) -> str:
    """The same store of ``n`` tasks in the PostgreSQL database at ``url`` (schema made by
    ``PgStore``, rows by COPY); an empty database is filled, one holding ``n`` tasks reused."""
    import psycopg

    from tui.store_pg import PgStore, TRGM_SQL

    PgStore(url).close()  # the schema, at the current version
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        if have == n:
            if conn.execute("SELECT to_regclass('tasks_hay_trgm')").fetchone()[0] is None:
                for sql in TRGM_SQL:  # dropped by a measure without it that did not finish
                    conn.execute(sql)
            return url
        conn.execute("TRUNCATE tasks")
        with conn.cursor().copy(f"COPY tasks ({_COLS}) FROM STDIN") as copy:
            for row in _rows(n, seed):
                copy.write_row(row)
        conn.execute("UPDATE meta SET value = %s WHERE name = 'seq'", (n + 1,))
        conn.execute("VACUUM ANALYZE tasks")
    return url


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
path, scope, query, started = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
path = path if "://" in path else Path(path)  # a SQLite file, or a postgresql:// URL
from tui.config import Config
from tui.stores import open_store
from tui.app import make_app
eager = scope == "live-eager"  # the live tasks read at open, before the app (as before issue 15's last step)
store = open_store(path, scope="live" if eager else scope)
if eager:
    store.tasks()
merged = []  # when the live tasks came into memory (scope "live": read after the first frame)
if hasattr(store, "_merge_live"):
    merge = store._merge_live
    store._merge_live = lambda tasks: (merge(tasks), merged.append(time.time()))
app = make_app(Config(), store, None, offline=True)
frames = []  # (time, query shown, sort, cursor row) at every frame rendered
show = app._display

def display(screen, renderable):
    show(screen, renderable)
    if renderable is not None:
        tl = app.task_list
        frames.append((time.perf_counter(), app.query_text, tl.sort_mode, tl.cursor_row, tl.count))

app._display = display
out = {}

async def main():
    async with app.run_test(size=(160, 50)) as pilot:
        tl = app.task_list
        first = next(t for t, q, s, c, n in frames if n)  # the first frame with rows
        out["first_frame"] = time.time() - (time.perf_counter() - first) - started
        if sys.argv[5:] == ["first"]:  # the first frame alone, and when the live tasks came in
            while getattr(store, "live_pending", False):
                await pilot.pause()
            out["live_in"] = (merged[0] if merged else time.time()) - started
            out["live"] = len(store.keys())
            return
        await pilot.pause()
        keys = []
        await pilot.press("slash")
        typed = ""
        for ch in query:
            typed += ch
            seen = len(frames)
            t = time.perf_counter()
            await pilot.press(ch if ch != " " else "space")
            await pilot.pause()
            shown = next((f[0] for f in frames[seen:] if f[1] == typed), None)
            if shown is not None:
                keys.append(shown - t)
        if hasattr(tl, "settled"):  # the whole order read by a thread: "n of N" exact from then on
            await tl.settled()
        out["filter_exact"] = time.perf_counter() - t  # the last key to its exact count
        out["filter_keys"] = keys
        out["filtered"] = tl.count
        await pilot.press("escape")
        await pilot.pause()
        tl.focus()
        await pilot.pause()
        seen = len(frames)
        t = time.perf_counter()
        await pilot.press("s")
        await pilot.pause()
        out["sort"] = next(f[0] for f in frames[seen:] if f[2] != "updated") - t
        if hasattr(tl, "settled"):
            await tl.settled()
        out["sort_whole"] = time.perf_counter() - t  # to the whole new order read
        seen = len(frames)
        t = time.perf_counter()
        await pilot.press("end")
        await pilot.pause()
        out["scroll_end"] = next(f[0] for f in frames[seen:] if f[3] == tl.count - 1) - t
        out["count"] = tl.count
        while getattr(store, "live_pending", False):
            await pilot.pause()
        out["live_in"] = (merged[0] if merged else time.time()) - started  # read while the keys were typed

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


QUERY = "state:fail flux"


def measure(n: int, query: str = QUERY, baseline: bool = True) -> dict:
    """The dashboard over the store of ``n`` tasks as it opens it now (scope "live", the
    list by window) and, in the same run, as before (scope "all": every task in memory,
    the list sorting and filtering them in Python), plus the old loader alone."""
    path = build(n)
    out = {"n": n, "live": _child(CHILD, str(path), "live", query, repr(time.time()))}
    if baseline:
        out["all"] = _child(CHILD, str(path), "all", query, repr(time.time()))
        out["loader"] = _child(BASE_CHILD, str(path))
    return out


def first_frames(target: str, rounds: int = 3, busy: int = 0) -> dict:
    """The first frame over ``target`` (a SQLite file or a postgresql:// URL), the live tasks
    read at open as before ("eager": ``store.tasks()`` before the app) and after the first
    frame ("later": how tasktui opens it now), alternating, ``rounds`` pairs in one run;
    with ``busy`` processes ``yes > /dev/null`` taking the cores meanwhile.  Also when the
    live tasks were in memory ("later") and the load average."""
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(busy)]
    out: dict = {"busy": busy, "eager": [], "later": [], "live_in": [], "live": None}
    try:
        for _ in range(rounds):
            for mode, key in (("live-eager", "eager"), ("live", "later")):
                r = _child(CHILD, str(target), mode, "x", repr(time.time()), "first")
                out[key].append(round(r["first_frame"], 3))
                if key == "later":
                    out["live_in"].append(round(r["live_in"], 3))
                    out["live"] = r["live"]
        out["load"] = os.getloadavg()[0]
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    for key in ("eager", "later", "live_in"):
        out[f"{key}_median"] = percentile(out[key], 50)
    out["ratio"] = round(out["eager_median"] / out["later_median"], 2)
    return out


def _goals(n: int) -> dict[str, tuple[str, float]]:
    """case -> (goal, limit in the case's unit): issue #15's numbers."""
    big = n >= 1_000_000
    return {
        "first frame": ("<= 1 s", 1.0),
        "peak RSS": ("<= 300 MB", 300.0),
        "sort key": ("<= 300 ms" if big else "<= 100 ms", 0.3 if big else 0.1),
        "scroll to end": ("<= 300 ms", 0.3),
        "filter key p50": ("<= 100 ms" if big else "<= 50 ms", 0.1 if big else 0.05),
        "filter key p95": ("<= 100 ms" if big else "<= 50 ms", 0.1 if big else 0.05),
    }


def results_of(m: dict) -> list[Result]:
    n, live, base = m["n"], m["live"], m["all"]
    name = "scope all (every task in memory)"
    goals = _goals(n)
    values = {"first frame": (live["first_frame"], base["first_frame"], "s"),
              "peak RSS": (live["rss_mb"], base["rss_mb"], "MB"),
              "sort key": (live["sort"], base["sort"], "s"),
              "scroll to end": (live["scroll_end"], base["scroll_end"], "s")}
    for p in (50, 95):
        values[f"filter key p{p}"] = (percentile(live["filter_keys"], p), percentile(base["filter_keys"], p), "s")
    out = []
    for case, (value, baseline, unit) in values.items():
        goal, limit = goals[case]
        notes = ""
        if case == "first frame":
            notes = (f"old loader alone (no app): {m['loader']['load']:.2f} s,"
                     f" peak RSS {m['loader']['rss_mb']:.0f} MB; the live tasks in memory"
                     f" at {live['live_in']:.2f} s (read after the first frame)")
        out.append(Result("scale", f"{n:,} tasks: {case}", value, unit, baseline=baseline, baseline_name=name,
                          goal=goal, ok=value <= limit, notes=notes))
    return out


def run(quick: bool = False) -> list[Result]:
    out: list[Result] = []
    for n in SIZES_QUICK if quick else SIZES_FULL:
        out += results_of(measure(n))
    return out


# ---------------------------------------------------------------- PostgreSQL

# bare words: one a fifth of the tasks hold (a model), one that a few hundred ids hold at
# 1M as it is typed (3 letters of a random hex tail), then a handful (5 letters)
PG_QUERIES = ("flux", "a3f9c")


def _pg_explain(url: str, word: str) -> str:
    """The plan PostgreSQL picks for the trigram probe of ``word`` (PgStore._trigram_ids)."""
    import psycopg

    from tui.store_pg import TRGM_QUERY

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("EXPLAIN " + TRGM_QUERY.replace("?", "%s"), (f"%{word}%",), prepare=False).fetchall()
    return " / ".join(r[0].strip() for r in rows[:3])


def measure_pg(n: int, url: str, queries: tuple[str, ...] = PG_QUERIES) -> dict:
    """The dashboard over the store of ``n`` tasks in PostgreSQL (scope "live", as tasktui
    opens it), each query typed key by key: with the pg_trgm index over hay and, in the same
    run, without it (dropped, then made again).  Plans of the probe are recorded."""
    import psycopg

    from tui.store_pg import TRGM_INDEX, TRGM_SQL

    t = time.perf_counter()
    build_pg(url, n)
    out: dict = {"n": n, "build_s": time.perf_counter() - t, "plans": {}, "with": {}, "without": {}}
    for q in queries:
        for word in (q[:3], q):
            out["plans"][word] = _pg_explain(url, word)
    for q in queries:
        out["with"][q] = _child(CHILD, url, "live", q, repr(time.time()))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX {TRGM_INDEX}")
    try:
        for q in queries:
            out["without"][q] = _child(CHILD, url, "live", q, repr(time.time()))
    finally:
        t = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            for sql in TRGM_SQL:
                conn.execute(sql)
        out["index_build_s"] = time.perf_counter() - t
    return out


def _pg_url() -> tuple[str, object]:
    """$TASKTUI_BENCH_PG_URL (a database to fill), else a server started for the run
    (tests/pg.py, a temporary directory; returned to stop it)."""
    given = os.environ.get("TASKTUI_BENCH_PG_URL")
    if given:
        return given, None
    from tests.pg import start_server

    server = start_server()
    return server.url(server.create_db()), server


def main_pg(sizes: list[int]) -> None:
    url, server = _pg_url()
    try:
        for size in sizes:
            print(json.dumps(measure_pg(size, url)), flush=True)
    finally:
        if server is not None:
            server.remove()


def main_first_frame(args: list[str]) -> None:
    """python -m bench.scale --first-frame [--pg] [--rounds R] SIZE...: quiet, then with two
    ``yes`` running, in the same minute (one JSON line each)."""
    rounds = 3
    if "--rounds" in args:
        at = args.index("--rounds")
        rounds = int(args[at + 1])
        del args[at:at + 2]
    pg = "--pg" in args
    sizes = [int(a) for a in args if not a.startswith("--")] or [1_000_000]
    url, server = _pg_url() if pg else (None, None)
    try:
        for size in sizes:
            target = build_pg(url, size) if url else str(build(size))
            for busy in (0, 2):
                res = first_frames(target, rounds, busy)
                print(json.dumps({"n": size, "backend": "postgresql" if pg else "sqlite", **res}), flush=True)
    finally:
        if server is not None:
            server.remove()


def headless(n: int, baseline: bool = True) -> dict:
    """``tasktui ls --json``, ``export --format csv`` and ``export --format json`` over the
    store of ``n`` tasks, each a process of its own (bench/headless.py's ``_process``:
    wall seconds, peak MiB), and the old way in the same run (every task loaded, one
    document: ``_OLD_LS``).  Rows streamed as they are read: memory flat, time linear."""
    from .headless import _OLD_LS, _process

    path = build(n)
    out: dict = {"n": n}
    cases = [("ls_json", ("--readonly", "ls", "--json")), ("export_csv", ("--readonly", "export", "--format", "csv")),
             ("export_json", ("--readonly", "export", "--format", "json"))]
    if baseline:
        cases.append(("old_ls_json", ("-c", _OLD_LS)))
    for name, argv in cases:
        wall, peak = _process(path, *argv)
        out[name] = {"s": round(wall, 2), "mib": round(peak)}
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--first-frame"]:
        main_first_frame(args[1:])
    elif args[:1] == ["--headless"]:  # python -m bench.scale --headless [--no-baseline] 1000 ... 1000000
        for size in [int(a) for a in args[1:] if not a.startswith("--")] or SIZES_FULL:
            print(json.dumps(headless(size, "--no-baseline" not in args)), flush=True)
    elif args[:1] == ["--pg"]:  # python -m bench.scale --pg 100000 1000000
        main_pg([int(a) for a in args[1:]] or [10_000])
    else:
        for size in (int(a) for a in args) if args else SIZES_QUICK:
            print(json.dumps(measure(size)))
