"""The store feed reaches the dashboard as a Textual message (tui/messages.py):
bursts coalesce, nothing is lost, a covered main screen hands it to the screen
on top, and a feed that runs on another thread still arrives (issue #14)."""

from __future__ import annotations

import threading

from textual.screen import Screen
from textual.widgets import Static

from test_app_fixtures import fill_store, make_config, clock, wait_for
from tui.app import TaskTUI, make_app
from tui.messages import FilterDone, StoreChanged
from tui.store import Change, Store


def test_can_replace_hands_keys_and_events_to_the_newer_message():
    older, newer = StoreChanged({"a:1"}, 1), StoreChanged({"b:2"}, 2)
    assert older.can_replace(newer)
    assert newer.keys == {"a:1", "b:2"} and newer.events == 3
    assert not older.can_replace(FilterDone(True))
    assert not StoreChanged({"a"}, control=object()).can_replace(StoreChanged({"b"}))  # another node's
    assert not StoreChanged.bubble  # a screen's copy never comes back to the app


class FeedStore(Store):
    """A store that keeps the callbacks subscribed to it (the public ``subscribe``)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.feeds = []

    def subscribe(self, callback):
        self.feeds.append(callback)
        return super().subscribe(callback)


class Counting(TaskTUI):
    """The dashboard, with a handler of its own that records each message it
    handles (Textual runs the handler of every class in the MRO: the base's too)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.heard: list[StoreChanged] = []

    def on_store_changed(self, message: StoreChanged) -> None:
        self.heard.append(message)


def _app(tmp_path, store_cls=Store, app_cls=None):
    path = tmp_path / "tasks.db"
    fill_store(path).close()
    store = store_cls(path)
    if app_cls is not None:
        return app_cls(make_config(tmp_path), store, clock=clock), store
    return make_app(make_config(tmp_path), store, clock=clock), store


async def test_a_burst_of_commits_coalesces_and_loses_no_key(tmp_path):
    app, store = _app(tmp_path, app_cls=Counting)
    seen = app.heard
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        ids = [f"burst-{i:02d}" for i in range(40)]
        for i in ids:  # 40 commits without yielding to the loop
            store.add("evolink", [i], label="burst")
        await wait_for(pilot, lambda: {f"evolink:{i}" for i in ids} <= set(app.task_list.index))
        assert 1 <= len(seen) < 40, len(seen)  # coalesced in the queue
        assert set().union(*(m.keys for m in seen)) >= {f"evolink:{i}" for i in ids}
        assert all(m.control is app for m in seen)


class Listener(Screen):
    """A screen that handles the message the Textual way."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[set[str]] = []

    def compose(self):
        yield Static("listening")

    def on_store_changed(self, message: StoreChanged) -> None:
        self.heard.append(set(message.keys))


async def test_the_screen_on_top_hears_on_store_changed(tmp_path):
    app, store = _app(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        screen = Listener()
        await app.push_screen(screen)
        store.add("qolaba", ["covered-1"], label="x")
        await wait_for(pilot, lambda: any("qolaba:covered-1" in k for k in screen.heard))
        assert "qolaba:covered-1" not in app.task_list.index  # the list waits for the main screen
        app.pop_screen()
        await wait_for(pilot, lambda: "qolaba:covered-1" in app.task_list.index)


async def test_a_feed_on_another_thread_reaches_the_app(tmp_path):
    app, store = _app(tmp_path, FeedStore, Counting)
    heard = app.heard
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        assert store.feeds, "the app subscribes to the store's feed"
        key = app.task_list.index[-1]
        before = app.task_list.cursor_key
        thread = threading.Thread(target=lambda: [feed(Change(keys={key})) for feed in store.feeds])
        thread.start()
        thread.join(30)
        await wait_for(pilot, lambda: any(key in m.keys for m in heard))
        assert app.task_list.cursor_key == before  # nothing moved: the change was applied on the loop
