"""Engine.reload (a new config applied while running) and Engine.retry_now (a refused
or backed-off provider tried at once), against the simulator on 127.0.0.1 and a real
SQLite store.  The simulator's clock is frozen (tasks move only with ``sim.advance``);
waits poll for a condition (a request in the simulator's log, a write in the store)."""

from __future__ import annotations

import asyncio

import pytest

from tui.config import parse_config
from tui.engine import Engine
from tui.store import Store

GENEROUS = 30.0


def config_for(base_url: str, providers, keys=None, **per_provider):
    lines = []
    for name in providers:
        opts = {"api_key": (keys or {}).get(name, f"sim-key-{name}"), "base_url": base_url,
                "poll_interval": 0.1, "rate_limit": "600/s", **per_provider.get(name, {})}
        lines.append(f"[providers.{name}]")
        for k, v in opts.items():
            lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
        lines.append("")
    return parse_config("\n".join(lines))


async def until(condition, what: str, timeout: float = GENEROUS) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def reqs(sim, provider=None, endpoint=None):
    return [r for r in sim.requests if (provider is None or r.provider == provider)
            and (endpoint is None or r.endpoint == endpoint)]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "tasks.db")
    yield s
    s.close()


async def test_reload_adds_removes_and_changes_providers_while_running(sim, store):
    store.add("evolink", ["evolink-running"])
    store.add("freepik", ["freepik-running"])
    store.add("upscayl", ["upscayl-done"])
    # fixed intervals of 0.1 s: a worker left running would show in the log at once
    engine = Engine(config_for(sim.base_url, ("evolink", "freepik")), store, adaptive=False)
    await engine.start()
    try:
        await until(lambda: reqs(sim, "evolink") and reqs(sim, "freepik"), "first polls")
        assert not reqs(sim, "upscayl")
        new = config_for(sim.base_url, ("freepik", "upscayl"), freepik={"rate_limit": "30/m", "poll_interval": 0.2})
        lines = await engine.reload(new)
        assert "evolink: removed; no longer polled (its tasks stay)" in lines
        assert any(line.startswith("upscayl: added (") for line in lines), lines
        assert "freepik: rate_limit 600/s -> 30/m" in lines and "freepik: poll_interval 0.1 -> 0.2" in lines
        assert len(lines) == 4, lines
        assert set(engine.workers) == {"freepik", "upscayl"}
        stopped = len(reqs(sim, "evolink"))
        # the added provider is polled by the running engine, without a restart
        await until(lambda: store.get("upscayl:upscayl-done").state == "succeeded", "upscayl polled")
        # freepik goes on under its new budget; evolink is asked no more, its task kept
        before = len(reqs(sim, "freepik"))
        await until(lambda: len(reqs(sim, "freepik")) > before + 3, "freepik polled after the reload")
        assert len(reqs(sim, "evolink")) == stopped
        assert store.get("evolink:evolink-running") is not None
        assert engine.status("freepik").budget == "30/m"
        assert {row["provider"] for row in engine.quota()} == {"freepik", "upscayl"}
        # the same config again: nothing to do
        assert await engine.reload(new) == []
    finally:
        await engine.stop()
    assert sim.violations == []


async def test_reload_keeps_counters_and_schedules_of_a_changed_provider(sim, store):
    store.add("evolink", ["evolink-done", "evolink-running"])
    now = [1000.0]  # the engine's clocks stand still: what is due depends on the schedules only
    engine = Engine(config_for(sim.base_url, ("evolink",)), store, clock=lambda: now[0],
                    wall=lambda: 1.7e9 + now[0])
    try:
        await engine.poll_once()
        before = engine.status("evolink").requests
        assert before >= 2
        lines = await engine.reload(config_for(sim.base_url, ("evolink",), evolink={"concurrency": 2}))
        assert lines == ["evolink: concurrency 4 -> 2"]
        assert engine.status("evolink").requests == before  # counters carried over
        await engine.poll_due()  # the running task polled a moment ago is not due again at once
        assert engine.status("evolink").requests == before
    finally:
        await engine.stop()


