"""Dashboard benchmarks, driven through Textual's Pilot (headless).

1. Filter latency: a keystroke in the filter -> the first frame rendered with
   the answer (timed from the app's own frames, not from Pilot's waits).
   Baseline: a plain Textual DataTable cleared and refilled with the matches.
2. First frame with N stored tasks: a new process (`tasktui --offline`,
   headless) from its start to its first frame showing rows.
   Baseline: a DataTable app filled with the same rows at mount.
4. Idle CPU with the dashboard open on 1,000 finished tasks, and resident memory
   at 100,000 tasks.  Baseline: an empty Textual app, idle as long.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Result, compile_package, median, percentile

KEYS = list("evo") + ["backspace", "backspace", "backspace"] + list("state:run")
REPS = 4  # the keys are typed this many times (60 samples per size)


def _config():
    from tui.config import load_config

    return load_config(Path(tempfile.gettempdir()) / "tasktui-bench-missing.toml")


def _row(task) -> tuple:
    return (task.provider, task.label or task.task_id, task.model or "", task.state,
            f"{task.progress or 0:.0f}%")


def _baseline_app(store):
    from textual.app import App
    from textual.widgets import DataTable, Input

    from tui.filter import compile_filter

    tasks = store.tasks()

    class Baseline(App):
        query_text = ""

        def compose(self):
            yield Input(id="q")
            yield DataTable(id="t")

        def on_mount(self):
            table = self.query_one(DataTable)
            table.add_columns("provider", "task", "model", "state", "progress")
            table.add_rows(_row(t) for t in tasks)

        def on_input_changed(self, event):
            pred = compile_filter(event.value)
            table = self.query_one(DataTable)
            table.clear()
            table.add_rows(_row(t) for t in tasks if pred(t))
            self.query_text = event.value

    return Baseline()


def _queries(keys: list[str]) -> list[str]:
    """The filter's text after each key of ``keys``."""
    out, text = [], ""
    for key in keys:
        text = text[:-1] if key == "backspace" else text + key
        out.append(text)
    return out


def _watch_frames(app, state) -> list[tuple[float, object]]:
    """Record (time, state(app)) at every frame the app renders.  Headless, the
    compositor still renders every update (only the write to a terminal is
    skipped), so this is when a terminal would have received the frame."""
    frames: list[tuple[float, object]] = []
    show = app._display

    def display(screen, renderable):
        show(screen, renderable)
        if renderable is not None:
            frames.append((time.perf_counter(), state(app)))

    app._display = display
    return frames


async def _typing(app, focus_filter, keys, check, reps: int = 1) -> list[float]:
    """Per key: the time from the key event to the first frame rendered after
    the app applied the new query (``app.query_text``).  Pilot delivers the keys
    and waits for quiet between them; its waiting is not in the numbers.  With
    ``reps`` the keys are typed again after ``escape`` (more samples, so the
    95th percentile is not just the slowest key)."""
    samples = []
    frames = _watch_frames(app, lambda a: a.query_text)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        for rep in range(reps):
            if rep:
                await pilot.press("escape")
                await pilot.pause()
            await focus_filter(pilot)
            for key, query in zip(keys, _queries(keys)):
                seen = len(frames)
                t0 = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                shown = next((t for t, q in frames[seen:] if q == query), None)
                assert shown is not None, f"no frame showed the answer to {query!r}"
                samples.append(shown - t0)
            check(app)
    return samples


async def _filter_latency(n: int, baseline: bool) -> tuple[float, float, float | None, float | None]:
    from tui.app import make_app
    from tui.widgets.task_list import TaskList

    from .fixtures import fill_store

    with tempfile.TemporaryDirectory() as tmp:
        store = fill_store(Path(tmp) / "t.db", n)
        app = make_app(_config(), store, None, offline=True)

        async def open_filter(pilot):
            await pilot.press("slash")
            await pilot.pause()

        def check(app):
            shown = len(app.query_one(TaskList).index)
            from tui.filter import compile_filter

            pred = compile_filter("state:run")
            expected = sum(1 for t in store.tasks() if pred(t))
            assert shown == expected, (shown, expected)

        ours = await _typing(app, open_filter, KEYS, check, reps=REPS)
        base = None
        if baseline:
            bapp = _baseline_app(store)

            async def focus_input(pilot):
                await pilot.click("#q")
                await pilot.pause()

            # The baseline at 100,000 rows takes seconds per key: time three keys.
            base = await _typing(bapp, focus_input, KEYS[:3] if n > 20_000 else KEYS, lambda a: None)
        store.close()
    return (median(ours), percentile(ours, 95),
            median(base) if base else None, percentile(base, 95) if base else None)


