"""Who polls, in the dashboard's header (issue 16): when another process holds a
provider key's lease, the header says so ("evolink polled by HOST (pid N) since
T" where there is room, "evolink ⇄ HOST:N" at 80 columns), from the lease row in
the store; a hostile host name is inert text.  Under Pilot over a real SQLite
file; the lease is taken by a real other process (or another store), never
faked in the app."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from test_app_fixtures import clock, fill_store, plain, wait_for
from tui.app import TaskTUI, make_app
from tui.lease import Lease
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-header-test-key"
HOSTILE = "\x1b]52;c;aGk=\x07render\x1b[31m[b red]box\x1b[2J.example.com"

# Another process: takes the key's lease (a long TTL: a loaded machine must not let it
# run out mid-test) under the host name given, says "ready", gives the lease up when told
# ("release" on stdin) and leaves at EOF (its test is over, whatever happened).
HOLDER = r"""
import json, sys
import tui.lease as lease
from tui.store import Store

db, key, host = json.loads(sys.argv[1])
lease.HOST = host
store = Store(db)
held = lease.Lease(store, "evolink", key, ttl=600.0)
assert held.acquire()
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "release":
        held.release()
        print("released", flush=True)
store.close()
"""


class Holder:
    def __init__(self, db: Path, host: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.p = subprocess.Popen([sys.executable, "-c", HOLDER, json.dumps([str(db), KEY, host])],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def line(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} from the holder process"
            ready, _, _ = select.select([self.p.stdout], [], [], left)
            if ready:
                got = self.p.stdout.readline()
                assert got, "the holder process ended"
                if got.strip() == text:
                    return

    def tell(self, text: str) -> None:
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def close(self) -> None:
        try:
            self.p.stdin.close()  # EOF: it leaves
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if self.p.poll() is None:
                self.p.kill()
            self.p.wait()
            self.p.stdout.close()


def _config(tmp_path: Path):
    (tmp_path / "config.toml").write_text(f'[providers.evolink]\napi_key = "{KEY}"\n', encoding="utf-8")
    from tui.config import load_config

    return load_config(tmp_path / "config.toml")


async def test_the_header_says_who_polls_a_key_held_by_another_process(tmp_path):
    """A read-only dashboard (no engine): another process holds the evolink key's
    lease under a hostile host name; the header says who polls, in full where there
    is room and compact at 80 columns, with no escape sequence; once that process
    gives the lease up, the header no longer says it."""
    store = fill_store(tmp_path / "tasks.db")
    holder = Holder(tmp_path / "tasks.db", HOSTILE)
    try:
        holder.line("ready")
        app = make_app(_config(tmp_path), store, clock=clock, readonly=True)
        async with app.run_test(size=(250, 40)) as pilot:
            header = app.query_one("#header")
            await wait_for(pilot, lambda: "polled by" in plain(header))
            text = plain(header)
            since = time.strftime("%H:%M:%S", time.localtime(_since(store)))
            assert f"evolink polled by render[b red]box.example.com (pid {holder.p.pid}) since {since}" in text
            assert "\x1b" not in text and "\x07" not in text
            assert "sort: updated" in text  # nothing else pushed out
            await pilot.resize_terminal(80, 24)
            await wait_for(pilot, lambda: "⇄" in plain(header))
            text = plain(header)
            assert f"evolink ⇄ render[b red]box:{holder.p.pid}" in text, text
            assert "polled by" not in text and "sort updated" in text and "\x1b" not in text
            holder.tell("release")
            holder.line("released")
            await wait_for(pilot, lambda: "⇄" not in plain(header))
    finally:
        holder.close()
        store.close()


def _since(store: Store) -> float:
    from tui.lease import read_leases

    (info,) = read_leases(store)[0].values()
    return info.since


class Followed:
    """A dashboard's engine over a store whose evolink key another store (another
    holder, "gpu-7.lab") leases: the engine follows it and sends nothing."""

    def __init__(self, tmp_path: Path, sim_factory) -> None:
        from tui.config import parse_config
        from tui.engine import Engine
        from tui.sim import build_scenario, sim_task

        self.sim = sim_factory(build_scenario(sim_task("evolink", "t1", "running")))
        self.config = parse_config(self.sim.config_toml(("evolink",)), "lease.toml")
        self.store = Store(tmp_path / "tasks.db")
        self.store.add("evolink", ["t1"])
        self.other = Store(tmp_path / "tasks.db")
        self.lease = Lease(self.other, "evolink", self.sim.key("evolink"), holder="gpu-7.lab:31337:abc",
                           ttl=600.0)
        assert self.lease.acquire()
        self.engine = Engine(self.config, self.store)

    def app(self) -> TaskTUI:
        return TaskTUI(self.config, self.store, self.engine, clock=clock)

    def sent(self) -> list:
        return [r for r in self.sim.requests if r.provider == "evolink"]

    async def close(self) -> None:
        await self.engine.stop()
        self.store.close()
        self.other.close()


async def test_a_polling_dashboard_that_follows_another_holder_says_who_polls(tmp_path, sim_factory):
    """A dashboard with its engine: another store (another holder) has the key; the
    engine follows (sends nothing) and the header names that holder; nothing is said
    of a key the dashboard polls itself."""
    f = Followed(tmp_path, sim_factory)
    try:
        app = f.app()
        async with app.run_test(size=(80, 24)) as pilot:
            header = app.query_one("#header")
            await wait_for(pilot, lambda: "⇄" in plain(header))
            assert f"evolink ⇄ {f.lease.info.host.split('.')[0][:16]}:{os.getpid()}" in plain(header)
            assert f.sent() == []
            f.lease.release()  # the other one stops: ours polls, and the header says nothing of it
            await wait_for(pilot, f.sent)
            await wait_for(pilot, lambda: "⇄" not in plain(header))
    finally:
        await f.close()


async def test_a_following_dashboard_shows_the_holders_trouble_not_its_idle_workers(tmp_path, sim_factory):
    """The holder of the evolink key stores its health as rate limited while a dashboard
    follows it (sends nothing, its own worker idle and "ok"): the header says "evolink
    rate limited", as the quota pane and `tasktui quota` do, not nothing."""
    from tui.engine.health import ProviderHealth

    f = Followed(tmp_path, sim_factory)
    try:
        app = f.app()
        async with app.run_test(size=(160, 30)) as pilot:
            header = app.query_one("#header")
            await wait_for(pilot, lambda: "polled by" in plain(header))
            assert "rate limited" not in plain(header)
            # the holder's round: a 429, stored with its health
            stored = ProviderHealth(name="evolink", state="rate_limited", cause="429 Too many requests",
                                    retry_at=time.time() + 3600, requests=5, rate_limited=1,
                                    saved_at=time.time())
            f.other.save_counters("evolink", stored.encode())
            await wait_for(pilot, lambda: "rate limited" in plain(header))
            assert f.engine.workers["evolink"].state == "ok"  # its own worker: idle, following
            assert f.sent() == []
    finally:
        await f.close()


