"""Terminal desktop notifications: OSC 9 and OSC 777, built as text.

Two escape sequences ask the terminal to show a desktop notification:

- OSC 9 (iTerm2, Windows Terminal, WezTerm, Ghostty, foot, kitty):
  ``ESC ] 9 ; body BEL``
- OSC 777 (urxvt's notify extension, VTE terminals, foot, Ghostty, WezTerm):
  ``ESC ] 777 ; notify ; title ; body BEL``

Inside tmux a sequence reaches the outer terminal only through tmux's DCS
passthrough, ``ESC P tmux ; <sequence, every ESC doubled> ESC \\`` (tmux 3.3+
forwards it with ``set -g allow-passthrough on``; tmux FAQ, "What is the
passthrough escape sequence and how do I use it?").

Title and body are made inert here: ``tui.text.clean`` drops escape sequences
and control characters (a provider's error text can be part of a body), and
the field separator ``;`` of OSC 777 is replaced in the title.  A body whose
start ConEmu would read as one of its own ``OSC 9 ; N`` commands gets a
leading space.  This module writes nothing itself except ``send`` (for the
command line); the dashboard hands the text to its terminal driver.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Mapping, TextIO

from .text import clean

MODES = ("osc9", "osc777")  # the modes that notify; "off" (or a bool) does not
TITLE_LIMIT = 60
BODY_LIMIT = 200
_CONEMU = re.compile(r"^\d+;")  # ConEmu: OSC 9;1..12;... are its own commands


def mode_of(value: object) -> str | None:
    """``[ui] notify`` (or ``--notify``'s value) -> "osc9" / "osc777" / None."""
    return value if isinstance(value, str) and value in MODES else None


def in_tmux(env: Mapping[str, str] | None = None) -> bool:
    return bool((os.environ if env is None else env).get("TMUX"))


def sequence(mode: str, title: str, body: str) -> str:
    """The bare OSC sequence (not wrapped for tmux); "" for an unknown mode."""
    title = clean(title, TITLE_LIMIT).replace(";", ",")
    body = clean(body, BODY_LIMIT)
    if mode == "osc9":
        text = f"{title}: {body}" if title and body else title or body
        if _CONEMU.match(text):
            text = " " + text
        return f"\x1b]9;{text}\x07"
    if mode == "osc777":
        return f"\x1b]777;notify;{title};{body}\x07"
    return ""


def tmux_passthrough(seq: str) -> str:
    """``seq`` wrapped in tmux's DCS passthrough (each ESC inside doubled)."""
    return "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def notification(mode: object, title: str, body: str, *, env: Mapping[str, str] | None = None) -> str:
    """What to write to the terminal for a notification ("" when ``mode`` is
    not a notifying mode), wrapped for tmux when ``$TMUX`` is set."""
    name = mode_of(mode)
    if name is None:
        return ""
    seq = sequence(name, title, body)
    return tmux_passthrough(seq) if seq and in_tmux(env) else seq


def _terminal() -> TextIO | None:
    """Where the command line writes a notification: stderr when it is a
    terminal, else the controlling terminal (stdout and stderr both piped,
    as in ``wait --json | jq``), else nowhere (a CI job)."""
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return sys.stderr
    except (AttributeError, ValueError):
        pass
    try:
        return open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 (closed by send)
    except OSError:
        return None


def send(mode: object, title: str, body: str, *, env: Mapping[str, str] | None = None,
         stream: TextIO | None = None) -> bool:
    """Write a notification to the terminal (the command line's ``wait --notify``).
    True when something was written."""
    text = notification(mode, title, body, env=env)
    if not text:
        return False
    out = stream if stream is not None else _terminal()
    if out is None:
        return False
    try:
        out.write(text)
        out.flush()
        return True
    except (OSError, ValueError):
        return False
    finally:
        if stream is None and out is not sys.stderr:
            try:
                out.close()
            except OSError:
                pass
