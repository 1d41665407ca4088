"""The default feature builder: leak-free, and the same numbers for one target as for many."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.valuation.ml import synthetic_sales
from valuation.ml.features import DefaultFeatures, categorical_columns


def _pool(n: int = 1500) -> pd.DataFrame:
    sales = synthetic_sales(n=n, seed=9)
    sales["indexed_price_m2"] = sales["price_eur"] / sales["living_area_m2"]
    return sales


BUILDER = DefaultFeatures(
    categorical=("property_type", "district"), radii=(250.0, 1000.0), knn=(5, 20), workers=1
)


def test_columns_and_categoricals() -> None:
    pool = _pool()
    features = BUILDER(pool, pool)
    assert list(features.columns) == [
        "living_area_m2",
        "x",
        "y",
        "property_type",
        "district",
        "nbh_ppm2_median_250m",
        "nbh_count_250m",
        "nbh_ppm2_median_1000m",
        "nbh_count_1000m",
        "cmp5_ppm2_median",
        "cmp5_distance_m",
        "comparables_eur",
        "cmp20_ppm2_median",
        "cmp20_distance_m",
    ]
    assert categorical_columns(features) == ["property_type", "district"]
    # Only the very first sales have no earlier comparable; the stand-ins fill all but the first day.
    first_day = (pool["sale_date"] == pool["sale_date"].min()).to_numpy()
    assert np.isfinite(features["comparables_eur"].to_numpy()[~first_day]).all()


def test_later_sales_do_not_change_earlier_features() -> None:
    pool = _pool()
    before = BUILDER(pool, pool)
    cutoff = pool["sale_date"].iloc[1000]
    changed = pool.copy()
    later = (changed["sale_date"] >= cutoff).to_numpy()
    changed.loc[later, "indexed_price_m2"] *= 10
    after = BUILDER(changed, changed)
    pd.testing.assert_frame_equal(before[~later], after[~later])
    assert not before[later].equals(after[later])


def test_one_target_at_a_time_gives_the_batch_numbers() -> None:
    pool = _pool()
    batch = BUILDER(pool, pool)
    for i in np.random.default_rng(1).choice(len(pool), 40, replace=False):
        one = BUILDER(pool.iloc[[i]], pool)
        pd.testing.assert_frame_equal(one, batch.iloc[[i]], check_categorical=False)
