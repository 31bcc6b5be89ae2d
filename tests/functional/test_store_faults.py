"""The store against a broken world: disk full, read-only database, file deleted or replaced, file modes.

How each fault is made on a real file (the test process usually runs as root, and root ignores
permission bits, so ``chmod 0444`` alone proves nothing):

- disk full: a 1 MB tmpfs mounted in tmp_path (root only), filled with a filler file; and,
  everywhere, ``RLIMIT_FSIZE`` in a subprocess with SIGXFSZ ignored (write() then fails EFBIG).
- read-only, for a store already open: ``chattr +i`` on the database file, its -wal and the
  directory.  Root cannot write an immutable file (EPERM), and ``os.access(W_OK)`` says so.
  The -shm file is left alone: SQLite maps it into memory, and an immutable mapped file kills
  the process with SIGBUS at the next write to the mapping (tried: "Bus error").
  A tmpfs cannot be remounted read-only under a store (EBUSY while a file is open for writing).
- read-only, for a store being opened: a tmpfs remounted ``ro`` (root), and ``chmod 0444`` of
  the file + ``0555`` of its directory for a process run as ``nobody`` (setpriv).
- read-only, portable: SQLite's ``PRAGMA query_only`` gives the very error (SQLITE_READONLY)
  a read-only file gives.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tui.model import Event, Task
from tui.store import Change, Store, StoreError, StoreWriteError

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def feed(store: Store) -> list[Change]:
    seen: list[Change] = []
    store.subscribe(seen.append)
    return seen


def snapshot(store: Store) -> tuple:
    """Everything a failed write must leave as it was."""
    return ({t.key: t.to_dict() for t in store.tasks()}, [t.rev for t in store.tasks()], store.counts(),
            store.counts_by_provider(), store.revision, store._seq, store._event_id)


def every_write(store: Store) -> list:
    return [
        lambda: store.add("evolink", ["new"]),
        lambda: store.add("evolink", ["a"], kind="other"),
        lambda: store.remove(["evolink:a"]),
        lambda: store.apply([Task("evolink", "a", state="succeeded", results=["https://r/1"])]),
        lambda: store.apply([], health={"evolink:a": {"failed_polls": 9}}),
        lambda: store.log([Event(time=1.0, provider="evolink", message="m")]),
        lambda: store.save_counters("evolink", {"x": 1}),
    ]


def assert_one_failed_write(store: Store, reason: str) -> None:
    """Every kind of write fails with exactly ``reason``, changes nothing, tells nobody."""
    before = snapshot(store)
    seen = feed(store)
    for write in every_write(store):
        with pytest.raises(StoreWriteError) as info:
            write()
        assert str(info.value) == reason
        assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
        assert info.value.__cause__ is None and info.value.__suppress_context__
    assert snapshot(store) == before
    assert seen == []


def chattr(flag: str, *paths: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    for p in paths:
        if p.exists() and subprocess.run(["chattr", flag, str(p)], capture_output=True).returncode != 0:
            return False
    return True


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "1m"):
    """A small tmpfs mounted at ``where`` (skips the test where mounting is not allowed)."""
    where.mkdir()
    if not IS_ROOT or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                     capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


# ---------------------------------------------------------------- read-only


def test_read_only_database_portable_query_only(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with Store(db) as store:
        store.add("evolink", ["a"])
        store._conn.execute("PRAGMA query_only = 1")
        assert_one_failed_write(store, f"database is read-only: {db}")
        store._conn.execute("PRAGMA query_only = 0")
        # the caller kept its answer and retries: it goes in, once
        assert store.apply([Task("evolink", "a", state="succeeded", results=["https://r/1"])]) == {"evolink:a"}
    with Store(db, readonly=True) as again:
        assert again.get("evolink:a").state == "succeeded"


@pytest.mark.skipif(not IS_ROOT, reason="chattr +i needs root")
def test_database_made_immutable_under_an_open_store(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "t.db"
    store = Store(db)
    wal = Path(f"{db}-wal")
    try:
        store.add("evolink", ["a"])
        assert wal.exists()
        if not chattr("+i", db, wal, folder):
            pytest.skip("chattr +i not supported on this file system")
        assert_one_failed_write(store, f"database is read-only: {db}")
    finally:
        chattr("-i", db, wal, folder)
    store.apply([Task("evolink", "a", state="running")])
    store.close()
    with Store(db, readonly=True) as again:
        assert again.get("evolink:a").state == "running"


def test_open_of_a_read_only_mount_says_so(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt") as mnt:
        db = mnt / "t.db"
        with Store(db) as s:
            s.add("evolink", ["a"])
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(StoreWriteError) as info:
            Store(db)
        assert str(info.value) == f"database is read-only: {db}"


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None, reason="needs root to run as nobody")
def test_chmod_0444_file_as_another_user(tmp_path: Path) -> None:
    top = Path(tempfile.mkdtemp(prefix="tasktui-ro-"))  # pytest's own tmp root is 0700: nobody cannot enter it
    try:
        _chmod_0444_file_as_another_user(top)
    finally:
        os.chmod(top / "ro", 0o755)
        shutil.rmtree(top)


def _chmod_0444_file_as_another_user(top: Path) -> None:
    os.chmod(top, 0o755)
    folder = top / "ro"
    folder.mkdir()
    db = folder / "t.db"
    with Store(db) as s:
        s.add("evolink", ["a"])
    os.chown(folder, 65534, 65534)
    os.chown(db, 65534, 65534)
    os.chmod(db, 0o444)
    os.chmod(folder, 0o555)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tui.store import Store, StoreWriteError
        try:
            Store({str(db)!r}).add("evolink", ["b"])
        except StoreWriteError as exc:
            print("StoreWriteError", exc)
    """)
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == f"StoreWriteError database is read-only: {db}", out.stderr


