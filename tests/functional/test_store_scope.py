"""Store scopes ("all", "live", "none"), the aggregates in SQL, freshness columns and
``iter_tasks``: on both backends (a SQLite file in tmp_path, a real PostgreSQL database).
Two store objects on one database stand for two processes."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.pg import PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from tui.engine.health import credits_by_provider
from tui.filter import compile_filter
from tui.model import STATES, TERMINAL, Task
from tui.store import Store
from tui.stores import open_store

NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "pg"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return tmp_path / "tasks.db"
    return request.getfixturevalue("pg_url")


def catch_up(mine: Store, theirs: Store) -> set[str]:
    """``mine.sync()`` until it has seen all ``theirs`` committed (PostgreSQL: once the
    NOTIFY arrived, waited for, never slept)."""
    keys = set(mine.sync())
    deadline = time.monotonic() + 15
    while mine._seq < theirs._seq:
        assert time.monotonic() < deadline, "the change never reached the other store"
        wait = getattr(mine, "wait", None)
        if wait is not None:
            wait(0.5)
        keys |= mine.sync()
    return keys


def fill(store: Store, n: int = 40, seed: int = 7) -> list[Task]:
    """``n`` tasks over three providers in every state, some with credits."""
    rng = random.Random(seed)
    ids = [f"t{i:03d}" for i in range(n)]
    providers = ["evolink", "comfy", "freepik"]
    for p in providers:
        store.add(p, [i for k, i in enumerate(ids) if k % 3 == providers.index(p)], kind="image")
    updates = []
    for k, i in enumerate(ids):
        state = STATES[k % len(STATES)]
        updates.append(Task(providers[k % 3], i, state=state, credits=rng.choice([None, 0.0, 1.5, 2.25]),
                            updated_at=NOW + k, progress=50.0 if state == "running" else None))
    store.apply(updates)
    return updates


def test_live_scope_holds_live_tasks_and_answers_for_all(target: Any) -> None:
    with open_store(target) as full:
        fill(full)
        with open_store(target, scope="live") as live:
            assert {t.key for t in live.tasks()} == {t.key for t in full.tasks() if not t.terminal}
            assert live.keys() == [t.key for t in live.tasks()] == [k for k, _ in live.items()]
            assert all(not t.terminal for t in live.tasks()) and live.tasks()
            # every tracked task is still there for get / in / len / the aggregates
            for t in full.tasks():
                assert live.get(t.key) == t and t.key in live
            assert live.get("evolink:nope") is None and "evolink:nope" not in live
            assert len(live) == len(full) == 40
            assert live.counts() == full.counts()
            assert live.counts_by_provider() == full.counts_by_provider()
            assert live.credits_by_provider() == credits_by_provider(full.tasks())
            assert full.credits_by_provider() == credits_by_provider(full.tasks()) != {}
            assert live.count_where("state:done") == sum(t.terminal for t in full.tasks())
            assert live.count_where(None) == 40


def test_a_task_that_ends_leaves_memory_and_is_still_read(target: Any) -> None:
    with open_store(target, scope="live") as live:
        live.add("evolink", ["a", "b"])
        seen: list = []
        live.subscribe(seen.append)
        changed = live.apply([Task("evolink", "a", state="succeeded", results=["https://r/a"], updated_at=NOW)])
        assert changed == {"evolink:a"} and seen[-1].keys == {"evolink:a"}
        assert [t.key for t in live.tasks()] == ["evolink:b"]
        got = live.get("evolink:a")
        assert got.state == "succeeded" and got.results == ["https://r/a"]
        assert live.counts()["succeeded"] == 1 and live.counts()["unknown"] == 1 and len(live) == 2
        # an ended task is still updated (merge rules read the stored one)
        live.apply([Task("evolink", "a", state="succeeded", credits=3.0)])
        assert live.get("evolink:a").results == ["https://r/a"] and live.get("evolink:a").credits == 3.0
        assert live.remove(["evolink:a"]) == 1
        assert live.get("evolink:a") is None and len(live) == 1 and live.counts()["succeeded"] == 0


def test_change_feed_of_live_and_none_stores_names_the_keys(target: Any) -> None:
    with open_store(target) as writer:
        writer.add("evolink", ["a", "b", "c"])
        writer.apply([Task("evolink", "c", state="failed", error="boom")])
        with open_store(target, scope="live") as live, open_store(target, scope="none") as none:
            assert none.tasks() == [] and len(none) == 3
            writer.apply([Task("evolink", "a", state="succeeded")])
            writer.remove(["evolink:c"])  # an ended task, not in the live store's memory
            writer.add("comfy", ["x"])
            for mine in (live, none):
                assert catch_up(mine, writer) == {"evolink:a", "evolink:c", "comfy:x"}
                assert mine.get("evolink:a").state == "succeeded" and mine.get("evolink:c") is None
                assert mine.counts() == writer.counts() and len(mine) == 3
                assert mine.counts_by_provider() == writer.counts_by_provider()
            assert {t.key for t in live.tasks()} == {"evolink:b", "comfy:x"}
            assert none.tasks() == []


def test_none_scope_add_and_remove_read_no_rows(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    with Store(db) as s:
        s.add("evolink", [f"t{i}" for i in range(500)])
    statements: list[str] = []
    real = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    import tui.store as store_mod

    mp = pytest.MonkeyPatch()
    mp.setattr(store_mod.sqlite3, "connect", traced)
    try:
        with Store(db, scope="none") as s:
            assert s.add("evolink", ["new"]) == ["evolink:new"]
            assert s.remove(["evolink:t7"]) == 1
            assert s.add("evolink", ["t8"]) == []  # tracked: found by key
    finally:
        mp.undo()
    reads = [q for q in statements if q.lstrip().upper().startswith("SELECT") and "FROM tasks" in q]
    assert reads, "the trace saw nothing"
    for q in reads:  # every read of tasks is by key, or the max of an index, never a scan
        assert "key = " in q or "deleted = 1" in q or "MAX(" in q.upper(), q
    with Store(db) as s:
        assert len(s) == 500 and "evolink:new" in s and "evolink:t7" not in s


def test_freshness_is_stored_read_back_and_no_news(target: Any) -> None:
    with open_store(target) as s, open_store(target, scope="live") as other:
        s.add("evolink", ["a"])
        catch_up(other, s)
        seen: list = []
        s.subscribe(seen.append)
        assert s.apply([], health={"evolink:a": {"polled_at": NOW, "next_poll_at": NOW + 5}}) == set()
        assert seen == []  # freshness alone is no news
        t = s.get("evolink:a")
        assert (t.polled_at, t.next_poll_at, t.rev) == (NOW, NOW + 5, t.rev)
        catch_up(other, s)
        assert other.get("evolink:a").next_poll_at == NOW + 5
        # an answer carries it too, and an answer without it keeps the stored one
        s.apply([Task("evolink", "a", state="running", polled_at=NOW + 1, next_poll_at=NOW + 9)])
        s.apply([Task("evolink", "a", state="running", progress=10.0)])
        assert (s.get("evolink:a").polled_at, s.get("evolink:a").next_poll_at) == (NOW + 1, NOW + 9)
        with pytest.raises(ValueError):
            s.apply([], health={"evolink:a": {"polled": 1.0}})
    with open_store(target, readonly=True) as again:
        t = again.get("evolink:a")
        assert (t.polled_at, t.next_poll_at) == (NOW + 1, NOW + 9)
        assert t.to_dict()["next_poll_at"] == "2027-01-15T08:00:09Z"


@pytest.mark.parametrize("scope", ["all", "live", "none"])
def test_iter_tasks_streams_every_task_in_batches(target: Any, scope: str) -> None:
    with open_store(target) as full:
        fill(full, n=25)
        expected = full.tasks()
    with open_store(target, scope=scope) as s:
        assert list(s.iter_tasks(batch=4)) == expected
        pred = compile_filter("state:done -provider:comfy")
        assert list(s.iter_tasks("state:done -provider:comfy", batch=3)) == [t for t in expected if pred(t)]
        assert list(s.iter_tasks(s.where("t00"), batch=1)) == [t for t in expected if "t00" in t.task_id]
        assert s.count_where("-provider:comfy") == sum(t.provider != "comfy" for t in expected)
        with pytest.raises(ValueError):
            list(s.iter_tasks(order="sideways"))


def test_scope_is_checked() -> None:
    with pytest.raises(ValueError, match="scope"):
        Store("/nonexistent/x.db", scope="some")


def test_live_store_counts_ended_tasks_right_through_many_changes(target: Any) -> None:
    """Random adds, answers and removals from two stores: the live store's counts,
    memory and reads agree with a full store's at every step."""
    rng = random.Random(3)
    with open_store(target) as full, open_store(target, scope="live") as live:
        for step in range(12):
            writer = rng.choice([full, live])
            ids = [f"k{rng.randrange(30)}" for _ in range(5)]
            action = rng.random()
            if action < 0.4:
                writer.add(rng.choice(["evolink", "comfy"]), ids)
            elif action < 0.8:
                tracked = [k for k in (writer.keys() if writer is full else [t.key for t in full.tasks()])][:10]
                writer.apply([Task(*k.split(":", 1), state=rng.choice(STATES), credits=rng.choice([None, 1.0]))
                              for k in tracked])
            else:
                writer.remove([f"{p}:{i}" for p in ("evolink", "comfy") for i in ids])
            other = live if writer is full else full
            catch_up(other, writer)
            assert live.counts() == full.counts(), step
            assert live.counts_by_provider() == full.counts_by_provider(), step
            assert {t.key for t in live.tasks()} == {t.key for t in full.tasks() if t.state not in TERMINAL}
            for t in full.tasks():
                assert live.get(t.key) == t