async def test_reload_with_a_new_key_retries_a_refused_provider_and_never_shows_it(sim, store):
    store.add("comfy", ["comfy-done"])
    engine = Engine(config_for(sim.base_url, ("comfy",), keys={"comfy": "wrong-key-123456"}), store)
    await engine.start()
    try:
        await until(lambda: engine.status("comfy").state == "auth_failed", "the key refused")
        # another knob, the same wrong key: still refused, nothing sent
        lines = await engine.reload(config_for(sim.base_url, ("comfy",), keys={"comfy": "wrong-key-123456"},
                                               comfy={"timeout": 15.0}))
        assert lines == ["comfy: timeout 20 -> 15"]
        assert engine.status("comfy").state == "auth_failed"
        sent = len(reqs(sim, "comfy"))
        lines = await engine.reload(config_for(sim.base_url, ("comfy",), comfy={"timeout": 15.0}))
        assert lines == ["comfy: api_key changed"]
        await until(lambda: store.get("comfy:comfy-done").state == "succeeded", "polled with the new key")
        assert engine.status("comfy").state == "ok"
        assert len(reqs(sim, "comfy")) > sent
        shown = repr(lines) + repr(engine.quota()) + repr(store.counters()) + repr(store.events())
        assert "wrong-key-123456" not in shown and "sim-key-comfy" not in shown
    finally:
        await engine.stop()


async def test_reload_of_engine_knobs_renews_every_worker(sim, store):
    store.add("evolink", ["evolink-done"])
    engine = Engine(config_for(sim.base_url, ("evolink",)), store)
    try:
        text = "\n".join(["[engine]", "max_backoff = 30.0", ""]) + "\n"
        cfg = config_for(sim.base_url, ("evolink",))
        new = parse_config(text + "\n".join(
            f"[providers.evolink]\napi_key = \"sim-key-evolink\"\nbase_url = \"{sim.base_url}\"\n"
            "poll_interval = 0.1\nrate_limit = \"600/s\"".splitlines()))
        assert cfg.engine.max_backoff != 30.0
        old = engine.workers["evolink"]
        lines = await engine.reload(new)
        assert lines == [f"engine: max_backoff {cfg.engine.max_backoff:g} -> 30"]
        assert engine.workers["evolink"] is not old and engine.workers["evolink"].knobs.max_backoff == 30.0
        await engine.poll_once()
        assert store.get("evolink:evolink-done").state == "succeeded"
    finally:
        await engine.stop()


async def test_retry_now_after_a_refused_key_sends_one_probe(sim, sim_fault, store):
    sim.add(faults=[sim_fault("auth", "evolink", count=1, status=401)])
    store.add("evolink", ["evolink-done", "evolink-running", "evolink-queued"])
    engine = Engine(config_for(sim.base_url, ("evolink",)), store)
    await engine.start()
    try:
        await until(lambda: engine.status("evolink").state == "auth_failed", "the key refused")
        assert len(reqs(sim, "evolink")) == 1
        engine.retry_now("evolink")
        await until(lambda: store.get("evolink:evolink-done").state == "succeeded", "polled after retry_now")
        assert engine.status("evolink").state == "ok"
        # the probe went alone, then the rest followed
        assert reqs(sim, "evolink")[1].status == 200
        with pytest.raises(KeyError):
            engine.retry_now("upscayl")
    finally:
        await engine.stop()


async def test_retry_now_cuts_a_backoff_short(sim, sim_fault, store):
    import time

    sim.add(faults=[sim_fault("server_error", "evolink", count=3, status=503)])
    store.add("evolink", ["evolink-done"])
    config = parse_config(f"""
[providers.evolink]
api_key = "sim-key-evolink"
base_url = "{sim.base_url}"
poll_interval = 30.0
rate_limit = "600/s"
""")
    engine = Engine(config, store, rand=lambda: 0.999)  # backoffs of 5, 10, 20 s
    await engine.start()
    try:
        for n in (1, 2, 3):
            await until(lambda: len(reqs(sim, "evolink")) == n and engine.status("evolink").state == "backing_off",
                        f"failure {n}")
            retry_at = engine.status("evolink").retry_at
            assert retry_at is not None and retry_at > time.time() + 1
            engine.retry_now("evolink")
            # the next try goes now, not at retry_at
            await until(lambda: len(reqs(sim, "evolink")) > n, f"try {n + 1}")
            assert time.time() < retry_at
        await until(lambda: store.get("evolink:evolink-done").state == "succeeded", "the fourth try answers")
        assert engine.status("evolink").state == "ok"
    finally:
        await engine.stop()
