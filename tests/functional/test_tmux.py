"""The real ``tasktui`` in a real terminal (tmux): start it on a prepared
store with ``--offline``, wait for text on the screen, press keys, read the
screen again.  Never sleeps a fixed time: every step polls capture-pane."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from test_app_fixtures import fill_store

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.tmux,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


class Tmux:
    def __init__(self, width: int, height: int, command: str, env: dict[str, str]) -> None:
        self.name = f"tasktui-test-{uuid.uuid4().hex[:8]}"
        # A tmux server of its own (-L): a shared one hands every new session the
        # environment of whichever test started it (tests run in parallel workers).
        self.tmux = ["tmux", "-L", self.name, "-f", "/dev/null"]
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = f"cd {shlex.quote(str(ROOT))} && env {exports} {command}; echo EXITED:$?; sleep 600"
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        "bash", "-c", script], check=True, env={**os.environ, "TMUX": ""})

    def screen(self, escapes: bool = False) -> str:
        """The pane's text; with ``escapes``, its colours and attributes too (SGR codes)."""
        return subprocess.run([*self.tmux, "capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.name],
                              capture_output=True, text=True).stdout

    def wait_restyled(self, line: int, before: str, timeout: float = 60.0) -> None:
        """Wait until ``line`` of the screen (with its styles) differs from ``before``:
        e.g. a table's cursor row that turns bright when the table takes the focus."""
        deadline = time.monotonic() + timeout
        while self.screen(escapes=True).splitlines()[line:line + 1] == [before]:
            if time.monotonic() > deadline:
                raise AssertionError(f"line {line} never changed: {before!r}")
            time.sleep(0.1)  # polling interval, not a wait for the app

    def press(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, "-l", text], check=True)

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
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


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
        # the list has the focus once the footer offers its keys (a second Enter sent
        # before that could still reach the filter)
        term.wait_for("⏎ Detail")
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
        shell = subprocess.run([*term.tmux, "list-panes", "-t", term.name, "-F", "#{pane_pid}"],
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


# ---------------------------------------------------------------- daily driver, end to end (issue #13)
#
# The installed `tasktui` (the console script beside this Python) against
# `tasktui simulate` over 127.0.0.1, in a tmux server of its own (its own
# socket, no user config, set-clipboard on: an OSC 52 copy lands in a tmux
# buffer the test can read).


def installed_tasktui() -> str:
    script = Path(sys.executable).parent / "tasktui"
    if not script.exists():
        pytest.skip("tasktui is not installed beside this Python")
    return str(script)


class PrivateTmux(Tmux):
    """A tmux server of its own (-S), so server options never touch anyone else's."""

    def __init__(self, width: int, height: int, command: str, env: dict[str, str]) -> None:
        import tempfile

        self.socket = os.path.join(tempfile.gettempdir(), f"tasktui-test-{uuid.uuid4().hex[:8]}.tmux")
        self.name = "main"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = f"cd {shlex.quote(str(ROOT))} && env {exports} {command}; echo EXITED:$?; sleep 600"
        subprocess.run(self._tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                                  "bash", "-c", script), check=True, env={**os.environ, "TMUX": ""})
        subprocess.run(self._tmux("set-option", "-s", "set-clipboard", "on"), check=True)

    def _tmux(self, *args: str) -> list[str]:
        return ["tmux", "-S", self.socket, "-f", "/dev/null", *args]

    def screen(self, escapes: bool = False) -> str:
        return subprocess.run(self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.name),
                              capture_output=True, text=True).stdout

    def press(self, *keys: str) -> None:
        subprocess.run(self._tmux("send-keys", "-t", self.name, *keys), check=True)

    def type(self, text: str) -> None:
        subprocess.run(self._tmux("send-keys", "-t", self.name, "-l", text), check=True)

    def buffer(self) -> str:
        return subprocess.run(self._tmux("show-buffer"), capture_output=True, text=True).stdout

    def app_pid(self) -> int:
        shell = subprocess.run(self._tmux("list-panes", "-t", self.name, "-F", "#{pane_pid}"),
                               capture_output=True, text=True, check=True).stdout.split()[0]
        found = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True)
        return int(found.stdout.split()[0])

    def wait_for_line(self, predicate, what: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never on screen:\n{text}")
            time.sleep(0.1)  # polling interval, not a wait for the app

    def kill(self) -> None:
        subprocess.run(self._tmux("kill-server"), capture_output=True)
        try:
            os.unlink(self.socket)
        except OSError:
            pass


@pytest.fixture
def simulated(tmp_path):
    """`tasktui simulate` serving a fixed scenario (frozen clock), a config
    pointing two providers at it, and five tasks added with `tasktui add`."""
    from tui.sim import Fault, build_scenario, sim_task

    tasktui = installed_tasktui()
    build_scenario(
        sim_task("evolink", "task-unified-alpha", "succeeded"),
        sim_task("evolink", "task-unified-bravo", "failed"),
        sim_task("evolink", "task-unified-charlie", "running", end=10**6),
        sim_task("qolaba", "qol-delta", "succeeded"),
        sim_task("qolaba", "qol-echo", "running", end=10**6),
        faults=[Fault(kind="server_error", provider="qolaba", task_id="qol-echo", status=500)],
    ).dump(tmp_path / "scenario.json")
    sim = subprocess.Popen([tasktui, "simulate", "--port", "0", "--scenario", str(tmp_path / "scenario.json"),
                            "--speed", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in sim.stdout:  # its first line names the address
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "tasktui simulate printed no address"
        config = tmp_path / "config.toml"
        config.write_text("".join(f'[providers.{p}]\napi_key = "sim-key-{p}"\nbase_url = "{url}"\n'
                                  f"poll_interval = 0.5\n\n" for p in ("evolink", "qolaba")), encoding="utf-8")
        config.chmod(0o600)
        env = {"TASKTUI_DB": str(tmp_path / "tasks.db"), "TASKTUI_CONFIG": str(config),
               "TERM": "xterm-256color", "COLORTERM": "truecolor",
               "SSH_CONNECTION": "10.0.0.1 50000 10.0.0.2 22"}  # over SSH: `o` copies instead of opening
        for argv in (["add", "evolink", "task-unified-alpha", "task-unified-bravo", "task-unified-charlie"],
                     ["add", "qolaba", "qol-delta", "qol-echo"]):
            subprocess.run([tasktui, *argv], env={**os.environ, **env}, check=True, capture_output=True)
        yield tasktui, env, config
    finally:
        sim.kill()  # this test's own simulator, by its process
        sim.wait()


def rows(text: str) -> list[str]:
    """The task list's rows (provider first) of a screen."""
    return [line for line in text.splitlines() if line.lstrip("*").lstrip().startswith(("evolink ", "qolaba "))]


def select(term: PrivateTmux, task_id: str) -> None:
    """Move the list's cursor to ``task_id`` with the arrow keys, one key and
    one redraw at a time (the summary pane names the selected task)."""
    for _ in range(20):
        text = term.wait_for_line(lambda s: re.search(r"task id  (\S+)", s), "a selected task")
        current = re.search(r"task id  (\S+)", text).group(1)
        if current == task_id:
            return
        ids = [r.lstrip("*").split()[1] for r in rows(text)]
        term.press("Down" if ids.index(task_id) > ids.index(current) else "Up")
        term.wait_for_line(lambda s, c=current: f"task id  {c}" not in s, "the cursor moved")
    raise AssertionError(f"could not select {task_id}")


def ls_ids(tasktui: str, env: dict[str, str]) -> set[str]:
    import json

    out = subprocess.run([tasktui, "ls", "--json"], env={**os.environ, **env}, check=True,
                         capture_output=True, text=True).stdout
    return {t["task_id"] for t in json.loads(out)}


def test_daily_driver_end_to_end_against_the_simulator(simulated):
    tasktui, env, config = simulated
    term = PrivateTmux(120, 30, shlex.quote(tasktui), env)
    try:
        # polled live: every state arrives from the simulator
        term.wait_for("✓ succeeded")
        term.wait_for("✗ failed")
        term.wait_for("▶ running")

        # open over SSH: the URL is copied (OSC 52), tmux keeps it in a buffer
        select(term, "task-unified-alpha")
        term.press("o")
        term.wait_for("copied the URL instead")
        deadline = time.monotonic() + 30
        while term.buffer().strip() != "https://sim.tasktui.invalid/evolink/task-unified-alpha/0.png":
            assert time.monotonic() < deadline, f"clipboard: {term.buffer()!r}"
            time.sleep(0.1)

        # column sort: > steps to the next column, S reverses; the order on screen follows
        term.press(">", ">", ">")
        text = term.wait_for("sort: provider")
        providers = [r.split()[0].lstrip("*") for r in rows(text)]
        assert providers == sorted(providers), providers
        term.press("S")
        text = term.wait_for("reversed")
        providers = [r.split()[0].lstrip("*") for r in rows(text)]
        assert providers == sorted(providers, reverse=True), providers

        # the error log: a row of qol-echo's failing polls, g jumps to that task in the list
        term.press("e")
        term.wait_for("Error log")
        term.wait_for_line(lambda s: "qol-echo" in s and "500" in s, "qol-echo's error")
        text = term.screen()
        lines = [line for line in text.splitlines()[2:] if line.strip()]
        down = next(i for i, line in enumerate(lines) if "qol-echo" in line and "500" in line)
        if down:
            term.press(*["Down"] * down)
        term.press("g")
        term.wait_for("Error log", absent=True)
        term.wait_for_line(lambda s: "task id  qol-echo" in s, "the jump's task in the summary")

        # marks + bulk forget: space marks the selected task (and moves down), x forgets the marks
        for n, task_id in enumerate(("task-unified-bravo", "task-unified-charlie"), 1):
            select(term, task_id)
            term.press("Space")
            term.wait_for(f"* {n} marked")
            # space moved the cursor down: wait for the summary to follow before selecting again
            term.wait_for_line(lambda s, t=task_id: f"task id  {t}" not in s, "the cursor moved down")
        text = term.screen()
        assert sorted(r.split()[1] for r in rows(text) if r.startswith("*")) == \
            ["task-unified-bravo", "task-unified-charlie"]
        term.press("x")
        term.wait_for("Forget 2 marked tasks?")
        term.press("y")
        term.wait_for("Forgot 2 tasks")
        text = term.wait_for("task-unified-bravo", absent=True)
        assert "task-unified-charlie" not in text
        assert ls_ids(tasktui, env) == {"task-unified-alpha", "qol-delta", "qol-echo"}

        # SIGHUP while the terminal is there: the config reloads, the app keeps running
        with config.open("a", encoding="utf-8") as f:
            f.write('[ui]\nsaved_filters = { fails = "state:bad" }\n')
        os.kill(term.app_pid(), signal.SIGHUP)
        term.wait_for("Config reloaded (SIGHUP)")
        term.press("1")
        term.wait_for("/ state:bad")
        term.press("q")
        term.wait_for("EXITED:0")
    finally:
        term.kill()


def test_readonly_dashboard_in_a_real_terminal(prepared, tmp_path):
    """TASKTUI_READONLY=1: READ-ONLY in the header, no Add/Forget/Refresh in the
    footer, a and x do nothing, and the database file is left byte for byte."""
    import hashlib

    db = Path(prepared["TASKTUI_DB"])
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    term = Tmux(120, 30, f"{shlex.quote(installed_tasktui())}", {**prepared, "TASKTUI_READONLY": "1"})
    try:
        text = term.wait_for("READ-ONLY")
        text = term.wait_for("Filter")  # the footer is drawn
        footer = text.splitlines()[-1]
        assert "Add" not in footer and "Forget" not in footer and "Refresh" not in footer
        term.press("a")
        term.press("x")
        term.press("?")  # a screen that does open: the keys before it were handled (and did nothing)
        text = term.wait_for("this screen")
        assert "Track" not in text and "Forget " not in text  # no add form, no question
        assert "track tasks" not in text and "stop tracking" not in text  # nor in the help's keys
        term.press("Escape")
        term.wait_for("this screen", absent=True)
        term.press("q")
        term.wait_for("EXITED:0")
    finally:
        term.kill()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