@pytest.mark.parametrize("given,stored", [
    ("batch\x1b[31m 7\x1b]52;c;aGFjaw==\x07", "batch 7"),  # escape sequences go whole
    ("a\tb\nc", "a b c"),  # whitespace is one space, as on screen
    ("zero\u200bwidth\u202e", "zerowidth"),  # invisible characters and bidi overrides
    ("lone\ud800surrogate", "lonesurrogate"),  # no UTF-8 can hold it
    ("  \x07  ", None),  # nothing left: no label
])
def test_labels_and_kinds_are_cleaned_by_the_one_cleaner(tmp_path: Path, given: str, stored: str | None) -> None:
    from tui.text import clean

    with Store(tmp_path / "t.db") as s:
        s.add("evolink", ["a"], kind=given, label=given)
        t = s.get("evolink:a")
        assert t.label == stored and t.kind == stored
        if stored is not None:
            assert clean(t.label) == t.label  # what the screen would show of it: unchanged


@pytest.mark.parametrize("reverse", [False, True])
def test_window_order_of_every_sort_is_the_lists_python_sort(target: Any, reverse: bool) -> None:
    """window_ids (an index of each sort, on both backends) orders as the task list's
    own Python keys do (ties in insertion order); reversed, the exact mirror."""
    from tui.widgets.task_list import SORTS

    with open_store(target) as full:
        fill(full, n=60, seed=11)
        full.add("comfy", ["B", "a", "\u00e9", "Z"])  # byte order, not a locale's
        tasks = full.tasks()
    with open_store(target, scope="live") as s:
        for mode in SORTS:
            keys = [t.key for t in sorted(tasks, key=SORTS[mode])]
            expected = keys[::-1] if reverse else keys
            ids = s.window_ids(None, mode, reverse)
            by_id = s.keys_by_id(ids)
            assert [by_id[i] for i in ids] == expected, mode
            assert s.window_ids(None, mode, reverse, limit=5) == ids[:5]
            assert set(s.tasks_by_id(ids[:3])) == set(ids[:3])
            assert s.ids_for([by_id[ids[0]], "evolink:none"]) == {by_id[ids[0]]: ids[0]}
            where = s.where("state:fail")
            narrowed = s.window_ids(where, mode, reverse)
            assert [by_id[i] for i in narrowed] == [k for k in expected if s.get(k).state == "failed"]


