"""Two engines in two real processes on one store (a SQLite file, a PostgreSQL
database) against the simulator over HTTP: one poller per provider key.

Each process logs every request it sends (time, path) to a file of its own, so
the test knows who sent what; the simulator's own log says whether a request
was over the provider's budget or inside an announced Retry-After window.
Every wait below is for an event (a lease row naming a process, a request in a
log, every task ended), never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.engine.worker import IDLE_WAKE
from tui.lease import TTL, read_leases
from tui.model import TERMINAL
from tui.sim import Fault, build_scenario, sim_task

from tests.pg import pg_db, pg_server, pg_url  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]

# One engine as a process (what `tasktui collect` is): every request it sends goes to its log.
RUNNER = r"""
import asyncio, json, os, signal, sys, threading, time
import httpx

# die with the test that started us, whatever ends it (a failed wait, a timeout, kill -9
# of pytest): the kernel's parent-death signal, and EOF on stdin (the parent's end closes)
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() == 1:
    os._exit(3)

def _orphaned():
    try:
        while sys.stdin.buffer.read(1):
            pass
    except Exception:
        pass
    os._exit(3)

threading.Thread(target=_orphaned, daemon=True).start()

db, config_path, log_path = sys.argv[1:4]
log = open(log_path, "a", buffering=1)
send = httpx.AsyncClient.send

async def logged(self, request, *args, **kwargs):
    log.write(json.dumps({"t": time.time(), "path": request.url.path}) + "\n")
    return await send(self, request, *args, **kwargs)

httpx.AsyncClient.send = logged

from tui.config import load_config
from tui.engine import Engine
from tui.stores import open_store

# a test's small budgets: {"daily": {provider: {poll kind: requests a day}}}
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
if extra.get("daily"):
    from tui.providers import provider_class
    for name, limits in extra["daily"].items():
        provider_class(name).daily_limits = dict(limits)

async def main():
    store = open_store(db)
    engine = Engine(load_config(config_path), store)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await engine.start()
    print("ready", flush=True)
    await stop.wait()
    await engine.stop()
    store.close()
    print("stopped", flush=True)

asyncio.run(main())
"""

def _deadline_wait(what, timeout: float, message, state=None):
    """Wait for ``what()`` to be truthy (checked every 50 ms), at most ``timeout`` s;
    on a timeout the message says ``state()`` too (what the processes did)."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > deadline:
            extra = f"; {state()}" if state is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}{extra}")
        time.sleep(0.05)


def _state(store, *procs) -> str:
    """What happened so far, for a failure message."""
    try:
        events = [e.message for e in store.events(limit=10)]
    except Exception as exc:
        events = [repr(exc)]
    sent = {p.pid: [(round(r["t"] % 1000, 2), r["path"]) for r in p.requests()] for p in procs if p is not None}
    errs = {p.pid: p.stderr()[-1500:] for p in procs if p is not None and p.stderr().strip()}
    return f"holder pid {_holder_pid(store)}, sent {sent}, events {events}, stderr {errs}, server {_activity(store)}"


def _activity(store) -> str:
    """On PostgreSQL, what each session of the test's database is doing (who waits for what)."""
    conn = getattr(store, "_conn", None)
    if getattr(store, "dialect", "") != "postgres" or conn is None:
        return "-"
    try:
        rows = conn.raw.execute(
            "SELECT pid, application_name, state, wait_event_type, wait_event, left(query, 120),"
            " now() - state_change FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()").fetchall()
        return repr(rows)
    except Exception as exc:  # noqa: BLE001 - a failure message must not fail
        return repr(exc)


_LIVE: list["Proc"] = []  # every process a test started and has not reaped yet


@pytest.fixture(autouse=True)
def _reap():
    """Whatever ends a test (a failed wait, a timeout, an error in a ``finally``),
    every process it started is killed and waited for."""
    yield
    while _LIVE:
        _LIVE[-1].stop(grace=0.0)


