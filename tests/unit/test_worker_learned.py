"""The worker's learned lengths: what the ETA and the stall check find for a task."""

from __future__ import annotations

from tui.config import EngineConfig, ProviderConfig
from tui.engine.schedule import Durations, Schedule
from tui.engine.worker import Worker
from tui.model import RUNNING, Task
from tui.store import Store


def _worker(tmp_path, name: str) -> Worker:
    store = Store(tmp_path / "tasks.db")
    return Worker(name, ProviderConfig(name=name, api_key="k"), store, EngineConfig(), clock=lambda: 0.0,
                  wall=lambda: 0.0, rand=lambda: 0.5)


def test_typical_finds_the_default_kinds_lengths_for_a_task_added_without_kind(tmp_path):
    """A task added without --kind is polled at the provider's default kind, and its
    ends were learned under that kind: the ETA (``_typical``) finds them, as the
    schedule's ``_learned`` does, instead of knowing nothing."""
    w = _worker(tmp_path, "freepik")
    kind = w.provider.default_kind
    assert kind
    learned = w.durations[(kind, "")] = Durations()
    for seconds in (40.0, 50.0, 60.0, 50.0, 50.0):
        learned.add(seconds)
    bare = Task(provider="freepik", task_id="t1", state=RUNNING)  # no kind, no model
    assert w._learned(bare) is learned
    assert w._typical(bare) == learned.typical() and learned.typical() > 0
    named = Task(provider="freepik", task_id="t2", state=RUNNING, kind=kind)
    assert w._typical(named) == learned.typical()
    other = Task(provider="freepik", task_id="t3", state=RUNNING, kind="image-upscaler")
    assert w._typical(other) is None  # another kind learned nothing


def test_a_task_added_without_kind_is_not_called_stalled_inside_its_kinds_usual_length(tmp_path):
    """The stall check uses the same lookup: tasks of the default kind take ~1000 s, so
    a bare task quiet for 3000 s (past the provider's 1800 s, inside 4 x 1000 s) is
    not stuck yet; with nothing learned it would be."""
    now = [3000.0]
    w = _worker(tmp_path, "freepik")
    w.clock = lambda: now[0]
    learned = w.durations[(w.provider.default_kind, "")] = Durations()
    for seconds in (900.0, 1000.0, 1100.0, 1000.0, 1000.0):
        learned.add(seconds)
    bare = Task(provider="freepik", task_id="t1", state=RUNNING)
    sched = Schedule(due=0.0)
    sched.last_change = 0.0
    assert w._quiet_stall(bare, sched) is None
    w.durations.clear()
    assert "no change for" in (w._quiet_stall(bare, sched) or "")  # the check itself does fire
