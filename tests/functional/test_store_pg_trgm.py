"""The filter at scale on PostgreSQL (tests/pg.py, a real server): bare words answered by a
pg_trgm index over the haystack (``PgStore._trigram_ids``, used by ``Store.window_head``),
the head's walk cut off by the server, and a database where the extension cannot be
created (a role without CREATE on it) still filtering, by a scan, and saying so once."""

from __future__ import annotations

import logging
import random

import pytest

from tests.pg import PASSWORD, PgServer, pg_db, pg_server, pg_url  # noqa: F401  (fixtures)
from tui.filter import compile_filter
from tui.model import STATES, Task
from tui.store_pg import TRGM_INDEX, TRGM_QUERY, PgStore, has_trgm

# hostile and non-ASCII text: LIKE's own wildcards and escape, a quote, the Kelvin sign
# (lowercases to ASCII k), dotted capital I (lowercases to two characters), sharp s
PIECES = ["flux", "FLUX", "50%", "off_", "a\\b", "o'k", "\u212aelvin", "\u0130stanbul", "stra\u00dfe",
          "Caf\u00c9", "zz", "run", "x-1", "%_%"]
WORDS = ["flux", "50%", "f_o", "off_", "a\\b", "o'k", "kelvin", "\u212aelvin", "i\u0307stanbul", "stra\u00dfe",
         "caf\u00e9", "%_%", "run", "zzz", "ux5", "-flux", "id:flu", "flux state:fail", "provider:com flux",
         "xyz-never"]


def tasks(seed: int = 7, n: int = 240) -> list[Task]:
    rng = random.Random(seed)

    def text() -> str:
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 3)))

    return [Task(rng.choice(["evolink", "comfy", "Fr\u00e9epik"]), f"{text()}-{i}", kind=rng.choice([None, text()]),
                 label=rng.choice([None, text()]), model=rng.choice([None, text()]), state=rng.choice(STATES),
                 provider_status=rng.choice([None, text(), "PROCESSED"])) for i in range(n)]


def load(url: str, rows: list[Task]) -> None:
    with PgStore(url) as s:
        for t in rows:
            s.add(t.provider, [t.task_id], kind=t.kind, label=t.label)
        s.apply([t.copy(kind=None, label=None) for t in rows])


def expected(store: PgStore, query: str, sort: str = "provider") -> list[str]:
    """The keys the predicate passes, in the order of ``sort`` (SQL's order of every row)."""
    pred = compile_filter(query)
    every = store.window_ids(None, sort)
    by_id = store.tasks_by_id(every)
    return [by_id[i].key for i in every if pred(by_id[i])]


def keys(store: PgStore, ids: list[int]) -> list[str]:
    found = store.keys_by_id(ids)
    return [found[i] for i in ids]


def test_the_trigram_index_answers_bare_words_exactly(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.store_pg as store_pg

    monkeypatch.setattr(store_pg, "QUICK_WALK", 0)  # (a table this small is walked whole in 5 ms)
    load(pg_url, tasks())
    asked: list[tuple[str, int | None]] = []
    with PgStore(pg_url, scope="none") as store:
        real = store._trigram_ids

        def spy(word: str) -> list[int] | None:
            found = real(word)
            asked.append((word, None if found is None else len(found)))
            return found

        monkeypatch.setattr(store, "_trigram_ids", spy)
        assert store.notice is None
        for query in WORDS:
            for sort, reverse in (("provider", False), ("updated", True)):
                ids, complete = store.window_head(query, sort, reverse, limit=50)
                want = expected(store, query, sort)
                if reverse:
                    want = [k for k in keys(store, store.window_ids(None, sort, True)) if k in set(want)]
                assert complete or len(ids) == 50  # a head cut short only at the limit
                assert keys(store, ids) == want[:len(ids)], query
                if complete:
                    assert len(ids) == len(want), query
        used = {word for word, n in asked if n is not None}
        # every positive word of 3+ characters outside the states' names went to the index
        assert {"flux", "50%", "off_", "a\\b", "\u212aelvin".lower(), "xyz-never", "%_%"} <= used, asked
        assert not any(w in ("run",) for w, _ in asked)  # inside "running": the state matches too


def test_like_wildcards_in_a_word_are_literal(pg_url: str) -> None:
    with PgStore(pg_url) as store:
        store.add("evolink", ["50%off", "50xoff", "a_b", "axb", "a\\b", "ab"])
        assert sorted(keys(store, store._trigram_ids("50%off"))) == ["evolink:50%off"]
        assert sorted(keys(store, store._trigram_ids("a_b"))) == ["evolink:a_b"]
        assert sorted(keys(store, store._trigram_ids("a\\b"))) == ["evolink:a\\b"]


def test_the_index_exists_after_migrate_and_the_plan_uses_it(pg_url: str, pg_server: PgServer) -> None:
    with PgStore(pg_url) as store:
        store.add("evolink", [f"job-{i:05d}" for i in range(3000)] + ["rare-flux-7"])
        assert store._trgm_ready() and store.notice is None
        conn = store._conn.raw
        assert has_trgm(conn)
        conn.execute("ANALYZE tasks")
        # the very query of _trigram_ids; a table this small is cheaper to scan, so the scan is
        # priced out to see that the index can answer it (bench/scale.py --pg shows it chosen at 100k)
        conn.execute("BEGIN")
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + TRGM_QUERY.replace("?", "%s"), ("%rare-flu%",), prepare=False).fetchall())
        conn.execute("ROLLBACK")
        assert f"Bitmap Index Scan on {TRGM_INDEX}" in plan, plan
        assert keys(store, store._trigram_ids("rare-flu")) == ["evolink:rare-flux-7"]


