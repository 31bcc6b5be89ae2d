"""``tasktui collect``: the engine as a long-running service, no UI.

One line per event on stderr: text (``2026-11-30T12:00:00Z INFO task evolink:t1
running -> succeeded``) or, with ``--log-format json``, one JSON object a line
(``time``, ``level``, ``event``, ``message`` and the event's fields).  Every line
passes through ``clean`` (no terminal escapes from providers) and is masked of
every configured API key and webhook secret.  Events: a task tracked, moving to
another state, or forgotten; a provider changing state; an event-log row the
engine writes (errors, 429s, refused keys); a config reload; a push received
(with ``--listen``); start and stop.

Signals: SIGTERM and SIGINT stop it cleanly (each worker ends the round under
way and writes it; a second signal stops at once), exit 0.  SIGHUP reads the
config again and applies it with ``Engine.reload`` (one line per change); a bad
config keeps the one in use and says why in one line.

``--health-port N`` serves, on ``--health-host`` (default 127.0.0.1):

    GET /healthz   200 {"ok": true, ...} while the task database takes writes and
                   every provider's worker is running; 503 {"ok": false,
                   "reasons": [...]} otherwise (and while stopping)
    GET /metrics   Prometheus text format (tui/metrics.py)

``--listen`` runs the push receiver (tui/push.py) in the same process: a
Freepik webhook is stored by the receiver and its task counts as fed by push;
an EvoLink callback makes the engine poll that task at once (one request).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

log = logging.getLogger("tui.collect")

STOP_SIGNALS = ("SIGTERM", "SIGINT")
BEAT = 1.0  # seconds between two beats of the liveness task
STALE_BEAT = 15.0  # a beat older than this: the event loop is stuck (healthz 503)
LOG_TEXT_MAX = 600  # characters of one logged message at most
ENDED_KEPT = 100_000  # ended tasks remembered (so a later write to one is not logged as new)


# ---------------------------------------------------------------- command line


def add_parser(subparsers: Any, parents: Iterable[Any] = ()) -> Any:
    from .args import arg_port

    p = subparsers.add_parser(
        "collect", parents=list(parents), help="run the engine as a service (no UI): poll, log, serve metrics",
        description="Poll every configured provider until stopped, writing to the task database; one log line "
                    "per event on stderr. SIGTERM/SIGINT stop after the round under way (exit 0); SIGHUP "
                    "reloads the config (a bad one keeps the old, and says why).",
        epilog="See docs/scaling.md for a systemd unit and how to shard collectors by provider key.")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="text lines (default) or one JSON object a line")
    p.add_argument("--health-port", type=arg_port, default=None, metavar="N",
                   help="serve /healthz and /metrics (Prometheus) on this port (0 picks a free one)")
    p.add_argument("--health-host", default="127.0.0.1", metavar="HOST",
                   help="address for --health-port (default 127.0.0.1)")
    p.add_argument("--listen", action="store_true",
                   help="also receive provider webhooks (Freepik, EvoLink) in this process; "
                        "address from --host/--port or [listen]")
    p.add_argument("--host", default=None, help="--listen: address (default [listen] host or 127.0.0.1)")
    p.add_argument("--port", type=arg_port, default=None, help="--listen: port (default [listen] port or 8787)")
    p.add_argument("--path-prefix", default=None, metavar="PATH", help="--listen: serve under PATH")
    p.add_argument("--forwarded-allow-ips", default=None, metavar="IPS",
                   help="--listen: trust X-Forwarded-For from these proxy addresses")
    return p


def cmd_collect(args: Any) -> int:
    from .headless import Fail, command, load_config, make_engine, open_store

    @command
    def run(args: Any) -> int:
        config = load_config(args)
        handler = setup_logging(args.log_format, secrets_of(config))
        store = open_store(args, scope="live")  # memory holds the live tasks (the engine's working set)
        try:
            engine = make_engine(config, store)
            from .autopull import attach_from_config

            attach_from_config(engine, store, config)  # [results] auto_download: files fetched as tasks succeed
            collector = Collector(config, store, engine, args, handler=handler)
            return asyncio.run(collector.run())
        finally:
            store.close()

    try:
        return run(args)
    except OSError as exc:  # a port that cannot be bound
        print(f"tasktui: {exc}", file=sys.stderr, flush=True)
        return 2


# ---------------------------------------------------------------- log lines


def secrets_of(config: Any) -> list[str]:
    """Every key and webhook secret of ``config`` (to mask in log lines)."""
    out: list[str] = []
    for cfg in (getattr(config, "providers", None) or {}).values():
        for name in ("api_key", "webhook_secret"):
            value = getattr(cfg, name, None)
            if value is not None and hasattr(value, "get_secret_value"):
                out += [s for s in value.get_secret_value().split() if s]
    listen = getattr(config, "listen", None)
    token = getattr(listen, "token", None)
    if token is not None:
        out.append(token.get_secret_value())
    return out


class LineFormatter(logging.Formatter):
    """One line per record: text or JSON, cleaned and masked of ``secrets``."""

    def __init__(self, fmt: str = "text", secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.format_name = fmt
        self.secrets = [s for s in secrets if s]

    def mask(self, text: str) -> str:
        from .redact import redact
        from .text import clean

        text = clean(text, LOG_TEXT_MAX)
        for secret in self.secrets:
            text = redact(text, secret)
        return text

    def format(self, record: logging.LogRecord) -> str:
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z"
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message += f" ({type(exc).__name__}: {exc})"
        message = self.mask(message)
        event = getattr(record, "event", None) or record.name.rpartition(".")[2]
        if self.format_name == "json":
            line: dict[str, Any] = {"time": when, "level": record.levelname.lower(), "event": event,
                                    "message": message}
            for key, value in (getattr(record, "fields", None) or {}).items():
                if key not in line:
                    line[key] = self.mask(value) if isinstance(value, str) else value
            return json.dumps(line, ensure_ascii=False, default=str)
        return f"{when} {record.levelname} {message}"


def setup_logging(fmt: str, secrets: Iterable[str], stream: Any = None) -> logging.Handler:
    """Send the ``tui`` loggers (collect, push) to stderr, one line per record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LineFormatter(fmt, secrets))
    root = logging.getLogger("tui")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    return handler


