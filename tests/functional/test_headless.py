"""Headless commands through the real command line (``python -m tui ...``),
against a real SQLite file; no network needed here (see test_headless_sim.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.headless import read_ids, table, to_csv
from tui.model import HEALTH_FIELDS, TASK_FIELDS, Task
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *argv: str, stdin: str | None = None, config: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env["TASKTUI_DB"] = str(tmp_path / "tasks.db")
    cfg = tmp_path / "config.toml"
    if config is not None:
        cfg.write_text(config, encoding="utf-8")
    env["TASKTUI_CONFIG"] = str(cfg)
    env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "tui", *argv], cwd=ROOT, env=env, text=True,
                          input=stdin if stdin is not None else "", capture_output=True,
                          timeout=timeout)


def test_add_from_args_and_stdin_is_idempotent(tmp_path):
    r = run(tmp_path, "add", "evolink", "a1", "a2", "--label", "batch-7")
    assert r.returncode == 0, r.stderr
    assert "added 2" in r.stdout
    r = run(tmp_path, "add", "evolink", "-", "a3",
            stdin="a1\n\n# a comment\n  a4  \na3\n")
    assert r.returncode == 0, r.stderr
    assert "added 2" in r.stdout and "1 already tracked" in r.stdout
    with Store(tmp_path / "tasks.db") as store:
        keys = {t.key for t in store.tasks()}
        assert keys == {"evolink:a1", "evolink:a2", "evolink:a3", "evolink:a4"}
        assert store.get("evolink:a1").label == "batch-7"
        assert store.get("evolink:a4").label is None


def test_add_rejects_unknown_provider_without_traceback(tmp_path):
    r = run(tmp_path, "add", "evolnk", "x")
    assert r.returncode == 2
    assert "unknown provider" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "tasks.db").exists()


def test_rm_and_ls_json_and_filter(tmp_path):
    assert run(tmp_path, "add", "freepik", "f1", "f2", "--kind", "text-to-image/hyperflux").returncode == 0
    assert run(tmp_path, "add", "upscayl", "u1", "--label", "keep").returncode == 0
    r = run(tmp_path, "rm", "freepik", "f2", "nope")
    assert r.returncode == 0 and "removed 1" in r.stdout and "1 not tracked" in r.stdout
    r = run(tmp_path, "ls", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [(d["provider"], d["task_id"]) for d in data] == [("freepik", "f1"), ("upscayl", "u1")]
    assert all(list(d)[:len(TASK_FIELDS)] == list(TASK_FIELDS) for d in data)
    assert data[0]["kind"] == "text-to-image/hyperflux" and data[0]["state"] == "unknown"
    r = run(tmp_path, "ls", "--json", "--filter", "label:keep")
    assert [d["task_id"] for d in json.loads(r.stdout)] == ["u1"]
    r = run(tmp_path, "ls", "--filter", "provider:freepik")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PROVIDER", "ID", "LABEL", "STATE", "PROGRESS", "AGE", "UPDATED"]
    assert len(lines) == 2 and lines[1].split()[:4] == ["freepik", "f1", "-", "unknown"]


def test_ls_empty_store_says_so_on_stderr(tmp_path):
    r = run(tmp_path, "ls")
    assert r.returncode == 0 and r.stdout == "" and "no tasks" in r.stderr
    r = run(tmp_path, "ls", "--json")
    assert json.loads(r.stdout) == []


def test_bad_filter_is_one_line_exit_2(tmp_path):
    r = run(tmp_path, "ls", "--filter", "provider:")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def _stored(tmp_path: Path) -> None:
    with Store(tmp_path / "tasks.db") as store:
        store.add("evolink", ["e1"], label='say "hi", then, go')
        store.add("comfy", ["c1"])
        store.apply([Task(provider="evolink", task_id="e1", state="succeeded", progress=100.0,
                          results=["https://x/1.png", "https://x/2.png"], model="m", credits=2.5,
                          created_at=1.7e9, updated_at=1.7e9 + 10)])


def test_export_json_and_csv(tmp_path):
    _stored(tmp_path)
    r = run(tmp_path, "export")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data[0]["results"] == ["https://x/1.png", "https://x/2.png"]
    assert data[0]["created_at"] == "2023-11-14T22:13:20Z"
    out = tmp_path / "out.csv"
    r = run(tmp_path, "export", "--format", "csv", "-o", str(out))
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0] == list(TASK_FIELDS) + list(HEALTH_FIELDS)  # the contract's columns, then the additive ones
    e1 = dict(zip(rows[0], rows[1]))
    assert e1["results"] == "https://x/1.png https://x/2.png"
    assert e1["label"] == 'say "hi", then, go' and e1["credits"] == "2.5"
    c1 = dict(zip(rows[0], rows[2]))
    assert c1["progress"] == "" and c1["state"] == "unknown"


def test_export_to_unwritable_path_fails_cleanly(tmp_path):
    _stored(tmp_path)
    r = run(tmp_path, "export", "-o", str(tmp_path / "no" / "such" / "dir" / "x.json"))
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr


def test_bad_config_is_one_line_exit_2(tmp_path):
    run(tmp_path, "add", "evolink", "e1")
    for cmd in (["poll"], ["wait", "--timeout", "5"], ["quota"]):
        r = run(tmp_path, *cmd, config='[providers.evolink]\napi_key = "secret-key-123"\npoll_interval = "fast"\n')
        assert r.returncode == 2, (cmd, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr and "secret-key-123" not in r.stderr + r.stdout
        assert "poll_interval" in r.stderr


def test_wait_with_no_matching_tasks_is_exit_2(tmp_path):
    # a misspelled label must not make a CI step pass (issue 13)
    r = run(tmp_path, "wait", "--json", config="")
    assert r.returncode == 2 and "no tasks match" in r.stderr
    assert json.loads(r.stdout) == []


def test_wait_on_unconfigured_provider_is_exit_2(tmp_path):
    run(tmp_path, "add", "qolaba", "q1")
    r = run(tmp_path, "wait", "--timeout", "30", config="")
    assert r.returncode == 2 and "qolaba" in r.stderr and "not configured" in r.stderr


def test_quota_json_without_traffic(tmp_path):
    run(tmp_path, "add", "upscayl", "u1", "u2")
    r = run(tmp_path, "quota", "--json",
            config='[providers.upscayl]\napi_key = "k-upscayl-1"\n\n[providers.evolink]\napi_key = "k-evo-1"\n')
    assert r.returncode == 0, r.stderr
    rows = {q["provider"]: q for q in json.loads(r.stdout)}
    assert set(rows) == {"upscayl", "evolink"}
    up = rows["upscayl"]
    for key in ("provider", "state", "requests", "errors", "rate_limited", "retry_at", "credits_spent",
                "balance", "budget_left", "tasks"):
        assert key in up
    assert up["state"] == "ok" and up["requests"] == 0 and up["retry_at"] is None
    assert up["balance"] is None and up["budget_left"] == 10 and up["tasks"]["unknown"] == 2
    assert "k-upscayl-1" not in r.stdout
    r = run(tmp_path, "quota", "--json", config='[providers.upscayl]\napi_key = "k-upscayl-1"\nenabled = false\n')
    (off,) = json.loads(r.stdout)
    assert off["provider"] == "upscayl" and off["state"] == "disabled" and off["enabled"] is False
    assert off["tasks"]["unknown"] == 2 and off["budget_left"] is None
    r = run(tmp_path, "quota", config='[providers.upscayl]\napi_key = "k-upscayl-1"\n')
    assert r.returncode == 0 and r.stdout.splitlines()[0].startswith("PROVIDER")


@pytest.mark.parametrize("argv", [["ls"], ["ls", "--json"], ["export", "--format", "csv"], ["quota", "--json"],
                                  ["add", "evolink", "z"], ["rm", "evolink", "z"], ["poll", "--json"],
                                  ["wait", "--timeout", "1"]])
def test_headless_commands_never_import_textual(tmp_path, argv):
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['tasktui', *{argv!r}]\n"
        "from tui.cli import main\n"
        "rc = main()\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if m.startswith('textual'))\n"
        "print('NO-TEXTUAL', rc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_DB=str(tmp_path / "t.db"), TASKTUI_CONFIG=str(tmp_path / "config.toml"))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                       input="", timeout=60)
    assert "NO-TEXTUAL" in r.stdout, r.stderr


def test_read_ids_and_table_helpers():
    assert read_ids(["a", "-", " b "], io.StringIO("x\n#c\n\ny\na\n")) == ["a", "x", "y", "b"]
    t = Task(provider="evolink", task_id="t" * 60, label="lbl", state="running", progress=42.4,
             created_at=1000.0, updated_at=1090.0)
    lines = table([t], now=1100.0).splitlines()
    assert lines[1].split() == ["evolink", "t" * 39 + "…", "lbl", "running", "42%", "1m", "10s", "ago"]
    assert to_csv([]) == ",".join(TASK_FIELDS + HEALTH_FIELDS) + "\n"
