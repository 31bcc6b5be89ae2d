"""bench/scale.py's PostgreSQL mode at a tiny size (the numbers are the bench's business):
the same answers with and without the pg_trgm index, and the index made again after."""

from __future__ import annotations

from tests.pg import PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)


def test_measure_pg_runs_with_and_without_the_index(pg_url: str) -> None:
    import psycopg

    from bench.scale import measure_pg

    out = measure_pg(300, pg_url, queries=("flux",))
    with_, without = out["with"]["flux"], out["without"]["flux"]
    assert with_["filtered"] == without["filtered"] > 0
    assert with_["count"] == without["count"] == 300
    assert len(with_["filter_keys"]) == 4 and set(out["plans"]) == {"flu", "flux"}
    with psycopg.connect(pg_url) as conn:  # made again for the next run
        assert conn.execute("SELECT to_regclass('tasks_hay_trgm')").fetchone()[0] is not None
        assert conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 300
