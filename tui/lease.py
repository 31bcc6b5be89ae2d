"""Leases: one poller per provider key, whoever runs it (issue 16).

A process (a dashboard, ``tasktui collect``, a headless ``poll``) that wants to
poll a provider takes the lease of that provider KEY: the provider's name plus a
short hash of its API key (``key_id``; never the key itself, which must not reach
the database).  Whoever holds the lease polls; the others poll nothing for that
key, read the holder's answers through the store, and show "polled by HOST (pid
N) since T".  The holder renews the lease every few seconds; a holder that stops
cleanly gives it up at once (``release``), one that dies (``kill -9`` included)
stops renewing and anyone takes over once it expired (``TTL``); on the same
machine sooner: a holder whose process is gone (same boot, pid no longer
there: ``holder_dead``) is replaced at the next wake.

The lease is a row of its own table ``leases`` in the task store, created here
(``CREATE TABLE IF NOT EXISTS``) on the store's own connection, so it works the
same on the SQLite file and on PostgreSQL:

- SQLite: each take/renew is one ``BEGIN IMMEDIATE`` transaction (the database's
  write lock): read the row, take it if it is ours, free or expired, commit.
  Every process on the file shares one clock, the machine's.
- PostgreSQL: the same in a transaction that locks the row (``SELECT ... FOR
  UPDATE``); the time is the SERVER's (``clock_timestamp()``), so machines whose
  clocks disagree still agree on when a lease expired.

The holder itself never trusts a clock it does not own: it counts its lease
valid for ``TTL - MARGIN`` seconds of its own monotonic clock from the moment it
ASKED (before the server stamped the expiry), so it stops sending before anybody
else may start, whatever the clocks say.

The row also carries the key's shared request budget (``state``): the times of
the requests inside the budget window (and requests reserved before they were
sent, so a holder killed mid-round is counted as if it had sent them all), the
end of a Retry-After or quota wait, and the daily counts.  Times are kept in the
lease's clock (the server's on PostgreSQL) and handed to the worker as ages
("seconds ago", "seconds from now"), so a hand-over never exceeds a budget or
polls inside a Retry-After window, across machines too.

A lease that cannot be read or written (a read-only store, a store without a
connection, a database error) never stops polling by itself: ``shared`` is then
False and the worker polls as if alone (the store's own errors say what is
wrong).  Inside one process every worker of a key counts as the same holder
(``HOLDER``): two engines of one process (tests, a dashboard's ``poll``) are not
fenced against each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

TTL = 6.0  # seconds a lease lasts without renewal: a dead holder is replaced within TTL + one wake
RENEW_AFTER = 2.0  # the holder renews once this much of its lease has gone by
MARGIN = 1.5  # the holder stops counting on its lease this long before it expires
TABLE_LOCK = 0x7461736B6C656173  # pg_advisory_xact_lock key while creating the table ("tasklease")
STATE_MAX = 200_000  # characters of a stored state read at most
RECENT_MAX = 20_000  # request times kept in a state

CREATE = (
    "CREATE TABLE IF NOT EXISTS leases ("
    " name TEXT PRIMARY KEY, provider TEXT NOT NULL, holder TEXT NOT NULL, host TEXT,"
    " pid INTEGER, since DOUBLE PRECISION, expires DOUBLE PRECISION NOT NULL, state TEXT)"
)
_COLS = "name, provider, holder, host, pid, since, expires, state"


def _host() -> str:
    try:
        return socket.gethostname() or "?"
    except OSError:
        return "?"


def _boot_id() -> str:
    """This boot of this machine (Linux), or "": with it a holder on the same machine
    can be seen dead (its pid gone) instead of waiting for its lease to run out."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            text = f.read(64).strip().replace("-", "")
    except OSError:
        return ""
    return text if text.isalnum() else ""


HOST = _host()
BOOT = _boot_id()


