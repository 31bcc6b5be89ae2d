"""The simulator in its own process, so it does not share a core (or the GIL)
with what is being measured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import tempfile
from pathlib import Path


class SimProcess:
    def __init__(self, scenario, speed: float = 0.0) -> None:
        self.scenario = scenario
        self.speed = speed

    def __enter__(self) -> "SimProcess":
        self.tmp = tempfile.TemporaryDirectory()
        path = Path(self.tmp.name) / "scenario.json"
        self.scenario.dump(path)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui", "simulate", "--port", "0", "--scenario", str(path),
             "--speed", str(self.speed)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for line in self.proc.stdout:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.base_url = m.group(1)
                break
        else:
            raise RuntimeError("simulator did not start")
        # keep reading what it prints (its task list), or a full pipe blocks it
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.tmp.cleanup()

    def requests(self) -> list[dict]:
        import httpx

        return httpx.get(f"{self.base_url}/_sim/requests", timeout=30).json()

    def violations(self) -> list[dict]:
        import httpx

        return httpx.get(f"{self.base_url}/_sim/violations", timeout=30).json()
