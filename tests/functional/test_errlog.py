"""``tasktui errors``: the dashboard's error log on the command line (issue 13,
gap 5).  A real SQLite file in tmp_path; the command runs in-process through
``tui.cli.main`` (a subprocess where the imported modules matter)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pg import pg_db, pg_server, pg_url  # noqa: F401  (fixtures: a real PostgreSQL, or skip)
from tui.cli import main
from tui.errlog import TASK_MESSAGES, read_log, row_cells
from tui.model import Event, Task
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parents[1] / "data"
KEY = "sk-live-0123456789abcdef"  # the config's API key: never printed

# Published bodies (tests/data, sources in the provider tests): Upscayl's 429
# (tests/unit/test_provider_upscayl.py test_429_try_again_in_one_hour: RateLimited,
# retry_after 3600) and Comfy's 500 (tests/unit/test_provider_comfy.py).
UPSCAYL_429 = json.loads((FIXTURES / "upscayl" / "error_429.json").read_text())
COMFY_500 = json.loads((FIXTURES / "comfy" / "error_500.json").read_text())
HOSTILE = "\x1b]52;c;cHduZWQ=\x07\x1b[2Jbad gateway [b]bold[/b] \u202eevil"
ECHO = f"upstream echoed the request: Authorization: Bearer {KEY}"


@pytest.fixture
def home(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("TASKTUI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TASKTUI_DB", str(tmp_path / "tasks.db"))
    config = tmp_path / "config.toml"
    config.write_text(f'[providers.freepik]\napi_key = "{KEY}"\n', encoding="utf-8")
    config.chmod(0o600)
    monkeypatch.setenv("TASKTUI_CONFIG", str(config))
    NOW = time.time()  # the rows' times count back from the test's start (--since counts from now)
    with Store(tmp_path / "tasks.db") as store:
        store.add("upscayl", ["u1", "u2"])
        store.add("comfy", ["c1"])
        store.add("freepik", ["f1", "f2"])
        store.apply([
            Task("upscayl", "u1", state="failed", error="upscale failed: image too large",
                 updated_at=NOW - 300, finished_at=NOW - 300),
            Task("upscayl", "u2", state="succeeded", updated_at=NOW - 200, finished_at=NOW - 200),
            Task("freepik", "f2", state="cancelled", updated_at=NOW - 14400, finished_at=NOW - 14400),
        ])
        store.log([
            Event(NOW - 3600 * 3, "comfy", COMFY_500["message"], "c1", 500, "transient"),
            Event(NOW - 100, "upscayl", UPSCAYL_429["message"], None, 429, "rate_limited", 3600.0),
            Event(NOW - 10, "freepik", ECHO, "f1", 502, "transient"),
        ])
    # a row written by another program (or an older tasktui): the store's own writes clean
    # provider text, this one did not
    with sqlite3.connect(tmp_path / "tasks.db") as conn:
        conn.execute("INSERT INTO events (time, provider, task_id, status, kind, message, retry_after)"
                     " VALUES (?, 'freepik', 'f1', 502, 'transient', ?, NULL)", (NOW - 5, HOSTILE))
    return tmp_path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def test_errors_prints_the_log_newest_first_with_task_failures_as_their_own_kind(home, capsys):
    code, out, err = cli(capsys, "errors")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["TIME", "(UTC)", "PROVIDER"]
    body = lines[1:]
    assert [line.split()[2] for line in body] == ["freepik", "freepik", "upscayl", "upscayl", "comfy", "freepik"]
    assert "task failed" in body[3] and "upscale failed: image too large" in body[3]
    assert "task cancelled" in body[5] and TASK_MESSAGES["cancelled"] in body[5]
    assert UPSCAYL_429["message"] in body[2] and "3600s" in body[2] and "429" in body[2]
    assert "u2" not in out  # a task that succeeded is no error
    # hostile text is inert and the key is masked
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert KEY not in out and "bad gateway [b]bold[/b]" in out


def test_errors_json_is_an_array_of_the_same_rows(home, capsys):
    code, out, err = cli(capsys, "errors", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["provider"], r["kind"], r["source"]) for r in rows] == [
        ("freepik", "transient", "event"), ("freepik", "transient", "event"), ("upscayl", "rate_limited", "event"),
        ("upscayl", "task failed", "task"), ("comfy", "transient", "event"),
        ("freepik", "task cancelled", "task")]
    rows = rows[1:]  # (the first: the row another program wrote)
    assert rows[1] == {"time": rows[1]["time"], "provider": "upscayl", "task_id": None, "key": None,
                       "status": 429, "kind": "rate_limited", "message": UPSCAYL_429["message"],
                       "retry_after": 3600.0, "source": "event"}
    assert rows[1]["time"].endswith("Z") and rows[0]["time"] > rows[1]["time"]
    assert rows[2]["key"] == "upscayl:u1" and rows[2]["status"] is None
    assert KEY not in out and "\\u001b" not in out and "\u202e" not in out and "\\u202e" not in out
    assert "\\u0007" not in out and "bad gateway [b]bold[/b]" in json.loads(out)[0]["message"]
    # the rows the dashboard's error log shows (one row builder)
    with Store(home / "tasks.db", readonly=True) as store:
        screen = read_log(store)
    assert [(r["provider"], r["kind"]) for r in rows] == [(r.provider, r.kind) for r in screen][1:]
    assert [r["message"] for r in rows][1:] == [row_cells(r)[5] for r in screen][2:]


def test_errors_options_provider_since_limit(home, capsys):
    code, out, _ = cli(capsys, "errors", "--json", "--provider", "upscayl")
    assert [r["kind"] for r in json.loads(out)] == ["rate_limited", "task failed"]
    code, out, _ = cli(capsys, "errors", "--json", "--since", "1h")
    assert [r["provider"] for r in json.loads(out)] == ["freepik", "freepik", "upscayl", "upscayl"]
    code, out, _ = cli(capsys, "errors", "--json", "--since", "150s")
    assert [r["provider"] for r in json.loads(out)] == ["freepik", "freepik", "upscayl"]
    code, out, _ = cli(capsys, "errors", "--json", "--limit", "3")
    assert [r["provider"] for r in json.loads(out)] == ["freepik", "freepik", "upscayl"]
    code, out, err = cli(capsys, "errors", "--since", "1m", "--provider", "comfy")
    assert code == 0 and out == "" and "no errors logged in that time for comfy" in err
    code, out, _ = cli(capsys, "errors", "--json", "--since", "1m", "--provider", "comfy")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize("argv, says", [
    (("--since", "yesterday"), "--since:"),
    (("--limit", "-3"), "--limit"),
    (("--provider", "freepick"), "unknown provider"),
])
def test_errors_bad_options_are_one_line_and_exit_2(home, capsys, argv, says):
    code, out, err = cli(capsys, "errors", *argv)
    assert code == 2 and out == "" and says in err and len(err.strip().splitlines()) == 1


def test_errors_help_lists_exit_codes(capsys):
    code, out, _ = cli(capsys, "errors", "--help")
    assert code == 0 and "exit codes:" in out and "  0  " in out and "  2  " in out
    for option in ("--json", "--provider", "--since", "--limit"):
        assert option in out


def test_errors_never_imports_textual(home):
    env = {k: v for k, v in os.environ.items()}
    code = ("import sys; from tui.cli import main; rc = main(['errors', '--json']); "
            "assert 'textual' not in sys.modules, 'textual imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 6


def test_errors_and_streamed_ls_on_postgresql(pg_url, tmp_path, monkeypatch, capsys):
    """The same commands on a PostgreSQL store: task failures picked by its SQL
    (iter_tasks 'state:bad'), ls --json streamed from it."""
    from tui.stores import open_store

    for key in list(os.environ):
        if key.startswith("TASKTUI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TASKTUI_DB", pg_url)
    monkeypatch.setenv("TASKTUI_CONFIG", str(tmp_path / "missing.toml"))
    NOW = time.time()
    store = open_store(pg_url)
    try:
        store.add("upscayl", ["u1", "u2", "u3"])
        store.apply([Task("upscayl", "u1", state="failed", error="upscale failed", updated_at=NOW - 60,
                          finished_at=NOW - 60),
                     Task("upscayl", "u2", state="succeeded", updated_at=NOW - 50, finished_at=NOW - 50)])
        store.log([Event(NOW - 30, "upscayl", UPSCAYL_429["message"], None, 429, "rate_limited", 3600.0)])
    finally:
        store.close()
    code, out, err = cli(capsys, "errors", "--json")
    assert code == 0, err
    assert [(r["kind"], r["task_id"]) for r in json.loads(out)] == [("rate_limited", None), ("task failed", "u1")]
    code, out, err = cli(capsys, "ls", "--json", "--filter", "-state:succeeded")
    assert code == 0, err
    assert [t["task_id"] for t in json.loads(out)] == ["u1", "u3"]