# ---------------------------------------------------------------- disk full


def test_disk_full_on_a_small_tmpfs(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt") as mnt:
        db = mnt / "t.db"
        store = Store(db)
        try:
            store.add("evolink", ["a"])
            filler = mnt / "filler"
            with open(filler, "wb", buffering=0) as f:  # take every free block
                with contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * 4096)
            answer = Task("evolink", "a", state="succeeded", results=["https://r/1"], raw={"big": "x" * 200_000})
            before = snapshot(store)
            with pytest.raises(StoreWriteError) as info:
                store.apply([answer])
            assert str(info.value) == f"disk full writing {db}"
            assert snapshot(store) == before
            filler.unlink()
            assert store.apply([answer]) == {"evolink:a"}  # the retry, once there is room
        finally:
            store.close()
        with Store(db, readonly=True) as again:
            assert again.get("evolink:a").state == "succeeded"
            assert again.raw("evolink:a") == {"big": "x" * 200_000}


def test_disk_full_by_file_size_limit(tmp_path: Path) -> None:
    resource = pytest.importorskip("resource")
    assert resource
    db = tmp_path / "t.db"
    code = textwrap.dedent(f"""
        import os, resource, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tui.model import Task
        from tui.store import Store, StoreWriteError
        store = Store({str(db)!r})
        store.add("evolink", ["a"])
        keep = ({{t.key: t.to_dict() for t in store.tasks()}}, store.revision, store._seq)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
        limit = max(os.path.getsize({str(db)!r}), os.path.getsize({str(db)!r} + "-wal")) + 8192
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        try:
            store.apply([Task("evolink", "a", state="succeeded", raw={{"big": "x" * 100_000}})])
            print("written")
        except StoreWriteError as exc:
            print(exc)
        print("unchanged" if keep == ({{t.key: t.to_dict() for t in store.tasks()}}, store.revision,
                                      store._seq) else "CHANGED")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"disk full writing {db}"), (out.stdout, out.stderr)
    assert lines[1] == "unchanged"
    with Store(db) as s:
        assert s.get("evolink:a").state == "unknown"


def test_write_failure_on_a_store_error_is_still_a_store_error(tmp_path: Path) -> None:
    """Callers that catch StoreError (the CLI's one line, exit 2) catch the new error too."""
    assert issubclass(StoreWriteError, StoreError)


# ---------------------------------------------------------------- file modes


def test_database_and_its_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    db = tmp_path / "new" / "t.db"
    old_umask = os.umask(0o022)  # the usual umask would give 0644
    try:
        with Store(db) as store:
            store.add("evolink", ["a"])
            modes = {p.name: p.stat().st_mode & 0o777 for p in db.parent.iterdir()}
    finally:
        os.umask(old_umask)
    assert modes == {"t.db": 0o600, "t.db-wal": 0o600, "t.db-shm": 0o600}


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    """A file the user made (say 0640 for a group) is theirs to set: the store does not chmod it."""
    db = tmp_path / "t.db"
    with Store(db) as store:
        store.add("evolink", ["a"])
    os.chmod(db, 0o640)
    with Store(db) as store:
        store.add("evolink", ["b"])
        assert db.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------- deleted or replaced file


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_check_file_is_none_while_the_file_stays(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with Store(db) as store:
        store.add("evolink", ["a"])
        assert store.check_file() is None
        with Store(db) as other:  # other processes writing is not a replacement
            other.add("evolink", ["b"])
        assert store.check_file() is None and store.sync() == {"evolink:b"}
    assert Store(tmp_path / "none.db", readonly=True).check_file() is None


def test_deleted_file_stops_writes_until_a_new_one_appears(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = Store(db)
    try:
        store.add("evolink", ["a", "b"])
        store.apply([Task("evolink", "a", state="running", progress=30.0)])
        os.unlink(db)
        reason = f"database file was deleted: {db}"
        assert store.check_file() == reason
        before = snapshot(store)
        seen = feed(store)
        with pytest.raises(StoreWriteError) as info:
            store.sync()
        assert str(info.value) == reason
        # the old file's -wal left at the path is empty: a database made there starts clean
        assert Path(f"{db}-wal").stat().st_size == 0
        for write in every_write(store):
            with pytest.raises(StoreWriteError) as info:
                write()
            assert str(info.value) == reason
        assert snapshot(store) == before and seen == []
        assert store.get("evolink:a").progress == 30.0  # reads still answer from memory
        # `tasktui add` in another process makes a new database at the path
        with Store(db) as cli:
            cli.add("comfy", ["x"])
        keys = store.sync()
        assert keys == {"evolink:a", "evolink:b", "comfy:x"} and seen[-1].keys == keys
        assert "deleted" in store.file_notice and "wrote 2 task(s)" in store.file_notice
        assert store.get("evolink:a").progress == 30.0 and "comfy:x" in store
        assert store.check_file() is None
        store.apply([Task("evolink", "b", state="succeeded", results=["https://r/b"])])
    finally:
        store.close()
    with Store(db) as fresh:
        assert sorted(fresh.keys()) == ["comfy:x", "evolink:a", "evolink:b"]
        assert fresh.get("evolink:b").state == "succeeded" and fresh.get("evolink:a").state == "running"
        assert any("known only to this process" in e.message for e in fresh.events())
    assert integrity(db) == "ok"


def test_replaced_file_is_reopened_and_memory_only_tasks_written_to_it(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    other = tmp_path / "other.db"
    store = Store(db)
    try:
        store.add("evolink", ["a", "b", "c"])
        store.apply([Task("evolink", "a", state="running"), Task("evolink", "c", state="queued",
                                                                  details={"storage path": "u/c.png"})])
        old_top_rev = max(t.rev for t in store.tasks())
        assert Path(f"{db}-wal").stat().st_size > 0  # our writes sit in the WAL, not yet checkpointed
        with Store(other) as s2:
            s2.add("evolink", ["a", "b", "x"])
            s2.apply([Task("evolink", "a", state="succeeded", results=["https://r/a"])])
            s2.remove(["evolink:b"])  # removed there: it must not come back
        os.replace(other, db)
        assert store.check_file() == f"database file was replaced: {db}"
        seen = feed(store)
        keys = store.sync()
        assert keys == {"evolink:a", "evolink:b", "evolink:c", "evolink:x"} and seen[-1].keys == keys
        assert seen[-1].events == 1
        assert store.keys() == ["evolink:a", "evolink:x", "evolink:c"]
        assert store.get("evolink:a").state == "succeeded"  # the file's own answer wins
        assert store.get("evolink:c").details == {"storage path": "u/c.png"}
        assert min(t.rev for t in store.tasks()) > old_top_rev  # no (key, rev) seen before
        assert "replaced" in store.file_notice and "wrote 1 task(s)" in store.file_notice
        assert store.check_file() is None and store.sync() == set()
        store.apply([Task("evolink", "x", state="running")])
    finally:
        store.close()
    assert integrity(db) == "ok"
    with Store(db) as fresh:
        got = {t.key: (t.state, t.results) for t in fresh.tasks()}
    assert got == {"evolink:a": ("succeeded", ["https://r/a"]), "evolink:x": ("running", []),
                   "evolink:c": ("queued", [])}


def test_read_only_store_follows_a_replaced_file(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    other = tmp_path / "other.db"
    with Store(db) as w:
        w.add("evolink", ["a"])
    reader = Store(db, readonly=True)
    try:
        with Store(other) as s2:
            s2.add("comfy", ["x"])
        os.replace(other, db)
        assert reader.sync() == {"evolink:a", "comfy:x"}
        assert reader.keys() == ["comfy:x"] and "not in it: read-only" in reader.file_notice
    finally:
        reader.close()


def test_a_write_notices_a_replaced_file_without_a_sync(tmp_path: Path) -> None:
    """The engine may write a round before anyone syncs: the answer must land in the file at the path."""
    db = tmp_path / "t.db"
    other = tmp_path / "other.db"
    store = Store(db)
    try:
        store.add("evolink", ["a"])
        with Store(other) as s2:
            s2.add("evolink", ["a", "x"], label="new file")
        os.replace(other, db)
        assert store.apply([Task("evolink", "a", state="succeeded", results=["https://r/a"])]) == {"evolink:a"}
        assert "replaced" in store.file_notice
    finally:
        store.close()
    assert integrity(db) == "ok"
    with Store(db) as fresh:
        assert fresh.keys() == ["evolink:a", "evolink:x"]
        assert fresh.get("evolink:a").state == "succeeded" and fresh.get("evolink:x").label == "new file"


# ---------------------------------------------------------------- the real program


def cli(db: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_DB=str(db), TASKTUI_CONFIG=str(db.parent / "none.toml"), CI="true")
    return subprocess.run([sys.executable, "-m", "tui", *argv], cwd=ROOT, env=env, text=True, input="",
                          capture_output=True, timeout=60)


def test_cli_add_on_a_full_disk_and_a_read_only_mount_says_why(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt") as mnt:
        db = mnt / "tasks.db"
        assert cli(db, "add", "evolink", "task-unified-a").returncode == 0
        with open(mnt / "filler", "wb", buffering=0) as f:
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 4096)
        # ids of EvoLink's shape, under add's 200-character limit: they are all written (or refused by the disk)
        r = cli(db, "add", "evolink", *[f"task-unified-{i}-{'x' * 170}" for i in range(2000)])
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines() == [f"tasktui: task database: disk full writing {db}"]
        (mnt / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        r = cli(db, "add", "evolink", "task-unified-b")
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines() == [f"tasktui: task database: database is read-only: {db}"]
