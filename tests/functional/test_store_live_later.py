"""Scope "live" reads its live tasks after opening (issue 15: the first frame does not
wait for them): in a thread, on a connection of its own, in one snapshot, taken into
memory on the store's thread.  Meanwhile every read is right, and a write committed
before or after that snapshot is neither lost nor announced twice.  On both backends
(a SQLite file in tmp_path, a real PostgreSQL database); two store objects on one
database stand for two processes.  The read waits on events the test sets, never on a
sleep."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.pg import PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from tui.model import Task
from tui.store import Change, Store
from tui.stores import open_store

NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "pg"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return tmp_path / "tasks.db"
    return request.getfixturevalue("pg_url")


def fill(store: Store) -> None:
    """12 evolink tasks: r0..r5 running, q0..q1 queued, d0..d3 ended."""
    store.add("evolink", [f"r{i}" for i in range(6)] + ["q0", "q1"] + [f"d{i}" for i in range(4)])
    store.apply([Task("evolink", f"r{i}", state="running", progress=10.0, updated_at=NOW + i) for i in range(6)]
                + [Task("evolink", f"q{i}", state="queued", updated_at=NOW) for i in range(2)]
                + [Task("evolink", f"d{i}", state="succeeded" if i % 2 else "failed", updated_at=NOW)
                   for i in range(4)])


def truth(target: Any) -> tuple[dict[str, dict], dict[str, int]]:
    """The live tasks and the counts as a fresh store reads them from the database."""
    with open_store(target) as fresh:
        return ({t.key: t.to_dict() for t in fresh.tasks() if not t.terminal}, fresh.counts())


class Gate:
    """Holds the store's reading thread: before its snapshot (``at="before"``) or right
    after it (``at="after"``), until ``go`` is set; ``held`` is set once it waits."""

    def __init__(self, store: Store, at: str) -> None:
        self.held, self.go = threading.Event(), threading.Event()
        read = store._read_live_tx

        def gated(conn: Any) -> Any:
            if at == "before":
                self.held.set()
                assert self.go.wait(30), "the test never let the read go"
                return read(conn)
            out = read(conn)
            self.held.set()
            assert self.go.wait(30), "the test never let the read go"
            return out

        store._read_live_tx = gated  # type: ignore[method-assign]


def read_in(store: Store) -> threading.Event:
    """Start the read; the event is set (from the reading thread) once it is over."""
    done = threading.Event()
    store.load_live(done.set)
    return done


def test_live_tasks_come_after_opening_and_reads_are_right_meanwhile(target: Any) -> None:
    with open_store(target) as writer:
        fill(writer)
        live_keys = [t.key for t in writer.tasks() if not t.terminal]
        every = {t.key: t.to_dict() for t in writer.tasks()}
        with open_store(target, scope="live") as live:
            assert live.live_pending
            live.defer_live()  # as the dashboard does: it reads them after its first frame
            gate = Gate(live, "before")
            done = read_in(live)
            assert gate.held.wait(30)
            # not in memory yet, and every read answers as before
            assert live.tasks() == [] and live.keys() == [] and live.items() == []
            assert live.finish_live() is False and live.live_pending
            assert {k: live.get(k).to_dict() for k in every} == every
            assert len(live) == 12 and live.counts() == writer.counts()
            assert live.counts_by_provider() == writer.counts_by_provider()
            assert live.count_where("state:running") == 6
            gate.go.set()
            assert done.wait(30)
            assert live.finish_live() is True and not live.live_pending
            assert live.keys() == live_keys  # insertion order, the live ones only
            assert {t.key: t.to_dict() for t in live.tasks()} == truth(target)[0]


def test_without_defer_live_tasks_reads_them_at_once(target: Any) -> None:
    with open_store(target) as writer:
        fill(writer)
        with open_store(target, scope="live") as live:
            assert live.live_pending
            assert {t.key: t.to_dict() for t in live.tasks()} == truth(target)[0]  # no thread: read here
            assert not live.live_pending


@pytest.mark.parametrize("at", ["before", "after"])
def test_writes_while_the_live_tasks_are_read_are_neither_lost_nor_doubled(target: Any, at: str) -> None:
    """Writes by another process land before the read's snapshot (the store has not caught
    up with them when it takes the tasks in: it does first) or after it (the snapshot is
    older than memory for those keys: memory's version stands); this store writes too."""
    with open_store(target) as writer:
        fill(writer)
        with open_store(target, scope="live") as live:
            live.defer_live()
            seen: list[Change] = []
            live.subscribe(seen.append)
            live.apply([Task("evolink", "r5", state="running", progress=55.0)])  # our own, before the read
            gate = Gate(live, at)
            done = read_in(live)
            assert gate.held.wait(30)
            writer.apply([Task("evolink", "r0", state="succeeded"),  # live -> ended
                          Task("evolink", "r1", state="running", progress=80.0),  # live, changed
                          Task("evolink", "d0", state="running")])  # ended -> live again
            writer.add("evolink", ["n0"])  # a new live task
            writer.remove(["evolink:q0"])  # a live task removed
            changed = {"evolink:r0", "evolink:r1", "evolink:d0", "evolink:n0", "evolink:q0"}
            if at == "after":
                live.sync()  # the store catches up before the read is taken in
                wait = getattr(live, "wait", None)
                deadline = time.monotonic() + 15
                while live._seq < writer._seq:  # PostgreSQL: once the NOTIFY came in
                    assert time.monotonic() < deadline, "the change never reached the store"
                    if wait is not None:
                        wait(0.5)
                    live.sync()
            gate.go.set()
            assert done.wait(30)
            assert live.finish_live() is True
            for _ in range(2):
                live.sync()  # nothing more to find: not announced twice
            live_now, counts = truth(target)
            assert {t.key: t.to_dict() for t in live.tasks()} == live_now
            assert "evolink:r0" not in live.keys() and "evolink:d0" in live.keys() and "evolink:n0" in live.keys()
            assert live.get("evolink:r1").progress == 80.0 and live.get("evolink:r5").progress == 55.0
            assert live.get("evolink:q0") is None and live.get("evolink:r0").state == "succeeded"
            assert live.counts() == counts and len(live) == sum(counts.values())
            named = Counter(k for change in seen for k in change.keys)
            assert set(named) == changed | {"evolink:r5"}
            assert all(n == 1 for n in named.values()), named  # each write announced once
            # later writes go on as before
            writer.apply([Task("evolink", "r2", state="failed", error="boom")])
            deadline = time.monotonic() + 15
            while "evolink:r2" in live.keys():
                assert time.monotonic() < deadline, "the change never reached the store"
                if getattr(live, "wait", None) is not None:
                    live.wait(0.5)
                live.sync()
            assert live.counts() == truth(target)[1]


def test_the_state_at_open_of_a_task_changed_before_the_live_tasks_came(target: Any) -> None:
    with open_store(target) as writer:
        fill(writer)
        with open_store(target, scope="live") as live:
            live.defer_live()
            gate = Gate(live, "before")
            done = read_in(live)
            assert gate.held.wait(30)
            writer.apply([Task("evolink", "r0", state="succeeded")])
            live.sync()
            assert live.state_at_open("evolink:r0") == "running"
            assert live.state_at_open("evolink:q1") == "queued"
            gate.go.set()
            assert done.wait(30) and live.finish_live()
            assert live.state_at_open("evolink:r0") == "running"  # learned before: still answered
            writer.apply([Task("evolink", "r1", state="succeeded")])
            assert live.state_at_open("evolink:r1") is None  # changed after: memory knew it


def test_a_failed_read_is_read_again(target: Any) -> None:
    with open_store(target) as writer:
        fill(writer)
        with open_store(target, scope="live") as live:
            live.defer_live()
            failed = threading.Event()

            def broken(conn: Any) -> Any:
                failed.set()
                raise OSError("the read broke")

            live._read_live_tx = broken  # type: ignore[method-assign]
            done = read_in(live)
            assert done.wait(30) and failed.is_set()
            del live._read_live_tx  # the next read works
            assert live.finish_live(wait=True) is True  # read again, here
            assert {t.key: t.to_dict() for t in live.tasks()} == truth(target)[0]


def test_other_scopes_have_nothing_to_read(target: Any) -> None:
    with open_store(target) as full:
        fill(full)
        assert not full.live_pending and full.finish_live() is True
        told = threading.Event()
        full.load_live(told.set)
        assert told.is_set()  # at once: nothing is read
    with open_store(target, scope="none") as none:
        assert not none.live_pending and none.tasks() == []
