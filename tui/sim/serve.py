"""Serving the simulator: ``SimServer`` (uvicorn in a background thread, for
tests, the demo and benchmarks), ``serve`` (foreground) and ``tasktui simulate``.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

from .app import make_app, quiet_uvicorn
from .clock import SimClock
from .scenario import PROVIDERS, VENDORS, Scenario
from .state import Record, Simulator, Violation
from .vendors import OWN_VENDORS, PROXY_VENDORS

START_TIMEOUT = 15.0


def _config(app: Any) -> uvicorn.Config:
    quiet_uvicorn()
    return uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off",
                          timeout_graceful_shutdown=1, timeout_keep_alive=75, http="h11", loop="asyncio")


class SimServer:
    """The simulator on a real socket, served from a background thread.

    ``start()`` binds the socket first (so ``port=0`` picks a free port) and
    returns once uvicorn serves; then ``base_url`` is valid.  Use as a context
    manager, or ``start()``/``stop()``.  ``speed`` is sim seconds per real
    second (0 freezes the clock); pass ``clock`` to share or script one.
    """

    def __init__(self, scenario: Scenario | None = None, host: str = "127.0.0.1", port: int = 0, *,
                 speed: float = 1.0, clock: SimClock | None = None, files: bool = False) -> None:
        if scenario is None:
            from .generate import small_scenario

            scenario = small_scenario()
        self.sim = Simulator(scenario, clock=clock, speed=speed)
        self.host = host
        self.port = port
        self.files = files  # serve the result links (tui/sim/files.py)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # ------------------------------------------------------------ life

    def start(self) -> "SimServer":
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP, or asyncio will not set TCP_NODELAY on accepted
        # connections and every answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(_config(make_app(self.sim, files=self.files)))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"sim-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"simulator did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(5)
            if thread.is_alive():
                server.force_exit = True
                thread.join(5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ conveniences

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def scenario(self) -> Scenario:
        return self.sim.scenario

    @property
    def clock(self) -> SimClock:
        return self.sim.clock

    @property
    def requests(self) -> list[Record]:
        return self.sim.requests

    @property
    def violations(self) -> list[Violation]:
        return self.sim.violations

    def key(self, provider: str) -> str:
        return self.sim.key(provider)

    def now(self) -> float:
        return self.sim.now()

    def advance(self, seconds: float) -> float:
        return self.sim.advance(seconds)

    def add(self, tasks=(), faults=(), providers=None) -> int:
        return self.sim.add(tasks, faults, providers)

    def reset(self) -> None:
        self.sim.reset()

    def pusher(self, **kwargs):
        """A ``tui.sim.push.Pusher`` for this server's tasks (close it when done)."""
        from .push import Pusher

        return Pusher(self.sim, **kwargs)

    def config_toml(self, providers: tuple[str, ...] | None = None) -> str:
        """A tasktui config pointing every scenario provider at this server."""
        return config_toml(self.base_url, self.sim.scenario, providers)

    def __repr__(self) -> str:
        return f"<SimServer {self.base_url} t={self.now():.1f}>"


# How a user declares the simulator's made-up vendor acme (tui/sim/vendors.py acme).
ACME_DECLARATION = """[providers.acme]
type = "declared"
api_key = "{key}"
base_url = "{base}"
request = {{ path = "/acme/v2/jobs/{{id}}" }}
paths = {{ status = "job.phase", progress = "job.percent", results = "job.outputs[*].href", error = "job.problem.text", model = "job.engine", created_at = "job.created" }}
states = {{ queued = ["waiting"], running = ["working"], succeeded = ["done"], failed = ["broken"], cancelled = ["stopped"] }}
"""