FIRST_FRAME_SCRIPT = r"""
import sys, time
sys.path.insert(0, {root!r})
which = sys.argv[1]
if which == "tasktui":
    from tui import app as tapp

    def run(self, **_):
        show = self._display

        def display(screen, renderable):
            show(screen, renderable)
            if renderable is not None and self.task_list.index:
                print(time.time(), flush=True)
                self.exit()

        self._display = display
        return run.original(self, headless=True, size=(160, 50))

    run.original = tapp.TaskTUI.run
    tapp.TaskTUI.run = run
    import tui.cli
    from tui.cli import main

    tui.cli._is_terminal = lambda stream: True  # headless here: stdout is the bench's pipe, not a screen
    main(["--offline"])
else:  # the baseline: a DataTable app filled with the same rows at mount
    from bench.ui import _baseline_app
    from tui.store import Store
    from tui.paths import db_path

    app = _baseline_app(Store(db_path(None)))
    show = app._display

    def display(screen, renderable):
        show(screen, renderable)
        if renderable is not None and app.query_one("DataTable").row_count:
            print(time.time(), flush=True)
            app.exit()

    app._display = display
    app.run(headless=True, size=(160, 50))
"""


def _first_frame_process(path: Path, which: str) -> float:
    """From starting the process to its first frame showing task rows: what a
    user waits for after typing ``tasktui`` (interpreter, imports, config, store,
    first paint; headless, so no terminal's own drawing time)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "TASKTUI_DB": str(path), "NO_COLOR": "",
           "TASKTUI_CONFIG": str(path.parent / "missing-config.toml")}
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", FIRST_FRAME_SCRIPT.format(root=root), which],
                         capture_output=True, text=True, cwd=root, env=env, timeout=600)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"first frame ({which}) failed: {out.stderr[-2000:]}")
    return float(out.stdout.split()[0]) - t0


def _first_frame(n: int, baseline: bool, repeat: int = 3) -> tuple[float, float | None]:
    """Best of ``repeat`` process starts (the first also warms the OS file cache)."""
    from .fixtures import fill_store

    compile_package()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.db"
        fill_store(path, n).close()
        ours = min(_first_frame_process(path, "tasktui") for _ in range(repeat))
        base = _first_frame_process(path, "baseline") if baseline else None
    return ours, base


IDLE_SCRIPT = r"""
import asyncio, sys, time, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.fixtures import fill_store
from bench.ui import _config
n, seconds, which = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
tmp = tempfile.mkdtemp()
store = fill_store(Path(tmp) / "t.db", n, finished=True) if which == "tasktui" else None
async def main():
    if which == "tasktui":
        from tui.app import make_app
        app = make_app(_config(), store, None, offline=True)
    else:
        from textual.app import App
        from textual.widgets import Footer, Header
        class Empty(App):
            def compose(self):
                yield Header()
                yield Footer()
        app = Empty()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await asyncio.sleep(1.0)
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = (time.process_time() - c0) / (time.perf_counter() - t0) * 100
        # VmHWM, not ru_maxrss: the latter survives exec and reports the parent's peak
        rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
    print(cpu, rss)
asyncio.run(main())
"""


def _idle(n: int, seconds: float, which: str) -> tuple[float, float]:
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", IDLE_SCRIPT.format(root=root), str(n), str(seconds), which],
                         capture_output=True, text=True, check=True, cwd=root,
                         env={**os.environ, "TEXTUAL": "", "NO_COLOR": ""})
    cpu, rss = out.stdout.split()[-2:]
    return float(cpu), float(rss)


def run(quick: bool = False) -> list[Result]:
    results: list[Result] = []
    sizes = [2_000] if quick else [10_000, 100_000]
    for n in sizes:
        med, p95, bmed, bp95 = asyncio.run(_filter_latency(n, baseline=True))
        results.append(Result("filter latency", f"{n:,} tasks, median key", med, "s", bmed, "DataTable refill",
                              "<= 50 ms", med <= 0.050))
        results.append(Result("filter latency", f"{n:,} tasks, p95 key", p95, "s", bp95, "DataTable refill",
                              "<= 50 ms", p95 <= 0.050))
    n = 2_000 if quick else 100_000
    ours, base = _first_frame(n, baseline=True, repeat=1 if quick else 3)
    results.append(Result("first frame", f"{n:,} stored tasks", ours, "s", base, "DataTable app",
                          "< 1 s", ours < 1.0))
    seconds = 3.0 if quick else 30.0
    cpu, _ = _idle(1_000, seconds, "tasktui")
    bcpu, brss = _idle(0, seconds, "empty")
    results.append(Result("idle", f"1,000 finished tasks, {seconds:.0f} s", cpu, "%", bcpu, "empty Textual app",
                          "< 1 % of a core", cpu < 1.0, floor=True))
    n = 2_000 if quick else 100_000
    _, rss = _idle(n, 1.0, "tasktui")
    results.append(Result("memory", f"{n:,} tasks, peak RSS", rss, "MB", brss, "empty Textual app",
                          "< 300 MB", rss < 300, floor=True))
    return results
