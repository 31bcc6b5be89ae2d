"""Shared fixtures.  Heavy imports (the simulator, starlette, uvicorn) happen
inside the fixtures, never at module level; nothing here imports Textual.

Simulator fixtures (a real server on 127.0.0.1, a random free port):

``sim``
    A running ``tui.sim.SimServer`` with ``small_scenario()``, its clock
    frozen at t=0 (speed 0): move time with ``sim.advance(seconds)`` or
    ``sim.clock.set(t)``, never by sleeping.  Function-scoped, stopped after.
    ``sim.base_url``, ``sim.key(provider)`` (``"sim-key-<provider>"``),
    ``sim.requests`` / ``sim.violations`` (records), ``sim.add(tasks, faults)``,
    ``sim.reset()``, ``sim.config_toml()`` (a tasktui config for all five).
    The small scenario: every provider has ``<p>-queued``, ``<p>-running``
    (50 % at t=0, succeeds at t=30), ``<p>-done`` (succeeded, one result URL),
    ``<p>-failed`` (error "simulated failure"); plus ``freepik-cancelled`` and
    ``evolink-expired`` (answers 404).  Comfy/freepik tasks use the default
    kinds (``image-relight``, ``text-to-image/hyperflux``).

``sim_factory(scenario=None, speed=0.0)``
    Start another SimServer with your own scenario; all are stopped after.

``sim_task(provider, task_id, state="running", at=0.0, **fields)``
    Build a ``SimTask`` that is in ``state`` (queued running succeeded failed
    cancelled expired) at sim time ``at``.

``sim_fault(kind, provider=None, **fields)``
    Build a ``Fault``: rate_limit (Retry-After header), rate_limit_text (wait
    only in the body), rate_limit_bare, quota (402), auth (401/403), not_found,
    server_error (``status=``), html_502, malformed, invalid_utf8, empty,
    wrong_shape, slow (``delay=`` real seconds), drop (connection closed
    mid-answer).  ``retry_after_date=True`` sends Retry-After as an HTTP date.  Limit with
    ``task_id=``, ``endpoint=``, ``start=``/``end=`` (sim time), ``count=``.

``sim_scenario(*tasks, faults=(), keys=None, **provider_options)``
    Build a ``Scenario`` with all five providers (keys ``sim-key-<p>``), e.g.
    ``sim_scenario(t1, t2, faults=[f], upscayl={"variant": "openapi", "budget": "100/h"})``.

Vendors behind the Comfy proxy (tui/sim/vendors.py): ``sim_task("kling", "k1")``
works for kling runway luma minimax seedance wan sora tripo pixverse vidu
stability veo, served at each vendor's poll path under ``/proxy/<vendor>/``
with the Comfy key (``sim.key("kling") == sim.key("comfy")``); ``acme`` is a
made-up vendor at ``GET /acme/v2/jobs/{id}`` (key ``sim-key-acme``) for
declared providers.  ``sim.config_toml()`` configures the vendors a scenario
has tasks for.  Kling's kind ``text2video`` is polled on ``videos/text2video``;
Veo's kind is the model, its id the operation name.

Push (tui/sim/push.py): ``sim.pusher(freepik_url=..., freepik_secret=...,
evolink_url=..., options=PushOptions(...))`` sends Freepik webhooks and EvoLink
callbacks for status changes in sim time; ``pusher.pump()`` (blocking HTTP: in
an async test ``await asyncio.to_thread(pusher.pump)``) sends what is due,
retries included (sim time: EvoLink 1, 2, 4 s), ``pusher.replay(attempt)``,
``pusher.attempts``; close it after (``sim_pusher`` does).

``sim_pusher(sim=None, **kwargs)``
    A Pusher for ``sim`` (default: the ``sim`` fixture's server), closed after the test.

``http_server(answer=None, default=(404, {...}))``
    The one throwaway HTTP server (tests/http_server.py): a route table
    (``{"/path": (200, body), ("POST", "/p"): (500, b"..."), "/slow": HANG}``) or a
    function of the request; records ``.seen`` / ``.requests``, ``.wait_for_requests(n)``.

Example::

    async def test_x(sim_factory, sim_task, sim_fault, sim_scenario):
        sim = sim_factory(sim_scenario(sim_task("evolink", "t1", "queued"),
                                       faults=[sim_fault("rate_limit", "evolink", retry_after=5, count=1)]))
        ...  # point a provider at sim.base_url with sim.key("evolink")
        sim.advance(60)

Layout: ``tests/unit`` holds tests of one module in-process (parsers against published
bodies, the filter language, the schedule's policy, a store on a temporary file, a
loopback stub server at most); ``tests/functional`` holds the tests that start real
parts (the dashboard under Pilot or in tmux, the simulator, other processes, a
PostgreSQL server).  ``pytest tests/unit`` runs in seconds.  Helper modules
(``tests/pg.py``, ``tests/http_server.py``, ``tests/file_server.py``, ...) and data
(``tests/data``, ``tests/fixtures``) sit beside this file; a test module may import
another's helpers by its bare name (``from test_collect import write_config``): both
folders are on ``sys.path``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment;
    # Textual takes its size from them, so a dashboard a test starts in a 140x40 tmux
    # pane would draw at 80x24.  No test relies on them.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

for _folder in ("unit", "functional"):
    _path = str(Path(__file__).resolve().parent / _folder)
    if _path not in sys.path:
        sys.path.insert(0, _path)


@pytest.fixture
def sim_factory():
    from tui.sim import SimServer

    servers = []

    def start(scenario=None, speed: float = 0.0, **kwargs):
        server = SimServer(scenario, speed=speed, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sim(sim_factory):
    return sim_factory()


@pytest.fixture
def sim_task():
    from tui.sim import sim_task as build

    return build


@pytest.fixture
def sim_fault():
    from tui.sim import Fault

    def build(kind: str, provider: str | None = None, **fields):
        return Fault(kind=kind, provider=provider, **fields)

    return build


@pytest.fixture
def sim_scenario():
    from tui.sim import build_scenario

    return build_scenario


@pytest.fixture
def sim_pusher(request):
    pushers = []

    def make(sim=None, **kwargs):
        server = sim if sim is not None else request.getfixturevalue("sim")
        pusher = server.pusher(**kwargs)
        pushers.append(pusher)
        return pusher

    yield make
    for pusher in pushers:
        pusher.close()


@pytest.fixture
def http_server():
    """``http_server(answer=None, default=...)``: a started ``tests/http_server.py``
    ``HttpServer`` (a route table or a function of the request), stopped after the test.
    ``.url``, ``.seen``, ``.requests``, ``.wait_for_requests(n)``."""
    from http_server import HttpServer

    servers = []

    def start(answer=None, **kwargs):
        server = HttpServer(answer, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def file_host():
    """A real file host on 127.0.0.1 (tests/file_server.py): pictures, video and
    audio, slow, huge, dying and expired files, Range; it records every request and
    any credential sent to it.  Held answers are let go before it closes."""
    from file_server import FileServer

    server = FileServer()
    yield server
    server.release()
    server.close()


@pytest.fixture
def preview_cache(tmp_path, monkeypatch):
    """Previews cached under tmp_path (nothing read from, or left in, the user's cache)."""
    monkeypatch.setenv("TASKTUI_CACHE", str(tmp_path / "cache"))


# Modules whose tests wait longest on real parts (processes starting, leases running
# out, a simulator in real time): spread over the first half of the run, so they run
# beside the quick ones instead of after them (a long tail of one worker busy, three
# idle), and not all at once (they would slow each other down on two cores).
SLOW_FIRST = ("test_lease_procs.py", "test_crash_kill.py", "test_bench_smoke.py", "test_collect.py",
              "test_truth_strict.py", "test_engine_sim.py", "test_catalogue_sim.py", "test_sim_demo.py",
              "test_headless_stream.py", "test_push_collect.py", "test_store_crash.py", "test_tmux.py")


def pytest_collection_modifyitems(config, items):
    """``TASKTUI_TEST_ORDER=reverse``: run the suite back to front (a test that
    passes only after another one, or leaves something behind for the next one,
    shows itself; issue 14 asks for a reversed run before a release).  Either way
    the slow modules' tests (``SLOW_FIRST``) are spread evenly over the first half."""
    if os.environ.get("TASKTUI_TEST_ORDER", "").lower() == "reverse":
        items.reverse()
    rank = {name: n for n, name in enumerate(SLOW_FIRST)}
    slow = sorted((item for item in items if item.path.name in rank), key=lambda item: rank[item.path.name])
    if not slow or len(slow) == len(items):
        return
    rest = [item for item in items if item.path.name not in rank]
    step = max(1.0, len(rest) / 2 / len(slow))
    order: list = []
    taken = 0
    for n, item in enumerate(slow):  # a slow one, then `step` quick ones, ...
        upto = min(len(rest), int(n * step))
        order.extend(rest[taken:upto])
        taken = upto
        order.append(item)
    order.extend(rest[taken:])
    assert len(order) == len(items)
    items[:] = order


@pytest.fixture
def snap_compare(snap_compare):
    """pytest-textual-snapshot's ``snap_compare``, which takes the picture only once the
    task list has read its whole order (it reads the head for the first frame and the
    rest in a thread): on a busy machine the picture was otherwise taken half-way.
    Key presses run inside ``run_before`` so the wait comes after them too."""
    import time

    def compare(app, press=(), terminal_size=(80, 24), run_before=None, **kwargs):
        async def before(pilot):
            if run_before is not None:
                result = run_before(pilot)
                if hasattr(result, "__await__"):
                    await result
            await pilot.pause()
            if press:
                await pilot.press(*press)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    settled = getattr(pilot.app.task_list, "_settled", None)
                except Exception:  # no task list (another app), or not on the screen shown
                    settled = None
                if settled is None or settled.is_set():
                    break
                await pilot.pause(0.02)  # the event comes from the list's thread
            await pilot.pause()

        return snap_compare(app, terminal_size=terminal_size, run_before=before, **kwargs)

    return compare
