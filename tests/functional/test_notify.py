"""tui/notify.py builds the terminal desktop notifications (OSC 9, OSC 777,
tmux passthrough) and keeps provider text inert in them; ``wait --notify``
writes one to the terminal when it ends (a real pty)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui import notify

ROOT = Path(__file__).resolve().parents[2]


def test_osc9_and_osc777_sequences():
    # OSC 9: ESC ] 9 ; message BEL (iTerm2's "Post a notification", https://iterm2.com/documentation-escape-codes.html)
    assert notify.sequence("osc9", "tasktui", "3 tasks ended") == "\x1b]9;tasktui: 3 tasks ended\x07"
    # OSC 777: ESC ] 777 ; notify ; title ; body BEL (urxvt's notify extension, VTE, foot)
    assert notify.sequence("osc777", "tasktui", "3 tasks ended") == "\x1b]777;notify;tasktui;3 tasks ended\x07"
    assert notify.sequence("bogus", "t", "b") == ""


def test_modes():
    assert notify.mode_of("osc9") == "osc9" and notify.mode_of("osc777") == "osc777"
    for value in (True, False, "off", None, "OSC9", 9):
        assert notify.mode_of(value) is None
    assert notify.notification("off", "t", "b", env={}) == ""
    assert notify.notification(True, "t", "b", env={}) == ""


def test_tmux_passthrough_doubles_every_escape():
    # tmux FAQ: "\ePtmux;" + the sequence with each ESC doubled + "\e\\" (allow-passthrough on)
    wrapped = notify.notification("osc777", "tasktui", "done", env={"TMUX": "/tmp/tmux-0/default,1,0"})
    assert wrapped == "\x1bPtmux;\x1b\x1b]777;notify;tasktui;done\x07\x1b\\"
    assert notify.notification("osc9", "tasktui", "done", env={}) == "\x1b]9;tasktui: done\x07"
    assert notify.notification("osc9", "tasktui", "done", env={"TMUX": ""}) == "\x1b]9;tasktui: done\x07"


HOSTILE = [
    "fin\x1b]9;pwned\x07ished",  # a whole OSC 9 of its own
    "a\x07b\x1b\\c",  # BEL and ST that would end ours early
    "x\x9d9;pwned\x9cy",  # 8-bit OSC and ST
    "\x1bPtmux;\x1b\x1b]52;c;aGFjaw==\x07\x1b\\",  # a tmux passthrough carrying a clipboard write
    "line\nbreak\r\x00nul\x7fdel\x1b[31mred",
]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("mode", ["osc9", "osc777"])
def test_provider_text_cannot_escape_the_sequence(text, mode):
    for env in ({}, {"TMUX": "x"}):
        out = notify.notification(mode, text, text, env=env)
        seq = out.removeprefix("\x1bPtmux;").removesuffix("\x1b\\").replace("\x1b\x1b", "\x1b")
        assert seq.count("\x1b") == 1 and seq.count("\x07") == 1 and seq.endswith("\x07")
        inner = seq[1:-1]
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in inner), repr(inner)
        assert "52;c" not in inner or "\x1b" not in inner


def test_title_separators_and_conemu_codes():
    # a ';' in the title would shift OSC 777's fields; the body keeps it
    assert notify.sequence("osc777", "a;b", "c;d") == "\x1b]777;notify;a,b;c;d\x07"
    # ConEmu reads "OSC 9 ; <digits> ;" as its own command (progress, tab titles)
    assert notify.sequence("osc9", "", "4;1;50") == "\x1b]9; 4;1;50\x07"
    long = notify.sequence("osc9", "t", "x" * 1000)
    assert len(long) < notify.BODY_LIMIT + notify.TITLE_LIMIT + 16


def test_send_writes_to_the_stream_given_and_nowhere_without_a_terminal(monkeypatch):
    out = io.StringIO()
    assert notify.send("osc9", "tasktui wait", "ok", env={}, stream=out)
    assert out.getvalue() == "\x1b]9;tasktui wait: ok\x07"
    assert not notify.send("off", "t", "b", stream=out)
    monkeypatch.setattr(notify, "_terminal", lambda: None)  # a CI job: no tty at all
    assert not notify.send("osc9", "t", "b", env={})


def _run_in_pty(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``python -m tui ARGS`` with stderr on a pty (stdout piped, as in
    ``wait --json | jq``); return (exit code, every byte written to the pty)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tui", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its side (it exited)
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.stdout.read()
    code = proc.wait(timeout=60)
    os.close(master)
    return code, b"".join(chunks)


@pytest.fixture
def ended_store(tmp_path):
    from tui.store import Store
    from tui.model import Task

    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["job-1", "job-2"])
    store.apply([Task(provider="evolink", task_id="job-1", state="succeeded"),
                 Task(provider="evolink", task_id="job-2", state="failed", error="boom")])
    store.close()
    (tmp_path / "config.toml").write_text('[ui]\nnotify = "osc777"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TASKTUI_READONLY")}
    env.update(TASKTUI_DB=str(tmp_path / "tasks.db"), TASKTUI_CONFIG=str(tmp_path / "config.toml"))
    return env


def test_wait_notify_writes_to_the_terminal_when_it_ends(ended_store):
    code, written = _run_in_pty(["wait", "--notify", "--filter", "state:failed"], ended_store)
    assert code == 1  # a failed task among those waited for
    # auto: [ui] notify = "osc777" from the config
    assert (b"\x1b]777;notify;tasktui wait;every matching task ended; some did not succeed"
            b" (filter state:failed)\x07") in written


def test_wait_notify_inside_tmux_and_explicit_mode(ended_store):
    env = {**ended_store, "TMUX": "/tmp/tmux-1000/default,1,0"}
    code, written = _run_in_pty(["wait", "--notify", "osc9", "--filter", "state:succeeded", "--json"], env)
    assert code == 0
    assert b"\x1bPtmux;\x1b\x1b]9;tasktui wait: every matching task succeeded (filter state:succeeded)\x07\x1b\\" \
        in written


def test_wait_without_notify_writes_no_notification(ended_store):
    code, written = _run_in_pty(["wait", "--filter", "state:succeeded"], ended_store)
    assert code == 0 and b"\x1b]" not in written


def test_the_dashboard_writes_it_through_its_terminal_driver(tmp_path):
    """The real dashboard on a pty: when another process stores the end of the
    last running task, OSC 9 reaches the terminal (through the driver's writer)."""
    import fcntl
    import pty
    import struct
    import termios
    import threading
    import time

    from tui.model import Task
    from tui.store import Store

    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["job-0"])
    store.apply([Task(provider="evolink", task_id="job-0", state="running")])
    store.close()
    (tmp_path / "config.toml").write_text('[ui]\nnotify = "osc9"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TASKTUI_READONLY")}
    env.update(TASKTUI_DB=str(tmp_path / "tasks.db"), TASKTUI_CONFIG=str(tmp_path / "config.toml"),
               TERM="xterm-256color")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--offline"], cwd=ROOT, env=env, stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = bytearray()

    def pump() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def wait_for(needle: bytes, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in seen:
            assert proc.poll() is None, bytes(seen[-2000:])
            assert time.monotonic() < deadline, f"{needle!r} never written"
            time.sleep(0.05)  # polling what the reader thread gathered

    try:
        wait_for(b"job-0")  # the first frame is up
        assert b"\x1b]9;" not in seen
        writer = Store(tmp_path / "tasks.db")  # another process ends the task
        writer.apply([Task(provider="evolink", task_id="job-0", state="succeeded")])
        writer.close()
        wait_for(b"\x1b]9;tasktui: 1 task ended: 1 succeeded\x07")
        os.write(master, b"q")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        reader.join(timeout=5)


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("false", False), ('"off"', "off"), ('"osc9"', "osc9"), ('"osc777"', "osc777"),
])
def test_config_notify_values(tmp_path, value, expected):
    from tui.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(f"[ui]\nnotify = {value}\n", encoding="utf-8")
    assert load_config(path).ui.notify == expected


@pytest.mark.parametrize("value, said", [
    ('"osc8"', "'osc8' is not a notification mode (did you mean 'osc9'?)"),
    ("1", "'1' is not a notification mode"),
    ('"OSC9"', "not a notification mode"),
])
def test_config_notify_bad_values_say_why_in_one_line(tmp_path, value, said):
    from tui.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text(f"[ui]\nnotify = {value}\nreadonly = true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    first = str(caught.value).splitlines()[0]
    assert "ui.notify" in first and said in first and "osc777" in first
