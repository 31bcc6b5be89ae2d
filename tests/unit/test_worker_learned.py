"""The worker's learned lengths: what the ETA and the stall check find for a task."""

from __future__ import annotations

from tui.config import EngineConfig, ProviderConfig
from tui.engine.schedule import Durations
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