class Proc:
    def __init__(self, name: str, db: str, config: Path, tmp: Path, runner: str = RUNNER,
                 args: tuple[str, ...] = ()) -> None:
        self.log = tmp / f"requests-{name}.jsonl"
        self.log.touch()
        self.err = tmp / f"stderr-{name}.txt"  # a file, not a pipe nobody drains (a full one blocks the child)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.err, "w") as err:
            self.p = subprocess.Popen([sys.executable, "-c", runner, db, str(config), str(self.log), *args],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                      env=env, cwd=ROOT)
        _LIVE.append(self)
        self.pid = self.p.pid

    def stderr(self) -> str:
        try:
            return self.err.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def wait_line(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} from process {self.pid}: {self.stderr()}"
            ready, _, _ = select.select([self.p.stdout], [], [], left)
            if ready:
                line = self.p.stdout.readline()
                assert line, f"process {self.pid} ended: {self.stderr()}"
                if line.strip() == text:
                    return

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM and ``grace`` seconds to stop cleanly; then, whatever happened
        (a timeout, an interrupt), kill and wait: it never outlives its test."""
        try:
            if self.p.poll() is None and grace > 0:
                self.p.send_signal(signal.SIGCONT)  # a frozen one (SIGSTOP) cannot hear SIGTERM
                self.p.send_signal(signal.SIGTERM)
                try:
                    self.p.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if self.p.poll() is None:
                self.p.kill()
            self.p.wait()
            if self in _LIVE:
                _LIVE.remove(self)
            for stream in (self.p.stdin, self.p.stdout):
                try:
                    stream.close()
                except OSError:
                    pass


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "tasks.db")
    return request.getfixturevalue("pg_url")


def _open(target: str):
    from tui.stores import open_store

    return open_store(target)


def _setup(target: str, tmp_path: Path, sim_factory, budget: str, extra: str = ""):
    """The simulator (real time, EvoLink with ``budget``), a config for it, the store;
    no task yet (``_add_now``)."""
    sim = sim_factory(build_scenario(evolink={"budget": budget}), speed=1.0)
    config = tmp_path / "config.toml"
    config.write_text(sim.config_toml(("evolink",)) + "poll_interval = 0.5\n" + extra)
    return sim, config, _open(target)


def _add_now(sim, store, ends: tuple[float, ...]) -> None:
    """Tasks that began a second ago and end ``ends`` seconds from now (the simulator's
    clock), tracked from now on: live whatever the processes' start-up took."""
    now = sim.now()
    tasks = [sim_task("evolink", f"n{n}", "running", created=now - 1.0, start=now - 0.5, end=now + end)
             for n, end in enumerate(ends)]
    sim.add(tasks)
    store.add("evolink", [t.task_id for t in tasks], label="lease")


def _holder_pid(store) -> int | None:
    leases, now = read_leases(store)
    live = [info for info in leases.values() if info.provider == "evolink" and info.holder and info.expires > now]
    return live[0].pid if live else None


