"""The task store: SQLite on disk, an in-memory index for the UI, a change feed.

Reads (``get``, ``tasks``, ``counts`` ...) are served from memory and never touch
the disk.  What memory holds is the store's ``scope``: "all" tasks (the default),
the "live" ones (not terminal: the engine's working set; a task that ends leaves
memory after the write that ended it) or "none" (a one-shot command: ``add`` of one
id reads one row by key, not the store).  Whatever the scope, ``get``/``in`` answer
for every tracked task (a task not in memory: one indexed query, kept in a small
LRU), ``len``, ``counts``, ``counts_by_provider``, ``credits_by_provider`` and
``count_where`` count every tracked task (in SQL: GROUP BY, at open or after a change
of a task memory did not hold), ``iter_tasks`` streams them all in batches; only
``tasks``/``keys``/``items`` list memory, i.e. the scope.  The change feed names
the changed keys in every scope.  Scope "live" does not read its live tasks at open:
a thread reads them in one snapshot (``load_live``, after a dashboard's first frame) and
they come into memory on the store's thread (``finish_live``, or the next ``sync``),
consistent with every write seen meanwhile; until then a live task is read from disk
like an ended one, and ``tasks()`` reads them at once unless the opener ``defer_live``.
Writes run in one SQLite transaction each and are committed before they return: an
acknowledged task survives ``kill -9`` of this process.

Durability: WAL journal with ``synchronous=FULL``.  WAL + NORMAL would already
survive a killed process (the committed WAL frames sit in the OS page cache);
FULL also fsyncs the WAL at every commit, so an acknowledged write survives an
OS crash or power loss too.  The cost is one fsync per write transaction, which
is cheap because the engine writes one transaction per polling round.

Other processes (``tasktui add``, a headless ``poll``) write to the same file.
Every write transaction bumps a database-wide sequence number (``meta.seq``)
and stamps it on the rows it changes; removed tasks stay as tombstones.
``sync()`` checks ``PRAGMA data_version`` (free when nothing changed) and then
loads only rows with ``seq`` above the last one seen.  Each write transaction
first does the same catch-up, under the write lock, so nothing is skipped.

``Task.rev`` (column ``rev``) is the ``seq`` of the task's last visible change:
it grows across processes and never repeats for a key, even after remove and
re-add, so ``(key, rev)`` is a safe render-cache key.  Column ``seq`` is the
last write of any kind to the row.

A no-op update (same state, progress, results, error ... as stored) does not
bump ``rev`` or notify anyone; it quietly refreshes ``updated_at``, ``eta``
and the stored raw answer (other processes pick that up silently too).

Locks: a write waits (blocking) while another process holds the write lock:
SQLite's busy timeout, then our own retries with jitter, up to BUSY_DEADLINE;
then ``StoreBusy``.  "database is locked" never escapes as a raw sqlite3 error;
a write that fails for any other reason raises ``StoreWriteError`` with one line
saying why ("disk full writing PATH", "database is read-only: PATH") and changes
nothing, on disk or in memory; other SQLite failures (corrupt file) become
``StoreError`` naming the file.

The database file is created 0600 (SQLite gives its -wal and -shm the same mode).

A database file deleted or replaced under an open store is noticed (``check_file``,
an inode check done by ``sync()`` and before every write): a replaced file is reopened
and the tasks only this store knows are written into it; a deleted one makes every
write and sync raise ``StoreWriteError`` until a file is back at the path.

Use one ``Store`` from one thread (the asyncio thread).  The store has no API
that takes a secret, and must never get one.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import random
import sqlite3
import threading
import time
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

from .filter import hay, sql_match
from .model import NOT_FOUND, STATES, TERMINAL, UNKNOWN, Event, Task, task_key

log = logging.getLogger(__name__)

EVENT_CAP = 10_000  # newest rows kept in the event log
HISTORY_CAP = 500  # newest history rows kept per task
TOMBSTONE_DAYS = 7.0  # removed tasks are remembered this long (cross-process pickup, discovery)
BUSY_TIMEOUT_MS = 5_000  # SQLite's own wait for a lock
BUSY_DEADLINE = 60.0  # our retries on top of it, in seconds, before giving up
RAW_LIMIT = 1_000_000  # characters of one raw answer kept

# Columns of the in-memory Task.  ``results`` is stored as a JSON array; SQLite joins it
# with US (0x1f, a control character that cleaned provider text never holds) so that
# opening 100,000 tasks needs a str.split, not 100,000 json.loads.
_SEP = "\x1f"
def _shown(column: str, low: str, high: str) -> str:
    """``column``, read as NULL when it holds a value no screen can show (inf, 1e20: an
    older tasktui or another writer put it there); checked in SQL, off the hot loop."""
    return f"CASE WHEN {column} >= {low} AND {column} <= {high} THEN {column} END"


_TIME_MAX = "253402300799"  # 9999-12-31T23:59:59Z (model.MAX_EPOCH - 1)
_TASK_COLS = (
    f"provider, task_id, kind, label, state, provider_status, {_shown('progress', '0', '100')}, results,"
    f" error, model, credits, {_shown('created_at', '0', _TIME_MAX)}, {_shown('updated_at', '0', _TIME_MAX)},"
    f" {_shown('finished_at', '0', _TIME_MAX)},"
    " last_error, last_error_at, failed_polls, stalled, poll_path, details, eta, rev, files,"
    f" {_shown('polled_at', '0', _TIME_MAX)}, {_shown('next_poll_at', '0', _TIME_MAX)}"
)
_REV_AT = -4  # where ``rev`` sits in a _TASK_COLS row (..., rev, files, polled_at, next_poll_at)
# The same columns read from an older file opened read-only (no migration allowed there).
_TASK_COLS_V3 = _TASK_COLS.split(", files,")[0] + ", files, NULL, NULL"
_TASK_COLS_V2 = _TASK_COLS_V3.replace("rev, files", "rev, NULL")
_TASK_COLS_V1 = _TASK_COLS_V2.replace(
    "last_error, last_error_at, failed_polls, stalled, poll_path, details",
    "NULL, NULL, 0, NULL, NULL, NULL")
# The poll-health fields ``Store.apply(health=...)`` writes (see HEALTH_KEYS).
HEALTH_KEYS: tuple[str, ...] = ("last_error", "last_error_at", "failed_polls", "stalled", "poll_path")
# Freshness (set by the engine through ``apply(health=...)`` too): written, but no news
# for a screen by itself (it changes at every poll): it does not bump ``rev``.
FRESH_KEYS: tuple[str, ...] = ("polled_at", "next_poll_at")
# What the store keeps in memory: "all" tasks (the default), the "live" ones only
# (not terminal: the engine's working set), or "none" (a one-shot command).
SCOPES: tuple[str, ...] = ("all", "live", "none")
LIVE_STATES: tuple[str, ...] = tuple(s for s in STATES if s not in TERMINAL)
_LIVE_SQL = "state IN (" + ", ".join(f"'{s}'" for s in LIVE_STATES) + ")"
RECENT_CAP = 512  # tasks read from disk by get() kept (scope "live"/"none")
# What a user can see: a change in any of these bumps rev and notifies.
_VISIBLE = (
    "kind", "label", "state", "provider_status", "progress", "results", "error",
    "model", "credits", "created_at", "finished_at", *HEALTH_KEYS, "details",
)
# Kept from the stored task when an update has None.  ``poll_path`` too: where a task
# is polled does not stop being true because an answer does not repeat it.
_KEEP_IF_NONE = ("kind", "label", "model", "credits", "created_at", "eta", "poll_path", "polled_at",
                 "next_poll_at")


class StoreError(Exception):
    """The store cannot do what was asked (read-only, unreadable file, ...)."""


class StoreBusy(StoreError):
    """Another process held the database lock for longer than BUSY_DEADLINE."""


class StoreWriteError(StoreError):
    """A write did not reach the file: disk full, database read-only, file deleted ...

    The message is one line naming the reason and the file ("disk full writing PATH",
    "database is read-only: PATH", "database file was deleted: PATH").  Nothing changed,
    on disk or in memory: the caller keeps what it meant to write and tries again later.
    """


@dataclass(slots=True)
class Change:
    """What one write transaction (or one ``sync``) changed.

    ``keys``: tasks added, changed or removed (check ``key in store``);
    ``events``: new event log rows; ``counters``: provider counters changed.
    """

    keys: set[str] = field(default_factory=set)
    events: int = 0
    counters: bool = False

    def __bool__(self) -> bool:
        return bool(self.keys or self.events or self.counters)


# ---------------------------------------------------------------- sorts

# The task list's sorts (tui/widgets/task_list.py SORTS) in SQL: (expression, descending)
# columns, then ``id`` ascending (insertion order breaks ties).  Each has an index
# (partial: live rows), so a window of any sort is an index range scan; reversed, the
# same index is read backwards (the exact mirror, ties included).
_UPDATED = "COALESCE(NULLIF(updated_at, 0), NULLIF(created_at, 0), 0)"
_RANK = ("CASE state WHEN 'failed' THEN 0 WHEN 'running' THEN 1 WHEN 'queued' THEN 2 WHEN 'unknown' THEN 3"
         " WHEN 'not_found' THEN 4 WHEN 'cancelled' THEN 5 WHEN 'succeeded' THEN 6 ELSE 9 END")
_PROGRESS = "COALESCE(progress, CASE WHEN state = 'succeeded' THEN 100 ELSE -1 END)"
SORT_SQL: dict[str, tuple[tuple[str, bool], ...]] = {
    "updated": ((_UPDATED, True),),
    "created": (("COALESCE(created_at, 0)", True),),
    "state": ((_RANK, False), (_UPDATED, True)),
    "provider": (("provider", False), ("task_id", False)),
    "progress": ((_PROGRESS, True), (_UPDATED, True)),
}


def _sort_index_sql(name: str, collate: str = "") -> str:
    cols = ", ".join(f"({expr}){collate if expr in ('provider', 'task_id') else ''}{' DESC' if desc else ''}"
                     for expr, desc in SORT_SQL[name])
    return f"CREATE INDEX tasks_sort_{name} ON tasks({cols}, id) WHERE deleted = 0"


# ---------------------------------------------------------------- schema


def _fts5_trigram() -> bool:
    """Does this SQLite have FTS5 with the trigram tokenizer (3.34+)?"""
    try:
        conn = sqlite3.connect(":memory:")
        try:
            conn.execute("CREATE VIRTUAL TABLE t USING fts5(h, tokenize='trigram')")
        finally:
            conn.close()
        return True
    except sqlite3.Error:
        return False


_FTS_SQL = [
    "CREATE VIRTUAL TABLE tasks_fts USING fts5(hay, content='tasks', content_rowid='id', tokenize='trigram')",
    "INSERT INTO tasks_fts(tasks_fts) VALUES ('rebuild')",
    "CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN"
    " INSERT INTO tasks_fts(rowid, hay) VALUES (new.id, new.hay); END",
    "CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN"
    " INSERT INTO tasks_fts(tasks_fts, rowid, hay) VALUES ('delete', old.id, old.hay); END",
    "CREATE TRIGGER tasks_fts_update AFTER UPDATE OF hay ON tasks WHEN old.hay IS NOT new.hay BEGIN"
    " INSERT INTO tasks_fts(tasks_fts, rowid, hay) VALUES ('delete', old.id, old.hay);"
    " INSERT INTO tasks_fts(rowid, hay) VALUES (new.id, new.hay); END",
]
def _counts_upsert(row: str, sign: str, when: str) -> str:
    paid = f"CASE WHEN {row}.credits <> 0 THEN 1 ELSE 0 END"
    spent = f"CASE WHEN {row}.credits <> 0 THEN {row}.credits ELSE 0 END"
    return (f"INSERT INTO task_counts SELECT {row}.provider, {row}.state, {sign}1, {sign}({paid}), {sign}({spent})"
            f" WHERE {when} ON CONFLICT (provider, state) DO UPDATE SET n = n + excluded.n,"
            " paid = paid + excluded.paid, credits = credits + excluded.credits;")


_COUNTS_TABLE_SQL = [
    "CREATE TABLE task_counts (provider TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL,"
    " paid INTEGER NOT NULL, credits REAL NOT NULL, PRIMARY KEY (provider, state)) WITHOUT ROWID",
    "INSERT INTO task_counts SELECT provider, state, COUNT(*), COUNT(CASE WHEN credits <> 0 THEN 1 END),"
    " COALESCE(SUM(CASE WHEN credits <> 0 THEN credits END), 0) FROM tasks WHERE deleted = 0"
    " GROUP BY provider, state",
    "CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN "
    + _counts_upsert("new", "", "new.deleted = 0") + " END",
    "CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN "
    + _counts_upsert("old", "-", "old.deleted = 0") + " END",
    "CREATE TRIGGER task_counts_update AFTER UPDATE OF provider, state, credits, deleted ON tasks"
    " WHEN old.provider IS NOT new.provider OR old.state IS NOT new.state OR old.credits IS NOT new.credits"
    " OR old.deleted IS NOT new.deleted BEGIN "
    + _counts_upsert("old", "-", "old.deleted = 0") + " "
    + _counts_upsert("new", "", "new.deleted = 0") + " END",
]
# Counts per provider and state with the credits: one GROUP BY (the covering index
# tasks_counts holds them all), or the table the triggers keep (schema 7).
_COUNT_SQL = ("SELECT provider, state, COUNT(*), SUM(CASE WHEN credits <> 0 THEN credits END)"
              " FROM tasks WHERE deleted = 0 GROUP BY provider, state")
_COUNT_TABLE_READ = ("SELECT provider, state, n, CASE WHEN paid > 0 THEN credits END FROM task_counts"
                     " WHERE n <> 0 ORDER BY provider, state")
FTS_MAX = 20_000  # a word the trigram index finds in at most this many rows is answered from it
HEAD_BUDGET = 0.03  # seconds a head query may walk a sort's index before a scan answers instead

# One list of SQL statements per schema version; MIGRATIONS[i] takes the
# database from user_version i to i + 1.  Append, never edit a shipped step.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT INTO meta VALUES ('seq', 0), ('purged_seq', 0)",
        """CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            provider TEXT NOT NULL,
            task_id TEXT NOT NULL,
            kind TEXT,
            label TEXT,
            state TEXT NOT NULL,
            provider_status TEXT,
            progress REAL,
            results TEXT NOT NULL DEFAULT '[]',
            error TEXT,
            model TEXT,
            credits REAL,
            created_at REAL,
            updated_at REAL,
            finished_at REAL,
            eta REAL,
            rev INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            removed_at REAL
        )""",
        "CREATE INDEX tasks_seq ON tasks(seq)",
        "CREATE INDEX tasks_tombstones ON tasks(removed_at) WHERE deleted = 1",
        # Raw answers live apart so that the scan at open does not read them.
        "CREATE TABLE raw (key TEXT PRIMARY KEY, body TEXT NOT NULL)",
        """CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            time REAL NOT NULL,
            state TEXT NOT NULL,
            provider_status TEXT
        )""",
        "CREATE INDEX history_key ON history(key, id)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            provider TEXT NOT NULL,
            task_id TEXT,
            status INTEGER,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            retry_after REAL
        )""",
        "CREATE INDEX events_provider ON events(provider, id)",
        """CREATE TABLE counters (
            provider TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            updated_at REAL NOT NULL,
            seq INTEGER NOT NULL
        )""",
    ],
    # 2: a task's poll health and provider details (JSON object of strings; NULL = none).
    [
        "ALTER TABLE tasks ADD COLUMN last_error TEXT",
        "ALTER TABLE tasks ADD COLUMN last_error_at REAL",
        "ALTER TABLE tasks ADD COLUMN failed_polls INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE tasks ADD COLUMN stalled TEXT",
        "ALTER TABLE tasks ADD COLUMN poll_path TEXT",
        "ALTER TABLE tasks ADD COLUMN details TEXT",
    ],
    # 3: local paths of downloaded results (JSON array of strings; NULL = none), see set_files.
    [
        "ALTER TABLE tasks ADD COLUMN files TEXT",
    ],
    # 4: freshness (Task.polled_at, next_poll_at); indexes for a store read by window
    # (scope "live"/"none"): the live set, the counts, one per sort of the task list.
    [
        "ALTER TABLE tasks ADD COLUMN polled_at REAL",
        "ALTER TABLE tasks ADD COLUMN next_poll_at REAL",
        *[sql.replace("{LIVE}", _LIVE_SQL) for sql in (
            "CREATE INDEX tasks_live ON tasks(id) WHERE deleted = 0 AND {LIVE}",
            "CREATE INDEX tasks_counts ON tasks(deleted, provider, state, credits)",
        )],
        *[_sort_index_sql(name) for name in SORT_SQL],
    ],
    # 5: what a bare word of the filter is looked for in, lowercased by Python at write time
    # (tui.filter.hay); NULL on rows written before (the filter then reads the fields).
    [
        "ALTER TABLE tasks ADD COLUMN hay TEXT",
    ],
    # 6: a trigram index over hay (SQLite FTS5, when this SQLite has it), kept in step by
    # triggers: a bare word of 3+ characters finds its rows without a scan (window_head);
    # tasks_nohay tells at once whether a tracked row lacks its hay (then no index is used).
    [
        "CREATE INDEX tasks_nohay ON tasks(id) WHERE hay IS NULL",
        *(_FTS_SQL if _fts5_trigram() else []),
    ],
    # 7: the counts per provider and state (and the credits), kept by triggers: a store
    # opened reads a few rows, not a GROUP BY over every task; exact whoever wrote.
    _COUNTS_TABLE_SQL,
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, steps: list[list[str]] = MIGRATIONS) -> int:
    """Bring the schema to ``len(steps)`` inside one write transaction; returns the version.

    Safe against a concurrent opener: the version is re-read under the lock.
    """
    target = len(steps)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > target:
            raise StoreError(
                f"database schema version {version} is newer than this tasktui ({target}); upgrade tasktui"
            )
        for step in steps[version:]:
            for sql in step:
                conn.execute(sql)
        if version != target:
            conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return target


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _write_failure(path: Path, exc: BaseException) -> str:
    """One line saying why a write to the database at ``path`` failed."""
    reason = _diagnose(path, exc)
    if reason:
        return reason
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"cannot write {path}: {text}"


