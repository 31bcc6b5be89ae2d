"""``tasktui rm``: by ids as before, and every task a filter matches
(``rm [PROVIDER] --filter Q``), which prints the count and refuses an empty
filter without ``--all``.  In-process through ``tui.cli.main`` over a real
SQLite file in tmp_path."""

from __future__ import annotations

import os

import pytest

from tui.cli import main
from tui.model import Task
from tui.store import Store

EVO = "task-unified-1756817821-4x3rx6ny"  # seeds/evolink-task-detail.md example
UUID = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"  # seeds/freepik-hyperflux-list-tasks.md example


@pytest.fixture
def home(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("TASKTUI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TASKTUI_DB", str(tmp_path / "tasks.db"))
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    monkeypatch.setenv("TASKTUI_CONFIG", str(tmp_path / "config.toml"))
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", [EVO, "e-2", "e-3"])
    store.add("freepik", [UUID, "f-2"], label="batch-7")
    store.apply([Task("evolink", EVO, state="failed", error="boom"),
                 Task("evolink", "e-2", state="succeeded"),
                 Task("freepik", UUID, state="failed", error="nsfw"),
                 Task("freepik", "f-2", state="running", progress=10.0)])
    store.close()
    return tmp_path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def keys(home) -> set[str]:
    store = Store(home / "tasks.db")
    try:
        return {t.key for t in store.tasks()}
    finally:
        store.close()


def test_rm_by_ids_still_works(home, capsys):
    code, out, err = cli(capsys, "rm", "evolink", EVO, "nope")
    assert code == 0 and "removed 1 task, 1 not tracked" in out
    assert f"evolink:{EVO}" not in keys(home)


def test_rm_filter_removes_every_match_and_prints_the_count(home, capsys):
    code, out, err = cli(capsys, "rm", "--filter", "state:failed")
    assert code == 0, err
    assert "removed 2 tasks" in out
    assert keys(home) == {"evolink:e-2", "evolink:e-3", "freepik:f-2"}


def test_rm_provider_filter_keeps_other_providers(home, capsys):
    code, out, err = cli(capsys, "rm", "freepik", "--filter", "-state:running")
    assert code == 0, err
    assert "removed 1 task" in out
    assert keys(home) == {f"evolink:{EVO}", "evolink:e-2", "evolink:e-3", "freepik:f-2"}


def test_rm_filter_that_matches_nothing_says_so(home, capsys):
    code, out, err = cli(capsys, "rm", "--filter", "label:nothing-like-this")
    assert code == 0 and "removed 0 tasks (none matched)" in out
    assert len(keys(home)) == 5


def test_rm_refuses_an_empty_filter_without_all(home, capsys):
    for argv in (("rm", "--filter", ""), ("rm", "--filter", "  "), ("rm", "evolink", "--filter", "")):
        code, out, err = cli(capsys, *argv)
        assert code == 2 and "--all" in err, argv
    assert len(keys(home)) == 5
    code, out, err = cli(capsys, "rm", "evolink", "--all")
    assert code == 0 and "removed 3 tasks" in out
    assert keys(home) == {f"freepik:{UUID}", "freepik:f-2"}
    code, out, err = cli(capsys, "rm", "--all")
    assert code == 0 and "removed 2 tasks" in out and keys(home) == set()


def test_rm_needs_ids_or_a_filter_and_rejects_bad_ones(home, capsys):
    code, out, err = cli(capsys, "rm", "evolink")
    assert code == 2 and "--filter" in err
    code, out, err = cli(capsys, "rm", "evolink", "e-2", "--filter", "state:failed")
    assert code == 2 and "not both" in err
    code, out, err = cli(capsys, "rm", "nosuch", "--filter", "state:failed")
    assert code == 2 and "unknown provider" in err
    code, out, err = cli(capsys, "rm", "--filter", "provdier:evolink")  # misspelt field: refused, nothing removed
    assert code == 2 and "unknown field" in err
    assert len(keys(home)) == 5
