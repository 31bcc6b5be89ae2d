"""Unit tests of the engine's pure parts, with a fake clock: budget, schedule, backoff."""

from __future__ import annotations

import pytest

from tui.budget import Budget
from tui.engine import Schedule, backoff, observe, plan, priority
from tui.model import RUNNING, Task


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def test_budget_never_exceeds_count_in_any_window():
    clock = FakeClock()
    budget = Budget(100, 3600, clock)
    sent: list[float] = []
    for _ in range(3 * 3600):  # three hours, a take attempt every second
        if budget.take():
            sent.append(clock.t)
        clock.advance(1.0)
    # every sliding window of an hour holds at most 100 requests
    j = 0
    for i, t in enumerate(sent):
        while sent[j] <= t - 3600:
            j += 1
        assert i - j + 1 <= 100
    # and the budget is actually used: about 100 an hour (burst + refill)
    assert 280 <= len(sent) <= 310


def test_budget_burst_then_refill_and_wait_time():
    clock = FakeClock()
    budget = Budget(100, 3600, clock)
    assert budget.capacity == 10
    assert sum(budget.take() for _ in range(20)) == 10
    assert budget.available == 0
    assert budget.wait_time() == pytest.approx(36.0)
    clock.advance(36.0)
    assert budget.available == 1 and budget.take()
    assert not budget.take()


def test_budget_restore_counts_another_runs_requests():
    clock = FakeClock()
    budget = Budget(5, 60, clock, burst=5)
    budget.restore([1, 2, 3, 4, 5, 120])  # five in the last minute, one too old to count
    assert budget.available == 0
    assert not budget.take()
    clock.advance(56.0)  # the oldest of the five leaves the window
    assert budget.take()


def test_budget_recent_lists_ages_inside_window():
    clock = FakeClock()
    budget = Budget(10, 10, clock, burst=10)
    budget.take()
    clock.advance(4)
    budget.take()
    assert budget.recent() == [4.0, 0.0]
    clock.advance(7)
    assert budget.recent() == [7.0]


def _task(**kw) -> Task:
    return Task(provider="evolink", task_id="t1", state=RUNNING, **kw)


def next_interval(floor: float, s: Schedule, t: Task, now: float, wall_now: float, **kw) -> float:
    """``plan``'s wait, made the task's schedule (what the engine does with it)."""
    p = plan(floor, s, t, now, wall_now, **kw)
    s.adopt(p, now)
    return p.wait


def test_plan_leaves_its_schedule_alone_and_adopt_applies_it():
    s = Schedule()
    observe(s, _task(progress=10.0), now=0.0)
    t = _task(progress=30.0)
    observe(s, t, now=20.0)
    before = repr(s)
    p = plan(1.0, s, t, now=20.0, wall_now=0.0)
    assert repr(s) == before  # a plan is returned, never written into its argument
    assert p.predicted is not None and p.predicted[0] == 20.0
    s.adopt(p, 20.0)
    assert (s.interval, s.slack, s.due, s.predicted) == (p.wait, p.slack, 20.0 + p.wait, p.predicted)


def test_interval_floor_and_growth_without_progress():
    s = Schedule()
    t = _task()
    observe(s, t, now=0.0)
    assert next_interval(1.0, s, t, now=0.0, wall_now=0.0) == 1.0
    # unchanged for 100 s: a quarter of the quiet time
    observe(s, t, now=100.0)
    assert next_interval(1.0, s, t, now=100.0, wall_now=0.0) == pytest.approx(25.0)
    # never more than the cap
    observe(s, t, now=100000.0)
    assert next_interval(1.0, s, t, now=100000.0, wall_now=0.0) == 600.0
    # fixed mode ignores all of it
    assert next_interval(1.0, s, t, now=100000.0, wall_now=0.0, adaptive=False) == 1.0


def test_interval_targets_expected_end_from_progress_rate():
    s = Schedule()
    observe(s, _task(progress=10.0), now=0.0)
    t = _task(progress=30.0)
    observe(s, t, now=20.0)  # 1 point a second: 70 s to go
    assert s.rate == pytest.approx(1.0)
    assert next_interval(1.0, s, t, now=20.0, wall_now=0.0) == pytest.approx(35.0)
    t = _task(progress=99.5)
    observe(s, t, now=109.5)
    assert next_interval(1.0, s, t, now=109.5, wall_now=0.0) == 1.0  # near the end: the floor


def test_interval_uses_eta_and_created_at():
    s = Schedule()
    t = _task(created_at=1000.0, eta=100.0)
    observe(s, t, now=0.0)
    assert next_interval(2.0, s, t, now=0.0, wall_now=1020.0) == pytest.approx(40.0)
    # overdue: falls back to the quiet-time rule (just changed: the floor)
    assert next_interval(2.0, s, t, now=0.0, wall_now=1200.0) == 2.0


def test_observe_tracks_changes():
    s = Schedule()
    observe(s, _task(progress=5.0), now=0.0)
    observe(s, _task(progress=5.0), now=10.0)
    assert s.last_change == 0.0
    observe(s, _task(progress=5.0, provider_status="x"), now=20.0)
    assert s.last_change == 20.0
    assert s.polls == 3


def test_priority_prefers_never_polled_then_most_overdue():
    fresh = None
    a = Schedule(interval=10.0, last_poll=0.0)  # 10 intervals old at t=100
    b = Schedule(interval=100.0, last_poll=50.0)  # half an interval
    keys = sorted([("b", b), ("a", a), ("new", fresh)], key=lambda kv: priority(kv[1], 100.0))
    assert [k for k, _ in keys] == ["new", "a", "b"]


def test_backoff_grows_with_jitter_and_cap():
    assert backoff(1, 1.0, rand=lambda: 1.0) == 1.0
    assert backoff(4, 1.0, rand=lambda: 1.0) == 8.0
    assert backoff(4, 1.0, rand=lambda: 0.0) == 4.0
    assert backoff(30, 1.0, cap=300.0, rand=lambda: 1.0) == 300.0

