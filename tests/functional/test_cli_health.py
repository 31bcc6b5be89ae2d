"""The command line shows a task's poll health, checks --kind, and fails
cleanly (issues 11, 12, 13): a real SQLite file in tmp_path, the commands run
in-process through ``tui.cli.main`` (or as a subprocess where a terminal,
a signal or a process start matters)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tui.cli import build_parser, main
from tui.headless import table, to_csv, wait_for
from tui.model import HEALTH_FIELDS, PROVIDERS, TASK_FIELDS, Task
from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]
WHEN = 1_790_000_000.0  # 2026-09-21T14:13:20Z

EVO = "task-unified-1756817821-4x3rx6ny"  # seeds/evolink-task-detail.md example
UUID = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"  # seeds/freepik-hyperflux-list-tasks.md example
UUID2 = "146b6c7f-0b8a-43b9-b35d-6489e6daee92"
PENDING_REASON = "Celery answers PENDING for ids it never saw or whose result expired"


@pytest.fixture
def home(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("TASKTUI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TASKTUI_DB", str(tmp_path / "tasks.db"))
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    monkeypatch.setenv("TASKTUI_CONFIG", str(tmp_path / "config.toml"))
    return tmp_path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def sub(tmp_path: Path, *argv: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_DB=str(tmp_path / "tasks.db"), TASKTUI_CONFIG=str(tmp_path / "config.toml"), CI="true")
    return subprocess.run([sys.executable, "-m", "tui", *argv], cwd=ROOT, env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout, **kw)


def health_tasks() -> list[Task]:
    return [
        Task("qolaba", "q1", state="queued", provider_status="PENDING", stalled=PENDING_REASON,
             poll_path="/api/v1/task-status/q1", details={"app": "text-to-image"}),
        Task("comfy", "c1", state="running", last_error="HTTP 502 transient: bad gateway",
             last_error_at=WHEN, failed_polls=3, poll_path="/proxy/freepik/v1/ai/skin-enhancer/c1"),
        Task("upscayl", "u1", state="succeeded", details={"storage path": "users/abc/x.jpg"}),
        Task("evolink", "e1", state="running", progress=40.0),
    ]


def store_health(path: Path) -> None:
    with Store(path) as store:
        for t in health_tasks():
            store.add(t.provider, [t.task_id])
        store.apply(health_tasks())


# ---------------------------------------------------------------- health marks


def test_ls_table_marks_stalled_and_failing_tasks():
    lines = table(health_tasks(), now=WHEN + 180).splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "⚠" in rows["qolaba"] and "!" not in rows["qolaba"]
    assert "!" in rows["comfy"] and "⚠" not in rows["comfy"]
    assert "⚠" not in rows["evolink"] and "!" not in rows["evolink"]
    # the marker stands before the state word, and the columns stay aligned
    assert rows["qolaba"].index("queued") == rows["evolink"].index("running")


def test_store_round_trip_carries_health_to_ls_json_and_export(home, capsys):
    store_health(home / "tasks.db")
    code, out, err = cli(capsys, "ls", "--json")
    assert code == 0, err
    data = {d["task_id"]: d for d in json.loads(out)}
    assert data["q1"]["stalled"] is True and data["q1"]["stalled_reason"] == PENDING_REASON
    assert data["q1"]["poll_path"] == "/api/v1/task-status/q1"
    assert data["c1"]["failed_polls"] == 3 and data["c1"]["last_error"].startswith("HTTP 502")
    assert data["c1"]["last_error_at"] == "2026-09-21T14:13:20Z"
    assert data["u1"]["details"] == {"storage path": "users/abc/x.jpg"}
    code, out, err = cli(capsys, "ls")
    assert "⚠" in out and "!" in out
    assert "⚠ 1 stalled" in err and "! 1 with failing polls" in err  # what the marks mean

    code, out, err = cli(capsys, "export", "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:len(TASK_FIELDS)] == list(TASK_FIELDS)  # the contract's columns first
    assert rows[0][len(TASK_FIELDS):] == list(HEALTH_FIELDS)  # then the additive ones
    by_id = {r[1]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert by_id["q1"]["stalled"] == "true" and by_id["q1"]["stalled_reason"] == PENDING_REASON
    assert by_id["c1"]["failed_polls"] == "3" and by_id["c1"]["last_error_at"] == "2026-09-21T14:13:20Z"
    assert json.loads(by_id["u1"]["details"]) == {"storage path": "users/abc/x.jpg"}
    assert by_id["e1"]["stalled"] == "false" and by_id["e1"]["details"] == ""
    code, out, err = cli(capsys, "export")
    assert {d["task_id"]: d["stalled"] for d in json.loads(out)}["q1"] is True


class FakeEngine:
    """What wait_for reads of an engine; ``start`` writes the marks a real engine
    would (tui.engine fills them from its polls)."""

    def __init__(self, store: Store, marks: list[Task], state: str = "ok") -> None:
        self.store, self.marks, self.state = store, marks, state
        self.workers = {t.provider: None for t in marks}
        self.focus = None
        self.requests = 0

    async def start(self) -> None:
        self.requests += 1
        self.store.apply(self.marks)

    async def stop(self) -> None:
        pass

    def status(self, name: str):
        return SimpleNamespace(state=self.state, last_error=None, requests=self.requests)


def test_wait_exits_2_naming_stuck_tasks_when_nothing_can_progress(tmp_path):
    with Store(tmp_path / "t.db") as store:
        store.add("qolaba", ["q1", "q2"])
        marks = [Task("qolaba", q, state="queued", stalled=PENDING_REASON) for q in ("q1", "q2")]
        lines: list[str] = []
        code, message = asyncio.run(wait_for(FakeEngine(store, marks), store, ["qolaba:q1", "qolaba:q2"],
                                             60, notice=lines.append))
    assert code == 2
    assert message.splitlines()[1:] == [f"qolaba:q1 — {PENDING_REASON}", f"qolaba:q2 — {PENDING_REASON}"]
    assert any("qolaba:q1" in line and "stalled" in line and PENDING_REASON in line for line in lines)


def test_wait_keeps_going_while_one_task_can_progress_and_names_the_stalled_one(tmp_path):
    with Store(tmp_path / "t.db") as store:
        store.add("qolaba", ["q1"])
        store.add("evolink", ["e1"])
        marks = [Task("qolaba", "q1", state="queued", stalled=PENDING_REASON),
                 Task("evolink", "e1", state="running")]
        lines: list[str] = []
        code, message = asyncio.run(wait_for(FakeEngine(store, marks), store, ["qolaba:q1", "evolink:e1"],
                                             0.3, notice=lines.append))
    assert code == 2 and "timed out" in message
    assert "qolaba:q1" in message  # the timeout names who is stuck too
    assert [line for line in lines if "stalled" in line] == [f"qolaba:q1 stalled: {PENDING_REASON}"]


def test_a_stall_mark_from_an_earlier_run_waits_for_the_engine_to_ask_again(tmp_path):
    with Store(tmp_path / "t.db") as store:
        store.add("qolaba", ["q1"])
        store.apply([Task("qolaba", "q1", state="queued", stalled=PENDING_REASON)])  # left by an earlier run
        engine = FakeEngine(store, [])
        engine.workers = {"qolaba": None}

        async def idle() -> None:  # the engine has not asked the provider yet
            pass

        engine.start = idle
        code, message = asyncio.run(wait_for(engine, store, ["qolaba:q1"], 0.3))
    assert code == 2 and message.startswith("timed out")


def test_wait_exits_2_when_answers_cannot_be_written(tmp_path):
    problem = "answers not written to the task database (kept in memory, retried): disk I/O error"
    with Store(tmp_path / "t.db") as store:
        store.add("evolink", ["e1"])
        engine = FakeEngine(store, [])
        engine.workers = {"evolink": None}

        async def start() -> None:
            engine.store_problem = problem

        engine.start = start
        code, message = asyncio.run(wait_for(engine, store, ["evolink:e1"], 60))
    assert code == 2 and message == problem


def test_wait_exits_2_when_the_provider_is_out_of_credits(tmp_path):
    with Store(tmp_path / "t.db") as store:
        store.add("freepik", ["f1"])
        engine = FakeEngine(store, [Task("freepik", "f1", state="running")], state="quota_exhausted")
        code, message = asyncio.run(wait_for(engine, store, ["freepik:f1"], 60))
    assert code == 2 and "freepik:f1 — " in message and "quota" in message


def test_wait_command_prints_the_stuck_list_and_who_did_not_succeed(home, capsys, monkeypatch):
    import tui.headless as headless

    with Store(home / "tasks.db") as store:
        store.add("qolaba", ["q1"])
        store.add("evolink", ["e1", "e2"])
        store.apply([Task("evolink", "e1", state="failed", error="content policy"),
                     Task("evolink", "e2", state="succeeded")])
    monkeypatch.setattr(headless, "make_engine", lambda config, store: FakeEngine(
        store, [Task("qolaba", "q1", state="queued", stalled=PENDING_REASON)]))
    code, out, err = cli(capsys, "wait", "--timeout", "60")
    assert code == 2, err
    assert f"qolaba:q1 — {PENDING_REASON}" in err
    assert "evolink:e1 failed: content policy" in err and "evolink:e2" not in err


# ---------------------------------------------------------------- --kind


def test_add_updates_the_kind_of_a_tracked_task(home, capsys):
    code, out, err = cli(capsys, "add", "freepik", "f1", "f2", "--kind", "skin-enhancer/faithful")
    assert code == 0 and "added 2" in out
    code, out, err = cli(capsys, "add", "freepik", "f1", "f2", "f3", "--kind", "skin-enhancer")
    assert code == 0, err
    assert "added 1" in out and "updated kind of 2 tasks" in out
    with Store(home / "tasks.db", readonly=True) as store:
        assert {t.task_id: t.kind for t in store.tasks()} == {"f1": "skin-enhancer", "f2": "skin-enhancer",
                                                             "f3": "skin-enhancer"}
    code, out, err = cli(capsys, "add", "freepik", "f1", "--kind", "skin-enhancer")
    assert "updated" not in out and "1 already tracked" in out


def test_add_warns_on_an_unknown_kind_and_still_adds(home, capsys, monkeypatch):
    from tui.providers import provider_class

    cls = provider_class("freepik")
    monkeypatch.setattr(cls, "check_kind", lambda self, kind: None if kind == "mystic" else
                        f"unknown kind {kind!r}; known: mystic, image-relight", raising=False)
    code, out, err = cli(capsys, "add", "freepik", UUID, "--kind", "mystik")
    assert code == 0 and "added 1" in out
    assert err.splitlines()[0] == "tasktui: warning: unknown kind 'mystik'; known: mystic, image-relight"
    code, out, err = cli(capsys, "add", "freepik", UUID2, "--kind", "mystic")
    assert "warning" not in err


def test_add_warns_with_the_providers_own_known_kinds(home, capsys):
    from tui.providers import provider_class

    if not hasattr(provider_class("freepik"), "check_kind"):
        pytest.skip("providers have no check_kind yet (helper A)")
    code, out, err = cli(capsys, "add", "freepik", UUID, "--kind", "no-such-kind")
    assert code == 0 and "added 1" in out
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "no-such-kind" in warning[0] and "mystic" in warning[0]


def test_add_help_lists_the_providers(capsys):
    code, out, err = cli(capsys, "add", "--help")
    assert code == 0 and all(p in out for p in PROVIDERS)


# ---------------------------------------------------------------- issue 13 bugs


@pytest.mark.parametrize("argv", [["add", "evolink", EVO], ["rm", "evolink", EVO], ["poll"],
                                  ["wait", "--timeout", "5"]])
@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_a_database_folder_that_cannot_be_made_is_one_line(home, capsys, argv, where):
    (home / "afile").write_text("x", encoding="utf-8")
    db = home / "afile" / "sub" / "tasks.db" if where == "under-a-file" else Path("/proc/tasktui-nope/tasks.db")
    code, out, err = cli(capsys, *argv, "--db", str(db))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "cannot create" in err and str(db.parent) in err


@pytest.mark.parametrize("argv", [["ls"], ["add", "evolink", EVO], ["wait", "--timeout", "5"], ["quota"],
                                  ["db", "copy", "FOLDER", "OTHER"]])
def test_a_db_path_that_is_a_folder_says_so_in_one_line(home, capsys, argv):
    """SQLite's own words for a folder were "disk I/O error" or "unable to open database file"."""
    folder = home / "renders"
    folder.mkdir()
    argv = [str(folder) if a == "FOLDER" else str(home / "other.db") if a == "OTHER" else a for a in argv]
    code, out, err = cli(capsys, *argv, *([] if argv[0] == "db" else ["--db", str(folder)]))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"{folder}: is a folder, not a database file" in err and "I/O" not in err, err


