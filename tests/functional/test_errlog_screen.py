"""The error log screen at scale (issue 15): 10,000 events and thousands of task
failures in a real SQLite file; the screen's cost follows the rows it shows.
Costs are counted (rows whose cells were built, events read), never timed."""

from __future__ import annotations

from textual.app import App

from tui.model import Event, Task
from tui.messages import StoreChanged
from tui.screens.errors import WINDOW, ErrorLogScreen, haystack
from tui.store import Store

NOW = 1_790_000_000.0
EVENTS = 10_000
FAILURES = 2_000


class Host(App):
    def __init__(self, store) -> None:
        super().__init__()
        self.store = store

    def on_mount(self) -> None:
        self.push_screen(ErrorLogScreen(self.store))


class CountingEvents:
    """The store, noting the ``limit`` of each ``events`` read."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.limits: list[int] = []

    def events(self, limit: int = 1000, provider=None):
        self.limits.append(limit)
        return self.store.events(limit=limit, provider=provider)

    def __getattr__(self, name):
        return getattr(self.store, name)

    def __contains__(self, key):
        return key in self.store


def big_store(tmp_path) -> Store:
    store = Store(tmp_path / "t.db")
    providers = ("evolink", "freepik", "comfy", "qolaba")
    store.log([Event(NOW - EVENTS + i, providers[i % 4], f"HTTP 502 upstream said no #{i}",
                     f"t{i % 500}", 502, "transient") for i in range(EVENTS)])
    ids = [f"f{i:05d}" for i in range(FAILURES)]
    store.add("upscayl", ids)
    store.apply([Task("upscayl", i, state="failed", error=f"upscale failed #{n}", updated_at=NOW - n,
                      finished_at=NOW - n) for n, i in enumerate(ids)])
    return store


async def wait_for(pilot, predicate, tries: int = 500) -> None:
    for _ in range(tries):
        if predicate():
            return
        await pilot.pause()
    raise AssertionError("condition never held")


async def test_ten_thousand_events_open_as_a_window_and_filter_from_the_previous_matches(tmp_path):
    with big_store(tmp_path) as store:
        counting = CountingEvents(store)
        app = Host(counting)
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, ErrorLogScreen))
            screen = app.screen
            table = screen.query_one("#errors-table")
            await wait_for(pilot, lambda: screen.complete)
            assert counting.limits == [WINDOW, 10_000]  # the first frame from a window's worth, then the rest
            assert len(screen.rows) == EVENTS + FAILURES  # every row is held ...
            assert table.row_count == WINDOW and screen.cells_built == WINDOW  # ... a window is built, once
            assert "10,000 errors · 2,000 task failures" in str(screen.query_one("#errors-count").render())
            # newest first: the newest event (NOW - 1) then the newest task failure (NOW)
            assert screen.shown[0].kind == "task failed" and screen.shown[1].message.endswith("#9999")

            built = screen.cells_built
            await pilot.press("slash", "#", "1")  # "#1": 1,111 events and 1,111 failures match
            hay = [haystack(r) for r in screen.rows]
            assert [screen.rows[i] for i in screen.matches] == [r for r, h in zip(screen.rows, hay) if "#1" in h]
            assert len(screen.matches) == 2 * 1111
            assert screen.cells_built - built <= 2 * WINDOW  # two keys, a window each
            assert table.row_count == WINDOW
            before = list(screen.matches)
            await pilot.press("2", "3")  # narrows from the previous matches
            assert screen.matches == [i for i in before if "#123" in hay[i]]
            assert {screen.rows[i].message.split("#")[-1] for i in screen.matches} >= {"123", "1234"}
            await pilot.press("backspace", "backspace", "backspace", "backspace")  # back to "" : all rows
            assert len(screen.matches) == EVENTS + FAILURES

            # scrolling near the end of the window takes the next rows in; end takes all
            await pilot.press("enter")  # leave the filter input for the table
            table.focus()
            table.move_cursor(row=WINDOW - 5)
            await wait_for(pilot, lambda: table.row_count == 2 * WINDOW)
            await pilot.press("end")
            await wait_for(pilot, lambda: table.row_count == EVENTS + FAILURES)
            assert screen.cursor_row_data is screen.rows[-1]

            # a new event: the screen reads that one, not the 10,000 again
            counting.limits.clear()
            store.log([Event(NOW + 5, "comfy", "fresh trouble", None, 500, "transient")])
            screen.on_store_changed(StoreChanged(set(), 1))
            assert counting.limits == [1]
            assert screen.rows[0].message == "fresh trouble"
            assert len(screen.rows) == EVENTS + FAILURES  # the newest 10,000 events (the store keeps as many)