def test_credits_counted_with_the_counts_follow_every_change(target: Any) -> None:
    """The credits come from the counts' scan at open; a change here or from another
    process (ended tasks, out of memory with scope "live") sums them again."""
    with open_store(target) as full:
        fill(full)
        with open_store(target, scope="live") as live:
            assert live._credits is not None  # counted at open, with the counts
            assert live.credits_by_provider() == credits_by_provider(full.tasks()) != {}
            done = [t for t in full.tasks() if t.terminal][:3]
            full.apply([t.copy(credits=10.0) for t in done])  # another process, ended tasks
            catch_up(live, full)
            assert live.credits_by_provider() == credits_by_provider(full.tasks())
            live.apply([Task("comfy", "t001", credits=7.0)])  # this process
            with open_store(target) as fresh:
                assert live.credits_by_provider() == credits_by_provider(fresh.tasks())
            live.remove(["evolink:t000", "comfy:t001"])
            catch_up(full, live)
            assert live.credits_by_provider() == credits_by_provider(full.tasks())


def test_live_counts_follow_ended_tasks_changed_elsewhere(target: Any) -> None:
    """An ended task (not in a "live" store's memory) changed or removed by another
    process: the counts, per state and per provider, are right at the next sync."""
    with open_store(target) as full:
        fill(full)
        with open_store(target, scope="live") as live:
            assert live.counts() == full.counts()
            ended = [t for t in full.tasks() if t.state in ("succeeded", "cancelled")]
            live.get(ended[0].key)  # one of them read before (kept in the small LRU)
            full.apply([ended[0].copy(state="failed"), ended[1].copy(state="failed")])
            full.remove([ended[2].key])
            # read after the other's writes, before this store's sync: the new versions
            assert live.get(ended[1].key).state == "failed" and live.get(ended[2].key) is None
            catch_up(live, full)
            assert live.counts() == full.counts() and live.counts_by_provider() == full.counts_by_provider()
            assert len(live) == len(full) == 39
            full.add(ended[2].provider, [ended[2].task_id])  # back, as a new task
            catch_up(live, full)
            assert live.counts() == full.counts() and len(live) == 40
