"""The shared ``sim`` fixture starts a real server that answers."""

import httpx


def test_sim_fixture_answers_and_records(sim):
    r = httpx.get(f"{sim.base_url}/v1/tasks/evolink-running",
                  headers={"Authorization": f"Bearer {sim.key('evolink')}"})
    assert r.status_code == 200
    assert r.json()["status"] == "processing"
    assert r.json()["progress"] == 50
    assert [(q.provider, q.status, q.auth_ok) for q in sim.requests] == [("evolink", 200, True)]
    sim.advance(31)
    r = httpx.get(f"{sim.base_url}/v1/tasks/evolink-running",
                  headers={"Authorization": f"Bearer {sim.key('evolink')}"})
    assert r.json()["status"] == "completed"
