"""tui.filter.compile_sql against the filter's own Python predicate: over random stores
and random queries, on SQLite and on a real PostgreSQL (tests/pg.py), the SQL (plus its
residual) selects exactly the tasks ``compile_filter(query)`` passes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pg import PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from tui.filter import compile_filter, compile_sql
from tui.model import STATES, Task
from tui.stores import open_store

# Text that tells SQL's lowercase from Python's: Kelvin sign (lowers to ASCII k), dotted
# capital I (lowers to two characters), sharp s, accented capitals, a dash and an underscore.
ALPHABET = "abAB-_ kK\u212aIi\u0130\u00df\u00c9\u00e9x1:%\\'\""
WORDS = ["ab", "AB", "k", "\u212a", "i", "\u0130", "\u00e9", "\u00c9", "run", "done", "active", "bad",
         "q", "fail", "not-found", "notfound", "succ", "PROC", "pro", "-", "_", "%", "'", "x1", "ß", "ss"]
FIELDS = ["", "", "provider:", "state:", "status:", "model:", "label:", "kind:", "id:", "error:", "bogus:"]


def random_tasks(seed: int, n: int = 160) -> list[Task]:
    rng = random.Random(seed)

    def text(k: int = 6) -> str:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, k))).strip() or "z"

    def maybe(k: int = 6) -> str | None:
        return None if rng.random() < 0.25 else text(k)

    providers = ["evolink", "comfy", "Fr\u00e9epik", "\u212aling", "up-scayl"]
    out = []
    for i in range(n):
        out.append(Task(
            provider=rng.choice(providers), task_id=f"{text(5)}-{i}", kind=maybe(), label=maybe(),
            state=rng.choice(STATES),
            provider_status=rng.choice([None, "PROCESSED", "in-progress", "Retry", "\u0130ş", text(4)]),
            model=maybe(), error=maybe(8)))
    return out


def load(target: Any, tasks: list[Task]) -> None:
    with open_store(target) as s:
        for t in tasks:
            s.add(t.provider, [t.task_id], kind=t.kind, label=t.label)
        s.apply([t.copy(kind=None, label=None) for t in tasks])


terms = st.tuples(st.booleans(), st.sampled_from(FIELDS),
                  st.one_of(st.sampled_from(WORDS), st.text(ALPHABET, min_size=1, max_size=3)),
                  st.booleans())


def query_of(parts: list[tuple[bool, str, str, bool]]) -> str:
    out = []
    for negate, field, word, quote in parts:
        word = word.replace('"', "")
        value = f'"{word}"' if quote and word else word
        out.append(("-" if negate else "") + field + value)
    return " ".join(out)


@pytest.fixture(params=["sqlite", "pg"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return tmp_path / "tasks.db"
    return request.getfixturevalue("pg_url")


def forget_hay(target: Any) -> None:
    """Rows written before the column ``hay`` existed: NULL on every third row."""
    sql = "UPDATE tasks SET hay = NULL WHERE id % 3 = 0"
    if isinstance(target, Path):
        import sqlite3

        with sqlite3.connect(target) as conn:
            conn.execute(sql)
    else:
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(sql)


@pytest.mark.parametrize("seed,old_rows", [(1, False), (2, True)])
def test_compile_sql_selects_what_the_predicate_passes(target: Any, seed: int, old_rows: bool) -> None:
    tasks = random_tasks(seed)
    load(target, tasks)
    if old_rows:
        forget_hay(target)
    store = open_store(target, scope="none")
    stored = list(store.iter_tasks())
    assert len(stored) == len(tasks)

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(terms, min_size=0, max_size=3))
    def check(parts: list) -> None:
        query = query_of(parts)
        pred = compile_filter(query)
        expected = [t.key for t in stored if pred(t)]
        where = store.where(query)  # as the store compiles it (PostgreSQL: knowing whether hay is complete)
        got = [t.key for t in store.iter_tasks(where, batch=64)]
        assert got == expected, (query, where.sql)
        assert store.count_where(where) == len(expected)
        assert store.window_ids(where, "provider") == store.window_ids(query, "provider")
        if store.dialect == "postgres" and only_words_and_ids(query):
            # every row has its hay: bare words and id: are exact in SQL, no row goes to Python
            assert (where.residual is None) == (not old_rows), (query, old_rows)

    try:
        check()
    finally:
        store.close()


def only_words_and_ids(query: str) -> bool:
    from tui.filter import parse

    terms = [t for t in parse(query) if t.value != ""]
    return bool(terms) and all(t.field in (None, "task_id") and "\x00" not in t.value for t in terms)


def test_sqlite_needs_no_residual_and_postgres_only_for_text() -> None:
    assert compile_sql("state:done -provider:comfy", "sqlite").residual is None
    assert compile_sql("flux", "sqlite").residual is None
    assert compile_sql("state:done", "postgres").residual is None  # a group: states only
    assert compile_sql("provider:evo", "postgres").residual is not None
    assert compile_sql("", "postgres")[:3] == ("TRUE", [], None)
    # bare words and id: read Python's lowercase in hay once every row has it (the store says)
    assert compile_sql("flux -\u212a id:ab", "postgres").residual is not None
    assert compile_sql("flux -\u212a id:ab", "postgres", hay_ready=True).residual is None
    assert compile_sql("flux", "postgres", hay_ready=True, use_hay=False).residual is not None
    assert compile_sql("flux label:x", "postgres", hay_ready=True).residual is not None
    assert compile_sql("flux", "sqlite", hay_ready=True) == compile_sql("flux", "sqlite")
    with pytest.raises(ValueError):
        compile_sql("x", "oracle")


def test_db_migrate_fills_the_haystack_of_older_rows(target: Any) -> None:
    from tui.stores import db_migrate

    tasks = random_tasks(5, n=30)
    load(target, tasks)
    forget_hay(target)
    said = db_migrate(target)
    assert said.endswith("the filter's index filled for 10 task(s)"), said
    assert "filled" not in db_migrate(target)  # nothing left to fill
    with open_store(target, scope="none") as s:
        from tui.filter import hay

        rows = s._read("SELECT hay, key FROM tasks WHERE deleted = 0")
        by_key = {t.key: t for t in s.iter_tasks()}
        assert rows and all(h == hay(by_key[k]) for h, k in rows)
