"""The task list over a store that holds only the live tasks (scope "live", as the
dashboard opens it): the order comes from an index of the sort, the rows from windows
read around the viewport.  Pilot over a real SQLite file in tmp_path; what the list
asks the database is seen through SQLite's own trace of statements."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench.scale import build, build_pg
from tests.pg import PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from test_app_fixtures import make_config, screen_text, wait_for
from tui.app import make_app
from tui.model import BAD_ENDS
from tui.store import Store
from tui.stores import open_store
from tui.widgets.task_list import HEAD_ROWS, SORT_NAMES, SORTS, WINDOW_ROWS, _Window


def big(tmp_path: Path, n: int = 3000) -> Path:
    return build(n, path=tmp_path / "big.db")


def statements(store: Store) -> list[str]:
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    return seen


def every_task(path):
    with open_store(path) as s:
        return s.tasks()


@pytest.fixture(params=["sqlite", "pg"])
def make_big(request: pytest.FixtureRequest, tmp_path: Path):
    """``make_big(n)``: the bench's store of ``n`` tasks, in a SQLite file or in a PostgreSQL
    database (tests/pg.py; the same rows, by COPY), for the tests that run on both."""
    url = request.getfixturevalue("pg_url") if request.param == "pg" else None

    def make(n: int = 3000):
        return build(n, path=tmp_path / "big.db") if url is None else build_pg(url, n)

    return make


# a filter that keeps many rows, exact in SQL on both backends (``state:fail`` also reads the
# raw status by prefix, which PostgreSQL's SQL leaves to Python on text that is not ASCII)
MANY = "state:bad"


@pytest.fixture
def patient_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk of a sort's index never runs out of time (on a busy machine its 30 ms could,
    and the head would come from a scan: the whole answer, no thread)."""
    import tui.store as store_mod

    monkeypatch.setattr(store_mod, "HEAD_BUDGET", 600.0)


def test_first_window_is_the_head_with_an_exact_count(make_big, patient_walk: None) -> None:
    path = make_big()
    with open_store(path, scope="live") as store:
        w = _Window(store)
        w.load(None, "updated", False, head=HEAD_ROWS)
        assert len(w.ids) == HEAD_ROWS and not w.complete
        assert len(w) == 3000  # the scrollbar's length: exact before the rest is read
        w.load(store.where(MANY), "updated", False, head=HEAD_ROWS)
        failed = sum(t.state in BAD_ENDS for t in every_task(path))
        assert failed > HEAD_ROWS and not w.complete  # the head only: its count is the head's for now
        assert w.ids.tolist() == store.window_ids(store.where(MANY))[:HEAD_ROWS]
        assert w.finish() and len(w) == failed  # exact once the rest is read
        last = w[len(w) - 1]
        assert w.complete and last.task.state in BAD_ENDS
        assert len(w.rows) <= WINDOW_ROWS


def python_order(tasks, mode: str, reverse: bool) -> list[str]:
    """The list's order by its own Python sort keys (SORTS); reversed: the mirror."""
    keyed = sorted(tasks, key=SORTS[mode])  # stable: ties in insertion order
    keys = [t.key for t in keyed]
    return keys[::-1] if reverse else keys


@pytest.mark.parametrize("mode", SORT_NAMES)
async def test_every_sort_is_the_python_sort_and_reverse_its_mirror(tmp_path: Path, make_big, mode: str) -> None:
    path = make_big(400)
    tasks = every_task(path)
    store = open_store(path, scope="live")
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.pause()
        tl.set_sort(mode, False)
        assert tl.index == python_order(tasks, mode, False)
        tl.set_sort(mode, True)
        assert tl.index == python_order(tasks, mode, True)
    store.close()


