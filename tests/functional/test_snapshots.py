"""Screen snapshots of the dashboard on a fixed scenario: injected clock, no
engine, deterministic tasks, fixed terminal sizes.  Update the SVGs with
``pytest tests/functional/test_snapshots.py --snapshot-update`` and look at them."""

from __future__ import annotations

import pytest

from test_app_fixtures import HOSTILE_ERROR, HOSTILE_LABEL, NOW, clock, fill_store, make_config, scenario_tasks
from tui.app import make_app
from tui.model import Task


def scenario_app(tmp_path, tasks=None):
    store = fill_store(tmp_path / "tasks.db", tasks)
    store.save_counters("evolink", {"state": "rate_limited", "requests": 42, "errors": 3,
                                    "rate_limited": 2, "balance": 1234.5, "balance_unit": "credits"})
    return make_app(make_config(), store, clock=clock)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_main_screen(snap_compare, tmp_path, size):
    assert snap_compare(scenario_app(tmp_path), terminal_size=size)


def test_filter_active(snap_compare, tmp_path):
    assert snap_compare(scenario_app(tmp_path), press=["slash", *"batch", "enter"],
                        terminal_size=(160, 50))


def test_detail_screen_with_hostile_text(snap_compare, tmp_path):
    evil = Task(provider="evolink", task_id="evil-1", label=HOSTILE_LABEL, state="failed",
                provider_status="failed", error=HOSTILE_ERROR, model="[b]model[/b]",
                created_at=NOW - 65, updated_at=NOW,
                results=["https://cdn.example.com/out.png"],
                raw={"status": "failed", "error": {"message": HOSTILE_ERROR}})
    app = scenario_app(tmp_path, tasks=[evil, *scenario_tasks()[:3]])
    assert snap_compare(app, press=["enter"], terminal_size=(100, 36))


def health_tasks():
    """A stalled task, one whose polls fail, and their healthy neighbours (issue 11)."""
    return [
        Task(provider="qolaba", task_id="q-stalled-1", state="queued", provider_status="PENDING",
             stalled="Celery answers PENDING for ids it never saw or whose result expired",
             poll_path="/api/v1/task-status/q-stalled-1", created_at=NOW - 4000, updated_at=NOW - 5),
        Task(provider="comfy", task_id="c-failing-1", state="running", progress=30.0,
             last_error="HTTP 502 transient: bad gateway", last_error_at=NOW - 180, failed_polls=4,
             poll_path="/proxy/freepik/v1/ai/skin-enhancer/c-failing-1", details={"storage path": "users/a/x.jpg"},
             created_at=NOW - 600, updated_at=NOW - 1),
        *scenario_tasks()[:4],
    ]


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_health_marks_in_the_list(snap_compare, tmp_path, size):
    assert snap_compare(scenario_app(tmp_path, tasks=health_tasks()), terminal_size=size)


def test_detail_of_a_task_whose_polls_fail(snap_compare, tmp_path):
    assert snap_compare(scenario_app(tmp_path, tasks=health_tasks()), press=["enter"], terminal_size=(100, 36))
