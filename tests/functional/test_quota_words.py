"""Issue 13, bug 14: `tasktui quota` and the dashboard's quota table say the same
thing in the same moment, in the same words (state with its symbol, requests of
the budget, balance with its unit, the last answer), read from the same stored
provider health."""

from __future__ import annotations

import os

import pytest

import tui.headless as headless
from test_app_fixtures import NOW, fill_store, wait_for
from test_app_ux_copy import five_providers_health
from tui.app import make_app
from tui.cli import main
from tui.config import load_config

CONFIG = "".join(f'[providers.{name}]\napi_key = "k-{name}-0123456789"\nrate_limit = "{rate}"\n'
                 f'base_url = "http://127.0.0.1:9"\n\n'
                 for name, rate in (("comfy", "100/h"), ("upscayl", "100/h"), ("qolaba", "60/m"),
                                    ("freepik", "10/s"), ("evolink", "100/h")))


@pytest.fixture
def home(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("TASKTUI_"):
            monkeypatch.delenv(key)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    os.chmod(config, 0o600)
    monkeypatch.setenv("TASKTUI_CONFIG", str(config))
    monkeypatch.setenv("TASKTUI_DB", str(tmp_path / "tasks.db"))
    return tmp_path


def cli_rows(capsys, monkeypatch) -> dict[str, list[str]]:
    monkeypatch.setattr(headless.time, "time", lambda: NOW)  # the same moment as the dashboard's clock
    assert main(["quota"]) == 0
    out = capsys.readouterr().out.splitlines()
    head = out[0]
    starts = [head.index(name) for name in ("STATE", "REQUESTS", "BALANCE", "ANSWER", "ERRORS")]
    rows = {}
    for line in out[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:])]
        rows[line.split()[0]] = cells
    return rows


async def test_quota_and_the_dashboard_say_the_same_words(home, capsys, monkeypatch):
    store = fill_store(home / "tasks.db")
    five_providers_health(store)
    printed = cli_rows(capsys, monkeypatch)
    assert printed["upscayl"][0] == "✗ key refused"  # not "ok" after a refused key
    assert printed["evolink"][2] == "1,095.40 credits" and printed["freepik"][2] == "12.50 EUR"  # with units
    assert printed["comfy"][1] == "2/100h"  # requests of the budget, not a token bucket's "left of"
    app = make_app(load_config(home / "config.toml"), store, clock=lambda: NOW)
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.query_one("#quota-table")
        await wait_for(pilot, lambda: table.row_count == 5)
        shown = {str(table.get_row_at(n)[0]).strip(): [str(c).strip() for c in table.get_row_at(n)[1:]]
                 for n in range(table.row_count)}
    assert shown == printed


async def test_quota_and_the_card_say_who_polls_when_another_process_holds_the_key(tmp_path, sim_factory, capsys,
                                                                                  monkeypatch):
    """A lease held by another process (tui/lease.py): `tasktui quota` prints a
    'polled by HOST (pid N) since T' line and the provider's card says the same."""
    from tui.engine import Engine
    from tui.lease import Lease
    from tui.sim import build_scenario, sim_task
    from tui.store import Store
    from tui.widgets.quota import health_lines, info_from_status

    sim = sim_factory(build_scenario(sim_task("evolink", "t1", "running")))
    config_path = tmp_path / "config.toml"
    config_path.write_text(sim.config_toml(("evolink",)), encoding="utf-8")
    os.chmod(config_path, 0o600)
    for key in list(os.environ):
        if key.startswith("TASKTUI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TASKTUI_CONFIG", str(config_path))
    monkeypatch.setenv("TASKTUI_DB", str(tmp_path / "tasks.db"))
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["t1"])
    other = Store(tmp_path / "tasks.db")
    holder = Lease(other, "evolink", sim.key("evolink"), holder="render-box:4242:abc")
    assert holder.acquire()
    engine = Engine(load_config(config_path), store)
    try:
        await engine.poll_once()  # a follower: sends nothing, stores who polls
        (h,) = engine.health()
        assert h.polled_by and h.polled_by.startswith("polled by ") and "(pid " in h.polled_by
        lines = dict(health_lines(info_from_status(engine.status("evolink"), h), NOW))
        assert lines["poller"] == h.polled_by
        assert main(["quota"]) == 0
        out = capsys.readouterr().out
        assert f"evolink: {h.polled_by}" in out.splitlines()
    finally:
        holder.release()
        await engine.stop()
        other.close()
        store.close()
