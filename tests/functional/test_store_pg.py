"""What only the PostgreSQL store has: schema versions, connection trouble, the
LISTEN/NOTIFY feed, the writers' lock, ``db migrate`` and ``db copy`` — on a real
server (tests/pg.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

import tui.store_pg as store_pg
from tests.pg import PASSWORD, PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from tui.model import Event, Task
from tui.store import Store, StoreBusy, StoreError, StoreWriteError
from tui.store_pg import PG_SCHEMA_VERSION, PgStore
from tui.stores import db_copy, db_migrate, describe, open_store, run_db, store_target

ROOT = Path(__file__).resolve().parents[2]


def admin(url: str):
    return psycopg.connect(url, autocommit=True)


def wait_for(store: PgStore, cond, what: str) -> set[str]:
    """sync() until ``cond()``, waking on notifications (never a fixed sleep)."""
    keys = set(store.sync())
    deadline = time.monotonic() + 15
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        store.wait(0.5)
        keys |= store.sync()
    return keys


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens there once closed


# ---------------------------------------------------------------- choosing the backend


def test_open_store_chooses_by_target(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(tmp_path / "x.db") as s:
        assert type(s) is Store
    with open_store(pg_url) as s:
        assert isinstance(s, PgStore) and s.path is None
        assert PASSWORD not in s.url and s.url.startswith("postgresql://postgres@127.0.0.1:")
    monkeypatch.setenv("TASKTUI_DB", pg_url)
    assert store_target(None) == pg_url  # a URL stays a string (Path would fold its //)
    assert store_target(str(tmp_path / "y.db")) == tmp_path / "y.db"
    monkeypatch.delenv("TASKTUI_DB")
    assert store_target(None, config_url=pg_url) == pg_url
    assert PASSWORD not in describe(pg_url)


def test_same_memory_state_as_the_sqlite_store(tmp_path: Path, pg_url: str) -> None:
    """PgStore sets up Store.__init__'s attributes itself: none may be missing."""
    with Store(tmp_path / "x.db") as a, PgStore(pg_url) as b:
        assert set(vars(a)) - set(vars(b)) == set()


# ---------------------------------------------------------------- schema


def test_schema_created_versioned_and_newer_refused(pg_url: str) -> None:
    with PgStore(pg_url) as s:  # a writable open of an empty database creates the schema
        s.add("evolink", ["a"])
    with admin(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(PG_SCHEMA_VERSION,)]
        conn.execute("UPDATE schema_version SET version = 99")
    for readonly in (False, True):
        with pytest.raises(StoreError, match="newer") as err:
            PgStore(pg_url, readonly=readonly)
        assert "\n" not in str(err.value) and PASSWORD not in str(err.value)
    with pytest.raises(StoreError, match="newer"):
        db_migrate(pg_url)


def test_readonly_open_without_schema_asks_for_migrate(pg_url: str) -> None:
    with pytest.raises(StoreError, match="run tasktui db migrate"):
        PgStore(pg_url, readonly=True)
    with admin(pg_url) as conn:  # and created nothing
        assert conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None
    assert f"schema created (version {PG_SCHEMA_VERSION})" in db_migrate(pg_url)
    assert "nothing to do" in db_migrate(pg_url)
    with PgStore(pg_url, readonly=True) as s:
        assert len(s) == 0 and s.events() == [] and s.counters() == {}


def test_an_older_schema_is_upgraded_by_db_migrate_only(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with PgStore(pg_url) as s:
        s.add("evolink", ["a"], label="kept")
    steps = store_pg.PG_MIGRATIONS + [["ALTER TABLE tasks ADD COLUMN note text",
                                       "UPDATE tasks SET note = 'v2'"]]
    monkeypatch.setattr(store_pg, "PG_MIGRATIONS", steps)
    monkeypatch.setattr(store_pg, "PG_SCHEMA_VERSION", len(steps))
    monkeypatch.setattr(store_pg.pg_migrate, "__defaults__", (steps, "database"))
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"schema version {PG_SCHEMA_VERSION}, this tasktui needs"
                                             rf" {PG_SCHEMA_VERSION + 1}; run tasktui db migrate"):
            PgStore(pg_url, readonly=readonly)
    assert db_migrate(pg_url).endswith(f"schema upgraded from version {PG_SCHEMA_VERSION} to {PG_SCHEMA_VERSION + 1}")
    with PgStore(pg_url) as s:
        assert s.get("evolink:a").label == "kept"
    with admin(pg_url) as conn:
        assert conn.execute("SELECT note FROM tasks").fetchall() == [("v2",)]


