"""The task list's fast path for bare words (a lowercased haystack per task)
must agree with the filter language's own predicate, for any query."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tui import filter as tfilter
from tui.model import STATES, Task
from tui.widgets.filter_bar import split_query
from tui.widgets.task_list import haystack

WORDS = ["evo", "flux", "batch", "RUN", "fail", "done", "x", "ß", "İ", "task-1", "comfy", "", "a:b",
         "state:run", "provider:up", "-evo", "-label:b", 'label:"batch 7"', "kind:img", "ed"]

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
)
queries = st.lists(st.sampled_from(WORDS) | text, max_size=4).map(" ".join)


def fast_match(query: str, task: Task) -> bool:
    """What TaskList does: words against the haystack, then the predicate if needed."""
    words, rest = split_query(query)
    hay = haystack(task)
    if any((needle in hay) == negate for needle, negate in words):
        return False
    return tfilter.compile_filter(query)(task) if rest else True


@settings(max_examples=400, deadline=None)
@given(query=queries, task=tasks)
def test_fast_path_agrees_with_the_filter_language(query, task):
    assert fast_match(query, task) == tfilter.compile_filter(query)(task)


def test_split_query_keeps_field_terms_for_the_predicate():
    assert split_query("evo -Flux") == ([("evo", False), ("flux", True)], False)
    assert split_query("state:failed evo") == ([("evo", False)], True)
    assert split_query("provider:") == ([], False)  # an empty field term matches everything
