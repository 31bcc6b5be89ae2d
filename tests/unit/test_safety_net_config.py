"""`[listen] safety_net`: how often a task fed by push is polled, from the config
to every worker (issue 18)."""

from __future__ import annotations

import pytest

from tui.config import ConfigError, parse_config
from tui.engine import Engine
from tui.engine.worker import SAFETY_NET
from tui.store import Store

PROVIDERS = ('[providers.evolink]\napi_key = "k-evolink-0123456789"\n\n'
             '[providers.freepik]\napi_key = "k-freepik-0123456789"\n\n')


def test_safety_net_reaches_every_worker(tmp_path):
    store = Store(tmp_path / "tasks.db")
    try:
        engine = Engine(parse_config(PROVIDERS + "[listen]\nsafety_net = 120\n", "cfg.toml"), store)
        assert {w.safety_net for w in engine.workers.values()} == {120.0}
        default = Engine(parse_config(PROVIDERS, "cfg.toml"), store)
        assert {w.safety_net for w in default.workers.values()} == {SAFETY_NET} == {600.0}
    finally:
        store.close()


@pytest.mark.parametrize("value", ["0", "-5", '"10m"', "1e9"])
def test_a_bad_safety_net_is_one_line(value):
    with pytest.raises(ConfigError) as info:
        parse_config(PROVIDERS + f"[listen]\nsafety_net = {value}\n", "cfg.toml")
    assert "listen.safety_net" in str(info.value) and "\n" not in str(info.value)


def test_the_push_declaration_reaches_its_worker_and_waits_for_a_receiver(tmp_path):
    text = ('[providers.evolink]\napi_key = "k-evolink-0123456789"\npush = "callback"\n\n'
            '[providers.freepik]\napi_key = "k-freepik-0123456789"\npush = "webhook"\n\n'
            '[providers.comfy]\nbase_url = "http://127.0.0.1:8188"\napi_key = "k"\n')
    store = Store(tmp_path / "tasks.db")
    try:
        engine = Engine(parse_config(text, "cfg.toml"), store)
        w = engine.workers
        assert (w["evolink"].push_mode, w["freepik"].push_mode, w["comfy"].push_mode) == ("callback", "webhook", None)
        assert not any(x.push_declared for x in w.values())  # no receiver in this process: polled as usual
        engine.set_push({"evolink"})
        assert w["evolink"].push_declared and not w["freepik"].push_declared
        default = Engine(parse_config(PROVIDERS, "cfg.toml"), store)
        default.set_push({"evolink", "freepik"})
        assert not any(x.push_declared for x in default.workers.values())  # "off": the first poll kept
    finally:
        store.close()


@pytest.mark.parametrize("table, value", [("evolink", '"webhook"'), ("freepik", '"callback"'), ("comfy", '"webhook"'),
                                          ("evolink", '"yes"'), ("evolink", "true")])
def test_a_wrong_push_declaration_is_one_line(table, value):
    text = f'[providers.{table}]\napi_key = "k-0123456789"\nbase_url = "http://127.0.0.1:1"\npush = {value}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.toml")
    message = str(info.value)
    assert "push" in message and "\n" not in message.strip() and "k-0123456789" not in message
