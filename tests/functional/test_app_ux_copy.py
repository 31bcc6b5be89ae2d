"""Issue 13 gaps 3 and 9 (helper U1): acting on results in the detail (copy any
result with 1-9 or the shown one with c, the task id with i, the last answer as
redacted JSON with J; result links as OSC 8 hyperlinks) and the quota view (a
one-line-per-provider table read from the stored provider health that fits
80x24 with all five providers; enter on a row opens the provider's card).

The task comes from the real EvoLink parser fed EvoLink's published task object
(seeds/evolink-task-detail.md, as tests/unit/test_provider_evolink.py has it), stored
in a real SQLite file with that body as the raw answer."""

from __future__ import annotations

import json

import httpx
import pytest
from rich.style import Style

from test_app_fixtures import NOW, clock, fill_store, make_config, plain, wait_for
from tui.app import make_app
from tui.config import load_config
from tui.providers.evolink import Evolink
from tui.screens.detail import DetailScreen

KEY = "evk-test-0123456789abcdef"
ID = "task-unified-1756817821-4x3rx6ny"
# seeds/evolink-task-detail.md (GET /v1/tasks/{task_id}, the 200 example); three
# result links instead of the seed's one (an image task asked for n=3 answers so),
# and the key echoed back in a field: it must never be copied
PUBLISHED = {
    "created": 1756817821, "id": ID, "model": "gpt-4o-image", "object": "image.generation.task",
    "progress": 100, "results": ["http://example.com/image.jpg", "https://cdn.example.com/b.png",
                                 "https://cdn.example.com/c.png"],
    "status": "completed", "task_info": {"can_cancel": False}, "type": "image",
}


@pytest.fixture(autouse=True)
def cached_previews(tmp_path, monkeypatch):
    """The detail previews a succeeded task's results: each of ours is answered from
    a preview cache filled here with a PNG served on 127.0.0.1 (no other host is
    ever asked; the picture in a snapshot is the same every run)."""
    import asyncio

    from file_server import FileServer
    from tui.preview import PreviewCache, fetch_preview

    monkeypatch.setenv("TASKTUI_CACHE", str(tmp_path / "cache"))
    server = FileServer()
    try:
        cache = PreviewCache()
        p = asyncio.run(fetch_preview(server.url("/img.png"), cache))
        assert p.status == "ok"
        for url in PUBLISHED["results"]:
            cache.put(url, {"kind": p.kind, "content_type": p.content_type, "size": p.size,
                            "width": p.width, "height": p.height}, p.data)
    finally:
        server.release()
        server.close()


def evolink_task():
    body = {**PUBLISHED, "echo": f"Bearer {KEY}", "note": "bidi \u202e and zero-width \u200b"}
    task = Evolink(KEY).parse_status(ID, None, httpx.Response(200, json=body))
    task.raw = body
    task.updated_at = task.finished_at = NOW - 5  # the parser stamps the wall clock: a fixed time instead
    return task


def config_with_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[providers.evolink]\napi_key = "{KEY}"\n', encoding="utf-8")
    return load_config(path)


async def open_detail(pilot, app):
    app.go_to_task(f"evolink:{ID}")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
    await pilot.pause()
    return app.screen


def app_for(tmp_path):
    store = fill_store(tmp_path / "tasks.db", [evolink_task()])
    return make_app(config_with_key(tmp_path), store, clock=clock), store


# ---------------------------------------------------------------- copy


async def test_number_keys_show_and_copy_any_result_and_c_copies_the_one_shown(tmp_path):
    app, store = app_for(tmp_path)
    results = store.get(f"evolink:{ID}").results
    assert len(results) == 3
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, app)
        await pilot.press("3")
        await wait_for(pilot, lambda: app.clipboard == results[2])
        assert "Result 3 of 3" in plain(screen.query_one("#detail-result"))
        await pilot.press("2")
        await wait_for(pilot, lambda: app.clipboard == results[1])
        await pilot.press("left", "c")  # the arrows step, c copies what is shown
        await wait_for(pilot, lambda: app.clipboard == results[0])
        app.copy_to_clipboard("unchanged")
        await pilot.press("7")  # there is no 7th result: nothing copied, it says so
        await pilot.pause()
        assert app.clipboard == "unchanged"
        assert any("no result 7" in str(n.message) for n in app._notifications)


