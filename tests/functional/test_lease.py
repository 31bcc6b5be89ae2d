"""Leases (tui/lease.py): one holder per provider key, on one SQLite file and on one
PostgreSQL store; expiry, hand-over, release, the shared budget state; no key stored.

Two ``Lease`` objects with different holder ids stand for two processes (the
process tests, tests/functional/test_lease_procs.py, run real ones)."""

from __future__ import annotations

import os
import sqlite3

import pytest

from tui.lease import TTL, Lease, key_id, read_leases
from tui.store import Store

from tests.pg import pg_db, pg_server, pg_url  # noqa: F401  (fixtures)

KEY = "sk-lease-test-9f8e7d6c5b4a"


class Wall:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request, tmp_path):
    """Two stores on one database (two processes' views of it)."""
    if request.param == "sqlite":
        a, b = Store(tmp_path / "tasks.db"), Store(tmp_path / "tasks.db")
    else:
        from tui.store_pg import PgStore

        url = request.getfixturevalue("pg_url")
        a, b = PgStore(url), PgStore(url)
    yield request.param, a, b
    a.close()
    b.close()


def _pair(kind: str, a, b, wall: Wall, clock: Wall):
    """Lease A and lease B of one key.  On PostgreSQL the lease clock is the server's,
    so expiry there is tested with a short TTL in real time instead."""
    ttl = TTL if kind == "sqlite" else 1.0
    la = Lease(a, "evolink", KEY, wall=wall, clock=clock, holder="host-a:1:aaa", ttl=ttl)
    lb = Lease(b, "evolink", KEY, wall=wall, clock=clock, holder="host-b:2:bbb", ttl=ttl)
    return la, lb


def _expire(kind: str, wall: Wall, clock: Wall, lease: Lease, holder_store) -> None:
    """Let a lease run out: the fake clock on SQLite, the server's on PostgreSQL."""
    if kind == "sqlite":
        wall.t += lease.ttl + 0.1
        clock.t += lease.ttl + 0.1
        return
    import time

    deadline = time.monotonic() + 30
    while True:  # wait for the server clock to pass the stored expiry (the event, not a sleep guess)
        leases, now = read_leases(holder_store)
        if leases[lease.name].expires <= now:
            return
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_one_holder_then_hand_over_on_expiry_with_the_budget_state(two_stores):
    kind, a, b = two_stores
    wall, clock = Wall(), Wall(100.0)
    la, lb = _pair(kind, a, b, wall, clock)
    assert la.shared and lb.shared
    assert la.acquire() and la.held and la.valid()
    assert not lb.acquire() and not lb.held
    assert lb.info is not None and lb.info.holder == "host-a:1:aaa" and lb.info.pid is not None
    assert lb.info.text().startswith("polled by ")
    # the holder stores its budget: 3 requests 1, 2, 5 s ago, a Retry-After 20 s away
    assert la.save({"recent_ages": [1.0, 2.0, 5.0], "retry_in": 20.0, "retry_state": "rate_limited",
                    "daily": {"mystic": {"limit": 6000, "used": 7, "reset_at": 1.0}}})
    assert not lb.acquire()  # renewed: still A's
    _expire(kind, wall, clock, la, a)
    assert lb.acquire() and lb.took_over
    state = lb.taken
    ages = sorted(state["recent_ages"])
    assert len(ages) == 3 and ages[0] >= 1.0 and ages[2] < 5.0 + 40
    assert 0 < state["retry_in"] <= 20.0 and state["retry_state"] == "rate_limited"
    assert state["daily"]["mystic"]["used"] == 7
    # A finds out: its save (renewal) fails, it holds nothing any more
    assert not la.save({"recent_ages": []})
    assert not la.held and not la.valid()


