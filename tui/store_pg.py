"""The task store on PostgreSQL (13 or later), for a team sharing one store.

``PgStore`` has the public API and the semantics of ``tui.store.Store``: it IS a
``Store`` whose I/O goes to PostgreSQL (psycopg 3) instead of a SQLite file.  The
merge rules, the in-memory index, the change feed and the plans of add/remove/apply/
set_files are Store's own code, run unchanged: ``_PgConn`` gives them the
``conn.execute(sql, params)`` they expect (``?`` placeholders become ``%s``).

Tables and columns are those of the SQLite store (``tasks`` with ``seq``/``rev`` and
tombstones, ``raw``, ``history``, ``events``, ``counters``, ``meta``), created by
their own versioned migrations (``PG_MIGRATIONS``, version in table
``schema_version``).  A database without the schema is given it by the first
writable open; a schema of an older tasktui is upgraded only by ``tasktui db
migrate`` (upgrading a shared store locks out older clients on other machines, so it
is done on purpose); a newer one is refused with one line.

Writers are serialized like SQLite's ``BEGIN IMMEDIATE``: each write transaction
first locks the ``meta.seq`` row (``FOR UPDATE``), catches up with what others
committed, then writes.  So sequence numbers are committed in order and a reader
that loads ``seq > last`` in one snapshot never skips a row.

Change feed: every write transaction that changes anything sends ``NOTIFY
tasktui_changes, '<seq>'`` (delivered at COMMIT, to every listening session of the
database).  ``sync()`` reads pending notifications from a second, listening
connection without a round trip (free when nothing changed) and, when one says a
``seq`` above ours, or when the listening connection was (re)opened, loads the rows
with ``seq`` above the last one seen: nothing is missed across a reconnect.

Connections: a lost connection is reopened, with backoff and jitter, for up to
RETRY_DEADLINE seconds of one call; a write that was cut off before COMMIT is run
again from scratch (plans are re-planned after a catch-up); one cut off during
COMMIT is looked up (``pg_xact_status``) so that it is neither lost nor done twice.
What cannot be done raises ``StoreWriteError`` (writes) or ``StoreError`` (reads)
with one line naming the database by its URL without the password, and for a pause
after that (DOWN_PAUSE, doubling) calls fail at once instead of blocking their caller
again.  No message ever holds the password.

Like ``Store``, every call blocks until the server answered: use one store from one
thread.  ``wait(timeout)`` blocks until a notification may have come in.

The filter at scale (issue 15), as on SQLite: bare words and ``id:`` are exact in SQL
once every tracked row has its haystack (``where``); a task list reads the head of each
filter first (``window_head``: a short walk of the sort's index, a ``pg_trgm`` probe,
the walk, a scan; reads cut off by the server's ``statement_timeout``) and the whole
order from a thread on a connection of its own (``order_job``, cancelled on the server).
Without pg_trgm (refused at migration) the store says so once (``notice``) and scans.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
import logging
import random
import re
import time
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit

from .store import (
    TOMBSTONE_DAYS,
    Change,
    OrderJob,
    Store,
    StoreBusy,
    StoreError,
    StoreWriteError,
    _Tx,
    _counter_blobs,
    _raw_json,
    _TASK_COLS,
    _LIVE_SQL,
    FTS_MAX,
    SORT_SQL,
    _check_scope,
    _sort_index_sql,
)
from .model import STATES

log = logging.getLogger(__name__)

CHANNEL = "tasktui_changes"
CONNECT_TIMEOUT = 5  # seconds for one connection attempt
RETRY_DEADLINE = 10.0  # seconds of reconnect attempts within one call before giving up
DOWN_PAUSE = 2.0  # after giving up, calls fail at once for this long (doubling, up to LISTEN_RETRY_MAX)
LISTEN_RETRY_MAX = 30.0  # longest wait between two attempts to reopen the listening connection
LOCK_TIMEOUT_MS = 60_000  # a writer waits this long for another's transaction (then StoreBusy)
# The server ends a session of ours idle inside a transaction this long.  Our transactions
# last milliseconds; one idle for 10 s belongs to a frozen process (SIGSTOP, a laptop lid,
# a debugger) that holds the writers' lock: it must end well before LOCK_TIMEOUT_MS, so a
# waiting writer gets the lock instead of StoreBusy (and a lease holder keeps its lease).
IDLE_TX_TIMEOUT_MS = 10_000
MIGRATE_LOCK = 0x7461736B74756900  # pg_advisory_xact_lock key of migrations ("tasktui\0")

URL_SCHEMES = ("postgresql://", "postgres://")

TRGM_SQL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS tasks_hay_trgm ON tasks USING gin (hay gin_trgm_ops)",
)

# One list of SQL statements per schema version; PG_MIGRATIONS[i] takes the database
# from version i to i + 1.  Append, never edit a shipped step.  Same tables and
# columns as the SQLite store (tui/store.py MIGRATIONS), in PostgreSQL's types.
PG_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE meta (name text PRIMARY KEY, value bigint NOT NULL)",
        "INSERT INTO meta VALUES ('seq', 0), ('purged_seq', 0)",
        """CREATE TABLE tasks (
            id bigserial PRIMARY KEY,
            key text NOT NULL UNIQUE,
            provider text NOT NULL,
            task_id text NOT NULL,
            kind text,
            label text,
            state text NOT NULL,
            provider_status text,
            progress double precision,
            results text NOT NULL DEFAULT '[]',
            error text,
            model text,
            credits double precision,
            created_at double precision,
            updated_at double precision,
            finished_at double precision,
            eta double precision,
            rev bigint NOT NULL,
            seq bigint NOT NULL,
            deleted smallint NOT NULL DEFAULT 0,
            removed_at double precision,
            last_error text,
            last_error_at double precision,
            failed_polls bigint NOT NULL DEFAULT 0,
            stalled text,
            poll_path text,
            details text,
            files text
        )""",
        "CREATE INDEX tasks_seq ON tasks(seq)",
        "CREATE INDEX tasks_tombstones ON tasks(removed_at) WHERE deleted = 1",
        "CREATE TABLE raw (key text PRIMARY KEY, body text NOT NULL)",
        """CREATE TABLE history (
            id bigserial PRIMARY KEY,
            key text NOT NULL,
            time double precision NOT NULL,
            state text NOT NULL,
            provider_status text
        )""",
        "CREATE INDEX history_key ON history(key, id)",
        """CREATE TABLE events (
            id bigserial PRIMARY KEY,
            time double precision NOT NULL,
            provider text NOT NULL,
            task_id text,
            status bigint,
            kind text NOT NULL,
            message text NOT NULL,
            retry_after double precision
        )""",
        "CREATE INDEX events_provider ON events(provider, id)",
        """CREATE TABLE counters (
            provider text PRIMARY KEY,
            data text NOT NULL,
            updated_at double precision NOT NULL,
            seq bigint NOT NULL
        )""",
    ],
    # 2: freshness (Task.polled_at, next_poll_at); the indexes of a store read by window
    # (scope "live"/"none"), as SQLite's migration 4: live set, counts, one per sort.
    [
        "ALTER TABLE tasks ADD COLUMN polled_at double precision",
        "ALTER TABLE tasks ADD COLUMN next_poll_at double precision",
        f"CREATE INDEX tasks_live ON tasks(id) WHERE deleted = 0 AND {_LIVE_SQL}",
        "CREATE INDEX tasks_counts ON tasks(deleted, provider, state, credits)",
        *[_sort_index_sql(name, ' COLLATE "C"') for name in SORT_SQL],
    ],
    # 3: the filter's haystack (SQLite's migration 5)
    [
        "ALTER TABLE tasks ADD COLUMN hay text",
    ],
    # 4: tasks_nohay tells at once whether a tracked row lacks its hay (SQLite's migration 6):
    # when none does, bare words and id: read only hay, exactly (no residual in Python)
    [
        "CREATE INDEX tasks_nohay ON tasks(id) WHERE hay IS NULL",
    ],
    # 5: a trigram index over hay (pg_trgm): a bare word of 3+ characters finds its rows
    # without a scan (Store.window_head).  Optional (a tuple: run in a savepoint): without
    # the contrib package, or without CREATE on the database, the filter scans instead.
    [
        TRGM_SQL,
    ],
]
PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
TRGM_INDEX = "tasks_hay_trgm"
PROBE_BUDGET = 0.06  # seconds the trigram probe may take before the walk of a sort's index answers
# seconds the walk of a sort's index may take on PostgreSQL: each index entry is a heap read
# of the row's hay (a 2-letter word at 1M: 9,700 rows read in 15 ms for a screenful), and the
# scan it saves costs 0.4 s at 1M
WALK_BUDGET = 0.06
QUICK_WALK = 0.005  # seconds of a sort's index walked before the probe (a frequent word is found so; 0: none)
TRGM_QUERY = f"SELECT id FROM tasks WHERE hay LIKE ? ESCAPE '\\' LIMIT {FTS_MAX + 1}"  # ? = %word%, escaped
NO_TRGM = ("no pg_trgm index on this database ({why}): the filter finds bare words by a scan"
           " (slower on a big store); `tasktui db migrate` tries again")


def is_pg_url(target: object) -> bool:
    return isinstance(target, str) and target.lower().startswith(URL_SCHEMES)


def safe_url(url: str) -> str:
    """The URL to show: no password, no query (which may carry one)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        user = f"{quote(unquote(parts.username), safe='')}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"
    except ValueError:
        return "postgresql://(unreadable URL)"


