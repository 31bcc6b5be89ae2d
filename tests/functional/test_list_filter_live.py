"""The production task list against the filter language, on live row updates
(issue #14): a filter is typed into the real filter bar, tasks change through
the store, and the keys the list shows (its public ``index``) must be exactly
the tasks ``tui.filter``'s predicate accepts, in every step.

No copy of the list's algorithm here: with negation ignored in the list's own
matching (bare words or field terms), on a fresh filter or on a row the store
changed, this test fails.
"""

from __future__ import annotations

import random

from test_app_fixtures import clock, fill_store, make_config, wait_for
from tui import filter as tfilter
from tui.app import make_app
from tui.model import Task

# words that occur in the tasks below, so that every term sometimes matches
WORDS = ["flux", "batch", "evo", "night", "x7", "done", "run", "fail", "comfy", "up"]
FIELDS = ["state", "label", "model", "provider", "kind"]
STATES = ["queued", "running", "succeeded", "failed", "cancelled"]


def _query(rng: random.Random) -> str:
    terms = []
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.5:  # bare words, often negated: the case the old test never reached
            terms.append(("-" if rng.random() < 0.6 else "") + rng.choice(WORDS))
        else:
            field = rng.choice(FIELDS)
            value = rng.choice(STATES if field == "state" else WORDS)
            terms.append(("-" if rng.random() < 0.4 else "") + f"{field}:{value}")
    return " ".join(terms)


def _change(rng: random.Random, task: Task) -> Task:
    """A new answer for ``task`` that may flip what a term says of it."""
    return Task(task.provider, task.task_id, kind=task.kind,
                label=f"{rng.choice(WORDS)}-{rng.choice(WORDS)}" if rng.random() < 0.7 else task.label,
                model=rng.choice(WORDS) if rng.random() < 0.5 else task.model,
                state=rng.choice(STATES), provider_status="P",
                error=rng.choice(WORDS) if rng.random() < 0.3 else None)


def _shown(app) -> set[str]:
    return set(app.task_list.index)


def _expected(store, query: str) -> set[str]:
    pred = tfilter.compile_filter(query)
    return {t.key for t in store.tasks() if pred(t)}


async def test_the_list_shows_what_the_filter_language_says_as_rows_change(tmp_path):
    rng = random.Random(14)
    store = fill_store(tmp_path / "tasks.db")
    app = make_app(make_config(tmp_path), store, clock=clock, config_path=tmp_path / "config.toml")
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        # typed, key by key, into the filter bar
        await pilot.press("slash", *"-flux", "space", *"-state:failed")
        await wait_for(pilot, lambda: app.query_text == "-flux -state:failed")
        await _agrees(pilot, app, store, app.query_text, "typed")
        for step in range(40):
            query = _query(rng)
            app.filter_bar.input.value = query  # what typing does, at once
            await wait_for(pilot, lambda: app.query_text == query)
            await _agrees(pilot, app, store, query, f"step {step}, new filter")
            # the store changes some rows (listed and unlisted ones) under the filter
            tasks = list(store.tasks())
            store.apply([_change(rng, t) for t in rng.sample(tasks, 4)])
            await _agrees(pilot, app, store, query, f"step {step}, rows changed")


async def _agrees(pilot, app, store, query: str, when: str) -> None:
    """The list comes to show exactly what the predicate accepts (store changes
    reach it after the app's short flush delay, so this waits for the event)."""
    want = _expected(store, query)
    try:
        await wait_for(pilot, lambda: _shown(app) == want, timeout=10)
    except AssertionError:
        raise AssertionError(f"{when}, query {query!r}: the list is wrong about "
                             f"{sorted(_shown(app) ^ want)}") from None
