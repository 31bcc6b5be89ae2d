"""The task list's fast paths (a lowercased haystack per task for bare words;
one answer per category for provider/state/model/kind terms) must agree with
the filter language's own predicate, for any query."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tui import filter as tfilter
from tui.model import STATES, Task
from tui.widgets.filter_bar import plan_query
from tui.widgets.task_list import _stand_in, category, haystack

WORDS = ["evo", "flux", "batch", "RUN", "fail", "done", "x", "ß", "İ", "task-1", "comfy", "", "a:b",
         "state:run", "provider:up", "-evo", "-label:b", 'label:"batch 7"', "kind:img", "ed",
         "model:a", "-state:done", "status:e", "state:bad", "-kind:i", "id:1", "-error:x", "error:a"]

text = st.text(alphabet="abcdefghijklmnopqrstuvwxyzAEIOUß İ-_:1 ", max_size=12)
tasks = st.builds(
    Task,
    provider=st.sampled_from(["comfy", "upscayl", "qolaba", "freepik", "evolink"]),
    task_id=text.filter(bool),
    kind=st.none() | text,
    label=st.none() | text,
    state=st.sampled_from(STATES),
    provider_status=st.none() | text,
    model=st.none() | text,
    error=st.none() | text,
)
queries = st.lists(st.sampled_from(WORDS) | text, max_size=4).map(" ".join)


def fast_match(query: str, task: Task) -> bool:
    """What TaskList does: category terms on a stand-in holding only the task's
    category, words against the haystack, then the other terms' predicate."""
    words, cat_pred, pred = plan_query(query)
    if cat_pred is not None and not cat_pred(_stand_in(category(task))):
        return False
    hay = haystack(task)
    if any((needle in hay) == negate for needle, negate in words):
        return False
    return pred(task) if pred is not None else True


@settings(max_examples=400, deadline=None)
@given(query=queries, task=tasks)
def test_fast_path_agrees_with_the_filter_language(query, task):
    assert fast_match(query, task) == tfilter.compile_filter(query)(task)


def test_plan_query_sorts_terms_by_how_they_are_answered():
    assert plan_query("evo -Flux") == ([("evo", False), ("flux", True)], None, None)
    words, cat_pred, pred = plan_query("state:failed evo label:b7 id:X-1 -error:boom")
    assert words == [("evo", False), ("x-1", False)]  # an id's value is also a haystack needle
    assert cat_pred(Task("evolink", "t", state="failed", label="b7"))
    assert not cat_pred(Task("evolink", "t", state="running", label="b7"))
    assert not cat_pred(Task("evolink", "t", state="failed", label="b8"))
    assert pred(Task("evolink", "x-12")) and not pred(Task("evolink", "x-2"))
    assert not pred(Task("evolink", "x-12", error="Boom!"))
    assert plan_query("provider:") == ([], None, None)  # an empty field term matches everything
    words, cat_pred, pred = plan_query("-provider:evo kind:img model:flux")
    assert words == [] and pred is None
    assert cat_pred(Task("comfy", "t", kind="img", model="flux-dev"))
    assert not cat_pred(Task("evolink", "t", kind="img", model="flux-dev"))


async def test_list_filter_follows_the_store_before_and_after_warm_up(tmp_path):
    """The haystacks and categories are built in slices after the first frame;
    a filter typed before then, changes from the store, and a bulk add that
    re-sorts the list all give what the filter language says."""
    from test_app_fixtures import clock, fill_store, make_config, wait_for
    from tui.app import make_app
    from tui.widgets.task_list import BULK

    store = fill_store(tmp_path / "tasks.db")
    app = make_app(make_config(tmp_path), store, clock=clock, config_path=tmp_path / "config.toml")

    def expected(query):
        pred = tfilter.compile_filter(query)
        return {t.key for t in store.tasks() if pred(t)}

    async with app.run_test(size=(140, 40)) as pilot:
        tasks = app.task_list
        query = "state:bad -provider:up task"
        app.apply_filter(query)  # possibly before any slice was built
        assert set(tasks.index) == expected(query) and tasks.index
        await wait_for(pilot, lambda: tasks.warm_hay())
        # a running EvoLink task fails: it joins the list; a listed one succeeds: it leaves
        running = next(t for t in store.tasks() if t.provider == "evolink" and t.state == "running")
        listed = store.get(tasks.index[0])
        store.apply([Task(running.provider, running.task_id, state="failed", provider_status="FAILED"),
                     Task(listed.provider, listed.task_id, state="succeeded", provider_status="DONE")])
        await wait_for(pilot, lambda: running.key in tasks.index and listed.key not in tasks.index)
        assert set(tasks.index) == expected(query)
        # a bulk add (more than BULK at once): the list re-sorts and re-indexes
        store.add("evolink", [f"bulk-{i:05d}" for i in range(BULK + 10)], label="bulk")
        query = "state:unknown bulk-0000"
        app.apply_filter(query)
        await wait_for(pilot, lambda: set(tasks.index) == expected(query))
        assert len(tasks.index) == 10


async def test_scrollbar_follows_the_filter_without_a_layout_per_key(tmp_path):
    """The list resizes its scrollable area itself when the scrollbar stays; the
    scrollbar still shows the right length, and appears and goes when it must."""
    from test_app_fixtures import NOW, clock, fill_store, make_config
    from tui.app import make_app

    tasks = [Task(provider="evolink", task_id=f"t-{i:03d}", state="running" if i % 2 else "queued",
                  label="wide" if i < 120 else "few" if i < 123 else None,
                  created_at=NOW - 100 - i, updated_at=NOW - i) for i in range(200)]
    store = fill_store(tmp_path / "tasks.db", tasks, events=False)
    app = make_app(make_config(tmp_path), store, clock=clock, config_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 30)) as pilot:
        lst = app.task_list
        bar = lst.vertical_scrollbar

        def check(count):
            assert lst.count == count and lst.virtual_size.height == count + 1
            assert lst.show_vertical_scrollbar == (count + 1 > lst.scrollable_content_region.height)
            if lst.show_vertical_scrollbar:
                assert bar.window_virtual_size == count + 1

        await pilot.pause()
        check(200)
        for query, count in (("label:wide", 120), ("label:wide state:run", 60), ("label:few", 3),
                             ("", 200), ("t-1", 100)):
            had_bar = lst.show_vertical_scrollbar
            app.apply_filter(query)
            if had_bar and count + 1 > lst.scrollable_content_region.height:
                check(count)  # the scrollbar stays: updated in the same turn, no layout needed
            await pilot.pause()
            check(count)
        await pilot.press("G")  # the cursor at the end of a shorter list stays visible
        await pilot.pause()
        assert lst.cursor_row == 99 and lst.scroll_offset.y + lst.size.height - 1 > 99


async def test_a_long_query_scrolls_in_the_filter_input(tmp_path):
    """The filter input skips the screen layout Input asks for at every key; its
    text must still scroll so the cursor stays in view."""
    from test_app_fixtures import clock, fill_store, make_config
    from tui.app import make_app

    store = fill_store(tmp_path / "tasks.db")
    app = make_app(make_config(tmp_path), store, clock=clock, config_path=tmp_path / "config.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"abcdefghij" * 9, *"XYZ")
        await pilot.pause()
        inp = app.filter_bar.input
        assert inp.value.endswith("XYZ") and len(inp.value) == 93
        assert inp.scroll_offset.x > 0
        assert "XYZ" in inp.render_line(0).text
