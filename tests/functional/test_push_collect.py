"""Push wiring (issue 18): ``tasktui collect --listen`` runs the receiver in the
collector's own process.  An EvoLink callback makes the engine poll that task at
once (one request); a signed Freepik webhook is stored and marks the task as fed
by push; pushes received and the polls they saved reach ``quota --json`` and
``/metrics``.  The simulator (in-process, frozen clock) sends the pushes
(tui/sim/push.py signs them with its own implementation of the scheme)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import httpx
import pytest
from test_collect import TASKTUI, collect, provider_table, reqs, stored  # noqa: F401 (collect: a fixture)

from tui.push import listen_with

TOKEN = "tok_" + "A1b2C3d4E5f6G7h8" * 2
SECRET = "whsec_" + "c2ltLXdlYmhvb2stc2VjcmV0LTEyMzQ="  # Standard Webhooks form: base64 after the prefix


def listen_config(sim, **per_provider) -> str:
    return (provider_table("evolink", sim.base_url, poll_interval=3600.0, balance_interval=0.0,
                           **per_provider.get("evolink", {}))
            + provider_table("freepik", sim.base_url, poll_interval=3600.0, balance_interval=0.0,
                             webhook_secret=SECRET, **per_provider.get("freepik", {}))
            + f'[listen]\ntoken = "{TOKEN}"\n')


def hook_base(c) -> str:
    line = c.wait_line(r"receiving evolink pushes on http://127\.0\.0\.1:\d+/hooks/evolink/<token>", since=0)
    return re.search(r"(http://127\.0\.0\.1:\d+)", line).group(1)


def quota_rows(c) -> dict[str, dict]:
    env = {**os.environ, "TASKTUI_CONFIG": str(c.config), "TASKTUI_DB": str(c.db)}
    out = subprocess.run([str(TASKTUI), "quota", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return {row["provider"]: row for row in json.loads(out.stdout)}


def test_evolink_callback_makes_the_collector_poll_that_task_now(sim_factory, sim_scenario, sim_task, sim_pusher,
                                                                 tmp_path, collect):
    sim = sim_factory(sim_scenario(sim_task("evolink", "ev-1", "running", at=0.0)))  # succeeds at sim t=30
    from tui.store import Store

    s = Store(tmp_path / "tasks.db")
    s.add("evolink", ["ev-1"])
    s.close()
    c = collect(listen_config(sim), "--listen", "--port", "0", "--health-port", "0")
    base = hook_base(c)
    c.wait_line(r"task evolink:ev-1 unknown -> running", since=0)
    assert len(reqs(sim, "evolink")) == 1  # polled once; the next poll is an hour away
    pusher = sim_pusher(sim, evolink_url=f"{base}/hooks/evolink/{TOKEN}")
    sim.advance(60)  # the task has ended at the provider
    attempts = pusher.pump()
    assert [a.status for a in attempts] == [202]
    c.wait_line(r"task evolink:ev-1 running -> succeeded")
    assert len(reqs(sim, "evolink")) == 2  # the callback cost exactly one request
    # a stranger's callback (wrong token) polls nothing
    r = httpx.post(f"{base}/hooks/evolink/{'x' * 40}", json={"id": "ev-1"}, timeout=30)
    assert r.status_code == 404
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    assert len(reqs(sim, "evolink")) == 2
    push = quota_rows(c)["evolink"]["push"]
    assert push["hints"] == 1 and push["rejected"]["unknown_token"] == 1
    text = "\n".join(c.lines)
    assert TOKEN not in text and SECRET not in text


def test_freepik_webhook_is_stored_marked_and_counted(sim_factory, sim_scenario, sim_task, sim_pusher, tmp_path,
                                                      collect):
    from prometheus_client.parser import text_string_to_metric_families

    sim = sim_factory(sim_scenario(sim_task("freepik", "fp-1", "running", at=0.0)))  # succeeds at sim t=30
    from tui.store import Store

    s = Store(tmp_path / "tasks.db")
    s.add("freepik", ["fp-1"])
    s.close()
    c = collect(listen_config(sim), "--listen", "--port", "0", "--health-port", "0")
    base = hook_base(c)
    c.wait_line(r"task freepik:fp-1 unknown -> running", since=0)
    def asked() -> int:
        return len(reqs(sim, "freepik", endpoint=None))

    sent = asked()
    pusher = sim_pusher(sim, freepik_url=f"{base}/hooks/freepik", freepik_secret=SECRET)
    sim.advance(60)
    attempts = pusher.pump()
    assert [a.status for a in attempts] == [200]
    c.wait_line(r"task freepik:fp-1 running -> succeeded")
    assert asked() == sent  # learned without a request
    task = stored(c.db, "freepik:fp-1")
    assert task.state == "succeeded" and task.results and float(task.details["pushed_at"]) > 0
    # a forged one (signed with another secret) is refused and stores nothing
    sim.add([sim_task("freepik", "fp-2", "running", at=60.0)])  # ends at sim t=90
    bad = sim_pusher(sim, freepik_url=f"{base}/hooks/freepik", freepik_secret="whsec_" + "d3Jvbmctc2VjcmV0LXh4eHh4eHh4")
    sim.advance(60)
    assert [a.status for a in bad.pump()] == [401]
    assert stored(c.db, "freepik:fp-2") is None
    metrics = httpx.get(c.health_url() + "/metrics", timeout=30).text
    samples = {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
               for fam in text_string_to_metric_families(metrics) for smp in fam.samples}
    assert samples[("tasktui_push_accepted_total", (("provider", "freepik"),))] >= 1
    assert samples[("tasktui_push_polls_saved_total", (("provider", "freepik"),))] >= 1
    assert samples[("tasktui_push_rejected_total", (("provider", "freepik"), ("reason", "bad_signature")))] >= 1
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    push = quota_rows(c)["freepik"]["push"]
    assert push["accepted"] >= 1 and push["polls_saved"] >= 1 and push["rejected"]["bad_signature"] >= 1
    assert SECRET not in "\n".join(c.lines)


async def test_engine_tells_its_workers_which_providers_push(sim, tmp_path):
    """The contract with the worker's safety net: ``push_route`` on the workers of
    the providers a receiver runs for (kept across a reload), ``pushed[key]`` the
    wall time of a stored push."""
    from test_collect_reload import config_for

    from tui.engine import Engine
    from tui.store import Store

    store = Store(tmp_path / "tasks.db")
    engine = Engine(config_for(sim.base_url, ("freepik", "evolink")), store, wall=lambda: 1234.5)
    try:
        engine.set_push({"freepik"})
        assert engine.workers["freepik"].push_route and not engine.workers["evolink"].push_route
        await engine.reload(config_for(sim.base_url, ("freepik", "evolink", "upscayl"),
                                       freepik={"poll_interval": 0.5}))
        assert engine.workers["freepik"].push_route and not engine.workers["upscayl"].push_route
        store.add("freepik", ["fp-1"])
        engine.note_push("freepik:fp-1")
        assert engine.workers["freepik"].pushed.get("freepik:fp-1") == 1234.5
        engine.note_push("upscayl:nothing-here")  # a task not tracked: nothing happens
    finally:
        await engine.stop()
        store.close()


async def test_engine_listen_runs_the_receiver_with_the_engine(sim_factory, sim_scenario, sim_task, tmp_path):
    """``Engine.listen`` (the dashboard's --listen): the receiver starts and stops with
    the engine; a callback polls its task once; a port in use is one event, and
    polling goes on."""
    import asyncio
    import socket
    from types import SimpleNamespace

    from tui.config import parse_config
    from tui.engine import Engine
    from tui.store import Store

    sim = sim_factory(sim_scenario(sim_task("evolink", "ev-1", "running", at=0.0)))
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["ev-1"])
    config = parse_config("\n".join(
        f'[providers.evolink]\napi_key = "{sim.key("evolink")}"\nbase_url = "{sim.base_url}"\n'
        f'poll_interval = 3600.0\nrate_limit = "600/s"\n\n[listen]\ntoken = "{TOKEN}"'.splitlines()))
    engine = Engine(config, store)
    service = listen_with(engine, SimpleNamespace(host="127.0.0.1", port=0, db=str(tmp_path / "tasks.db")))
    await engine.start()
    try:
        port = service.listener.port
        assert engine.workers["evolink"].push_route
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not reqs(sim, "evolink"):
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        pusher = sim.pusher(evolink_url=f"http://127.0.0.1:{port}/hooks/evolink/{TOKEN}")
        try:
            sim.advance(60)
            attempts = await asyncio.to_thread(pusher.pump)
        finally:
            pusher.close()
        assert [a.status for a in attempts] == [202]
        while store.get("evolink:ev-1").state != "succeeded":
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        assert len(reqs(sim, "evolink")) == 2
    finally:
        await engine.stop()
    assert not service.running
    with socket.socket() as probe:  # the receiver's port is closed
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    # a port already taken: one event says so, the engine polls as before
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        engine2 = Engine(config, store)
        service2 = listen_with(engine2, SimpleNamespace(host="127.0.0.1", port=taken.getsockname()[1],
                                                        db=str(tmp_path / "tasks.db")))
        await engine2.start()
        try:
            assert not service2.running and "webhook receiver not started" in service2.problem
            assert any("webhook receiver not started" in e.message for e in store.events(provider="push"))
            assert engine2.workers["evolink"].runner is not None
        finally:
            await engine2.stop()
    store.close()


async def test_dashboard_with_listen_receives_callbacks(sim_factory, sim_scenario, sim_task, tmp_path):
    """The dashboard's --listen (run_dashboard -> Engine.listen): the receiver runs
    while the app does, and a callback's poll reaches the screen's store."""
    import asyncio
    from types import SimpleNamespace

    from tui.app import make_app
    from tui.config import parse_config
    from tui.engine import Engine
    from tui.store import Store

    sim = sim_factory(sim_scenario(sim_task("evolink", "ev-1", "running", at=0.0)))
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["ev-1"])
    config = parse_config(f'[providers.evolink]\napi_key = "{sim.key("evolink")}"\nbase_url = "{sim.base_url}"\n'
                          f'poll_interval = 3600.0\nrate_limit = "600/s"\n\n[listen]\ntoken = "{TOKEN}"\n')
    engine = Engine(config, store)
    service = listen_with(engine, SimpleNamespace(host="127.0.0.1", port=0, db=str(tmp_path / "tasks.db")))
    app = make_app(config, store, engine)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not service.running or store.get("evolink:ev-1").state != "running":
                assert loop.time() < deadline
                await pilot.pause(0.05)
            pusher = sim.pusher(evolink_url=f"http://127.0.0.1:{service.listener.port}/hooks/evolink/{TOKEN}")
            try:
                sim.advance(60)
                attempts = await asyncio.to_thread(pusher.pump)
            finally:
                pusher.close()
            assert [a.status for a in attempts] == [202]
            while store.get("evolink:ev-1").state != "succeeded":
                assert loop.time() < deadline
                await pilot.pause(0.05)
            assert len(reqs(sim, "evolink")) == 2
        assert not service.running  # stopped with the app
    finally:
        store.close()


def test_sighup_rotates_the_freepik_webhook_secret(sim_factory, sim_scenario, sim_task, sim_pusher, tmp_path,
                                                   collect):
    """A new secret added to the config (rotation: "old new") is in use after SIGHUP,
    without restarting the receiver."""
    from test_collect import write_config

    sim = sim_factory(sim_scenario(sim_task("freepik", "fp-1", "running", at=0.0)))
    from tui.store import Store

    s = Store(tmp_path / "tasks.db")
    s.add("freepik", ["fp-1"])
    s.close()
    new = "whsec_" + "bmV3LXNlY3JldC1hZnRlci1yb3RhdGlvbg=="
    c = collect(listen_config(sim), "--listen", "--port", "0")
    base = hook_base(c)
    c.wait_line(r"task freepik:fp-1 unknown -> running", since=0)
    pusher = sim_pusher(sim, freepik_url=f"{base}/hooks/freepik", freepik_secret=new)
    sim.advance(60)
    assert [a.status for a in pusher.pump()] == [401]  # not yet known
    text = listen_config(sim).replace(f'webhook_secret = "{SECRET}"', f'webhook_secret = "{SECRET} {new}"')
    write_config(c.config, text)
    c.signal(signal.SIGHUP)
    c.wait_line(r"config reloaded: freepik: webhook secret now in use")
    attempts = pusher.replay(pusher.attempts[-1])  # the same delivery again, byte for byte
    assert attempts.status == 200
    c.wait_line(r"task freepik:fp-1 running -> succeeded")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    assert new not in "\n".join(c.lines)


def test_sighup_with_a_new_listen_prefix_restarts_the_receiver(sim_factory, sim_scenario, sim_task, sim_pusher,
                                                               tmp_path, collect):
    from test_collect import write_config

    sim = sim_factory(sim_scenario(sim_task("evolink", "ev-1", "running", at=0.0)))
    from tui.store import Store

    s = Store(tmp_path / "tasks.db")
    s.add("evolink", ["ev-1"])
    s.close()
    c = collect(listen_config(sim), "--listen", "--port", "0")
    old = hook_base(c)
    c.wait_line(r"task evolink:ev-1 unknown -> running", since=0)
    write_config(c.config, listen_config(sim) + 'path_prefix = "/tasktui"\n')
    c.signal(signal.SIGHUP)
    c.wait_line(r"config reloaded: webhook receiver restarted")
    line = c.wait_line(r"receiving evolink pushes on http://127\.0\.0\.1:\d+/tasktui/hooks/evolink/<token>", since=0)
    new = re.search(r"(http://127\.0\.0\.1:\d+)", line).group(1)
    assert httpx.post(f"{new}/hooks/evolink/{TOKEN}", json={"id": "ev-1"}, timeout=30).status_code == 404
    pusher = sim_pusher(sim, evolink_url=f"{new}/tasktui/hooks/evolink/{TOKEN}")
    sim.advance(60)
    assert [a.status for a in pusher.pump()] == [202]
    c.wait_line(r"task evolink:ev-1 running -> succeeded")
    if old != new:  # the first receiver is gone (the new one may have got its port back)
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{old}/hooks/evolink/{TOKEN}", json={"id": "ev-1"}, timeout=30)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
