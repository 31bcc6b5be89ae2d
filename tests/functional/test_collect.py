"""``tasktui collect`` as a real process (the installed entry point) against the
simulator on 127.0.0.1 (in-process ``sim`` fixture with a frozen clock, or the
``tasktui simulate`` process), a real SQLite file in tmp_path.

Every wait is for an event: a line on the collector's stderr, a request in the
simulator's log, an HTTP answer, a row in the database.  Nothing sleeps a fixed
time; timeouts are generous upper bounds only.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.pg import pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]
TASKTUI = Path(sys.executable).with_name("tasktui")  # the installed console script
GENEROUS = 60.0


def provider_table(name: str, base_url: str, **opts) -> str:
    values = {"api_key": f"sim-key-{name}", "base_url": base_url, "poll_interval": 0.2, "rate_limit": "600/s",
              **opts}
    lines = [f"[providers.{name}]"]
    for k, v in values.items():
        lines.append(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v!r}")
    return "\n".join(lines) + "\n\n"


def write_config(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)  # no "readable key" warning
    os.replace(tmp, path)


class Collect:
    """A ``tasktui collect`` process; its stderr lines collected as they come."""

    def __init__(self, tmp_path: Path, config_text: str, *args: str) -> None:
        assert TASKTUI.exists(), TASKTUI
        self.config = tmp_path / "config.toml"
        self.db = tmp_path / "tasks.db"
        write_config(self.config, config_text)
        env = {**os.environ, "TASKTUI_CONFIG": str(self.config), "TASKTUI_DB": str(self.db)}
        env.pop("TASKTUI_READONLY", None)
        self.proc = subprocess.Popen([str(TASKTUI), "collect", *args], env=env, cwd=tmp_path,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self.cursor = 0
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stderr:
            self._new.put(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = GENEROUS, *, since: int | None = None) -> str:
        """The first line (from ``since``, default: after the last match) matching ``pattern``."""
        start = self.cursor if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.lines)):
                if re.search(pattern, self.lines[i]):
                    self.cursor = i + 1
                    return self.lines[i]
            start = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and self._new.empty():
                raise AssertionError(f"no line matching {pattern!r}; exit {self.proc.poll()}; lines:\n"
                                     + "\n".join(self.lines))
            try:
                self.lines.append(self._new.get(timeout=min(0.5, left)))
            except queue.Empty:
                pass

    def health_url(self) -> str:
        line = self.wait_line(r"health on http://127\.0\.0\.1:\d+/healthz", since=0)
        return re.search(r"(http://127\.0\.0\.1:\d+)", line).group(1)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = GENEROUS) -> int:
        code = self.proc.wait(timeout=timeout)
        while True:  # the rest of stderr
            try:
                self.lines.append(self._new.get(timeout=2))
            except queue.Empty:
                break
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def collect(tmp_path):
    made: list[Collect] = []

    def start(config_text: str, *args: str) -> Collect:
        c = Collect(tmp_path, config_text, *args)
        made.append(c)
        return c

    yield start
    for c in made:
        c.close()


def until(condition, what: str, timeout: float = GENEROUS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def reqs(sim, provider=None, endpoint="status"):
    return [r for r in sim.requests if (provider is None or r.provider == provider)
            and (endpoint is None or r.endpoint == endpoint)]


def stored(db: Path, key: str):
    s = Store(db)
    try:
        return s.get(key)
    finally:
        s.close()


# ---------------------------------------------------------------- against `tasktui simulate`


def test_collect_against_tasktui_simulate_json_lines_sighup_sigterm(tmp_path, collect):
    """The whole service: every task the simulator has ends right in the database,
    one JSON line per event (no key in any), SIGHUP reloads, SIGTERM exits 0."""
    sim = subprocess.Popen([str(TASKTUI), "simulate", "--port", "0", "--seed", "5", "--tasks", "12",
                            "--speed", "20"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        out: list[str] = []
        while not any(line.startswith("tasktui add evolink") for line in out):
            line = sim.stdout.readline()
            assert line, "simulate ended early:\n" + "".join(out)
            out.append(line)
        text = "".join(out)
        config = "\n".join(line for line in text.splitlines()
                           if line.startswith(("[providers.", "api_key", "base_url"))) + "\n"
        # The simulator runs 20x faster than the clock, so the ETAs it reports are 20x too long
        # for the engine's own clock: a fixed 0.5 s poll instead (this is about the service).
        config = config.replace('base_url', 'poll_interval = 0.5\nbase_url') + "[engine]\nadaptive = false\n"
        keys = re.findall(r'api_key = "([^"]+)"', config)
        assert len(keys) == 5
        ids: list[str] = []
        db = tmp_path / "tasks.db"
        s = Store(db)
        for line in text.splitlines():
            if line.startswith("tasktui add "):
                words = line.split()
                provider, rest = words[2], words[3:]
                kind = rest[rest.index("--kind") + 1] if "--kind" in rest else None
                task_ids = [w for w in rest[:rest.index("--kind") if "--kind" in rest else rest.index("--label")]]
                s.add(provider, task_ids, kind=kind, label="sim")
                ids += [f"{provider}:{t}" for t in task_ids]
        s.close()
        c = collect(config, "--log-format", "json", "--health-port", "0")
        c.wait_line(r'"event": "start"')
        for key in ids:  # every task reaches an end (succeeded, failed, cancelled or gone)
            c.wait_line(r'"task": "' + re.escape(key) + r'".*"state": "(succeeded|failed|cancelled|not_found)"',
                        since=0, timeout=120)
        health = httpx.get(c.health_url() + "/healthz", timeout=30)
        assert health.status_code == 200 and health.json()["ok"] is True
        # SIGHUP: the config is read again (unchanged: said so)
        c.signal(signal.SIGHUP)
        c.wait_line(r'"event": "reload".*config reloaded: no change')
        c.signal(signal.SIGTERM)
        assert c.wait() == 0
        c.wait_line(r'"event": "stop"', since=0)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=30)
    parsed = [json.loads(line) for line in c.lines]  # every line is one JSON object
    assert all({"time", "level", "event", "message"} <= set(p) for p in parsed)
    assert not any(k in line for k in keys for line in c.lines)
    s = Store(db)
    try:
        assert {t.key for t in s.tasks()} == set(ids)  # nothing tracked lost
        assert all(t.terminal for t in s.tasks())
    finally:
        s.close()


# ---------------------------------------------------------------- against the in-process simulator


def test_sighup_adds_a_provider_and_a_bad_config_keeps_the_old(sim, tmp_path, collect):
    db = tmp_path / "tasks.db"
    s = Store(db)
    s.add("evolink", ["evolink-done"])
    s.add("upscayl", ["upscayl-done"])
    s.close()
    c = collect(provider_table("evolink", sim.base_url), "--health-port", "0")
    c.wait_line(r"task evolink:evolink-done unknown -> succeeded")
    assert not reqs(sim, "upscayl")
    write_config(c.config, provider_table("evolink", sim.base_url) + provider_table("upscayl", sim.base_url))
    c.signal(signal.SIGHUP)
    c.wait_line(r"config reloaded: upscayl: added")
    c.wait_line(r"task upscayl:upscayl-done unknown -> succeeded")
    assert reqs(sim, "upscayl")
    # a config that does not validate: one line, the old one stays, the service goes on
    write_config(c.config, provider_table("evolink", sim.base_url, poll_interval=-3.0))
    c.signal(signal.SIGHUP)
    line = c.wait_line(r"config not reloaded")
    assert "poll_interval" in line and "ERROR" in line
    assert httpx.get(c.health_url() + "/healthz", timeout=30).json()["providers"] == {"evolink": "ok",
                                                                                     "upscayl": "ok"}
    # the config file gone: an error, not "no providers"
    c.config.unlink()
    c.signal(signal.SIGHUP)
    c.wait_line(r"config not reloaded, the one in use is kept: .*no config file")
    assert set(httpx.get(c.health_url() + "/healthz", timeout=30).json()["providers"]) == {"evolink", "upscayl"}
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_sigterm_finishes_the_round_under_way(sim, sim_fault, tmp_path, collect):
    """An answer still on its way when SIGTERM comes is waited for and written."""
    slow = sim_fault("slow", "evolink", endpoint="status", delay=3.0, count=1)
    sim.add(faults=[slow])
    s = Store(tmp_path / "tasks.db")
    s.add("evolink", ["evolink-running"])
    s.close()
    c = collect(provider_table("evolink", sim.base_url, balance_interval=0.0))
    c.wait_line(r"collecting: 1 tasks tracked")
    until(lambda: slow.count == 0, "the request to be under way")  # the simulator holds it 3 s
    assert not reqs(sim, "evolink")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    assert len(reqs(sim, "evolink")) == 1 and reqs(sim, "evolink")[0].status == 200
    assert stored(c.db, "evolink:evolink-running").state == "running"  # the answer was written
    assert any("task evolink:evolink-running unknown -> running" in line for line in c.lines)


def test_a_second_signal_stops_at_once(sim, sim_fault, tmp_path, collect):
    # an answer 600 s away, and a provider timeout longer than that: only the second signal ends it
    slow = sim_fault("slow", "evolink", endpoint="status", delay=600.0, count=1)
    sim.add(faults=[slow])
    s = Store(tmp_path / "tasks.db")
    s.add("evolink", ["evolink-running"])
    s.close()
    c = collect(provider_table("evolink", sim.base_url, balance_interval=0.0, timeout=600.0))
    until(lambda: slow.count == 0, "the request to be under way")
    c.signal(signal.SIGTERM)
    c.wait_line(r"SIGTERM: stopping after the round under way")
    c.signal(signal.SIGINT)
    assert c.wait(timeout=60) == 0  # long before the simulator's answer
    c.wait_line(r"SIGINT again: stopping now", since=0)
    assert stored(c.db, "evolink:evolink-running") is not None


def test_healthz_and_metrics(sim, sim_fault, tmp_path, collect):
    from prometheus_client.parser import text_string_to_metric_families

    sim.add(faults=[sim_fault("rate_limit", "evolink", endpoint="status", retry_after=1, count=1)])
    s = Store(tmp_path / "tasks.db")
    s.add("evolink", ["evolink-done", "evolink-failed", "evolink-running"])
    s.add("upscayl", ["upscayl-done"])
    s.close()
    c = collect(provider_table("evolink", sim.base_url) + provider_table("upscayl", sim.base_url),
                "--health-port", "0")
    base = c.health_url()
    c.wait_line(r"evolink-done unknown -> succeeded", timeout=90)
    c.wait_line(r"upscayl-done unknown -> succeeded", since=0)
    c.wait_line(r"evolink-failed unknown -> failed", since=0)
    r = httpx.get(base + "/healthz", timeout=30)
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["reasons"] == []
    r = httpx.get(base + "/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for smp in family.samples:
            samples[(smp.name, tuple(sorted(smp.labels.items())))] = smp.value

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("tasktui_rate_limited_total", provider="evolink") == 1  # the one 429
    assert value("tasktui_rate_limited_total", provider="upscayl") == 0
    assert value("tasktui_requests_total", provider="evolink") >= 4
    assert value("tasktui_errors_total", provider="evolink") >= 1
    assert value("tasktui_tasks", provider="evolink", state="succeeded") == 1
    assert value("tasktui_tasks", provider="evolink", state="failed") == 1
    assert value("tasktui_tasks", provider="evolink", state="running") == 1
    assert value("tasktui_tasks", provider="upscayl", state="succeeded") == 1
    assert value("tasktui_budget_left", provider="upscayl") > 0
    assert value("tasktui_store_ok") == 1
    assert sum(v for (n, labels), v in samples.items()
               if n == "tasktui_provider_state" and ("provider", "upscayl") in labels) == 1
    assert "sim-key" not in r.text
    # the database file goes away: not healthy, and says why
    os.unlink(c.db)
    r = httpx.get(base + "/healthz", timeout=30)
    assert r.status_code == 503 and r.json()["ok"] is False
    assert any("database file was deleted" in why for why in r.json()["reasons"])
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_log_lines_never_carry_a_key_or_terminal_escapes(sim, sim_fault, tmp_path, collect):
    """A provider that echoes the key it was sent, and hostile text in a task's error."""
    s = Store(tmp_path / "tasks.db")
    s.add("comfy", ["comfy-done"])
    s.add("evolink", ["evolink-x"])
    s.close()
    wrong = "wrong-key-0123456789abcdef"
    c = collect(provider_table("comfy", sim.base_url, api_key=wrong) + provider_table("evolink", sim.base_url),
                "--log-format", "text")
    c.wait_line(r"provider comfy: auth_failed")
    c.wait_line(r"evolink:evolink-x .*not_found", since=0)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    text = "\n".join(c.lines)
    assert wrong not in text and "sim-key-evolink" not in text
    assert "\x1b" not in text and "\x07" not in text


