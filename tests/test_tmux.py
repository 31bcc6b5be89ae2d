"""The real ``tasktui`` in a real terminal (tmux): start it on a prepared
store with ``--offline``, wait for text on the screen, press keys, read the
screen again.  Never sleeps a fixed time: every step polls capture-pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from test_app_fixtures import fill_store

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.tmux,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


class Tmux:
    def __init__(self, width: int, height: int, command: str, env: dict[str, str]) -> None:
        self.name = f"tasktui-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = f"cd {shlex.quote(str(ROOT))} && env {exports} {command}; echo EXITED:$?; sleep 600"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        "bash", "-c", script], check=True, env={**os.environ, "TMUX": ""})

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout

    def press(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def wait_for(self, needle: str, timeout: float = 60.0, absent: bool = False) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if (needle in text) != absent:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} {'still' if absent else 'never'} on screen:\n{text}")
            time.sleep(0.1)  # polling interval, not a wait for the app

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def prepared(tmp_path):
    store = fill_store(tmp_path / "tasks.db")
    store.close()
    (tmp_path / "config.toml").write_text("# empty: offline dashboard\n", encoding="utf-8")
    env = {"TASKTUI_DB": str(tmp_path / "tasks.db"), "TASKTUI_CONFIG": str(tmp_path / "config.toml"),
           "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    return env


def start(env, width=140, height=40) -> Tmux:
    return Tmux(width, height, f"{shlex.quote(sys.executable)} -m tui --offline", env)


def test_dashboard_in_a_real_terminal(prepared):
    term = start(prepared)
    try:
        for needle in ("comfy-task-000", "PROVIDER", "OFFLINE", "▶ running", "Filter"):
            term.wait_for(needle)
        term.press("/")
        term.wait_for("of 20")
        term.type("batch")
        term.wait_for("7 of 20")
        term.wait_for("upscayl-task-001", absent=True)  # no batch label: filtered out
        term.press("Enter")  # keep the filter, back to the list
        term.press("Enter")  # open the selected task
        term.wait_for("State history")
        term.wait_for("Last answer from the provider")
        term.press("Escape")
        term.wait_for("State history", absent=True)
        term.press("Escape")  # clears the filter
        term.wait_for("upscayl-task-001")
        term.press("q")
        term.wait_for("EXITED:0")
    finally:
        term.kill()


def test_dashboard_at_80x24(prepared):
    term = start(prepared, 80, 24)
    try:
        term.wait_for("comfy-task-000")
        text = term.wait_for("Filter")  # the footer: the layout has settled
        lines = text.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        assert "Filter" in lines[-1]  # the footer stays on the last line
        assert "provider" in text  # the summary pane sits under the list
        term.press("q")
        term.wait_for("EXITED:0")
    finally:
        term.kill()


def test_dashboard_exits_when_the_terminal_goes_away(prepared):
    term = Tmux(140, 40, f"{shlex.quote(sys.executable)} -m tui --offline", prepared)
    try:
        term.wait_for("comfy-task-000")
        shell = subprocess.run(["tmux", "list-panes", "-t", term.name, "-F", "#{pane_pid}"],
                               capture_output=True, text=True, check=True).stdout.split()[0]
        found = subprocess.run(["pgrep", "-P", shell, "-f", "tui --offline"], capture_output=True, text=True)
        pid = int(found.stdout.split()[0])
    finally:
        term.kill()  # the pty closes: the app gets SIGHUP, like a dropped SSH session
    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "tasktui still running after its terminal went away"
        time.sleep(0.1)


def test_demo_polls_the_simulator_live(tmp_path):
    env = {"TERM": "xterm-256color", "TASKTUI_CONFIG": str(tmp_path / "unused.toml"),
           "TASKTUI_DB": str(tmp_path / "unused.db")}
    term = Tmux(140, 40, f"{shlex.quote(sys.executable)} -m tui demo --tasks 20 --speed 4", env)
    try:
        term.wait_for("PROVIDER")
        term.wait_for("succeeded")  # states arrive from the simulator over 127.0.0.1
        term.wait_for("● ok")  # the quota pane shows live provider health
        term.press("p")
        term.wait_for("PAUSED")
        term.press("q")
        term.wait_for("EXITED:0")
    finally:
        term.kill()
    assert not (tmp_path / "unused.db").exists()  # the demo never touches the user's store