def _freeze_outside_a_write(proc: "Proc", target: str) -> None:
    """SIGSTOP ``proc`` at a moment it holds no write lock on a SQLite file: a process
    stopped inside a write transaction keeps SQLite's lock, so every other writer waits
    until it continues — a limit of SQLite's file locks (docs/scaling.md), where
    PostgreSQL ends such a session after IDLE_TX_TIMEOUT_MS.  Stopped inside one: let it
    go on, wait for the lock to be free, and stop it again."""
    import sqlite3

    for _ in range(50):
        proc.p.send_signal(signal.SIGSTOP)
        if target.startswith("postgresql://"):
            return
        conn = sqlite3.connect(target, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return  # the lock is free: stopped outside a write
        except sqlite3.OperationalError:
            proc.p.send_signal(signal.SIGCONT)
            probe = sqlite3.connect(target, timeout=30)
            try:
                probe.execute("BEGIN IMMEDIATE")  # waits for its commit (the event), then frees it
                probe.execute("ROLLBACK")
            finally:
                probe.close()
        finally:
            conn.close()
    raise AssertionError("could not stop the process outside a write in 50 tries")


def _lease_of(store, pid: int):
    """The evolink lease row while process ``pid`` holds it (None otherwise)."""
    leases, _now = read_leases(store)
    return next((i for i in leases.values() if i.provider == "evolink" and i.pid == pid), None)


# How late B may take the key over, beyond the design (a dead holder: at B's next wake;
# a frozen one: at the next wake after its lease ran out, TTL + IDLE_WAKE = 8 s in all,
# under the 10 s issue 16 promises): the suite runs on machines busy with other work,
# where a process may not be scheduled for seconds.  The bound is checked on the lease
# row's own times; the wait for the event itself is long (a slow machine is not a bug).
BUSY_SLACK = 5.0


def _all_ended(store) -> bool:
    store.sync()
    tasks = [t for t in store.tasks() if t.provider == "evolink"]
    return bool(tasks) and all(t.state in TERMINAL for t in tasks)


def _check_ends(store) -> None:
    for t in store.tasks():
        assert t.state == "succeeded" and t.results, t.to_dict()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_two_processes_one_poller_and_a_hand_over_keeps_the_budget(target, tmp_path, sim_factory, how):
    """A polls, B (started while A holds the lease) sends nothing; the tasks are added
    then, A spends 8 of the key's 12/minute on them and stops (SIGTERM), or is killed
    (-9) by the simulator as its eighth request arrives, before A saw any answer (only
    the requests it reserved in the lease before sending say so); B takes over at once
    and spends
    only the 4 left of the minute (what B knew of A's requests when it started would
    let it send 7 at once, concurrency 8): the simulator counts no request over the
    budget."""
    sim, config, store = _setup(target, tmp_path, sim_factory, "12/m", extra="concurrency = 8\n")
    a = Proc("a", target, config, tmp_path)
    b = None
    try:
        a.wait_line("ready")
        _deadline_wait(lambda: _holder_pid(store) == a.pid, 30, "A to hold the lease")
        b = Proc("b", target, config, tmp_path)
        b.wait_line("ready")
        if how == "kill":
            def kill_on_the_eighth(record) -> None:  # in the simulator, before it answers
                if record.provider == "evolink" and len(sim.requests) >= 8:
                    sim.sim.on_request = None
                    os.kill(a.pid, signal.SIGKILL)
            sim.sim.on_request = kill_on_the_eighth
        _add_now(sim, store, tuple(30.0 + n for n in range(8)))
        # A spends 8 of the 12 requests the minute allows (B, running, sends none)
        _deadline_wait(lambda: len(a.requests()) >= 8, 60, "A's eighth request", lambda: _state(store, a, b))
        assert b.requests() == []
        assert not _all_ended(store)
        if how == "kill":
            a.p.wait(30)
            assert a.p.returncode == -signal.SIGKILL
        else:
            a.stop()
        stopped = time.time()
        _deadline_wait(lambda: _holder_pid(store) == b.pid, 10, "B to take the lease over")
        assert time.time() - stopped < 10
        # B spends what is left of the minute (the moment a B that ignored A's requests
        # would have gone over it); the kill and freeze tests below also see every task end
        _deadline_wait(lambda: len([r for r in sim.requests if r.provider == "evolink"]) >= 12 or _all_ended(store),
                       120, "the minute's 12 requests spent", lambda: _state(store, a, b))
        assert not [r for r in sim.requests if r.over_budget], "a request over the key's 12/minute"
        sent_a, sent_b = a.requests(), b.requests()
        assert sent_b, "B never polled after the hand-over"
        assert max(r["t"] for r in sent_a) < min(r["t"] for r in sent_b)  # never both at once
        # (no count of served against logged: a process stopped or killed may have logged a
        # request that its stop cancelled before it left)
        served = [r for r in sim.requests if r.provider == "evolink"]
        assert len(served) <= len(a.requests()) + len(b.requests())
        assert not [r for r in served if r.over_budget], "a request over the key's 12/minute"
        # every sliding minute of the simulator's log holds at most 12 requests
        times = sorted(r.wall for r in served)
        assert all(sum(1 for u in times if t <= u < t + 60) <= 12 for t in times)
        assert b.p.poll() is None
    finally:
        for p in (a, b):
            if p is not None:
                p.stop()
        store.close()


def test_kill_9_of_the_holder_hands_over_within_10_s_and_keeps_out_of_its_retry_after(
        target, tmp_path, sim_factory):
    """A gets a 429 saying "retry after 20 s" and is killed (-9) right after: B takes
    over within 10 s, and sends nothing before the 20 s are over (the simulator's
    log has no request inside the window); every task still ends right."""
    sim, config, store = _setup(target, tmp_path, sim_factory, "600/m")
    a = Proc("a", target, config, tmp_path)
    b = None
    try:
        a.wait_line("ready")
        _deadline_wait(lambda: _holder_pid(store) == a.pid, 30, "A to hold the lease")
        b = Proc("b", target, config, tmp_path)
        b.wait_line("ready")
        # the 429 comes now, after B started (B cannot have read it at its start)
        sim.add(faults=[Fault(kind="rate_limit", provider="evolink", endpoint="status", start=sim.now(), count=1,
                              retry_after=20)])
        _add_now(sim, store, (1.0, 1.5, 2.0, 2.5, 3.0, 3.5))
        got = _deadline_wait(lambda: [r for r in sim.requests if r.status == 429], 60, "the 429")
        # A stores the wait at once (one 429 pauses every process on the key): once it did, kill it
        _deadline_wait(lambda: any(i.state.get("retry_at") for i in read_leases(store)[0].values()), 30,
                       "A to store the Retry-After in the lease")
        a.p.kill()
        a.p.wait()
        killed = time.time()
        _deadline_wait(lambda: _holder_pid(store) == b.pid, 60, "B to take the lease over")
        taken = _lease_of(store, b.pid)
        # a holder gone from this machine is replaced at B's next wake, not at its lease's end
        assert taken.since - killed <= IDLE_WAKE + BUSY_SLACK, (taken.since, killed)
        _deadline_wait(lambda: any("taken over from" in e.message and f"pid {a.pid}" in e.message
                                   for e in store.events(limit=200)), 30, "the take-over in the event log")
        _deadline_wait(lambda: _all_ended(store), 120, "every task to end")
        _check_ends(store)
        # (A's requests already in flight when the 429 came are in the window too: the
        # engine cannot call them back; what matters is that nobody sent one after it)
        late = [r for r in sim.requests if r.violation and r.wall >= got[0].wall + 1.0]
        assert late == [], "a request inside the announced Retry-After window"
        sent_b = b.requests()
        assert sent_b and min(r["t"] for r in sent_b) >= got[0].wall + 20 - 0.5
        assert max(r["t"] for r in a.requests()) < min(r["t"] for r in sent_b)
        assert not [r for r in sim.requests if r.over_budget]
    finally:
        for p in (a, b):
            if p is not None:
                p.stop()
        store.close()


def test_a_frozen_holder_is_replaced_when_its_lease_runs_out_and_sends_nothing_after(
        target, tmp_path, sim_factory):
    """A is frozen (SIGSTOP: alive, not renewing): B takes over once A's lease ran out
    (within 10 s); A thawed (SIGCONT) finds it no longer holds the key and sends
    nothing more (its own clock said its lease was too old); every task ends right."""
    sim, config, store = _setup(target, tmp_path, sim_factory, "600/m")
    a = Proc("a", target, config, tmp_path)
    b = None
    try:
        a.wait_line("ready")
        _deadline_wait(lambda: _holder_pid(store) == a.pid, 30, "A to hold the lease")
        b = Proc("b", target, config, tmp_path)
        b.wait_line("ready")
        _add_now(sim, store, (15.0, 16.0, 17.0, 18.0))
        _deadline_wait(lambda: len(a.requests()) >= 4, 60, "A's polls")
        _freeze_outside_a_write(a, target)
        frozen = time.time()
        stopped = _lease_of(store, a.pid)  # what A last stored: it renews no more
        _deadline_wait(lambda: _holder_pid(store) == b.pid, 60, "B to take the lease over")
        taken = _lease_of(store, b.pid)
        assert stopped is not None and stopped.expires - frozen <= TTL + 0.5  # renewed before the freeze
        assert taken.since >= stopped.expires - 0.05, "B took the key before A's lease ran out"
        assert taken.since - stopped.expires <= IDLE_WAKE + BUSY_SLACK, (taken.since, stopped.expires)
        # (on PostgreSQL A may have been frozen inside a store write, holding the writers'
        # lock: B's writes wait until the server ends A's idle transaction, 10 s at most)
        _deadline_wait(lambda: b.requests(), 90, "B's first poll", lambda: _state(store, a, b))
        a.p.send_signal(signal.SIGCONT)
        thawed = time.time()
        _deadline_wait(lambda: _all_ended(store), 120, "every task to end")
        _check_ends(store)
        assert [r for r in a.requests() if r["t"] >= thawed] == [], "A polled after it lost the lease"
        assert max(r["t"] for r in a.requests()) < min(r["t"] for r in b.requests())
        _deadline_wait(lambda: any("handed over to" in e.message and f"pid {b.pid}" in e.message
                                   for e in store.events(limit=200)), 30,
                       f"A to say it handed over: {[e.message for e in store.events(limit=20)]}")
    finally:
        if a is not None and a.p.poll() is None:
            a.p.send_signal(signal.SIGCONT)
        for p in (a, b):
            if p is not None:
                p.stop()
        store.close()


DAILY = 10  # mystic's requests a day in this test (Freepik's real figure: 6,000)
HOURLY = "6/h"  # the Upscayl key's budget here (its real one: 100/h)


def _mystic(sim) -> list:
    """Every request to Freepik's mystic service the simulator served (status and list)."""
    return [r for r in sim.requests if r.provider == "freepik" and "/mystic" in r.path]


def test_daily_and_hourly_counts_continue_across_a_kill_9_hand_over(target, tmp_path, sim_factory):
    """Freepik's per-service daily counter (mystic: 10 a day here) and Upscayl's hourly
    budget (6/h) go on across a hand-over: A is killed (-9) by the simulator as its 4th
    mystic request arrives; B takes both keys over, starts from the counts A stored
    (and reserved) in the leases, and stops at the daily limit: the simulator's log
    holds at most 10 mystic requests that day and no Upscayl request over 6/h.  (A B
    that started from zero would send 10 more.)"""
    sim = sim_factory(build_scenario(upscayl={"budget": HOURLY}), speed=1.0)
    config = tmp_path / "config.toml"
    config.write_text(sim.config_toml(("freepik",)) + "poll_interval = 0.5\n"
                      + sim.config_toml(("upscayl",)).split("\n", 2)[2] + "poll_interval = 0.5\n"
                      + "[engine]\nadaptive = false\n")
    store = _open(target)
    limits = json.dumps({"daily": {"freepik": {"mystic": DAILY}}})
    try:
        a = Proc("a", target, config, tmp_path, args=(limits,))
        a.wait_line("ready")
        b = Proc("b", target, config, tmp_path, args=(limits,))
        b.wait_line("ready")

        def kill_on_the_fourth(record) -> None:  # in the simulator, before it answers
            if record.provider == "freepik" and len(_mystic(sim)) >= 4:
                sim.sim.on_request = None
                os.kill(a.pid, signal.SIGKILL)
        sim.sim.on_request = kill_on_the_fourth
        now = sim.now()
        fp = [sim_task("freepik", f"fp{n}", "running", kind="mystic", created=now - 1, start=now - 0.5,
                       end=now + 3000) for n in range(3)]
        up = [sim_task("upscayl", f"up{n}", "running", created=now - 1, start=now - 0.5, end=now + 3000)
              for n in range(3)]
        sim.add(fp + up)
        store.add("freepik", [t.task_id for t in fp], kind="mystic", label="daily")
        store.add("upscayl", [t.task_id for t in up], label="hourly")
        a.p.wait(60)
        assert a.p.returncode == -signal.SIGKILL, a.stderr()
        by_a = len(_mystic(sim))
        assert by_a >= 4
        # B takes the keys over and spends what is left of mystic's day, then says so
        def stalled() -> bool:
            store.sync()
            tasks = [store.get(f"freepik:{t.task_id}") for t in fp]
            return all(t is not None and "daily limit of 10" in (t.stalled or "") for t in tasks)
        _deadline_wait(stalled, 60, "B to reach mystic's daily limit", lambda: _state(store, a, b))
        assert b.requests(), "B never polled after the hand-over"
        mystic = _mystic(sim)
        assert len(mystic) <= DAILY, f"{len(mystic)} mystic requests in a day of {DAILY}"
        assert len(mystic) > by_a, "B sent no mystic request: it did not take over"
        upscayl = [r for r in sim.requests if r.provider == "upscayl"]
        assert upscayl and not [r for r in upscayl if r.over_budget], "an Upscayl request over 6/h"
        assert len(upscayl) <= 6
        # what B stored: the day's count goes on in the lease (for whoever comes next)
        leases, _ = read_leases(store)
        (fp_lease,) = [i for i in leases.values() if i.provider == "freepik"]
        assert fp_lease.pid == b.pid and fp_lease.state["daily"]["mystic"]["used"] == DAILY
    finally:
        for p in list(_LIVE):
            p.stop()
        store.close()


# A test process that starts an engine process and dies (kill -9) before its finally runs
MIDDLE = r"""
import subprocess, sys, time
runner, db, config, log = sys.argv[1:5]
p = subprocess.Popen([sys.executable, "-c", runner, db, config, log], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, text=True)
print(p.pid, p.stdout.readline().strip(), flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie nobody reaped yet
    except OSError:
        return True


def test_an_engine_process_dies_with_the_test_that_started_it(tmp_path, sim_factory):
    """The orphan seen an hour after a run: an engine process whose test process was
    killed before it could stop it.  Its parent killed (-9), it leaves by itself."""
    sim, config, store = _setup(str(tmp_path / "tasks.db"), tmp_path, sim_factory, "600/m")
    store.close()
    log = tmp_path / "requests-child.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, RUNNER, str(tmp_path / "tasks.db"), str(config),
                               str(log)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    child = None
    try:
        ready, _, _ = select.select([middle.stdout], [], [], 60)
        assert ready, "the middle process said nothing"
        pid, word = middle.stdout.readline().split()
        child = int(pid)
        assert word == "ready"
        middle.kill()
        middle.wait()
        _deadline_wait(lambda: _gone(child), 30, f"the orphaned engine process {child} to leave")
    finally:
        if middle.poll() is None:
            middle.kill()
        middle.wait()
        middle.stdout.close()
        if child is not None and not _gone(child):
            os.kill(child, signal.SIGKILL)