async def test_a_read_only_dashboard_shows_the_state_of_a_key_another_process_polls_now(tmp_path):
    """A read-only dashboard (no engine) over a store whose evolink key another process
    leases and polls: that process stored "rate limited": the header says so and the
    provider's card in the quota pane shows it, not "offline" (which is what it shows,
    with the last state known, once nobody holds the key)."""
    from tui.engine.health import ProviderHealth

    store = fill_store(tmp_path / "tasks.db")
    other = Store(tmp_path / "tasks.db")
    lease = Lease(other, "evolink", KEY, holder="gpu-7.lab:31337:abc", ttl=600.0)
    assert lease.acquire()
    stored = ProviderHealth(name="evolink", state="rate_limited", cause="429 Too many requests",
                            retry_at=time.time() + 3600, requests=5, rate_limited=1, saved_at=time.time())
    other.save_counters("evolink", stored.encode())
    try:
        app = make_app(_config(tmp_path), store, clock=clock, readonly=True)
        async with app.run_test(size=(200, 40)) as pilot:
            from tui.widgets.quota import ProviderCard

            header = app.query_one("#header")
            (evolink,) = [c for c in app.query(ProviderCard) if c.provider == "evolink"]

            def card() -> str:  # evolink's card in the quota pane (the table reads the stored health alone)
                return plain(evolink.query_one(".card-text"))

            await wait_for(pilot, lambda: "evolink rate limited" in plain(header))
            await wait_for(pilot, lambda: "limited" in card() and "offline" not in card())
            lease.release()  # nobody polls it now: what is stored is the last state known
            await wait_for(pilot, lambda: "evolink rate limited" not in plain(header))
            await wait_for(pilot, lambda: "offline" in card())
    finally:
        store.close()
        other.close()
