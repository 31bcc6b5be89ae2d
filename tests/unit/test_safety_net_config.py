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
