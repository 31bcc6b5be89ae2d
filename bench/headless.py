"""Headless at scale (issue 15): what ``tasktui wait`` costs while it waits.

1. ``wait`` over N live tasks (four providers at their default budgets, the
   simulator in its own process): CPU share of a core of this process over a
   fixed wall time, for
   - the engine alone (no wait loop: the floor),
   - today's loop (``tui.headless.wait_for``: a turn reads again only the tasks
     the store's change feed named, and one health view per provider),
   - the old loop, kept below as the baseline (every turn rebuilt a provider
     status object for every live task; that status sums credits over every
     stored task whenever the store changed).
   Goal: <= 15 % of a core at 10,000 live tasks.
2. The error log screen with 10,000 events and 2,000 task failures: time to
   open (push to a frame with rows) and per filter key (p50/p95), against a
   DataTable filled with every row and refilled with the matches at each key
   (what the screen did before it became a window).  Goals: open < 0.1 s,
   filter key p95 < 50 ms.
3. ``ls --json`` and ``add`` of one id over N stored tasks, each in its own
   process: wall time and peak memory, against the old way (the whole store
   loaded, then one JSON document built and printed), run in the same way.
   Goals: ``ls --json`` memory flat (within 1.5x of the same command at N/100);
   ``add`` of one id: its process's wall time within 100 ms of the same
   command at N/100 (it never loads the store; start-up and imports are the rest).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .common import Result
from .simproc import SimProcess

SPLIT = ("evolink", "comfy", "qolaba", "upscayl")  # freepik's 10/s default is no "waiting" load


# ---------------------------------------------------------------- the old loop (baseline)
# tui/headless.py wait_for before the Watch (commit ecd3e59), verbatim but for names.


def _old_provider_trouble(engine: Any, providers) -> list[str]:
    out = []
    for name in sorted(set(providers)):
        if name not in engine.workers:
            continue
        s = engine.status(name)
        if s.state != "ok":
            out.append(f"{name}: {s.state}" + (f" ({s.last_error})" if s.last_error else ""))
    return out


_DEAD_ENDS = {"auth_failed": "credentials refused", "quota_exhausted": "out of credits (quota exhausted)"}


def _old_stuck(engine: Any, live: list, asked: dict[str, int]) -> list[str]:
    out = []
    for t in live:
        status = engine.status(t.provider) if t.provider in engine.workers else None
        state = getattr(status, "state", None)
        if state in _DEAD_ENDS:
            last = getattr(status, "last_error", None)
            out.append(f"{t.key} — {t.provider}: {_DEAD_ENDS[state]}" + (f" ({last})" if last else ""))
        elif t.stalled and (status is None or getattr(status, "requests", 0) > asked.get(t.provider, 0)):
            out.append(f"{t.key} — {t.stalled}")
        else:
            return []
    return out


async def old_wait_for(engine: Any, store: Any, keys: list[str], timeout: float | None,
                       progress: Callable[[str], None] | None = None,
                       notice: Callable[[str], None] | None = None) -> tuple[int, str | None]:
    from tui.headless import EXIT_TROUBLE, _wait_code, stop_engine

    tasks = [t for t in (store.get(k) for k in keys) if t is not None]
    if all(t.terminal for t in tasks):
        return _wait_code(tasks), None
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    engine.focus = set(keys)
    changed = asyncio.Event()
    unsubscribe = store.subscribe(lambda change: changed.set())
    last_line = None
    told: dict[str, str] = {}
    asked = {}
    for name in {t.provider for t in tasks}:
        if name in engine.workers:
            asked[name] = getattr(engine.status(name), "requests", 0)
    await engine.start()
    try:
        while True:
            store.sync()
            problem = getattr(engine, "store_problem", None)
            if problem:
                return EXIT_TROUBLE, str(problem)
            tasks = [t for t in (store.get(k) for k in keys) if t is not None]
            live = [t for t in tasks if not t.terminal]
            if not live:
                return _wait_code(tasks), None
            refused = sorted({t.provider for t in live
                              if t.provider in engine.workers and engine.status(t.provider).state == "auth_failed"})
            if refused:
                return EXIT_TROUBLE, "refused"
            for t in live:
                if t.stalled and told.get(t.key) != t.stalled:
                    told[t.key] = t.stalled
                    if notice is not None:
                        notice(f"{t.key} stalled: {t.stalled}")
                elif not t.stalled:
                    told.pop(t.key, None)
            stuck = _old_stuck(engine, live, asked)
            if stuck:
                return EXIT_TROUBLE, "stuck"
            if progress is not None:
                done = len(tasks) - len(live)
                line = f"waiting: {done}/{len(tasks)} done"
                trouble = _old_provider_trouble(engine, {t.provider for t in live})
                if trouble:
                    line += " · " + " · ".join(trouble)
                stalled = sum(1 for t in live if t.stalled)
                if stalled:
                    line += f" · {stalled} stalled"
                if line != last_line:
                    progress(line)
                    last_line = line
            wait = 1.0
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return EXIT_TROUBLE, "timed out"
                wait = min(wait, left)
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), timeout=wait)
            except (asyncio.TimeoutError, TimeoutError):
                pass
    finally:
        unsubscribe()
        await stop_engine(engine)


# ---------------------------------------------------------------- wait CPU


def _config(base_url: str, keys: dict[str, str]):
    from tui.config import parse_config

    text = "".join(f'[providers.{name}]\napi_key = "{keys[name]}"\nbase_url = "{base_url}"\n\n'
                   for name in SPLIT)  # every other setting (budget, interval) at its default
    return parse_config(text)


def _ids(n: int) -> dict[str, list[str]]:
    per = {name: [] for name in SPLIT}
    for i in range(n):
        name = SPLIT[i % len(SPLIT)]
        prefix = "task-unified-" if name == "evolink" else f"{name}-"
        per[name].append(f"{prefix}{i:07d}")
    return per


async def _run(mode: str, base_url: str, keys: dict[str, str], ids: dict[str, list[str]],
               seconds: float, db: Path) -> tuple[float, int]:
    """CPU seconds per wall second of this process while ``mode`` runs for
    ``seconds``, and the requests the engine sent."""
    from tui.engine import Engine
    from tui.headless import stop_engine, wait_for
    from tui.store import Store

    store = Store(db)
    try:
        for name, some in ids.items():
            store.add(name, some)
        keys_all = [k for k in store.keys()]
        engine = Engine(_config(base_url, keys), store)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if mode == "engine":
            engine.focus = set(keys_all)
            await engine.start()
            await asyncio.sleep(seconds)
            await stop_engine(engine)
        else:
            loop = wait_for if mode == "new" else old_wait_for
            await loop(engine, store, keys_all, seconds, progress=lambda line: None, notice=lambda line: None)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        sent = sum(h.requests for h in engine.health())
    finally:
        store.close()
    return cpu / wall, sent


def wait_cpu(n: int, seconds: float) -> list[Result]:
    from tui.sim import build_scenario, sim_task

    ids = _ids(n)
    tasks = [sim_task(name, i, "running", end=1e9) for name, some in ids.items() for i in some]
    scenario = build_scenario(*tasks)
    keys = {name: scenario.providers[name].key for name in SPLIT}
    shares: dict[str, tuple[float, int]] = {}
    with SimProcess(scenario) as sim, tempfile.TemporaryDirectory() as tmp:
        for mode in ("engine", "new", "old"):
            shares[mode] = asyncio.run(_run(mode, sim.base_url, keys, ids, seconds, Path(tmp) / f"{mode}.db"))
    (floor, f_sent), (new, n_sent), (old, o_sent) = shares["engine"], shares["new"], shares["old"]
    goal = 0.15
    return [
        Result("headless", f"wait over {n:,} live tasks, CPU share ({seconds:.0f} s)", new * 100, "% core",
               old * 100, "the old wait loop", "<= 15 % of a core", new <= goal,
               notes=f"engine alone {floor:.1%} of a core; requests sent: engine alone {f_sent}, "
                     f"wait {n_sent}, old loop {o_sent}"),
    ]


# ---------------------------------------------------------------- error log screen

LOG_KEYS = list("#12") + ["backspace", "backspace"] + list("upscale") + ["backspace"] * 7 + list("502")


def _log_store(path: Path, events: int, failures: int):
    from tui.model import Event, Task
    from tui.store import Store

    store = Store(path)
    providers = ("evolink", "freepik", "comfy", "qolaba")
    now = 1_790_000_000.0
    store.log([Event(now - events + i, providers[i % 4], f"HTTP 502 upstream said no #{i}", f"t{i % 500}",
                     502, "transient") for i in range(events)])
    ids = [f"f{i:05d}" for i in range(failures)]
    store.add("upscayl", ids)
    store.apply([Task("upscayl", i, state="failed", error=f"upscale failed #{n}", updated_at=now - n,
                      finished_at=now - n) for n, i in enumerate(ids)])
    return store


def _baseline_screen(store):
    """The screen before the window: every row's cells built and put in a DataTable,
    cleared and refilled with the matches at each key."""
    from rich.text import Text
    from textual.screen import Screen
    from textual.widgets import DataTable, Input

    from tui.errlog import read_log
    from tui.screens.errors import row_cells

    class Baseline(Screen):
        work_open: list[float] = []

        def compose(self):
            yield Input(id="errors-filter")
            yield DataTable(id="errors-table", cursor_type="row")

        def on_mount(self):
            t = time.perf_counter()
            table = self.query_one(DataTable)
            for name, w in zip(("time", "provider", "task", "HTTP", "type", "message", "wait"),
                               (14, 8, 24, 4, 14, 40, 6)):
                table.add_column(name, width=w)
            self.rows = read_log(store, limit=10_000)
            self.cells = [row_cells(r) for r in self.rows]
            self.fill()
            table.focus()
            self.work_open.append(time.perf_counter() - t)

        def fill(self):
            needle = self.query_one(Input).value.strip().lower()
            table = self.query_one(DataTable)
            table.clear()
            for cells in self.cells:
                if needle and not any(needle in c.lower() for c in cells):
                    continue
                table.add_row(*(Text(c, no_wrap=True) for c in cells))

        def on_input_changed(self, event):
            self.fill()

    return Baseline()


def _timed(obj: Any, name: str, into: list[float]) -> None:
    """Time every call of ``obj.name`` (the screen's own work, without Textual's frame)."""
    func = getattr(obj, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - t)

    setattr(obj, name, wrapper)


async def _log_screen(store, which: str) -> dict[str, Any]:
    """Open the screen and type LOG_KEYS in its filter: end-to-end times (push to a
    frame with rows; key press to its frame, through Pilot) and the screen's own
    work (reading and filling at open, refiltering and refilling per key)."""
    from textual.app import App
    from textual.screen import Screen
    from textual.widgets import DataTable, Input

    from tui.screens.errors import ErrorLogScreen

    class Floor(Screen):  # an empty table: what any screen costs to push and to type in
        def compose(self):
            yield Input(id="errors-filter")
            yield DataTable(id="errors-table")

        def on_mount(self):
            table = self.query_one(DataTable)
            table.add_column("x")
            table.add_row("y")

    work_open: list[float] = []
    work_keys: list[float] = []
    work_rest: list[float] = []
    if which == "baseline":
        screen = _baseline_screen(store)
        screen.work_open = work_open
        _timed(screen, "fill", work_keys)
    elif which == "new":
        screen = ErrorLogScreen(store)
        _timed(screen, "reload", work_open)
        _timed(screen, "_read_all_events", work_rest)
        _timed(screen, "_fill", work_keys)
    else:
        screen = Floor()
    app = App()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        t0 = time.perf_counter()
        app.push_screen(screen)

        def rows() -> int:
            try:
                return screen.query_one("#errors-table").row_count
            except Exception:  # not mounted yet
                return 0

        while not (app.screen is screen and rows()):
            await pilot.pause()
        await pilot.pause()  # and its frame
        opened = time.perf_counter() - t0
        while which == "new" and not screen.complete:
            await pilot.pause()
        screen.query_one("#errors-filter").focus()
        await pilot.pause()
        keys = []
        work_keys.clear()  # (the first fill is part of opening)
        for key in LOG_KEYS:
            t = time.perf_counter()
            await pilot.press(key)
            keys.append(time.perf_counter() - t)
    return {"open": opened, "keys": keys, "work_open": sum(work_open), "work_keys": work_keys,
            "work_rest": sum(work_rest)}


def log_screen(events: int, failures: int) -> list[Result]:
    from .common import percentile

    with tempfile.TemporaryDirectory() as tmp:
        store = _log_store(Path(tmp) / "log.db", events, failures)
        try:
            floor = asyncio.run(_log_screen(store, "floor"))
            base = asyncio.run(_log_screen(store, "baseline"))
            new = asyncio.run(_log_screen(store, "new"))
        finally:
            store.close()
    p95, b95 = percentile(new["work_keys"], 95), percentile(base["work_keys"], 95)
    e95, eb95, ef95 = (percentile(new["keys"], 95), percentile(base["keys"], 95),
                       percentile(floor["keys"], 95))
    case = f"error log, {events:,} events + {failures:,} task failures"
    return [
        Result("headless", f"{case}: open (the screen's work)", new["work_open"], "s", base["work_open"],
               "DataTable of every row", "< 0.1 s", new["work_open"] < 0.1,
               notes=f"the rest of the events read after the first frame: {new['work_rest'] * 1e3:.0f} ms; "
                     f"push to first frame with rows: {new['open'] * 1e3:.0f} ms (baseline "
                     f"{base['open'] * 1e3:.0f} ms; an empty table's screen {floor['open'] * 1e3:.0f} ms)"),
        Result("headless", f"{case}: filter key p95 (the screen's work)", p95, "s", b95, "DataTable refilled",
               "p95 < 50 ms", p95 < 0.050,
               notes=f"key to frame through Pilot: p95 {e95 * 1e3:.0f} ms (baseline {eb95 * 1e3:.0f} ms; "
                     f"typing in an empty table's screen {ef95 * 1e3:.0f} ms), {len(new['keys'])} keys"),
    ]


# ---------------------------------------------------------------- ls --json / add at scale

_PEAK = """
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - t
if r.returncode:
    sys.exit(f"exit {r.returncode}: {r.stderr}")
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