@pytest.fixture
def limited_url(pg_server: PgServer, pg_db: str):
    """A role that may create tables in the schema but not extensions in the database
    (no CREATE on it): what a shared server often gives a team."""
    role = "tt_" + pg_db[2:]
    with pg_server.admin() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f'REVOKE CREATE ON DATABASE "{pg_db}" FROM PUBLIC')
    import psycopg

    with psycopg.connect(pg_server.url(pg_db), autocommit=True) as conn:
        conn.execute(f"GRANT ALL ON SCHEMA public TO {role}")
    yield pg_server.url(pg_db, user=role)
    pg_server.drop_db(pg_db)
    with pg_server.admin() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_without_the_extension_the_filter_scans_and_says_so_once(
        limited_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tui.store_pg")
    load(limited_url, tasks(3, 120))  # the first open migrates: the optional step is refused
    refused = [r.getMessage() for r in caplog.records if "pg_trgm" in r.getMessage()]
    assert len(refused) == 1 and "permission denied" in refused[0], refused
    caplog.clear()
    with PgStore(limited_url, scope="none") as store:
        conn = store._conn.raw
        assert not has_trgm(conn)
        for query in ("flux", "50%", "kelvin", "id:flu -zz"):
            ids, complete = store.window_head(query, "provider", False, limit=500)
            assert complete and keys(store, ids) == expected(store, query), query
        assert store._trigram_ids("flux") is None
        assert store.notice and "no pg_trgm index" in store.notice and "db migrate" in store.notice
    said = [r.getMessage() for r in caplog.records if "pg_trgm" in r.getMessage()]
    assert len(said) == 1, said  # once per store, not per key


def test_db_migrate_creates_the_index_once_it_can(limited_url: str, pg_server: PgServer, pg_db: str) -> None:
    from tui.stores import db_migrate

    load(limited_url, tasks(4, 20))
    said = db_migrate(limited_url)  # its one line says the index is missing, and why
    assert "no pg_trgm index" in said and "db migrate" in said, said
    with pg_server.admin() as conn:
        conn.execute(f'GRANT CREATE ON DATABASE "{pg_db}" TO {limited_url.split("//")[1].split(":")[0]}')
    said = db_migrate(limited_url)
    assert "pg_trgm" not in said, said
    with PgStore(limited_url, scope="none") as store:
        assert store._trgm_ready() and store.notice is None


def test_the_walk_of_a_head_is_cut_off_by_the_server(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.store as store_mod

    load(pg_url, tasks(5, 60))
    with PgStore(pg_url, scope="none") as store:
        where = store.where("flux")
        got = store._walk(where, "provider", False, 10)
        assert got is not None and keys(store, got) == expected(store, "flux")[:10]
        import tui.store_pg as store_pg

        monkeypatch.setattr(store_mod, "HEAD_BUDGET", 0.001)
        monkeypatch.setattr(store_pg, "WALK_BUDGET", 0.001)
        slow = store.where("flux")
        slow = slow._replace(sql=f"({slow.sql}) AND pg_sleep(0.05) IS NOT NULL")
        assert store._walk(slow, "provider", False, 10) is None  # cancelled by statement_timeout
        assert store.window_ids(where, "provider", limit=3) == got[:3]  # the connection still works


def test_the_order_job_reads_the_whole_order_on_its_own_connection(pg_url: str) -> None:
    load(pg_url, tasks(6, 150))
    with PgStore(pg_url, scope="none") as store:
        assert store.heads_first
        for query in (None, "flux", "provider:com", "state:fail -zz"):  # provider: keeps a residual on PG
            where = store.where(query) if query else None
            want = store.window_ids(where, "updated", True)
            job = store.order_job(where, "updated", True)
            assert job.run().tolist() == want, query
            among = store.window_ids(None, "provider")[::2]
            job = store.order_job(where, "provider", False, among=among)
            assert job.run().tolist() == [i for i in among if i in set(want)], query
        assert store.where("provider:com").residual is not None


def test_cancel_really_cancels_the_query_on_the_server(pg_url: str, pg_server: PgServer, pg_db: str) -> None:
    import threading

    with PgStore(pg_url, scope="none") as store:
        store.add("evolink", ["a", "b"])
        job = store.order_job(None, "updated", False)
        job.sql = "SELECT id FROM tasks, pg_sleep(60) AS nap"  # a read that would take a minute
        got: list = []
        thread = threading.Thread(target=lambda: got.append(job.run()))
        thread.start()
        with pg_server.admin() as admin:
            def running() -> bool:
                return bool(admin.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND state = 'active'"
                                          " AND query LIKE %s", (pg_db, "%pg_sleep(60)%")).fetchall())

            while thread.is_alive() and not running():  # the event: the server runs it
                threading.Event().wait(0.02)
            assert running()
            job.cancel()
            thread.join(30)
            assert not thread.is_alive() and got == [None]  # well before the minute: cancelled
            assert not running()
    late = store.order_job(None, "updated", False)
    late.cancel()  # cancelled before it ran: it does not read at all
    assert late.run() is None


def test_a_probe_past_its_budget_leaves_the_head_to_the_walk(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.store_pg as store_pg

    load(pg_url, tasks(8, 80))
    with PgStore(pg_url, scope="none") as store:
        assert store._trigram_ids("flux") is not None
        monkeypatch.setattr(store_pg, "PROBE_BUDGET", 0.001)
        monkeypatch.setattr(store_pg, "TRGM_QUERY", store_pg.TRGM_QUERY.replace(
            "FROM tasks", "FROM tasks, pg_sleep(0.05) AS nap"))  # a probe that rechecks for long
        assert store._trigram_ids("flux") is None  # cancelled by the server
        ids, complete = store.window_head("flux", "provider", False, limit=500)
        assert complete and keys(store, ids) == expected(store, "flux")


def test_a_short_walk_comes_before_the_probe(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A word many rows hold fills the screen by the sort's index at once; the probe would
    build the GIN bitmap of every row holding its trigrams first."""
    import tui.store_pg as store_pg

    monkeypatch.setattr(store_pg, "QUICK_WALK", 30.0)  # whatever the machine's load
    load(pg_url, tasks(9, 100))
    with PgStore(pg_url, scope="none") as store:
        probed: list[str] = []
        monkeypatch.setattr(store, "_trigram_ids", lambda word: probed.append(word))
        for query in ("flux", "xyz-never", "flux state:fail"):
            ids, complete = store.window_head(query, "updated", False, limit=10)
            want = expected(store, query, "updated")
            assert keys(store, ids) == want[:10] and complete == (len(want) < 10), query
        assert probed == []


def test_a_filter_with_a_residual_reads_its_head_first(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``state:`` by prefix and field terms keep a residual on PostgreSQL: the head comes
    from the first candidates in the sort's order, the rest from the thread."""
    import tui.store as store_mod

    monkeypatch.setattr(store_mod, "HEAD_BUDGET", 600.0)  # whatever the machine's load
    load(pg_url, tasks(10, 300))
    with PgStore(pg_url, scope="none") as store:
        for query in ("state:fail", "-provider:com", "label:flux", "model:\u212a", "state:run label:50"):
            where = store.where(query)
            assert where.residual is not None, query
            want = expected(store, query, "updated")
            ids, complete = store.window_head(where, "updated", False, limit=10)
            if complete:
                assert keys(store, ids) == want, query
            else:
                assert len(ids) >= 10 and keys(store, ids) == want[:len(ids)], query
            job = store.order_job(where, "updated", False)
            assert keys(store, job.run().tolist()) == want, query
        ids, complete = store.window_head("-provider:com", "updated", False, limit=10)
        assert not complete  # many match: only the head was read


async def test_the_dashboard_says_once_that_filters_scan_without_the_index(limited_url: str, tmp_path) -> None:
    """The store's notice (no pg_trgm index, and how to get it) reaches the screen once,
    as a warning, when the first bare word asks for the index; not again at the next word."""
    from test_app_fixtures import make_config, notices, wait_for
    from tui.app import make_app

    load(limited_url, tasks(3, 120))
    store = PgStore(limited_url, scope="live")
    app = make_app(make_config(), store, offline=True)
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            said = notices(app)
            await pilot.pause()
            app.use_filter("flux")
            await wait_for(pilot, lambda: any("no pg_trgm index" in m for _, m in said))
            app.use_filter("kelvin")
            await wait_for(pilot, lambda: app.task_list.filter_query == "kelvin")
            for _ in range(3):  # three ticks of the app's second
                app._tick()
            assert len([m for _, m in said if "pg_trgm" in m]) == 1, said
    finally:
        store.close()