def test_release_hands_over_at_once_and_the_key_is_never_stored(two_stores, tmp_path):
    kind, a, b = two_stores
    wall, clock = Wall(), Wall(100.0)
    la, lb = _pair(kind, a, b, wall, clock)
    assert la.acquire()
    assert not lb.acquire()
    la.release({"recent_ages": [0.5]})
    assert lb.acquire() and lb.took_over and len(lb.taken["recent_ages"]) == 1
    assert lb.info.since is not None
    leases, _ = read_leases(a)
    assert list(leases) == [key_id("evolink", KEY)]
    assert KEY not in repr(leases) and KEY not in key_id("evolink", KEY)
    if kind == "sqlite":
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("tasks.db"))
        assert KEY.encode() not in raw


def test_holder_stops_counting_on_its_lease_before_anyone_may_take_it(tmp_path):
    a = Store(tmp_path / "t.db")
    wall, clock = Wall(), Wall(100.0)
    la = Lease(a, "evolink", KEY, wall=wall, clock=clock, holder="me")
    assert la.acquire() and la.valid() and not la.renew_due()
    clock.t += la.renew_after
    assert la.renew_due() and la.valid()
    clock.t += la.ttl - la.renew_after - la.margin  # our own clock says: too close to expiry
    assert not la.valid()
    assert la.acquire() and la.valid()  # renewed
    a.close()


def test_different_keys_have_different_leases_and_a_readonly_store_shares_nothing(tmp_path):
    a = Store(tmp_path / "t.db")
    one = Lease(a, "evolink", KEY, holder="x")
    other = Lease(a, "evolink", KEY + "-other", holder="y")
    assert one.name != other.name and one.name.startswith("evolink:")
    assert one.acquire() and other.acquire()
    a.close()
    ro = Store(tmp_path / "t.db", readonly=True)
    lease = Lease(ro, "evolink", KEY, holder="z")
    assert not lease.shared and lease.acquire() and lease.valid()
    ro.close()


def test_a_lease_table_that_cannot_be_written_never_stops_polling(tmp_path):
    a = Store(tmp_path / "t.db")
    lease = Lease(a, "evolink", KEY, holder="x")
    conn = a._conn
    conn.execute("BEGIN")  # someone left a transaction open on the connection: no write possible
    try:
        assert lease.acquire() and lease.problem
    finally:
        conn.execute("ROLLBACK")
    a.close()
    assert isinstance(conn, sqlite3.Connection)


# ---------------------------------------------------------------- through the engine and `quota`


async def test_a_follower_engine_sends_nothing_and_says_who_polls(tmp_path, sim_factory):
    """Another process (a Lease with another holder id) holds the key: this engine's
    rounds send no request (the simulator's log), its health and `quota` say
    'polled by HOST (pid N) since T'; once that holder gives the lease up, the engine
    takes over and polls."""
    from tui.config import parse_config
    from tui.engine import Engine
    from tui.engine.health import quota
    from tui.sim import build_scenario, sim_task

    sim = sim_factory(build_scenario(sim_task("evolink", "t1", "running")))
    config = parse_config(sim.config_toml(("evolink",)), "lease.toml")
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["t1"])
    other = Store(tmp_path / "tasks.db")
    holder = Lease(other, "evolink", sim.key("evolink"), holder="render-box:4242:abc")
    assert holder.acquire()
    engine = Engine(config, store)
    try:
        await engine.poll_once()
        assert [r for r in sim.requests if r.provider == "evolink"] == []
        (h,) = engine.health()
        assert h.polled_by is not None and h.polled_by.startswith("polled by ")
        assert "(pid " in h.polled_by and h.lease["pid"] == holder.info.pid
        (row,) = quota(store, config)
        assert row["polled_by"] == h.polled_by and row["lease"]["live"] is True
        holder.release()
        (row,) = quota(store, config)
        assert row["polled_by"] is None and row["lease"]["live"] is False
        await engine.poll_once()
        assert [r for r in sim.requests if r.provider == "evolink" and r.endpoint == "status"]
        store.sync()
        assert store.get("evolink:t1").state == "running"
        (h,) = engine.health()
        assert h.lease["pid"] == os.getpid()  # ours now
    finally:
        await engine.stop()
        store.close()
        other.close()


