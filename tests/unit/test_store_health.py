"""Poll health and provider details in the store: columns, migration, apply(health=), re-add with a kind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import tui.store as store_mod
from tui.model import Task
from tui.store import Change, Store, migrate


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


HEALTH = {"last_error": "HTTP 502 at /v1/tasks/a", "last_error_at": 1_800_000_100.0, "failed_polls": 3,
          "stalled": "no answer for 40 min", "poll_path": "/v1/tasks/a"}


# ---------------------------------------------------------------- columns and migration


def test_health_and_details_survive_reopen(db: Path, clock: Clock) -> None:
    with Store(db, clock=clock) as s:
        s.add("upscayl", ["a", "b"])
        s.apply([Task("upscayl", "a", state="succeeded", details={"storage path": "users/u/x.jpg"})],
                health={"upscayl:b": HEALTH})
        before = {t.key: t.to_dict() for t in s.tasks()}
    with Store(db, clock=clock) as s:
        after = {t.key: t.to_dict() for t in s.tasks()}
        b = s.get("upscayl:b")
        assert (b.last_error, b.last_error_at, b.failed_polls, b.stalled, b.poll_path) == tuple(HEALTH.values())
        assert s.get("upscayl:a").details == {"storage path": "users/u/x.jpg"}
        # the fields after them in Task (eta, rev) are not shifted by the new columns
        assert s.get("upscayl:a").rev > 0 and s.get("upscayl:a").eta is None
    assert after == before
    assert after["upscayl:b"]["stalled"] is True and after["upscayl:b"]["failed_polls"] == 3


def test_a_database_of_the_previous_schema_opens_and_upgrades(db: Path, clock: Clock) -> None:
    previous = store_mod.MIGRATIONS[:1]  # the schema every earlier tasktui wrote
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, previous) == 1
    conn.execute("UPDATE meta SET value = 1 WHERE name = 'seq'")
    conn.execute(
        "INSERT INTO tasks (key, provider, task_id, kind, state, results, model, updated_at, eta, rev, seq)"
        " VALUES ('evolink:old', 'evolink', 'old', 'video', 'running', '[\"https://r/1\"]', 'm', 5.0, 9.0, 1, 1)")
    conn.close()
    with Store(db, clock=clock) as s:
        t = s.get("evolink:old")
        assert (t.kind, t.state, t.results, t.model, t.updated_at, t.eta, t.rev) == (
            "video", "running", ["https://r/1"], "m", 5.0, 9.0, 1)
        assert (t.last_error, t.last_error_at, t.failed_polls, t.stalled, t.poll_path, t.details) == (
            None, None, 0, None, None, {})
        s.apply([], health={"evolink:old": {"failed_polls": 1}})
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION == 7
    with Store(db, readonly=True) as s:
        assert s.get("evolink:old").failed_polls == 1


def test_a_previous_schema_file_reads_read_only_without_migrating(db: Path) -> None:
    """`tasktui ls` right after an upgrade opens the old file read-only: it must read, not refuse."""
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, store_mod.MIGRATIONS[:1])
    conn.execute("INSERT INTO tasks (key, provider, task_id, state, rev, seq)"
                 " VALUES ('comfy:a', 'comfy', 'a', 'queued', 1, 1)")
    conn.execute("UPDATE meta SET value = 1 WHERE name = 'seq'")
    with Store(db, readonly=True) as reader:
        t = reader.get("comfy:a")
        assert (t.state, t.failed_polls, t.details, t.last_error) == ("queued", 0, {}, None)
        conn.execute("UPDATE meta SET value = 2 WHERE name = 'seq'")
        conn.execute("UPDATE tasks SET state = 'running', rev = 2, seq = 2")
        assert reader.sync() == {"comfy:a"} and reader.get("comfy:a").state == "running"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # left as it was
    conn.close()


# ---------------------------------------------------------------- apply(health=)


def test_health_leaves_state_history_updated_at_and_raw_alone(store: Store, clock: Clock) -> None:
    store.add("evolink", ["a"])
    store.apply([Task("evolink", "a", state="running", provider_status="processing", progress=40.0,
                      raw={"answer": 1})])
    before = store.get("evolink:a")
    history = store.history("evolink:a")
    changes = feed(store)
    clock.now += 60
    assert store.apply([], health={"evolink:a": HEALTH}) == {"evolink:a"}
    t = store.get("evolink:a")
    assert (t.state, t.provider_status, t.progress, t.updated_at) == (
        before.state, before.provider_status, before.progress, before.updated_at)
    assert (t.last_error, t.failed_polls, t.stalled, t.poll_path) == (
        HEALTH["last_error"], 3, HEALTH["stalled"], HEALTH["poll_path"])
    assert t.rev > before.rev  # the row is redrawn
    assert store.history("evolink:a") == history
    assert store.raw("evolink:a") == {"answer": 1}
    assert [c.keys for c in changes] == [{"evolink:a"}]
    # the same health again is no change: no rev, no notification
    rev = t.rev
    assert store.apply([], health={"evolink:a": dict(HEALTH)}) == set()
    assert store.get("evolink:a").rev == rev and len(changes) == 1


def test_health_reaches_another_process_store(db: Path) -> None:
    with Store(db) as engine, Store(db) as ui:
        engine.add("qolaba", ["a"])
        ui.sync()
        seen = feed(ui)
        engine.apply([], health={"qolaba:a": {"stalled": "Celery answers PENDING for unknown ids",
                                               "failed_polls": 0}})
        assert ui.sync() == {"qolaba:a"}
        assert seen[-1].keys == {"qolaba:a"}
        assert ui.get("qolaba:a").stalled == "Celery answers PENDING for unknown ids"
        assert ui.get("qolaba:a").to_dict() == engine.get("qolaba:a").to_dict()


def test_health_of_untracked_keys_is_ignored_and_bad_fields_refused(store: Store) -> None:
    store.add("evolink", ["a"])
    assert store.apply([], health={"evolink:zz": HEALTH}) == set()
    assert "evolink:zz" not in store
    with pytest.raises(ValueError, match="unknown health field"):
        store.apply([], health={"evolink:a": {"state": "failed"}})
    assert store.get("evolink:a").state == "unknown"


def test_health_is_applied_after_the_round_updates(store: Store) -> None:
    store.add("evolink", ["a", "b"])
    store.apply([Task("evolink", "a", state="running"), Task("evolink", "b", state="queued")],
                health={"evolink:a": {"failed_polls": 2, "last_error": "timeout"}})
    a = store.get("evolink:a")
    assert (a.state, a.failed_polls, a.last_error) == ("running", 2, "timeout")


def test_a_fresh_answer_writes_its_own_health_and_keeps_poll_path(store: Store, clock: Clock, db: Path) -> None:
    store.add("evolink", ["a"])
    store.apply([], health={"evolink:a": HEALTH})
    clock.now += 30
    # the engine's successful poll: health reset, no poll_path repeated
    store.apply([Task("evolink", "a", state="running")])
    t = store.get("evolink:a")
    assert (t.last_error, t.last_error_at, t.failed_polls, t.stalled) == (None, None, 0, None)
    assert t.poll_path == HEALTH["poll_path"]
    assert t.updated_at == clock.now
    # an answer that carries health writes it as given
    store.apply([Task("evolink", "a", state="running", failed_polls=1, last_error="bad body",
                      poll_path="/v2/tasks/a")])
    t = store.get("evolink:a")
    assert (t.failed_polls, t.last_error, t.poll_path) == (1, "bad body", "/v2/tasks/a")
    with Store(db, readonly=True) as other:  # and it is in the file, not only in memory
        assert other.get("evolink:a").to_dict() == t.to_dict()


def test_details_kept_unless_the_new_answer_has_its_own(store: Store) -> None:
    store.add("upscayl", ["a"])
    store.apply([Task("upscayl", "a", state="running", details={"storage path": "users/u/x.jpg"})])
    store.apply([Task("upscayl", "a", state="running", progress=50.0)])
    assert store.get("upscayl:a").details == {"storage path": "users/u/x.jpg"}
    store.apply([Task("upscayl", "a", state="succeeded", details={"storage path": "users/u/y.jpg"})])
    assert store.get("upscayl:a").details == {"storage path": "users/u/y.jpg"}


def test_details_change_alone_is_visible(store: Store) -> None:
    store.add("upscayl", ["a"])
    store.apply([Task("upscayl", "a", state="running")])
    changes = feed(store)
    rev = store.get("upscayl:a").rev
    assert store.apply([Task("upscayl", "a", state="running", details={"credits deducted": "no"})]) == {
        "upscayl:a"}
    assert store.get("upscayl:a").rev > rev and changes[-1].keys == {"upscayl:a"}


# ---------------------------------------------------------------- re-add with another kind


def test_readd_with_a_new_kind_updates_it_and_reports_it(store: Store) -> None:
    assert store.add("freepik", ["a", "b"], kind="skin-enhancer/faithful") == ["freepik:a", "freepik:b"]
    assert store.last_updated_kinds == [] and store.last_revived == []
    store.apply([], health={"freepik:b": HEALTH})
    changes = feed(store)
    # the same kind again, no kind, an empty kind: nothing to update
    for kind in ("skin-enhancer/faithful", None, "", "  "):
        assert store.add("freepik", ["a", "b"], kind=kind) == []
        assert store.last_updated_kinds == []
    assert changes == []
    assert store.add("freepik", ["a", "b", "c"], kind="skin-enhancer") == ["freepik:c"]  # same return as before
    assert store.last_updated_kinds == ["freepik:a", "freepik:b"]
    assert store.last_revived == []
    b = store.get("freepik:b")
    assert b.kind == "skin-enhancer"
    # the old path's health is gone with the old kind
    assert (b.last_error, b.last_error_at, b.failed_polls, b.stalled, b.poll_path) == (None, None, 0, None, None)
    assert changes[-1].keys == {"freepik:a", "freepik:b", "freepik:c"}


def test_a_not_found_from_a_wrong_kind_is_recovered_by_readding(store: Store, clock: Clock, db: Path) -> None:
    store.add("freepik", ["a", "done"], kind="skin-enhancer/faithful")
    store.apply([
        Task("freepik", "a", state="not_found",
             error="not found at /v1/ai/skin-enhancer/faithful/a — wrong --kind?", last_error="HTTP 404",
             failed_polls=1, poll_path="/v1/ai/skin-enhancer/faithful/a"),
        Task("freepik", "done", state="succeeded", results=["https://r/x.png"]),
    ])
    assert store.counts()["not_found"] == 1
    clock.now += 100
    assert store.add("freepik", ["a", "done"], kind="skin-enhancer") == []
    assert store.last_updated_kinds == ["freepik:a", "freepik:done"]
    assert store.last_revived == ["freepik:a"]
    a = store.get("freepik:a")
    assert (a.kind, a.state, a.error, a.finished_at, a.poll_path, a.failed_polls, a.last_error) == (
        "skin-enhancer", "unknown", None, None, None, 0, None)
    assert store.history("freepik:a")[-1][:2] == (clock.now, "unknown")
    assert store.counts()["not_found"] == 0 and store.counts()["unknown"] == 1
    # a task that ended well keeps its end: only its kind changes
    done = store.get("freepik:done")
    assert (done.kind, done.state, done.results) == ("skin-enhancer", "succeeded", ["https://r/x.png"])
    with Store(db, readonly=True) as other:
        assert other.get("freepik:a").to_dict() == a.to_dict()


def test_health_values_are_kept_storable(store: Store, db: Path) -> None:
    """NaN would come back from SQLite as NULL (and NaN != NaN would look like a change at every
    round); huge texts and detail lists are capped."""
    store.add("evolink", ["a", "b"])
    store.apply([Task("evolink", "a", state="running", last_error_at=float("nan"), failed_polls=10**30,
                      last_error="e" * 100_000, details={f"k{i}": "v" for i in range(500)})],
                health={"evolink:b": {"last_error_at": float("inf"), "failed_polls": None, "stalled": 42}})
    a, b = store.get("evolink:a"), store.get("evolink:b")
    assert a.last_error_at is None and a.failed_polls == 10**9 and len(a.last_error) == store_mod.TEXT_CAP
    assert len(a.details) == store_mod.DETAILS_CAP
    assert (b.last_error_at, b.failed_polls, b.stalled) == (None, 0, "42")
    rev = a.rev
    store.apply([Task("evolink", "a", state="running", last_error_at=float("nan"), failed_polls=10**30,
                      last_error="e" * 100_000, details={f"k{i}": "v" for i in range(500)})])
    assert store.get("evolink:a").rev == rev  # the same answer again is no change
    with Store(db, readonly=True) as other:
        assert {t.key: t.to_dict() for t in other.tasks()} == {t.key: t.to_dict() for t in store.tasks()}
