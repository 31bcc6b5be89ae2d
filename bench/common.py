"""Shared pieces of the benchmarks: results, the machine's description, timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass


@dataclass
class Result:
    """One line of the results table.

    ``value`` is tasktui's number, ``baseline`` the baseline's number in the same
    unit, ``goal`` a human statement, ``ok`` whether the goal was met.
    """

    bench: str
    case: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    goal: str = ""
    ok: bool | None = None
    notes: str = ""
    higher_is_better: bool = False  # throughputs; times, CPU and memory are lower-is-better
    floor: bool = False  # the baseline is a floor (does nothing), not a competitor: no ratio

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (> 1: tasktui wins)."""
        if self.floor or self.baseline is None or not self.value or not self.baseline:
            return None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores{mem}, "
            f"Python {platform.python_version()}")


def compile_package() -> None:
    """Byte-compile ``tui`` as installing the wheel does, so start-up times do
    not include compiling our own sources (a checkout run with
    PYTHONDONTWRITEBYTECODE=1 would otherwise pay that at every start)."""
    import compileall
    from pathlib import Path

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "tui"), quiet=1)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.elapsed = time.perf_counter() - self.start


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if value < 1:
            return f"{value * 1e3:.1f} ms"
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "%":
        return f"{value:.2f} %"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def table(results: list[Result]) -> str:
    rows = [("benchmark", "case", "tasktui", "baseline", "× better", "goal", "met")]
    for r in results:
        ratio = r.ratio
        rows.append((
            r.bench,
            r.case,
            fmt(r.value, r.unit),
            f"{fmt(r.baseline, r.unit)} ({r.baseline_name})" if r.baseline is not None else "-",
            f"{ratio:.1f}x" if ratio else "-",
            r.goal,
            {True: "yes", False: "NO", None: "-"}[r.ok],
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
