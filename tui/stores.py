"""Which task store to open: SQLite for a path, PostgreSQL for a ``postgresql://`` URL.

Also the ``tasktui db`` commands: ``db migrate`` (create or upgrade the schema) and
``db copy SRC DST`` (tasks, history, raw answers, events and counters, either way
between SQLite and PostgreSQL).

Where the store is, in order: ``--db``, ``$TASKTUI_DB``, ``[store] url`` of the
config, the default SQLite file in the user data dir.  A URL is never turned into a
``Path`` (``Path`` would fold its ``//``), and never shown with its password.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

from .store import Store, StoreError
from .store_pg import is_pg_url, safe_url

log = logging.getLogger(__name__)

__all__ = ["open_store", "store_target", "describe", "is_pg_url", "db_migrate", "db_copy", "cmd_db",
           "add_db_parser", "run_db"]


def store_target(given: str | os.PathLike[str] | None = None, config_url: str | None = None) -> str | Path:
    """The store to open: a ``postgresql://`` URL (str) or a SQLite file (Path)."""
    for value in (given, os.environ.get("TASKTUI_DB"), config_url):
        if value:
            value = os.fspath(value)
            return value if is_pg_url(value) else Path(value).expanduser()
    from .paths import db_path

    return db_path(None)


def describe(target: str | os.PathLike[str]) -> str:
    """The store's name for messages (a URL without its password)."""
    target = os.fspath(target)
    return safe_url(target) if is_pg_url(target) else target


def open_store(target: str | os.PathLike[str], readonly: bool = False, *,
               clock: Callable[[], float] = time.time, scope: str = "all") -> Store:
    """A ``PgStore`` for a ``postgresql://`` (or ``postgres://``) URL, else a SQLite ``Store``.
    ``scope``: what it keeps in memory ("all", "live", "none"; see ``Store``)."""
    target = os.fspath(target)
    if is_pg_url(target):
        from .store_pg import PgStore

        return PgStore(target, readonly=readonly, clock=clock, scope=scope)
    if Path(target).is_dir():  # SQLite would say "disk I/O error" or "unable to open database file"
        example = Path(target) / "tasks.db"
        raise StoreError(f"{target}: is a folder, not a database file (name a file in it, e.g. {example})")
    return Store(Path(target), readonly=readonly, clock=clock, scope=scope)


# ---------------------------------------------------------------- db migrate


def db_migrate(target: str | os.PathLike[str]) -> str:
    """Create or upgrade the schema of the store at ``target``; returns one line saying what was done."""
    target = os.fspath(target)
    if not is_pg_url(target):
        from . import store as sqlite_store

        path = Path(target)
        before = _sqlite_version(path)
        with Store(path, scope="none") as store:  # a writable open migrates
            filled = backfill_hay(store)
        now = sqlite_store.SCHEMA_VERSION
        return _said(path, before, now) + _filled(filled)
    from .store_pg import PgStore, pg_migrate

    probe = PgStore.__new__(PgStore)  # only for its connection and its password-free messages
    probe._prepare(target, False, time.time)
    try:
        conn = probe._open_conn().raw
        try:
            before, now = pg_migrate(conn, where=probe.url)
        finally:
            conn.close()
    except probe._psycopg.Error as exc:
        raise StoreError(f"{probe.url}: cannot migrate: {probe._say(exc)}") from None
    with PgStore(target, scope="none") as store:
        filled = backfill_hay(store)
        note = None if store.trigram_index() else store.notice  # the filter's index could not be made
    return _said(probe.url, before, now) + _filled(filled) + (f"; {note}" if note else "")


def _filled(n: int) -> str:
    return f"; the filter's index filled for {n} task(s)" if n else ""


def backfill_hay(store: Store, batch: int = 5000) -> int:
    """Fill column ``hay`` (the filter's haystack, tui.filter.hay) of rows written before it
    existed, in batches of one write transaction each; returns how many rows.  Derived data:
    no sequence number is taken, nobody is told."""
    from .filter import hay
    from .model import Task

    total = 0
    while True:
        rows = store._read("SELECT id, provider, task_id, label, model, kind, provider_status FROM tasks"
                           f" WHERE hay IS NULL AND deleted = 0 ORDER BY id LIMIT {int(batch)}")
        if not rows:
            return total
        values = [(hay(Task(p, i, label=lb, model=m, kind=k, provider_status=ps)), rid)
                  for rid, p, i, lb, m, k, ps in rows]
        store._write(lambda tx: tx.conn.executemany("UPDATE tasks SET hay = ? WHERE id = ?", values))
        total += len(rows)