def _password(url: str) -> str | None:
    try:
        from psycopg.conninfo import conninfo_to_dict

        value = conninfo_to_dict(url).get("password")
    except Exception:
        value = None
    if not value:
        try:
            value = unquote(urlsplit(url).password or "") or None
        except ValueError:
            value = None
    if not value:  # a URL too broken for both parsers: what sits between "user:" and "@"
        found = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:([^@/]*)@", url)
        value = found.group(1) if found else None
    return str(value) if value else None


def _pg():
    try:
        import psycopg
    except ImportError:
        raise StoreError("a postgresql:// store needs psycopg: pip install 'psycopg[binary]'") from None
    return psycopg


def _sql(sql: str) -> str:
    """SQLite's ``?`` placeholders -> psycopg's ``%s`` (the store's SQL has no other ``?`` or ``%``)."""
    cached = _SQL_CACHE.get(sql)
    if cached is None:
        cached = _SQL_CACHE[sql] = sql.replace("%", "%%").replace("?", "%s")
    return cached


_SQL_CACHE: dict[str, str] = {}


class _PgConn:
    """A psycopg connection (autocommit; transactions by explicit BEGIN/COMMIT) with the
    ``execute``/``executemany`` of sqlite3 that Store's shared code calls."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Any = None) -> Any:
        if params is None:
            return self.raw.execute(sql)
        return self.raw.execute(_sql(sql), params)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(_sql(sql), list(rows))

    @property
    def broken(self) -> bool:
        return bool(self.raw.closed or getattr(self.raw, "broken", False))

    def rollback(self) -> None:
        try:
            if not self.broken and self.raw.info.transaction_status != 0:  # 0 = IDLE
                self.raw.execute("ROLLBACK")
        except Exception:
            pass

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:
            pass


@functools.lru_cache(maxsize=None)
def _nul_free_dumper():
    """A str dumper that drops NUL characters (PostgreSQL text cannot hold them; SQLite can)."""
    from psycopg.types.string import StrDumperUnknown

    class NulFree(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            return super().dump(obj.replace("\x00", "") if "\x00" in obj else obj)

    return NulFree


class _PgTx(_Tx):
    """Store's write transaction, with PostgreSQL's spelling where SQLite's differs, and
    its statements sent in batches.

    One statement at a time costs psycopg ~100 µs of Python each (10,000 adds: 40,000
    statements, 3.4 s); ``executemany`` of one statement over many rows costs a third
    of that.  So the statements of a *unit* (one call of insert/update/quiet/health/
    tombstone/history/raw, all about one task key) are queued, grouped by statement,
    and sent with one ``executemany`` per group at the next read, at a statement that
    is not part of a unit (sequence, events, counters), or at the end of the plan.

    Grouping reorders statements of different keys only; each of them touches rows of
    its own key (tasks, raw, history by key), so that changes nothing.  The statements
    of one key keep their order: a statement that would land in a group before one
    already used for its key first sends the queue.
    """

    def __init__(self, store: Store, conn: "_PgConn") -> None:
        super().__init__(store, _QueueingConn(conn, self))
        self.real = conn
        self._unit: str | None = None  # key of the unit being run
        self._unit_group = -1  # group index of the unit's last queued statement
        self._groups: dict[str, list[tuple]] = {}  # statement -> rows, in first-use order
        self._key_group: dict[str, int] = {}  # key -> highest group index queued for it

    def flush(self) -> None:
        groups, self._groups = self._groups, {}
        self._key_group = {}
        self._unit_group = -1
        for sql, rows in groups.items():
            if len(rows) == 1:
                self.real.execute(sql, rows[0])
            else:
                self.real.executemany(sql, rows)

    def queue(self, sql: str, params: Any) -> None:
        index = list(self._groups).index(sql) if sql in self._groups else len(self._groups)
        if index < self._unit_group:
            self.flush()
            index = 0
        self._groups.setdefault(sql, []).append(tuple(params))
        self._unit_group = index

    def _in_unit(self, key: str, run: Callable[..., None], *args: Any) -> None:
        if self._unit is not None:  # a unit calling another (insert -> raw): one unit
            run(*args)
            return
        self._unit, self._unit_group = key, self._key_group.get(key, -1)
        try:
            run(*args)
        finally:
            self._unit = None
            if self._unit_group >= 0:
                self._key_group[key] = self._unit_group

    def insert(self, task: Any, raw: Any = None) -> None:
        self._in_unit(task.key, super().insert, task, raw)

    def update(self, task: Any, raw: Any = None) -> None:
        self._in_unit(task.key, super().update, task, raw)

    def quiet(self, task: Any, raw: Any) -> None:
        self._in_unit(task.key, super().quiet, task, raw)

    def health(self, task: Any) -> None:
        self._in_unit(task.key, super().health, task)

    def tombstone(self, key: str) -> None:
        self._in_unit(key, super().tombstone, key)

    def history(self, key: str, when: float | None, state: str, provider_status: str | None) -> None:
        self._in_unit(key, super().history, key, when, state, provider_status)

    def raw(self, key: str, raw: Any) -> None:
        body = _raw_json(raw)
        if body is not None:
            self._in_unit(key, self.conn.execute, "INSERT INTO raw (key, body) VALUES (?, ?)"
                          " ON CONFLICT (key) DO UPDATE SET body = excluded.body", (key, body))


class _QueueingConn:
    """``tx.conn`` of a ``_PgTx``: a unit's INSERT/UPDATE/DELETE is queued; anything
    else first sends the queue, then runs."""

    def __init__(self, conn: "_PgConn", tx: _PgTx) -> None:
        self.conn = conn
        self.tx = tx

    def execute(self, sql: str, params: Any = None) -> Any:
        tx = self.tx
        if tx._unit is not None and params is not None and sql[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            tx.queue(sql, params)
            return None
        tx.flush()
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> None:
        self.tx.flush()
        self.conn.executemany(sql, rows)


def schema_version(conn: Any) -> int:
    """The schema version of the database behind ``conn`` (a psycopg connection); 0 = none."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def pg_migrate(conn: Any, steps: list[list[str]] = PG_MIGRATIONS, where: str = "database") -> tuple[int, int]:
    """Bring the schema to ``len(steps)`` in one transaction; returns (old, new) versions.

    ``conn``: a psycopg connection in autocommit mode.  Concurrent migrators wait for
    each other (an advisory lock); the version is read under it.
    """
    target = len(steps)
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        version = schema_version(conn)
        if version > target:
            raise StoreError(f"{where}: database schema version {version} is newer than this"
                             f" tasktui ({target}); upgrade tasktui")
        for step in steps[version:]:
            for sql in step:
                if isinstance(sql, tuple):
                    _optional(conn, sql, where)
                else:
                    conn.execute(sql)
        if version == target and target >= 5 and not has_trgm(conn):
            _optional(conn, TRGM_SQL, where)  # db migrate again: the extension may be there now
        if version != target:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (target,))
        conn.execute("COMMIT")
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except Exception:
            pass
        raise
    return version, target