async def test_i_copies_the_task_id(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, app)
        await pilot.press("i")
        await wait_for(pilot, lambda: app.clipboard == ID)


async def test_J_copies_the_last_answer_as_json_with_the_key_redacted(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, app)
        await pilot.press("J")
        await wait_for(pilot, lambda: app.clipboard.startswith("{"))
        copied = app.clipboard
        assert KEY not in copied and "Bearer [redacted]" in copied
        assert "\u202e" not in copied and "\\u202e" in copied  # control characters escaped
        back = json.loads(copied)
        assert back["results"] == PUBLISHED["results"] and back["status"] == "completed"


async def test_result_links_in_the_detail_are_osc8_hyperlinks(tmp_path):
    app, store = app_for(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, app)
        box = screen.query_one("#detail-result").content
        assert any(isinstance(s.style, Style) and s.style.link for s in box.spans)
        table = screen.query_one("#detail-fields").content
        cells = table.columns[1]._cells
        styles = [st for c in cells if hasattr(c, "spans") for st in (c.style, *(s.style for s in c.spans))]
        links = {str(st.link) for st in styles if isinstance(st, Style) and st.link}
        assert links == set(PUBLISHED["results"])


# ---------------------------------------------------------------- the quota table


def five_providers_health(store):
    """Blobs as the engine stores them (tui/engine/health.py ProviderHealth.encode)."""
    store.save_counters("comfy", {"state": "ok", "requests": 120, "budget": "100/h",
                                  "recent": [NOW - 10, NOW - 20, NOW - 4000], "last_answer_at": NOW - 4})
    store.save_counters("upscayl", {"state": "auth_failed", "cause": "HTTP 401: invalid key",
                                    "requests": 3, "budget": "100/h", "recent": [NOW - 50]})
    store.save_counters("qolaba", {"state": "ok", "requests": 9, "budget": "60/m", "recent": [NOW - 5],
                                   "last_answer_at": NOW - 130})
    store.save_counters("freepik", {"state": "rate_limited", "requests": 42, "budget": "10/s",
                                    "balance": 12.5, "balance_unit": "EUR", "last_answer_at": NOW - 30})
    store.save_counters("evolink", {"state": "degraded", "cause": "2 tasks stalled", "requests": 7,
                                    "budget": "100/h", "balance": 1095.3996, "balance_unit": "credits",
                                    "last_answer_at": NOW - 75})


def quota_app(tmp_path):
    store = fill_store(tmp_path / "tasks.db")
    five_providers_health(store)
    return make_app(make_config(), store, clock=clock), store


def table_lines(app) -> list[str]:
    table = app.query_one("#quota-table")
    return [" ".join(str(c).strip() for c in table.get_row_at(n)) for n in range(table.row_count)]


async def test_quota_table_fits_80x24_with_all_five_providers_in_quotas_words(tmp_path):
    app, store = quota_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("v")
        await wait_for(pilot, lambda: app.query_one("#quota-table").row_count == 5)
        table = app.query_one("#quota-table")
        assert table.region.height >= 6 and table.region.bottom <= 23  # every row on screen, above the footer
        assert table.has_focus  # v gives it the keys: enter opens a card
        lines = {line.split()[0]: line for line in table_lines(app)}
        assert list(lines) == ["comfy", "upscayl", "qolaba", "freepik", "evolink"]
        assert "● ok" in lines["comfy"] and "2/100h" in lines["comfy"] and "4s" in lines["comfy"]
        assert "✗ key refused" in lines["upscayl"] and "never" in lines["upscayl"]
        assert "1/60m" in lines["qolaba"] and "2m" in lines["qolaba"]
        assert "◌ rate limited" in lines["freepik"] and "12.50 EUR" in lines["freepik"]
        assert "◐ degraded" in lines["evolink"] and "1,095.40 credits" in lines["evolink"]
        screen = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert all(len(line) <= 80 for line in screen.splitlines())
        await pilot.press("v")  # hidden again: the list has the keys back
        await wait_for(pilot, lambda: app.task_list.has_focus)


