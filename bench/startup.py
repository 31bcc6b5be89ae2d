"""Headless start: `tasktui --version` and `tasktui ls` with 1,000 tasks.

Baseline: the bare interpreter start (`python -c pass`), measured in the same
run.  Goals: --version under 150 ms, ls under 300 ms, and no Textual import.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Result, compile_package, median


def _time(cmd: list[str], env: dict, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - t0)
    return median(samples)


def run(quick: bool = False) -> list[Result]:
    from tui.store import Store

    runs = 5 if quick else 15
    compile_package()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "tasks.db"
        store = Store(db)
        for provider in ("evolink", "upscayl", "comfy", "freepik"):
            store.add(provider, [f"{provider}-task-{i:05d}" for i in range(250)], label="bench")
        store.close()
        env = {**os.environ, "TASKTUI_DB": str(db), "TASKTUI_CONFIG": str(Path(tmp) / "none.toml")}
        py = sys.executable
        base = _time([py, "-c", "pass"], env, runs)
        version = _time([py, "-m", "tui", "--version"], env, runs)
        ls = _time([py, "-m", "tui", "ls"], env, runs)
        probe = subprocess.run(
            [py, "-c", "import sys; from tui.cli import main; main(['ls']); "
             "sys.stderr.write(str('textual' in sys.modules))"],
            env=env, capture_output=True, text=True,
        )
        textual_loaded = probe.stderr.strip().endswith("True")
    return [
        Result("headless start", "tasktui --version", version, "s", base, "python -c pass",
               "< 150 ms", version < 0.150, floor=True),
        Result("headless start", "tasktui ls, 1,000 tasks", ls, "s", base, "python -c pass",
               "< 300 ms, no textual", ls < 0.300 and not textual_loaded,
               notes="textual imported!" if textual_loaded else "textual not imported", floor=True),
    ]
