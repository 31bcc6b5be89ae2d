"""The filter language (tui/filter.py) through its public functions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.filter import FilterError, compile_filter, describe, parse, problems, refines, split_terms
from tui.model import PROVIDERS, STATES, Task


def make(provider="evolink", task_id="task-unified-1", **kw) -> Task:
    return Task(provider=provider, task_id=task_id, **kw)


TASKS = [
    make("evolink", "task-unified-AAA", label="Batch 7", state="running", provider_status="processing",
         model="gpt-image-2", kind=None),
    make("freepik", "3f2a-hyper", label=None, state="succeeded", provider_status="COMPLETED",
         kind="text-to-image/hyperflux"),
    make("upscayl", "up-42", label="my label", state="failed", provider_status="PROCESSING_FAILED",
         model="upscayl-standard-4x", error="Out of memory"),
    make("qolaba", "q-1", state="queued", provider_status="PENDING"),
    make("qolaba", "q-2", state="queued", provider_status="RETRY"),
    make("comfy", "c-9", state="not_found", kind="image-relight"),
    make("comfy", "c-10", state="unknown"),
    make("freepik", "f-cancel", state="cancelled", provider_status="CANCELLED", kind="text-to-image/flux-dev"),
]


def ids(query: str) -> list[str]:
    pred = compile_filter(query)
    return [t.task_id for t in TASKS if pred(t)]


def test_empty_and_blank_queries_match_everything():
    for q in ("", "   ", "\t"):
        assert ids(q) == [t.task_id for t in TASKS]


@pytest.mark.parametrize("query,expected", [
    ("hyper", ["3f2a-hyper"]),  # id and kind
    ("HYPERFLUX", ["3f2a-hyper"]),  # case-insensitive, kind
    ("batch", ["task-unified-AAA"]),  # label
    ("unified-aaa", ["task-unified-AAA"]),  # id, case-insensitive
    ("gpt", ["task-unified-AAA"]),  # model
    ("qolaba", ["q-1", "q-2"]),  # provider
    ("upsc", ["up-42"]),  # provider and model substring
    ("cancel", ["f-cancel"]),  # state / raw status / id
    ("not_found", ["c-9"]),  # state
    ("retry", ["q-2"]),  # raw provider status
    ("relight", ["c-9"]),  # kind
    ("memory", []),  # error text is not searched by bare words
    ("nothing-like-this", []),
])
def test_bare_words(query, expected):
    assert ids(query) == expected


@pytest.mark.parametrize("query,expected", [
    ("provider:comfy", ["c-9", "c-10"]),
    ("provider:FREE", ["3f2a-hyper", "f-cancel"]),
    ("model:4x", ["up-42"]),
    ("label:batch", ["task-unified-AAA"]),
    ("kind:text-to-image", ["3f2a-hyper", "f-cancel"]),
    ("id:q-", ["q-1", "q-2"]),
    ("task_id:up", ["up-42"]),
    ("error:memory", ["up-42"]),
    ("PROVIDER:qolaba", ["q-1", "q-2"]),  # field names are case-insensitive
])
def test_field_terms(query, expected):
    assert ids(query) == expected


def test_field_terms_do_not_leak_into_other_fields():
    # 'hyper' is in freepik's id and kind, but not in any label or model
    assert ids("label:hyper") == []
    assert ids("model:hyper") == []
    # 'up' is in upscayl's id; provider:up matches upscayl by name only
    assert ids("provider:up") == ["up-42"]


@pytest.mark.parametrize("query,expected", [
    ("state:failed", ["up-42"]),
    ("status:failed", ["up-42"]),  # alias
    ("state:run", ["task-unified-AAA"]),  # prefix of the state
    ("state:queued", ["q-1", "q-2"]),
    ("state:done", ["3f2a-hyper", "up-42", "c-9", "f-cancel"]),
    ("state:terminal", ["3f2a-hyper", "up-42", "c-9", "f-cancel"]),
    ("state:active", ["task-unified-AAA", "q-1", "q-2", "c-10"]),
    ("state:bad", ["up-42", "c-9", "f-cancel"]),
    ("state:not-found", ["c-9"]),
    ("state:notfound", ["c-9"]),
    ("state:COMPLETED", ["3f2a-hyper"]),  # the provider's raw status
    ("state:pending", ["q-1"]),  # raw status, case-insensitive
    ("state:RETRY", ["q-2"]),
    ("state:processing_failed", ["up-42"]),
    ("state:zzz", []),
])
def test_state_terms(query, expected):
    assert ids(query) == expected


def test_negation_and_conjunction():
    assert ids("-state:done") == ["task-unified-AAA", "q-1", "q-2", "c-10"]
    assert ids("provider:qolaba -state:retry") == ["q-1"]
    assert ids("-qolaba -comfy -freepik") == ["task-unified-AAA", "up-42"]
    assert ids("state:done provider:freepik") == ["3f2a-hyper", "f-cancel"]
    assert ids("state:done provider:freepik kind:flux-dev") == ["f-cancel"]
    assert ids("state:done provider:freepik kind:flux-dev -cancel") == []
    # negating a field that is None: the task has no such label, so it matches
    assert ids("-label:batch provider:evolink") == []
    assert ids("-label:batch provider:comfy") == ["c-9", "c-10"]


def test_quoted_values_keep_spaces():
    assert ids('label:"my label"') == ["up-42"]
    assert ids("label:'my label'") == ["up-42"]
    assert ids('"batch 7"') == ["task-unified-AAA"]
    assert ids('-"batch 7" provider:evolink') == []
    assert ids('"my lab') == ["up-42"]  # unterminated: the user is still typing


def test_split_terms():
    assert split_terms('a  "b c" label:"x y" -"z" ') == [
        ("a", False), ("b c", True), ("label:x y", True), ("-z", True)]
    assert split_terms('x ""') == [("x", False), ("", True)]


def test_malformed_terms_never_raise_and_are_reported():
    # empty value: ignored (matches all), reported
    assert ids("provider:") == ids("")
    assert problems("provider:") == ["'provider:' has no value (ignored)"]
    # unknown field: a bare word, reported
    weird = make("comfy", "abc:def")
    assert compile_filter("abc:def")(weird) is True
    assert compile_filter("abc:xyz")(weird) is False
    assert compile_filter("-abc:def")(weird) is False
    assert "unknown field 'abc:'" in problems("abc:def")[0]
    assert problems("-") and ids("-") == ids("")
    assert problems("state:done provider:evo label:\"x\"") == []


def test_strict_mode_raises_one_line():
    with pytest.raises(FilterError) as err:
        compile_filter("provider: bogus:1", strict=True)
    msg = str(err.value)
    assert "\n" not in msg and "provider:" in msg and "bogus:" in msg
    assert compile_filter("state:done", strict=True)(TASKS[1]) is True


def test_parse_and_describe():
    terms = parse('-state:done label:"a b" word')
    assert [(t.field, t.value, t.negate) for t in terms] == [
        ("state", "done", True), ("label", "a b", False), (None, "word", False)]
    assert parse("id:x")[0].field == "task_id"
    assert describe("") == "all tasks"
    assert describe("-state:done flux") == "not state is 'done' and any field ~ 'flux'"


@pytest.mark.parametrize("old,new,expected", [
    ("", "a", True),
    ("fl", "flu", True),
    ("flu", "fl", False),
    ("flux", "flux state:done", True),
    ("flux state:done", "flux", False),
    ("provider:e", "provider:evo", True),
    ("provider:evo", "model:evo", False),
    ("-flux", "-fluxx", False),  # a longer negated needle widens
    ("-flux", "-flux x", True),
    ("state:f", "state:fa", True),
    ("state:done", "state:done2", False),
    ("state:activ", "state:active", False),  # a group is not a prefix match
    ("state:notf", "state:notfound", False),
    ("provider:", "provider:c", True),
])
def test_refines(old, new, expected):
    assert refines(old, new) is expected


def _random_task(rnd: random.Random) -> Task:
    word = lambda: rnd.choice([None, "Flux", "batch-7", "gpt-image-2", "PROCESSED", "a b", "x:y"])  # noqa: E731
    return Task(provider=rnd.choice(PROVIDERS), task_id=f"t-{rnd.randrange(10**6)}-{rnd.choice('AbC')}",
                state=rnd.choice(STATES), label=word(), model=word(), kind=word(),
                provider_status=word(), error=word())


def _naive(task: Task, query: str) -> bool:
    """A slow, obviously correct reading of the bare-word and field rules."""
    for term in parse(query):
        if term.value == "":
            continue
        v = term.value.lower()
        if term.field is None:
            fields = [task.task_id, task.label, task.model, task.provider, task.kind, task.state,
                      task.provider_status]
            hit = any(f is not None and v in f.lower() for f in fields)
        elif term.field == "state":
            continue  # covered by the table tests above
        else:
            f = getattr(task, term.field)
            hit = f is not None and v in f.lower()
        if hit == term.negate:
            return False
    return True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["flux", "FLUX", "-batch", "provider:o", "model:image", "label:\"a b\"",
                                 "kind:x:y", "id:c", "-id:a", "7", "process", "error:b", "-evolink"]),
                max_size=4))
def test_matches_naive_reading(terms):
    query = " ".join(terms)
    rnd = random.Random(query)
    pred = compile_filter(query)
    for task in (_random_task(rnd) for _ in range(50)):
        assert pred(task) == _naive(task, query), (query, task)


def test_large_list_correctness():
    """Runs over many tasks (the dashboard's case); checks counts, not time."""
    rnd = random.Random(5)
    tasks = [_random_task(rnd) for _ in range(20_000)]
    for query in ("flux", "-state:done provider:e", "state:active label:batch"):
        pred = compile_filter(query)
        got = sum(1 for t in tasks if pred(t))
        want = sum(1 for t in tasks if _naive_full(t, query))
        assert got == want


def _naive_full(task: Task, query: str) -> bool:
    from tui.filter import GROUPS
    for term in parse(query):
        if term.field == "state":
            g = GROUPS.get(term.value)
            hit = task.state in g if g else task.state.startswith(term.value)
            if hit == term.negate:
                return False
        elif not _naive(task, ("-" if term.negate else "") + _quote(term)):
            return False
    return True


def _quote(term) -> str:
    return (f"{term.field}:" if term.field else "") + f'"{term.value}"'


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab:-\" stae", max_size=12), st.text(alphabet="ab:-\" stae", max_size=6))
def test_refines_is_never_wrong(old, extra):
    """When refines() says yes, the new query's matches are a subset of the old one's."""
    rnd = random.Random(old + extra)
    tasks = [_random_task(rnd) for _ in range(30)] + TASKS
    for new in (old + extra, extra + old, old.rstrip() + extra):
        if refines(old, new):
            before, after = compile_filter(old), compile_filter(new)
            assert all(before(t) for t in tasks if after(t)), (old, new)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_text_compiles_without_raising(query):
    pred = compile_filter(query)
    for task in TASKS:
        assert pred(task) in (True, False)
    problems(query)
    describe(query)


def test_check_query_knows_catalogue_and_declared_providers():
    from tui.filter import check_query

    assert check_query("provider:kling provider:runway") == []  # catalogue entries are providers too
    assert check_query("provider:acme", providers=["evolink", "acme"]) == []  # one the config declares
    assert check_query("provider:klign")[0].endswith("did you mean 'kling'?")