async def test_quota_table_reads_the_stored_health_as_it_changes(tmp_path):
    app, store = quota_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: app.query_one("#quota-table").row_count == 5)
        store.save_counters("upscayl", {"state": "ok", "requests": 4, "budget": "100/h",
                                        "last_answer_at": NOW - 1})
        await wait_for(pilot, lambda: "● ok" in table_lines(app)[1])


async def test_enter_on_a_row_opens_that_providers_card_and_esc_goes_back_to_the_list(tmp_path):
    from tui.widgets.quota import ProviderCard

    app, store = quota_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: app.query_one("#quota-table").row_count == 5)
        cards = {c.provider: c for c in app.query(ProviderCard)}
        assert not any(c.display for c in cards.values())  # the cards are the rows' detail
        app.query_one("#quota-table").focus()
        await pilot.pause()
        await pilot.press("down", "down", "down", "enter")  # freepik
        await wait_for(pilot, lambda: cards["freepik"].display)
        assert [p for p, c in cards.items() if c.display] == ["freepik"]
        assert cards["freepik"].region.height > 0
        await pilot.press("enter")  # again: closes it
        await wait_for(pilot, lambda: not cards["freepik"].display)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.task_list.has_focus)


def test_table_rows_never_come_from_a_live_engine(tmp_path):
    """The table is the stored health's: an engine whose status would say otherwise is not asked."""
    from tui.engine.health import ProviderHealth
    from tui.widgets.quota import requests_text, stored_health, table_row

    store = fill_store(tmp_path / "tasks.db")
    five_providers_health(store)
    rows = {h.name: table_row(h, NOW) for h in stored_health(store, make_config(), ["comfy", "evolink"], NOW)}
    assert rows["comfy"] == ("comfy", "● ok", "2/100h", "n/a", "4s")
    assert rows["evolink"][1] == "◐ degraded" and rows["evolink"][3] == "1,095.40 credits"
    assert requests_text(ProviderHealth(name="x", requests=42), NOW) == "42 sent"  # no budget known


# ---------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_detail_copy_keys_and_links(snap_compare, tmp_path, size):
    app, store = app_for(tmp_path)

    async def setup(pilot):
        app.go_to_task(f"evolink:{ID}")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("right")  # result 2 of 3 (no toast: 2 would copy it and say so)
        await wait_for(pilot, lambda: app.screen.preview is not None
                       and app.screen.preview.url == PUBLISHED["results"][1]
                       and "\u2580" in str(app.screen.query_one("#detail-preview").content))
        await pilot.pause()

    assert snap_compare(app, run_before=setup, terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_quota_table_and_a_card(snap_compare, tmp_path, size):
    app, store = quota_app(tmp_path)

    async def setup(pilot):
        if size[0] < 110:
            await pilot.press("v")
        else:
            app.query_one("#quota-table").focus()
        await pilot.pause()
        await pilot.press("down", "down", "down", "enter")
        await pilot.pause()

    assert snap_compare(app, run_before=setup, terminal_size=size)


def test_the_tables_words_need_no_textual():
    """tui/healthfmt.py (the quota table's rows) is importable by the headless
    commands: it pulls in no Textual."""
    import subprocess
    import sys

    code = "import sys, tui.healthfmt, tui.timefmt, tui.actions; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
