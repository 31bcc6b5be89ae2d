"""A lease holder frozen while its lease write is out (SIGSTOP, a laptop lid) must not
send on a renewal that came back after its lease ran out by its own clock: another
process may hold the key by then (seen in CI: test_lease_procs' frozen holder sent
its round's requests after SIGCONT).  Virtual time, a real SQLite file, the simulator
over HTTP."""

from __future__ import annotations

from tui.lease import Lease
from tui.store import Store


async def test_a_renewal_that_returns_after_the_lease_ran_out_sends_nothing(tmp_path, sim_factory, monkeypatch):
    from tui.config import parse_config
    from tui.engine import Engine
    from tui.sim import build_scenario, sim_task

    wall = 1_800_000_000.0
    scenario = build_scenario(*(sim_task("evolink", f"f{n}", "running", created=-10.0, start=-5.0, end=5000.0)
                                for n in range(3)))
    scenario.epoch = wall
    sim = sim_factory(scenario)
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["f0", "f1", "f2"])
    vt = [0.0]
    config = parse_config(f'[providers.evolink]\napi_key = "{sim.key("evolink")}"\nbase_url = "{sim.base_url}"\n'
                          'poll_interval = 1.0\nrate_limit = "600/s"\nbalance_interval = 0\n')
    frozen: list[float] = []
    save = Lease.save

    def save_then_thaw(self, state, *, renew=True):
        ok = save(self, state, renew=renew)
        if not frozen:  # the first budget write of the round: the process is stopped while it is out
            vt[0] += self.ttl + 1.0
            sim.sim.clock.set(vt[0])
            frozen.append(vt[0])
        return ok

    monkeypatch.setattr(Lease, "save", save_then_thaw)

    def status_polls() -> list:
        return [r for r in sim.requests if r.endpoint == "status"]

    engine = Engine(config, store, clock=lambda: vt[0], wall=lambda: wall + vt[0])
    try:
        sim.sim.clock.set(vt[0])
        await engine.poll_due()
        assert frozen, "the round wrote its budget into the lease"
        assert status_polls() == [], "sent on a renewal that came back after the lease ran out"
        vt[0] += 1.0
        sim.sim.clock.set(vt[0])
        await engine.poll_due()  # the next round takes the lease again (nobody else has it) and polls
        assert len(status_polls()) == 3
        store.sync()
        assert {store.get(f"evolink:f{n}").state for n in range(3)} == {"running"}
    finally:
        await engine.stop()
        store.close()
