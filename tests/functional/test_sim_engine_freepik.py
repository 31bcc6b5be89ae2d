"""Regression: with Freepik's default budget (10/s, a burst of one) the list
call once took the only token every round, so a task the list reported
COMPLETED never got the detail call that fetches its ``generated`` URLs."""

from __future__ import annotations


from tui.config import parse_config
from tui.engine import Engine
from tui.store import Store

IDS = ("046b6c7f-0b8a-43b9-b35d-6489e6daee90", "046b6c7f-0b8a-43b9-b35d-6489e6daee91")


async def test_freepik_default_budget_still_fetches_completed_details(sim_factory, sim_scenario, sim_task,
                                                                      tmp_path):
    sim = sim_factory(sim_scenario(sim_task("freepik", IDS[0], "running"), sim_task("freepik", IDS[1], "succeeded")))
    config = parse_config(f'[providers.freepik]\napi_key = "sim-key-freepik"\nbase_url = "{sim.base_url}"\n')
    store = Store(tmp_path / "t.db")
    engine = Engine(config, store)
    try:
        store.add("freepik", list(IDS))
        for _ in range(3):
            await engine.poll_once()
        done = store.get(f"freepik:{IDS[1]}")
        assert done.state == "succeeded" and done.results
    finally:
        await engine.stop()
        store.close()
