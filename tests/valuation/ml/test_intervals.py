"""An interval covers about what it claims on held-out data, overall and per tier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valuation.ml.intervals import ConformalInterval, conformal_quantile
from valuation.ml.metrics import coverage_by_quartile, interval_coverage
from valuation.ml.model import PriceModel

FEATURES = ["a", "b", "noisy"]
FAST = {"learning_rate": 0.1, "num_leaves": 15}


def _heteroscedastic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(-3, 3, n), "noisy": rng.integers(0, 2, n)})
    noise_sd = np.where(X["noisy"] == 1, 0.30, 0.08)  # some properties are much harder to value
    log_price = 12.5 + 0.4 * X["a"] + 0.3 * np.sin(X["b"]) + rng.normal(0, 1, n) * noise_sd
    return X, np.exp(log_price.to_numpy())


@pytest.fixture(scope="module")
def split():
    X, price = _heteroscedastic(9000, seed=21)
    parts = {
        "train": slice(0, 3000),
        "valid": slice(3000, 4000),
        "cal": slice(4000, 5500),
        "test": slice(5500, 9000),
    }
    data = {name: (X.iloc[rows].reset_index(drop=True), price[rows]) for name, rows in parts.items()}
    point = PriceModel(FEATURES, params=FAST, num_boost_round=300, early_stopping_rounds=20).fit(
        data["train"][0], np.log(data["train"][1]), data["valid"][0], np.log(data["valid"][1])
    )
    quantiles = ConformalInterval(
        FEATURES, coverage=0.8, quantile_params=FAST, num_boost_round=300, early_stopping_rounds=20
    ).fit_quantile_models(*data["train"], *data["valid"])
    return data, point, quantiles


@pytest.mark.parametrize(
    ("method", "n_bins"), [("cqr", 1), ("normalised", 1), ("absolute", 1), ("absolute", 4)]
)
def test_interval_covers_what_it_claims_on_held_out_data(split, method, n_bins) -> None:
    data, point, quantiles = split
    if method == "absolute":
        interval = ConformalInterval(coverage=0.8, method="absolute", n_bins=n_bins)
    else:
        interval = quantiles
        interval.method, interval.n_bins = method, n_bins
    X_cal, price_cal = data["cal"]
    interval.calibrate(X_cal, price_cal, point.predict_price(X_cal))
    assert interval.calibration_coverage_ >= 0.8

    X_test, price_test = data["test"]
    estimate = point.predict_price(X_test)
    low, high = interval.predict_interval(X_test, estimate)
    assert np.all(low <= estimate)
    assert np.all(estimate <= high)
    assert interval_coverage(price_test, low, high) == pytest.approx(0.80, abs=0.03)
    by_estimate = coverage_by_quartile(price_test, low, high, by=estimate)
    assert all(abs(c - 0.8) < 0.08 for c in by_estimate.values()), by_estimate
    if method in ("cqr", "normalised"):
        # Adaptive methods: the hard-to-value sales get the wide intervals and are covered too.
        noisy = X_test["noisy"].to_numpy() == 1
        width = (high - low) / estimate
        assert np.median(width[noisy]) > 2 * np.median(width[~noisy])
        for group in (noisy, ~noisy):
            assert interval_coverage(price_test[group], low[group], high[group]) == pytest.approx(
                0.8, abs=0.05
            )


def test_report_and_round_trip(split, tmp_path) -> None:
    data, point, quantiles = split
    X_cal, price_cal = data["cal"]
    quantiles.method, quantiles.n_bins = "cqr", 2
    quantiles.calibrate(X_cal, price_cal, point.predict_price(X_cal))
    X_test, price_test = data["test"]
    estimate = point.predict_price(X_test)
    report = quantiles.coverage_report(X_test, price_test, estimate)
    assert set(report) == {
        "stated",
        "overall",
        "by_price_quartile",
        "by_estimate_quartile",
        "median_relative_width",
    }
    path = quantiles.save(tmp_path)
    loaded = ConformalInterval.load(path)
    for ours, theirs in zip(
        loaded.predict_interval(X_test, estimate), quantiles.predict_interval(X_test, estimate), strict=True
    ):
        assert np.array_equal(ours, theirs)


def test_conformal_quantile_rank() -> None:
    scores = np.arange(1, 10, dtype=float)  # n = 9: rank ceil(10 * 0.8) = 8
    assert conformal_quantile(scores, 0.8) == 8.0
    assert conformal_quantile([1.0, 2.0], 0.8) == float("inf")  # too few to promise 80 %