async def test_first_frame_end_key_and_count_at_scale(tmp_path: Path, make_big) -> None:
    path = make_big()
    store = open_store(path, scope="live")
    assert len(store.tasks()) < 200  # only the live ones in memory (3 % of 3000)
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.pause()
        await tl.settled()  # the first frame read the head and the count; a thread the rest
        assert tl._window.complete and tl.count == 3000
        first = tl.index[0]
        assert first.split(":", 1)[1] in screen_text(app)
        assert tl.count == 3000
        await pilot.press("end")
        assert tl.cursor_key == tl.index[-1]
        assert tl.cursor_key.split(":", 1)[1] in screen_text(app)
        import tui.widgets.task_list as task_list_mod

        task_list_mod.NARROW_MAX = 100  # (restored below) more matches than this: heads only
        try:
            await pilot.press("slash", *"state:fail")
            failed = [t for t in every_task(path) if t.state == "failed"]
            await wait_for(pilot, lambda: app.query_text == "state:fail")
            await tl.settled()  # typing reads heads; a thread the rest, and the count is exact
            assert len(failed) > HEAD_ROWS and tl.count == len(failed)
            assert app.filter_bar.query_one("#filter-count").render().plain.startswith(f"{len(failed):,} of")
            assert tl.cursor_row == 0 and store.get(tl.cursor_key).state == "failed"
            tl.focus()
            await pilot.press("end")
            assert tl._window.complete and tl.cursor_row == len(failed) - 1
            assert [store.get(k).state for k in tl.index] == ["failed"] * len(failed)
        finally:
            task_list_mod.NARROW_MAX = 100_000


async def test_a_filter_that_grows_narrows_the_matches_only(tmp_path: Path) -> None:
    from tui.filter import compile_filter

    path = big(tmp_path)
    tasks = every_task(path)
    store = Store(path, scope="live")
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.press("slash", *"state:fail")
        await wait_for(pilot, lambda: app.query_text == "state:fail")
        await tl.settled()
        assert tl._window.complete  # few matches: all read, in order (the head first, a thread the rest)
        before = tl.index
        seen = statements(store)
        app.apply_filter("state:fail provider:com")  # a step that only narrows (tui.filter.refines)
        assert tl.count and tl._window.complete
        after = tl.index
        app.apply_filter("state:fail provider:comc")  # and again: matches nothing
        assert tl.index == []
        app.apply_filter("state:fail provider:com")  # broader again: a query of its own
        pred = compile_filter("state:fail provider:com")
        assert tl.index == after
        assert after == [k for k in before if pred(store.get(k))]
        assert set(after) == {t.key for t in tasks if pred(t)}
        scans = [q for q in seen if "FROM tasks" in q and "json_each" not in q and "ORDER BY" in q]
        assert len(scans) == 1, scans[:2]  # the narrowing steps read only the previous matches
        assert sum("json_each" in q for q in seen) == 2
    store.close()
    store.close()


async def test_removing_and_adding_many_costs_the_changed_rows(tmp_path: Path) -> None:
    path = big(tmp_path)
    store = Store(path, scope="live")
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.pause()
        before = tl.index
        gone = before[100:2100:2]  # 1,000 of 3,000
        seen = statements(store)
        with Store(path) as other:
            other.remove(gone)
            other.add("evolink", [f"new-{i}" for i in range(50)])
        await wait_for(pilot, lambda: tl.count == 3000 - 1000 + 50)
        reads = [q for q in seen if q.lstrip().upper().startswith("SELECT")]
        # per change: a lookup of the changed keys in batches, no read of the whole store
        full = [q for q in reads if "FROM tasks" in q and "GROUP BY" not in q
                and not any(narrow in q for narrow in ("seq >", "IN (", "key =", "LIMIT"))]
        assert not full, full[:3]
        # and a few per changed row: batches of keys, a binary search (log n reads) per new row
        assert len([q for q in reads if "FROM tasks" in q]) < 20 + 15 * 50, _debug_kinds(reads)
        gone_set = set(gone)
        after = tl.index
        kept = [k for k in before if k not in gone_set]
        assert [k for k in after if not k.startswith("evolink:new-")] == kept  # nothing else moved
        assert sum(k.startswith("evolink:new-") for k in after) == 50
    store.close()


async def test_updates_keep_their_place_until_the_user_sorts(tmp_path: Path, make_big) -> None:
    path = make_big(300)
    store = open_store(path, scope="live")
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.pause()
        before = tl.index
        last = before[-1]
        tl.select(last)
        provider, task_id = last.split(":", 1)
        import time

        from tui.model import Task

        store.apply([Task(provider, task_id, state="running", progress=42.0, updated_at=time.time() + 10)])
        await wait_for(pilot, lambda: "42%" in screen_text(app))
        assert tl.index == before and tl.cursor_key == last
        tl.set_sort("updated")  # asked: re-sorted
        assert tl.index[0] == last and tl.cursor_key == last
    store.close()