def _said(where: object, before: int, now: int) -> str:
    if before == now:
        return f"{where}: schema at version {now}, nothing to do"
    if before == 0:
        return f"{where}: schema created (version {now})"
    return f"{where}: schema upgraded from version {before} to {now}"


def _sqlite_version(path: Path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


# ---------------------------------------------------------------- db copy

_BATCH = 1000


def db_copy(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Copy tasks (with their history and raw answers), events and counters from the
    store at ``source`` into the one at ``dest``, in one transaction of ``dest``.

    Tasks ``dest`` already tracks are left as they are there (nothing is overwritten);
    events already in ``dest`` (same time, provider, task, kind and message) are not
    copied twice; counters are copied for providers ``dest`` has none of.  So running
    it again copies nothing new.  Returns one line saying what was copied.
    """
    if os.fspath(source) == os.fspath(dest):
        raise StoreError("db copy: source and destination are the same store")
    if not is_pg_url(os.fspath(source)) and not Path(source).exists():
        raise StoreError(f"db copy: {os.fspath(source)}: no such database file")
    src = open_store(source, readonly=True)
    try:
        dst = open_store(dest)
        try:
            return _copy(src, dst, describe(source), describe(dest))
        finally:
            dst.close()
    finally:
        src.close()


def _rows(store: Store, sql: str) -> list[tuple]:
    """All rows of a query on a store's own connection (SQL both backends speak)."""
    from .store_pg import PgStore

    if isinstance(store, PgStore):
        return [tuple(r) for r in store._run(lambda conn: conn.execute(sql).fetchall(), writing=False)]
    conn = store._conn
    if conn is None:  # a read-only SQLite store with no file: nothing stored
        return []
    return [tuple(r) for r in conn.execute(sql).fetchall()]


def _analyze(dst: Store) -> None:
    """Fresh statistics for the planner after a bulk copy into PostgreSQL: straight after
    one it guesses ~70 rows, and every page of ``ls`` then sorted half the table (19.6 s
    against 8.2 s at 100,000 tasks; autovacuum would get there within a minute or so).
    Not the owner of the tables: PostgreSQL skips them with a warning; nothing fails."""
    try:
        dst._run(lambda conn: conn.execute("ANALYZE tasks, history"), writing=True)  # type: ignore[attr-defined]
    except Exception as exc:  # statistics are an optimisation: never fail the copy for them
        log.warning("ANALYZE after db copy: %s", exc)


def _copy(src: Store, dst: Store, src_name: str, dst_name: str) -> str:
    from .filter import hay
    from .store import _details_json, _results_json

    dst.sync()
    tasks = [t for t in src.tasks() if t.key not in dst]
    skipped = len(src) - len(tasks)
    keys = {t.key for t in tasks}
    history = [r for r in _rows(src, "SELECT key, time, state, provider_status FROM history ORDER BY id")
               if r[0] in keys]
    raws = [r for r in _rows(src, "SELECT key, body FROM raw") if r[0] in keys]
    have = {(e.time, e.provider, e.task_id, e.kind, e.message) for e in dst.events(limit=10**9)}
    events = [e for e in reversed(src.events(limit=10**9))
              if (e.time, e.provider, e.task_id, e.kind, e.message) not in have]
    dst_counters = dst.counters()
    counters = {p: data for p, data in src.counters().items() if p not in dst_counters}

    copied: list = []

    def plan(tx: Any) -> None:
        copied.clear()
        # under the write lock, after the catch-up: a task someone added meanwhile stays theirs
        todo = [t for t in tasks if tx.current(t.key) is None]
        if not (todo or events or counters):
            return
        seq = tx.next_seq()
        conn = tx.conn
        for start in range(0, len(todo), _BATCH):
            batch = todo[start:start + _BATCH]
            gone = [(t.key,) for t in batch]
            # a tombstone of the same key goes, as when a task is added again
            conn.executemany("DELETE FROM tasks WHERE key = ?", gone)
            conn.executemany("DELETE FROM history WHERE key = ?", gone)
            conn.executemany("DELETE FROM raw WHERE key = ?", gone)
            conn.executemany(
                "INSERT INTO tasks (key, provider, task_id, kind, label, state, provider_status,"
                " progress, results, error, model, credits, created_at, updated_at, finished_at,"
                " last_error, last_error_at, failed_polls, stalled, poll_path, details, eta, files,"
                " polled_at, next_poll_at, hay, rev, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(t.key, t.provider, t.task_id, t.kind, t.label, t.state, t.provider_status,
                  t.progress, _results_json(t.results), t.error, t.model, t.credits, t.created_at,
                  t.updated_at, t.finished_at, t.last_error, t.last_error_at, t.failed_polls,
                  t.stalled, t.poll_path, _details_json(t.details), t.eta,
                  _results_json(t.files) if t.files else None, t.polled_at, t.next_poll_at, hay(t),
                  seq, seq) for t in batch])
            for t in batch:
                tx.puts[t.key] = t.copy(raw=None, rev=seq)
        copied.extend(todo)
        mine = {t.key for t in todo}
        rows = [r for r in history if r[0] in mine]
        for start in range(0, len(rows), _BATCH):
            conn.executemany("INSERT INTO history (key, time, state, provider_status) VALUES (?, ?, ?, ?)",
                             rows[start:start + _BATCH])
        bodies = [r for r in raws if r[0] in mine]
        for start in range(0, len(bodies), _BATCH):
            conn.executemany("INSERT INTO raw (key, body) VALUES (?, ?)", bodies[start:start + _BATCH])
        for start in range(0, len(events), _BATCH):
            tx.log(events[start:start + _BATCH])
        for provider, data in counters.items():
            tx.save_counters(provider, data, time.time())

    dst._write(plan)
    if copied and dst.dialect == "postgres":
        _analyze(dst)
    mine = {t.key for t in copied}
    skipped += len(tasks) - len(copied)
    parts = [f"{len(copied)} task(s)", f"{sum(r[0] in mine for r in history)} history row(s)", f"{len(events)} event(s)",
             f"{len(counters)} provider counter(s)"]
    line = f"copied {', '.join(parts)} from {src_name} to {dst_name}"
    if skipped:
        line += f"; {skipped} task(s) already there left as they are"
    return line