def test_db_migrate_on_a_sqlite_path(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    assert "schema created" in db_migrate(db)
    assert "nothing to do" in db_migrate(db)


# ---------------------------------------------------------------- bad input


def test_unreachable_server_is_one_line(pg_server: PgServer) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed_port()}/x"
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect") as err:
        open_store(url)
    message = str(err.value)
    assert "\n" not in message and PASSWORD not in message
    assert message.startswith("postgresql://postgres@127.0.0.1:")
    assert time.monotonic() - started < store_pg.CONNECT_TIMEOUT + 5  # no retry loop at open


def test_wrong_password_is_one_line_without_any_password(pg_server: PgServer, pg_db: str) -> None:
    wrong = "wrong-Pa55word"
    with pytest.raises(StoreError, match="password authentication failed") as err:
        open_store(pg_server.url(pg_db, password=wrong))
    message = str(err.value)
    assert "\n" not in message and wrong not in message and PASSWORD not in message


def test_password_scrubbed_even_if_the_server_echoes_it(pg_url: str) -> None:
    with PgStore(pg_url) as s:
        assert PASSWORD not in s._say(Exception(f"boom {PASSWORD} boom")) == "boom *** boom"


def test_text_with_nul_is_stored_without_it(pg_url: str) -> None:
    with PgStore(pg_url) as s:
        s.add("evolink", ["a"], label="la\x00bel")
        s.log([Event(time=1.0, provider="evolink", message="a\x00b")])
        s.apply([Task("evolink", "a", state="failed", error="bad\x00 thing", raw={"k": "v\x00"})])
    with PgStore(pg_url) as s:
        t = s.get("evolink:a")
        assert (t.label, t.error) == ("label", "bad thing")
        assert s.events()[0].message == "ab" and s.raw("evolink:a") == {"k": "v\x00"}  # JSON keeps \\u0000


def test_connection_dropped_between_writes_reconnects(pg_server: PgServer, pg_db: str) -> None:
    with open_store(pg_server.url(pg_db)) as s:
        s.add("evolink", ["a"])
        assert pg_server.terminate(pg_db) >= 1
        assert s.add("evolink", ["b"]) == ["evolink:b"]
        assert pg_server.terminate(pg_db) >= 1
        assert s.history("evolink:b") == [] and s.events() == []
    with open_store(pg_server.url(pg_db)) as again:
        assert again.keys() == ["evolink:a", "evolink:b"]