def test_log_formatter_masks_every_secret_and_cleans_text():
    """The last guard: a line that would carry a key (in any encoding the redactor
    knows) or a terminal escape is masked and cleaned, in both formats."""
    import base64
    import io
    import logging

    from tui.collect import say, setup_logging

    key, secret = "sk-live-ABCDEF0123456789", "whsec_c2VjcmV0LXNpZ25pbmcta2V5"
    tui_log = logging.getLogger("tui")
    saved = (list(tui_log.handlers), tui_log.level, tui_log.propagate)  # as other tests (caplog) need it
    for fmt in ("text", "json"):
        out = io.StringIO()
        setup_logging(fmt, [key, secret], stream=out)
        try:
            say("test", f"echo {key} and {base64.b64encode(key.encode()).decode()} \x1b[31mred\x1b[0m {secret}",
                detail=f"field {key}")
        finally:
            tui_log.handlers[:] = saved[0]
            tui_log.setLevel(saved[1])
            tui_log.propagate = saved[2]
        line = out.getvalue()
        assert key not in line and secret not in line and "\x1b" not in line, line
        assert base64.b64encode(key.encode()).decode() not in line
        assert "***" in line and "red" in line
        if fmt == "json":
            record = json.loads(line)
            assert record["event"] == "test" and record["detail"] == "field ***"