def say(event: str, message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, message, extra={"event": event, "fields": fields})


# ---------------------------------------------------------------- the service


class Collector:
    """The engine, its log lines, signals, the health server and the push listener."""

    def __init__(self, config: Any, store: Any, engine: Any, args: Any, *,
                 handler: logging.Handler | None = None) -> None:
        self.config, self.store, self.engine, self.args = config, store, engine, args
        self.handler = handler
        self.known: dict[str, str] = {}  # live task key -> the state last logged
        self.ended: OrderedDict[str, str] = OrderedDict()  # ended task key -> its end (the latest ENDED_KEPT)
        self.pending: set[str] = set()  # task keys changed since the last drain
        self.new_events = 0
        self.counters_changed = False
        self.provider_states: dict[str, tuple[str, str | None]] = {}
        self.pollers: dict[str, str] = {}  # provider -> "polled by HOST (pid N) since T", as last logged
        self.wake: asyncio.Event | None = None
        self.stop_asked: asyncio.Event | None = None
        self.signals = 0
        self.stopping = False
        self.beat = 0.0
        self.health_server: Any = None
        self.health_task: asyncio.Task | None = None
        self.health_port: int | None = None
        self.listener: Any = None
        self.reloading: asyncio.Task | None = None

    # ------------------------------------------------------------ change feed -> lines

    def on_change(self, change: Any) -> None:
        self.pending |= change.keys
        self.new_events += change.events
        self.counters_changed = self.counters_changed or change.counters
        if self.wake is not None:
            self.wake.set()

    def drain(self) -> None:
        """Log what changed since the last drain."""
        keys, self.pending = self.pending, set()
        events, self.new_events = self.new_events, 0
        counters, self.counters_changed = self.counters_changed, False
        for key in sorted(keys):
            self._task_line(key)
        if events:
            try:
                rows = self.store.events(limit=min(events, 1000))
            except Exception:
                rows = []
            for e in reversed(rows):
                level = logging.WARNING if e.kind not in ("info",) else logging.INFO
                where = f"{e.provider}:{e.task_id}" if e.task_id else e.provider
                status = f" HTTP {e.status}" if e.status else ""
                say("provider_event", f"{where} {e.kind}{status}: {e.message}", level=level,
                    provider=e.provider, task=e.task_id, kind=e.kind, status=e.status, retry_after=e.retry_after)
        if counters or keys:
            self._provider_lines()

    def _task_line(self, key: str) -> None:
        task = self.store.get(key)
        before = self.known.get(key) or self.ended.get(key)
        if task is None:
            if before is not None:
                self.known.pop(key, None)
                self.ended.pop(key, None)
                say("task", f"task {key} forgotten", task=key, state=None)
            return
        if before == task.state:
            return
        if task.terminal:  # it changes no more: remembered among the last ENDED_KEPT ends only
            self.known.pop(key, None)
            self.ended[key] = task.state
            self.ended.move_to_end(key)
            while len(self.ended) > ENDED_KEPT:
                self.ended.popitem(last=False)
        else:
            self.known[key] = task.state
        fields = {"task": key, "provider": task.provider, "state": task.state, "previous": before,
                  "provider_status": task.provider_status}
        if before is None:
            say("task", f"task {key} tracked ({task.state})", **fields)
            return
        extra = ""
        if task.state == "succeeded":
            extra = f" ({len(task.results)} result{'s' if len(task.results) != 1 else ''})"
            fields["results"] = len(task.results)
        elif task.error and task.terminal:
            extra = f": {task.error}"
            fields["error"] = task.error
        level = logging.WARNING if task.state in ("failed", "not_found") else logging.INFO
        say("task", f"task {key} {before} -> {task.state}{extra}", level=level, **fields)

    def _provider_lines(self) -> None:
        for w in list(self.engine.workers.values()):
            now = (w.state, w.cause)
            before = self.provider_states.get(w.name)
            if before == now:
                continue
            self.provider_states[w.name] = now
            if before is None and now[0] == "ok":
                continue
            cause = f" ({now[1]})" if now[1] else ""
            level = logging.INFO if now[0] == "ok" else logging.WARNING
            say("provider", f"provider {w.name}: {now[0]}{cause}", level=level, provider=w.name, state=now[0],
                cause=now[1], previous=before[0] if before else None)
        self._lease_lines()

    def _lease_lines(self) -> None:
        """Who polls each provider key (the lease, tui/lease.py), when that changes."""
        for w in list(self.engine.workers.values()):
            try:
                who = w.health(learned=False).polled_by
            except Exception:
                continue
            if who is None or self.pollers.get(w.name) == who:
                continue
            self.pollers[w.name] = who
            say("lease", f"provider {w.name}: {who}", provider=w.name, polled_by=who)

    # ------------------------------------------------------------ health

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body) for /healthz."""
        reasons: list[str] = []
        if self.stopping:
            reasons.append("stopping")
        problem = self.store_problem()
        if problem:
            reasons.append(problem)
        loop = asyncio.get_running_loop()
        if loop.time() - self.beat > STALE_BEAT:
            reasons.append("the engine's event loop is stuck")
        for w in self.engine.workers.values():
            if w.runner is None or w.runner.done():
                why = "stopped"
                if w.runner is not None and w.runner.done() and not w.runner.cancelled() and w.runner.exception():
                    why = f"stopped: {type(w.runner.exception()).__name__}"
                reasons.append(f"worker {w.name} {why}")
        providers = {w.name: w.state for w in self.engine.workers.values()}
        body = {"ok": not reasons, "reasons": reasons, "providers": providers,
                "tasks": self._tracked(len(self.known)), "pid": os.getpid()}
        return not reasons, body

    def store_problem(self) -> str | None:
        problem = self.engine.store_problem
        if problem:
            return problem
        check = getattr(self.store, "check_file", None)
        if check is not None:
            try:
                lost = check()
            except Exception as exc:
                lost = f"task database: {type(exc).__name__}"
            if lost:
                return lost
        path = getattr(self.store, "path", None)
        if path is not None and not str(path).startswith("postgresql") and os.path.exists(path):
            if not os.access(path, os.W_OK) or not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
                return f"task database not writable: {path}"
        return None

    def health_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        from .metrics import EngineCollector, registry, render

        def store_ok() -> bool:
            return self.store_problem() is None

        reg = registry(EngineCollector(self.engine.quota, self.counters_now, store_ok))

        async def healthz(request: Any) -> Any:
            ok, body = self.health()
            return JSONResponse(body, status_code=200 if ok else 503)

        async def metrics(request: Any) -> Any:
            from prometheus_client import CONTENT_TYPE_LATEST

            return Response(render(reg), media_type=CONTENT_TYPE_LATEST)

        return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])

    def counters_now(self) -> dict[str, dict]:
        """The stored counters blobs, with this process's receiver's push counts as they
        are now (it writes refusals to the store only every few seconds)."""
        blobs = {name: dict(blob) for name, blob in (self.store.counters() or {}).items()}
        if self.listener is not None:
            for name, counts in self.listener.receiver.counts.items():
                blobs.setdefault(name, {})["push"] = counts
        return blobs

    # ------------------------------------------------------------ push

    def on_hint(self, key: str) -> None:
        """An EvoLink callback for a tracked task: poll it now (one request)."""
        self.engine.refresh_now([key])

    # ------------------------------------------------------------ signals, reload

    def _signal(self, name: str) -> None:
        self.signals += 1
        if self.signals == 1:
            say("signal", f"{name}: stopping after the round under way", signal=name)
        else:
            say("signal", f"{name} again: stopping now", signal=name)
        assert self.stop_asked is not None
        self.stop_asked.set()

    def _hup(self) -> None:
        if self.reloading is not None and not self.reloading.done():
            say("reload", "SIGHUP: a reload is under way; this one is skipped")
            return
        self.reloading = asyncio.ensure_future(self.reload())

    async def reload(self) -> list[str]:
        from . import config as config_mod

        try:
            # a config file read at start that is gone now is an error, not "no providers"
            config = config_mod.load_config(config_mod.config_path(getattr(self.args, "config", None)),
                                            must_exist=getattr(self.config, "path", None) is not None)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            say("reload", f"config not reloaded, the one in use is kept: {first}", level=logging.ERROR)
            return []
        if self.handler is not None and isinstance(self.handler.formatter, LineFormatter):
            fmt = self.handler.formatter
            fmt.secrets = list(dict.fromkeys(fmt.secrets + secrets_of(config)))  # old keys stay masked too
        try:
            lines = await self.engine.reload(config)
        except Exception as exc:
            say("reload", f"config not applied: {type(exc).__name__}: {exc}", level=logging.ERROR)
            return []
        old_store, new_store = getattr(self.config.store, "url", None), getattr(config.store, "url", None)
        old_config, self.config = self.config, config
        if old_store != new_store:
            lines.append("[store] url changed: restart to use the other database")
        if self.listener is not None:
            await self._reload_listener(old_config, config, lines)
        elif getattr(self.args, "listen", False):  # it could not start before: try again
            try:
                await self._start_listener()
            except (OSError, ValueError) as exc:
                lines.append(f"webhook receiver still not running: {exc}")
            else:
                lines.append("webhook receiver started")
        for line in lines:
            say("reload", f"config reloaded: {line}")
        if not lines:
            say("reload", "config reloaded: no change")
        self._watch_new_workers()
        return lines

    async def _reload_listener(self, old: Any, config: Any, lines: list[str]) -> None:
        """The receiver after a reload: a new Freepik secret list is handed to it as it
        runs; a new address, prefix, token or a route added or removed restarts it."""
        from .push import _secret_list, listen_settings

        receiver = self.listener.receiver

        def secrets(cfg: Any) -> list[str]:
            pcfg = cfg.providers.get("freepik")
            return _secret_list(getattr(pcfg, "webhook_secret", None)) if pcfg is not None else []

        def shape(cfg: Any) -> tuple:
            return (tuple(sorted(listen_settings(cfg, self.args).items())), bool(secrets(cfg)),
                    "evolink" in cfg.providers, "freepik" in cfg.providers)

        if shape(old) != shape(config):
            await self.listener.stop()
            self.listener = None
            try:
                await self._start_listener()
            except (OSError, ValueError) as exc:
                lines.append(f"webhook receiver not restarted: {exc}; no pushes are received until the next reload")
                self.engine.set_push(())
                return
            lines.append("webhook receiver restarted (address, prefix, token or routes changed)")
            return
        fresh = secrets(config)
        if fresh != receiver.secrets.get("freepik", []):
            receiver.secrets["freepik"] = fresh
            lines.append("freepik: webhook secret now in use")

    def _watch_new_workers(self) -> None:
        for name in list(self.provider_states):
            if name not in self.engine.workers:
                del self.provider_states[name]

    # ------------------------------------------------------------ run

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.beat = loop.time()
            await asyncio.sleep(BEAT)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.stop_asked = asyncio.Event()
        self.beat = loop.time()
        for name in STOP_SIGNALS:
            loop.add_signal_handler(getattr(signal, name), self._signal, name)
        loop.add_signal_handler(signal.SIGHUP, self._hup)
        beat = asyncio.ensure_future(self._beat())
        try:
            tasks = self.store.tasks()
        except Exception:
            tasks = []
        self.known = {t.key: t.state for t in tasks if not t.terminal}  # the live ones (scope "live")
        unsubscribe = self.store.subscribe(self.on_change)
        live = sum(1 for t in tasks if not t.terminal)
        tracked = self._tracked(len(tasks))
        from .stores import describe

        names = ", ".join(self.engine.workers) or "none"
        say("start", f"collecting: {tracked} tasks tracked ({live} live); providers: {names}; "
                     f"database {describe(getattr(self.store, 'url', None) or self.store.path)}",
            tasks=tracked, live=live, providers=list(self.engine.workers), pid=os.getpid())
        if not self.engine.workers:
            say("start", "no provider configured: nothing is polled until the config names one (SIGHUP reloads it)",
                level=logging.WARNING)
        try:
            if self.args.health_port is not None:
                from .push import start_server

                self.health_server, self.health_task, self.health_port = await start_server(
                    self.health_app(), self.args.health_host, self.args.health_port)
                say("health", f"health on http://{self.args.health_host}:{self.health_port}/healthz and /metrics",
                    port=self.health_port)
            if getattr(self.args, "listen", False):
                await self._start_listener()
            await self.engine.start()
            self._provider_lines()
            await self._loop()
        finally:
            self.stopping = True
            await self._shutdown()
            unsubscribe()
            beat.cancel()
            for name in (*STOP_SIGNALS, "SIGHUP"):
                loop.remove_signal_handler(getattr(signal, name))
        return 0

    async def _start_listener(self) -> None:
        from .push import Listener

        self.listener = await Listener.start(self.config, self.store, self.args, on_hint=self.on_hint,
                                             on_push=self.engine.note_push)
        self.engine.set_push(self.listener.receiver.routes)
        for name, url in self.listener.urls.items():
            say("listen", f"receiving {name} pushes on {url}", provider=name)
        if not self.listener.receiver.has_freepik:
            say("listen", "no Freepik route: set [providers.freepik] webhook_secret", level=logging.WARNING)

    async def _loop(self) -> None:
        assert self.wake is not None and self.stop_asked is not None
        stop = asyncio.ensure_future(self.stop_asked.wait())
        try:
            while not self.stop_asked.is_set():
                self.wake.clear()
                self.drain()
                woken = asyncio.ensure_future(self.wake.wait())
                await asyncio.wait({woken, stop}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            stop.cancel()

    async def _shutdown(self) -> None:
        """Finish the rounds under way (a second signal: at once), then stop everything."""
        assert self.stop_asked is not None
        if self.reloading is not None and not self.reloading.done():
            await asyncio.wait({self.reloading}, timeout=30)
        if self.signals <= 1:
            self.stop_asked.clear()
            finish = asyncio.ensure_future(self.engine.stop(finish=True))
            again = asyncio.ensure_future(self.stop_asked.wait())
            await asyncio.wait({finish, again}, return_when=asyncio.FIRST_COMPLETED)
            again.cancel()
            if not finish.done():
                await self.engine.stop()  # the rounds are cancelled
                await asyncio.wait({finish}, timeout=5)
        else:
            await self.engine.stop()
        if self.listener is not None:
            try:
                await self.listener.stop()
            except Exception as exc:
                say("listen", f"receiver stopped with {type(exc).__name__}", level=logging.WARNING)
        if self.health_server is not None:
            self.health_server.should_exit = True
            if self.health_task is not None:
                await asyncio.wait({self.health_task}, timeout=10)
        self.drain()
        n = self._tracked(len(self.known))
        say("stop", f"stopped: {n} tasks tracked, all in the database", tasks=n)

    def _tracked(self, fallback: int) -> int:
        """Tasks tracked in the database (every scope)."""
        try:
            return len(self.store)
        except Exception:
            return fallback
