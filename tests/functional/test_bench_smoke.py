"""Each benchmark runs on tiny sizes and yields well-formed results.

No timing is asserted here (machines are shared and noisy): the numbers live in
docs/benchmarks.md, produced by ``python -m bench``.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.__main__ import SUITES  # noqa: E402
from bench.common import table  # noqa: E402


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_benchmark_runs_quick(suite):
    results = importlib.import_module(SUITES[suite]).run(quick=True)
    assert results
    for r in results:
        assert math.isfinite(r.value) and r.value >= 0, r
        assert r.baseline is not None and math.isfinite(r.baseline), r  # a baseline measured in the same run
        assert r.goal and r.ok in (True, False)
    text = table(results)
    assert all(r.case in text for r in results)


def test_scale_headless_runs_at_one_size(tmp_path, monkeypatch):
    """``python -m bench.scale --headless``: ls --json and export, each a process, and the old way."""
    monkeypatch.setenv("TASKTUI_BENCH_DIR", str(tmp_path))
    from bench.scale import headless

    out = headless(1000)
    assert out["n"] == 1000
    for name in ("ls_json", "export_csv", "export_json", "old_ls_json"):
        assert out[name]["s"] > 0 and out[name]["mib"] > 0, (name, out)
