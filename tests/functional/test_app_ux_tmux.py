"""Issue 13 gaps 3, 4, 8, 9 on the installed ``tasktui`` in a real terminal (tmux),
polling ``tasktui simulate`` over 127.0.0.1 (the fixture of tests/functional/test_tmux.py):
the freshness the engine writes through the store reaches the detail and the
POLLED column; ``t`` turns the times absolute; the quota table opens a card;
the detail's copy keys land in the terminal's clipboard (OSC 52, a tmux buffer).
Every step waits for text on the screen, never a fixed time."""

from __future__ import annotations

import re
import shlex
import time

import pytest

from test_tmux import PrivateTmux, rows, select, simulated  # noqa: F401  (simulated is a fixture)

pytestmark = [pytest.mark.tmux]


def wait_buffer(term: PrivateTmux, want: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while term.buffer().strip() != want:
        assert time.monotonic() < deadline, f"clipboard: {term.buffer()!r}, wanted {want!r}"
        time.sleep(0.1)  # polling interval, not a wait for the app


def test_freshness_times_quota_table_and_copy_in_a_real_terminal(simulated):  # noqa: F811
    tasktui, env, config = simulated
    term = PrivateTmux(100, 30, shlex.quote(tasktui), env)
    try:
        term.wait_for("▶ running")
        # the POLLED column: L shows it, filled by the engine (through the store) for a polled task
        term.press("L")
        text = term.wait_for("POLLED")
        term.wait_for_line(lambda s: any(r.rstrip().endswith("ago") or r.rstrip().endswith("now")
                                         for r in rows(s) if "charlie" in r), "charlie's last poll")
        # the detail: last polled and next poll, as the engine planned them
        select(term, "task-unified-charlie")
        term.press("Enter")
        term.wait_for("last polled")
        term.wait_for_line(lambda s: re.search(r"last polled\s+\d{4}-\d\d-\d\dT", s) is not None,
                           "a last-polled time")
        term.wait_for_line(lambda s: re.search(r"next poll\s+(in \d+[smhdw]|due now|overdue)", s) is not None,
                           "a next poll")
        # copy the id and the raw answer (OSC 52 -> the tmux buffer)
        term.press("i")
        wait_buffer(term, "task-unified-charlie")
        term.press("J")
        deadline = time.monotonic() + 30
        while '"task-unified-charlie"' not in term.buffer() or "sim-key-evolink" in term.buffer():
            assert time.monotonic() < deadline, f"clipboard: {term.buffer()!r}"
            time.sleep(0.1)
        # t: absolute times, in the detail at once
        term.press("t")
        term.wait_for_line(lambda s: re.search(r"last polled\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s*$", s, re.M)
                           is not None, "an absolute last-polled time")
        term.press("Escape")
        term.wait_for("last polled", absent=True)
        term.wait_for_line(lambda s: all(not r.rstrip().endswith("ago") for r in rows(s)), "no relative time")
        term.press("t")
        # the quota table (v at this width), enter opens the provider's card
        term.press("v")
        text = term.wait_for("REQUESTS")
        assert "evolink" in text and "qolaba" in text
        term.press("Enter")
        term.wait_for("enter: the provider's card")
        term.wait_for_line(lambda s: re.search(r"^\s*requests\s+\d", s, re.M) is not None, "a provider's card")
        term.press("Escape")
    finally:
        term.kill()