def test_collect_on_a_postgresql_store(sim, tmp_path, collect, pg_url):
    """The same service on the shared PostgreSQL store (a real server, tests/pg.py):
    tasks end right in the database, healthz is 200, the password is in no line."""
    from tests.pg import PASSWORD
    from tui.store_pg import PgStore

    with PgStore(pg_url) as s:
        s.add("evolink", ["evolink-done", "evolink-failed"])
        s.add("upscayl", ["upscayl-done"])
    config = provider_table("evolink", sim.base_url) + provider_table("upscayl", sim.base_url)
    c = collect(config, "--db", pg_url, "--health-port", "0", "--log-format", "json")
    for key in ("evolink:evolink-done", "evolink:evolink-failed", "upscayl:upscayl-done"):
        c.wait_line(r'"task": "' + re.escape(key) + r'".*"state": "(succeeded|failed)"', since=0)
    health = httpx.get(c.health_url() + "/healthz", timeout=30)
    assert health.status_code == 200, health.text
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    with PgStore(pg_url) as s:
        assert s.get("evolink:evolink-done").state == "succeeded"
        assert s.get("evolink:evolink-failed").state == "failed"
        assert s.get("upscayl:upscayl-done").state == "succeeded"
    assert not any(PASSWORD in line for line in c.lines)