def _make_holder() -> str:
    return f"{HOST.replace(':', '_')}:{os.getpid()}:{uuid.uuid4().hex[:12]}:{BOOT}"


HOLDER = _make_holder()  # this process (see the module docstring)
_HOLDER_PID = os.getpid()


def holder_id() -> str:
    """This process's holder id, ``HOST:PID:RANDOM:BOOT`` (a forked child gets its own)."""
    global HOLDER, _HOLDER_PID
    if os.getpid() != _HOLDER_PID:
        HOLDER, _HOLDER_PID = _make_holder(), os.getpid()
    return HOLDER


def holder_dead(holder: str) -> bool:
    """Is this holder a process of this very boot of this machine that no longer
    exists?  (Then its lease is free at once: a ``kill -9`` on the same machine is
    handed over in one wake, not after TTL.)  False whenever in doubt: another
    machine, another boot, a pid that exists (even reused by someone else)."""
    parts = holder.split(":")
    if len(parts) != 4 or not BOOT or parts[3] != BOOT or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


def key_id(provider: str, api_key: str) -> str:
    """The identity of a provider key: ``provider:`` + 12 hex digits of a hash of the
    key (domain-separated, so the stored text says nothing usable about the key)."""
    digest = hashlib.sha256(b"tasktui-lease\0" + provider.encode() + b"\0" + api_key.encode()).hexdigest()
    return f"{provider}:{digest[:12]}"


@dataclass(slots=True)
class LeaseInfo:
    """Who holds a key's lease (as stored)."""

    name: str
    provider: str
    holder: str
    host: str | None
    pid: int | None
    since: float | None  # when this holder took it (the lease's clock)
    expires: float  # the lease's clock
    state: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """'polled by HOST (pid N) since HH:MM:SS' (see ``polled_by_text``)."""
        return polled_by_text(self.host, self.pid, self.since)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "since": self.since, "expires": self.expires}


def polled_by_text(host: Any, pid: Any, since: Any) -> str:
    """'polled by HOST (pid N) since HH:MM:SS' (local time); the host as inert text
    (another process wrote it)."""
    from .text import clean
    from .timefmt import local_clock

    host = clean(str(host or "?"), 100) or "?"
    who = f"{host} (pid {pid})" if isinstance(pid, int) and not isinstance(pid, bool) else host
    return f"polled by {who} since {local_clock(since)}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _state(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text or len(text) > STATE_MAX:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _info(row: tuple) -> LeaseInfo:
    name, provider, holder, host, pid, since, expires, state = row
    return LeaseInfo(name=str(name), provider=str(provider), holder=str(holder or ""),
                     host=None if host is None else str(host)[:200],
                     pid=int(pid) if isinstance(pid, int) and not isinstance(pid, bool) else None,
                     since=_number(since), expires=_number(expires) or 0.0, state=_state(state))


# ---------------------------------------------------------------- the state's clock frame

def to_stored(state: dict[str, Any], now: float) -> dict[str, Any]:
    """A worker's budget state (ages, waits) -> the stored form (times in the lease's clock)."""
    out: dict[str, Any] = {"saved_at": now}
    ages = [a for a in (_number(x) for x in state.get("recent_ages") or ()) if a is not None and a >= 0]
    out["recent"] = [round(now - a, 3) for a in sorted(ages)[:RECENT_MAX]]
    retry_in = _number(state.get("retry_in"))
    if retry_in is not None and retry_in > 0:
        out["retry_at"] = round(now + retry_in, 3)
        out["retry_state"] = str(state.get("retry_state") or "rate_limited")
    daily = state.get("daily")
    if isinstance(daily, dict) and daily:
        out["daily"] = {str(k): dict(v) for k, v in daily.items() if isinstance(v, dict)}
    if state.get("refused") is True:
        out["refused"] = True
    return out