_OLD_ADD = """
import sys
from tui.store import Store
store = Store(sys.argv[1])  # every task loaded, as add did
store.add("evolink", ["task-unified-old-one"])
store.close()
"""

_OLD_LS = """
import json, sys
from tui.headless import dumps
from tui.store import Store
store = Store(sys.argv[1], readonly=True)
print(dumps([t.to_dict() for t in store.tasks()], indent=2))
"""


def _process(db: Path, *argv: str) -> tuple[float, float]:
    """(wall seconds, peak MiB) of one process: ``tasktui ARGV`` or ``python -c CODE DB``."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_DB=str(db), TASKTUI_CONFIG=str(db.parent / "missing.toml"))
    cmd = [sys.executable, "-m", "tui", *argv] if argv[0] != "-c" else [sys.executable, *argv, str(db)]
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", _PEAK, *cmd], cwd=root, env=env, capture_output=True,
                       text=True, timeout=1800)
    if r.returncode:
        raise RuntimeError(r.stderr or r.stdout)
    wall, kb = r.stdout.split()
    return float(wall), int(kb) / 1024


def _task_store(path: Path, n: int) -> Path:
    from tui.store import Store

    with Store(path, scope="none") as store:
        for start in range(0, n, 50_000):
            store.add("evolink", [f"task-unified-{i:08d}" for i in range(start, min(n, start + 50_000))],
                      label="batch-7")
    return path


def ls_and_add(n: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("small", "big"):
            (Path(tmp) / name).mkdir()
        small = _task_store(Path(tmp) / "small" / "t.db", max(1, n // 100))
        big = _task_store(Path(tmp) / "big" / "t.db", n)
        start, _ = _process(big, "--version")
        ls_small = _process(small, "ls", "--json")
        ls_new = _process(big, "ls", "--json")
        ls_old = _process(big, "-c", _OLD_LS)
        add_small = _process(small, "add", "evolink", "task-unified-new-one")
        add_new = _process(big, "add", "evolink", "task-unified-new-one")
        rm_new = _process(big, "rm", "evolink", "task-unified-new-one")
        add_old = _process(big, "-c", _OLD_ADD)
    flat = ls_new[1] <= 1.5 * ls_small[1]
    return [
        Result("headless", f"ls --json over {n:,} tasks: peak memory", ls_new[1], "MiB", ls_old[1],
               "whole store loaded, one document", f"flat (<= 1.5x of {max(1, n // 100):,} tasks)", flat,
               notes=f"{ls_small[1]:.0f} MiB at {max(1, n // 100):,} tasks; wall {ls_new[0]:.2f} s "
                     f"(old way {ls_old[0]:.2f} s)"),
        Result("headless", f"add of one id at {n:,} tasks: process wall", add_new[0], "s",
               add_old[0], "store loaded, then add", f"<= 100 ms more than at {max(1, n // 100):,} tasks",
               add_new[0] - add_small[0] <= 0.1,
               notes=f"at {max(1, n // 100):,} tasks {add_small[0]:.2f} s (start-up and imports: "
                     f"`tasktui --version` {start:.2f} s); rm of one id {rm_new[0]:.2f} s; peak {add_new[1]:.0f} MiB"),
    ]


def run(quick: bool = False) -> list[Result]:
    if quick:
        return wait_cpu(1_000, 3.0) + log_screen(1_000, 200) + ls_and_add(5_000)
    return wait_cpu(10_000, 30.0) + log_screen(10_000, 2_000) + ls_and_add(300_000)


if __name__ == "__main__":
    import sys

    from .common import table

    results = (log_screen(10_000, 2_000) if "--log" in sys.argv
               else ls_and_add(300_000) if "--ls" in sys.argv
               else run(quick="--quick" in sys.argv))
    print(table(results))
    for r in results:
        if r.notes:
            print(f"- {r.case}: {r.notes}")
