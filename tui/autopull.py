"""``[results] auto_download``: results downloaded as their tasks succeed,
before the provider's links expire (EvoLink's after 24 h, Upscayl's at
``expiresAt``).

It reads the store like a widget does and writes files and the store like
``tasktui pull`` does (``tui.results.pull``): providers -> engine -> store ->
this.  It never talks to a provider, and never sends a credential to a file
host (``results.check_client``).

Which tasks: every task the store reports as changed (its change feed, from
this process or another) that is now ``succeeded`` with web links and no
downloaded files.  Each is tried once per run; a link that fails is logged in
the store's event log as a ``download`` event with its reason ("expired",
"too large", an HTTP status), so the error log and ``tasktui errors`` show
it, and ``tasktui pull`` can try again by hand.  Tasks that succeeded before
it started are left to ``tasktui pull`` (a year of results is not fetched
because a dashboard opened).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from . import results
from .model import SUCCEEDED, Event, Task
from .text import is_web_url

log = logging.getLogger(__name__)

QUEUE_CAP = 10_000  # keys waiting at once; beyond it the newest wait for the next change


class AutoPull:
    """Downloads the results of tasks as they succeed (see the module's doc).

    ``start()`` subscribes to the store and starts the worker on the running
    loop; ``stop()`` ends both (a file half-written stays ``.part`` and is
    resumed by the next run or ``tasktui pull``).  ``on_result`` is called with
    each file's ``PullResult`` (the dashboard shows them); ``on_progress`` with
    each ``results.Progress``.
    """

    def __init__(self, store: Any, dest_dir: str | Path, *, max_bytes: int | None = None,
                 concurrency: int = 2, client: httpx.AsyncClient | None = None,
                 on_result: Callable[[results.PullResult], Any] | None = None,
                 on_progress: Callable[[results.Progress], Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.dest = Path(dest_dir).expanduser()
        self.max_bytes = max_bytes
        self.concurrency = max(1, concurrency)
        self._client = client
        self._own_client = client is None
        self.on_result = on_result
        self.on_progress = on_progress
        self.clock = clock
        self.tried: set[str] = set()  # keys tried this run (each once)
        self.downloaded = 0  # files written this run
        self.failed = 0  # links that could not be fetched this run
        self._queue: asyncio.Queue[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._workers: list[asyncio.Task] = []
        self._busy = 0  # keys queued or being downloaded
        self._idle = asyncio.Event()

    # ------------------------------------------------------------ life

    @property
    def running(self) -> bool:
        return self._loop is not None

    async def start(self, engine: Any = None) -> None:
        """Subscribe to the store and start the workers on the running loop (the
        ``Engine.attach`` protocol: the engine calls it when it starts)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._idle.set()
        if self._client is None:
            self._client = results.fresh_client()
        results.check_client(self._client)
        self._unsubscribe = self.store.subscribe(self._on_change)
        self._workers = [self._loop.create_task(self._work(), name=f"autopull-{n}")
                         for n in range(self.concurrency)]

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            try:
                await worker
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping: nothing to report
                pass
        self._workers = []
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    async def idle(self) -> None:
        """Wait until nothing is queued or being downloaded (for tests and shutdown)."""
        await self._idle.wait()

    # ------------------------------------------------------------ feed

    def _on_change(self, change: Any) -> None:
        """Store callback: any thread.  Hands the changed keys to the loop."""
        keys = list(getattr(change, "keys", ()) or ())
        if not keys or self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self.consider, keys)
        except RuntimeError:  # the loop is closed: shutting down
            pass

    def consider(self, keys: Iterable[str]) -> int:
        """Queue the keys whose task now wants downloading; returns how many were queued."""
        if self._queue is None:
            return 0
        queued = 0
        for key in keys:
            if key in self.tried or self._queue.qsize() >= QUEUE_CAP:
                continue
            task = self.store.get(key)
            if not wants(task):
                continue
            self.tried.add(key)
            self._busy += 1
            self._idle.clear()
            self._queue.put_nowait(key)
            queued += 1
        return queued

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            key = await self._queue.get()
            try:
                task = self.store.get(key)
                if wants(task):
                    await self._pull(task)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one task's trouble never stops the others
                log.exception("auto-download of %s failed", key)
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

    async def _pull(self, task: Task) -> None:
        got = await results.pull(self.store, [task], self.dest, client=self._client,
                                 on_progress=self.on_progress, max_bytes=self.max_bytes, concurrency=1)
        events = []
        for r in got:
            if r.ok:
                self.downloaded += r.status in ("downloaded", "resumed")
            else:
                self.failed += 1
                why = r.message or r.status
                events.append(Event(self.clock(), task.provider,
                                    f"auto-download of result {r.n} failed: {why}",
                                    task_id=task.task_id, kind="download"))
            if self.on_result is not None:
                self.on_result(r)
        if events:
            try:
                self.store.log(events)
            except Exception:  # noqa: BLE001 - the log is best effort; the files stand
                log.warning("could not log %d download failures", len(events))


def wants(task: Task | None) -> bool:
    """A task whose results should be downloaded now: succeeded, with web links,
    and nothing downloaded yet."""
    return (task is not None and task.state == SUCCEEDED and bool(task.results) and not task.files
            and any(is_web_url(url) for url in task.results))


def attach_from_config(engine: Any, store: Any, config: Any) -> AutoPull | None:
    """An AutoPull run with ``engine`` when ``[results] auto_download`` is on
    (the dashboard and ``tasktui collect`` call this); None when it is off."""
    section = getattr(config, "results", None)
    if engine is None or section is None or not getattr(section, "auto_download", False):
        return None
    puller = AutoPull(store, section.dir)
    engine.attach(puller)
    return puller