def test_connection_dropped_mid_transaction_nothing_lost_nothing_twice(
        pg_server: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(pg_server.url(pg_db)) as s:
        s.add("evolink", ["a"])
        real = store_pg._PgTx.history
        dropped: list[int] = []

        def history_then_drop(tx, *args, **kw):
            real(tx, *args, **kw)
            if not dropped:  # inside the first attempt's transaction, before COMMIT
                dropped.append(pg_server.terminate(pg_db))

        monkeypatch.setattr(store_pg._PgTx, "history", history_then_drop)
        got = s.apply([Task("evolink", "a", state="running", provider_status="p")], events=[
            Event(time=1.0, provider="evolink", message="round 1")])
        assert dropped == [1] and got == {"evolink:a"}
    with open_store(pg_server.url(pg_db)) as again:
        assert again.get("evolink:a").state == "running"
        assert [h[1:] for h in again.history("evolink:a")] == [("running", "p")]
        assert [e.message for e in again.events()] == ["round 1"]


def test_connection_lost_during_commit_that_landed_is_not_done_twice(
        pg_server: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(pg_server.url(pg_db)) as s:
        s.add("evolink", ["a"])
        real = store_pg._PgConn.execute
        lost: list[bool] = []

        def commit_then_lose_the_answer(self, sql, params=None):
            if sql == "COMMIT" and not lost and self.raw.info.transaction_status != 0:
                real(self, sql, params)
                lost.append(True)
                self.raw.close()
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return real(self, sql, params)

        monkeypatch.setattr(store_pg._PgConn, "execute", commit_then_lose_the_answer)
        assert s.add("evolink", ["b"]) == ["evolink:b"]  # it landed: reported as added, once
        s.log([Event(time=2.0, provider="evolink", message="once")])
        assert lost == [True]
    with open_store(pg_server.url(pg_db)) as again:
        assert again.keys() == ["evolink:a", "evolink:b"]
        assert [e.message for e in again.events()] == ["once"]


def test_server_gone_for_good_is_one_store_write_error(
        pg_server: PgServer, pg_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_pg, "RETRY_DEADLINE", 0.5)
    with open_store(pg_server.url(pg_db)) as s:
        s.add("evolink", ["a"])
        s._url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed_port()}/{pg_db}"  # moved away
        pg_server.terminate(pg_db)
        with pytest.raises(StoreWriteError, match="cannot write to postgresql://postgres@") as err:
            s.add("evolink", ["b"])
        assert "\n" not in str(err.value) and PASSWORD not in str(err.value) and "gave up" in str(err.value)
        assert s.keys() == ["evolink:a"]  # nothing changed in memory
        # given up a moment ago: the next calls say so at once, without a connection attempt
        attempts: list[int] = []
        real = s._connect
        s._connect = lambda *a, **kw: attempts.append(1) or real(*a, **kw)
        with pytest.raises(StoreWriteError, match="gave up"):
            s.add("evolink", ["c"])
        with pytest.raises(StoreError, match="cannot"):
            s.events()
        assert attempts == []
        with pytest.raises(StoreError, match="cannot connect"):
            s.sync()
        # the server is back (the URL was right again): after the pause, all works
        s._url = pg_server.url(pg_db)
        s._down_until = 0.0
        assert s.add("evolink", ["b"]) == ["evolink:b"] and s._down_reason is not None
        assert s.add("evolink", ["c"]) == ["evolink:c"]


def test_a_writer_holding_the_lock_too_long_is_store_busy(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_pg, "LOCK_TIMEOUT_MS", 200)
    with PgStore(pg_url) as s, admin(pg_url) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT value FROM meta WHERE name = 'seq' FOR UPDATE")
        with pytest.raises(StoreBusy, match="lock"):
            s.add("evolink", ["a"])
        holder.execute("ROLLBACK")
        assert s.add("evolink", ["a"]) == ["evolink:a"]


def test_a_session_frozen_inside_a_write_does_not_hold_the_others(pg_url: str) -> None:
    """A process frozen (SIGSTOP) inside a write holds the writers' lock: the server ends its
    session after IDLE_TX_TIMEOUT_MS, before another writer's LOCK_TIMEOUT_MS runs out, so
    that writer's add lands instead of failing StoreBusy (seen: a lease holder blocked 60 s)."""
    assert store_pg.IDLE_TX_TIMEOUT_MS < store_pg.LOCK_TIMEOUT_MS / 2
    with PgStore(pg_url) as frozen, PgStore(pg_url) as s:
        conn = frozen._require_conn()  # the store's own session, with the store's settings
        conn.execute("BEGIN")
        conn.execute("SELECT value FROM meta WHERE name = 'seq' FOR UPDATE")
        # ...and the frozen process sends nothing more: the other waits, then gets the lock
        assert s.add("evolink", ["a"]) == ["evolink:a"]
        assert conn.broken or frozen._conn is None or _session_ended(conn)


def _session_ended(conn) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return True
    return False


# ---------------------------------------------------------------- change feed


def test_idle_sync_sends_nothing_to_the_server(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with PgStore(pg_url) as s:
        s.add("evolink", ["a"])
        wait_for(s, lambda: s._listen is not None, "listening")
        s.wait(0.0)
        s.sync()
        sent: list[str] = []
        real = store_pg._PgConn.execute
        monkeypatch.setattr(store_pg._PgConn, "execute",
                            lambda self, sql, params=None: sent.append(sql) or real(self, sql, params))
        for _ in range(5):
            assert s.sync() == set()
        assert sent == []


def test_feed_survives_a_lost_listening_connection(pg_server: PgServer, pg_db: str) -> None:
    url = pg_server.url(pg_db)
    with open_store(url) as mine, open_store(url) as theirs:
        mine.sync()
        assert mine._listen is not None
        pg_server.terminate(pg_db)  # both of mine: the listener and the main connection
        theirs.add("evolink", ["while-nobody-listened"])  # reconnects, writes, notifies nobody here
        keys = wait_for(mine, lambda: "evolink:while-nobody-listened" in mine, "catch-up after reconnect")
        assert keys == {"evolink:while-nobody-listened"}
        theirs.add("evolink", ["after"])
        wait_for(mine, lambda: "evolink:after" in mine, "the reopened listener gets notifications")


def test_another_process_write_arrives_by_notify(pg_url: str) -> None:
    with open_store(pg_url) as mine:
        mine.sync()
        code = textwrap.dedent(f"""
            from tui.stores import open_store
            with open_store({pg_url!r}) as s:
                s.add("comfy", ["p1", "p2"], label="from-cli")
        """)
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60, stdin=subprocess.DEVNULL)
        assert mine.wait(15.0)  # woken by the NOTIFY, not by a timer
        keys = wait_for(mine, lambda: len(mine) == 2, "the subprocess's tasks")
        assert keys == {"comfy:p1", "comfy:p2"} and mine.get("comfy:p1").label == "from-cli"


def test_tombstones_purged_by_another_store_force_a_reload(pg_url: str) -> None:
    clock_now = [1_800_000_000.0]
    clock = lambda: clock_now[0]  # noqa: E731
    with PgStore(pg_url, clock=clock) as w:
        w.add("evolink", ["a", "b"])
    stale = PgStore(pg_url, clock=clock)
    stale.sync()
    with PgStore(pg_url, clock=clock) as w:
        w.remove(["evolink:a"])
    clock_now[0] += store_pg.TOMBSTONE_DAYS * 86400 + 1
    with PgStore(pg_url, clock=clock):  # opening purges the old tombstone
        pass
    with admin(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM tasks WHERE key = 'evolink:a'").fetchone()[0] == 0
    wait_for(stale, lambda: stale.keys() == ["evolink:b"], "reload after purge")
    stale.close()


# ---------------------------------------------------------------- db copy


def fill(store: Store) -> None:
    store.add("evolink", ["a", "b"], kind="video", label="L")
    store.add("comfy", ["c"])
    store.apply([Task("evolink", "a", state="running", provider_status="processing", progress=10.0,
                      raw={"id": "a"}, updated_at=100.0),
                 Task("comfy", "c", state="failed", error="boom", updated_at=101.0, details={"node": "7"})],
                events=[Event(time=1.0, provider="evolink", message="hello", status=429, kind="rate_limited",
                              retry_after=3.0)],
                counters={"evolink": {"requests": 5}})
    store.apply([Task("evolink", "a", state="succeeded", provider_status="completed",
                      results=["https://r/a.png"], updated_at=102.0)],
                health={"evolink:b": {"failed_polls": 2, "last_error": "HTTP 503"}})
    store.set_files("evolink:a", ["/tmp/a.png"])
    store.remove(["evolink:b"])
    store.add("evolink", ["gone"])
    store.remove(["evolink:gone"])


def snapshot(store: Store) -> tuple:
    return ([t.to_dict() for t in store.tasks()],
            {k: store.history(k) for k in store.keys()},
            {k: store.raw(k) for k in store.keys()},
            store.events(), store.counters())


def test_db_copy_sqlite_to_pg_and_back(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "src.db"
    with Store(src) as s:
        fill(s)
        want = snapshot(s)
    line = db_copy(src, pg_url)
    assert line.startswith("copied 2 task(s), 3 history row(s), 1 event(s), 1 provider counter(s) from ")
    assert PASSWORD not in line
    with open_store(pg_url) as p:
        assert snapshot(p) == want
    assert db_copy(src, pg_url).startswith("copied 0 task(s), 0 history row(s), 0 event(s), 0 provider")
    back = tmp_path / "back.db"
    db_copy(pg_url, back)
    with Store(back) as b:
        assert snapshot(b) == want
        assert b.add("evolink", ["a"]) == []  # and the copy works as a store
    with pytest.raises(StoreError, match="same store"):
        db_copy(back, back)


def test_db_copy_into_postgresql_leaves_fresh_statistics(tmp_path: Path, pg_url: str) -> None:
    """After a bulk copy the planner knows the tables' sizes (ANALYZE), so the first
    `ls` does not sort half the table per page on a guess of ~70 rows."""
    with Store(tmp_path / "a.db") as a:
        fill(a)
    db_copy(str(tmp_path / "a.db"), pg_url)
    with admin(pg_url) as conn:
        # (pg_class.reltuples is written by ANALYZE in its transaction; the statistics views lag)
        rows = dict(conn.execute("SELECT relname, reltuples FROM pg_class"
                                 " WHERE relname IN ('tasks', 'history')").fetchall())
    assert rows == {"tasks": 2.0, "history": 3.0}, rows  # a, c (b was removed); their history


def test_db_copy_into_a_store_with_tasks_keeps_theirs(tmp_path: Path, pg_url: str) -> None:
    src = tmp_path / "src.db"
    with Store(src) as s:
        s.add("evolink", ["a", "b"], label="from-laptop")
    with open_store(pg_url) as p:
        p.add("evolink", ["a"], label="team")
    line = db_copy(src, pg_url)
    assert line.startswith("copied 1 task(s)") and line.endswith("1 task(s) already there left as they are")
    with open_store(pg_url) as p:
        assert [(t.key, t.label) for t in p.tasks()] == [("evolink:a", "team"), ("evolink:b", "from-laptop")]


def test_run_db_commands(tmp_path: Path, pg_url: str) -> None:
    import argparse

    from tui.stores import add_db_parser

    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db")
    add_db_parser(parser.add_subparsers(dest="command"), [common])
    said: list[str] = []
    assert run_db(parser.parse_args(["db", "migrate", "--db", pg_url]), out=said.append) == 0
    with Store(tmp_path / "s.db") as s:
        s.add("evolink", ["a"])
    assert run_db(parser.parse_args(["db", "copy", str(tmp_path / "s.db"), pg_url]), out=said.append) == 0
    assert said[0].endswith(f"schema created (version {PG_SCHEMA_VERSION})") and said[1].startswith("copied 1 task(s)")
    assert all(PASSWORD not in line for line in said)


def test_a_writer_waits_for_another_and_catches_up_under_the_lock(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers at once: the second waits for the first's COMMIT, then plans on what
    it committed (the same task is not inserted twice; seq numbers stay in order)."""
    import threading

    with PgStore(pg_url) as mine, PgStore(pg_url) as theirs:
        inside, release = threading.Event(), threading.Event()
        real = store_pg._PgTx.insert

        def insert_and_hold(tx, task, raw=None):
            real(tx, task, raw)
            if tx.store is theirs and not inside.is_set():
                inside.set()
                assert release.wait(30)

        monkeypatch.setattr(store_pg._PgTx, "insert", insert_and_hold)
        results: dict[str, object] = {}

        def run(name: str, store: PgStore) -> None:
            try:
                results[name] = store.add("evolink", ["x"])
            except Exception as exc:  # the test wants to see it
                results[name] = exc

        a = threading.Thread(target=run, args=("theirs", theirs))
        a.start()
        assert inside.wait(30)
        b = threading.Thread(target=run, args=("mine", mine))
        b.start()
        with admin(pg_url) as conn:  # wait until mine is blocked on theirs' lock
            deadline = time.monotonic() + 30
            while not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                   " AND wait_event_type = 'Lock'").fetchone()[0]:
                assert time.monotonic() < deadline, "the second writer never waited for the lock"
                conn.execute("SELECT pg_sleep(0.01)")
        release.set()
        a.join(30)
        b.join(30)
        assert results == {"theirs": ["evolink:x"], "mine": []}
        assert mine.keys() == ["evolink:x"] and mine._seq == theirs._seq


def test_new_events_are_counted_by_rows_not_by_ids(pg_url: str) -> None:
    """PostgreSQL ids have gaps (a rolled-back insert uses one up): the feed counts rows."""
    with PgStore(pg_url) as mine, PgStore(pg_url) as theirs:
        mine.sync()
        changes: list = []
        mine.subscribe(changes.append)
        with admin(pg_url) as conn:
            conn.execute("SELECT nextval('events_id_seq'), nextval('events_id_seq')")
        theirs.log([Event(time=1.0, provider="evolink", message="one")])
        wait_for(mine, lambda: mine._seq == theirs._seq, "the event")
        assert sum(c.events for c in changes) == 1


def test_db_copy_from_a_missing_file_says_so(tmp_path: Path, pg_url: str) -> None:
    with pytest.raises(StoreError, match="no such database file"):
        db_copy(tmp_path / "nope.db", pg_url)


@pytest.mark.parametrize("url", [
    "postgresql://postgres:sekrit%40pw@127.0.0.1:notaport/db",
    "postgresql://u:sekrit@[::1/db",
    "postgresql://u:sekrit@127.0.0.1:1/db?sslmode=bogus&password=sekrit",
])
def test_a_malformed_url_is_one_line_without_its_password(url: str) -> None:
    with pytest.raises(StoreError) as err:
        open_store(url)
    assert "sekrit" not in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- batched statements: same result as SQLite

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ROUND = st.lists(st.tuples(
    st.sampled_from(["a", "b", "c", "new1", "new2"]),
    st.sampled_from(["queued", "running", "succeeded", "failed"]),
    st.sampled_from([None, "p1", "p2"]),
    st.sampled_from([None, {"r": 1}, {"r": 2}]),
), max_size=8)
HEALTH = st.dictionaries(st.sampled_from(["evolink:a", "evolink:b", "evolink:new1"]),
                         st.fixed_dictionaries({"failed_polls": st.integers(0, 3)}), max_size=2)


def everything(store: Store) -> tuple:
    return ([t.to_dict() for t in store.tasks()], {k: [h[1:] for h in store.history(k)] for k in store.keys()},
            {k: store.raw(k) for k in store.keys()})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(st.tuples(ROUND, HEALTH), min_size=1, max_size=3), removed=st.booleans())
def test_a_round_gives_what_sqlite_gives(rounds, removed: bool, pg_server: PgServer, tmp_path_factory) -> None:
    """Rounds of answers (tracked and discovered tasks, the same key twice, raw or not,
    health) written by both backends: same tasks, history and raw answers."""
    name = pg_server.create_db()
    lite = Store(tmp_path_factory.mktemp("diff") / "t.db", clock=lambda: 5.0)
    pgs = PgStore(pg_server.url(name), clock=lambda: 5.0)
    try:
        for s in (lite, pgs):
            s.add("evolink", ["a", "b", "c"], label="L")
            if removed:
                s.remove(["evolink:c"])
            for n, (answers, health) in enumerate(rounds):
                s.apply([Task("evolink", i, state=st_, provider_status=ps, raw=raw, updated_at=float(n))
                         for i, st_, ps, raw in answers], discovered=True, health=health)
        assert everything(pgs) == everything(lite)
    finally:
        lite.close()
        pgs.close()
        pg_server.drop_db(name)


def test_a_round_mixing_tracked_and_discovered_tasks_keeps_every_raw_answer(pg_url: str) -> None:
    with PgStore(pg_url) as s:
        s.add("evolink", ["a"])
        s.apply([Task("evolink", "a", state="running", raw={"a": 1}),
                 Task("evolink", "new", state="running", raw={"new": 1})], discovered=True)
        s.apply([Task("evolink", "a", state="succeeded", raw={"a": 2}),
                 Task("evolink", "a", state="succeeded", provider_status="done", raw={"a": 3})])
    with PgStore(pg_url) as s:
        assert (s.raw("evolink:a"), s.raw("evolink:new")) == ({"a": 3}, {"new": 1})
        assert [h[1:] for h in s.history("evolink:a")] == [("running", None), ("succeeded", None),
                                                          ("succeeded", "done")]


def test_batched_statements_keep_each_keys_order(pg_url: str, tmp_path: Path) -> None:
    """Write plans the API does not make today but a future one may: statements of one
    key that would land in an earlier batch group; the result is SQLite's."""

    def plan(tx) -> None:
        seq = tx.next_seq()
        a, b = tx.current("evolink:a"), tx.current("evolink:b")
        tx.update(a.copy(raw=None, rev=seq, label="changed"), raw={"a": 9})  # UPDATE, raw
        tx.insert(Task("evolink", "new", state="queued", rev=seq), raw={"n": 1})  # raw after DELETE raw
        tx.update(b.copy(raw=None, rev=seq, label="b1"), raw={"b": 1})
        tx.insert(b.copy(raw=None, rev=seq, label="b2"), raw={"b": 2})  # the same key again, earlier groups
        tx.insert(Task("evolink", "x", rev=seq))
        c = tx.current("evolink:c")
        tx.update(c.copy(raw=None, rev=seq, label="c1"))  # a group after the insert's ...
        tx.insert(c.copy(raw=None, rev=seq, label="c2"))  # ... and c's next statement in an earlier one

    results = []
    for s in (Store(tmp_path / "t.db", clock=lambda: 5.0), PgStore(pg_url, clock=lambda: 5.0)):
        with s:
            s.add("evolink", ["a", "b", "c"])
            s._write(plan)
        with (Store(tmp_path / "t.db") if type(s) is Store else PgStore(pg_url)) as again:
            results.append(everything(again))
    assert results[1] == results[0]
    tasks, _, raws = results[1]
    assert raws == {"evolink:a": {"a": 9}, "evolink:new": {"n": 1}, "evolink:b": {"b": 2},
                    "evolink:x": None, "evolink:c": None}
    assert [t["label"] for t in tasks] == ["changed", None, "b2", None, "c2"]


def test_wait_opening_the_listener_leaves_the_catch_up_to_sync(pg_url: str) -> None:
    with PgStore(pg_url) as mine, PgStore(pg_url) as theirs:
        theirs.add("evolink", ["before-anyone-listened"])
        assert mine._listen is None
        assert mine.wait(0.0) is True  # opened the listener: whatever came before is owed
        assert mine.sync() == {"evolink:before-anyone-listened"}


def test_two_writer_processes_and_a_reader_that_misses_nothing(pg_url: str) -> None:
    """Two processes add tasks at the same time, one add() each; a third store follows
    by LISTEN/NOTIFY only and ends with every acknowledged task, each once, in the
    order the database gave them."""
    with open_store(pg_url) as reader:
        reader.sync()
        changes: list = []
        reader.subscribe(changes.append)
        code = textwrap.dedent("""
            import sys
            from tui.stores import open_store
            url, prefix = sys.argv[1], sys.argv[2]
            with open_store(url) as s:
                for k in range(150):
                    s.add("evolink", [f"{prefix}{k}"])
                    print(f"{prefix}{k}", flush=True)
        """)
        procs = [subprocess.Popen([sys.executable, "-c", code, pg_url, prefix], cwd=ROOT, text=True,
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) for prefix in ("p", "q")]
        acked: list[str] = []
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0
            acked += [f"evolink:{line}" for line in out.split()]
        assert len(acked) == 300
        wait_for(reader, lambda: len(reader) == 300, "every task of both writers")
        with open_store(pg_url) as fresh:
            assert reader.keys() == fresh.keys()
            assert [t.rev for t in reader.tasks()] == [t.rev for t in fresh.tasks()]
        assert set(reader.keys()) == set(acked)
        assert set().union(*(c.keys for c in changes)) == set(acked)