def test_ls_on_a_db_path_that_does_not_exist_says_so(home, capsys):
    code, out, err = cli(capsys, "ls", "--db", str(home / "typo.db"))
    assert code == 2 and "does not exist" in err and "no tasks tracked" not in err
    code, out, err = cli(capsys, "ls")  # the default place, nothing stored yet: a fresh start
    assert code == 0 and "no tasks tracked" in err


@pytest.mark.parametrize("form", [["--filter", "-state:done"], ["--filter=-state:done"], ["--filter", "-e2"]])
def test_negated_filter_is_accepted(home, capsys, form):
    with Store(home / "tasks.db") as store:
        store.add("evolink", ["e1", "e2"])
        store.apply([Task("evolink", "e2", state="succeeded")])
    code, out, err = cli(capsys, "ls", "--json", *form)
    assert code == 0, err
    assert [d["task_id"] for d in json.loads(out)] == ["e1"]
    code, out, err = cli(capsys, "export", *form)
    assert code == 0, err
    assert [d["task_id"] for d in json.loads(out)] == ["e1"]
    for cmd in ("wait", "poll"):  # parsed (no provider configured: a clean exit 2 after parsing)
        code, out, err = cli(capsys, cmd, *form)
        assert "expected one argument" not in err and "Traceback" not in err


