"""The task store, on real SQLite files: index, merge rules, feed, pickup, migration."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tui.store as store_mod
from tui.model import STATES, Event, Task
from tui.store import Change, Store, StoreBusy, StoreError, migrate

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tasks.db"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: Path, clock: Clock):
    s = Store(db, clock=clock)
    yield s
    s.close()


def feed(store: Store) -> list[Change]:
    seen: list[Change] = []
    store.subscribe(seen.append)
    return seen


def upd(task_id: str, provider: str = "evolink", **kw) -> Task:
    return Task(provider, task_id, **kw)


# ---------------------------------------------------------------- add / remove / reads


def test_add_get_counts_and_order(store: Store) -> None:
    added = store.add("evolink", ["b", "a", "c"], kind="video", label="batch-7")
    assert added == ["evolink:b", "evolink:a", "evolink:c"]
    assert store.add("comfy", ["x"]) == ["comfy:x"]
    assert len(store) == 4 and "evolink:a" in store and "evolink:zz" not in store
    assert [t.key for t in store.tasks()] == ["evolink:b", "evolink:a", "evolink:c", "comfy:x"]
    t = store.get("evolink:a")
    assert (t.provider, t.task_id, t.kind, t.label, t.state) == ("evolink", "a", "video", "batch-7", "unknown")
    assert store.counts() == {**dict.fromkeys(STATES, 0), "unknown": 4}
    by = store.counts_by_provider()
    assert by["evolink"]["unknown"] == 3 and by["comfy"]["unknown"] == 1
    assert store.get("nope:1") is None


def test_add_is_idempotent_and_cleans_input(store: Store) -> None:
    assert store.add("evolink", ["a", " a ", "", "b", "a"]) == ["evolink:a", "evolink:b"]
    changes = feed(store)
    assert store.add("evolink", ["a", "b"]) == []
    assert changes == [] and len(store) == 2
    # a label given again replaces the stored one, without counting as added
    assert store.add("evolink", ["a"], label="new\x1b[31m") == []
    assert store.get("evolink:a").label == "new"  # the escape sequence whole, as text.clean does
    assert changes[-1].keys == {"evolink:a"}
    with pytest.raises(ValueError):
        store.add("evolink", ["bad\x07id"])
    with pytest.raises(ValueError):
        store.add("evo:link", ["a"])


def test_tasks_returns_fresh_list(store: Store) -> None:
    store.add("evolink", ["a"])
    listing = store.tasks()
    listing.clear()
    assert len(store.tasks()) == 1


def test_remove(store: Store, db: Path) -> None:
    store.add("evolink", ["a", "b", "c"])
    changes = feed(store)
    assert store.remove(["evolink:a", "evolink:c", "evolink:nope"]) == 2
    assert [t.key for t in store.tasks()] == ["evolink:b"]
    assert store.counts()["unknown"] == 1
    assert changes[-1].keys == {"evolink:a", "evolink:c"}
    assert store.remove(["evolink:a"]) == 0
    store.close()
    with Store(db) as again:
        assert again.keys() == ["evolink:b"]


def test_readd_after_remove_starts_fresh_at_the_end(store: Store) -> None:
    store.add("evolink", ["a", "b"], label="old")
    store.apply([upd("a", state="running", provider_status="processing")])
    rev = store.get("evolink:a").rev
    store.remove(["evolink:a"])
    assert store.add("evolink", ["a"]) == ["evolink:a"]
    t = store.get("evolink:a")
    assert t.state == "unknown" and t.label is None and t.rev > rev
    assert store.keys() == ["evolink:b", "evolink:a"]
    assert store.history("evolink:a") == []


def test_reopen_keeps_everything(db: Path, clock: Clock) -> None:
    with Store(db, clock=clock) as s:
        s.add("evolink", ["a", "b"], kind="video", label="L")
        s.apply([upd("a", state="succeeded", provider_status="completed", progress=100.0,
                     results=["https://r/1.png", "https://r/2.png"], model="m1", credits=2.5,
                     raw={"id": "a", "status": "completed"}, updated_at=clock.now)])
        before = [t.to_dict() for t in s.tasks()]
        revs = [t.rev for t in s.tasks()]
    with Store(db, clock=clock) as s:
        assert [t.to_dict() for t in s.tasks()] == before
        assert [t.rev for t in s.tasks()] == revs
        assert s.get("evolink:a").raw is None  # raw stays on disk until asked for
        assert s.raw("evolink:a") == {"id": "a", "status": "completed"}
        assert s.counts()["succeeded"] == 1 and s.counts()["unknown"] == 1


# ---------------------------------------------------------------- apply


def test_apply_merge_rules(store: Store, clock: Clock) -> None:
    store.add("evolink", ["a"], kind="video", label="mine")
    t0 = clock.now
    changed = store.apply([upd("a", state="running", provider_status="processing", progress=40.0,
                               results=["https://r/a.png"], model="m", created_at=t0 - 60,
                               updated_at=t0)])
    assert changed == {"evolink:a"}
    t = store.get("evolink:a")
    assert (t.label, t.kind, t.state, t.progress, t.results) == ("mine", "video", "running", 40.0,
                                                                   ["https://r/a.png"])
    assert t.finished_at is None
    # new answer without results, label, kind, created_at: the stored ones stay
    clock.now += 10
    store.apply([upd("a", state="succeeded", provider_status="completed", progress=100.0,
                     updated_at=clock.now)])
    t = store.get("evolink:a")
    assert t.results == ["https://r/a.png"]
    assert (t.label, t.kind, t.created_at, t.model) == ("mine", "video", t0 - 60, "m")
    assert t.state == "succeeded" and t.finished_at == clock.now
    # still terminal later: finished_at is not moved
    clock.now += 10
    store.apply([upd("a", state="succeeded", provider_status="completed", progress=100.0,
                     results=["https://r/b.png"], updated_at=clock.now)])
    t = store.get("evolink:a")
    assert t.finished_at == clock.now - 10 and t.results == ["https://r/b.png"]


def test_apply_keeps_progress_and_status_only_within_a_state(store: Store) -> None:
    store.add("evolink", ["a"])
    store.apply([upd("a", state="running", provider_status="processing", progress=30.0)])
    store.apply([upd("a", state="running")])  # e.g. a list entry that says less
    t = store.get("evolink:a")
    assert (t.provider_status, t.progress) == ("processing", 30.0)
    store.apply([upd("a", state="failed")])
    t = store.get("evolink:a")
    assert (t.state, t.provider_status, t.progress) == ("failed", None, None)


def test_apply_keeps_provider_finished_at(store: Store) -> None:
    store.add("evolink", ["a"])
    store.apply([upd("a", state="failed", error="boom", finished_at=123.0, updated_at=200.0)])
    t = store.get("evolink:a")
    assert t.finished_at == 123.0 and t.error == "boom"


def test_apply_history_rows(store: Store, clock: Clock) -> None:
    store.add("evolink", ["a"])
    steps = [("queued", "pending"), ("running", "processing"), ("running", "processing"),
             ("running", "rendering"), ("succeeded", "completed")]
    for i, (state, pstatus) in enumerate(steps):
        store.apply([upd("a", state=state, provider_status=pstatus, progress=float(i * 10),
                         updated_at=clock.now + i)])
    assert store.history("evolink:a") == [
        (clock.now + 0, "queued", "pending"),
        (clock.now + 1, "running", "processing"),
        (clock.now + 3, "running", "rendering"),
        (clock.now + 4, "succeeded", "completed"),
    ]
    assert store.history("evolink:nope") == []


def test_history_is_capped_per_task(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "HISTORY_CAP", 3)
    store.add("evolink", ["a", "b"])
    store.apply([upd("b", state="queued")])
    for i in range(6):
        store.apply([upd("a", state="running", provider_status=f"s{i}", updated_at=float(i))])
    assert [h[2] for h in store.history("evolink:a")] == ["s3", "s4", "s5"]
    assert [h[1] for h in store.history("evolink:b")] == ["queued"]


def test_raw_kept_when_an_update_has_none(store: Store) -> None:
    store.add("evolink", ["a"])
    store.apply([upd("a", state="running", raw={"v": 1})])
    store.apply([upd("a", state="succeeded")])
    assert store.raw("evolink:a") == {"v": 1}
    store.apply([upd("a", state="succeeded", raw=["not", "a", "dict"])])
    assert store.raw("evolink:a") == ["not", "a", "dict"]
    store.remove(["evolink:a"])
    assert store.raw("evolink:a") is None


def test_add_one_id_given_as_a_string(store: Store) -> None:
    assert store.add("evolink", "abc") == ["evolink:abc"]


def test_noop_update_neither_bumps_rev_nor_notifies(store: Store, clock: Clock) -> None:
    store.add("evolink", ["a"])
    first = upd("a", state="running", provider_status="processing", progress=50.0,
                results=["https://r/a.png"], raw={"n": 1}, updated_at=clock.now)
    assert store.apply([first]) == {"evolink:a"}
    rev, revision = store.get("evolink:a").rev, store.revision
    changes = feed(store)
    clock.now += 5
    same = first.copy(raw={"n": 2}, updated_at=clock.now)
    assert store.apply([same]) == set()
    assert changes == [] and store.revision == revision
    t = store.get("evolink:a")
    assert t.rev == rev
    # quietly refreshed: when it was last seen and the raw answer
    assert t.updated_at == clock.now and store.raw("evolink:a") == {"n": 2}
    assert len(store.history("evolink:a")) == 1
    # a real change does notify, with a higher rev
    assert store.apply([same.copy(progress=60.0)]) == {"evolink:a"}
    assert store.get("evolink:a").rev > rev and len(changes) == 1


def test_apply_ignores_untracked_unless_discovered(store: Store) -> None:
    store.add("freepik", ["a"])
    assert store.apply([upd("zz", provider="freepik", state="running")]) == set()
    assert "freepik:zz" not in store
    got = store.apply([upd("zz", provider="freepik", kind="text-to-image/hyperflux",
                           state="succeeded", results=["https://r/z.png"], updated_at=50.0)],
                      discovered=True)
    assert got == {"freepik:zz"}
    t = store.get("freepik:zz")
    assert t.state == "succeeded" and t.finished_at == 50.0 and t.kind == "text-to-image/hyperflux"
    assert store.history("freepik:zz") == [(50.0, "succeeded", None)]


def test_discovery_does_not_bring_back_a_removed_task(store: Store) -> None:
    store.add("freepik", ["a"])
    store.remove(["freepik:a"])
    assert store.apply([upd("a", provider="freepik", state="running")], discovered=True) == set()
    assert "freepik:a" not in store


def test_apply_same_key_twice_in_one_round(store: Store) -> None:
    store.add("evolink", ["a"], label="L")
    store.apply([upd("a", state="queued", provider_status="pending"),
                 upd("a", state="running", provider_status="processing")])
    assert store.get("evolink:a").state == "running" and store.get("evolink:a").label == "L"
    assert [h[1] for h in store.history("evolink:a")] == ["queued", "running"]


def test_counts_follow_state_changes(store: Store) -> None:
    store.add("evolink", ["a", "b"])
    store.add("comfy", ["c"])
    store.apply([upd("a", state="running"), upd("c", provider="comfy", state="failed")])
    assert store.counts()["running"] == 1 and store.counts()["failed"] == 1
    assert store.counts()["unknown"] == 1
    assert store.counts_by_provider()["comfy"]["failed"] == 1
    store.remove(["comfy:c"])
    assert store.counts()["failed"] == 0 and store.counts_by_provider()["comfy"]["failed"] == 0
    assert sum(store.counts().values()) == len(store) == 2


# ---------------------------------------------------------------- events and counters


def ev(i: int, provider: str = "evolink", **kw) -> Event:
    return Event(time=float(i), provider=provider, message=f"m{i}", **kw)


def test_events_newest_first_filtered_and_limited(store: Store) -> None:
    store.log([ev(1, status=429, kind="rate_limited", retry_after=2.5, task_id="a"), ev(2, "comfy")])
    store.apply([], events=[ev(3)])
    got = store.events()
    assert [e.message for e in got] == ["m3", "m2", "m1"]
    assert got[2] == Event(time=1.0, provider="evolink", message="m1", task_id="a", status=429,
                           kind="rate_limited", retry_after=2.5)
    assert [e.message for e in store.events(provider="evolink")] == ["m3", "m1"]
    assert [e.message for e in store.events(limit=1)] == ["m3"]


def test_events_are_capped(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "EVENT_CAP", 50)
    store.log([ev(i) for i in range(40)])
    store.log([ev(i) for i in range(40, 70)])
    got = store.events(limit=1000)
    assert len(got) == 50
    assert got[0].message == "m69" and got[-1].message == "m20"


def test_counters(db: Path, store: Store) -> None:
    assert store.counters() == {}
    store.save_counters("evolink", {"requests": 3, "errors": 1})
    store.apply([], counters={"comfy": {"requests": 1}, "evolink": {"requests": 4, "errors": 1}})
    assert store.counters() == {"comfy": {"requests": 1}, "evolink": {"requests": 4, "errors": 1}}
    store.close()
    with Store(db) as again:
        assert again.counters()["evolink"] == {"requests": 4, "errors": 1}


# ---------------------------------------------------------------- change feed


def test_one_change_per_transaction(store: Store) -> None:
    store.add("evolink", ["a", "b", "c"])
    changes = feed(store)
    revision = store.revision
    store.apply([upd("a", state="running"), upd("b", state="queued"), upd("c")],
                events=[ev(1), ev(2)], counters={"evolink": {"requests": 3}})
    # "c" stays unknown with nothing new: not a change
    assert changes == [Change({"evolink:a", "evolink:b"}, 2, True)]
    assert store.revision == revision + 1
    store.save_counters("comfy", {})
    store.log([ev(3)])
    assert changes[1:] == [Change(set(), 0, True), Change(set(), 1, False)]
    assert store.revision == revision + 3


def test_subscriber_error_is_isolated(store: Store, db: Path) -> None:
    calls: list[str] = []

    def bad(change: Change) -> None:
        calls.append("bad")
        raise RuntimeError("subscriber bug")

    store.subscribe(bad)
    store.subscribe(lambda change: calls.append("good"))
    assert store.add("evolink", ["a"]) == ["evolink:a"]
    assert calls == ["bad", "good"]
    with Store(db) as other:  # committed despite the failing subscriber
        assert "evolink:a" in other


def test_unsubscribe(store: Store) -> None:
    seen: list[Change] = []
    unsubscribe = store.subscribe(seen.append)
    store.add("evolink", ["a"])
    unsubscribe()
    unsubscribe()  # twice is harmless
    store.add("evolink", ["b"])
    assert [c.keys for c in seen] == [{"evolink:a"}]


# ---------------------------------------------------------------- pickup of other writers


def test_sync_sees_another_store(db: Path) -> None:
    with Store(db) as mine, Store(db) as theirs:
        changes = feed(mine)
        assert mine.sync() == set() and changes == []
        theirs.add("evolink", ["a", "b"], label="x")
        theirs.apply([Task("evolink", "a", state="running")], events=[ev(1)],
                     counters={"evolink": {"n": 1}})
        assert mine.sync() == {"evolink:a", "evolink:b"}
        assert changes == [Change({"evolink:a", "evolink:b"}, 1, True)]
        assert mine.get("evolink:a").state == "running" and mine.get("evolink:a").label == "x"
        theirs.remove(["evolink:b"])
        theirs.add("evolink", ["c"])
        theirs.remove(["evolink:c"])  # came and went unseen: not a change here
        assert mine.sync() == {"evolink:b"}
        assert mine.keys() == ["evolink:a"]
        assert mine.counts()["running"] == 1 and sum(mine.counts().values()) == 1
        assert mine.sync() == set() and len(changes) == 2


def test_quiet_refresh_reaches_other_stores_without_news(db: Path, clock: Clock) -> None:
    with Store(db, clock=clock) as mine, Store(db, clock=clock) as theirs:
        theirs.add("evolink", ["a"])
        theirs.apply([upd("a", state="running", progress=10.0, updated_at=100.0)])
        mine.sync()
        changes = feed(mine)
        theirs.apply([upd("a", state="running", progress=10.0, updated_at=200.0)])
        assert mine.sync() == set() and changes == []
        assert mine.get("evolink:a").updated_at == 200.0


def test_own_write_catches_up_first(db: Path) -> None:
    """Another writer commits between our reads; our next write must not skip its rows."""
    with Store(db) as mine, Store(db) as theirs:
        changes = feed(mine)
        theirs.add("evolink", ["theirs"])
        mine.add("evolink", ["mine"])
        assert changes == [Change({"evolink:theirs", "evolink:mine"}, 0, False)]
        assert mine.keys() == ["evolink:theirs", "evolink:mine"]
        theirs.add("evolink", ["later"])
        assert mine.sync() == {"evolink:later"}
        # idempotence holds across processes: their task is not added twice
        assert mine.add("evolink", ["theirs", "later"]) == []


def test_sync_after_tombstones_were_purged_reloads(db: Path, clock: Clock) -> None:
    with Store(db, clock=clock) as writer:
        writer.add("evolink", ["a", "b"])
    stale = Store(db, clock=clock)
    with Store(db, clock=clock) as writer:
        writer.remove(["evolink:a"])
    clock.now += store_mod.TOMBSTONE_DAYS * 86400 + 1
    with Store(db, clock=clock):  # opening purges the old tombstone
        pass
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM tasks WHERE key = 'evolink:a'").fetchone()[0] == 0
    assert "evolink:a" in stale.sync()
    assert stale.keys() == ["evolink:b"]
    stale.close()


def test_sync_picks_up_a_subprocess(db: Path) -> None:
    with Store(db) as mine:
        mine.add("evolink", ["keep"])
        changes = feed(mine)
        code = textwrap.dedent(f"""
            from tui.store import Store
            from tui.model import Event
            with Store({str(db)!r}) as s:
                s.add("comfy", ["p1", "p2", "p3"], label="from-cli")
                s.remove(["comfy:p2", "evolink:keep"])
                s.log([Event(time=1.0, provider="comfy", message="hello")])
        """)
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60,
                       stdin=subprocess.DEVNULL)
        keys = mine.sync()
        assert keys == {"comfy:p1", "comfy:p3", "evolink:keep"}  # p2 came and went unseen
        assert mine.keys() == ["comfy:p1", "comfy:p3"]
        assert mine.get("comfy:p1").label == "from-cli"
        assert changes[-1].events == 1
        assert mine.events()[0].message == "hello"


# ---------------------------------------------------------------- read-only, schema, locks


def test_readonly(db: Path, tmp_path: Path) -> None:
    missing = Store(tmp_path / "none" / "x.db", readonly=True)
    assert len(missing) == 0 and missing.events() == [] and missing.sync() == set()
    assert not (tmp_path / "none").exists()
    with Store(db) as writer:
        writer.add("evolink", ["a"])
        with Store(db, readonly=True) as reader:
            assert reader.keys() == ["evolink:a"]
            with pytest.raises(StoreError):
                reader.add("evolink", ["b"])
            writer.add("evolink", ["b"])
            assert reader.sync() == {"evolink:b"}


def test_schema_version_and_newer_file_refused(db: Path) -> None:
    with Store(db) as s:
        s.add("evolink", ["a"])
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        Store(db)
    with pytest.raises(StoreError, match="newer"):
        Store(db, readonly=True)


def test_readonly_open_of_an_old_schema_asks_for_a_migration(db: Path) -> None:
    sqlite3.connect(db).close()  # an empty file: schema version 0
    with pytest.raises(StoreError, match="migrate"):
        Store(db, readonly=True)
    with Store(db) as s:  # a writable open migrates it
        assert len(s) == 0
    with Store(db, readonly=True) as s:
        assert len(s) == 0


def test_migration_steps_run_forward_and_keep_data(db: Path) -> None:
    with Store(db) as s:
        s.add("evolink", ["a"], label="kept")
    steps = store_mod.MIGRATIONS + [["ALTER TABLE tasks ADD COLUMN note TEXT",
                                      "UPDATE tasks SET note = 'v2'"]]
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, steps) == len(steps)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(steps)
    assert conn.execute("SELECT label, note FROM tasks").fetchall() == [("kept", "v2")]
    assert migrate(conn, steps) == len(steps)  # nothing left to do
    conn.close()


def test_garbage_file_gives_a_clear_error(db: Path) -> None:
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(db)


def test_lock_held_too_long_is_store_busy(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_MS", 20)
    monkeypatch.setattr(store_mod, "BUSY_DEADLINE", 0.2)
    with Store(db) as s:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy, match="locked"):
            s.add("evolink", ["a"])
        holder.execute("ROLLBACK")
        holder.close()
        assert s.add("evolink", ["a"]) == ["evolink:a"]  # and the store still works


# ---------------------------------------------------------------- cost of the hot paths


def test_idle_sync_is_one_pragma(store: Store) -> None:
    store.add("evolink", ["a"])
    store.sync()
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    for _ in range(5):
        assert store.sync() == set()
    assert statements == ["PRAGMA data_version"] * 5


def test_open_reads_neither_raw_nor_history(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(db) as s:
        s.add("evolink", ["a", "b"])
        s.apply([upd("a", state="running", raw={"big": "x" * 10_000})])
    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced(*args, **kw):
        conn = real_connect(*args, **kw)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(store_mod.sqlite3, "connect", traced)
    with Store(db) as s:
        assert len(s) == 2
    reads = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert sum("task_id" in sql and "FROM tasks" in sql for sql in reads) == 1  # one load SELECT
    assert not any("history" in sql or "FROM raw" in sql for sql in statements)


# ---------------------------------------------------------------- two writers, random operations

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

IDS = st.sampled_from(["a", "b", "c", "d"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 1), st.sampled_from(["evolink", "comfy"]), IDS,
                  st.sampled_from([None, "L1", "L2"])),
        st.tuples(st.just("rm"), st.integers(0, 1), st.sampled_from(["evolink", "comfy"]), IDS),
        st.tuples(st.just("apply"), st.integers(0, 1), st.sampled_from(["evolink", "comfy"]), IDS,
                  st.sampled_from(STATES), st.sampled_from([None, [], ["https://r/1"]])),
        st.tuples(st.just("sync"), st.integers(0, 1)),
    ),
    max_size=25,
)


def expected_counts(tasks: list[Task]) -> tuple[dict, dict]:
    counts = dict.fromkeys(STATES, 0)
    by: dict[str, dict[str, int]] = {}
    for t in tasks:
        counts[t.state] += 1
        by.setdefault(t.provider, dict.fromkeys(STATES, 0))[t.state] += 1
    return counts, by


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_two_writers_agree_with_the_file(ops: list[tuple], tmp_path_factory) -> None:
    db = tmp_path_factory.mktemp("two") / "t.db"
    stores = [Store(db), Store(db)]
    try:
        for op in ops:
            s = stores[op[1]]
            if op[0] == "add":
                s.add(op[2], [op[3]], label=op[4])
            elif op[0] == "rm":
                s.remove([f"{op[2]}:{op[3]}"])
            elif op[0] == "apply":
                s.apply([Task(op[2], op[3], state=op[4], results=op[5] or [])])
            else:
                s.sync()
        for s in stores:
            s.sync()
        with Store(db) as fresh:
            truth = {t.key: t.to_dict() for t in fresh.tasks()}
        for s in stores:
            assert {t.key: t.to_dict() for t in s.tasks()} == truth
            counts, by = expected_counts(s.tasks())
            assert s.counts() == counts
            assert {p: c for p, c in s.counts_by_provider().items() if any(c.values())} == by
    finally:
        for s in stores:
            s.close()
