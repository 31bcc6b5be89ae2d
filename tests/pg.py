"""A real PostgreSQL server for the store tests, started once per test session.

Debian's ``postgresql`` package gives ``initdb`` and ``pg_ctl`` under
``/usr/lib/postgresql/VERSION/bin`` (``.ci/run`` installs it when missing).  PostgreSQL
refuses to run as root, and these machines run as root: the server then runs as the
``postgres`` system user (``runuser -u postgres -- ...``), its data directory and unix
socket in a temporary directory owned by that user.  It listens on a free TCP port of
127.0.0.1 and asks for a password there (scram-sha-256), so a wrong password is a real
refusal.  Each test gets a database of its own, created from ``template0``.

When no server can be started the PostgreSQL tests skip, saying why.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "s3cret-pw-for-tests"
USER = "postgres"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    port: int
    base: Path
    bin: Path
    as_user: list[str]

    def url(self, dbname: str = "postgres", password: str | None = PASSWORD, user: str = USER) -> str:
        auth = f"{user}:{password}" if password is not None else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def admin(self):
        import psycopg

        return psycopg.connect(self.url(), autocommit=True)

    def create_db(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_db(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate(self, dbname: str) -> int:
        """Kill every server process connected to ``dbname`` (a dropped connection)."""
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchall()
        return len(rows)

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.base / "data"), *args],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.base / 'sock'} -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        done = self.pg_ctl("-o", options, "-l", str(self.base / "log"), "-w", "-t", "60", "start")
        if done.returncode != 0:
            log = (self.base / "log").read_text(errors="replace")[-2000:] if (self.base / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()} {log}")

    def stop(self) -> None:
        """Stop the server (``start()`` starts it again: a database that went down)."""
        self.pg_ctl("-m", "immediate", "stop")

    def remove(self) -> None:
        """Stop the server for good and delete its directory (a bench's 1M store is 2 GB)."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def start_server() -> PgServer:
    """Start a server or raise RuntimeError saying why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise RuntimeError("psycopg is not installed (pip install 'psycopg[binary]')") from None
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server: apt-get install postgresql (gives /usr/lib/postgresql/*/bin/initdb)")
    base = Path(tempfile.mkdtemp(prefix="tasktui-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError("running as root and no runuser to start PostgreSQL as the postgres user")
        try:
            import pwd

            pw = pwd.getpwnam(USER)
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' system user") from None
        as_user = [runuser, "-u", USER, "--"]
        os.chown(base, pw.pw_uid, pw.pw_gid)
    (base / "sock").mkdir()
    (base / "pw").write_text(PASSWORD + "\n")
    if as_user:
        for p in (base / "sock", base / "pw"):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    init = subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", USER, "-A", "scram-sha-256",
         "--auth-local=trust", f"--pwfile={base / 'pw'}", "-E", "UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {(init.stderr or init.stdout).strip()[-500:]}")
    last: Exception | None = None
    for _ in range(3):  # a free port may be taken between the probe and the start
        server = PgServer(_free_port(), base, bin_dir, as_user)
        try:
            server.start()
            return server
        except RuntimeError as exc:
            last = exc
    shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError(str(last))


def _has_c_utf8() -> bool:
    return os.path.isdir("/usr/lib/locale/C.utf8") or os.path.isdir("/usr/lib/locale/C.UTF-8")


_SERVER: list = []  # [PgServer] or [RuntimeError]: one server per test process, whichever module asks


def shared_server() -> PgServer:
    """The server of this test process, started on first use (stopped at exit)."""
    if not _SERVER:
        try:
            server = start_server()
        except RuntimeError as exc:
            _SERVER.append(exc)
        else:
            _SERVER.append(server)
            atexit.register(server.remove)
    got = _SERVER[0]
    if isinstance(got, RuntimeError):
        pytest.skip(f"PostgreSQL tests need a server: {got}")
    return got


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    return shared_server()


@pytest.fixture
def pg_db(pg_server: PgServer):
    """The name of a fresh, empty database for one test."""
    name = pg_server.create_db()
    yield name
    pg_server.drop_db(name)


@pytest.fixture
def pg_url(pg_server: PgServer, pg_db: str) -> str:
    return pg_server.url(pg_db)