def test_an_option_after_filter_is_still_an_option():
    from tui.cli import join_dash_values

    assert join_dash_values(["ls", "--filter", "-state:done", "--json"]) == ["ls", "--filter=-state:done", "--json"]
    assert join_dash_values(["ls", "--filter", "--json"]) == ["ls", "--filter", "--json"]
    assert join_dash_values(["wait", "--timeout", "-1", "--filter", "-h"]) == ["wait", "--timeout=-1", "--filter", "-h"]


def test_wait_with_no_match_is_exit_2(home, capsys):
    with Store(home / "tasks.db") as store:
        store.add("evolink", ["e1"], label="batch-7")
    code, out, err = cli(capsys, "wait", "--filter", "label:bacth-7")
    assert code == 2 and "no tasks match" in err


def test_unknown_state_value_is_flagged_with_did_you_mean(home, capsys):
    from tui.filter import check_query

    assert any("did you mean 'failed'" in w for w in check_query("state:faild"))
    assert any("did you mean 'evolink'" in w for w in check_query("-provider:evolnk"))
    assert any("did you mean 'comfy'" in w for w in check_query("provider:comfyy"))
    # known states, groups and prefixes, a provider's own raw status, open fields: fine
    assert check_query("state:done -state:fail state:not-found provider:evo state:PROCESSED label:x zz") == []
    with Store(home / "tasks.db") as store:
        store.add("evolink", ["e1"])
    code, out, err = cli(capsys, "ls", "--filter", "state:faild")
    assert "did you mean 'failed'" in err


