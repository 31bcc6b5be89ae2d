"""The dashboard's tests of test_app.py and test_app_filter.py again, over a store opened
as the dashboard opens it (scope "live"): the task list then reads windows of the
store (row ids in list order from an index, rows around the viewport) instead of a
copy of every task.  Same tests, same expectations."""

from __future__ import annotations

import pytest

import test_app
import test_app_filter
import test_app_fixtures
import test_app_health
import test_app_live
import test_app_screens
from test_app import *  # noqa: F401,F403  (the tests, collected again here)
from test_app_filter import *  # noqa: F401,F403
from test_app_health import *  # noqa: F401,F403
from test_app_live import *  # noqa: F401,F403
from test_app_screens import *  # noqa: F401,F403
from tui.store import Store


class LiveStore(Store):
    """A store opened with scope "live", as the dashboard opens it.  The tests compute
    what they expect from ``store.tasks()``: here that lists every tracked task (read
    from the database), so the expectations stay those of the tests themselves."""

    def tasks(self):
        return list(self.iter_tasks())


def _live_store(path, tasks=None, *, events=True):
    full = _fill(path, tasks, events=events)
    full.close()
    return LiveStore(path, clock=test_app_fixtures.clock, scope="live")


_fill = test_app_fixtures.fill_store


@pytest.fixture(autouse=True)
def window_store(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (test_app, test_app_filter, test_app_fixtures, test_app_health, test_app_screens):
        if hasattr(module, "fill_store"):
            monkeypatch.setattr(module, "fill_store", _live_store)
    monkeypatch.setattr(test_app_live, "Store", lambda *a, **kw: LiveStore(*a, **kw, scope="live"))


# Snapshot tests compare against SVGs named after their own module: they stay there.
for _name in [n for n in list(globals()) if n.startswith("test_snapshot")]:
    del globals()[_name]
