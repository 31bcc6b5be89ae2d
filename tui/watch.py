"""``poll`` and ``wait`` read-only (``--readonly``, ``TASKTUI_READONLY=1``,
``[ui] readonly``): they never ask a provider and never write.

``poll`` prints the stored state, saying it did not poll.  ``wait`` watches
the database (opened read-only) until every matching task has ended, as
another process (a dashboard, ``tasktui collect``) polls and stores the
answers; it keeps ``wait``'s exit codes and its ``--timeout``, counted from
process start.  Like the other headless commands, no Textual here.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .headless import (EXIT_TROUBLE, _not_succeeded, _print_tasks, _say, _timeout_left, _wait_code,
                       cmd_ls, command, matcher, open_store)

WATCH_EVERY = 0.25  # seconds between two reads of what other processes stored


def cmd_poll_readonly(args: Any) -> int:
    _say("tasktui: read-only: not polled; the stored state follows")
    return cmd_ls(args)


@command
def cmd_wait_readonly(args: Any) -> int:
    timeout = _timeout_left(args.timeout)
    pred = matcher(args.filter)
    store = open_store(args, readonly=True)
    try:
        keys = [t.key for t in store.tasks() if pred(t)]
        if not keys:
            _say("tasktui: no tasks match" + (f" the filter {args.filter!r}" if args.filter
                                               else ": nothing is tracked"))
            if args.json:
                print("[]")
            return EXIT_TROUBLE
        tty = sys.stderr.isatty()
        deadline = None if timeout is None else time.monotonic() + timeout
        said = None
        told = False
        while True:
            tasks = [t for t in (store.get(k) for k in keys) if t is not None]
            live = [t for t in tasks if not t.terminal]
            if not live:
                code, message = _wait_code(tasks), None
                break
            if not told:
                _say("tasktui: read-only: watching the task database; nothing is polled here"
                     " (a dashboard or `tasktui collect` must poll)")
                told = True
            if tty:
                line = f"waiting: {len(tasks) - len(live)}/{len(tasks)} done (read-only)"
                if line != said:
                    _say(line)
                    said = line
            if deadline is not None and time.monotonic() >= deadline:
                code = EXIT_TROUBLE
                message = f"timed out with {len(live)} of {len(tasks)} tasks not finished (read-only: only watched)"
                break
            pause = WATCH_EVERY if deadline is None else max(0.0, min(WATCH_EVERY, deadline - time.monotonic()))
            time.sleep(pause)  # the interval between two reads of the file, not a wait for an event
            store.sync()
        if message:
            _say(f"tasktui: {message}")
        tasks = [t for t in (store.get(k) for k in keys) if t is not None]
        if args.json:
            _print_tasks(tasks, True)
        else:
            bad = _not_succeeded(tasks)
            if bad:
                _say(f"{len(bad)} of {len(tasks)} tasks did not succeed:")
                for line in bad:
                    _say(f"  {line}")
        return code
    finally:
        store.close()
