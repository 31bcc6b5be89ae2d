"""The store's public API, one suite run on both backends: a SQLite file in tmp_path and
a real PostgreSQL database (tests/pg.py).  Two store objects on one database stand for
two processes.  (tests/functional/test_store.py covers what only SQLite has: files, WAL, locks.)"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.pg import PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from tui.model import NOT_FOUND, STATES, Event, Task
from tui.store import Change, Store, StoreError
from tui.stores import open_store


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    name: str
    target: Any  # Path or URL

    def open(self, readonly: bool = False, clock: Clock | None = None) -> Store:
        return open_store(self.target, readonly=readonly, clock=clock or time.time)


@pytest.fixture(params=["sqlite", "pg"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "tasks.db")
    return Backend("pg", request.getfixturevalue("pg_url"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(backend: Backend, clock: Clock):
    s = backend.open(clock=clock)
    yield s
    s.close()


def feed(store: Store) -> list[Change]:
    seen: list[Change] = []
    store.subscribe(seen.append)
    return seen


def catch_up(mine: Store, theirs: Store) -> set[str]:
    """``mine.sync()`` until it has seen everything ``theirs`` committed.  SQLite sees it
    at the first sync; PostgreSQL once the NOTIFY has arrived (waited for, not slept)."""
    keys = set(mine.sync())
    deadline = time.monotonic() + 15
    while mine._seq < theirs._seq:
        assert time.monotonic() < deadline, "the change never reached the other store"
        wait = getattr(mine, "wait", None)
        if wait is not None:
            wait(0.5)
        keys |= mine.sync()
    return keys


def merged(changes: list[Change]) -> Change:
    out = Change()
    for c in changes:
        out.keys |= c.keys
        out.events += c.events
        out.counters = out.counters or c.counters
    return out


def upd(task_id: str, provider: str = "evolink", **kw) -> Task:
    return Task(provider, task_id, **kw)


def ev(i: int, provider: str = "evolink", **kw) -> Event:
    return Event(time=float(i), provider=provider, message=f"m{i}", **kw)


# ---------------------------------------------------------------- add


def test_add_reads_and_counts(store: Store) -> None:
    assert store.add("evolink", ["b", "a", " a ", "", "c"], kind="video", label="batch") == [
        "evolink:b", "evolink:a", "evolink:c"]
    assert store.add("comfy", "x") == ["comfy:x"]
    assert store.add("evolink", ["a", "b"]) == []  # idempotent
    assert len(store) == 4 and "evolink:a" in store and "evolink:zz" not in store
    assert store.keys() == ["evolink:b", "evolink:a", "evolink:c", "comfy:x"]
    assert [k for k, _ in store.items()] == store.keys() == [t.key for t in store.tasks()]
    t = store.get("evolink:a")
    assert (t.provider, t.task_id, t.kind, t.label, t.state) == ("evolink", "a", "video", "batch", "unknown")
    assert store.counts() == {**dict.fromkeys(STATES, 0), "unknown": 4}
    assert store.counts_by_provider()["evolink"]["unknown"] == 3
    assert store.get("nope:1") is None
    with pytest.raises(ValueError):
        store.add("evolink", ["bad\x07id"])
    with pytest.raises(ValueError):
        store.add("evo:link", ["a"])


def test_readd_with_a_new_kind_updates_it_clears_health_and_revives_not_found(store: Store) -> None:
    store.add("freepik", ["a", "b"], kind="text-to-image/flux")
    store.apply([upd("a", provider="freepik", state=NOT_FOUND, error="no such task")],
                health={"freepik:b": {"last_error": "HTTP 500", "failed_polls": 3, "poll_path": "/v1/x/b"}})
    rev = store.get("freepik:a").rev
    changes = feed(store)
    assert store.add("freepik", ["a", "b"], kind="skin-enhancer") == []
    assert sorted(store.last_updated_kinds) == ["freepik:a", "freepik:b"]
    assert store.last_revived == ["freepik:a"]
    a, b = store.get("freepik:a"), store.get("freepik:b")
    assert (a.kind, a.state, a.error) == ("skin-enhancer", "unknown", None) and a.rev > rev
    assert (b.kind, b.last_error, b.failed_polls, b.poll_path) == ("skin-enhancer", None, 0, None)
    assert merged(changes).keys == {"freepik:a", "freepik:b"}
    assert store.add("freepik", ["a"], kind="skin-enhancer") == [] and store.last_updated_kinds == []


# ---------------------------------------------------------------- remove and tombstones


def test_remove_and_readd_starts_fresh_at_the_end(backend: Backend, store: Store) -> None:
    store.add("evolink", ["a", "b", "c"], label="old")
    store.apply([upd("a", state="running", provider_status="processing", raw={"v": 1})])
    rev = store.get("evolink:a").rev
    changes = feed(store)
    assert store.remove(["evolink:a", "evolink:c", "evolink:nope", "evolink:a"]) == 2
    assert changes[-1].keys == {"evolink:a", "evolink:c"}
    assert store.keys() == ["evolink:b"] and store.counts()["unknown"] == 1 and store.counts()["running"] == 0
    assert store.remove(["evolink:a"]) == 0
    assert store.raw("evolink:a") is None and store.history("evolink:a") == []
    # discovery does not bring a removed task back; the user adding it does
    assert store.apply([upd("a", state="running")], discovered=True) == set()
    assert "evolink:a" not in store
    assert store.add("evolink", ["a"]) == ["evolink:a"]
    t = store.get("evolink:a")
    assert t.state == "unknown" and t.label is None and t.rev > rev
    assert store.keys() == ["evolink:b", "evolink:a"] and store.history("evolink:a") == []
    store.close()
    with backend.open() as again:
        assert again.keys() == ["evolink:b", "evolink:a"]


# ---------------------------------------------------------------- apply


def test_apply_merge_rules_and_history(store: Store, clock: Clock) -> None:
    store.add("evolink", ["a"], kind="video", label="mine")
    t0 = clock.now
    assert store.apply([upd("a", state="running", provider_status="processing", progress=40.0,
                            results=["https://r/a.png"], model="m", created_at=t0 - 60,
                            updated_at=t0)]) == {"evolink:a"}
    store.apply([upd("a", state="running", updated_at=t0 + 1)])  # says less about the same state
    t = store.get("evolink:a")
    assert (t.provider_status, t.progress) == ("processing", 40.0)
    store.apply([upd("a", state="succeeded", provider_status="completed", updated_at=t0 + 10)])
    t = store.get("evolink:a")
    assert (t.label, t.kind, t.model, t.created_at, t.results) == ("mine", "video", "m", t0 - 60,
                                                                   ["https://r/a.png"])
    assert (t.state, t.finished_at, t.progress) == ("succeeded", t0 + 10, None)
    store.apply([upd("a", state="succeeded", provider_status="completed",
                     results=["https://r/b.png"], updated_at=t0 + 20)])
    t = store.get("evolink:a")
    assert t.finished_at == t0 + 10 and t.results == ["https://r/b.png"]
    assert store.history("evolink:a") == [(t0, "running", "processing"),
                                          (t0 + 10, "succeeded", "completed")]
    # untracked keys are ignored unless discovered
    assert store.apply([upd("zz", state="running")]) == set() and "evolink:zz" not in store
    assert store.apply([upd("zz", state="failed", error="x", updated_at=50.0)], discovered=True) == {"evolink:zz"}
    assert store.get("evolink:zz").finished_at == 50.0


def test_noop_update_is_quiet_but_refreshes(store: Store, clock: Clock) -> None:
    store.add("evolink", ["a"])
    first = upd("a", state="running", progress=50.0, raw={"n": 1}, updated_at=clock.now)
    assert store.apply([first]) == {"evolink:a"}
    rev, revision = store.get("evolink:a").rev, store.revision
    changes = feed(store)
    assert store.apply([first.copy(raw={"n": 2}, updated_at=clock.now + 5)]) == set()
    assert changes == [] and store.revision == revision and store.get("evolink:a").rev == rev
    assert store.get("evolink:a").updated_at == clock.now + 5 and store.raw("evolink:a") == {"n": 2}
    assert store.apply([first.copy(progress=60.0)]) == {"evolink:a"} and store.get("evolink:a").rev > rev


def test_health_without_an_answer(store: Store, clock: Clock) -> None:
    store.add("evolink", ["a"])
    store.apply([upd("a", state="running", provider_status="processing", updated_at=clock.now)])
    before = store.get("evolink:a")
    health = {"evolink:a": {"last_error": "HTTP 503", "last_error_at": clock.now + 1, "failed_polls": 2,
                            "stalled": None, "poll_path": "/v1/tasks/a", "details": {"node": "gpu-3"}},
              "evolink:untracked": {"failed_polls": 1}}
    assert store.apply([], health=health) == {"evolink:a"}
    t = store.get("evolink:a")
    assert (t.last_error, t.last_error_at, t.failed_polls, t.poll_path, t.details) == (
        "HTTP 503", clock.now + 1, 2, "/v1/tasks/a", {"node": "gpu-3"})
    assert (t.state, t.updated_at, t.provider_status) == (before.state, before.updated_at, "processing")
    assert len(store.history("evolink:a")) == 1 and t.rev > before.rev
    assert store.apply([], health={"evolink:a": {"failed_polls": 2}}) == set()  # same again: nothing
    with pytest.raises(ValueError):
        store.apply([], health={"evolink:a": {"state": "failed"}})
    # a fresh answer writes its own health fields as given (the engine resets them)
    store.apply([upd("a", state="running", provider_status="processing", failed_polls=0)])
    t = store.get("evolink:a")
    assert (t.failed_polls, t.last_error, t.poll_path, t.details) == (0, None, "/v1/tasks/a", {"node": "gpu-3"})


def test_set_files(store: Store) -> None:
    store.add("evolink", ["a"])
    rev = store.get("evolink:a").rev
    assert store.set_files("evolink:a", ["/tmp/a.png"]) is True
    assert store.get("evolink:a").files == ["/tmp/a.png"] and store.get("evolink:a").rev > rev
    assert store.set_files("evolink:nope", ["/x"]) is False
    store.apply([upd("a", state="succeeded")])
    assert store.get("evolink:a").files == ["/tmp/a.png"]


def test_reopen_keeps_everything(backend: Backend, clock: Clock) -> None:
    with backend.open(clock=clock) as s:
        s.add("evolink", ["a", "b"], kind="video", label="L")
        s.apply([upd("a", state="succeeded", provider_status="completed", progress=100.0,
                     results=["https://r/1.png", "https://r/2.png"], model="m1", credits=2.5,
                     details={"seed": "7"}, raw={"id": "a", "status": "completed"}, updated_at=clock.now)])
        s.set_files("evolink:b", ["/tmp/b.mp4"])
        before = [t.to_dict() for t in s.tasks()]
        revs = [t.rev for t in s.tasks()]
    with backend.open(clock=clock) as s:
        assert [t.to_dict() for t in s.tasks()] == before
        assert [t.rev for t in s.tasks()] == revs
        assert s.get("evolink:a").raw is None and s.raw("evolink:a") == {"id": "a", "status": "completed"}


# ---------------------------------------------------------------- events and counters


def test_events_and_counters(backend: Backend, store: Store) -> None:
    store.log([ev(1, status=429, kind="rate_limited", retry_after=2.5, task_id="a"), ev(2, "comfy")])
    store.apply([], events=[ev(3)])
    got = store.events()
    assert [e.message for e in got] == ["m3", "m2", "m1"]
    assert got[2] == Event(time=1.0, provider="evolink", message="m1", task_id="a", status=429,
                           kind="rate_limited", retry_after=2.5)
    assert [e.message for e in store.events(provider="evolink")] == ["m3", "m1"]
    assert [e.message for e in store.events(limit=1)] == ["m3"]
    assert store.counters() == {}
    store.save_counters("evolink", {"requests": 3, "state": "degraded", "cause": "429"})
    store.apply([], counters={"comfy": {"requests": 1}, "evolink": {"requests": 4}})
    assert store.counters() == {"comfy": {"requests": 1}, "evolink": {"requests": 4}}
    store.close()
    with backend.open() as again:
        assert again.counters()["evolink"] == {"requests": 4}
        assert len(again.events()) == 3


# ---------------------------------------------------------------- change feed


def test_one_change_per_transaction(store: Store) -> None:
    store.add("evolink", ["a", "b", "c"])
    changes = feed(store)
    revision = store.revision
    store.apply([upd("a", state="running"), upd("b", state="queued"), upd("c")],
                events=[ev(1), ev(2)], counters={"evolink": {"requests": 3}})
    assert changes == [Change({"evolink:a", "evolink:b"}, 2, True)]
    store.save_counters("comfy", {})
    store.log([ev(3)])
    assert changes[1:] == [Change(set(), 0, True), Change(set(), 1, False)]
    assert store.revision == revision + 3


def test_subscribers_isolated_and_unsubscribe(store: Store) -> None:
    calls: list[str] = []

    def bad(change: Change) -> None:
        calls.append("bad")
        raise RuntimeError("subscriber bug")

    store.subscribe(bad)
    stop = store.subscribe(lambda change: calls.append("good"))
    assert store.add("evolink", ["a"]) == ["evolink:a"]
    assert calls == ["bad", "good"]
    stop()
    stop()
    store.add("evolink", ["b"])
    assert calls == ["bad", "good", "bad"]


def test_another_store_sees_every_change(backend: Backend) -> None:
    """Two store objects on one database: what one writes, the other's sync() picks up,
    announced with the same Change objects."""
    with backend.open() as mine, backend.open() as theirs:
        changes = feed(mine)
        assert mine.sync() == set() and changes == []
        theirs.add("evolink", ["a", "b"], label="x")
        theirs.apply([Task("evolink", "a", state="running")], events=[ev(1)], counters={"evolink": {"n": 1}})
        assert catch_up(mine, theirs) == {"evolink:a", "evolink:b"}
        assert merged(changes) == Change({"evolink:a", "evolink:b"}, 1, True)
        assert mine.get("evolink:a").state == "running" and mine.get("evolink:a").label == "x"
        assert mine.events()[0].message == "m1" and mine.counters() == {"evolink": {"n": 1}}
        theirs.remove(["evolink:b"])
        theirs.add("evolink", ["c"])
        theirs.remove(["evolink:c"])  # came and went unseen: not a change here
        assert catch_up(mine, theirs) == {"evolink:b"}
        assert mine.keys() == ["evolink:a"] and sum(mine.counts().values()) == 1
        # a quiet refresh reaches the other store without news
        n = len(changes)
        theirs.apply([Task("evolink", "a", state="running", updated_at=123.0)])
        assert catch_up(mine, theirs) == set() and len(changes) == n
        assert mine.get("evolink:a").updated_at == 123.0
        # a write catches up first: their task is not added twice, ours comes after it
        theirs.add("evolink", ["theirs"])
        mine.add("evolink", ["mine"])
        assert mine.keys() == ["evolink:a", "evolink:theirs", "evolink:mine"]
        assert mine.add("evolink", ["theirs"]) == []
        assert catch_up(theirs, mine) >= {"evolink:mine"}
        assert theirs.keys() == mine.keys()


def test_readonly(backend: Backend) -> None:
    with backend.open() as writer:
        writer.add("evolink", ["a"])
        with backend.open(readonly=True) as reader:
            assert reader.readonly and reader.keys() == ["evolink:a"]
            with pytest.raises(StoreError, match="read-only"):
                reader.add("evolink", ["b"])
            with pytest.raises(StoreError, match="read-only"):
                reader.apply([upd("a", state="running")])
            assert "evolink:b" not in reader
            writer.add("evolink", ["b"])
            assert catch_up(reader, writer) == {"evolink:b"}
            assert reader.check_file() is None


# ---------------------------------------------------------------- two writers, random operations

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

IDS = st.sampled_from(["a", "b", "c"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 1), IDS, st.sampled_from([None, "L1", "L2"])),
        st.tuples(st.just("rm"), st.integers(0, 1), IDS),
        st.tuples(st.just("apply"), st.integers(0, 1), IDS, st.sampled_from(STATES),
                  st.sampled_from([[], ["https://r/1"]])),
        st.tuples(st.just("sync"), st.integers(0, 1)),
    ),
    max_size=15,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_two_writers_agree_with_the_database(ops: list[tuple], backend: Backend, tmp_path_factory) -> None:
    if backend.name == "sqlite":
        target: Any = tmp_path_factory.mktemp("two") / "t.db"
        server = None
    else:
        from tests.pg import shared_server

        server = shared_server()
        name = server.create_db()
        target = server.url(name)
    stores = [open_store(target), open_store(target)]
    try:
        for op in ops:
            s = stores[op[1]]
            if op[0] == "add":
                s.add("evolink", [op[2]], label=op[3])
            elif op[0] == "rm":
                s.remove([f"evolink:{op[2]}"])
            elif op[0] == "apply":
                s.apply([Task("evolink", op[2], state=op[3], results=op[4])])
            else:
                s.sync()
        catch_up(stores[0], stores[1])
        catch_up(stores[1], stores[0])
        with open_store(target) as fresh:
            truth = {t.key: t.to_dict() for t in fresh.tasks()}
        for s in stores:
            assert {t.key: t.to_dict() for t in s.tasks()} == truth
            counts = dict.fromkeys(STATES, 0)
            for t in s.tasks():
                counts[t.state] += 1
            assert s.counts() == counts
    finally:
        for s in stores:
            s.close()
        if server is not None:
            server.drop_db(name)