def _diagnose(path: Path, exc: BaseException | None) -> str | None:
    """Why a write to ``path`` failed, when it is one of the reasons a user can act on.

    SQLite says "full" and "read-only" itself; for a bare I/O error (errno is not
    passed on) the file system is asked: file gone, no write permission (which also
    catches a read-only mount and, even for root, an immutable file), no free space,
    a file size limit (RLIMIT_FSIZE) reached.
    """
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return f"disk full writing {path}"
    if code == sqlite3.SQLITE_READONLY:
        return f"database is read-only: {path}"
    try:
        if not path.exists():
            return f"database file was deleted: {path}"
        wal = Path(f"{path}-wal")
        for what in (path, wal, path.parent):
            if what.exists() and not os.access(what, os.W_OK):
                return f"database is read-only: {path}"
        fs = os.statvfs(path.parent)
        if fs.f_bavail == 0 or fs.f_favail == 0:
            return f"disk full writing {path}"
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource else -1
        if soft not in (-1, getattr(resource, "RLIM_INFINITY", -1)):
            biggest = max((f.stat().st_size for f in (path, wal) if f.exists()), default=0)
            if biggest + 65536 >= soft:
                return f"disk full writing {path} (file size limit of {soft} bytes reached)"
    except OSError:
        pass
    return None


def _retry(what: Callable[[], Any], where: object = "task database",
           writing: Path | None = None) -> Any:
    """Run ``what``; on "database is locked/busy" wait (with jitter) and run it again.

    Gives up with StoreBusy after BUSY_DEADLINE; any other SQLite error (disk full,
    corrupt file ...) becomes a StoreError that names the file, a StoreWriteError
    saying why when ``writing`` (the database path) is given.
    """
    deadline = time.monotonic() + BUSY_DEADLINE
    delay = 0.005
    while True:
        try:
            return what()
        except sqlite3.Error as exc:
            if not (isinstance(exc, sqlite3.OperationalError) and _is_busy(exc)):
                if writing is not None:
                    raise StoreWriteError(_write_failure(writing, exc)) from None
                raise StoreError(f"{where}: {exc}") from exc
            if time.monotonic() > deadline:
                raise StoreBusy(f"{where}: stayed locked for {BUSY_DEADLINE:.0f} s") from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)


def _results_json(results: list[str]) -> str:
    if not results:
        return "[]"
    return json.dumps([str(url).replace(_SEP, "") for url in results], ensure_ascii=False)


def _results_list(stored: str | None) -> list[str]:
    """The stored JSON list of results -> list (decoded in Python: SQLite's
    json_each per row made opening 100,000 tasks twice as slow)."""
    if not stored or stored == "[]":
        return []
    inner = stored[2:-2]
    if stored[:2] == '["' and stored[-2:] == '"]' and '"' not in inner and "\\" not in inner:
        return [inner]  # one plain link, as _results_json writes it: no need to parse
    try:
        value = json.loads(stored)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _raw_json(raw: Any) -> str | None:
    if raw is None:
        return None
    try:
        text = json.dumps(raw, default=str, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the answer): keep it escaped
        text = json.dumps(raw, default=str)
    except (TypeError, ValueError, RecursionError):
        text = json.dumps(str(raw))
    if len(text) > RAW_LIMIT:
        text = json.dumps({"truncated": True, "size": len(text)})
    return text


def _details_json(details: dict[str, str] | None) -> str | None:
    if not details:
        return None
    return json.dumps({str(k): str(v) for k, v in details.items()}, ensure_ascii=False)


def _details_dict(stored: str | None) -> dict[str, str]:
    if not stored:
        return {}
    try:
        value = json.loads(stored)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _counter_blobs(rows: Iterable[tuple[str, str]]) -> dict[str, dict]:
    """(provider, stored JSON) rows -> provider -> counters blob; unreadable ones are skipped."""
    out: dict[str, dict] = {}
    for provider, data in rows:
        try:
            value = json.loads(data)
        except ValueError:
            continue
        if isinstance(value, dict):
            out[provider] = value
    return out


