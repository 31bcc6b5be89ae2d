"""The simulator's side of push (issue 18): it SENDS Freepik webhooks and EvoLink
callbacks for its tasks when they change status, well or badly on purpose.

Freepik (docs.freepik.com/webhooks, the Standard Webhooks scheme): a POST on every
status change (IN_PROGRESS, then COMPLETED / FAILED / CANCELLED) whose body is the
task-detail GET body without ``data`` (``{task_id, status, generated}``), with
headers ``webhook-id``, ``webhook-timestamp`` (epoch seconds) and
``webhook-signature`` = ``v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``.
The signature is computed here, independently of tui/push.py, so a test checks the
receiver against a second implementation of the scheme.

EvoLink (providers.md §5): an unsigned POST of the task-detail object to the
``callback_url`` (which carries the receiver's token) when a task completes, fails
or is cancelled; a non-2xx answer is retried "up to 3 times at 1, 2, 4 s".

Time: status changes happen in SIM time (the task timelines); ``pump()`` sends every
change whose time has come since the last call, plus the retries that are due.
Retries are scheduled in SIM time too (EvoLink 1, 2, 4 s; Freepik the Standard
Webhooks / Svix schedule 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), so a test moves
the clock (``sim.advance(1)``) and pumps again, never sleeps.  ``webhook-timestamp``
is taken from ``clock`` (real epoch seconds by default: what a receiver checks it
against).  ``start(every)`` pumps from a background thread instead (the demo).

Misbehaviour, per provider or per task (``PushOptions``): ``sign`` "right" / "wrong"
(another secret) / "none" (no signature header); ``stale`` (seconds the timestamp
is set back); ``duplicate`` (each delivery sent twice, same webhook-id);
``out_of_order`` (the changes one pump sends for a task go newest first);
``lose`` (a share of deliveries never sent, no retry; seeded); ``retries`` False
(no retry).  ``replay(attempt)`` sends a recorded delivery again byte for byte, as
someone who captured it would.

``pump()`` blocks on HTTP: from an asyncio test whose loop serves the receiver, call
``await asyncio.to_thread(pusher.pump)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal

import httpx

from . import bodies
from .scenario import SimTask
from .state import Simulator, lifecycle

PUSHERS = ("freepik", "evolink")
RETRIES: dict[str, tuple[float, ...]] = {
    "evolink": (1.0, 2.0, 4.0),  # providers.md §5 / issue 18: up to 3 retries at 1, 2, 4 s
    "freepik": (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),  # Standard Webhooks (Svix) schedule
}
TIMEOUT = 10.0  # EvoLink: "2xx within 10 s"


@dataclass(frozen=True)
class PushOptions:
    sign: Literal["right", "wrong", "none"] = "right"
    stale: float = 0.0  # seconds webhook-timestamp is set back
    duplicate: bool = False
    out_of_order: bool = False
    lose: float = 0.0  # 0..1: share of deliveries never sent
    retries: bool = True


@dataclass
class Attempt:
    """One POST made (or, ``lost``, not made)."""

    provider: str
    task_id: str
    state: str  # the simulator's state the delivery announces
    msg_id: str
    attempt: int  # 0 first try, 1.. retries
    sim_time: float
    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None  # the receiver's answer; None: not sent or no answer
    error: str | None = None  # connection error text
    lost: bool = False
    duplicate: bool = False
    replay: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Delivery:
    provider: str
    task_id: str
    state: str
    msg_id: str
    body: bytes
    options: PushOptions
    attempt: int = 0
    due: float = 0.0


def standard_signature(secret: str | bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64>`` of HMAC-SHA256 over ``{id}.{timestamp}.{body}`` (Standard Webhooks)."""
    key = secret if isinstance(secret, bytes) else secret.encode()
    mac = hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