def test_dashboard_refuses_when_stdout_is_not_a_terminal(tmp_path):
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    r = sub(tmp_path)
    assert r.returncode == 2
    assert r.stdout == "" and "\x1b" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "ls" in r.stderr and "wait" in r.stderr


def test_ls_aligns_columns_by_terminal_cells():
    tasks = [Task("evolink", "e1", label="猫の写真バッチ", state="running"),
             Task("evolink", "e2", label="🎨🎨 art", state="queued"),
             Task("evolink", "e3", label="plain", state="failed")]
    from rich.cells import cell_len

    lines = table(tasks, now=0).splitlines()
    starts = set()
    for line, word in zip(lines[1:], ("running", "queued", "failed")):
        starts.add(cell_len(line[:line.index(word)]))
    assert len(starts) == 1, lines


def test_wait_timeout_counts_from_process_start(home, capsys, monkeypatch):
    import tui.cli

    (home / "config.toml").write_text('[providers.evolink]\napi_key = "k-1234"\nbase_url = "http://127.0.0.1:9"\n',
                                      encoding="utf-8")
    with Store(home / "tasks.db") as store:
        store.add("evolink", ["e1"])
    monkeypatch.setattr(tui.cli, "STARTED", time.monotonic() - 30)  # start-up took 30 s
    began = time.monotonic()
    code, out, err = cli(capsys, "wait", "--timeout", "20")
    assert code == 2 and "timed out" in err
    assert time.monotonic() - began < 15  # it did not wait another 20 s


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "-inf"])
def test_wait_rejects_a_timeout_that_is_not_a_finite_positive_number(home, capsys, value):
    code, out, err = cli(capsys, "wait", f"--timeout={value}")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--timeout" in err, err


