"""The command line read-only (--readonly, TASKTUI_READONLY=1, [ui] readonly):
what writes refuses in one line and leaves the database alone, ``poll`` asks
no provider, ``wait`` only watches what another process stores.  And every
subcommand and option of the parser has help text."""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui import cli
from tui.model import Task
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, monkeypatch, sim):
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-running", "evolink-done"])
    store.close()
    (tmp_path / "config.toml").write_text(sim.config_toml(("evolink",)), encoding="utf-8")
    (tmp_path / "config.toml").chmod(0o600)
    monkeypatch.setenv("TASKTUI_DB", str(tmp_path / "tasks.db"))
    monkeypatch.setenv("TASKTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("TASKTUI_READONLY", raising=False)
    return tmp_path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


WRITES = [
    ["add", "evolink", "new-id"],
    ["rm", "evolink", "evolink-done"],
    ["rm", "--filter", "state:unknown"],
    ["pull", "--dir", "."],
    ["db", "migrate"],
    ["listen"],
    ["collect"],
]


@pytest.mark.parametrize("argv", WRITES, ids=lambda a: " ".join(a))
@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_writing_commands_refuse_in_one_line(env, argv, how, capsys, monkeypatch, sim):
    if how == "flag":
        argv = [*argv, "--readonly"]
    elif how == "env":
        monkeypatch.setenv("TASKTUI_READONLY", "1")
    else:
        config = env / "config.toml"
        config.write_text(config.read_text() + "\n[ui]\nreadonly = true\n", encoding="utf-8")
    before = digest(env / "tasks.db")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("tasktui: read-only") and "nothing done" in err
    assert digest(env / "tasks.db") == before
    assert len(Store(env / "tasks.db", readonly=True)) == 2
    assert sim.requests == []


def test_readonly_env_off_values_and_a_typo_counts_as_on(env, capsys, monkeypatch):
    for off in ("0", "false", "no", "off", ""):
        monkeypatch.setenv("TASKTUI_READONLY", off)
        assert cli.readonly_wanted(argparse.Namespace(readonly=None, config=None), "ls") is False
    monkeypatch.setenv("TASKTUI_READONLY", "ture")  # a typo must not open production for writing
    assert cli.main(["add", "evolink", "x"]) == 2


def test_poll_readonly_prints_the_stored_state_and_asks_nobody(env, capsys, sim):
    assert cli.main(["poll", "--readonly", "--json"]) == 0
    out = capsys.readouterr()
    assert "not polled" in out.err
    assert {t["task_id"] for t in __import__("json").loads(out.out)} == {"evolink-running", "evolink-done"}
    assert sim.requests == []
    assert cli.main(["poll"]) == 0  # without --readonly it does ask
    assert any(r.provider == "evolink" for r in sim.requests)


def test_wait_readonly_watches_another_process_and_never_polls(env, sim):
    proc = subprocess.Popen([sys.executable, "-m", "tui", "wait", "--readonly", "--json", "--timeout", "120"],
                            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        # wait for it to be watching (its first line on stderr), then another process ends the tasks
        line = proc.stderr.readline()
        assert "watching the task database" in line, line
        writer = Store(env / "tasks.db")
        writer.apply([Task(provider="evolink", task_id="evolink-running", state="succeeded"),
                      Task(provider="evolink", task_id="evolink-done", state="failed", error="boom")])
        writer.close()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1  # one failed: wait's exit codes hold
    assert {t["state"] for t in __import__("json").loads(out)} == {"succeeded", "failed"}
    assert sim.requests == []  # it only watched


def test_wait_readonly_no_match_and_timeout(env, capsys):
    assert cli.main(["wait", "--readonly", "--filter", "label:nothing-has-this"]) == 2
    assert "no tasks match" in capsys.readouterr().err
    assert cli.main(["wait", "--readonly", "--timeout", "0"]) == 2
    err = capsys.readouterr().err
    assert "timed out with 2 of 2 tasks not finished" in err and "only watched" in err


def test_readonly_reads_still_work(env, capsys):
    assert cli.main(["ls", "--readonly"]) == 0
    assert "evolink-running" in capsys.readouterr().out
    assert cli.main(["export", "--readonly"]) == 0
    assert "evolink-done" in capsys.readouterr().out


# ---------------------------------------------------------------- help text everywhere


def _walk(parser: argparse.ArgumentParser, path: str = "tasktui"):
    for action in parser._actions:  # argparse has no public walk of its actions
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", "(the command)", helps.get(name)
                yield from _walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS:
            yield path, "/".join(action.option_strings) or action.dest, action.help


def test_every_subcommand_and_option_has_help_text():
    seen = list(_walk(cli.build_parser()))
    assert len(seen) > 60
    missing = [f"{path}: {name}" for path, name, text in seen if not (text or "").strip()]
    assert missing == []
    commands = {path for path, name, _ in seen if name == "(the command)"}
    assert {"tasktui wait", "tasktui add", "tasktui rm", "tasktui config init"} <= commands
    options = {(path, name) for path, name, _ in seen}
    assert ("tasktui", "--readonly") in options and ("tasktui wait", "--readonly") in options
    assert ("tasktui wait", "--notify") in options


def test_wait_help_lists_the_exit_codes_and_add_help_the_providers(capsys):
    with pytest.raises(SystemExit):
        cli.main(["wait", "--help"])
    text = capsys.readouterr().out
    for line in ("exit codes:", "  0  every matching task succeeded", "  1  every matching task ended",
                 "  2  trouble"):
        assert line in text
    with pytest.raises(SystemExit):
        cli.main(["add", "--help"])
    text = capsys.readouterr().out
    for provider in ("comfy", "upscayl", "qolaba", "freepik", "evolink"):
        assert provider in text


def test_readonly_wait_and_notify_never_import_textual():
    code = ("import sys, tui.watch, tui.notify, tui.cli\n"
            "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if m.startswith('textual'))\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
