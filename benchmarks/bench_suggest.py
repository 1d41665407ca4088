"""Search-box suggestions on the demo region, server time (target: under 100 ms).

Times ``valuation.suggest.suggest`` (the query behind ``/search/suggestions``) for what notaries type:
part of a street, a French name without accents, a typo, a street and house number, a CaPaKey start.
The demo region is loaded into the bench database if it is not there yet.
"""

from __future__ import annotations

import time

from benchmarks import Figure, median, percentile

TYPED = [
    "kerk",
    "kerkstr",
    "rue de l'egl",
    "kerkstrat",
    "stationsstraat 1",
    "molenweg 2, 9998",
    "99001A0",
    "99001 a 3",
]
REPEAT = 30


def run() -> list[Figure]:
    from benchmarks.bench_features import _ensure_demo
    from valuation.suggest import suggest

    _ensure_demo()
    for text in TYPED:  # warm: plans and caches
        suggest(text)
    times, found = [], 0
    for _ in range(REPEAT):
        for text in TYPED:
            started = time.perf_counter()
            found += bool(suggest(text))
            times.append(time.perf_counter() - started)
    return [
        Figure(
            f"search suggestions, demo region: median of {len(times)}",
            median(times) * 1000,
            "ms",
            f"{len(TYPED)} typed texts x {REPEAT}; {found}/{len(times)} with suggestions",
            "< 100 ms",
        ),
        Figure("search suggestions, demo region: p95", percentile(times, 95) * 1000, "ms", "", "< 100 ms"),
    ]
