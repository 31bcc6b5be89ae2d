"""The fault matrix of docs/reliability.md: every provider x every fault, in two layers.

* client layer: ``make_provider(...).fetch_status`` against the simulator on
  127.0.0.1 raises exactly the typed error of the table;
* engine layer: the real ``Engine`` with a real ``Store`` (SQLite in tmp_path)
  first sees a good answer (the task is running at 50 %), then the fault: the
  round raises nothing, the error log holds the right kind and status, the task
  keeps its last good state (or, for a 4xx about the task, ends with the
  table's state and message: issue 11), its poll health counts the failed poll
  where the fault is the task's own (transient, unreadable), the provider state
  (and its cause when ``degraded``) and its retry time are as the table says,
  and polling resumes (or not) as the table says.

The engine runs on a fake clock (``clock``/``wall`` are injected), so waits are
checked exactly and nothing sleeps.  Faults come from the simulator; "connection
refused" and "wrong content type" come from ``Front``, a throwaway HTTP server
that forwards to the simulator until told otherwise.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from tui.config import parse_config
from tui.engine import Engine
from tui.model import (
    FAILED,
    NOT_FOUND,
    PROVIDERS,
    RUNNING,
    AuthError,
    BadResponse,
    ClientError,
    NotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
    task_key,
)
from tui.providers import make_provider
from tui.store import Store
from http_server import HttpServer, Reply, Seen

WALL0 = 1_800_000_000.0  # the fake wall clock at fake monotonic 0
POLL = 1.0  # poll_interval of every provider here: the backoff base is then 1 s
RETRY_MARGIN = 0.25  # what the engine adds to a provider's Retry-After
QUOTA_PROBE = 600.0  # a provider out of credits is probed every 10 minutes
DEFAULT_429_WAIT = 60.0  # a 429 that does not say how long to wait
PORTAL = (b"<!DOCTYPE html><html><head><title>Sign in to continue</title></head>"
          b"<body><form>captive portal</form></body></html>")


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Cell:
    """One fault: how to cause it, and what must follow (docs/reliability.md)."""

    name: str
    sim: dict[str, Any] | None  # a simulator Fault; None: Front does it
    error: type[ProviderError]
    status: int | None  # HTTP status in the error and the event (None: no answer)
    state: str  # provider state after the round
    retry_after: float | None = None  # the wait the error carries
    timeout: float = 10.0  # client timeout of the provider for this cell
    ends: str | None = None  # the task's state after the fault (None: it keeps its last good state)
    reason: str | None = None  # the start of the ended task's error text
    cause: str | None = None  # the start of the provider's cause (state degraded)
    list_off: bool = False  # the kind's list answered the fault first: switched off, one event
    code: str | None = None  # the error's code, where the cell pins it


# Issue 11 changed these rows on purpose:
# * 400 and 413 about a task are permanent: asking again will not help, so the
#   task ENDS failed with "request refused (HTTP 4xx): <message>" (it used to keep
#   its last good state and be asked for ever);
# * an answer that cannot be read (bad_response: malformed JSON, empty body, wrong
#   content type, wrong shape) never ends a task, but the provider is no longer
#   "ok": it is "degraded", its cause naming the task whose polls fail.
BAD = "1 task's polls failing (HTTP 200: "  # the degraded cause of the bad_response rows

FAULTS = [
    Cell("400", dict(kind="server_error", status=400), ClientError, 400, "ok",
         ends=FAILED, reason="request refused (HTTP 400): Bad Request"),
    Cell("401", dict(kind="auth"), AuthError, 401, "auth_failed"),
    Cell("402", dict(kind="quota"), QuotaExhausted, 402, "quota_exhausted"),
    Cell("403", dict(kind="auth", status=403), AuthError, 403, "auth_failed"),
    Cell("404", dict(kind="not_found"), NotFound, 404, "ok",
         ends=NOT_FOUND, reason="Task not found or expired"),
    Cell("413", dict(kind="server_error", status=413), ClientError, 413, "ok",
         ends=FAILED, reason="request refused (HTTP 413): Error"),
    Cell("429-retry-after", dict(kind="rate_limit", retry_after=7), RateLimited, 429, "rate_limited", 7.0),
    Cell("429-body-hint", dict(kind="rate_limit_text", retry_after=120), RateLimited, 429, "rate_limited", 120.0),
    Cell("429-no-hint", dict(kind="rate_limit_bare"), RateLimited, 429, "rate_limited"),
    Cell("500", dict(kind="server_error", status=500), Transient, 500, "backing_off"),
    # A broken backend's 500 (issue 11, item 2). Qolaba's handle_exceptions wraps
    # every exception, a Redis outage included, in {"error": "Internal Error",
    # "error_data": ..., "status": "FAILED", "task_id": null} (qolaba_modal_docs
    # src/utils/Exceptions.py; tui/sim/bodies.py qolaba_infra_error): no proof the
    # task failed, so Transient (code unconfirmed_failure), the task keeps running
    # (it used to end failed). The other providers answer their plain 500 body.
    Cell("500-backend-failed", dict(kind="infra_error"), Transient, 500, "backing_off"),
    Cell("502-html", dict(kind="html_502"), Transient, 502, "backing_off"),
    Cell("503", dict(kind="server_error", status=503), Transient, 503, "backing_off"),
    Cell("timeout", dict(kind="slow", delay=60), Transient, None, "backing_off", timeout=1.5),
    Cell("refused", None, Transient, None, "offline"),
    Cell("reset-mid-body", dict(kind="drop"), Transient, None, "offline"),
    Cell("malformed-json", dict(kind="malformed"), BadResponse, 200, "degraded", cause=BAD),
    Cell("empty-body", dict(kind="empty"), BadResponse, 200, "degraded", cause=BAD),
    Cell("wrong-content-type", None, BadResponse, 200, "degraded", cause=BAD),
    Cell("wrong-shape", dict(kind="wrong_shape"), BadResponse, 200, "degraded", cause=BAD),
]
BY_NAME = {c.name: c for c in FAULTS}

# Where a provider's documents make a cell differ from the row.
EXCEPTIONS: dict[tuple[str, str], dict[str, Any]] = {
    # EvoLink's 503 body says "retry after 30 seconds" (fallback_suggestion): honoured.
    ("evolink", "503"): dict(retry_after=30.0),
    ("qolaba", "500-backend-failed"): dict(code="unconfirmed_failure"),
    # Issue 11, item 9: EvoLink's 400 about the task id (param "task_id", as in its
    # published invalid_task_id body) means the id can never be found: NotFound,
    # and the task ends not_found with the message (it used to be retried for ever).
    ("evolink", "400"): dict(error=NotFound, ends=NOT_FOUND, reason="Bad Request"),
}

# Cells where the code does not do what the table says: reported bugs (none open).
BUGS: dict[tuple[str, str], str] = {}


# Providers polled by a list (has_list): a proven provider's round asks the kind's
# list, not the task.  Issue 11: a list is an optimisation, never a gate: any
# failure of it but a provider-wide one (refused key, no credits, 429) switches it
# off for 30 minutes with one event, and the task is asked on its own in the same
# round, so the task's own answer decides (the list's failure used to be taken
# as the round's answer).
LIST_PROVIDERS = {"freepik"}
PROVIDER_WIDE = (AuthError, QuotaExhausted, RateLimited)  # the provider's state says it, not the task's health


def expected(provider: str, cell: Cell) -> Cell:
    cell = replace(cell, **EXCEPTIONS.get((provider, cell.name), {}))
    if provider in LIST_PROVIDERS and not issubclass(cell.error, PROVIDER_WIDE):
        cell = replace(cell, list_off=True)
    return cell


def test_list_providers_are_those_with_a_list():
    assert LIST_PROVIDERS == {p for p in PROVIDERS if make_provider(p, "k", "http://127.0.0.1:9").has_list}


def matrix() -> list:
    params = []
    for cell in FAULTS:
        for provider in PROVIDERS:
            marks = []
            if (provider, cell.name) in BUGS:
                marks.append(pytest.mark.xfail(strict=True, reason=BUGS[(provider, cell.name)]))
            params.append(pytest.param(provider, cell.name, id=f"{provider}-{cell.name}", marks=marks))
    return params


# ---------------------------------------------------------------- a throwaway front server


class Front:
    """An HTTP server on 127.0.0.1 (the shared test server) that forwards every
    request to ``upstream`` (the simulator), or answers ``canned`` (status,
    headers, body) instead.  ``close()`` closes the port (connection refused);
    ``reopen()`` listens again on the same port."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.canned: tuple[int, dict[str, str], bytes] | None = None
        self.server = HttpServer(self.answer).start()

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def answer(self, seen: Seen) -> Reply:
        if self.canned is not None:
            status, headers, content = self.canned
            return Reply(status, content, headers, content_type=None)
        headers_in = {k: v for k, v in seen.headers.items() if k not in ("host", "content-length", "connection")}
        r = httpx.request(seen.method, self.upstream + seen.path, headers=headers_in, content=seen.body,
                          timeout=30)
        headers = {k: v for k, v in r.headers.items() if k.lower() in ("content-type", "retry-after")}
        return Reply(r.status_code, r.content, headers, content_type=None)

    def reopen(self) -> None:
        self.server.reopen()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def front_factory():
    fronts: list[Front] = []

    def make(upstream: str) -> Front:
        f = Front(upstream)
        fronts.append(f)
        return f

    yield make
    for f in fronts:
        f.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def server():
    """One simulator for the module (stopping one costs 0.2 s); each test adds
    its own task and moves sim time past every earlier test's faults."""
    from tui.sim import SimServer, build_scenario

    with SimServer(build_scenario(), speed=0.0) as s:
        yield s