def _optional(conn: Any, statements: tuple[str, ...], where: str) -> bool:
    """Run ``statements`` in a savepoint of the migration; when the server refuses (no
    contrib package, no right to create the extension) undo them, log it once, go on."""
    psycopg = _pg()
    conn.execute("SAVEPOINT tasktui_optional")
    try:
        for sql in statements:
            conn.execute(sql)
    except psycopg.Error as exc:
        conn.execute("ROLLBACK TO SAVEPOINT tasktui_optional")
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        log.warning("%s: %s", where, NO_TRGM.format(why=why))
        return False
    conn.execute("RELEASE SAVEPOINT tasktui_optional")
    return True


def _walk_budget() -> float:
    """Seconds a walk of a sort's index may take here: SQLite's HEAD_BUDGET (read when
    called: tests change it), at least WALK_BUDGET (each entry is a heap read of its row)."""
    from . import store as sqlite_store

    return max(sqlite_store.HEAD_BUDGET, WALK_BUDGET)


def has_trgm(conn: Any) -> bool:
    """Does the database behind ``conn`` (psycopg) have the trigram index over hay?"""
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TRGM_INDEX,)).fetchone()[0]


class PgStore(Store):
    """PostgreSQL-backed task store with the API of ``Store``.  See the module docstring."""

    dialect = "postgres"
    heads_first = True  # window_head and order_job answer (a list reads heads, a thread the rest)

    def __init__(self, url: str, readonly: bool = False, *,
                 clock: Callable[[], float] = time.time, scope: str = "all") -> None:
        self._prepare(url, readonly, clock, scope)
        try:
            self._conn = self._open_conn()  # once: an unreachable server is one line, at once
            self._check_schema()
            self._run(self._load_snapshot, writing=False)
            if not readonly:
                self._purge_tombstones()
        except BaseException:
            self.close()
            raise

    def _prepare(self, url: str, readonly: bool, clock: Callable[[], float], scope: str = "all") -> None:
        """The attributes of a store not yet connected."""
        psycopg = _pg()
        self._psycopg = psycopg
        self._url = url
        self._password = _password(url)
        self.url = safe_url(url)  # what messages show
        self.path = None  # no file
        self.readonly = readonly
        self._clock = clock
        # The memory state of Store.__init__ (test_store_contract checks both have the same).
        self.scope = _check_scope(scope)
        self._recent = OrderedDict()
        self._counts_dirty = False
        self._index = {}
        self._counts = dict.fromkeys(STATES, 0)
        self._by_provider = {}
        self._subscribers = []
        self._credits = None  # credits per provider, counted with the counts (None: ask SQL)
        self._count_table = False  # no table of counts here: a GROUP BY counts
        self._seq = 0
        self._event_id = 0
        self._data_version = None
        self._pending = Change()
        self.revision = 0
        self.last_updated_kinds = []
        self.last_revived = []
        self.file_notice = None
        self._file_id = None
        self._lost = None
        self._cols = _TASK_COLS
        self._live_init()
        self._conn: _PgConn | None = None
        self._listen: Any = None
        self._listen_error: str | None = None
        self._listen_retry_at = 0.0
        self._listen_delay = 0.5
        self._closed = False
        self._stale = False  # a catch-up is owed (listener (re)opened, or news not loaded yet)
        self._down_until = 0.0  # after giving up on the server: calls fail at once until then
        self._down_pause = DOWN_PAUSE
        self._down_reason: str | None = None
        self._hay_known = False  # every tracked row has its hay (seen once: stays so)
        self._trgm: bool | None = None  # is there a trigram index over hay (None: not asked yet)
        self.notice: str | None = None  # what the store says once about itself (no trigram index)

    # ------------------------------------------------------------ connections

    def _say(self, exc: BaseException) -> str:
        """One line about a psycopg error, never holding the password."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        if text.startswith("connection failed: "):
            text = text[len("connection failed: "):]
        text = text.replace(self._url, self.url)
        if self._password:
            text = text.replace(self._password, "***")
            encoded = quote(self._password, safe="")
            if encoded != self._password:
                text = text.replace(encoded, "***")
        return text[:500]

    def _connect(self, listen: bool = False) -> Any:  # type: ignore[override]
        psycopg = self._psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            given = conninfo_to_dict(self._url)
        except psycopg.Error as exc:
            raise StoreError(f"{self.url}: bad database URL: {self._say(exc)}") from None
        extra: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in given:
            extra["connect_timeout"] = CONNECT_TIMEOUT
        if "application_name" not in given:
            extra["application_name"] = "tasktui"
        conn = psycopg.connect(self._url, **extra)
        try:
            conn.adapters.register_dumper(str, _nul_free_dumper())
            if not listen:
                conn.execute(f"SET lock_timeout = {int(LOCK_TIMEOUT_MS)}")
                conn.execute(f"SET idle_in_transaction_session_timeout = {int(IDLE_TX_TIMEOUT_MS)}")
                if self.readonly:
                    conn.execute("SET default_transaction_read_only = on")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_conn(self) -> _PgConn:
        try:
            return _PgConn(self._connect())
        except self._psycopg.Error as exc:
            raise StoreError(f"{self.url}: cannot connect: {self._say(exc)}") from None

    def _check_schema(self) -> None:
        conn = self._require_conn().raw
        try:
            version = schema_version(conn)
            if version == 0 and not self.readonly:
                pg_migrate(conn, where=self.url)
                version = PG_SCHEMA_VERSION
        except StoreError:
            raise
        except self._psycopg.Error as exc:
            raise StoreError(f"{self.url}: cannot read the schema: {self._say(exc)}") from None
        if version > PG_SCHEMA_VERSION:
            raise StoreError(f"{self.url}: database schema version {version} is newer than this"
                             f" tasktui ({PG_SCHEMA_VERSION}); upgrade tasktui")
        if version == 0:
            raise StoreError(f"{self.url}: no tasktui schema in this database; run tasktui db migrate")
        if version < PG_SCHEMA_VERSION:
            raise StoreError(f"{self.url}: schema version {version}, this tasktui needs"
                             f" {PG_SCHEMA_VERSION}; run tasktui db migrate")

    def _require_conn(self) -> _PgConn:  # type: ignore[override]
        if self._closed:
            raise StoreError("the store is closed")
        if self._conn is None or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._conn = _PgConn(self._connect())  # psycopg errors go to _run's retry
        return self._conn

    def _run(self, fn: Callable[[_PgConn], Any], *, writing: bool) -> Any:
        """Run ``fn(conn)``; reopen a lost connection and run it again, with backoff and
        jitter, for up to RETRY_DEADLINE seconds; then StoreWriteError/StoreError."""
        psycopg = self._psycopg
        errors = psycopg.errors
        fail = StoreWriteError if writing else StoreError
        now = time.monotonic()
        if now < self._down_until and self._down_reason:
            # Gave up a moment ago: say so at once rather than block the caller (the
            # dashboard's loop) for another RETRY_DEADLINE; try again after the pause.
            raise fail(self._down_reason)
        deadline = now + RETRY_DEADLINE
        delay = 0.05
        while True:
            try:
                result = fn(self._require_conn())
                self._down_until, self._down_pause = 0.0, DOWN_PAUSE
                return result
            except errors.LockNotAvailable:
                raise StoreBusy(f"{self.url}: another writer held the lock for"
                                f" {LOCK_TIMEOUT_MS / 1000:.0f} s") from None
            except (errors.SerializationFailure, errors.DeadlockDetected) as exc:
                problem = self._say(exc)
            except errors.ReadOnlySqlTransaction:
                raise StoreError("the store is open read-only") from None
            except psycopg.OperationalError as exc:
                problem = self._say(exc)
                if self._conn is not None and self._conn.broken:
                    self._conn.close()
                    self._conn = None
            except psycopg.Error as exc:
                raise fail(f"{self.url}: {self._say(exc)}") from None
            if time.monotonic() + delay > deadline:
                what = "cannot write to" if writing else "cannot read"
                self._down_reason = f"{what} {self.url}: {problem} (gave up after {RETRY_DEADLINE:g} s)"
                self._down_until = time.monotonic() + self._down_pause
                self._down_pause = min(self._down_pause * 2, LISTEN_RETRY_MAX)
                raise fail(self._down_reason) from None
            log.warning("%s: %s; trying again", self.url, problem)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    def close(self) -> None:
        """Close the connections (idempotent).  The in-memory index stays readable."""
        self._closed = True
        for conn in (self._conn, self._listen):
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
        self._conn = None
        self._listen = None

    # ------------------------------------------------------------ no file

    def check_file(self) -> str | None:
        """Always None: a PostgreSQL store has no file to lose."""
        return None

    def _follow_file(self) -> None:
        return None

    def _path_id(self) -> None:
        return None

    # ------------------------------------------------------------ loading

    def _load_snapshot(self, conn: _PgConn) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            seq = conn.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()[0]
            self._reload(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
        self._seq = seq

    # the live set, read after opening (Store.load_live): a snapshot of its own
    _SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def _live_reader(self) -> tuple[Any, Callable[[], None]]:
        conn = self._connect()  # a psycopg connection of the reading thread's own
        return conn, conn.close

    def _live_here(self) -> tuple[int, dict]:
        return self._run(self._read_live_here, writing=False)

    def _catch_up_now(self) -> None:
        self._run(self._read_catch_up, writing=False)

    def _purge_tombstones(self) -> None:
        cutoff = self._clock() - TOMBSTONE_DAYS * 86400

        def purge(conn: _PgConn) -> None:
            probe = "SELECT 1 FROM tasks WHERE deleted = 1 AND removed_at < ? LIMIT 1"
            if conn.execute(probe, (cutoff,)).fetchone() is None:
                return
            conn.execute("BEGIN")
            try:
                conn.execute("SELECT value FROM meta WHERE name = 'seq' FOR UPDATE")
                top = conn.execute("SELECT MAX(seq) FROM tasks WHERE deleted = 1 AND removed_at < ?",
                                   (cutoff,)).fetchone()[0]
                if top is not None:
                    conn.execute("DELETE FROM tasks WHERE deleted = 1 AND removed_at < ?", (cutoff,))
                    conn.execute("UPDATE meta SET value = GREATEST(value, ?) WHERE name = 'purged_seq'",
                                 (top,))
                conn.execute("COMMIT")
            except BaseException:
                conn.rollback()
                raise

        self._run(purge, writing=True)

    # ------------------------------------------------------------ the filter

    def where(self, query: str) -> Any:
        """The filter ``query`` compiled for PostgreSQL: exact in SQL (no residual) for bare
        words and ``id:`` once every tracked row has its haystack (``_hay_ready``)."""
        from .filter import compile_sql

        return compile_sql(query, self.dialect, hay_ready=self._hay_ready())

    def _hay_ready(self) -> bool:
        """Does every tracked row have its ``hay`` (index tasks_nohay answers at once)?  Once
        true it stays true: every writer that accepts this schema writes hay with the row."""
        if self._hay_known:
            return True
        try:
            rows = self._read("SELECT NOT EXISTS (SELECT 1 FROM tasks WHERE hay IS NULL AND deleted = 0)")
        except StoreError:
            return False
        self._hay_known = bool(rows and rows[0][0])
        return self._hay_known

    def trigram_index(self) -> bool:
        """Is there a pg_trgm index over hay (when not, ``notice`` says why)?"""
        return self._trgm_ready()

    def _trgm_ready(self) -> bool:
        """Is there a trigram index over hay?  Asked once; when there is none, ``notice``
        says so (and the log, once)."""
        if self._trgm is None:
            try:
                self._trgm = bool(self._run_read(lambda conn: has_trgm(conn.raw)))
            except StoreError:
                return False
            if not self._trgm:
                self.notice = NO_TRGM.format(why="pg_trgm could not be created")
                log.warning("%s: %s", self.url, self.notice)
        return self._trgm

    def _trigram_ids(self, word: str) -> list[int] | None:
        """Ids of rows whose hay holds ``word`` (at most FTS_MAX + 1), found by the pg_trgm
        index; None when there is none (or a row lacks its hay), or when the probe runs past
        PROBE_BUDGET: pg_trgm splits a word at what is not a letter or digit, so a word made
        of common parts ("batch-7": every hay holds "batch") makes it recheck most rows (at
        1M, 0.23 s), and the walk of the sort's index answers sooner."""
        if not self._hay_ready() or not self._trgm_ready():
            return None
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # not prepared: a generic plan would not see the pattern, so not the index
        rows = self._within(_sql(TRGM_QUERY), (pattern,), PROBE_BUDGET, prepare=False)
        return None if rows is None else [row[0] for row in rows]

    def window_head(self, where: Any = None, sort: str = "updated", reverse: bool = False,
                    limit: int = 200) -> tuple[list[int], bool]:
        """``Store.window_head``, with a short walk of the sort's index before the trigram probe
        when a word could use it: a word many rows hold fills the screen in 1-3 ms that way,
        while its probe costs 20-50 ms at 100k-1M (the GIN bitmap of its trigrams is built
        whole before the LIMIT); a rare word loses QUICK_WALK."""
        if isinstance(where, str):
            where = self.where(where)
        if where is not None and where.residual is not None:
            head = self._walk_residual(where, sort, reverse, limit)
            if head is not None:
                return head
        if (QUICK_WALK and where is not None and where.residual is None and any(len(w) >= 3 for w in where.words)
                and self._trgm_ready()):
            ids = self._walk(where, sort, reverse, limit, QUICK_WALK)
            if ids is not None:
                return ids, len(ids) < limit
        return super().window_head(where, sort, reverse, limit)

    def _walk_residual(self, where: Any, sort: str, reverse: bool, limit: int) -> tuple[list[int], bool] | None:
        """The head of a filter that keeps a residual (a field term on text PostgreSQL's SQL is
        unsure of): the sort's index walked for the first 2 x ``limit`` candidates, the
        residual run on them; None when that does not give ``limit`` matches (or runs past
        the walk's budget): then every candidate is read.  A candidate is a match unless
        its text is not ASCII, so the head is there at once, and a thread reads the rest."""
        from .store import _and_where, _row_task

        cond, params = _and_where(where)
        want = 2 * int(limit)
        sql = _sql(f"SELECT {self._cols}, id FROM tasks WHERE deleted = 0{cond}"
                   f" ORDER BY {self.order_sql(sort, reverse)} LIMIT {want}")
        rows = self._within(sql, params, _walk_budget())
        if rows is None:
            return None
        ids = [row[-1] for row in rows if where.residual(_row_task(tuple(row[:-1])))]
        if len(rows) < want:
            return ids, True  # every candidate was read: the whole answer
        return (ids, False) if len(ids) >= limit else None

    def _walk(self, where: Any, sort: str, reverse: bool, limit: int,
              budget: float | None = None) -> list[int] | None:
        """The first ``limit`` ids of ``window_ids(where, sort, reverse)`` as the planner finds
        them soonest (a sort's index walked, for a filter that keeps many rows), cut off by
        the server after ``budget`` (default WALK_BUDGET, or HEAD_BUDGET if longer) seconds (None:
        the list's thread reads the answer instead)."""
        from .store import _and_where

        cond, params = _and_where(where)
        sql = _sql(f"SELECT id FROM tasks WHERE deleted = 0{cond} ORDER BY {self.order_sql(sort, reverse)}"
                   f" LIMIT {int(limit)}")
        rows = self._within(sql, params, _walk_budget() if budget is None else budget)
        return None if rows is None else [row[0] for row in rows]

    def _head_walk(self, where: Any, sort: str, reverse: bool, limit: int) -> tuple[list[int], bool]:
        """``Store._head_walk`` here: a read the server cancelled returns no rows, so a walk
        cut off found none."""
        ids = self._walk(where, sort, reverse, limit)
        return (ids, True) if ids is not None else ([], False)

    def _within(self, sql: str, params: tuple, budget: float, prepare: bool | None = None) -> list[tuple] | None:
        """The rows of one read the server cancels after ``budget`` seconds (then None)."""
        errors = self._psycopg.errors
        budget_ms = max(1, int(budget * 1000))

        def read(conn: _PgConn) -> list[tuple] | None:
            raw = conn.raw
            raw.execute("BEGIN")
            try:
                raw.execute(f"SET LOCAL statement_timeout = {budget_ms}")
                rows = raw.execute(sql, params or None, prepare=prepare).fetchall()
                raw.execute("COMMIT")
            except errors.QueryCanceled:
                conn.rollback()
                return None
            except BaseException:
                conn.rollback()
                raise
            return rows

        if self._closed:
            return []
        return self._run(read, writing=False)

    def order_job(self, where: Any, sort: str, reverse: bool, among: list[int] | None = None) -> "PgOrderJob":
        """The whole of ``window_ids(where, sort, reverse)`` (with ``among``: which of those ids
        match ``where``, in their order), read on a connection of its own: ``run()`` in a
        thread, ``cancel()`` from any thread (the server cancels the query)."""
        from .store import _and_where

        if isinstance(where, str):
            where = self.where(where)
        residual = where.residual if where is not None else None
        cols = f"{self._cols}, id" if residual is not None else "id"
        cond, params = _and_where(where)
        if among is not None:
            among_sql, arg = self._among(among)
            sql = f"SELECT {cols} FROM tasks WHERE {among_sql} AND deleted = 0{cond}"
            params = (arg, *params)
        else:
            sql = f"SELECT {cols} FROM tasks WHERE deleted = 0{cond} ORDER BY {self.order_sql(sort, reverse)}"
        return PgOrderJob(self._connect, self._psycopg, _sql(sql), params, among, residual)

    # ------------------------------------------------------------ reads (database, on demand)

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self._closed:
            return []
        return self._run(lambda conn: conn.execute(sql, args or None).fetchall(), writing=False)

    def _run_read(self, fn: Callable[[Any], Any]) -> Any:
        if self._closed:
            self._counts_dirty = False
            return None
        return self._run(fn, writing=False)

    def history(self, key: str) -> list[tuple[float, str, str | None]]:
        if self._closed:
            return []
        rows = self._read("SELECT time, state, provider_status FROM history WHERE key = ? ORDER BY id", (key,))
        return [tuple(r) for r in rows]

    def raw(self, key: str) -> Any:
        if self._closed:
            return None
        rows = self._read("SELECT body FROM raw WHERE key = ?", (key,))
        if not rows or rows[0][0] is None:
            return None
        import json

        try:
            return json.loads(rows[0][0])
        except ValueError:
            return None

    def events(self, limit: int = 1000, provider: str | None = None):
        from .model import Event

        if self._closed:
            return []
        cols = "time, provider, message, task_id, status, kind, retry_after"
        if provider is None:
            rows = self._read(f"SELECT {cols} FROM events ORDER BY id DESC LIMIT ?", (int(limit),))
        else:
            rows = self._read(f"SELECT {cols} FROM events WHERE provider = ? ORDER BY id DESC LIMIT ?",
                              (provider, int(limit)))
        return [Event(*row) for row in rows]

    def counters(self) -> dict[str, dict]:
        if self._closed:
            return {}
        return _counter_blobs(self._read("SELECT provider, data FROM counters ORDER BY provider"))

    # ------------------------------------------------------------ change feed

    def _poll_listener(self) -> bool:
        """Read what the listening connection got; True when a catch-up is needed
        (a notification of a seq above ours, or a listening connection just (re)opened).
        Raises StoreError while it cannot be (re)opened (tried again with backoff)."""
        psycopg = self._psycopg
        if self._listen is not None:
            pgconn = self._listen.pgconn
            try:
                pgconn.consume_input()
                news = False
                while (note := pgconn.notifies()) is not None:
                    try:
                        news = news or int(note.extra) > self._seq
                    except ValueError:
                        news = True
                if pgconn.status == 0 and not self._listen.closed:  # 0 = CONNECTION_OK
                    return news
            except psycopg.Error as exc:
                log.warning("%s: listening connection lost: %s", self.url, self._say(exc))
            try:
                self._listen.close()
            except Exception:
                pass
            self._listen = None
            self._listen_retry_at = 0.0  # the first reconnect right away
        now = time.monotonic()
        if now < self._listen_retry_at:
            raise StoreError(self._listen_error or f"{self.url}: not connected")
        try:
            listen = self._connect(listen=True)
            listen.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            self._listen_error = f"{self.url}: cannot connect: {self._say(exc)}"
            self._listen_retry_at = now + self._listen_delay * (0.5 + random.random())
            self._listen_delay = min(self._listen_delay * 2, LISTEN_RETRY_MAX)
            raise StoreError(self._listen_error) from None
        self._listen = listen
        self._stale = True  # kept until a sync() caught up, whoever opened the listener
        self._listen_error = None
        self._listen_delay = 0.5
        return True  # whatever was committed while nobody listened: catch up

    def wait(self, timeout: float) -> bool:
        """Block until a change notification may have come in, at most ``timeout``
        seconds (then ``sync()`` picks it up); True when something arrived.  For a
        collector or ``tasktui wait`` that wants to wake on changes, not on a timer."""
        import select

        if self._closed:
            return False
        if self._listen is None:
            try:
                self._poll_listener()  # leaves the catch-up it asks for to sync()
            except StoreError:
                time.sleep(max(0.0, timeout))  # no server: do not spin
                return False
            return True
        try:
            ready, _, _ = select.select([self._listen.pgconn.socket], [], [], max(0.0, timeout))
        except (OSError, ValueError, self._psycopg.Error):
            return True  # a lost connection: sync() reopens it
        return bool(ready)

    def _read_catch_up(self, conn: _PgConn) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            self._catch_up()
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise

    def _sync_feed(self) -> set[str]:
        """Store.sync's: pick up what other processes committed; returns the changed keys.
        No round trip to the server when no notification came in."""
        if self._closed:
            return set()
        if self._poll_listener():
            self._stale = True
        if self._stale:
            self._run(self._read_catch_up, writing=False)
            self._stale = False
        if not self._pending:
            return set()
        keys = set(self._pending.keys)
        self._notify(Change())
        return keys

    def _catch_up(self) -> None:
        """Store's catch-up, counting new events by rows (PostgreSQL ids have gaps)."""
        conn = self._require_conn()
        before = self._event_id
        Store._catch_up(self)
        if self._event_id > before and self._pending.events:
            n, top = conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM events WHERE id > ?",
                                  (before,)).fetchone()
            self._pending.events -= (self._event_id - before) - int(n)
            self._event_id = max(self._event_id, int(top))

    # ------------------------------------------------------------ writes

    def _write(self, plan: Callable[[_Tx], Any]) -> Any:
        if self.readonly:
            raise StoreError("the store is open read-only")

        def attempt(conn: _PgConn) -> tuple[_Tx, Any]:
            conn.execute("BEGIN")
            try:
                # The writers' lock (held to COMMIT): sequence numbers are committed in order.
                conn.execute("SELECT value FROM meta WHERE name = 'seq' FOR UPDATE")
                self._catch_up()
                tx = _PgTx(self, conn)
                # Pipeline mode: statements go out without waiting for each answer (a round
                # trip per statement made 10,000 adds ten times slower than SQLite).
                with conn.raw.pipeline():
                    result = plan(tx)
                    tx.flush()
                if tx.seq is None:
                    conn.execute("COMMIT")
                    return tx, result
                conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(tx.seq)))
                xid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
            except BaseException:
                conn.rollback()
                raise
            try:
                conn.execute("COMMIT")
            except self._psycopg.OperationalError:
                if self._landed(xid):
                    return tx, result
                raise
            return tx, result

        tx, result = self._run(attempt, writing=True)
        self._committed(tx)
        return result

    def _landed(self, xid: str) -> bool:
        """After a connection lost during COMMIT: did that transaction commit?"""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

        def status(conn: _PgConn) -> str | None:
            return conn.execute("SELECT pg_xact_status(?::xid8)", (xid,)).fetchone()[0]

        try:
            return self._run(status, writing=True) == "committed"
        except StoreError:
            return False


class PgOrderJob(OrderJob):
    """One read of a list's whole order, off the screen's thread (``PgStore.order_job``), on a
    psycopg connection of its own.  ``cancel()`` asks the server to cancel the query (from
    a thread of its own: the screen's thread does not wait for that round trip)."""

    def __init__(self, connect: Callable[[], Any], psycopg: Any, sql: str, params: tuple,
                 among: list[int] | None, residual: Any = None) -> None:
        super().__init__(connect, sql, params, among, residual)
        self.errors = (psycopg.Error, StoreError, OSError)

    def _batches(self, conn: Any) -> Any:
        with conn.cursor() as cursor:
            cursor.execute(self.sql, self.params or None, prepare=False)
            while rows := cursor.fetchmany(5000):
                yield rows

    def cancel(self) -> None:
        import threading

        with self._lock:
            self.cancelled = True
            conn = self._conn
        if conn is not None:
            threading.Thread(target=self._cancel, args=(conn,), name="task-list-cancel", daemon=True).start()

    def _cancel(self, conn: Any) -> None:
        try:
            conn.cancel_safe(timeout=CONNECT_TIMEOUT)
        except Exception:  # gone already, or the server cannot be reached: the read ends anyway
            pass