def test_a_database_file_replaced_under_the_store_gets_its_lease_table_again(tmp_path):
    """The store reopens a database file replaced at its path (Store.check_file): the
    lease is taken in the new file, whose lease table is made then."""
    import shutil

    path = tmp_path / "t.db"
    store = Store(path)
    lease = Lease(store, "evolink", KEY, holder="x")
    assert lease.acquire() and not lease.problem
    fresh = Store(tmp_path / "new.db")
    fresh.close()
    for suffix in ("", "-wal", "-shm"):
        src = tmp_path / f"new.db{suffix}"
        if src.exists():
            shutil.copy(src, tmp_path / f"t.db{suffix}.new")
    (tmp_path / "t.db.new").replace(path)
    store.sync()  # notices the replaced file and reopens it
    assert lease.acquire() and lease.problem is None
    leases, _ = read_leases(store)
    assert lease.name in leases
    store.close()


async def test_a_take_over_polls_each_task_when_the_last_holder_planned(tmp_path, sim_factory):
    """In virtual time: one engine polls and stops, another holder takes the key, a
    second engine starts as a follower, then the holder gives the key up: the second
    engine asks the tasks when the first planned (Task.next_poll_at), not all at once."""
    from tui.config import parse_config
    from tui.engine import Engine
    from tui.sim import build_scenario, sim_task

    wall = 1_800_000_000.0
    scenario = build_scenario(*(sim_task("evolink", f"p{n}", "running", created=-10.0, start=-5.0, end=5000.0)
                                for n in range(3)))
    scenario.epoch = wall
    sim = sim_factory(scenario)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["p0", "p1", "p2"])
    vt = [0.0]
    config = parse_config(f'[providers.evolink]\napi_key = "{sim.key("evolink")}"\nbase_url = "{sim.base_url}"\n'
                          'poll_interval = 1.0\nrate_limit = "600/s"\nbalance_interval = 0\n')
    other = Store(tmp_path / "tasks.db")
    holder = Lease(other, "evolink", sim.key("evolink"), holder="render-box:4242:abc",
                   wall=lambda: wall + vt[0], clock=lambda: vt[0])

    def status_polls(after: float) -> list:
        return [r for r in sim.requests if r.endpoint == "status" and r.time > after]

    async def step_to(engine, until: float) -> None:
        while vt[0] <= until:
            sim.sim.clock.set(vt[0])
            await engine.poll_due()
            vt[0] += 1.0

    first = Engine(config, store, clock=lambda: vt[0], wall=lambda: wall + vt[0])
    try:
        await step_to(first, 0)
    finally:
        await first.stop()  # gives the lease up
    assert len(status_polls(-1)) == 3
    planned = [store.get(f"evolink:p{n}").next_poll_at for n in range(3)]
    assert all(p is not None and p - wall > 100 for p in planned), planned
    assert holder.acquire()
    engine = Engine(config, store, clock=lambda: vt[0], wall=lambda: wall + vt[0])
    try:
        await step_to(engine, 20)  # following: nothing sent
        assert status_polls(0.5) == []
        holder.release()
        await step_to(engine, 100)  # ours now: nothing is due before the planned times
        assert status_polls(0.5) == []
        (h,) = engine.health()
        assert h.lease["pid"] == os.getpid()
    finally:
        await engine.stop()
        store.close()
        other.close()