class Clocks:
    """The engine's fake monotonic and wall clocks, with the simulator's clock
    moved in step (so the simulator can tell if a request broke a Retry-After)."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.sim0 = sim.now() + 1000.0
        self.t = 0.0
        self.set(0.0)

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL0 + self.t

    def set(self, t: float) -> None:
        self.t = t
        self.sim.clock.set(self.sim0 + t)


def running_task(sim, provider: str, task_id: str) -> None:
    """A task that is 50 % through now (sim time), ends 30 s later, succeeds."""
    from tui.sim import sim_task

    sim.reset()
    sim.add(tasks=[sim_task(provider, task_id, "running", at=sim.now())])


def config_for(provider: str, base_url: str, key: str, timeout: float):
    return parse_config(
        f'[providers.{provider}]\napi_key = "{key}"\nbase_url = "{base_url}"\n'
        f'poll_interval = {POLL}\nrate_limit = "600/m"\ntimeout = {timeout}\n',
        "fault-matrix.toml",
    )


def inject(provider: str, cell: Cell, sim, front: Front | None, task_id: str | None = None) -> None:
    """Make requests to ``provider`` fail with ``cell`` for one second of sim time
    (or until ``heal`` for the front's faults)."""
    if cell.name == "refused":
        front.close()
    elif cell.name == "wrong-content-type":
        front.canned = (200, {"Content-Type": "text/html; charset=utf-8"}, PORTAL)
    else:
        from tui.sim import Fault

        now = sim.now()
        sim.add(faults=[Fault(provider=provider, task_id=task_id, start=now, end=now + 1.0, **cell.sim)])


def heal(cell: Cell, front: Front | None) -> None:
    if cell.name == "refused":
        front.reopen()
    elif cell.name == "wrong-content-type":
        front.canned = None


def requests(engine: Engine, provider: str) -> int:
    return engine.status(provider).requests


def resume_after(cell: Cell) -> float | None:
    """Seconds after the fault until the provider is polled again (inf: never by itself)."""
    if cell.error is AuthError:
        return float("inf")
    if cell.error is RateLimited:
        return (cell.retry_after if cell.retry_after is not None else DEFAULT_429_WAIT) + RETRY_MARGIN
    if cell.error is QuotaExhausted:
        return QUOTA_PROBE
    if cell.error is Transient:
        backoff = POLL  # base max(0.5, min(poll_interval, 5)) * 2^0, jitter pinned to 1
        if cell.retry_after is not None:
            return max(backoff, cell.retry_after + RETRY_MARGIN)
        return backoff
    return None


# ---------------------------------------------------------------- client layer


@pytest.mark.parametrize("provider, fault", matrix())
async def test_client_raises_the_typed_error(provider, fault, server, front_factory):
    cell = expected(provider, BY_NAME[fault])
    Clocks(server)
    task_id = f"{provider}-{fault}-client"
    running_task(server, provider, task_id)
    base = server.base_url
    if cell.name == "refused":
        base = f"http://127.0.0.1:{closed_port()}"
    elif cell.name == "wrong-content-type":
        front = front_factory(server.base_url)
        inject(provider, cell, server, front)
        base = front.base_url
    else:
        inject(provider, cell, server, None, task_id)
    p = make_provider(provider, server.key(provider), base)
    async with httpx.AsyncClient(timeout=cell.timeout) as client:
        with pytest.raises(ProviderError) as info:
            await p.fetch_status(client, task_id)
    exc = info.value
    assert type(exc) is cell.error, f"{type(exc).__name__}: {exc}"
    assert exc.status == cell.status
    assert exc.provider == provider
    assert exc.retry_after == cell.retry_after
    if cell.code is not None:
        assert exc.code == cell.code
    assert exc.message and server.key(provider) not in str(exc)


# ---------------------------------------------------------------- engine layer


@pytest.mark.parametrize("provider, fault", matrix())
async def test_engine_survives_and_reacts(provider, fault, server, front_factory, tmp_path):
    cell = expected(provider, BY_NAME[fault])
    sim = server
    front = front_factory(sim.base_url) if cell.sim is None else None
    clock = Clocks(sim)
    task_id = f"{provider}-{fault}-engine"
    running_task(sim, provider, task_id)
    store = Store(tmp_path / "tasks.db")
    engine = Engine(config_for(provider, front.base_url if front else sim.base_url, sim.key(provider),
                               cell.timeout), store, clock=clock, wall=clock.wall, rand=lambda: 1.0)
    key = task_key(provider, task_id)
    store.add(provider, [task_id])
    try:
        # 1. a good answer: running (50 % where the provider reports progress)
        await engine.poll_once()
        good = store.get(key)
        assert good.state == RUNNING, good
        if provider in ("upscayl", "evolink"):
            assert good.progress == 50.0
        assert engine.status(provider).state == "ok"
        assert store.events(provider=provider) == []
        sent = requests(engine, provider)

        # 2. the fault, ten seconds later: nothing raised, logged; the last good state kept
        #    unless the fault is a permanent answer about the task (4xx: issue 11)
        clock.set(10.0)
        inject(provider, cell, sim, front)
        await engine.poll_once()
        assert requests(engine, provider) > sent
        status = engine.status(provider)
        assert status.state == cell.state, status.last_error
        task = store.get(key)
        events = store.events(provider=provider)
        assert not [e for e in events if e.kind == "internal"], events
        if cell.cause is None:
            assert status.cause is None if cell.state == "ok" else status.cause, status
        else:  # degraded: the cause names the failing task's last error
            assert status.cause and status.cause.startswith(cell.cause), status.cause
        if cell.list_off:  # one event says the list is switched off, and why
            offs = [e for e in events if "switched off" in e.message]
            assert len(offs) == 1, events
            (off,) = offs
            assert (off.kind, off.status) == (cell.error.kind, cell.status)
            assert off.message.startswith(f"list of text-to-image/hyperflux switched off for 30m: {cell.error.kind} (")
            assert off.message.endswith("); asking each task instead")
            assert off.task_id is None
            events = [e for e in events if e is not off]
        if cell.ends is not None:
            # a 4xx about the task is an answer: it ends with the message (issue 11)
            assert task.state == cell.ends, task
            assert task.error == cell.reason
            assert task.updated_at == WALL0 + 10.0
            assert (task.failed_polls, task.last_error, task.stalled) == (0, None, None)
        else:
            for name in ("state", "provider_status", "progress", "results", "updated_at"):
                assert getattr(task, name) == getattr(good, name), name
            assert status.last_error
        if cell.error is NotFound:  # an answer, not a failure of the provider: no error-log row
            assert events == []
        else:  # one row (once per refusal, not once per task), naming the task its request asked about
            asked = None if provider in LIST_PROVIDERS and issubclass(cell.error, PROVIDER_WIDE) else task_id
            assert [(e.kind, e.status, e.task_id) for e in events] == [(cell.error.kind, cell.status, asked)]
        if cell.ends is None:
            if cell.error in (Transient, BadResponse):  # the task's own poll failed: its health says so
                assert task.failed_polls == 1, task
                assert task.last_error and task.last_error_at == WALL0 + 10.0
                assert task.stalled is None  # one failure is not yet a stall
            else:  # a provider-wide wait or refusal: the provider's state says it
                assert (task.failed_polls, task.last_error) == (0, None), task
        assert all(e.message and sim.key(provider) not in e.message for e in store.events(provider=provider))

        # 3. when polling resumes
        wait = resume_after(cell)
        if cell.ends is not None:  # terminal: never asked again
            sent = requests(engine, provider)
            await engine.poll_once()
            assert requests(engine, provider) == sent
            return
        if wait is None:  # no provider-level wait: the next round asks again
            assert status.retry_at is None
            sent = requests(engine, provider)
            await engine.poll_once()
            assert requests(engine, provider) > sent
            heal(cell, front)
        elif wait == float("inf"):  # a refused key: nothing until resume_provider
            assert status.retry_at is None
            sent = requests(engine, provider)
            clock.set(10.0 + 86400.0)
            await engine.poll_once()
            assert requests(engine, provider) == sent
            engine.resume_provider(provider)
        else:
            assert status.retry_at == pytest.approx(WALL0 + 10.0 + wait, abs=1e-6)
            sent = requests(engine, provider)
            clock.set(10.0 + wait - 0.01)  # just before: nothing is sent
            await engine.poll_once()
            assert requests(engine, provider) == sent
            heal(cell, front)
            clock.set(10.0 + wait + 0.01)  # just after: a probe goes out
            await engine.poll_once()
            assert requests(engine, provider) > sent
        clock.set(max(clock.t, 31.0))  # the task has ended on the provider's side
        for _ in range(3):  # a probe (maybe of the balance) first, then the tasks
            await engine.poll_once()
            if store.get(key).state != RUNNING:
                break
        assert engine.status(provider).state == "ok"
        assert store.get(key).state == "succeeded"
        assert [v for v in sim.violations if v.provider == provider] == []
    finally:
        await engine.stop()
        store.close()
