"""Ratio-study statistics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from valuation.ml.metrics import (
    RATIO_STUDY_KEYS,
    cod,
    coverage_by_quartile,
    prb,
    prd,
    quartile_labels,
    ratio_study,
    trim_mask,
)


def test_ratio_study_by_hand_with_a_trimmed_outlier() -> None:
    # Ratios 0.8 0.9 1.0 1.0 1.1 1.2 5.0 (prices all 100). Q1 = 0.95, Q3 = 1.15, IQR = 0.2, so the upper
    # fence is 1.15 + 3 * 0.2 = 1.75 and 5.0 is trimmed before median ratio, COD, PRD and PRB.
    estimates = [80, 90, 100, 100, 110, 120, 500]
    prices = [100] * 7
    study = ratio_study(estimates, prices)

    assert tuple(study) == RATIO_STUDY_KEYS
    assert study["count"] == 7
    # |errors| over all 7: 0 0 .1 .1 .2 .2 4 -> median 0.1; within 10 %: 4 of 7; within 20 %: 6 of 7.
    assert study["mdape"] == pytest.approx(0.1)
    assert study["ppe10"] == pytest.approx(4 / 7)
    assert study["ppe20"] == pytest.approx(6 / 7)
    # Trimmed: median 1.0; mean |r - 1| = (.2 + .1 + 0 + 0 + .1 + .2) / 6 = 0.1 -> COD 10.
    assert study["median_ratio"] == pytest.approx(1.0)
    assert study["cod"] == pytest.approx(10.0)
    # mean ratio 1.0 / (600 / 600) = 1.
    assert study["prd"] == pytest.approx(1.0)
    assert study["coverage"] is None
    assert study["coverage_by_quartile"] is None


def test_trim_mask_uses_three_iqr() -> None:
    assert trim_mask([0.8, 0.9, 1.0, 1.0, 1.1, 1.2, 5.0]).tolist() == [True] * 6 + [False]


def test_cod_and_prd_by_hand() -> None:
    # ratios 0.9 1.0 1.1 1.3: median 1.05, mean |r - 1.05| = (.15 + .05 + .05 + .25) / 4 = 0.125.
    assert cod([0.9, 1.0, 1.1, 1.3]) == pytest.approx(100 * 0.125 / 1.05)
    # ratios 1.1 and 0.9: mean 1.0; sum(est) / sum(price) = 290 / 300.
    assert prd([110, 180], [100, 200]) == pytest.approx(1.0 / (290 / 300))


def test_prb_matches_the_iaao_regression() -> None:
    rng = np.random.default_rng(3)
    prices = rng.lognormal(12, 0.5, 200)
    estimates = prices * rng.lognormal(0, 0.1, 200)
    ratio = estimates / prices
    m = np.median(ratio)
    # The IAAO / assessr formula, spelled out: (ratio - m) / m on log2(0.5 * est / m + 0.5 * price).
    slope = np.polyfit(np.log2(0.5 * estimates / m + 0.5 * prices), (ratio - m) / m, 1)[0]
    assert prb(estimates, prices) == pytest.approx(slope)


def test_prb_sign_and_zero() -> None:
    prices = np.array([100_000, 200_000, 400_000, 800_000], dtype=float)
    assert prb(prices * 1.05, prices) == pytest.approx(0.0)
    # Cheap homes over-valued, dear ones under-valued: regressive, PRB < 0 (and PRD > 1).
    regressive = prices * np.array([1.2, 1.05, 0.95, 0.8])
    assert prb(regressive, prices) < 0
    assert prd(regressive, prices) > 1


def test_coverage_overall_and_by_price_quartile() -> None:
    prices = np.array([100, 200, 300, 400, 500, 600, 700, 800], dtype=float)
    low = prices * 0.9
    high = prices * 1.1
    high[[0, 2, 3]] = prices[[0, 2, 3]] * 0.95  # three sales fall outside: one in Q1, two in Q2
    study = ratio_study(prices, prices, low, high)
    assert study["coverage"] == pytest.approx(5 / 8)
    assert study["coverage_by_quartile"] == {"Q1": 0.5, "Q2": 0.0, "Q3": 1.0, "Q4": 1.0}


def test_quartiles_by_rank_with_ties() -> None:
    assert quartile_labels([5, 5, 5, 5, 5, 5, 5, 5]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    cover = coverage_by_quartile([1, 2, 3, 4], [0, 0, 0, 0], [9, 9, 0, 9], by=[4, 3, 2, 1])
    assert cover == {"Q1": 1.0, "Q2": 0.0, "Q3": 1.0, "Q4": 1.0}


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="strictly positive"):
        ratio_study([1, 2], [1, 0])
    with pytest.raises(ValueError, match="length"):
        ratio_study([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="both"):
        ratio_study([1, 2], [1, 2], low=[1, 1])