def from_stored(stored: dict[str, Any], now: float) -> dict[str, Any]:
    """The stored form -> ages and waits as seen ``now`` (the lease's clock)."""
    out: dict[str, Any] = {}
    recent = stored.get("recent")
    if isinstance(recent, list):
        out["recent_ages"] = [max(0.0, now - t) for t in (_number(x) for x in recent[-RECENT_MAX:])
                              if t is not None]
    retry_at = _number(stored.get("retry_at"))
    if retry_at is not None and retry_at > now:
        out["retry_in"] = retry_at - now
        out["retry_state"] = str(stored.get("retry_state") or "rate_limited")
    daily = stored.get("daily")
    if isinstance(daily, dict):
        out["daily"] = {str(k): dict(v) for k, v in daily.items() if isinstance(v, dict)}
    if stored.get("refused") is True:
        out["refused"] = True  # the key was refused (401/403): a holder that takes over asks nothing
    return out


# ---------------------------------------------------------------- backends

class _Backend:
    """The SQL of one store kind, on the store's own connection."""

    pg = False

    def __init__(self, store: Any, wall: Callable[[], float]) -> None:
        self.store = store
        self.wall = wall
        self.ready = False

    def usable(self) -> bool:
        raise NotImplementedError

    def run(self, fn: Callable[[Any, float], Any]) -> Any:
        """``fn(conn, now)`` inside one write transaction; committed."""
        raise NotImplementedError

    def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        raise NotImplementedError


class _SqliteBackend(_Backend):
    def usable(self) -> bool:
        return not getattr(self.store, "readonly", False) and isinstance(getattr(self.store, "_conn", None),
                                                                        sqlite3.Connection)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self.store, "_conn", None)
        if not isinstance(conn, sqlite3.Connection):
            raise sqlite3.OperationalError("the task database is not open")
        return conn

    def run(self, fn: Callable[[Any, float], Any]) -> Any:
        """One attempt: BEGIN IMMEDIATE itself waits the store's busy timeout for the
        write lock; a lock held longer is the caller's ``problem`` (no blocking retries)."""
        from .store import _rollback

        for attempt in range(2):
            conn = self._conn()
            if conn.in_transaction:  # never inside the store's own transaction
                raise sqlite3.OperationalError("the task database is busy (a transaction is open)")
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not self.ready:
                    conn.execute(CREATE)
                result = fn(conn, self.wall())
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                _rollback(conn)
                if attempt == 0 and self.ready and "no such table" in str(exc):
                    self.ready = False  # the store reopened a database file replaced at its path
                    continue
                raise
            except BaseException:
                _rollback(conn)
                raise
            self.ready = True
            return result
        raise sqlite3.OperationalError("the lease table cannot be made")

    def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        conn = getattr(self.store, "_conn", None)
        if not isinstance(conn, sqlite3.Connection):
            return []
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # no table yet (nobody took a lease), or busy
            return []


class _PgBackend(_Backend):
    pg = True

    def usable(self) -> bool:
        return not getattr(self.store, "readonly", False) and not getattr(self.store, "_closed", False)

    def run(self, fn: Callable[[Any, float], Any]) -> Any:
        def attempt(conn: Any) -> Any:
            conn.execute("BEGIN")
            try:
                if not self.ready:
                    conn.execute("SELECT pg_advisory_xact_lock(?)", (TABLE_LOCK,))
                    conn.execute(CREATE)
                now = float(conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0])
                result = fn(conn, now)
                conn.execute("COMMIT")
            except BaseException:
                conn.rollback()
                raise
            self.ready = True
            return result

        return self.store._run(attempt, writing=True)

    def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.store._run(lambda conn: conn.execute(sql, args).fetchall(), writing=False)
        except Exception:  # no table yet, or no server: nothing known
            return []

    def now(self) -> float | None:
        try:
            return float(self.store._run(
                lambda conn: conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0],
                writing=False))
        except Exception:
            return None