def config_toml(base_url: str, scenario: Scenario, providers: tuple[str, ...] | None = None) -> str:
    """The five seed providers (those with a spec), then every vendor the scenario has tasks
    for: a Comfy proxy vendor with the Comfy key, acme as a declared provider."""
    lines = ["# tasktui config: every provider served by the simulator", ""]
    with_tasks = {t.provider for t in scenario.tasks}
    names = providers or PROVIDERS + tuple(v for v in VENDORS if v in with_tasks)
    comfy = scenario.providers.get("comfy")
    for name in names:
        spec = scenario.providers.get(name)
        if name in OWN_VENDORS:
            key = spec.key if spec else f"sim-key-{name}"
            lines.append(ACME_DECLARATION.format(key=key, base=base_url))
            continue
        if spec is None and name in PROXY_VENDORS and comfy is not None:
            spec = comfy.model_copy(update={"budget": None})
        if spec is None:
            continue
        lines += [f"[providers.{name}]", f'api_key = "{spec.key}"', f'base_url = "{base_url}"']
        if spec.budget:
            lines.append(f'rate_limit = "{spec.budget}"')
        lines.append("")
    return "\n".join(lines)


def add_commands(scenario: Scenario) -> list[str]:
    """One ``tasktui add`` line per provider (and kind) with the scenario's task ids."""
    out = []
    groups: dict[tuple[str, str | None], list[str]] = {}
    for t in scenario.tasks:
        groups.setdefault((t.provider, t.kind), []).append(t.task_id)
    for (provider, kind), ids in groups.items():
        opt = f" --kind {kind}" if kind else ""
        out.append(f"tasktui add {provider} {' '.join(ids)}{opt} --label sim")
    return out


def serve(host: str = "127.0.0.1", port: int = 8765, scenario: Scenario | None = None, *,
          speed: float = 1.0, out=None, files: bool = False) -> None:
    """Serve in the foreground until Ctrl-C, printing the base URL, a config
    snippet, ``tasktui add`` lines, then one line per request."""
    out = out or sys.stdout
    server = SimServer(scenario, host, port, speed=speed, files=files)

    def show(rec: Record) -> None:
        mark = " VIOLATION" if rec.violation else ""
        fault = f" [{rec.fault}]" if rec.fault else ""
        print(f"{rec.time:9.2f}s {rec.provider or '-':8} {rec.method:4} {rec.path} -> {rec.status}{fault}{mark}",
              file=out, flush=True)

    server.sim.on_request = show
    with server:
        print(f"tasktui simulator listening on {server.base_url}", file=out)
        print(f"speed {speed}x; control: GET {server.base_url}/_sim/requests, POST /_sim/clock, Ctrl-C to stop",
              file=out)
        if server.sim.strict:
            print("strict: only the seed documents' endpoints are served; balance, credits, history and "
                  "other lists answer 404", file=out)
        print("", file=out)
        print(server.config_toml(), file=out)
        print("# tasks to track:", file=out)
        for line in add_commands(server.scenario):
            print(line, file=out)
        print("", file=out, flush=True)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


STRICT_ENV = "TASKTUI_SIM_STRICT"


def strict_wanted(args) -> bool:
    """``--strict`` (when the CLI has it) or ``TASKTUI_SIM_STRICT=1``."""
    if getattr(args, "strict", False):
        return True
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cmd_simulate(args) -> int:
    """``tasktui simulate``: args.host, args.port, args.scenario, args.seed, args.tasks, args.speed,
    and args.strict (or TASKTUI_SIM_STRICT=1): serve only the seed documents' endpoints, with the
    published variants mixed into a generated scenario."""
    strict = strict_wanted(args)
    if getattr(args, "scenario", None):
        try:
            scenario = Scenario.load(args.scenario)
        except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            print(f"tasktui simulate: cannot load scenario {args.scenario}: {exc}", file=sys.stderr)
            return 2
        if strict:
            scenario = scenario.model_copy(update={"strict": True})
    else:
        from .generate import generate

        scenario = generate(seed=args.seed, n_tasks=args.tasks, real=strict, strict=strict)
    try:
        serve(args.host, args.port, scenario, speed=args.speed, files=bool(getattr(args, "files", False)))
    except OSError as exc:
        print(f"tasktui simulate: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0
