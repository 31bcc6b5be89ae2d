"""``tasktui demo``: the dashboard on the built-in simulator.

``DemoEnv`` starts the simulator on 127.0.0.1 (a free port) in a thread, with
a generated scenario in which things happen within seconds, writes a
temporary config pointing all five providers at it (keys in a 0600 file) and
a temporary store with every scenario task added.  It never reads or writes
the user's own config or database.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from .sim.generate import generate
from .sim.scenario import PROVIDERS, Scenario

# Per provider: the label the demo gives its tasks.
LABELS = {"comfy": "relight-batch", "upscayl": "upscales", "qolaba": "qolaba-t2i", "freepik": "hyperflux",
          "evolink": "evolink-media"}


def demo_scenario(seed: int = 7, tasks: int = 50) -> Scenario:
    """The generated scenario the demo plays (every task exists from t=0)."""
    return generate(seed=seed, n_tasks=tasks)


def demo_config(base_url: str, scenario: Scenario) -> str:
    """A tasktui config: every provider -> the simulator, polled briskly so the demo moves."""
    lines = ["# tasktui demo: every provider is the local simulator; this file is temporary.", ""]
    for name in PROVIDERS:
        spec = scenario.providers.get(name)
        if spec is None:
            continue
        lines += [f"[providers.{name}]", f'api_key = "{spec.key}"', f'base_url = "{base_url}"',
                  "poll_interval = 1.0", 'rate_limit = "600/m"']  # Freepik's documented 10/s average
        if name in ("comfy", "evolink"):
            lines.append("balance_interval = 5")
        if name == "freepik":
            kinds = sorted({t.path_kind for t in scenario.tasks_of("freepik") if t.path_kind}
                           | {"text-to-image/hyperflux"}, key=lambda k: k != "text-to-image/hyperflux")
            lines.append("kinds = [" + ", ".join(f'"{k}"' for k in kinds) + "]")
        lines.append("")
    return "\n".join(lines)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


class DemoEnv:
    """Simulator + temporary config + temporary store, for as long as the ``with`` lasts.

    ``env.base_url``, ``env.config_path``, ``env.db_path``, ``env.sim`` (the
    ``SimServer``: ``env.sim.advance(s)``, ``env.sim.requests`` ...),
    ``env.scenario``.
    """

    def __init__(self, seed: int = 7, tasks: int = 50, speed: float = 1.0, *,
                 scenario: Scenario | None = None) -> None:
        self.seed, self.tasks, self.speed = seed, tasks, speed
        self.scenario = scenario if scenario is not None else demo_scenario(seed, tasks)
        self.sim: Any = None
        self.base_url = ""
        self.dir: Path | None = None
        self.config_path: Path | None = None
        self.db_path: Path | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> "DemoEnv":
        from .sim.serve import SimServer

        self._tmp = tempfile.TemporaryDirectory(prefix="tasktui-demo-")
        self.dir = Path(self._tmp.name)
        os.chmod(self.dir, 0o700)
        try:
            self.sim = SimServer(self.scenario, speed=self.speed, files=True).start()  # previews work
            self.base_url = self.sim.base_url
            self.config_path = self.dir / "config.toml"
            _write_private(self.config_path, demo_config(self.base_url, self.scenario))
            self.db_path = self.dir / "tasks.db"
            self._fill_store()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _fill_store(self) -> None:
        from .store import Store

        groups: dict[tuple[str, str | None], list[str]] = {}
        for t in self.scenario.tasks:
            groups.setdefault((t.provider, t.kind), []).append(t.task_id)
        store = Store(self.db_path)
        try:
            for (provider, kind), ids in groups.items():
                label = LABELS.get(provider, "demo") + (f"-{kind}" if kind and provider != "freepik" else "")
                if provider == "freepik" and kind:
                    label = kind
                store.add(provider, ids, kind=kind, label=label)
        finally:
            store.close()

    def __exit__(self, *exc: object) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# ---------------------------------------------------------------- headless


def _line(env: DemoEnv, store: Any, engine: Any) -> str:
    counts = {k: v for k, v in store.counts().items() if v}
    parts = [f"{state} {n}" for state, n in counts.items()]
    trouble = [f"{q['provider']}:{q['state']}" for q in engine.quota() if q["state"] != "ok"]
    spent = sum(q["credits_spent"] or 0 for q in engine.quota())
    return (f"t={env.sim.now():6.1f}s  " + "  ".join(parts) + f"  credits spent {spent:g}"
            + (f"  [{' '.join(trouble)}]" if trouble else ""))


async def run_headless(env: DemoEnv, *, out: TextIO | None = None, every: float = 1.0,
                       max_seconds: float | None = None) -> dict[str, int]:
    """Poll the demo with the engine, print one progress line per ``every``
    seconds until every task is terminal (or ``max_seconds``); return the counts."""
    from .config import load_config
    from .engine import Engine
    from .model import TERMINAL
    from .store import Store

    out = out or sys.stdout
    config = load_config(env.config_path)
    store = Store(env.db_path)
    engine = Engine(config, store)
    started = time.monotonic()
    await engine.start()
    try:
        while True:
            await asyncio.sleep(every)
            print(_line(env, store, engine), file=out, flush=True)
            if store.tasks() and all(t.state in TERMINAL for t in store.tasks()):
                break
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
        return {k: v for k, v in store.counts().items() if v}
    finally:
        await engine.stop()
        store.close()


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the ``with``: the temp files go too


def cmd_demo(args: Any) -> int:
    """``tasktui demo [--seed N] [--tasks N] [--speed X] [--headless]``."""
    have_app = importlib.util.find_spec("tui.app") is not None
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _exit_on_signal)
    with DemoEnv(seed=args.seed, tasks=args.tasks, speed=args.speed) as env:
        if args.headless or not have_app:
            if not have_app:
                print("tasktui demo: the dashboard is not available; running headless", file=sys.stderr)
            if importlib.util.find_spec("tui.engine") is None:
                print(f"tasktui demo: no engine to poll with; the simulator is at {env.base_url}", file=sys.stderr)
                return 1
            print(f"tasktui demo: simulator at {env.base_url}; {len(env.scenario.tasks)} tasks; Ctrl-C to stop")
            try:
                counts = asyncio.run(run_headless(env))
            except KeyboardInterrupt:
                return 130
            print("done: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            return 0
        from .app import run_dashboard

        return int(run_dashboard(config_path=env.config_path, db_path=env.db_path, offline=False) or 0)