def _row_task(row: tuple) -> Task:
    """A ``_TASK_COLS`` row -> Task (positional: this runs 100,000 times at open)."""
    (provider, task_id, kind, label, state, pstatus, progress, results, error,
     model, credits, created, updated, finished,
     last_error, last_error_at, failed_polls, stalled, poll_path, details, eta, rev, files,
     polled_at, next_poll_at) = row
    return Task(provider, task_id, kind, label, state, pstatus, progress,
                _results_list(results), error, model, credits, created, updated, finished,
                last_error, last_error_at, failed_polls or 0, stalled, poll_path,
                _details_dict(details) if details else {}, None, eta, rev,
                _results_list(files) if files else [], polled_at, next_poll_at)


def _live_sql(cols: str) -> str:
    """The live tasks (not terminal), in insertion order: the partial index tasks_live."""
    return f"SELECT {cols} FROM tasks WHERE deleted = 0 AND {_LIVE_SQL} ORDER BY id"


def _index_of(rows: Iterable[tuple]) -> dict[str, Task]:
    """``_TASK_COLS`` rows -> key -> Task, in their order (the hot loop of a load)."""
    index: dict[str, Task] = {}
    new, results_list, details_dict = Task, _results_list, _details_dict
    gc_on = gc.isenabled() and threading.current_thread() is threading.main_thread()
    if gc_on:
        gc.disable()  # 100,000 new objects would trigger many useless collections
    try:
        for (provider, task_id, kind, label, state, pstatus, progress, results, error,
             model, credits, created, updated, finished,
             last_error, last_error_at, failed_polls, stalled, poll_path, details, eta, rev,
             files, polled_at, next_poll_at) in rows:
            index[provider + ":" + task_id] = new(
                provider, task_id, kind, label, state, pstatus, progress,
                results_list(results) if results != "[]" else [], error, model, credits,
                created, updated, finished, last_error, last_error_at, failed_polls or 0,
                stalled, poll_path, details_dict(details) if details else {}, None, eta, rev,
                results_list(files) if files else [], polled_at, next_poll_at)
    finally:
        if gc_on:
            gc.enable()
    return index


