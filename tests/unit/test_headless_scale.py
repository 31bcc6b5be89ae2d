"""Headless at scale (issue 15): ``wait`` costs O(changed tasks) per loop turn.

A real SQLite file in tmp_path; the engine is a stand-in that writes answers to
the store in batches, the way a real one does after each round (each write
wakes ``wait``).  Costs are counted (store reads, provider views), never timed.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from tui.headless import Watch, wait_for
from tui.model import Task
from tui.store import Store

PENDING_REASON = "Celery answers PENDING for ids it never saw or whose result expired"


class Counting:
    """The store, counting the tasks read from it with ``get``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gets = 0

    def get(self, key: str):
        self.gets += 1
        return self.store.get(key)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


class BatchEngine:
    """Ends the tasks ``batches`` of them at a time, one store write per batch,
    letting ``wait`` run between the writes.  Counts the provider views asked."""

    def __init__(self, store: Store, batches: list[list[Task]]) -> None:
        self.store, self.batches = store, batches
        self.workers = {t.provider: None for batch in batches for t in batch}
        self.focus = None
        self.views = 0
        self.runner = None
        self.written = 0
        self.lines: list[str] = []

    async def start(self) -> None:
        self.turned = asyncio.Event()

        async def run() -> None:
            for batch in self.batches:
                self.turned.clear()
                self.store.apply(batch)
                self.written += 1
                await self.turned.wait()  # wait has taken this write (its progress line moved)

        self.runner = asyncio.ensure_future(run())

    def progress(self, line: str) -> None:
        self.lines.append(line)
        if getattr(self, "turned", None) is not None:
            self.turned.set()

    async def stop(self) -> None:
        if self.runner is not None:
            self.runner.cancel()

    def status(self, name: str):
        self.views += 1
        return SimpleNamespace(state="ok", last_error=None, requests=1)


def _store(tmp_path, n: int) -> tuple[Store, list[str]]:
    store = Store(tmp_path / "t.db")
    ids = [f"e{i:05d}" for i in range(n)]
    for start in range(0, n, 1000):
        store.add("evolink", ids[start:start + 1000])
    store.apply([Task("evolink", i, state="running", progress=10) for i in ids])
    return store, [f"evolink:{i}" for i in ids]


def test_a_watch_reads_again_only_the_tasks_the_change_feed_named(tmp_path):
    store, keys = _store(tmp_path, 2000)
    with store:
        counting = Counting(store)
        watch = Watch(counting, keys)
        unsubscribe = store.subscribe(watch.note)
        watch.refresh()
        assert counting.gets == 2000 and len(watch.live) == 2000 and watch.present == 2000
        counting.gets = 0
        store.apply([Task("evolink", "e00007", state="failed", error="boom"),
                     Task("evolink", "e00008", state="queued", stalled=PENDING_REASON)])
        watch.refresh()
        assert counting.gets == 2  # the two tasks written, not the 2,000 watched
        assert len(watch.live) == 1999 and watch.bad == 1 and watch.stalled() == 1
        assert [t.key for t in watch.newly_stalled] == ["evolink:e00008"]
        watch.newly_stalled = []
        counting.gets = 0
        watch.refresh()  # nothing changed: nothing read
        assert counting.gets == 0 and watch.newly_stalled == []
        store.remove(["evolink:e00009"])
        watch.refresh()
        assert counting.gets == 1 and watch.present == 1999 and len(watch.live) == 1998
        unsubscribe()


def test_wait_over_many_live_tasks_reads_each_change_once(tmp_path):
    n, per = 2000, 100
    store, keys = _store(tmp_path, n)
    with store:
        ids = [k.split(":", 1)[1] for k in keys]
        batches = [[Task("evolink", i, state="succeeded", results=[f"https://cdn.example/{i}.png"])
                    for i in ids[s:s + per]] for s in range(0, n, per)]
        counting = Counting(store)
        engine = BatchEngine(store, batches)
        code, message = asyncio.run(wait_for(engine, counting, keys, 60, progress=engine.progress))
    assert (code, message) == (0, None)
    assert engine.written == len(batches)
    # the first read of every task, then each task once more when its answer landed;
    # the old loop read all 2,000 on every one of its >= 20 turns (40,000 reads)
    assert counting.gets <= 2 * n + per
    # one provider view per provider per turn, never one per live task
    assert engine.views <= 3 * (len(batches) + 2)
    assert engine.lines[0] == f"waiting: 0/{n} done" and engine.lines[-1] == f"waiting: {n - per}/{n} done"
    assert len(engine.lines) == len(batches)  # one turn per write