# ---------------------------------------------------------------- command line


def add_db_parser(sub: Any, parents: list | tuple = ()) -> None:
    """Add ``db migrate`` and ``db copy SRC DST`` to an argparse subparsers object."""
    p = sub.add_parser("db", parents=list(parents), help="task database tools (migrate, copy)")
    dsub = p.add_subparsers(dest="db_command", metavar="COMMAND", required=True,
                            help="what to do with the database")
    dsub.add_parser("migrate", parents=list(parents),
                    help="create or upgrade the schema of the store (--db, $TASKTUI_DB or the default)")
    c = dsub.add_parser("copy", parents=list(parents),
                        help="copy tasks, history, events and counters from SRC to DST"
                             " (a path or a postgresql:// URL each)")
    c.add_argument("src", metavar="SRC", help="where to copy from: a SQLite file or a postgresql:// URL")
    c.add_argument("dst", metavar="DST", help="where to copy to: a SQLite file or a postgresql:// URL")


def run_db(args: Any, config_url: str | None = None, out: Callable[[str], Any] = print) -> int:
    """Run a parsed ``db`` command; prints one line.  Raises StoreError (one line) when it cannot."""
    if args.db_command == "migrate":
        out(db_migrate(store_target(getattr(args, "db", None), config_url)))
        return 0
    if args.db_command == "copy":
        out(db_copy(_arg(args.src), _arg(args.dst)))
        return 0
    raise StoreError(f"unknown db command {args.db_command!r}")


def _arg(value: str) -> str | Path:
    return value if is_pg_url(value) else Path(value).expanduser()



def cmd_db(args: Any) -> int:
    """``tasktui db migrate`` / ``tasktui db copy SRC DST``: one line on stdout, or one
    line on stderr and exit code 2 when the store cannot be reached or used."""
    import sys

    from .config import config_path, load_config

    try:
        config_url = load_config(config_path(getattr(args, "config", None))).store.url
    except Exception:  # a db command works without a (valid) config: --db or $TASKTUI_DB then
        config_url = None
    try:
        return run_db(args, config_url)
    except StoreError as exc:
        print(f"tasktui: task database: {exc}", file=sys.stderr, flush=True)
        return 2
