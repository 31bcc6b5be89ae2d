"""Pause through the `p` key, checked where it matters: the simulator's request
log (issue #14).  With the worker ignoring ``paused``, this test fails.

A second engine (another provider, its own store, on the same simulator) is
the clock: while it polls ten more times, a paused dashboard that still polled
would have been seen polling too.  Nothing waits a fixed time.
"""

from __future__ import annotations

from test_app_fixtures import plain, wait_for
from tui.app import make_app
from tui.config import load_config, parse_config
from tui.engine import Engine
from tui.store import Store


def _reqs(sim, provider: str) -> list:
    return [r for r in sim.requests if r.provider == provider]


async def test_p_pauses_every_request_and_p_again_resumes(tmp_path, sim):
    path = tmp_path / "config.toml"
    path.write_text(sim.config_toml(("evolink",)).replace(
        "base_url = ", 'poll_interval = 0.1\nrate_limit = "600/s"\nbase_url = '), encoding="utf-8")
    config = load_config(path)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["evolink-running", "evolink-queued"])
    app = make_app(config, store, Engine(config, store), config_path=path)

    witness_store = Store(tmp_path / "witness.db")
    witness_store.add("qolaba", ["qolaba-running"])
    witness = Engine(parse_config(
        f'[providers.qolaba]\napi_key = "{sim.key("qolaba")}"\nbase_url = "{sim.base_url}"\n'
        'poll_interval = 0.1\nrate_limit = "600/s"\n'), witness_store, adaptive=False)

    async def witness_polls(n: int) -> None:
        seen = len(_reqs(sim, "qolaba"))
        await wait_for(pilot, lambda: len(_reqs(sim, "qolaba")) >= seen + n, timeout=60)

    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: len(_reqs(sim, "evolink")) >= 1, timeout=60)  # polling
            await pilot.press("p")
            await wait_for(pilot, lambda: "PAUSED" in plain(app.query_one("#header")))
            await witness.start()
            await witness_polls(3)  # a round that was under way when `p` came has ended
            before = len(_reqs(sim, "evolink"))
            store.add("evolink", ["evolink-done"])  # a new task wakes the paused worker
            await witness_polls(10)
            assert len(_reqs(sim, "evolink")) == before, "a request left while paused"
            await pilot.press("p")
            await wait_for(pilot, lambda: "PAUSED" not in plain(app.query_one("#header")))
            await wait_for(pilot, lambda: "evolink-done" in {r.task_id for r in _reqs(sim, "evolink")},
                           timeout=60)  # polling goes on, the task added meanwhile first among them
    finally:
        await witness.stop()
        witness_store.close()
        store.close()
