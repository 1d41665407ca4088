"""Benchmarks that print figures (`make bench`); tests never assert on time.

Each ``bench_*.py`` module has ``run() -> list[Figure]``. They run against a separate database
(``<name>_bench``, created and migrated on first use) so the demo data is never touched. Figures are
medians over repeated runs where a run is short; quote medians, these machines are shared and noisy.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Rounds of the long benchmarks (training, sales import, feature build); their figures are medians.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    note: str = ""
    target: str = ""


def timings(fn: Callable[[], object], *, repeat: int, warmup: int = 1) -> list[float]:
    """Wall seconds of ``repeat`` calls of ``fn`` after ``warmup`` uncounted calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def runs(values: list[float], fmt: str = "{:.1f}") -> str:
    """``"median of 3 (runs 1.0-1.4)"``: how a median figure was made, for its note."""
    if len(values) == 1:
        return "one run"
    return f"median of {len(values)} (runs {fmt.format(min(values))}-{fmt.format(max(values))})"
