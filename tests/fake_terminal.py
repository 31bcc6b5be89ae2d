"""A terminal for tests that speaks the graphics protocols: a pty whose far end
this module holds, answering the queries a program asks at start (the Kitty
graphics query, ``CSI 16 t``, DA1) the way a chosen terminal would, recording
everything written to it, plus a Sixel decoder and a Kitty upload reader to check
what was drawn.

The answers follow the terminals' documents:

- kitty's graphics protocol page, "Querying support and available transmission
  mediums": ``ESC _G i=<id>;OK ESC \\`` to the query, nothing from a terminal
  without the protocol (or an error such as ``ENOTSUPPORTED``);
- xterm's control sequences, window operations: ``CSI 16 t`` is answered
  ``CSI 6 ; height ; width t``;
- DA1 (VT330/VT340 Programmer Reference Manual): ``CSI ? 62 ; 4 ; 22 c``, where
  ``4`` is Sixel graphics; kitty answers ``CSI ? 62 ; c`` (no Sixel).
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass

KITTY_QUERY = re.compile(rb"\x1b_Gi=(\d+),[^;\x1b]*a=q[^;\x1b]*;[^\x1b]*\x1b\\")
DA1_QUERY = b"\x1b[c"
CELL_QUERY = b"\x1b[16t"


@dataclass
class Personality:
    """How the fake terminal answers: ``kitty`` (say OK to the graphics query),
    ``sixel`` (a 4 in DA1), ``cell`` (pixels, answered to CSI 16 t, or None)."""

    kitty: bool = False
    sixel: bool = False
    cell: tuple[int, int] | None = (10, 20)
    silent: bool = False  # answers nothing at all


KITTY = Personality(kitty=True)
XTERM_SIXEL = Personality(sixel=True)
PLAIN = Personality()


class FakeTerminal:
    """A program run on a pty of ``cols`` x ``rows`` cells; ``output`` is every byte
    it wrote; queries are answered as ``personality`` says."""

    def __init__(self, argv: list[str], env: dict[str, str], personality: Personality,
                 cols: int = 140, rows: int = 40) -> None:
        self.personality = personality
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.output = b""
        self.answered = 0
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._cond.notify_all()
                    return
                self.output += chunk
                self._answer()
                self._cond.notify_all()

    def _answer(self) -> None:
        """Answer each DA1 query (with what came before it) once."""
        while self.output.count(DA1_QUERY) > self.answered:
            self.answered += 1
            p = self.personality
            if p.silent:
                continue
            reply = b""
            head = self.output[:_nth(self.output, DA1_QUERY, self.answered)]
            query = None
            for query in KITTY_QUERY.finditer(head):
                pass
            if query is not None and p.kitty:
                reply += b"\x1b_Gi=%s;OK\x1b\\" % query.group(1)
            if CELL_QUERY in head and p.cell:
                reply += b"\x1b[6;%d;%dt" % (p.cell[1], p.cell[0])
            reply += b"\x1b[?62;4;22c" if p.sixel else b"\x1b[?62;22c"
            os.write(self.master, reply)

    def wait_for(self, predicate, timeout: float = 60.0) -> bytes:
        """Wait until ``predicate(output)`` holds (a bounded wait: the process may die)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.output):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"never seen; the last output:\n{self.output[-3000:]!r}")
                self._cond.wait(min(left, 1.0))
            return self.output

    def mark(self) -> int:
        with self._cond:
            return len(self.output)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        try:
            os.close(self.master)
        except OSError:
            pass


def _nth(data: bytes, needle: bytes, n: int) -> int:
    pos = -1
    for _ in range(n):
        pos = data.index(needle, pos + 1)
    return pos


# ------------------------------------------------------------------ reading what was drawn

UPLOAD = re.compile(rb"\x1b_Ga=t,([^;\x1b]*);([A-Za-z0-9+/=]*)\x1b\\((?:\x1b_Gq=2,m=[01];[A-Za-z0-9+/=]*\x1b\\)*)")
MORE = re.compile(rb"\x1b_Gq=2,m=[01];([A-Za-z0-9+/=]*)\x1b\\")
PLACE = re.compile(rb"\x1b_Ga=p,U=1,i=(\d+),c=(\d+),r=(\d+),q=2\x1b\\")


def kitty_uploads(output: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Every Kitty image transmission in ``output``: (its keys, the decoded payload)."""
    found = []
    for m in UPLOAD.finditer(output):
        keys = dict(kv.split("=", 1) for kv in m.group(1).decode().split(","))
        data = m.group(2) + b"".join(MORE.findall(m.group(3)))
        found.append((keys, base64.standard_b64decode(data)))
    return found


SIXEL = re.compile(rb"\x1bP[0-9;]*q(.*?)\x1b\\", re.DOTALL)


def decode_sixel(body: bytes) -> tuple[tuple[int, int], dict[tuple[int, int], tuple[int, int, int]]]:
    """A Sixel body (what follows ``q``) as (declared size, {(x, y): (r, g, b) in
    percent}) of the pixels it sets (the format of the VT330/VT340 manual, ch. 14:
    ``"`` raster attributes, ``#n;2;r;g;b`` colours, ``#n`` select, ``?``..``~``
    six pixels, ``!n`` repeat, ``$`` carriage return, ``-`` next band)."""
    palette: dict[int, tuple[int, int, int]] = {}
    pixels: dict[tuple[int, int], tuple[int, int, int]] = {}
    size = (0, 0)
    colour, x, band, i, repeat = 0, 0, 0, 0, 1
    number = re.compile(rb"[0-9;]*")
    while i < len(body):
        c = body[i:i + 1]
        if c == b'"':
            m = number.match(body, i + 1)
            parts = [int(p) for p in m.group(0).split(b";") if p]
            size = (parts[2], parts[3]) if len(parts) >= 4 else size
            i = m.end()
        elif c == b"#":
            m = number.match(body, i + 1)
            parts = [int(p) for p in m.group(0).split(b";") if p]
            if len(parts) == 5 and parts[1] == 2:
                palette[parts[0]] = (parts[2], parts[3], parts[4])
            colour = parts[0]
            i = m.end()
        elif c == b"!":
            m = number.match(body, i + 1)
            repeat = int(m.group(0))
            i = m.end()
        elif c == b"$":
            x, i = 0, i + 1
        elif c == b"-":
            x, band, i = 0, band + 1, i + 1
        elif b"?" <= c <= b"~":
            bits = c[0] - 63
            for _ in range(repeat):
                for r in range(6):
                    if bits >> r & 1:
                        pixels[(x, band * 6 + r)] = palette[colour]
                x += 1
            repeat, i = 1, i + 1
        else:
            i += 1
    return size, pixels
