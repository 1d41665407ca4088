"""Neighbourhood features: earlier sales only, and one definition for batch and single targets."""

from __future__ import annotations

from typing import TypedDict

import numpy as np
import pytest

from valuation.ml.neighbourhood import (
    SaleArrays,
    feature_names,
    neighbourhood_features,
    neighbourhood_features_one,
)


class _Target(TypedDict):
    x: float
    y: float
    date: str


def _sales(x, y, dates, price_m2, kinds=None) -> SaleArrays:
    return SaleArrays.build(x, y, np.array(dates, dtype="datetime64[D]"), price_m2, kinds)


def test_sales_on_or_after_the_target_date_never_count() -> None:
    # Target at (0, 0) on 2020-06-01. Two earlier sales at 100 m; one the same day and one later, at
    # 50 m with a wildly different price: they would change both the count and the median.
    sales = _sales(
        [100, 0, 30, 40],
        [0, 100, 40, 30],
        ["2020-01-10", "2020-05-31", "2020-06-01", "2021-01-01"],
        [3000, 4000, 99_000, 99_000],
    )
    batch = neighbourhood_features([0.0], [0.0], ["2020-06-01"], sales)
    assert batch.loc[0, "nbh_count_500m"] == 2
    assert batch.loc[0, "nbh_ppm2_median_500m"] == 3500
    one = neighbourhood_features_one(0.0, 0.0, "2020-06-01", sales)
    assert one["nbh_count_1000m"] == 2
    assert one["nbh_ppm2_median_1000m"] == 3500
    # A day later, the same-day sale counts (and moves the median); the later one still does not.
    later = neighbourhood_features_one(0.0, 0.0, "2020-06-02", sales)
    assert later["nbh_count_500m"] == 3
    assert later["nbh_ppm2_median_500m"] == 4000


def test_a_training_row_never_sees_itself() -> None:
    sales = _sales([0, 10], [0, 0], ["2020-01-01", "2020-01-01"], [3000, 5000])
    features = neighbourhood_features(sales.x, sales.y, sales.day.astype("datetime64[D]"), sales)
    assert features["nbh_count_500m"].tolist() == [0, 0]
    assert np.isnan(features["nbh_ppm2_median_500m"]).all()


def test_radius_boundary_type_lag_and_min_count() -> None:
    sales = _sales(
        [500, 500.001, 900, 1200, 0],
        [0, 0, 0, 0, 300],
        ["2019-01-01", "2019-01-01", "2019-01-01", "2019-01-01", "2019-12-25"],
        [1000, 2000, 3000, 4000, 5000],
        ["flat", "flat", "flat", "flat", "house"],
    )
    target: _Target = {"x": 0.0, "y": 0.0, "date": "2020-01-01"}
    one = neighbourhood_features_one(**target, sales=sales)
    assert one["nbh_count_500m"] == 2  # exactly 500 m counts, 500.001 m does not; the house at 300 m does
    assert one["nbh_count_1000m"] == 4
    same_type = neighbourhood_features_one(**target, sales=sales, property_type="flat")
    assert same_type["nbh_count_500m"] == 1
    assert same_type["nbh_ppm2_median_1000m"] == 2000
    lagged = neighbourhood_features_one(**target, sales=sales, lag_days=30)
    assert lagged["nbh_count_500m"] == 1  # the house sold 7 days before is not published yet
    recent = neighbourhood_features_one(**target, sales=sales, max_age_days=200)
    assert recent["nbh_count_1000m"] == 1  # only the house is less than 200 days old
    sparse = neighbourhood_features_one(**target, sales=sales, property_type="flat", min_count=3)
    assert sparse["nbh_count_500m"] == 1
    assert np.isnan(sparse["nbh_ppm2_median_500m"])
    assert sparse["nbh_ppm2_median_1000m"] == 2000


def test_batch_and_single_target_are_identical_and_match_brute_force() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    x, y = rng.uniform(0, 4000, n), rng.uniform(0, 4000, n)
    x[:50] = np.round(x[:50], -2)  # some sales at exactly 500 / 1000 m from each other
    y[:50] = 0.0
    dates = np.datetime64("2018-01-01") + rng.integers(0, 700, n)
    price_m2 = rng.lognormal(8, 0.3, n)
    price_m2[::37] = np.nan  # sales without a usable price are ignored
    kinds = rng.choice(np.array(["flat", "house"]), n)
    sales = SaleArrays.build(x, y, dates, price_m2, kinds)

    for property_type in (None, kinds):
        # A small max_pairs forces many chunks; two workers process them in parallel.
        batch = neighbourhood_features(
            x, y, dates, sales, property_type=property_type, max_pairs=20_000, workers=2
        )
        assert list(batch.columns) == feature_names()
        for i in rng.choice(n, 150, replace=False).tolist() + list(range(10)):
            kind = None if property_type is None else kinds[i]
            one = neighbourhood_features_one(x[i], y[i], dates[i], sales, property_type=kind)
            for name, value in one.items():
                expected = batch.loc[i, name]
                assert value == expected or (np.isnan(value) and np.isnan(expected)), (i, name)
            usable = (dates < dates[i]) & np.isfinite(price_m2)
            if kind is not None:
                usable &= kinds == kind
            distance = np.hypot(x - x[i], y - y[i])
            for radius in (500, 1000):
                inside = usable & (distance <= radius)
                assert one[f"nbh_count_{radius}m"] == inside.sum()
                if inside.any():
                    assert one[f"nbh_ppm2_median_{radius}m"] == pytest.approx(np.median(price_m2[inside]))


def test_targets_without_coordinates_get_empty_features() -> None:
    sales = _sales([0], [0], ["2019-01-01"], [1000])
    batch = neighbourhood_features([np.nan, 0.0], [0.0, 0.0], "2020-01-01", sales)
    assert batch["nbh_count_500m"].tolist() == [0, 1]
    assert np.isnan(batch.loc[0, "nbh_ppm2_median_500m"])


@pytest.mark.parametrize("one_day", [True, False])
def test_dense_neighbourhoods_match_brute_force(one_day: bool) -> None:
    # Thousands of sales per circle (the histogram path of the medians), prices with many ties, both
    # a batch valued on one day (sales selected once per day) and targets on many days (pairs checked).
    rng = np.random.default_rng(11)
    n = 12_000
    x, y = rng.uniform(0, 2500, n), rng.uniform(0, 2500, n)
    dates = np.datetime64("2018-01-01") + rng.integers(0, 700, n)
    price_m2 = np.round(rng.lognormal(8, 0.3, n), -2)  # about 60 distinct values
    price_m2[::53] = np.nan
    sales = SaleArrays.build(x, y, dates, price_m2)
    m = 300
    tx, ty = rng.uniform(0, 2500, m), rng.uniform(0, 2500, m)
    tdates = np.repeat(np.datetime64("2019-06-01"), m) if one_day else dates[rng.integers(0, n, m)]
    batch = neighbourhood_features(tx, ty, tdates, sales, radii=(100.0, 500.0, 1000.0), lag_days=3)
    for i in range(m):
        usable = (dates < tdates[i] - np.timedelta64(3, "D")) & np.isfinite(price_m2)
        distance2 = (x - tx[i]) ** 2 + (y - ty[i]) ** 2
        for radius in (100, 500, 1000):
            inside = usable & (distance2 <= radius * radius)
            assert batch.loc[i, f"nbh_count_{radius}m"] == inside.sum()
            median = batch.loc[i, f"nbh_ppm2_median_{radius}m"]
            if inside.any():
                assert median == np.median(price_m2[inside]), (i, radius)
            else:
                assert np.isnan(median)