def test_a_holder_whose_process_is_gone_from_this_machine_is_replaced_at_once(tmp_path):
    """kill -9 on the same machine: the dead holder's pid is gone (same boot), so its
    lease is taken at once, without waiting for it to run out; a holder of another
    machine or boot, or a live pid, is never judged dead."""
    import subprocess
    import sys

    from tui.lease import BOOT, HOST, holder_dead

    if not BOOT:
        pytest.skip("no boot id on this system (/proc/sys/kernel/random/boot_id)")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid no longer exists
    dead = f"{HOST}:{gone.pid}:abc:{BOOT}"
    alive = f"{HOST}:{os.getppid()}:abc:{BOOT}"
    assert holder_dead(dead)
    assert not holder_dead(alive)
    assert not holder_dead(f"elsewhere:{gone.pid}:abc:{'0' * 32}")  # another machine or boot
    assert not holder_dead("old-format:123:abc")
    a, b = Store(tmp_path / "t.db"), Store(tmp_path / "t.db")
    wall, clock = Wall(), Wall(100.0)
    la = Lease(a, "evolink", KEY, wall=wall, clock=clock, holder=dead)
    lb = Lease(b, "evolink", KEY, wall=wall, clock=clock, holder=f"{HOST}:{os.getpid()}:me:{BOOT}")
    assert la.acquire()
    assert lb.acquire() and lb.took_over and lb.previous.holder == dead  # no wait for its expiry
    assert not lb.previous.expires <= wall()
    a.close()
    b.close()


def test_a_hostile_host_name_in_the_lease_row_is_inert_text(tmp_path):
    """Anyone with write access to a shared store can write the lease row: its host
    reaches the screen only as cleaned text (no markup, no escape sequence)."""
    from tui.config import parse_config
    from tui.engine.health import quota

    store = Store(tmp_path / "t.db")
    lease = Lease(store, "evolink", KEY, holder="x")
    assert lease.acquire()
    store._conn.execute("UPDATE leases SET host = ?", ("\x1b]52;c;aGk=\x07[bold red]evil\x1b[2J",))
    config = parse_config(f'[providers.evolink]\napi_key = "{KEY}"\n')
    (row,) = quota(store, config)
    text = row["polled_by"]
    assert text.startswith("polled by ") and "\x1b" not in text and "\x07" not in text
    other = Lease(store, "evolink", KEY, holder="y")
    assert not other.acquire()
    assert "\x1b" not in other.info.text()
    store.close()


async def test_a_refused_key_stops_whoever_takes_it_over(tmp_path, sim_factory, sim_fault, monkeypatch):
    """One refusal stops everyone, as one 429 pauses everyone: the holder is refused
    (401) and stops; the engine that takes the key over sends nothing and says the key
    was refused; `R` (retry_now) still asks once."""
    from tui.config import parse_config
    from tui.engine import Engine
    from tui.engine.health import AUTH_FAILED
    from tui.sim import build_scenario, sim_task

    sim = sim_factory(build_scenario(sim_task("evolink", "k1", "running"),
                                     faults=[sim_fault("auth", "evolink")]))
    config = parse_config(sim.config_toml(("evolink",)), "lease.toml")
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["k1"])
    first = Engine(config, store)
    try:
        await first.poll_once()
        (h,) = first.health()
        assert h.state == AUTH_FAILED
    finally:
        await first.stop()  # gives the lease up, with what it knows of the key
    sent = len([r for r in sim.requests if r.provider == "evolink"])
    assert sent >= 1
    import tui.lease

    monkeypatch.setattr(tui.lease, "HOLDER", f"other-host:{os.getpid()}:bbbbbbbbbbbb:{tui.lease.BOOT}")
    other = Store(tmp_path / "tasks.db")  # another process (another holder id)
    second = Engine(config, other)
    try:
        await second.poll_once()
        assert len([r for r in sim.requests if r.provider == "evolink"]) == sent  # nothing more
        (h,) = second.health()
        assert h.state == AUTH_FAILED and "refused" in (h.cause or "")
        assert any("key refused by the provider" in e.message for e in other.events(limit=20))
        second.retry_now("evolink")  # the user asks: one probe goes
        await second.poll_once()
        assert len([r for r in sim.requests if r.provider == "evolink"]) == sent + 1
    finally:
        await second.stop()
        other.close()
        store.close()