def test_every_subcommand_and_option_has_help_and_wait_lists_exit_codes(capsys):
    parser = build_parser()

    def walk(p, where):
        for action in p._actions:
            if action.help is None and not action.option_strings == ["-h", "--help"]:
                yield f"{where} {action.dest}"
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                helps = {a.dest: a.help for a in getattr(action, "_choices_actions", [])}
                for name, child in choices.items():
                    if not helps.get(name):
                        yield f"{where} {name} (no summary)"
                    yield from walk(child, f"{where} {name}")

    assert list(walk(parser, "tasktui")) == []
    code, out, err = cli(capsys, "wait", "--help")
    codes = out[out.index("exit codes:"):]
    for line in ("0  every matching task succeeded", "1  every matching task ended", "2  trouble"):
        assert line in codes
    assert "nothing left can progress" in codes


# ---------------------------------------------------------------- issue 12


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped():
    hostile = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    tasks = [Task("evolink", f"e{i}", label=text, error=text, state="failed") for i, text in enumerate(hostile)]
    tasks.append(Task("evolink", "-ok", label="fine", credits=-2.5))
    rows = list(csv.DictReader(io.StringIO(to_csv(tasks))))
    for row, text in zip(rows, hostile):
        assert row["label"] == "'" + text and row["error"] == "'" + text
    assert rows[-1]["task_id"] == "'-ok" and rows[-1]["label"] == "fine"
    assert rows[-1]["credits"] == "-2.5"  # a number we wrote is a number


def test_json_output_has_no_infinity_or_nan(home, capsys):
    with Store(home / "tasks.db") as store:
        store.add("evolink", ["e1", "e2"])
        store.apply([Task("evolink", "e1", state="succeeded", credits=float("inf")),
                     Task("evolink", "e2", state="succeeded", credits=-3.0)])

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))

    for argv in (["ls", "--json"], ["export"]):
        code, out, err = cli(capsys, *argv)
        assert code == 0, err
        credits = {d["task_id"]: d["credits"] for d in strict(out)}
        assert credits == {"e1": None, "e2": -3.0}