class _LiveRead:
    """One read of the live tasks in a thread (``Store.load_live``): its result, and who
    is told when it is there."""

    def __init__(self, gen: int) -> None:
        self.gen = gen  # the store's _live_gen it was started for (a reload makes it stale)
        self.done = threading.Event()
        self.result: tuple[int, dict[str, Task]] | None = None  # (seq of its snapshot, key -> Task)
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._told: list[Callable[[], Any]] = []

    def tell(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` (from the reading thread) once the read is over; now if it is."""
        with self._lock:
            if not self.done.is_set():
                self._told.append(callback)
                return
        _call(callback)

    def finish(self) -> None:
        with self._lock:
            self.done.set()
            told, self._told = self._told, []
        for callback in told:
            _call(callback)


def _call(callback: Callable[[], Any]) -> None:
    try:
        callback()
    except Exception:
        log.exception("live set callback %r failed", callback)


def _check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"store scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    return scope


_UNKNOWN: Any = object()  # "memory does not know what this task was" (scope live/none)


def _printable(text: str) -> str:
    """A label or kind as stored: ``tui.text.clean`` (the one cleaner: escape sequences,
    controls and invisible characters out, whitespace runs one space), without lone
    surrogates (no UTF-8 can hold them)."""
    from .text import clean

    return clean(text, TEXT_CAP).encode("utf-8", "ignore").decode("utf-8")


# ---------------------------------------------------------------- store


class Store:
    """SQLite-backed task store with an in-memory index.  See the module docstring."""

    dialect = "sqlite"  # what tui.filter.compile_sql writes for this store
    heads_first = True  # window_head and order_job answer (a list reads heads, a thread the rest)

    def __init__(self, path: str | os.PathLike[str], readonly: bool = False, *,
                 clock: Callable[[], float] = time.time, scope: str = "all") -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._clock = clock
        self.scope = _check_scope(scope)
        self._recent: OrderedDict[str, Task | None] = OrderedDict()  # get() of tasks not in memory
        self._counts_dirty = False  # a change of a task memory did not know: recount in SQL
        self._index: dict[str, Task] = {}
        self._counts: dict[str, int] = dict.fromkeys(STATES, 0)
        self._by_provider: dict[str, dict[str, int]] = {}
        self._credits = None  # credits per provider, counted with the counts (None: ask SQL)
        self._subscribers: list[Callable[[Change], Any]] = []
        self._seq = 0  # highest meta.seq loaded into memory
        self._event_id = 0  # highest event id seen
        self._data_version: int | None = None
        self._pending = Change()  # caught up from others, not yet notified
        self.revision = 0
        self.last_updated_kinds: list[str] = []  # set by add(): tracked keys whose kind it changed
        self.last_revived: list[str] = []  # set by add(): of those, the ones that were not_found
        self.file_notice: str | None = None  # what the last reopen of a replaced file did
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened
        self._lost: str | None = None  # why the file opened is gone (deleted), until one is back
        self._cols = _TASK_COLS  # _TASK_COLS_V1 for a schema-1 file opened read-only
        self._live_init()
        self._conn: sqlite3.Connection | None = None
        if readonly and not self.path.exists():
            self._live_in, self._touched = True, None  # nothing stored yet: nothing to read
            return  # nothing stored yet: an empty, read-only store
        self._conn = self._connect()
        self._file_id = self._path_id()
        try:
            _retry(self._load, self.path)
            if not readonly:
                self._purge_tombstones()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ open / close

    def _connect(self) -> sqlite3.Connection:
        where = f"{self.path}: cannot open the task database"
        try:
            if self.readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._create_private()
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except (sqlite3.Error, OSError) as exc:
            reason = None if self.readonly else _diagnose(self.path, exc)
            if reason and not str(reason).startswith("database file was deleted"):
                raise StoreWriteError(reason) from None
            raise StoreError(f"{where}: {exc}") from None
        try:
            # the filter's SQL (tui.filter.compile_sql) asks Python about text that is not ASCII
            conn.create_function("tt_match", 3, sql_match, deterministic=True)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = _retry(lambda: conn.execute("PRAGMA user_version").fetchone()[0], where)
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: database schema version {version} is newer than"
                                 f" this tasktui ({SCHEMA_VERSION}); upgrade tasktui")
            if self.readonly:
                self._cols = {1: _TASK_COLS_V1, 2: _TASK_COLS_V2, 3: _TASK_COLS_V3}.get(version, _TASK_COLS)
                self._has_hay = version >= 5
                self._count_table = version >= 7
                if version not in (1, 2, 3, 4, 5, 6, SCHEMA_VERSION):
                    raise StoreError(
                        f"{self.path}: schema version {version}, expected {SCHEMA_VERSION};"
                        " open it once without read-only mode to migrate")
            else:
                self._cols = _TASK_COLS
                self._count_table = True  # migrated below
                mode = _retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0], where)
                if str(mode).lower() != "wal":
                    raise StoreError(f"{self.path}: cannot use WAL journal (got {mode})")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA journal_size_limit = 33554432")  # WAL shrinks back to 32 MB
                if version != SCHEMA_VERSION:
                    _retry(lambda: migrate(conn), where)
        except StoreError as exc:
            conn.close()
            reason = None
            if not self.readonly and not isinstance(exc, (StoreBusy, StoreWriteError)):
                reason = _diagnose(self.path, exc.__cause__)
            if reason:
                raise StoreWriteError(reason) from None
            raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_private(self) -> None:
        """Create the database file readable by its owner only (0600) if it does not exist;
        SQLite gives the -wal and -shm files it makes the database file's mode."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            return
        os.close(fd)

    def _load(self) -> None:
        """Fill the index from one consistent snapshot: tasks, seq, newest event id."""
        conn = self._require_conn()
        # Read before the snapshot: a commit after this read shows up at the next sync().
        data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        conn.execute("BEGIN")
        try:
            seq = conn.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()[0]
            self._reload(conn)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self._seq = seq
        self._data_version = data_version

    def _purge_tombstones(self) -> None:
        """Forget tasks removed more than TOMBSTONE_DAYS ago (a read when there are none)."""
        conn = self._require_conn()
        cutoff = self._clock() - TOMBSTONE_DAYS * 86400
        probe = "SELECT 1 FROM tasks WHERE deleted = 1 AND removed_at < ? LIMIT 1"
        if conn.execute(probe, (cutoff,)).fetchone() is None:
            return

        def purge() -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                top = conn.execute(
                    "SELECT MAX(seq) FROM tasks WHERE deleted = 1 AND removed_at < ?", (cutoff,)
                ).fetchone()[0]
                if top is not None:
                    conn.execute("DELETE FROM tasks WHERE deleted = 1 AND removed_at < ?", (cutoff,))
                    conn.execute(
                        "UPDATE meta SET value = MAX(value, ?) WHERE name = 'purged_seq'", (top,))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

        _retry(purge, self.path, writing=self.path)

    def close(self) -> None:
        """Close the database (idempotent).  The in-memory index stays readable."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ file identity

    def _path_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def check_file(self) -> str | None:
        """None while the path still names the file this store opened; else one line:
        "database file was deleted: PATH" or "database file was replaced: PATH".

        SQLite keeps writing to an open file after it is unlinked or renamed over, and
        nobody else would ever read what it writes: ``sync()`` and every write check
        this first (one ``stat``)."""
        if self._lost is not None:
            return self._lost
        if self._conn is None or self._file_id is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return f"database file was deleted: {self.path}"
        except OSError:
            return None  # cannot tell (a directory we may not search): carry on
        if (st.st_dev, st.st_ino) != self._file_id:
            return f"database file was replaced: {self.path}"
        return None

    def _follow_file(self) -> None:
        """Check the file; when it was replaced, reopen the one now at the path and write
        into it the tasks only this store still knows (tombstones in the new file are
        respected), with an event per provider saying so (``file_notice`` too).  When it
        was deleted, raise StoreWriteError at every write and sync until a file is back at
        the path (then as replaced).  The new file's content is announced with the next
        change (``_pending``).

        The old database's -wal file stays at the path, and SQLite, which cannot tell
        whose it is, replays its frames onto whatever database is opened there next: the
        "new" file would show the old content (seen in a test).  Closing does not help:
        SQLite will not checkpoint a moved database at close, and leaves the -wal behind.
        So the old connection first checkpoints with TRUNCATE (its frames go into its own,
        unlinked, file and the -wal at the path is emptied), then closes, and only then is
        the new file opened (side by side in one process, the new connection would also
        adopt the old one's -shm: POSIX locks of one process never conflict).
        """
        problem = self.check_file()
        if problem is None:
            return
        if self._lost is None:
            self._lost = problem
            self._file_id = None
            if self._conn is not None:
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:  # read-only, or busy with other readers of the old file
                    pass
            self.close()
        if not self.path.exists():
            raise StoreWriteError(problem)
        try:
            conn = self._connect()
        except StoreError as exc:
            raise StoreWriteError(f"{problem}; cannot open the new file: {exc}") from None
        self._conn = conn
        memory = dict(self._index)
        before_event_id = self._event_id
        written: list[Task] = []

        def attempt() -> None:
            conn.execute("BEGIN" if self.readonly else "BEGIN IMMEDIATE")
            try:
                written.clear()
                in_file = {row[0] for row in conn.execute("SELECT key FROM tasks")}
                missing = [t for key, t in memory.items() if key not in in_file]
                if not self.readonly:
                    # Revs must never repeat for a key in this process: start above all we saw.
                    conn.execute("UPDATE meta SET value = MAX(value, ?) WHERE name = 'seq'", (self._seq,))
                    tx = _Tx(self, conn)
                    seq = tx.next_seq()
                    conn.execute("UPDATE tasks SET rev = ?, seq = ? WHERE deleted = 0", (seq, seq))
                    for task in missing:
                        tx.insert(task.copy(raw=None, rev=seq))
                        written.append(task)
                    by_provider: dict[str, int] = {}
                    for task in written:
                        by_provider[task.provider] = by_provider.get(task.provider, 0) + 1
                    if by_provider:
                        tx.log([Event(time=self._clock(), provider=provider, kind="internal",
                                      message=f"{problem}; {n} task(s) known only to this process"
                                              " written to it")
                                for provider, n in sorted(by_provider.items())])
                else:
                    written.extend(missing)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

        try:
            _retry(attempt, self.path, writing=None if self.readonly else self.path)
            _retry(self._load, self.path)
        except BaseException:
            self.close()  # still lost: the next sync or write tries again
            raise
        self._file_id = self._path_id()
        self._lost = None
        if self.readonly:
            self.file_notice = (f"{problem}; opened the new file ({len(written)} task(s) known only to"
                                " this process are not in it: read-only)")
        else:
            self.file_notice = (f"{problem}; opened the new file and wrote {len(written)} task(s) known"
                                " only to this process into it")
        log.warning("%s", self.file_notice)
        pending = self._pending
        pending.keys |= set(memory) | set(self._index)
        pending.events += max(0, self._event_id - before_event_id)
        pending.counters = True

    def _require_conn(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self._lost is not None:
            raise StoreWriteError(self._lost)
        if self._conn is None:
            raise StoreError("the store is closed" if not self.readonly else "nothing is stored yet")
        return self._conn

    # ------------------------------------------------------------ memory index

    def _reload(self, conn: sqlite3.Connection) -> None:
        """Inside a read transaction: index, counts and newest event id from scratch.

        The hot path of opening 100,000 tasks: one SELECT of tuples, positional Task().
        Scope "live": the live tasks are read here only once they are in memory (a reload
        of a replaced file); at open they come later (``load_live``)."""
        if self.scope == "all":
            index = _index_of(conn.execute(f"SELECT {self._cols} FROM tasks WHERE deleted = 0 ORDER BY id"))
        elif self.scope == "live" and self._live_in:  # the partial index tasks_live: no scan of the ended ones
            index = _index_of(conn.execute(_live_sql(self._cols)))
        else:
            index = {}
            if self.scope == "live":  # memory knows nothing now: a read under way is read again
                self._touched = set()
                self._live_gen += 1
                self._window = None
                # the newest history row now: what a task was at open, asked later (state_at_open)
                self._history_top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM history").fetchone()[0]
        self._event_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        self._index = index
        self._recent.clear()
        if self.scope == "none":
            self._counts_dirty = True  # counted when first asked: a one-shot add reads no rows
        else:
            self._recount(conn)  # same snapshot, counted in C

    def _recount(self, conn: Any) -> None:
        """Counts per state and per provider (and the credits: the first frame's quota pane
        would otherwise scan the store again for them, 0.16 s at 1M): the table the triggers
        keep (schema 7: a few rows), else one GROUP BY (an index-only scan)."""
        self._counts = dict.fromkeys(STATES, 0)
        self._by_provider = {}
        credits: dict[str, float] = {}
        counted = conn.execute(_COUNT_TABLE_READ if getattr(self, "_count_table", False) else _COUNT_SQL)
        for provider, state, n, spent in counted:
            self._counts[state] = self._counts.get(state, 0) + n
            per = self._by_provider.setdefault(provider, dict.fromkeys(STATES, 0))
            per[state] = per.get(state, 0) + n
            if spent is not None:
                credits[provider] = credits.get(provider, 0.0) + float(spent)
        self._credits = credits
        self._counts_dirty = False

    def _known(self, key: str) -> Any:
        """What memory knows of ``key``: its Task, None (not tracked) or _UNKNOWN (scope
        "live"/"none": a task that is not in memory may be stored)."""
        task = self._index.get(key)
        if task is not None or self.scope == "all":
            return task
        if key in self._recent:
            return self._recent[key]
        return _UNKNOWN

    def _remember(self, key: str, task: Task | None) -> None:
        recent = self._recent
        recent[key] = task
        recent.move_to_end(key)
        if len(recent) > RECENT_CAP:
            recent.popitem(last=False)

    def _keeps(self, task: Task) -> bool:
        """Does this store's scope hold ``task`` in memory?"""
        return self.scope == "all" or (self.scope == "live" and task.state not in TERMINAL)

    def _put(self, task: Task, old: Any = _UNKNOWN) -> None:
        """``task`` is the stored version now; ``old`` what it was (default: as memory knows)."""
        key = task.key
        self._credits = None
        if self._touched is not None:
            self._touched.add(key)
        if old is _UNKNOWN:
            old = self._known(key)
        if old is _UNKNOWN:
            self._counts_dirty = True
        else:
            if old is not None:
                self._count(old, -1)
            self._count(task, 1)
        if self._keeps(task):
            self._index[key] = task
            if self._recent:
                self._recent.pop(key, None)
        else:
            self._index.pop(key, None)
            self._remember(key, task)

    def _drop(self, key: str, old: Any = _UNKNOWN) -> bool:
        """``key`` is no longer tracked; True when it was (or may have been)."""
        self._credits = None
        if self._touched is not None:
            self._touched.add(key)
        if old is _UNKNOWN:
            old = self._known(key)
        self._index.pop(key, None)
        if self.scope != "all":
            self._remember(key, None)
        if old is _UNKNOWN:
            self._counts_dirty = True
            return True
        if old is None:
            return False
        self._count(old, -1)
        return True

    def _count(self, task: Task, delta: int) -> None:
        self._counts[task.state] = self._counts.get(task.state, 0) + delta
        per = self._by_provider.get(task.provider)
        if per is None:
            per = self._by_provider[task.provider] = dict.fromkeys(STATES, 0)
        per[task.state] = per.get(task.state, 0) + delta

    # ------------------------------------------------------------ the live set, read after opening (scope "live")

    # Scope "live" opens without reading its live tasks: a dashboard shows its first frame
    # from indexed queries (the list's window, the counts) and reads them right after, in a
    # thread (``load_live``), taken into memory on the store's thread (``finish_live``, or
    # the next ``sync``).  Until then memory holds the live tasks this store wrote or caught
    # up with (``_touched``), and everything else is read from disk as for ended tasks; an
    # opener that does not say ``defer_live`` has them read at its first ``tasks()``.

    _SNAPSHOT = "BEGIN"  # a read transaction: one snapshot of the file

    def _live_init(self) -> None:
        """The live set's attributes of a store not yet loaded (Store and PgStore alike)."""
        self._live_in = self.scope != "live"  # memory holds every live task (or needs none)
        self._live_deferred = False  # the opener reads them (load_live): tasks() does not wait
        self._live_job: _LiveRead | None = None
        self._live_gen = 0  # bumped when memory is read afresh: a read under way is stale
        self._touched: set[str] | None = None if self._live_in else set()  # keys memory learned since
        self._window: set[str] | None = None  # once in: the keys memory learned before (state_at_open)
        self._history_top = 0  # the newest history row at open (scope "live")
        self._live_told: list[Callable[[], Any]] = []  # told once the live set is read

    @property
    def live_pending(self) -> bool:
        """True while memory does not hold the live tasks yet (scope "live", until
        ``finish_live``): ``tasks()`` lists only those learned since the open."""
        return not self._live_in

    @property
    def live_deferred(self) -> bool:
        """Did the opener say it reads the live tasks itself (``defer_live``)?"""
        return self._live_deferred

    def defer_live(self) -> None:
        """The opener reads the live tasks itself (``load_live``, after its first frame):
        until they are in, ``tasks()``/``keys()``/``items()`` list what memory holds
        instead of reading them at once."""
        self._live_deferred = True

    def when_live(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` once the live tasks are read (from the reading thread: hop to
        the store's thread, then ``finish_live``); at once if they are, or are in memory."""
        if self._live_in:
            _call(callback)
        elif self._live_job is not None:
            self._live_job.tell(callback)
        else:
            self._live_told.append(callback)

    def load_live(self, ready: Callable[[], Any] | None = None) -> None:
        """Start reading the live tasks in a thread, on a connection of its own, in one
        snapshot (idempotent); ``ready`` as for ``when_live``.  They come into memory on
        the store's thread: ``finish_live()``, or the next ``sync()``."""
        if ready is not None:
            self.when_live(ready)
        if self._live_in or self._live_job is not None:
            return
        job = self._live_job = _LiveRead(self._live_gen)
        told, self._live_told = self._live_told, []
        for callback in told:
            job.tell(callback)
        threading.Thread(target=self._live_thread, args=(job,), name="tasktui-live-read", daemon=True).start()

    def _live_thread(self, job: _LiveRead) -> None:
        try:
            conn, close = self._live_reader()
            try:
                job.result = self._read_live_tx(conn)
            finally:
                close()
        except BaseException as exc:  # read again on the store's thread, where it is said
            job.error = exc
        job.finish()

    def _live_reader(self) -> tuple[Any, Callable[[], None]]:
        """A connection for the live set's thread, and how to close it."""
        conn = self._reader()
        return conn, conn.close

    def _read_live_tx(self, conn: Any) -> tuple[int, dict[str, Task]]:
        """(seq, key -> Task of every live task) from one snapshot on ``conn``."""
        conn.execute(self._SNAPSHOT)
        try:
            seq = conn.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()[0]
            tasks = _index_of(conn.execute(_live_sql(self._cols)))
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
            raise
        return int(seq), tasks

    def _read_live_here(self, conn: Any) -> tuple[int, dict[str, Task]]:
        """On the store's connection: catch up and read the live tasks in one snapshot
        (what others committed goes to ``_pending``, announced by the caller)."""
        conn.execute(self._SNAPSHOT)
        try:
            self._catch_up()
            tasks = _index_of(conn.execute(_live_sql(self._cols)))
            conn.execute("COMMIT")
        except BaseException:
            if isinstance(conn, sqlite3.Connection):
                _rollback(conn)
            else:
                conn.rollback()
            raise
        return self._seq, tasks

    def _live_here(self) -> tuple[int, dict[str, Task]]:
        return _retry(lambda: self._read_live_here(self._require_conn()), self.path)

    def finish_live(self, wait: bool = False) -> bool:
        """Take the live tasks into memory once read (on the store's thread); True when they
        are in.  ``wait``: read them now if no thread does (on this store's connection),
        else wait for it.  A write committed between the read's snapshot and now is
        caught up first, so memory and the change feed miss nothing and say nothing twice."""
        if self._live_in:
            return True
        job = self._live_job
        if job is not None and job.done.is_set() and (job.error is not None or job.gen != self._live_gen):
            self._live_job = job = None  # failed, or memory was read afresh since: to be read again
            if not wait:
                return False  # by the next load_live (the opener's), or finish_live(wait=True)
        if job is None:
            if not wait:
                return False
            seq, tasks = self._live_here()
        else:
            if not job.done.is_set():
                if not wait:
                    return False
                job.done.wait()
                return self.finish_live(wait)
            assert job.result is not None
            seq, tasks = job.result
        if seq > self._seq:  # others wrote after our last catch-up and before the snapshot
            self._catch_up_now()
            if seq > self._seq:
                return False  # busy: the next sync (or call) takes it
        self._merge_live(tasks)
        self._notify(Change())  # what a catch-up found on the way
        return True

    def state_at_open(self, key: str) -> str | None:
        """The state ``key`` had when this store opened, for a task that changed before its
        live tasks came into memory (what a screen that saw the first frame last saw of it):
        its newest history row of then.  None: not asked for (changed later, or scope other
        than "live"), no state change stored before the open (a task added and never
        answered: unknown), or not tracked then."""
        if self.scope != "live" or (self._live_in and key not in (self._window or ())):
            return None
        rows = self._read("SELECT state FROM history WHERE key = ? AND id <= ? ORDER BY id DESC LIMIT 1",
                          (key, self._history_top))
        return str(rows[0][0]) if rows else None

    def _catch_up_now(self) -> None:
        """Catch up with every commit now (the change feed's pending keys are kept)."""
        conn = self._require_conn()

        def read() -> None:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            conn.execute("BEGIN")
            try:
                self._catch_up()
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            self._data_version = version

        _retry(read, self.path)

    def _merge_live(self, tasks: dict[str, Task]) -> None:
        """Memory takes the live tasks of a snapshot no newer than it (``_seq`` >= the
        snapshot's seq): a key memory learned since the open (``_touched``) is as memory
        has it (as new or newer: its live version, or gone); any other did not change
        since the open, so the snapshot's version is today's.  The counts were right all
        along.  Insertion order: the snapshot's, then the tasks memory added."""
        touched = self._touched or set()
        index = self._index
        recent = self._recent
        merged: dict[str, Task] = {}
        for key, task in tasks.items():
            if key in touched:
                mine = index.get(key)
                if mine is not None:
                    merged[key] = mine
            else:
                merged[key] = task
                if recent:
                    recent.pop(key, None)
        for key, task in index.items():
            if key not in merged:
                merged[key] = task
        self._index = merged
        self._live_in = True
        self._live_job = None
        self._window, self._touched = touched, None
        self.revision += 1  # what tasks() lists changed (caches keyed on the revision)
        told, self._live_told = self._live_told, []  # read here: no thread told them
        for callback in told:
            _call(callback)

    # ------------------------------------------------------------ reads (memory)

    def get(self, key: str) -> Task | None:
        """The stored task, or None.  Treat it as read-only: the store replaces, never edits.

        Scope "live"/"none": a task not in memory is read with one indexed query (and
        kept in a small LRU until it changes)."""
        task = self._index.get(key)
        if task is not None or self.scope == "all":
            return task
        recent = self._recent
        if key in recent:
            recent.move_to_end(key)
            return recent[key]
        rows = self._read(f"SELECT {self._cols}, seq, deleted FROM tasks WHERE key = ?", (key,))
        task, seen = None, True
        if rows:
            row = tuple(rows[0])
            task = None if row[-1] else _row_task(row[:-2])
            # a version another process wrote after the last sync: the counts do not hold it
            # yet, so it is not remembered (the sync must find the task unknown, not "as is",
            # or it would count the change as no change)
            seen = row[-2] <= self._seq
        if seen:
            self._remember(key, task)
        return task

    def tasks(self) -> list[Task]:
        """The tasks in memory, in insertion order (a fresh list): every tracked task with
        scope "all", the live (not terminal) ones with "live", none with "none".  For
        all of them whatever the scope: ``iter_tasks()``.  Scope "live" before the live
        tasks are in (``live_pending``): read now, unless the opener said ``defer_live``."""
        return list(self._memory().values())

    def keys(self) -> list[str]:
        """The keys of ``tasks()``."""
        return list(self._memory())

    def items(self) -> list[tuple[str, Task]]:
        """(key, task) of ``tasks()`` (a fresh list)."""
        return list(self._memory().items())

    def _memory(self) -> dict[str, Task]:
        if not self._live_in and not self._live_deferred:
            self.finish_live(wait=True)
        return self._index

    def __len__(self) -> int:
        """How many tasks are tracked (every scope)."""
        if self.scope == "all":
            return len(self._index)
        return sum(self.counts().values())

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self.get(key) is not None

    def counts(self) -> dict[str, int]:
        """Tasks per state (every state present, zeros included), every tracked task."""
        self._fresh_counts()
        return dict(self._counts)

    def counts_by_provider(self) -> dict[str, dict[str, int]]:
        """Tasks per provider per state, for providers that have (or had) tasks."""
        self._fresh_counts()
        return {p: dict(c) for p, c in self._by_provider.items()}

    def _fresh_counts(self) -> None:
        if self._counts_dirty:
            self._run_read(self._recount)

    def credits_by_provider(self) -> dict[str, float]:
        """Credits the tracked tasks cost, summed per provider (SQL, every scope): the
        numbers of ``tui.engine.health.credits_by_provider`` over every task.  Counted with
        the counts until a task changes, then summed again when asked."""
        known = getattr(self, "_credits", None)
        if known is not None:
            return {p: known[p] for p in sorted(known)}
        rows = self._read("SELECT provider, SUM(credits) FROM tasks WHERE deleted = 0 AND credits IS NOT NULL"
                          " AND credits <> 0 GROUP BY provider ORDER BY provider")
        return {provider: float(total) for provider, total in rows if total is not None}

    def where(self, query: str) -> Any:
        """The filter ``query`` (tui/filter.py) compiled for this store's SQL."""
        from .filter import compile_sql

        return compile_sql(query, self.dialect, use_hay=getattr(self, "_has_hay", True))

    def count_where(self, where: Any = None) -> int:
        """How many tracked tasks match ``where`` (a ``tui.filter.Where``, or a query string;
        None: all), counted in SQL (the residual predicate, if any, over the candidates)."""
        if isinstance(where, str):
            where = self.where(where)
        if where is None:
            return len(self)
        if where.residual is None:
            rows = self._read(f"SELECT COUNT(*) FROM tasks WHERE deleted = 0 AND ({where.sql})",
                              tuple(where.params))
            return int(rows[0][0]) if rows else 0
        return sum(1 for _ in self.iter_tasks(where))

    def iter_tasks(self, where: Any = None, *, order: str = "added", batch: int = 1000) -> Iterator[Task]:
        """Every tracked task matching ``where`` (a ``tui.filter.Where``, a query string, or
        None), in insertion order, read from the database in batches of ``batch`` rows
        (keyset pagination on ``id``): constant memory at any size, whatever the scope.
        Each batch is its own read, so a long iteration sees what others committed since."""
        if order != "added":
            raise ValueError(f"iter_tasks: unknown order {order!r} (known: added)")
        if isinstance(where, str):
            where = self.where(where)
        cond, params = _and_where(where)
        residual = where.residual if where is not None else None
        # ``+deleted``: not the counts index, whose plan sorts every batch in a temporary
        # tree (300,000 rows: 14 s); the primary key's range scan reads them in 0.24 s
        sql = (f"SELECT {self._cols}, id FROM tasks WHERE +deleted = 0 AND id > ?{cond}"
               f" ORDER BY id LIMIT {max(1, int(batch))}")
        last = 0
        while True:
            rows = self._read(sql, (last, *params))
            for row in rows:
                task = _row_task(tuple(row[:-1]))
                if residual is None or residual(task):
                    yield task
            if len(rows) < batch:
                return
            last = rows[-1][-1]

    # ------------------------------------------------------------ windows (the task list)

    def order_sql(self, sort: str, reverse: bool = False) -> str:
        """The ORDER BY of a task list sort (SORT_SQL): an index of its own; reversed, the
        exact mirror (ties included: ``id`` descending), read off the same index."""
        collate = ' COLLATE "C"' if self.dialect == "postgres" else ""
        parts = [f"({expr}){collate if expr in ('provider', 'task_id') else ''}"
                 f" {'DESC' if desc != reverse else 'ASC'}" for expr, desc in SORT_SQL[sort]]
        parts.append(f"id {'DESC' if reverse else 'ASC'}")
        return ", ".join(parts)

    def window_ids(self, where: Any = None, sort: str = "updated", reverse: bool = False,
                   limit: int | None = None, *, walk: bool = False) -> list[int]:
        """The row ids of the tracked tasks matching ``where`` (a ``tui.filter.Where``, a query
        string or None) in the list order of ``sort`` (the first ``limit`` of them): the
        task list's order, without a Task made per row.  A filter is answered by a scan
        and a sort of what it kept, unless ``walk``: then by walking the sort's index
        (soonest for the first rows of a filter that keeps many)."""
        if isinstance(where, str):
            where = self.where(where)
        if where is None or where.residual is None:
            return self._ids(*self._ids_sql(where, sort, reverse, limit, walk))
        rows = self._read(f"SELECT {self._cols}, id FROM tasks WHERE deleted = 0 AND ({where.sql})"
                          f" ORDER BY {self.order_sql(sort, reverse)}", tuple(where.params))
        ids = [row[-1] for row in rows if where.residual(_row_task(tuple(row[:-1])))]
        return ids[:limit] if limit is not None else ids

    def _ids_sql(self, where: Any, sort: str, reverse: bool, limit: int | None,
                 walk: bool) -> tuple[str, tuple]:
        """The query of ``window_ids`` for no filter or one without a residual, and its parameters."""
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        order = self.order_sql(sort, reverse)
        if where is None:
            return f"SELECT id FROM tasks WHERE deleted = 0 ORDER BY {order}{tail}", ()
        # a filter scans the table and sorts what it kept (walking a sort index and
        # reading the row of every entry is far slower for a narrow filter)
        hint = " NOT INDEXED" if self.dialect == "sqlite" and not walk else ""
        return (f"SELECT id FROM tasks{hint} WHERE deleted = 0 AND ({where.sql}) ORDER BY {order}{tail}",
                tuple(where.params))

    def matching_ids(self, where: Any, among: Iterable[int]) -> set[int]:
        """Which of the row ids ``among`` are tracked tasks matching ``where`` (a filter that
        only narrows the previous one: O(previous matches), not a scan of the store)."""
        if isinstance(where, str):
            where = self.where(where)
        ids = list(among)
        if not ids:
            return set()
        among_sql, arg = self._among(ids)
        cond, params = _and_where(where)
        if where is None or where.residual is None:
            return set(self._ids(f"SELECT id FROM tasks WHERE {among_sql} AND deleted = 0{cond}", (arg, *params)))
        rows = self._read(f"SELECT {self._cols}, id FROM tasks WHERE {among_sql} AND deleted = 0{cond}",
                          (arg, *params))
        return {row[-1] for row in rows if where.residual(_row_task(tuple(row[:-1])))}

    def _ids(self, sql: str, args: tuple) -> list[int]:
        return [row[0] for row in self._read(sql, args)]

    def _among(self, ids: Iterable[int]) -> tuple[str, Any]:
        """The condition "``id`` is one of ``ids``" in this store's SQL, and its one argument."""
        if self.dialect == "postgres":
            return "id = ANY(?)", list(ids)
        return "id IN (SELECT value FROM json_each(?))", json.dumps(list(ids))

    # ------------------------------------------------------------ the head first (a big store's first rows)

    def _fts_ready(self) -> bool:
        """Can the trigram index answer bare words (it exists, every tracked row has its hay)?"""
        if getattr(self, "_fts_known", False):
            return True  # rows without hay come only from older writers, which refuse schema 6
        if not getattr(self, "_has_hay", True):
            return False
        found = self._read("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('tasks_fts', 'tasks_nohay')")
        if not found or found[0][0] != 2:
            return False
        rows = self._read("SELECT NOT EXISTS (SELECT 1 FROM tasks INDEXED BY tasks_nohay"
                          " WHERE hay IS NULL AND deleted = 0)")
        self._fts_known = bool(rows and rows[0][0])
        return self._fts_known

    def _trigram_ids(self, word: str) -> list[int] | None:
        """Ids of rows whose hay holds ``word`` (at most FTS_MAX + 1 of them, deleted ones
        too), found by the trigram index; None when it cannot answer (PgStore: pg_trgm)."""
        if not self._fts_ready():
            return None
        phrase = '"' + word.replace('"', '""') + '"'
        return self._ids("SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ? LIMIT ?", (phrase, FTS_MAX + 1))

    def window_head(self, where: Any = None, sort: str = "updated", reverse: bool = False,
                    limit: int = 200) -> tuple[list[int], bool]:
        """The first ``limit`` ids of ``window_ids(where, sort, reverse)`` and whether they are
        all of them, at a cost that does not grow with the store where it can help it:

        - a positive word of 3+ characters that the trigram index (SQLite FTS5, PostgreSQL
          pg_trgm: ``_trigram_ids``) finds in at most FTS_MAX rows: those rows only (the
          whole answer);
        - else the sort's index, walked until ``limit`` rows match (a filter that keeps many
          finds them at once), for at most HEAD_BUDGET seconds;
        - else (few matches, scattered: a rare word of 1-2 characters) the rows that walk
          found before it was cut off, a prefix of the answer (maybe none), not complete:
          the scan that finds the rest (0.35-0.4 s at 1M) is the list's thread's
          (``order_job``), so the key is answered at once and the next one cancels it."""
        if isinstance(where, str):
            where = self.where(where)
        if where is None:
            ids = self.window_ids(None, sort, reverse, limit)
            return ids, len(ids) < limit
        if where.residual is not None:
            return self.window_ids(where, sort, reverse), True
        words = [w for w in where.words if len(w) >= 3]
        if words:
            found = self._trigram_ids(max(words, key=len))
            if found is not None and len(found) <= FTS_MAX:
                return self.ids_among(where, sort, reverse, found), True
        ids, whole = self._head_walk(where, sort, reverse, limit)
        return ids, whole and len(ids) < limit

    def ids_among(self, where: Any, sort: str, reverse: bool, among: Iterable[int]) -> list[int]:
        """Of the row ids ``among``, the tracked ones matching ``where``, in the order of ``sort``
        (row lookups by id only: NOT INDEXED keeps the planner off the sort's index)."""
        if isinstance(where, str):
            where = self.where(where)
        cond, params = _and_where(where)
        among_sql, arg = self._among(among)
        hint = " NOT INDEXED" if self.dialect == "sqlite" else ""
        return self._ids(f"SELECT id FROM tasks{hint} WHERE {among_sql} AND deleted = 0{cond}"
                         f" ORDER BY {self.order_sql(sort, reverse)}", (arg, *params))

    def _head_walk(self, where: Any, sort: str, reverse: bool, limit: int) -> tuple[list[int], bool]:
        """``window_ids(..., limit, walk=True)`` cut off after HEAD_BUDGET seconds: the ids it
        found and whether it ran to its end.  Cut off, they are a prefix of the answer (rows
        leave an ORDER BY in their final order whatever the plan), maybe none."""
        conn = self._conn
        if conn is None:
            return [], True
        sql, params = self._ids_sql(where, sort, reverse, limit, walk=True)
        found: list[int] = []
        deadline = time.perf_counter() + HEAD_BUDGET

        def walk() -> None:
            found.clear()
            for row in conn.execute(sql, params):  # row by row: what came before a cut-off is kept
                found.append(row[0])

        conn.set_progress_handler(lambda: 1 if time.perf_counter() > deadline else 0, 2000)
        try:
            _retry(walk, self.path)
        except StoreError as exc:
            if "interrupt" not in str(exc):
                raise
            return found, False
        finally:
            conn.set_progress_handler(None, 0)
        return found, True

    def order_job(self, where: Any, sort: str, reverse: bool, among: list[int] | None = None) -> "OrderJob":
        """The whole of ``window_ids(where, sort, reverse)`` (with ``among``: which of those ids
        match ``where``, in their order), computed on a connection of its own: ``run()`` in a
        thread, ``cancel()`` from any thread (it interrupts the query)."""
        if isinstance(where, str):
            where = self.where(where)
        order = self.order_sql(sort, reverse)
        cond, params = _and_where(where)
        if among is not None:
            among_sql, arg = self._among(among)
            sql = f"SELECT id FROM tasks NOT INDEXED WHERE {among_sql} AND deleted = 0{cond}"
            params = (arg, *params)
        elif where is None:
            sql = f"SELECT id FROM tasks WHERE deleted = 0 ORDER BY {order}"
        else:
            sql = f"SELECT id FROM tasks NOT INDEXED WHERE deleted = 0{cond} ORDER BY {order}"
        return OrderJob(self._reader, sql, params, among)

    def _reader(self) -> sqlite3.Connection:
        """A connection for one read in another thread (closed by the caller)."""
        if self.readonly:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                   check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        else:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.create_function("tt_match", 3, sql_match, deterministic=True)
        return conn

    def tasks_by_id(self, ids: Iterable[int]) -> dict[int, Task]:
        """Row id -> Task for the ids still tracked (one query per 500)."""
        ids = list(ids)
        out: dict[int, Task] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._read(f"SELECT {self._cols}, id FROM tasks WHERE deleted = 0 AND id IN ({marks})",
                                  tuple(chunk)):
                out[row[-1]] = _row_task(tuple(row[:-1]))
        return out

    def ids_for(self, keys: Iterable[str]) -> dict[str, int]:
        """Task key -> row id, for the keys tracked."""
        keys = list(keys)
        out: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            out.update((k, i) for k, i in self._read(
                f"SELECT key, id FROM tasks WHERE deleted = 0 AND key IN ({marks})", tuple(chunk)))
        return out

    def keys_by_id(self, ids: Iterable[int]) -> dict[int, str]:
        """Row id -> task key (tombstones included: a removed task's row keeps its id)."""
        ids = list(ids)
        out: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            out.update(self._read(f"SELECT id, key FROM tasks WHERE id IN ({marks})", tuple(chunk)))
        return out

    def row_ids(self, keys: Iterable[str]) -> dict[str, tuple[int, bool]]:
        """Task key -> (row id, tracked) for every key with a row (a removed task's tombstone too)."""
        keys = list(keys)
        out: dict[str, tuple[int, bool]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for key, rid, deleted in self._read(f"SELECT key, id, deleted FROM tasks WHERE key IN ({marks})",
                                                tuple(chunk)):
                out[key] = (rid, not deleted)
        return out

    def sort_values(self, sort: str, ids: Iterable[int]) -> dict[int, tuple]:
        """Row id -> the values ``sort`` orders by (SORT_SQL's expressions, then the id)."""
        ids = list(ids)
        exprs = ", ".join(f"({expr})" for expr, _ in SORT_SQL[sort])
        out: dict[int, tuple] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._read(f"SELECT id, {exprs} FROM tasks WHERE id IN ({marks})", tuple(chunk)):
                out[row[0]] = (*row[1:], row[0])
        return out

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of one read query ([] when nothing is stored: a read-only store without a file)."""
        if self._conn is None:
            return []
        conn = self._conn
        return _retry(lambda: conn.execute(sql, args).fetchall(), self.path)

    def _run_read(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(conn)`` on the database connection (nothing when there is none)."""
        if self._conn is None:
            self._counts_dirty = False
            return None
        conn = self._conn
        return _retry(lambda: fn(conn), self.path)

    # ------------------------------------------------------------ reads (disk, on demand)

    def history(self, key: str) -> list[tuple[float, str, str | None]]:
        """(time, state, provider_status) rows of one task, oldest first."""
        if self._conn is None:
            return []
        return _retry(lambda: self._conn.execute(
            "SELECT time, state, provider_status FROM history WHERE key = ? ORDER BY id", (key,)
        ).fetchall(), self.path)

    def raw(self, key: str) -> Any:
        """The last raw provider answer stored for ``key`` (decoded JSON), or None."""
        if self._conn is None:
            return None
        row = _retry(lambda: self._conn.execute(
            "SELECT body FROM raw WHERE key = ?", (key,)).fetchone(), self.path)
        if row is None or row[0] is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            return None

    def events(self, limit: int = 1000, provider: str | None = None) -> list[Event]:
        """The newest ``limit`` event log rows, newest first."""
        if self._conn is None:
            return []
        cols = "time, provider, message, task_id, status, kind, retry_after"
        if provider is None:
            sql, args = f"SELECT {cols} FROM events ORDER BY id DESC LIMIT ?", (int(limit),)
        else:
            sql = f"SELECT {cols} FROM events WHERE provider = ? ORDER BY id DESC LIMIT ?"
            args = (provider, int(limit))
        rows = _retry(lambda: self._conn.execute(sql, args).fetchall(), self.path)
        return [Event(*row) for row in rows]

    def counters(self) -> dict[str, dict]:
        """provider -> the counters blob last saved for it."""
        if self._conn is None:
            return {}
        return _counter_blobs(_retry(lambda: self._conn.execute(
            "SELECT provider, data FROM counters ORDER BY provider").fetchall(), self.path))

    # ------------------------------------------------------------ change feed

    def subscribe(self, callback: Callable[[Change], Any]) -> Callable[[], None]:
        """Call ``callback(Change)`` after every committed change; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            try:
                self._subscribers.remove(callback)
            except ValueError:
                pass

        return unsubscribe

    def _notify(self, change: Change) -> None:
        pending, self._pending = self._pending, Change()
        change.keys |= pending.keys
        change.events += pending.events
        change.counters = change.counters or pending.counters
        if not change:
            return
        self.revision += 1
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:
                log.exception("store subscriber %r failed", callback)

    # ------------------------------------------------------------ cross-process pickup

    def sync(self) -> set[str]:
        """Pick up what other processes committed; returns the changed keys.

        Costs one ``stat`` and one ``PRAGMA data_version`` when nothing changed.  A database
        file replaced at the path is reopened (see ``check_file``, ``file_notice``); a
        deleted one raises StoreWriteError("database file was deleted: PATH").  Live tasks
        read by ``load_live``'s thread come into memory here too.
        """
        keys = self._sync_feed()
        job = self._live_job
        if job is not None and not self._live_in and job.done.is_set():
            self.finish_live()
        return keys

    def _sync_feed(self) -> set[str]:
        if self._conn is None and self._lost is None:
            return set()
        self._follow_file()
        conn = self._require_conn()
        try:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                if not self._pending:
                    return set()
                keys = set(self._pending.keys)  # a reopened file, or a catch-up before a failed write
                self._notify(Change())
                return keys

            def read() -> None:
                conn.execute("BEGIN")
                try:
                    self._catch_up()
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise

            read()
            self._data_version = version
        except sqlite3.Error as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                return set()  # try again at the next call
            raise StoreError(f"{self.path}: {exc}") from exc
        keys = set(self._pending.keys)
        self._notify(Change())
        return keys

    def _catch_up(self) -> None:
        """Inside a transaction: load rows others committed since ``self._seq`` into memory.

        What it finds goes into ``self._pending`` and is announced with the next change.
        """
        conn = self._require_conn()
        seq, purged = conn.execute(
            "SELECT MAX(CASE WHEN name = 'seq' THEN value END),"
            " MAX(CASE WHEN name = 'purged_seq' THEN value END) FROM meta").fetchone()
        if seq == self._seq:
            return
        pending = self._pending
        if seq < self._seq or self._seq < purged:
            # The file was replaced, or tombstones we never saw were purged: reload all.
            before = set(self._index)
            old_event_id = self._event_id
            self._reload(conn)
            self._seq = seq
            pending.keys |= before | set(self._index)
            pending.events += max(0, self._event_id - old_event_id)
            pending.counters = True
            return
        rows = conn.execute(
            f"SELECT {self._cols}, id, deleted FROM tasks WHERE seq > ? ORDER BY id", (self._seq,)
        ).fetchall()
        for row in rows:
            key = task_key(row[0], row[1])
            old = self._known(key)
            if row[-1]:
                if self._drop(key, old):
                    pending.keys.add(key)
                continue
            self._put(_row_task(tuple(row[:-2])), old)
            if old is None or old is _UNKNOWN or old.rev != row[_REV_AT - 2]:
                pending.keys.add(key)  # else a quiet refresh (updated_at, eta): no news

        event_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        if event_id > self._event_id:
            pending.events += event_id - self._event_id
            self._event_id = event_id
        if conn.execute("SELECT 1 FROM counters WHERE seq > ? LIMIT 1", (self._seq,)).fetchone():
            pending.counters = True
        self._seq = seq

    # ------------------------------------------------------------ writes

    def _write(self, plan: Callable[["_Tx"], Any]) -> Any:
        """Run ``plan`` in one write transaction (with catch-up first), commit, then
        apply its in-memory effects and notify.  ``plan`` must only write SQL and
        record effects on the ``_Tx``: it may run again if the lock was busy."""
        if self.readonly:
            raise StoreError("the store is open read-only")
        if self._lost is None:
            self._require_conn()
        self._follow_file()
        conn = self._require_conn()

        def attempt() -> tuple[_Tx, Any, int]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._catch_up()
                # Under the write lock nobody else can commit: this version is all caught up,
                # and our own commit will not move it.
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                tx = _Tx(self, conn)
                result = plan(tx)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return tx, result, version

        tx, result, self._data_version = _retry(attempt, self.path, writing=self.path)
        self._committed(tx)
        return result

    def _committed(self, tx: "_Tx") -> None:
        """After COMMIT: apply a write transaction's effects to memory and notify
        (shared with the PostgreSQL store, tui/store_pg.py)."""
        change = Change()
        before = tx.before
        for key, task in tx.puts.items():
            old = before[key] if key in before else self._known(key)
            if task is None:
                if self._drop(key, old):
                    change.keys.add(key)
            else:
                if task.rev == tx.seq or old is None or old is _UNKNOWN:
                    change.keys.add(key)
                self._put(task, old)

        if tx.seq is not None:
            self._seq = tx.seq
        if tx.events:
            change.events += tx.events
            self._event_id = tx.event_id
        change.counters = tx.counters
        self._notify(change)

    def add(self, provider: str, ids: Iterable[str], kind: str | None = None,
            label: str | None = None) -> list[str]:
        """Track tasks; returns the keys newly added.  Idempotent: a tracked task is
        left as it is, except that a given ``kind``/``label`` replaces the stored one.

        A new kind changes where the task is polled, so it also clears the task's poll
        health (last_error, failed_polls, stalled, poll_path: they were about the old
        path), and a task that ended ``not_found`` (the usual result of a wrong kind) goes
        back to ``unknown`` without its error, to be polled again at the new path.
        After the call, ``last_updated_kinds`` lists the tracked keys whose kind changed
        and ``last_revived`` those of them that were ``not_found``.
        """
        self.last_updated_kinds = []
        self.last_revived = []
        if isinstance(ids, str):
            ids = [ids]
        if not provider or ":" in provider or not provider.isprintable():
            raise ValueError(f"bad provider name {provider!r}")
        clean_ids: dict[str, None] = {}  # ordered, without duplicates
        for task_id in ids:
            task_id = str(task_id).strip()
            if not task_id:
                continue
            if not task_id.isprintable():
                raise ValueError(f"task id {task_id!r} contains control characters")
            clean_ids[task_id] = None
        if label is not None:
            label = _printable(label).strip() or None
        if kind is not None:
            kind = _printable(kind).strip() or None
        if not clean_ids:
            return []

        def plan(tx: _Tx) -> tuple[list[str], list[str], list[str]]:
            added: list[str] = []
            kinds: list[str] = []
            revived: list[str] = []
            now = self._clock()
            for task_id in clean_ids:
                key = task_key(provider, task_id)
                old = tx.current(key)
                if old is None:
                    task = Task(provider, task_id, kind=kind, label=label, state=UNKNOWN,
                                updated_at=now, rev=tx.next_seq())
                    tx.insert(task)
                    added.append(key)
                    continue
                changes: dict[str, Any] = {}
                if label is not None and label != old.label:
                    changes["label"] = label
                if kind is not None and kind != old.kind:
                    changes.update(kind=kind, last_error=None, last_error_at=None, failed_polls=0,
                                   stalled=None, poll_path=None)
                    kinds.append(key)
                    if old.state == NOT_FOUND:
                        changes.update(state=UNKNOWN, error=None, finished_at=None, updated_at=now)
                        revived.append(key)
                if changes:
                    tx.update(old.copy(rev=tx.next_seq(), **changes))
                    if changes.get("state", old.state) != old.state:
                        tx.history(key, now, UNKNOWN, old.provider_status)
            return added, kinds, revived

        added, self.last_updated_kinds, self.last_revived = self._write(plan)
        return added

    def remove(self, keys: Iterable[str]) -> int:
        """Stop tracking tasks (leaves a tombstone other processes see); returns how many."""
        keys = list(dict.fromkeys(keys))

        def plan(tx: _Tx) -> int:
            n = 0
            for key in keys:
                if tx.current(key) is not None:
                    tx.tombstone(key)
                    n += 1
            return n

        return self._write(plan) if keys else 0

    def apply(self, updates: Iterable[Task], events: Iterable[Event] = (),
              counters: dict[str, dict] | None = None, discovered: bool = False, *,
              health: dict[str, dict[str, Any]] | None = None) -> set[str]:
        """Merge provider answers (one polling round) in ONE transaction; returns changed keys.

        Keeps label, kind, model, credits, created_at, eta, poll_path when an update has None
        (and progress, provider_status while the state stays the same); keeps old results
        when the new list is empty and old details when the new dict is empty; sets
        finished_at on entering a terminal state; appends a history row when state or
        provider_status changes.  An update's health fields (last_error, last_error_at,
        failed_polls, stalled) are written as given: the engine resets them on success.
        Keys not tracked are ignored unless ``discovered`` (and a task the user removed is
        not brought back).

        ``health`` maps task key -> {field: value} for any of HEALTH_KEYS (and "details"):
        a task's poll health without an answer (a failed poll, a stall).  It is applied
        after the updates, leaves state, history, updated_at and the raw answer alone, and
        a real change bumps ``rev`` (so the row is redrawn and other processes pick it up);
        the same values again are no change at all.  Untracked keys are ignored.
        """
        updates = list(updates)
        events = list(events)
        counters = dict(counters or {})
        health = {key: _health_fields(fields) for key, fields in (health or {}).items()}
        if not (updates or events or counters or health):
            return set()

        def plan(tx: _Tx) -> set[str]:
            changed: set[str] = set()
            now = self._clock()
            for update in updates:
                key = update.key
                old = tx.current(key)
                if old is None:
                    if not discovered or tx.is_tombstone(key):
                        continue
                    task = update.copy(raw=None, rev=tx.next_seq(),
                                       updated_at=update.updated_at or now)
                    _sane_health(task)
                    if task.terminal and task.finished_at is None:
                        task.finished_at = task.updated_at
                    tx.insert(task, raw=update.raw)
                    tx.history(key, task.updated_at, task.state, task.provider_status)
                    changed.add(key)
                    continue
                merged = _merge(old, update, now)
                if any(getattr(merged, f) != getattr(old, f) for f in _VISIBLE):
                    merged.rev = tx.next_seq()
                    tx.update(merged, raw=update.raw)
                    if merged.state != old.state or merged.provider_status != old.provider_status:
                        tx.history(key, merged.updated_at, merged.state, merged.provider_status)
                    changed.add(key)
                else:
                    merged.rev = old.rev
                    tx.quiet(merged, raw=update.raw)
            for key, fields in health.items():
                old = tx.current(key)
                if old is None:
                    continue
                if all(getattr(old, name) == value for name, value in fields.items()):
                    continue
                # freshness alone is written (other processes pick it up) but is no news
                news = any(getattr(old, name) != value for name, value in fields.items()
                           if name not in FRESH_KEYS)
                tx.health(old.copy(raw=None, rev=tx.next_seq() if news else old.rev, **fields))
                if news:
                    changed.add(key)
            if events:
                tx.log(events)
            for provider, data in counters.items():
                tx.save_counters(provider, data, now)
            return changed

        return self._write(plan)

    def set_files(self, key: str, paths: Iterable[str]) -> bool:
        """Record the local paths of a task's downloaded results (``tasktui pull``).

        Replaces the stored list; leaves everything else alone.  Returns False when
        the task is not tracked.  A real change bumps ``rev`` (the row is redrawn)."""
        paths = [str(p).replace(_SEP, "") for p in paths]

        def plan(tx: _Tx) -> bool:
            old = tx.current(key)
            if old is None:
                return False
            if old.files == paths:
                return True
            task = old.copy(raw=None, rev=tx.next_seq(), files=paths)
            tx.conn.execute("UPDATE tasks SET files = ?, rev = ?, seq = ? WHERE key = ?",
                            (_results_json(paths) if paths else None, task.rev, tx.next_seq(), key))
            tx.puts[key] = task
            return True

        return self._write(plan)

    def log(self, events: Iterable[Event]) -> None:
        """Append rows to the event log (capped at EVENT_CAP newest)."""
        events = list(events)
        if events:
            self._write(lambda tx: tx.log(events))

    def save_counters(self, provider: str, data: dict) -> None:
        """Store the counters blob (JSON) of one provider."""
        self._write(lambda tx: tx.save_counters(provider, data, self._clock()))


TEXT_CAP = 2_000  # characters of one health text or detail value kept
DETAILS_CAP = 50  # entries of one task's details kept


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:TEXT_CAP]


def _finite(value: Any) -> float | None:
    """A time or number SQLite can store and give back equal (NaN is stored as NULL)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _details(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    items = list(value.items())[:DETAILS_CAP]
    return {str(k)[:TEXT_CAP]: str(v)[:TEXT_CAP] for k, v in items}


def _sane_health(task: Task) -> None:
    """In place: the health fields and details of a task about to be written, storable as they are."""
    task.last_error = _text(task.last_error)
    task.last_error_at = _finite(task.last_error_at)
    task.failed_polls = min(max(0, int(_finite(task.failed_polls) or 0)), 10**9)
    task.stalled = _text(task.stalled)
    task.poll_path = _text(task.poll_path)
    task.polled_at = _finite(task.polled_at)
    task.next_poll_at = _finite(task.next_poll_at)
    if len(task.details) > DETAILS_CAP or any(
            len(k) > TEXT_CAP or not isinstance(v, str) or len(v) > TEXT_CAP for k, v in task.details.items()):
        task.details = _details(task.details)


def _health_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise one task's ``health`` entry of ``Store.apply``."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name in ("last_error", "stalled", "poll_path"):
            out[name] = _text(value)
        elif name in ("last_error_at", *FRESH_KEYS):
            out[name] = _finite(value)
        elif name == "failed_polls":
            out[name] = min(max(0, int(_finite(value) or 0)), 10**9)
        elif name == "details":
            out[name] = _details(value)
        else:
            raise ValueError(f"unknown health field {name!r} (known: {', '.join(HEALTH_KEYS + FRESH_KEYS)},"
                             " details)")
    return out


def _merge(old: Task, update: Task, now: float) -> Task:
    """``update`` merged onto ``old`` by the rules of ``Store.apply`` (raw left out)."""
    merged = update.copy(raw=None)
    _sane_health(merged)
    for name in _KEEP_IF_NONE:
        if getattr(merged, name) is None:
            setattr(merged, name, getattr(old, name))
    if not merged.results:
        merged.results = list(old.results)
    if not merged.details:  # an answer without facts of its own keeps the last ones
        merged.details = dict(old.details)
    if not merged.files:  # downloads are recorded by set_files, never by an answer
        merged.files = list(old.files)
    if merged.state == old.state:  # an answer that says less about the same state
        if merged.progress is None:
            merged.progress = old.progress
        if merged.provider_status is None:
            merged.provider_status = old.provider_status
    if merged.updated_at is None:
        merged.updated_at = now
    if merged.state in TERMINAL:
        if merged.finished_at is None:
            merged.finished_at = old.finished_at if old.state in TERMINAL else merged.updated_at
    else:
        merged.finished_at = None
    return merged


def _and_where(where: Any) -> tuple[str, tuple]:
    """`` AND (the filter's SQL)`` and its parameters, for a ``tui.filter.Where`` (or nothing)."""
    return ("", ()) if where is None else (f" AND ({where.sql})", tuple(where.params))


class OrderJob:
    """One read of a list's whole order, off the screen's thread (``Store.order_job``), on a
    connection of its own (``connect``); ``cancel()`` from any thread interrupts it.  A
    subclass names its connection's errors (``errors``) and how a read is interrupted."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)

    def __init__(self, connect: Callable[[], Any], sql: str, params: tuple,
                 among: list[int] | None, residual: Any = None) -> None:
        self._connect, self.sql, self.params, self.among = connect, sql, params, among
        self.residual = residual  # a Python predicate for the rows the SQL keeps as candidates
        self._lock = threading.Lock()
        self._conn: Any = None
        self.cancelled = False

    def run(self) -> "array[int] | None":
        """The ids, an ``array("q")`` (None: cancelled, or the read failed: the caller reads them)."""
        try:
            conn = self._connect()
        except self.errors:
            return None
        with self._lock:
            if self.cancelled:
                conn.close()
                return None
            self._conn = conn
        # into an array, a batch at a time: a million ids leave no million objects behind
        # (they would wake the garbage collector, which stops the screen's thread too)
        out = array("q")
        residual = self.residual
        try:
            for rows in self._batches(conn):
                if residual is None:
                    out.extend([row[0] for row in rows])
                else:
                    out.extend([row[-1] for row in rows if residual(_row_task(tuple(row[:-1])))])
        except self.errors:
            return None
        finally:
            with self._lock:
                self._conn = None
            conn.close()
        if self.cancelled:
            return None
        if self.among is None:
            return out
        keep = set(out)
        return array("q", [i for i in self.among if i in keep])

    def _batches(self, conn: Any) -> Iterator[list]:
        cursor = conn.execute(self.sql, self.params)
        while rows := cursor.fetchmany(5000):
            yield rows

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._conn is not None:
                self._conn.interrupt()


class _Tx:
    """The SQL of one write transaction plus the in-memory effects to apply after COMMIT."""

    def __init__(self, store: Store, conn: sqlite3.Connection) -> None:
        self.store = store
        self.conn = conn
        self.seq: int | None = None
        self.puts: dict[str, Task | None] = {}  # key -> new task, None = removed
        self.events = 0
        self.event_id = 0
        self.counters = False
        self.before: dict[str, Task | None] = {}  # key -> the task as it was before this transaction

    def next_seq(self) -> int:
        """This transaction's sequence number (allocated on first use)."""
        if self.seq is None:
            self.conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'seq'")
            self.seq = self.conn.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()[0]
        return self.seq

    def current(self, key: str) -> Task | None:
        """The task as this transaction sees it (its own writes first).  Scope "live"/"none":
        a task memory does not hold is read from the database (one indexed query)."""
        if key in self.puts:
            return self.puts[key]
        if key in self.before:
            return self.before[key]
        store = self.store
        task = store._known(key)
        if task is _UNKNOWN:
            row = self.conn.execute(f"SELECT {store._cols} FROM tasks WHERE key = ? AND deleted = 0",
                                    (key,)).fetchone()
            task = _row_task(tuple(row)) if row else None
        self.before[key] = task
        return task

    def is_tombstone(self, key: str) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM tasks WHERE key = ? AND deleted = 1", (key,)).fetchone() is not None

    def _values(self, t: Task) -> tuple:
        return (t.kind, t.label, t.state, t.provider_status, t.progress, _results_json(t.results),
                t.error, t.model, t.credits, t.created_at, t.updated_at, t.finished_at,
                t.last_error, t.last_error_at, t.failed_polls, t.stalled, t.poll_path,
                _details_json(t.details), t.eta, _finite(t.polled_at), _finite(t.next_poll_at), hay(t),
                t.rev, self.next_seq())

    def insert(self, task: Task, raw: Any = None) -> None:
        key = task.key
        # A tombstone of the same key goes: the re-added task starts afresh, at the end.
        self.conn.execute("DELETE FROM tasks WHERE key = ?", (key,))
        self.conn.execute("DELETE FROM history WHERE key = ?", (key,))
        self.conn.execute("DELETE FROM raw WHERE key = ?", (key,))
        self.conn.execute(
            "INSERT INTO tasks (key, provider, task_id, kind, label, state, provider_status, progress,"
            " results, error, model, credits, created_at, updated_at, finished_at, last_error,"
            " last_error_at, failed_polls, stalled, poll_path, details, eta, polled_at, next_poll_at,"
            " hay, rev, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?)",
            (key, task.provider, task.task_id, *self._values(task)))
        self.raw(key, raw)
        self.puts[key] = task

    def update(self, task: Task, raw: Any = None) -> None:
        self.conn.execute(
            "UPDATE tasks SET kind = ?, label = ?, state = ?, provider_status = ?, progress = ?,"
            " results = ?, error = ?, model = ?, credits = ?, created_at = ?, updated_at = ?,"
            " finished_at = ?, last_error = ?, last_error_at = ?, failed_polls = ?, stalled = ?,"
            " poll_path = ?, details = ?, eta = ?, polled_at = ?, next_poll_at = ?, hay = ?, rev = ?,"
            " seq = ? WHERE key = ?",
            (*self._values(task), task.key))
        self.raw(task.key, raw)
        self.puts[task.key] = task

    def quiet(self, task: Task, raw: Any) -> None:
        """An invisible refresh: rev stays, so nobody is told; other processes still reload it."""
        self.conn.execute("UPDATE tasks SET updated_at = ?, eta = ?, polled_at = ?, next_poll_at = ?, seq = ?"
                          " WHERE key = ?", (task.updated_at, task.eta, _finite(task.polled_at),
                                             _finite(task.next_poll_at), self.next_seq(), task.key))
        self.raw(task.key, raw)
        self.puts[task.key] = task

    def health(self, task: Task) -> None:
        """A change of poll health (or details) only: state, updated_at and history stay."""
        self.conn.execute(
            "UPDATE tasks SET last_error = ?, last_error_at = ?, failed_polls = ?, stalled = ?,"
            " poll_path = ?, details = ?, polled_at = ?, next_poll_at = ?, rev = ?, seq = ? WHERE key = ?",
            (task.last_error, task.last_error_at, task.failed_polls, task.stalled, task.poll_path,
             _details_json(task.details), task.polled_at, task.next_poll_at, task.rev, self.next_seq(),
             task.key))
        self.puts[task.key] = task

    def raw(self, key: str, raw: Any) -> None:
        """Store the last raw answer (None: keep the one stored)."""
        body = _raw_json(raw)
        if body is not None:
            self.conn.execute("INSERT OR REPLACE INTO raw (key, body) VALUES (?, ?)", (key, body))

    def tombstone(self, key: str) -> None:
        self.conn.execute(
            "UPDATE tasks SET deleted = 1, removed_at = ?, rev = ?, seq = ? WHERE key = ?",
            (self.store._clock(), self.next_seq(), self.next_seq(), key))
        self.conn.execute("DELETE FROM history WHERE key = ?", (key,))
        self.conn.execute("DELETE FROM raw WHERE key = ?", (key,))
        self.puts[key] = None

    def history(self, key: str, when: float | None, state: str, provider_status: str | None) -> None:
        """Append a history row; a task keeps its HISTORY_CAP newest."""
        self.conn.execute(
            "INSERT INTO history (key, time, state, provider_status) VALUES (?, ?, ?, ?)",
            (key, when if when is not None else self.store._clock(), state, provider_status))
        self.conn.execute(
            "DELETE FROM history WHERE key = ?"
            " AND id < (SELECT id FROM history WHERE key = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (key, key, HISTORY_CAP - 1))

    def log(self, events: list[Event]) -> None:
        self.next_seq()
        self.conn.executemany(
            "INSERT INTO events (time, provider, task_id, status, kind, message, retry_after)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.time, e.provider, e.task_id, e.status, e.kind, e.message, e.retry_after) for e in events])
        top = self.conn.execute("SELECT MAX(id) FROM events").fetchone()[0]
        self.conn.execute("DELETE FROM events WHERE id <= ?", (top - EVENT_CAP,))
        self.events += len(events)
        self.event_id = top

    def save_counters(self, provider: str, data: dict, now: float) -> None:
        self.conn.execute(
            "INSERT INTO counters (provider, data, updated_at, seq) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(provider) DO UPDATE SET data = excluded.data,"
            " updated_at = excluded.updated_at, seq = excluded.seq",
            (provider, json.dumps(data, default=str), now, self.next_seq()))
        self.counters = True
