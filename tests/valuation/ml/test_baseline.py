"""The comparables baseline: the k nearest earlier sales of the same type."""

from __future__ import annotations

import numpy as np

from valuation.ml.baseline import comparables_estimate, comparables_price_m2, comparables_price_m2_one
from valuation.ml.neighbourhood import SaleArrays


def test_nearest_earlier_same_type_sales_only() -> None:
    # Along a line: flats at 10..50 m with price/m2 1000..5000; a later flat at 1 m (ignored); a house
    # at 2 m (other type, ignored).
    sales = SaleArrays.build(
        [10, 20, 30, 40, 50, 1, 2],
        [0] * 7,
        ["2020-01-01"] * 5 + ["2021-06-01", "2020-01-01"],
        [1000, 2000, 3000, 4000, 5000, 99_000, 99_000],
        ["flat"] * 6 + ["house"],
    )
    price_m2, count, farthest = comparables_price_m2(
        [0.0], [0.0], "2021-01-01", sales, property_type=["flat"], k=3
    )
    assert price_m2.tolist() == [2000.0]  # median of 1000, 2000, 3000
    assert count.tolist() == [3]
    assert farthest.tolist() == [30.0]
    estimate = comparables_estimate([0.0], [0.0], "2021-01-01", [80.0], sales, property_type=["flat"], k=4)
    assert estimate.tolist() == [80 * 2500.0]
    # Fewer earlier comparables than k: use what there is; none at all: NaN.
    few, count_few, _ = comparables_price_m2(
        [0.0, 0.0], [0.0, 0.0], ["2021-01-01", "2019-01-01"], sales, k=20
    )
    assert count_few.tolist() == [6, 0]
    assert few[0] == 3500.0
    assert np.isnan(few[1])


def test_matches_brute_force_on_random_sales() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    x, y = rng.uniform(0, 5000, n), rng.uniform(0, 5000, n)
    dates = np.datetime64("2018-01-01") + rng.integers(0, 800, n)
    value = rng.lognormal(8, 0.3, n)
    sales = SaleArrays.build(x, y, dates, value)
    targets = rng.choice(n, 100, replace=False)
    got, count, _ = comparables_price_m2(x[targets], y[targets], dates[targets], sales, k=20)
    for j, i in enumerate(targets):
        earlier = np.flatnonzero(dates < dates[i])
        nearest = earlier[np.argsort(np.hypot(x[earlier] - x[i], y[earlier] - y[i]), kind="stable")[:20]]
        assert count[j] == nearest.size
        if nearest.size:
            assert got[j] == np.median(value[nearest])


def test_batch_and_single_target_agree_with_ties() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    # Many sales share coordinates (several flats in one building), so distance ties are everywhere.
    buildings = rng.uniform(0, 3000, (300, 2))
    where = rng.integers(0, 300, n)
    x, y = buildings[where, 0], buildings[where, 1]
    dates = np.datetime64("2018-01-01") + rng.integers(0, 300, n)  # many same-day sales too
    value = rng.lognormal(8, 0.3, n)
    kinds = rng.choice(np.array(["flat", "house"]), n)
    sales = SaleArrays.build(x, y, dates, value, kinds)
    batch = comparables_price_m2(x, y, dates, sales, property_type=kinds, k=20, chunk_size=500)
    for i in rng.choice(n, 200, replace=False):
        # The serving path sees only the candidates a PostGIS query would fetch (all sales a little
        # beyond the k-th comparable, or everything when there are fewer than k), in shuffled order.
        reach = batch[2][i] * 1.1 + 1 if batch[1][i] == 20 else np.inf
        near = rng.permutation(np.flatnonzero(np.hypot(x - x[i], y - y[i]) <= reach))
        subset = SaleArrays.build(x[near], y[near], dates[near], value[near], kinds[near])
        one = comparables_price_m2_one(x[i], y[i], dates[i], subset, property_type=kinds[i], k=20)
        expected = (batch[0][i], batch[1][i], batch[2][i])
        assert one[1] == expected[1]
        assert (one[0] == expected[0]) or (np.isnan(one[0]) and np.isnan(expected[0]))
        assert (one[2] == expected[2]) or (np.isnan(one[2]) and np.isnan(expected[2]))