def test_collect_refuses_a_bad_config_or_a_taken_port_with_one_line(sim, tmp_path, collect):
    import socket

    c = collect(provider_table("evolink", sim.base_url, poll_interval=-1.0))
    assert c.wait() == 2
    assert len(c.lines) == 1 and "poll_interval" in c.lines[0], c.lines
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        c = collect(provider_table("evolink", sim.base_url), "--health-port", str(port))
        assert c.wait() == 2
    assert any(f"cannot listen on 127.0.0.1:{port}" in line for line in c.lines), c.lines
    assert not any("Traceback" in line for line in c.lines), c.lines


async def test_healthz_names_a_stopped_worker_and_a_stuck_loop(sim, tmp_path):
    """The collector's health, in-process: every worker running -> ok; a worker whose
    loop ended, or a liveness beat that stopped, is a reason for 503."""
    import asyncio
    from types import SimpleNamespace

    from test_collect_reload import config_for

    from tui.collect import STALE_BEAT, Collector
    from tui.engine import Engine

    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-running"])
    config = config_for(sim.base_url, ("evolink", "upscayl"))
    engine = Engine(config, store)
    collector = Collector(config, store, engine, SimpleNamespace(config=None))
    await engine.start()
    loop = asyncio.get_running_loop()
    try:
        collector.beat = loop.time()
        ok, body = collector.health()
        assert ok and body["reasons"] == [] and body["providers"] == {"evolink": "ok", "upscayl": "ok"}
        runner = engine.workers["upscayl"].runner
        runner.cancel()
        await asyncio.wait({runner})
        ok, body = collector.health()
        assert not ok and body["reasons"] == ["worker upscayl stopped"]
        collector.beat = loop.time() - STALE_BEAT - 1
        ok, body = collector.health()
        assert "the engine's event loop is stuck" in body["reasons"]
    finally:
        await engine.stop()
        store.close()