def _backend(store: Any, wall: Callable[[], float]) -> _Backend | None:
    if store is None:
        return None
    if getattr(store, "_psycopg", None) is not None:
        return _PgBackend(store, wall)
    if hasattr(store, "_conn"):
        return _SqliteBackend(store, wall)
    return None


def read_leases(store: Any, wall: Callable[[], float] = time.time) -> tuple[dict[str, LeaseInfo], float]:
    """Every stored lease by name, and the lease clock's now (no write, no table made)."""
    backend = _backend(store, wall)
    if backend is None:
        return {}, wall()
    rows = backend.read(f"SELECT {_COLS} FROM leases")
    now = (backend.now() if isinstance(backend, _PgBackend) else None) or wall()
    out = {}
    for row in rows:
        try:
            info = _info(tuple(row))
        except (TypeError, ValueError):
            continue
        out[info.name] = info
    return out, now


# ---------------------------------------------------------------- the lease

class Lease:
    """One provider key's lease, as one worker sees it.

    ``acquire()`` takes or renews it (one transaction) and says whether we hold it;
    ``valid()`` says whether we may still send a request now (our own clock, no
    database); ``save(state)`` stores the key's budget state while we hold it (and
    renews); ``release(state)`` gives it up with the last state.  After a take-over
    ``taken`` holds the previous holder's state (ages and waits), once.
    """

    def __init__(self, store: Any, provider: str, api_key: str, *, wall: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic, ttl: float = TTL,
                 holder: str | None = None) -> None:
        self.name = key_id(provider, api_key)
        self.provider = provider
        self.wall, self.clock = wall, clock
        self.ttl = float(ttl)
        self.renew_after = min(RENEW_AFTER, self.ttl / 3)
        self.margin = min(MARGIN, self.ttl / 4)
        self._holder = holder
        self.backend = _backend(store, wall)
        self.shared = self.backend is not None and self.backend.usable()
        self.held = False
        self.asked_at: float | None = None  # our clock when the lease we hold was last renewed (asked)
        self.info: LeaseInfo | None = None  # the holder as last read (ourselves included)
        self.taken: dict[str, Any] | None = None  # the state found at a take-over (ages, waits)
        self.took_over = False  # the last acquire() took the lease from another holder (or a free one)
        self.previous: LeaseInfo | None = None  # that other holder (expires 0: it gave the lease up)
        self.problem: str | None = None  # why the lease table could not be used, last time

    @property
    def holder(self) -> str:
        return self._holder or holder_id()

    # ------------------------------------------------------------ queries

    def valid(self) -> bool:
        """May we send a request now?  (Held, and not near expiry by our own clock.)"""
        if not self.shared:
            return True
        return self.held and self.asked_at is not None and self.clock() < self.asked_at + self.ttl - self.margin

    def renew_due(self) -> bool:
        return (not self.held or self.asked_at is None
                or self.clock() >= self.asked_at + self.renew_after)

    def until(self) -> float:
        """Seconds until the current foreign holder's lease runs out (our estimate)."""
        if self.info is None or self.held:
            return 0.0
        return max(0.0, self.info.expires - self.wall())

    # ------------------------------------------------------------ take, renew, give up

    def acquire(self) -> bool:
        """Take the lease if it is free, expired or ours; renew it if ours.  True: we hold it."""
        if not self.shared:
            self.held = True
            return True
        asked = self.clock()
        me = self.holder
        pid = os.getpid()

        def take(conn: Any, now: float) -> tuple[bool, tuple | None, bool, tuple | None]:
            conn.execute("INSERT INTO leases (name, provider, holder, host, pid, since, expires, state)"
                         " VALUES (?, ?, '', NULL, NULL, NULL, 0, NULL) ON CONFLICT (name) DO NOTHING",
                         (self.name, self.provider))
            lock = " FOR UPDATE" if self.backend.pg else ""
            row = conn.execute(f"SELECT {_COLS} FROM leases WHERE name = ?{lock}", (self.name,)).fetchone()
            holder, since, expires = row[2], row[5], row[6]
            if holder == me or not holder or (expires or 0.0) <= now or holder_dead(holder):
                fresh = holder != me
                since = now if fresh or since is None else since
                conn.execute("UPDATE leases SET holder = ?, host = ?, pid = ?, since = ?, expires = ?"
                             " WHERE name = ?", (me, HOST, pid, since, now + self.ttl, self.name))
                before = tuple(row) if fresh and holder else None
                row = (row[0], row[1], me, HOST, pid, since, now + self.ttl, row[7])
                return True, row, fresh, before
            return False, row, False, None

        try:
            held, row, fresh, before = self.backend.run(take)
        except Exception as exc:  # the store's errors: the lease cannot decide, polling goes on
            return self._unusable(exc)
        self.problem = None
        info = _info(row) if row is not None else None
        self.info = info
        self.took_over = held and fresh
        self.previous = _info(before) if before is not None else None
        if held:
            self.asked_at = asked
            if fresh:
                now = info.expires - self.ttl if info is not None else self.wall()
                self.taken = from_stored(info.state, now) if info is not None and info.state else {}
        self.held = held
        return held

    def save(self, state: dict[str, Any], *, renew: bool = True) -> bool:
        """Store the key's budget state (and renew) while we hold the lease; False if
        we no longer hold it (someone took it over)."""
        if not self.shared:
            return True
        asked = self.clock()
        me = self.holder

        def put(conn: Any, now: float) -> tuple[bool, tuple | None]:
            stored = json.dumps(to_stored(state, now), separators=(",", ":"))
            if renew:
                cur = conn.execute("UPDATE leases SET state = ?, expires = ? WHERE name = ? AND holder = ?"
                                   " AND expires > ?", (stored, now + self.ttl, self.name, me, now))
            else:
                cur = conn.execute("UPDATE leases SET state = ? WHERE name = ? AND holder = ?",
                                   (stored, self.name, me))
            if (cur.rowcount or 0) > 0:
                return True, None
            # not ours any more: who has it now (for "handed over to ...")
            return False, conn.execute(f"SELECT {_COLS} FROM leases WHERE name = ?", (self.name,)).fetchone()

        try:
            ok, row = self.backend.run(put)
        except Exception as exc:
            self._unusable(exc)
            return self.held
        self.problem = None
        if row is not None:
            self.info = _info(tuple(row))
        if ok and renew:
            self.asked_at = asked
        if not ok:
            self.held = False
        return ok

    def release(self, state: dict[str, Any] | None = None) -> None:
        """Give the lease up (a clean stop): the next process takes over at once
        (expiry 0: whatever its clock says)."""
        if not self.shared or not self.held:
            self.held = False
            return
        me = self.holder

        def give(conn: Any, now: float) -> None:
            if state is not None:
                stored = json.dumps(to_stored(state, now), separators=(",", ":"))
                conn.execute("UPDATE leases SET state = ?, expires = 0 WHERE name = ? AND holder = ?",
                             (stored, self.name, me))
            else:
                conn.execute("UPDATE leases SET expires = 0 WHERE name = ? AND holder = ?", (self.name, me))

        try:
            self.backend.run(give)
        except Exception as exc:
            log.warning("lease %s not released: %s", self.name, exc)
        self.held = False
        self.asked_at = None

    def _unusable(self, exc: BaseException) -> bool:
        """The lease table cannot be used: polling goes on if we held it (or nobody
        is known to), as if alone; said in ``problem``."""
        self.problem = " ".join(f"lease not taken: {type(exc).__name__}: {exc}".split())[:300]
        if self.info is not None and not self.held and self.info.holder and self.info.expires > self.wall():
            return False  # someone else held it when we last could read: keep out till it expires
        self.held = True
        self.asked_at = self.clock()
        return True
