"""Model training speed: PriceModel on 1,000,000 synthetic rows x 40 features on this machine's cores.

One categorical feature with 500 levels, 5% missing values, a non-linear signal with noise; the last
10% of rows serve for early stopping, as the time-later validation slice does in production.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import ROUNDS, Figure, median, runs


def run(n: int = 1_000_000, p: int = 40, threads: int = 2) -> list[Figure]:
    from valuation.ml.model import PriceModel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, p))
    X[rng.random((n, p)) < 0.05] = np.nan
    X[:, 0] = rng.integers(0, 500, n)
    cell = rng.normal(0, 0.3, 500)
    z = np.nan_to_num(X)
    y = (
        12
        + cell[X[:, 0].astype(int)]
        + 0.3 * z[:, 1]
        + 0.2 * np.sin(z[:, 2])
        + 0.1 * z[:, 3] * z[:, 4]
        + 0.05 * z[:, 5:15].sum(axis=1)
        + rng.normal(0, 0.2, n)
    )
    names = [f"f{i}" for i in range(p)]
    n_fit = int(0.9 * n)
    seconds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        model = PriceModel(names, ["f0"], num_threads=threads).fit(X[:n_fit], y[:n_fit], X[n_fit:], y[n_fit:])
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(200):
        model.predict(X[i : i + 1])
    per_row_ms = (time.perf_counter() - started) / 200 * 1000
    return [
        Figure(
            "train PriceModel, 1M rows x 40 features",
            median(seconds),
            "s",
            target="<= 180 s",
            note=f"{model.best_iteration_} trees, early stopping; {runs(seconds, '{:.0f}')} s",
        ),
        Figure("predict one row (Booster.predict)", per_row_ms, "ms"),
    ]