def test_quota_json_maps_non_finite_numbers_to_null(home, capsys, monkeypatch):
    import tui.engine.health as health

    rows = [{"provider": "evolink", "balance": float("inf"), "credits_spent": float("nan"),
             "nested": [{"x": float("-inf")}], "budget_left": -4}]
    (home / "config.toml").write_text("", encoding="utf-8")
    monkeypatch.setattr(health, "quota", lambda store, config: rows)  # what quota reads from the store
    code, out, err = cli(capsys, "quota", "--json")
    assert code == 0, err
    (row,) = json.loads(out, parse_constant=lambda c: pytest.fail(c))
    assert row["balance"] is None and row["credits_spent"] is None and row["nested"] == [{"x": None}]
    assert row["budget_left"] == -4


ADD_THEN_SIGNAL = """
import os, signal, sys
from tui import store as store_mod
SIG = getattr(signal, os.environ["SIG"])
if os.environ["WHEN"] == "after":  # the moment the commit returns
    real_add = store_mod.Store.add
    def add(self, *a, **k):
        out = real_add(self, *a, **k)
        os.kill(os.getpid(), SIG)
        return out
    store_mod.Store.add = add
else:  # before anything is written: while the store opens
    real_init = store_mod.Store.__init__
    def init(self, *a, **k):
        os.kill(os.getpid(), SIG)
        real_init(self, *a, **k)
    store_mod.Store.__init__ = init
from tui.cli import main
sys.exit(main(["add", "evolink", "e1", "e2"]))
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_after_add_committed_exits_0_with_its_summary(tmp_path, sig):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_DB=str(tmp_path / "tasks.db"), TASKTUI_CONFIG=str(tmp_path / "none.toml"),
               SIG=sig, WHEN="after")
    r = subprocess.run([sys.executable, "-c", ADD_THEN_SIGNAL], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "added 2 evolink tasks" in r.stdout and "Traceback" not in r.stderr
    with Store(tmp_path / "tasks.db", readonly=True) as store:
        assert len(store) == 2
    env["WHEN"] = "before"  # nothing committed yet: say so
    r = subprocess.run([sys.executable, "-c", ADD_THEN_SIGNAL], cwd=ROOT, env={**env, "TASKTUI_DB": str(
        tmp_path / "other.db")}, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "nothing was added" in r.stderr


# ---------------------------------------------------------------- ids by the add form's rule (issue 13 bug 15)

def test_add_reads_ids_by_the_add_forms_rule(home, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"# batch\n{EVO}, task-unified-2\n\"task-unified-3\"\n"))
    code, out, err = cli(capsys, "add", "evolink", f"https://api.evolink.ai/v1/tasks/{EVO}", "-", "task-unified-4")
    assert code == 0, err
    assert "added 4 evolink tasks" in out
    with Store(home / "tasks.db", readonly=True) as store:
        assert {t.task_id for t in store.tasks()} == {EVO, "task-unified-2", "task-unified-3", "task-unified-4"}


def test_add_skips_invalid_tokens_and_warns_on_shapes(home, capsys):
    code, out, err = cli(capsys, "add", "evolink", "..", "x" * 300, "e1", "e2", "e3", "e4", "e5", "e6", "e7")
    assert code == 0 and "added 7" in out
    assert err.count("skipped") == 2
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 6 and "… and 2 more" in warnings[-1] and "task-unified-" in warnings[0]
    code, out, err = cli(capsys, "add", "evolink", "..")
    assert code == 2 and "no valid task id" in err


def test_add_takes_the_kind_from_a_pasted_freepik_url(home, capsys):
    code, out, err = cli(capsys, "add", "freepik", f"https://api.freepik.com/v1/ai/image-relight/{UUID}")
    assert code == 0, err
    with Store(home / "tasks.db", readonly=True) as store:
        (t,) = store.tasks()
    assert (t.task_id, t.kind) == (UUID, "image-relight")
    assert "taken from the pasted URL" in err


def test_stop_engine_ends_a_worker_that_swallowed_its_cancel():
    # Python 3.11: asyncio.wait_for returns instead of raising when the cancel meets a
    # wake that is already set, so a worker loop carries on and engine.stop() waits for ever
    from tui.headless import stop_engine

    async def main() -> None:
        swallowed = []

        async def worker_loop() -> None:
            while True:
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    if not swallowed:
                        swallowed.append(1)
                        continue  # the race: this cancel is lost
                    raise

        worker = SimpleNamespace(runner=asyncio.ensure_future(worker_loop()))

        class Engine:
            workers = {"evolink": worker}

            async def stop(self) -> None:
                worker.runner.cancel()
                try:
                    await worker.runner
                except asyncio.CancelledError:
                    pass

        await asyncio.sleep(0)
        await asyncio.wait_for(stop_engine(Engine(), every=0.05), 20)
        assert swallowed and worker.runner.done()

    asyncio.run(main())


def test_quota_reads_stored_health_without_building_an_engine(home, capsys, monkeypatch):
    """Issue 14: `tasktui quota` learns provider state from the store (what engines wrote), the
    same way online or offline; it never builds an engine of its own."""
    import tui.headless as headless
    from tui.engine.health import ProviderHealth

    (home / "config.toml").write_text('[providers.evolink]\napi_key = "k"\n', encoding="utf-8")
    (home / "config.toml").chmod(0o600)
    with Store(home / "tasks.db") as store:
        blob = ProviderHealth(name="evolink", state="degraded", cause="1 task's polls failing").encode()
        store.apply([], [], {"evolink": blob})
    monkeypatch.setattr(headless, "make_engine", lambda *a: pytest.fail("quota built an engine"))
    code, out, err = cli(capsys, "quota", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["provider"], row["state"], row["cause"]) == ("evolink", "degraded", "1 task's polls failing")


@pytest.mark.parametrize("value", [1e20, -1e20, float("inf"), 253402300800.0 + 1])
def test_a_stored_time_out_of_range_is_shown_as_none_never_raised(home, capsys, value):
    """Issue 12 item 4: a time no date can hold, already in the database (an older
    tasktui, another writer), never crashes ls --json, export, quota or wait --json."""
    import sqlite3

    with Store(home / "tasks.db") as store:
        store.add("evolink", ["task-unified-a"])
        store.apply([Task("evolink", "task-unified-a", state="succeeded", results=["https://r/1"])])
    conn = sqlite3.connect(home / "tasks.db")
    with conn:
        conn.execute("UPDATE tasks SET created_at = ?, finished_at = ?, updated_at = ?", (value, value, value))
    conn.close()
    for argv in (("ls", "--json"), ("export",), ("export", "--format", "csv"), ("quota", "--json"),
                 ("wait", "--json", "--timeout", "30"), ("ls",)):
        code, out, err = cli(capsys, *argv)
        assert code == 0 and "Traceback" not in err, (argv, err)
    code, out, err = cli(capsys, "ls", "--json")
    (row,) = json.loads(out)
    assert row["created_at"] is None and row["finished_at"] is None


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
@pytest.mark.parametrize("argv", [["export"], ["export", "--format", "csv"], ["ls", "--json"], ["quota", "--json"]])
def test_output_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, argv):
    """`tasktui export > /dev/full`: the disk is full. One line on stderr, exit 2, no
    traceback (it was an OSError from the JSON writer, or at the interpreter's exit)."""
    db = tmp_path / "tasks.db"
    with Store(db) as store:
        store.add("evolink", [f"task-unified-{n}-abcdefgh" for n in range(400)])  # more than a buffer
    env = {**os.environ, "TASKTUI_DB": str(db), "TASKTUI_CONFIG": str(tmp_path / "none.toml"),
           "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "tui", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "tasktui: cannot write the output: No space left on device", done.stderr
