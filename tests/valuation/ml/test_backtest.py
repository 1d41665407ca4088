"""The time-split backtest end to end on synthetic sales (small and fast)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.valuation.ml import synthetic_sales
from valuation.ml.backtest import DefaultFeatures, run_backtest
from valuation.ml.metrics import RATIO_STUDY_KEYS


def _run(**kwargs):
    sales = synthetic_sales(n=4000, seed=8, years=4.0, annual_growth=0.06)
    return run_backtest(
        sales,
        "2018-07-01",
        DefaultFeatures(categorical=("property_type", "district"), workers=1),
        region_column="district",
        min_sales_per_region=400,
        param_grid=({"num_leaves": 15, "learning_rate": 0.1},),
        interval_methods=("absolute", "cqr"),
        interval_bins=(1,),
        num_threads=1,
        **kwargs,
    )


def test_backtest_end_to_end() -> None:
    result = _run()
    counts = result["counts"]
    assert counts["fit"] + counts["valid"] + counts["calibration"] + counts["test"] == counts["sales"]
    assert tuple(result["model"]) == RATIO_STUDY_KEYS
    assert tuple(result["baseline"]) == RATIO_STUDY_KEYS
    # The index was fitted on training sales only: its vintage is the last training month.
    assert result["index"]["vintage"] == "2018-06"
    # Prices grow 6 % a year and the index is flat after the vintage, so the later sales are
    # slightly under-valued, but the model still values them well and beats the baseline.
    model, baseline = result["model"], result["baseline"]
    assert 0.9 < model["median_ratio"] < 1.02
    assert model["mdape"] < baseline["mdape"]
    assert model["mdape"] < 0.15
    assert 0.6 < result["interval"]["overall"] < 0.95
    assert set(result["interval"]["by_price_quartile"]) == {"Q1", "Q2", "Q3", "Q4"}
    assert result["features"]["categorical"] == ["property_type", "district"]
    assert "nbh_ppm2_median_500m" in result["features"]["names"]
    predictions = result["predictions"]
    assert len(predictions) == counts["test"]
    assert (predictions["sale_date"] >= np.datetime64("2018-07-01")).all()
    assert (predictions["low_eur"] <= predictions["estimate_eur"]).all()
    assert result["validation"]["model"]["count"] == counts["valid"]
    assert result["index_refreshes"] == []


def test_monthly_index_refresh_follows_the_market() -> None:
    frozen, refreshed = (
        _run(offset_options=("comparables_eur",)),
        _run(offset_options=("comparables_eur",), index_refresh="M"),
    )
    vintages = [r["vintage"] for r in refreshed["index_refreshes"]]
    assert vintages[0] == "2018-06"
    assert vintages == sorted(vintages)
    assert len(vintages) == 6  # 2018-07 .. 2018-12, each valued with the index up to the month before
    # The model is the same; only the index moved, so the later sales are valued closer to their price.
    assert refreshed["chosen"]["trees"] == frozen["chosen"]["trees"]
    assert abs(refreshed["model"]["median_ratio"] - 1) < abs(frozen["model"]["median_ratio"] - 1)


def test_backtest_refuses_an_empty_test_period() -> None:
    with pytest.raises(ValueError, match="slices"):
        run_backtest(synthetic_sales(n=500), "2030-01-01", num_threads=1)


def test_the_reference_skips_sales_the_model_cannot_value_as_the_fit_does() -> None:
    """Found by the fault tests: with fewer than 2,000 training sales the reference takes them all,
    the very first of which have no earlier comparables; that made the whole training fail, though the
    fit itself leaves such sales out."""
    result = run_backtest(
        synthetic_sales(n=1500, seed=8, years=4.0, annual_growth=0.06),
        "2018-07-01",
        DefaultFeatures(categorical=("property_type", "district"), workers=1),
        offset_options=("comparables_eur",),
        param_grid=({"num_leaves": 15, "learning_rate": 0.1},),
        interval_bins=(1,),
        num_threads=1,
        reference=True,
        keep_predictions=False,
    )
    assert result["chosen"]["offset_feature"] == "comparables_eur"
    train = result["counts"]["fit"] + result["counts"]["valid"] + result["counts"]["calibration"]
    assert 0.9 * train < result["reference"]["rows"] < train  # all but the first, unvaluable sales
