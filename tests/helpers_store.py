"""Writer processes for the store's cross-process and crash tests.

Run as a script: ``python tests/helpers_store.py COMMAND DB ...``.  Each prints one
line per acknowledged write, *after* the store call returned, and flushes it.

    adder DB PREFIX BATCH          add ids PREFIX0, PREFIX1 ... BATCH per add(), forever
    applier DB TASKS               apply rounds forever: every task gets provider_status "r<N>",
                                   one event and counters {"round": N} per round
    burst DB PREFIX COUNT          print "ready", wait for a line on stdin, then add COUNT
                                   ids one add() each; prints "done" or "error <repr>"
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.model import Event, Task  # noqa: E402
from tui.store import Store  # noqa: E402

PROVIDER = "evolink"


def adder(db: str, prefix: str, batch: str) -> None:
    size = int(batch)
    store = Store(db)
    i = 0
    while True:
        ids = [f"{prefix}{n}" for n in range(i, i + size)]
        store.add(PROVIDER, ids, label="crash")
        print("\n".join(ids), flush=True)
        i += size


def applier(db: str, tasks: str) -> None:
    n = int(tasks)
    store = Store(db)
    ids = [f"t{k}" for k in range(n)]
    store.add(PROVIDER, ids)
    last = store.counters().get(PROVIDER, {}).get("round", 0)
    rnd = last
    while True:
        rnd += 1
        updates = [Task(PROVIDER, i, state="running", provider_status=f"r{rnd}",
                        progress=float(rnd % 100), raw={"round": rnd}) for i in ids]
        event = Event(time=float(rnd), provider=PROVIDER, message=f"round {rnd}", kind="info")
        store.apply(updates, [event], counters={PROVIDER: {"round": rnd}})
        print(rnd, flush=True)


def burst(db: str, prefix: str, count: str) -> None:
    store = Store(db)
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        for k in range(int(count)):
            store.add(PROVIDER, [f"{prefix}{k}"])
    except Exception as exc:  # the test wants to see any error, "database is locked" above all
        print(f"error {exc!r}", flush=True)
        sys.exit(1)
    print("done", flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"adder": adder, "applier": applier, "burst": burst}[command](*args)
