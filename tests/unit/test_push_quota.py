"""Push counts where people look: the quota card's "push" line (tui/widgets/quota.py),
fed live from the engine's ProviderStatus and offline from the stored counters blob,
and ``quota --json``'s ``push`` object (tui/engine/health.py)."""

from __future__ import annotations

import time

from tui.config import parse_config
from tui.engine import Engine, quota
from tui.store import Store
from tui.widgets.quota import health_lines, info_from_counters, info_from_status, push_text

COUNTS = {"received": 14, "accepted": 10, "duplicate": 1, "polls_saved": 7, "hints": 3, "last_at": 1.8e9,
          "rejected": {"bad_signature": 2, "stale": 1, "unknown_task": 0, "too_large": 0}}


def test_push_text_says_received_accepted_rejected_by_reason_and_polls_saved():
    assert push_text(COUNTS) == "14 received · 10 accepted · 3 rejected (bad signature 2, stale 1) · 7 polls saved"
    assert push_text({}) is None and push_text(None) is None and push_text({"received": 0}) is None
    hostile = {"received": 1, "accepted": 0, "rejected": {"\x1b[31mx": 1, "ok": "many"}, "polls_saved": -5}
    text = push_text(hostile)
    assert "\x1b" not in text and "0 polls saved" in text and "many" not in text


def _store_with_push(tmp_path) -> Store:
    store = Store(tmp_path / "tasks.db")
    store.apply([], counters={"freepik": {"requests": 3, "push": COUNTS}})
    return store


def test_the_card_shows_the_push_line_offline_and_live(tmp_path):
    store = _store_with_push(tmp_path)
    try:
        now = time.time()
        offline = info_from_counters(store.counters()["freepik"], now, 0.0)
        assert ("push", push_text(COUNTS)) in health_lines(offline, now)
        config = parse_config('[providers.freepik]\napi_key = "k-123456789"\nbase_url = "http://127.0.0.1:9"\n')
        engine = Engine(config, store)
        status = engine.status("freepik")
        assert status.push["polls_saved"] == 7 and status.push["rejected"]["bad_signature"] == 2
        live = info_from_status(status, engine.health()[0])
        assert ("push", push_text(status.push)) in health_lines(live, now)
        # quota --json: from the store alone, and from the engine
        row = next(r for r in quota(store, config) if r["provider"] == "freepik")
        assert row["push"]["accepted"] == 10 and row["push"]["rejected"]["stale"] == 1
        assert next(r for r in engine.quota() if r["provider"] == "freepik")["push"]["polls_saved"] == 7
    finally:
        store.close()


def test_no_push_no_line(tmp_path):
    store = Store(tmp_path / "tasks.db")
    try:
        store.apply([], counters={"evolink": {"requests": 3}})
        now = time.time()
        info = info_from_counters(store.counters()["evolink"], now, 0.0)
        assert not [label for label, _ in health_lines(info, now) if label == "push"]
        config = parse_config('[providers.evolink]\napi_key = "k-123456789"\nbase_url = "http://127.0.0.1:9"\n')
        assert quota(store, config)[0]["push"] is None
    finally:
        store.close()
