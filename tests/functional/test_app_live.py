"""The dashboard with the real engine polling the simulator over 127.0.0.1:
live updates, notifications, pause/resume, refresh now, the quota pane."""

from __future__ import annotations

from test_app_fixtures import plain, screen_text, wait_for
from tui.app import make_app
from tui.config import load_config
from tui.engine import Engine
from tui.model import PROVIDERS
from tui.store import Store


def live_app(tmp_path, sim):
    path = tmp_path / "config.toml"
    path.write_text(sim.config_toml(), encoding="utf-8")
    config = load_config(path)
    store = Store(tmp_path / "tasks.db")
    for p in PROVIDERS:
        store.add(p, [f"{p}-queued", f"{p}-running", f"{p}-done", f"{p}-failed"])
    engine = Engine(config, store)
    return make_app(config, store, engine, config_path=path), store, engine


async def test_live_polling_pause_refresh_and_quota(tmp_path, sim):
    app, store, engine = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 50)) as pilot:
        # the engine (started by the app) fills in states; the list follows
        await wait_for(pilot, lambda: all(store.get(f"{p}:{p}-done").state == "succeeded"
                                          for p in PROVIDERS), timeout=60)
        await wait_for(pilot, lambda: "✓ succeeded" in screen_text(app))
        await wait_for(pilot, lambda: "✗ failed" in screen_text(app))
        header = plain(app.query_one("#header"))
        assert "succeeded" in header and "OFFLINE" not in header
        # the quota pane shows each provider's live state and request count
        await wait_for(pilot, lambda: "requests 0 " not in plain(
            app.query_one("ProviderCard").query_one(".card-text")))
        card = plain(app.query_one("ProviderCard").query_one(".card-text"))
        assert "● ok" in card and "budget" in card
        assert "left this" in card or "ready now" in card

        await pilot.press("p")
        assert engine.paused
        await wait_for(pilot, lambda: "PAUSED" in plain(app.query_one("#header")))
        await pilot.press("p")
        assert not engine.paused
        await wait_for(pilot, lambda: "PAUSED" not in plain(app.query_one("#header")))

        # time passes on the simulator; "refresh now" picks up the finished tasks
        sim.advance(60)
        await pilot.press("r")
        await wait_for(pilot, lambda: store.get("evolink:evolink-running").state == "succeeded",
                       timeout=60)
        await wait_for(pilot, lambda: app.news_text() is not None)  # the header's news, not a toast
    # the app stopped the engine on exit
    assert all(w.runner is None for w in engine.workers.values())
    store.close()


async def test_sighup_stops_polling_and_exits(tmp_path, sim):
    import os
    import signal

    app, store, engine = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: any(w.runner is not None for w in engine.workers.values()))
        os.kill(os.getpid(), signal.SIGHUP)  # what a dropped SSH session sends
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 128 + signal.SIGHUP
    assert all(w.runner is None for w in engine.workers.values())
    store.close()
