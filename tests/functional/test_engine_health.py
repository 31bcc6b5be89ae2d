"""Provider health through the store: ``ProviderHealth`` encode/decode, and
``read_health`` (what ``tasktui quota`` and the dashboard read, with or without
an engine) saying what the running engine says, at the same moment."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tui.config import parse_config
from tui.engine import DISABLED, Engine, ProviderHealth, quota, read_health
from tui.store import Store

DATA = Path(__file__).parents[1] / "data"
GENEROUS = 30.0  # seconds a condition may take on a slow, busy machine


async def until(condition, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GENEROUS
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "health.db")
    yield s
    s.close()


def _config(sim, *enabled: str, disabled: tuple[str, ...] = ()):
    text = "".join(f'[providers.{p}]\napi_key = "{sim.key(p)}"\nbase_url = "{sim.base_url}"\n'
                   f'poll_interval = 0.2\nrate_limit = "600/s"\n'
                   f'{"enabled = false" if p in disabled else ""}\n\n' for p in (*enabled, *disabled))
    return parse_config(text)


# ---------------------------------------------------------------- the stored form


def test_a_blob_saved_before_the_package_split_still_reads():
    # saved by tui/engine.py as of a7f5ef8 (three providers against the simulator:
    # evolink rate limited, comfy with one task's polls failing, freepik ok)
    saved = json.loads((DATA / "engine_counters_v1.json").read_text())
    evolink = ProviderHealth.decode("evolink", saved["evolink"])
    assert (evolink.state, evolink.cause) == ("rate_limited", "rate_limited: Rate limit exceeded")
    assert evolink.retry_at == pytest.approx(1796034814.072541)
    assert (evolink.requests, evolink.errors, evolink.rate_limited) == (1, 1, 1)
    assert evolink.rpm == {29933911: 1} and evolink.answers == {"rate_limited": 1}
    comfy = ProviderHealth.decode("comfy", saved["comfy"])
    assert comfy.state == "degraded" and comfy.cause.startswith("1 task's polls failing (HTTP 503")
    assert (comfy.balance, comfy.balance_unit) == (100.0, "usd") and comfy.balance_at == pytest.approx(1796034693.846)
    assert len(comfy.recent) == 9 and comfy.last_error.startswith("transient: ")
    freepik = ProviderHealth.decode("freepik", saved["freepik"])
    assert freepik.state == "ok" and freepik.cause is None
    assert freepik.daily["mystic"] == {"limit": 6000, "reset_at": 1796083200.0, "used": 0}
    # and what it encodes again reads back the same (a round trip keeps every field)
    for name, blob in saved.items():
        h = ProviderHealth.decode(name, blob)
        assert ProviderHealth.decode(name, json.loads(json.dumps(h.encode()))) == h
        old_keys = set(blob) - {"daily"} if not h.daily else set(blob)
        assert old_keys <= set(h.encode())  # additive: every key older readers look for is still written


@pytest.mark.parametrize("blob", [None, [], "x", {"state": "exploded", "requests": "many", "rpm": {"x": 1},
                                                  "retry_at": float("nan"), "durations": {"a\tb": "c"},
                                                  "recent": "no", "cause": 7}])
def test_junk_decodes_to_defaults(blob):
    h = ProviderHealth.decode("evolink", blob)
    assert h.state == "ok" and h.requests == 0 and h.retry_at is None and h.cause is None
    assert h.rpm == {} and h.durations == {} and h.recent == []


# ---------------------------------------------------------------- one source of truth


async def test_read_health_says_what_the_running_engine_says(sim_factory, sim_task, sim_scenario, sim_fault, store):
    sim = sim_factory(sim_scenario(
        sim_task("evolink", "e1", "running"), sim_task("qolaba", "q1", "running"),
        sim_task("comfy", "c1", "running"), sim_task("comfy", "c2", "running"),
        sim_task("freepik", "f1", "running"), sim_task("upscayl", "u1", "running"),
        faults=[sim_fault("auth", "evolink"), sim_fault("rate_limit", "qolaba", retry_after=600),
                sim_fault("server_error", "comfy", task_id="c2", status=503)]))
    for key in ("evolink:e1", "qolaba:q1", "comfy:c1", "comfy:c2", "freepik:f1", "upscayl:u1"):
        provider, task_id = key.split(":")
        store.add(provider, [task_id])
    config = _config(sim, "evolink", "qolaba", "comfy", "freepik", disabled=("upscayl",))
    engine = Engine(config, store)
    await engine.start()
    try:
        wanted = {"evolink": "auth_failed", "qolaba": "rate_limited", "comfy": "degraded", "freepik": "ok",
                  "upscayl": DISABLED}
        await until(lambda: {h.name: h.state for h in read_health(store, config)} == wanted,
                    what="every provider's state in the store")
        # the same moment: nothing runs between these two reads
        live, stored = engine.quota(), quota(store, config)
        same = ("provider", "state", "cause", "requests", "errors", "rate_limited", "last_error", "balance",
                "tasks", "credits_spent", "enabled")
        assert [{k: q[k] for k in same} for q in stored] == [{k: q[k] for k in same} for q in live]
        assert [q["state"] for q in live] == list(wanted.values())
        assert live[0]["cause"]  # the refusal, said
        assert live[1]["retry_at"] == stored[1]["retry_at"] is not None
        assert stored[2]["cause"].startswith("1 task's polls failing")
    finally:
        await engine.stop()
    # the engine gone, the store still says it: the refused key is not "ok" for the next reader
    after = {h.name: (h.state, h.cause) for h in read_health(store, config)}
    assert after["evolink"][0] == "auth_failed" and after["comfy"][0] == "degraded"


def test_read_health_needs_no_engine_and_lists_every_configured_provider(store):
    config = parse_config('[providers.evolink]\napi_key = "k-evolink-0000"\n\n'
                          '[providers.comfy]\napi_key = "k-comfy-0000"\nenabled = false\n')
    rows = read_health(store, config)  # an empty store: nothing known yet
    assert [(h.name, h.state, h.enabled) for h in rows] == [("evolink", "ok", True), ("comfy", DISABLED, False)]
    assert rows[0].budget == str(config.providers["evolink"].rate_limit)
    store.save_counters("evolink", {"state": "quota_exhausted", "cause": "no credits", "requests": 3})
    assert rows[0].budget_available == rows[0].budget_capacity == 6  # 60/m: a fresh budget, a tenth of the count
    store.save_counters("evolink", {"state": "quota_exhausted", "cause": "no credits", "requests": 3,
                                    "recent": [99.0, 99.5, 100.0]})  # three requests a moment ago
    (q, off) = quota(store, config, wall_now=100.0)
    assert (q["state"], q["cause"], q["requests"], q["budget_left"]) == ("quota_exhausted", "no credits", 3, 3)
    assert off["state"] == DISABLED and off["retry_at"] is None
