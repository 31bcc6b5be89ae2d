"""The detail's "next poll" line (tui/widgets/summary.py next_poll_text): a task
whose updates arrive by push says its planned poll is the safety net's, so a long
wait is never a silent one (issue 18)."""

from __future__ import annotations

from tui.model import Task
from tui.widgets.summary import next_poll_text

NOW = 1_800_000_000.0


def test_a_polled_task_says_when():
    task = Task("freepik", "f1", state="running", next_poll_at=NOW + 540)
    assert next_poll_text(task, NOW).plain == "in 9m"


def test_a_push_fed_task_says_the_poll_is_the_safety_nets():
    task = Task("freepik", "f1", state="running", next_poll_at=NOW + 540, details={"pushed_at": str(NOW - 5)})
    assert next_poll_text(task, NOW).plain == "in 9m (fed by push: a safety-net check)"


def test_an_ended_task_has_no_next_poll_pushed_or_not():
    task = Task("freepik", "f1", state="succeeded", details={"pushed_at": str(NOW - 5)})
    assert next_poll_text(task, NOW).plain == "never: the task has ended"