def test_two_collectors_on_one_postgresql_store_one_polls_and_kill_9_hands_over(sim_factory, sim_scenario,
                                                                                 sim_task, tmp_path, pg_url):
    """Two `tasktui collect` on one PostgreSQL store, one key: one of them holds the
    lease and polls; kill -9 of that one hands over to the other (it polls the rest,
    within seconds), and every task ends right, with no request inside a Retry-After
    window or over the simulator's budget."""
    from tui.store_pg import PgStore

    tasks = [sim_task("evolink", f"ev-{i}", "running", at=0.0, end=30.0 + 30 * i) for i in range(4)]
    sim = sim_factory(sim_scenario(*tasks))
    with PgStore(pg_url) as s:
        s.add("evolink", [t.task_id for t in tasks])
    # fixed 0.5 s polling: the simulator's clock is frozen between steps, an adaptive schedule would wait long
    config = provider_table("evolink", sim.base_url, balance_interval=0.0, poll_interval=0.5) \
        + "[engine]\nadaptive = false\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Collect(tmp_path / "a", config, "--db", pg_url)
    b = Collect(tmp_path / "b", config, "--db", pg_url)

    def state(key: str) -> str | None:
        with PgStore(pg_url) as s:
            t = s.get(key)
            return t.state if t else None
    try:
        for c in (a, b):
            c.wait_line(r"collecting: 4 tasks tracked")
        env = {**os.environ, "TASKTUI_CONFIG": str(a.config), "TASKTUI_DB": pg_url}

        def holder() -> int | None:
            out = subprocess.run([str(TASKTUI), "quota", "--json"], env=env, capture_output=True, text=True,
                                 timeout=60)
            lease = json.loads(out.stdout)[0].get("lease") if out.returncode == 0 and out.stdout.strip() else None
            return lease["pid"] if lease and lease.get("live") else None

        until(lambda: holder() in (a.proc.pid, b.proc.pid), "a lease holder")
        first = holder()
        dead, alive = (a, b) if first == a.proc.pid else (b, a)
        until(lambda: len(reqs(sim, "evolink")) >= 4, "the first polls")
        sim.advance(35)  # ev-0 ends
        until(lambda: state("evolink:ev-0") == "succeeded", "ev-0 seen ended")
        dead.proc.kill()  # kill -9: no clean release of the lease
        dead.proc.wait()
        sim.advance(200)  # the rest end
        until(lambda: holder() == alive.proc.pid, "the other collector took the lease")
        until(lambda: all(state(f"evolink:ev-{i}") == "succeeded" for i in range(4)),
              "every task ended, seen by the survivor")
        alive.wait_line(rf"provider evolink: polled by \S+ \(pid {alive.proc.pid}\)", since=0)  # said in its log
        alive.signal(signal.SIGTERM)
        assert alive.wait() == 0
    finally:
        for c in (a, b):
            c.close()
    assert sim.violations == []
    assert not any(r.over_budget for r in sim.requests)