class Pusher:
    """Sends ``sim``'s status changes to ``freepik_url`` (signed with ``freepik_secret``)
    and ``evolink_url``.  ``options`` apply to both providers unless ``per_provider``
    or ``per_task`` (``{(provider, task_id): PushOptions}``) say otherwise.  Changes at
    or before ``since`` (default: the sim time now) count as already sent."""

    def __init__(self, sim: Simulator, *, freepik_url: str | None = None, freepik_secret: str | bytes | None = None,
                 evolink_url: str | None = None, options: PushOptions | None = None,
                 per_provider: dict[str, PushOptions] | None = None,
                 per_task: dict[tuple[str, str], PushOptions] | None = None, seed: int = 0,
                 clock: Callable[[], float] = time.time, since: float | None = None,
                 client: httpx.Client | None = None) -> None:
        self.sim = sim
        self.urls = {name: url for name, url in (("freepik", freepik_url), ("evolink", evolink_url)) if url}
        if "freepik" in self.urls and not freepik_secret:
            raise ValueError("freepik webhooks need freepik_secret")
        self.secret = freepik_secret
        self.options = options or PushOptions()
        self.per_provider = dict(per_provider or {})
        self.per_task = dict(per_task or {})
        self.rng = random.Random(seed)
        self.clock = clock
        self.since = sim.now() if since is None else since
        self.client = client or httpx.Client(timeout=TIMEOUT)
        self._own_client = client is None
        self._sent: set[tuple[str, str, str]] = set()  # (provider, task id, state) announced
        self._retries: list[_Delivery] = []
        self._lock = threading.RLock()
        self.attempts: list[Attempt] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------ what to send

    def options_for(self, provider: str, task_id: str) -> PushOptions:
        return self.per_task.get((provider, task_id)) or self.per_provider.get(provider) or self.options

    def _changes(self, task: SimTask, t: float) -> list[tuple[float, str]]:
        """(sim time, state) of the changes ``task`` announces, in (since, t], not yet sent."""
        out = []
        if task.provider == "freepik" and task.start > task.created:
            out.append((task.start, "running"))  # the end is announced below
        out.append((task.end, task.end_state))
        return [(when, state) for when, state in out
                if self.since < when <= t and (task.provider, task.task_id, state) not in self._sent
                and lifecycle(task, when) is not None]

    def _body(self, task: SimTask, state: str, when: float) -> bytes:
        if task.provider == "freepik":  # the GET body without ``data`` (docs.freepik.com webhooks)
            return json.dumps(bodies.freepik_task(task, state)["data"]).encode()
        snap = lifecycle(task, when) or (state, 100.0)
        return json.dumps(bodies.evolink_task(task, state, snap[1], self.sim.wall, self.sim.clock.scale)).encode()

    def _msg_id(self) -> str:
        return "msg_" + "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24))

    # ------------------------------------------------------------ sending

    def pump(self) -> list[Attempt]:
        """Send every change due by the sim time now, and the retries due; returns the attempts made."""
        with self._lock:
            t = self.sim.now()
            fresh: list[tuple[float, _Delivery]] = []
            for provider in self.urls:
                for task in self.sim.tasks(provider):
                    opts = self.options_for(provider, task.task_id)
                    changes = self._changes(task, t)
                    if opts.out_of_order:
                        changes = sorted(changes, key=lambda c: -c[0])
                    for when, state in changes:
                        self._sent.add((provider, task.task_id, state))
                        fresh.append((when if not opts.out_of_order else t, _Delivery(
                            provider, task.task_id, state, self._msg_id(), self._body(task, state, when), opts)))
            fresh.sort(key=lambda pair: pair[0])  # stable: a task's reversed changes stay reversed
            due = [d for d in self._retries if d.due <= t]
            self._retries = [d for d in self._retries if d.due > t]
            made: list[Attempt] = []
            for delivery in due + [d for _, d in fresh]:
                made += self._deliver(delivery, t)
            return made

    def _headers(self, d: _Delivery) -> dict[str, str]:
        headers = {"content-type": "application/json", "user-agent": "tasktui-sim-push"}
        if d.provider != "freepik":
            return headers
        stamp = str(int(self.clock() - d.options.stale))
        headers.update({"webhook-id": d.msg_id, "webhook-timestamp": stamp})
        if d.options.sign != "none":
            secret = self.secret if d.options.sign == "right" else b"not-the-secret-" + (
                self.secret if isinstance(self.secret, bytes) else str(self.secret).encode())
            headers["webhook-signature"] = standard_signature(secret, d.msg_id, stamp, d.body)
        return headers

    def _deliver(self, d: _Delivery, t: float) -> list[Attempt]:
        url = self.urls[d.provider]
        headers = self._headers(d)
        base = Attempt(d.provider, d.task_id, d.state, d.msg_id, d.attempt, t, url, d.body, headers)
        if d.attempt == 0 and d.options.lose and self.rng.random() < d.options.lose:
            base.lost = True
            self.attempts.append(base)
            return [base]
        first = self._post(base)
        made = [first]
        if d.options.duplicate and d.attempt == 0:
            made.append(self._post(replace(base, status=None, error=None, duplicate=True)))
        if not first.ok and d.options.retries:
            schedule = RETRIES[d.provider]
            if d.attempt < len(schedule):
                d.due = t + schedule[d.attempt]
                d.attempt += 1
                self._retries.append(d)
        return made

    def _post(self, attempt: Attempt) -> Attempt:
        try:
            r = self.client.post(attempt.url, content=attempt.body, headers=attempt.headers)
            attempt.status = r.status_code
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"[:200]
        self.attempts.append(attempt)
        return attempt

    def replay(self, attempt: Attempt) -> Attempt:
        """Send ``attempt``'s body and headers again, unchanged (same id, timestamp, signature)."""
        with self._lock:
            return self._post(replace(attempt, status=None, error=None, lost=False, duplicate=False, replay=True,
                                      sim_time=self.sim.now(), headers=dict(attempt.headers)))

    # ------------------------------------------------------------ views

    @property
    def pending_retries(self) -> list[tuple[str, str, int, float]]:
        """(provider, task id, attempt number, due sim time) of the retries waiting."""
        with self._lock:
            return [(d.provider, d.task_id, d.attempt, d.due) for d in self._retries]

    def lost(self) -> list[Attempt]:
        return [a for a in self.attempts if a.lost]

    # ------------------------------------------------------------ background

    def start(self, every: float = 0.2) -> "Pusher":
        """Pump every ``every`` real seconds from a background thread (e.g. a live demo)."""
        if self._thread is None:
            self._stop.clear()

            def run() -> None:
                while not self._stop.wait(every):
                    try:
                        self.pump()
                    except Exception:  # a demo helper: never die on one bad round
                        pass

            self._thread = threading.Thread(target=run, name="sim-push", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._own_client:
            self.client.close()

    def __enter__(self) -> "Pusher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Attempt", "PushOptions", "Pusher", "RETRIES", "standard_signature"]