def test_statements_trace_is_real(tmp_path: Path) -> None:
    """The trace used above sees the reads it should (else the cost test proves nothing)."""
    path = big(tmp_path, 50)
    with Store(path, scope="live") as store:
        seen = statements(store)
        store.window_ids(None, "updated")
        assert any("ORDER BY" in q for q in seen)
    assert isinstance(sqlite3.sqlite_version, str)


def _debug_kinds(reads):
    import collections
    return collections.Counter(q.split(" WHERE ")[-1][:60] for q in reads if "FROM tasks" in q)


async def test_the_window_over_postgresql(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The same list over a PostgreSQL store (tests/pg.py): sort, filter, a removal
    and an addition made by another store reach it through LISTEN/NOTIFY."""
    url = request.getfixturevalue("pg_url")
    from tui.model import Task
    from tui.store_pg import PgStore

    with PgStore(url) as full:
        for p in ("evolink", "comfy"):
            full.add(p, [f"{p[:2]}-{i:03d}" for i in range(150)])
        full.apply([Task("evolink", f"ev-{i:03d}", state="failed" if i % 3 == 0 else "succeeded",
                         updated_at=1_800_000_000.0 + i) for i in range(150)])
        tasks = full.tasks()
    store = PgStore(url, scope="live")
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.pause()
        assert tl.count == 300 and len(store.tasks()) == 150  # the comfy ones are live (unknown)
        for mode in SORT_NAMES:
            tl.set_sort(mode, True)
            assert tl.index == python_order(tasks, mode, True), mode
        app.apply_filter("state:fail -ev-000")
        assert tl.count == 49 and all(store.get(k).state == "failed" for k in tl.index)
        before = tl.index
        app.apply_filter("state:fail -ev-000 ev-01")  # narrows the 49 (id = ANY(...)), in place
        assert tl.index == [k for k in before if "ev-01" in k]
        assert sorted(tl.index) == [f"evolink:ev-{i:03d}" for i in range(10, 20) if i % 3 == 0]
        app.apply_filter("state:fail -ev-000")
        with PgStore(url) as other:
            other.remove(["evolink:ev-003"])
            other.add("evolink", ["ev-new"])
            other.apply([Task("evolink", "ev-new", state="failed")])
        await wait_for(pilot, lambda: tl.count == 49 and "evolink:ev-new" in tl.index
                       and "evolink:ev-003" not in tl.index)
    store.close()


async def test_the_cursor_keeps_its_task_beyond_the_head_of_a_new_filter(
        tmp_path: Path, make_big, patient_walk: None) -> None:
    path = make_big()
    store = open_store(path, scope="live")
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.pause()
        await tl.settled()
        order = tl.index
        key = order[1500]  # far past the first HEAD_ROWS rows of any filter that lists it
        assert tl.select(key) and tl.cursor_row == 1500
        provider = key.split(":", 1)[0]
        app.apply_filter(f"provider:{provider}")  # a new filter: its head is read first
        expected = [k for k in order if k.startswith(provider + ":")]
        assert expected.index(key) >= HEAD_ROWS
        await tl.settled()
        await pilot.pause()
        assert tl.count == len(expected) and tl.index == expected
        assert tl.cursor_key == key and tl.cursor_row == expected.index(key)  # not the top
        # moved by the user while the rest is read: the user's move stands
        app.apply_filter("")
        tl.action_first()
        await tl.settled()
        assert tl.cursor_row == 0 and tl.cursor_key == order[0]
    store.close()


async def test_changes_while_the_thread_reads_the_order_take_their_places_after(
        tmp_path: Path, make_big, monkeypatch: pytest.MonkeyPatch, patient_walk: None) -> None:
    import threading

    from tui.filter import compile_filter

    path = make_big()
    store = open_store(path, scope="live")
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.pause()
        await tl.settled()
        gate = threading.Event()
        real = store.order_job

        def held_job(*args, **kwargs):
            job = real(*args, **kwargs)
            run = job.run
            job.run = lambda: gate.wait(30) and run()
            return job

        monkeypatch.setattr(store, "order_job", held_job)
        app.apply_filter(MANY)  # the head now; the thread waits at the gate
        assert not tl._window.complete and tl._window.job is not None
        assert tl.count == HEAD_ROWS and not tl.count_is_exact  # a lower bound until the thread answers
        total = len(store)
        count_label = app.filter_bar.query_one("#filter-count")
        await wait_for(pilot, lambda: str(count_label.render()).startswith(f"{HEAD_ROWS}+ of {total:,}"))
        tasks = every_task(path)
        was_failed = next(t for t in tasks if t.state == "failed")
        now_failed = next(t for t in tasks if t.state == "succeeded")
        seen = statements(store) if isinstance(store, Store) and store.dialect == "sqlite" else []
        with open_store(path) as other:  # another process
            other.apply([was_failed.copy(state="succeeded", provider_status="SUCCEEDED"),
                         now_failed.copy(state="failed", provider_status="FAILED")])
        await wait_for(pilot, lambda: {was_failed.key, now_failed.key} <= tl._deferred)
        full = [q for q in seen if q.startswith("SELECT id FROM tasks") and "ORDER BY" in q and "LIMIT" not in q]
        assert not full, full[:2]  # the change did not make the screen read the whole order (SQLite's trace)
        assert not tl._window.complete  # nor did it read it in place
        gate.set()
        await tl.settled()
        await pilot.pause()
        with open_store(path) as fresh:
            pred = compile_filter(MANY)
            expected = {t.key for t in fresh.tasks() if pred(t)}
        assert set(tl.index) == expected and tl.count == len(expected)
        assert now_failed.key in tl.index and was_failed.key not in tl.index and tl.count_is_exact
        assert not tl._deferred
        # the filter bar says the exact count once the whole order is read (TaskList.OrderRead)
        await wait_for(pilot, lambda: str(count_label.render()).startswith(f"{len(expected):,} of {total:,}"))
    store.close()


async def test_a_rare_short_word_is_answered_at_once_and_the_thread_finds_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A word of 1-2 characters is below the trigram index's reach; when few rows hold it,
    the walk of the sort's index runs out of time.  The key is answered with what the walk
    had found (a prefix of the answer, "n+ of N"), never by a scan on the screen's thread
    (0.35-0.4 s at 1M); the list's thread reads the whole answer, exact then."""
    import tui.store as store_mod
    from tui.filter import compile_filter

    from tui.model import Task

    path = big(tmp_path)
    word = "zq"  # the bench's rows are hex ids, models, labels: none holds it; five old ones do
    with Store(path) as other:
        assert other.count_where(other.where(word)) == 0
        other.add("evolink", [f"zq-{i}" for i in range(5)])
        other.apply([Task("evolink", f"zq-{i}", state="succeeded", created_at=1e9, updated_at=1e9 + i)
                     for i in range(5)])  # last in the order: the walk is cut before them
    tasks = every_task(path)
    pred = compile_filter(word)
    want = {t.key for t in tasks if pred(t)}
    monkeypatch.setattr(store_mod, "HEAD_BUDGET", -1.0)  # the walk is cut at its first check
    store = Store(path, scope="live")
    app = make_app(make_config(tmp_path), store, offline=True)
    async with app.run_test(size=(140, 40)) as pilot:
        tl = app.task_list
        await pilot.pause()
        await tl.settled()
        seen = statements(store)  # the screen's connection (the thread reads on its own)
        app.apply_filter(word)  # a key's work, in its own turn
        assert not tl.count_is_exact and tl.count < len(want), word
        assert not [q for q in seen if "NOT INDEXED" in q], seen  # no scan on the screen's thread
        assert app.filter_bar._count_text.endswith("+ of 3,005"), app.filter_bar._count_text
        await tl.settled()
        assert tl.count_is_exact and set(tl.index) == want, word
        assert len(want) == 5
        await wait_for(pilot, lambda: app.filter_bar._count_text == "5 of 3,005")
    store.close()
