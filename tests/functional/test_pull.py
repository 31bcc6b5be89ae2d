"""``tasktui pull``: downloads of succeeded tasks' results against a real file host
on 127.0.0.1 (tests/file_server.py) and a real SQLite store in tmp_path."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from file_server import HOLD
from tui import results as R
from tui.model import Task
from tui.store import MIGRATIONS, Store, migrate

KEY = "sk-evolink-SECRET-0123456789abcdef"


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "tasks.db")
    yield s
    s.close()


def succeed(store: Store, provider: str, task_id: str, urls: list[str], label: str | None = None,
            kind: str | None = None) -> Task:
    store.add(provider, [task_id], kind=kind, label=label)
    store.apply([Task(provider, task_id, state="succeeded", results=urls)])
    return store.get(f"{provider}:{task_id}")


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    code = "import sys; from tui.results import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env=env or os.environ.copy())


def under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------- downloads


async def test_downloads_name_files_by_provider_label_task_and_type(file_host, store, tmp_path):
    dest = tmp_path / "out"
    succeed(store, "evolink", "task-unified-1", [file_host.url("/img.png"), file_host.url("/img.jpg")], label="batch-7")
    succeed(store, "freepik", "fp-2", [file_host.url("/img.webp"), file_host.url("/clip.mp4"), file_host.url("/song.mp3")],
            kind="image-relight")
    seen = []
    got = await R.pull(store, store.tasks(), dest, on_progress=seen.append)
    assert [r.status for r in got] == ["downloaded"] * 5
    rel = sorted(str(p.relative_to(dest)) for p in under(dest))
    assert rel == ["evolink/batch-7/task-unified-1-1.png", "evolink/batch-7/task-unified-1-2.jpg",
                   "freepik/image-relight/fp-2-1.webp", "freepik/image-relight/fp-2-2.mp4",
                   "freepik/image-relight/fp-2-3.mp3"]
    assert (dest / "freepik/image-relight/fp-2-2.mp4").read_bytes() == file_host.body("/clip.mp4")
    # recorded in the store, read back by another process's view
    with Store(tmp_path / "tasks.db", readonly=True) as reader:
        assert reader.get("evolink:task-unified-1").files == [
            str((dest / "evolink/batch-7/task-unified-1-1.png").resolve()),
            str((dest / "evolink/batch-7/task-unified-1-2.jpg").resolve())]
        assert reader.get("evolink:task-unified-1").to_dict()["files"][0].endswith("task-unified-1-1.png")
    # progress: per file (bytes of the file) and overall; a last report per file
    finished = [p for p in seen if p.finished]
    assert len(finished) == 5 and all(p.finished.ok for p in finished)
    assert max(p.overall_done for p in seen) == sum(len(file_host.body(n)) for n in
                                                    ("/img.png", "/img.jpg", "/img.webp", "/clip.mp4", "/song.mp3"))
    assert file_host.violations == []


async def test_only_succeeded_tasks_and_only_web_links_are_fetched(file_host, store, tmp_path):
    store.add("comfy", ["running"])
    store.apply([Task("comfy", "running", state="running", results=[file_host.url("/img.png")])])
    succeed(store, "upscayl", "u1", ["file:///etc/passwd", "ftp://127.0.0.1/x.png", "javascript:alert(1)",
                                     "users/abc/out.png", file_host.url("/img.png")])
    got = await R.pull(store, store.tasks(), tmp_path / "out")
    assert [r.status for r in got] == ["refused"] * 4 + ["downloaded"]
    assert [s.path for s in file_host.requests] == ["/img.png"]  # one request: the web link of the succeeded task


async def test_a_second_run_downloads_nothing(file_host, store, tmp_path):
    succeed(store, "evolink", "t1", [file_host.url("/img.png"), file_host.url("/big.bin")], label="x")
    first = await R.pull(store, store.tasks(), tmp_path / "out")
    assert [r.status for r in first] == ["downloaded", "downloaded"]
    file_host.reset()
    again = await R.pull(store, store.tasks(), tmp_path / "out")
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert sum(r.bytes for r in again) == 0
    # the check is a Range request from the local size: the host answers 416 and sends no byte
    assert [(s.headers.get("range"), s.status, s.sent) for s in file_host.requests] == [
        (f"bytes={len(file_host.body('/img.png'))}-", 416, 0), (f"bytes={len(file_host.body('/big.bin'))}-", 416, 0)]


async def test_a_file_that_dies_mid_transfer_is_resumed_by_range(file_host, store, tmp_path):
    dest = tmp_path / "out"
    succeed(store, "qolaba", "q1", [file_host.url("/dies.bin")])
    first = await R.pull(store, store.tasks(), dest)
    assert first[0].status == "error" and "resume" in first[0].message
    part = dest / "qolaba/results/q1-1.part"
    assert part.stat().st_size == HOLD
    assert store.get("qolaba:q1").files == []  # nothing complete: nothing recorded
    file_host.reset()
    second = await R.pull(store, store.tasks(), dest)
    assert second[0].status == "resumed" and second[0].bytes == len(file_host.body("/dies.bin")) - HOLD
    assert file_host.requests[0].headers["range"] == f"bytes={HOLD}-" and file_host.requests[0].status == 206
    assert (dest / "qolaba/results/q1-1.bin").read_bytes() == file_host.body("/dies.bin")
    assert not part.exists()


async def test_a_host_that_ignores_range_restarts_the_file(file_host, store, tmp_path):
    dest = tmp_path / "out"
    succeed(store, "qolaba", "q1", [file_host.url("/big.bin")])
    (dest / "qolaba/results").mkdir(parents=True)
    (dest / "qolaba/results/q1-1.part").write_bytes(b"garbage" * 1000)
    file_host.ranges = False
    got = await R.pull(store, store.tasks(), dest)
    assert got[0].status == "downloaded" and file_host.requests[0].status == 200
    assert (dest / "qolaba/results/q1-1.bin").read_bytes() == file_host.body("/big.bin")


async def test_a_206_of_another_range_restarts_the_file(file_host, store, tmp_path):
    dest = tmp_path / "out"
    succeed(store, "qolaba", "q1", [file_host.url("/big.bin")])
    (dest / "qolaba/results").mkdir(parents=True)
    (dest / "qolaba/results/q1-1.part").write_bytes(b"garbage" * 1000)
    file_host.ranges = "from_zero"
    got = await R.pull(store, store.tasks(), dest)
    assert got[0].status == "downloaded"
    assert (dest / "qolaba/results/q1-1.bin").read_bytes() == file_host.body("/big.bin")


def test_resume_after_kill_9_mid_file(file_host, tmp_path):
    """A pull killed with SIGKILL in the middle of a file; the next run completes it by Range."""
    db, dest = tmp_path / "tasks.db", tmp_path / "out"
    with Store(db) as s:
        succeed(s, "evolink", "task-unified-9", [file_host.url("/slow.bin")], label="night")
    code = "import sys; from tui.results import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "--db", str(db), "--dir", str(dest)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # the host has sent HOLD bytes and now holds the rest
        file_host.wait_for(lambda reqs: any(r.path == "/slow.bin" and r.sent >= HOLD for r in reqs))
        part = dest / "evolink/night/task-unified-9-1.part"
        # wait for the bytes to reach the file (the server cannot see that): a bounded wait on the event
        deadline = 30.0
        import time
        end = time.monotonic() + deadline
        while not (part.exists() and part.stat().st_size >= HOLD):
            assert time.monotonic() < end, "the part file never got the bytes sent"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert part.stat().st_size == HOLD and not (dest / "evolink/night/task-unified-9-1.bin").exists()
    file_host.reset()
    done = run_cli("--db", str(db), "--dir", str(dest), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [(r["status"], r["bytes"]) for r in out] == [("resumed", len(file_host.body("/slow.bin")) - HOLD)]
    assert [(r.headers.get("range"), r.status) for r in file_host.requests] == [(f"bytes={HOLD}-", 206)]
    final = dest / "evolink/night/task-unified-9-1.bin"
    assert final.read_bytes() == file_host.body("/slow.bin") and not part.exists()
    with Store(db, readonly=True) as reader:
        assert reader.get("evolink:task-unified-9").files == [str(final.resolve())]


async def test_expired_links_say_expired(file_host, store, tmp_path):
    succeed(store, "evolink", "old", [file_host.url("/expired403"), file_host.url("/expired404"), file_host.url("/expired410")])
    got = await R.pull(store, store.tasks(), tmp_path / "out")
    assert [(r.status, r.http_status) for r in got] == [("expired", 403), ("expired", 404), ("expired", 410)]
    assert all("expired" in r.message for r in got)
    assert under(tmp_path / "out") == []


async def test_a_file_over_the_cap_is_refused(file_host, store, tmp_path):
    succeed(store, "evolink", "big", [file_host.url("/huge.bin"), file_host.url("/huge-nolength.bin"), file_host.url("/img.png")])
    got = await R.pull(store, store.tasks(), tmp_path / "out", max_bytes=1_000_000)
    assert [r.status for r in got] == ["too_large", "too_large", "downloaded"]
    assert got[0].bytes == 0  # refused on its Content-Length, before any byte
    assert [p.name for p in under(tmp_path / "out")] == ["big-3.png"]  # no partial file of the endless one


async def test_a_host_hash_is_checked(file_host, store, tmp_path):
    succeed(store, "evolink", "h", [file_host.url("/md5-bad.bin"), file_host.url("/md5-good.bin")])
    got = await R.pull(store, store.tasks(), tmp_path / "out")
    assert [r.status for r in got] == ["error", "downloaded"]
    assert "hash" in got[0].message
    assert [p.name for p in under(tmp_path / "out")] == ["h-2.bin"]


# ---------------------------------------------------------------- hostile names


@pytest.mark.parametrize("text", ["..", ".", "", "../../etc", "/etc/passwd", "a/b\\c", "x\x00y", "CON", "nul.txt",
                                  "\x1b]52;c;aGk=\x07evil", "e" * 5000, ".hidden", "C:\\Windows", "\u202egnp.exe"])
def test_safe_component_names_only_an_entry_inside_its_folder(tmp_path, text):
    name = R.safe_component(text)
    assert name and name not in (".", "..") and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and len(name.encode()) < 255 and name.isprintable()
    assert R.inside(tmp_path, tmp_path / name)


def test_names_that_differ_stay_different():
    assert R.safe_component("a/b") != R.safe_component("a_b")
    assert R.safe_component("x" * 300) != R.safe_component("x" * 301)


@pytest.mark.parametrize("url, ctype, ext", [
    ("https://h/x/..%2F..%2Fevil.sh", None, "sh"),
    ("https://h/a/b.PNG?sig=1", None, "png"),
    ("https://h/a/b.jpeg", None, "jpg"),
    ("https://h/a/b.tar/../x", None, "bin"),
    ("https://h/a/b.p/n/g", None, "bin"),
    ("https://h/a/b.%00png", None, "bin"),
    ("https://h/a/b.abcdefghijk", None, "bin"),
    ("https://h/a/file", "image/webp; charset=x", "webp"),
    ("https://h/a/file.png", "video/mp4", "mp4"),
])
def test_extension_from_content_type_else_url_path(url, ctype, ext):
    assert R.extension(ctype, url) == ext


async def test_hostile_names_never_write_outside_the_destination(file_host, tmp_path):
    dest = tmp_path / "a" / "out"
    dest.mkdir(parents=True)
    tasks = [
        Task("../..", "../../../escaped", label="../../../../tmp", state="succeeded",
             results=[file_host.url("/hostile"), file_host.url("/dl/..%2F..%2F..%2Fescaped.png")]),
        Task("/abs", "/etc/passwd", kind="/root/.ssh", state="succeeded", results=[file_host.url("/img.png")]),
        Task("evolink", "x\x00y" + "z" * 3000, label="C:\\Windows\\System32", state="succeeded",
             results=[file_host.url("/img.jpg")]),
    ]
    got = await R.pull(None, tasks, dest)
    assert [r.status for r in got] == ["downloaded"] * 4
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(R.inside(dest, p) for p in written)
    assert not any("escaped.png" == p.name for p in written)
    assert all(len(part) <= 255 for p in written for part in p.relative_to(dest).parts)
    # the Content-Disposition name was not used: our own name, with the type's extension
    assert Path(got[0].path).name.endswith("-1.png") and Path(got[0].path).parent.parent.parent == dest.resolve()


async def test_a_symlinked_folder_leading_out_is_refused(file_host, tmp_path):
    dest, outside = tmp_path / "out", tmp_path / "elsewhere"
    (dest / "evolink").mkdir(parents=True)
    outside.mkdir()
    (dest / "evolink" / "results").symlink_to(outside)
    got = await R.pull(None, [Task("evolink", "t", state="succeeded", results=[file_host.url("/img.png")])], dest)
    assert got[0].status == "refused" and list(outside.iterdir()) == [] and file_host.requests == []


# ---------------------------------------------------------------- secrets


async def test_a_client_with_credentials_is_refused(file_host, tmp_path):
    task = Task("evolink", "t", state="succeeded", results=[file_host.url("/img.png")])
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
        async with httpx.AsyncClient(headers=headers) as client:
            with pytest.raises(ValueError, match="no credentials"):
                await R.pull(None, [task], tmp_path / "out", client=client)
    assert file_host.requests == []


def test_the_api_key_never_reaches_the_file_host(file_host, tmp_path):
    """pull run as a user would, with the provider's key in the config and the environment:
    the file host sees no Authorization / X-API-Key header and no trace of the key."""
    db = tmp_path / "tasks.db"
    with Store(db) as s:
        succeed(s, "evolink", "task-unified-1", [file_host.url("/img.png"), file_host.url("/big.bin")])
    config = tmp_path / "config.toml"
    config.write_text(f'[providers.evolink]\napi_key = "{KEY}"\nbase_url = "{file_host.base_url}"\n')
    env = {**os.environ, "TASKTUI_CONFIG": str(config), "EVOLINK_API_KEY": KEY, "HTTP_PROXY": "",
           "TASKTUI_DB": str(db)}
    file_host.secrets.append(KEY)
    done = run_cli("--dir", str(tmp_path / "out"), env=env)
    assert done.returncode == 0, done.stderr
    assert len(file_host.requests) == 2
    assert file_host.violations == []
    assert KEY not in done.stdout + done.stderr


# ---------------------------------------------------------------- the command


def test_command_prints_plain_lines_off_a_terminal_and_json_on_request(file_host, tmp_path):
    db, dest = tmp_path / "tasks.db", tmp_path / "out"
    with Store(db) as s:
        succeed(s, "evolink", "a", [file_host.url("/img.png")], label="l")
        succeed(s, "evolink", "b", [file_host.url("/expired410")], label="l")
    plain = run_cli("--db", str(db), "--dir", str(dest))
    assert plain.returncode == 1  # one expired
    lines = plain.stderr.splitlines()
    assert any(line.startswith("downloaded") and "evolink/l/a-1.png" in line for line in lines)
    assert any(line.startswith("expired") and "HTTP 410" in line for line in lines)
    assert "\x1b" not in plain.stderr and plain.stdout == ""
    as_json = run_cli("--db", str(db), "--dir", str(dest), "--json", "--filter", "label:l")
    rows = json.loads(as_json.stdout)
    assert [(r["task_id"], r["status"]) for r in rows] == [("a", "skipped"), ("b", "expired")]
    assert set(rows[0]) >= {"provider", "task_id", "n", "url", "status", "path", "bytes", "size", "message"}
    none = run_cli("--db", str(db), "--dir", str(dest), "--json", "--filter", "label:nothing")
    assert none.returncode == 0 and json.loads(none.stdout) == []


async def test_a_terminal_gets_bars_per_file_and_overall(file_host, tmp_path):
    import io

    out = io.StringIO()
    tasks = [Task("evolink", "t", label="b", state="succeeded",
                  results=[file_host.url("/big.bin"), file_host.url("/expired410"), file_host.url("/img.png")])]
    with R._Bars(out, force_terminal=True, width=120) as bars:
        got = await R.pull(None, tasks, tmp_path / "out", on_progress=bars)
    assert [r.status for r in got] == ["downloaded", "expired", "downloaded"]
    text = out.getvalue()
    assert "all files" in text and "t-1.bin" in text and "300.0 kB" in text  # a bar with bytes of the file
    assert "downloaded" in text and "expired" in text and "HTTP 410" in text
    assert "\x1b[" in text  # drawn as a terminal's live display


def test_ls_json_shows_files(file_host, tmp_path):
    db = tmp_path / "tasks.db"
    with Store(db) as s:
        succeed(s, "evolink", "a", [file_host.url("/img.png")])
    assert run_cli("--db", str(db), "--dir", str(tmp_path / "out")).returncode == 0
    from tui.cli import main as cli_main  # noqa: F401 - the real ls
    ls = subprocess.run([sys.executable, "-m", "tui", "ls", "--json", "--db", str(db)], capture_output=True,
                        text=True, timeout=60)
    rows = json.loads(ls.stdout)
    assert rows[0]["files"] == [str((tmp_path / "out/evolink/results/a-1.png").resolve())]
    assert list(rows[0])[-3:] == ["files", "polled_at", "next_poll_at"]  # additive fields, freshness last


# ---------------------------------------------------------------- store


def test_set_files_survives_answers_and_reopen(tmp_path):
    db = tmp_path / "tasks.db"
    with Store(db) as s:
        s.add("evolink", ["t"])
        rev = s.get("evolink:t").rev
        assert s.set_files("evolink:t", ["/x/a.png"]) is True
        assert s.get("evolink:t").rev > rev
        assert s.set_files("evolink:nope", ["/x"]) is False
        s.apply([Task("evolink", "t", state="succeeded", results=["https://r/1"])])  # an answer keeps them
        assert s.get("evolink:t").files == ["/x/a.png"]
    with Store(db) as s:
        assert s.get("evolink:t").files == ["/x/a.png"] and s.get("evolink:t").state == "succeeded"


def test_a_schema_2_file_reads_read_only_with_no_files(tmp_path):
    db = tmp_path / "tasks.db"
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, MIGRATIONS[:2])
    conn.execute("INSERT INTO tasks (key, provider, task_id, state, rev, seq) VALUES ('comfy:a', 'comfy', 'a',"
                 " 'queued', 1, 1)")
    conn.execute("UPDATE meta SET value = 1 WHERE name = 'seq'")
    conn.close()
    with Store(db, readonly=True) as reader:
        assert reader.get("comfy:a").files == []
    with Store(db) as s:  # and upgrades when opened for writing
        s.set_files("comfy:a", ["/p"])
    with Store(db, readonly=True) as reader:
        assert reader.get("comfy:a").files == ["/p"]


# ---------------------------------------------------------------- expiry


def test_evolink_links_expire_24_h_after_the_task_ended():
    # EvoLinkAI/evolink-media-mcp packages/core/src/tools/check-task.ts:
    # "Note: Download URLs expire in 24 hours. Save results promptly."
    t = Task("evolink", "task-unified-1", state="succeeded", results=["https://files/x.mp4"], finished_at=1000.0)
    assert R.expires_at(t) == 1000.0 + 86400
    assert R.expiry_text(t, 1000.0 + 21 * 3600) == "expires in 3 h"
    assert R.expiry_text(t, 1000.0 + 86400 - 25 * 60) == "expires in 25 min"
    assert R.expiry_text(t, 1000.0 + 86400 + 2 * 3600) == "expired 2 h ago"
    assert not R.expiry_soon(t, 1000.0 + 17 * 3600)  # 7 h of 24 left
    assert R.expiry_soon(t, 1000.0 + 19 * 3600)  # 5 h left: the last quarter
    assert R.expiry_soon(t, 1000.0 + 30 * 3600)  # expired
    assert R.expires_at(t.copy(state="running", finished_at=None)) is None


def test_upscayl_expiry_comes_from_its_files_expires_at():
    # docs.upscayl.org openapi FileData.expiresAt ("Timestamp of file expiration"); the
    # Upscayl client keeps the earliest as details["expires"] (ISO)
    t = Task("upscayl", "u1", state="succeeded", results=["https://cdn/x.png"], created_at=0.0,
             finished_at=1_640_990_000.0, details={"expires": "2022-01-01T00:00:00Z"})
    assert R.expires_at(t) == 1_640_995_200.0
    assert R.expiry_text(t, 1_640_995_200.0 - 7200) == "expires in 2 h"
    assert R.expiry_soon(t, 1_640_995_200.0 - 1000) and not R.expiry_soon(t, 1_640_990_100.0)


def test_no_stated_lifetime_no_expiry():
    t = Task("freepik", "f", state="succeeded", results=["https://x/y.png"], finished_at=5.0)
    assert R.expires_at(t) is None and R.expiry_text(t, 10.0) is None and not R.expiry_soon(t, 1e12)
