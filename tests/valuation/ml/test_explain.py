"""Explanations in euros add up exactly to the displayed price; TreeSHAP values are shap's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.valuation.ml import synthetic_sales
from valuation.ml.explain import (
    OTHER_LABEL,
    eur_contributions,
    explain,
    group_small,
    largest_remainder_round,
    rounded_explanation,
)
from valuation.ml.model import PriceModel

FEATURES = ["living_area_m2", "x", "y", "property_type", "district"]


@pytest.fixture(scope="module")
def fitted() -> tuple[PriceModel, pd.DataFrame]:
    sales = synthetic_sales(n=2500, seed=11)
    model = PriceModel(
        FEATURES,
        ["property_type", "district"],
        params={"learning_rate": 0.1, "num_leaves": 15},
        num_boost_round=150,
        offset_feature="living_area_m2",
    ).fit(sales, np.log(sales["price_eur"]))
    return model, sales


def test_euro_contributions_add_up_to_the_price(fitted) -> None:
    model, sales = fitted
    base, contrib, price = eur_contributions(model.contributions(sales))
    assert np.allclose(price, model.predict_price(sales), rtol=1e-12, atol=0)
    assert np.allclose(base + contrib.sum(axis=1), price, rtol=1e-12, atol=0)
    # Signs follow the log contributions.
    log_contrib = model.contributions(sales)[:, :-1]
    assert np.all(np.sign(contrib) == np.sign(log_contrib))


def test_rounded_explanations_are_exact_in_integer_euros(fitted) -> None:
    model, sales = fitted
    for unit in (1000, 1):
        for explanation in explain(model, sales, unit=unit):
            assert explanation.base + sum(explanation.contributions.values()) == explanation.price
            assert explanation.price % unit == 0
            assert abs(explanation.price - explanation.price_unrounded) <= unit / 2
            assert list(explanation.contributions) == FEATURES
            assert all(isinstance(v, int) for v in explanation.contributions.values())
            grouped = explanation.grouped(max_items=2)
            assert sum(value for _, value in grouped) + explanation.base == explanation.price


def test_exact_scheme_near_zero_and_extreme_rows() -> None:
    names = ["a", "b", "c"]
    rows = np.array(
        [
            [0.3, -0.3, 0.0, 12.0],  # price equals the base: S = 0
            [1e-13, -2e-13, 0.0, 12.0],  # S tiny
            [2.0, 1.0, -0.5, 11.0],  # large moves
            [0.0, 0.0, 0.0, 12.5],  # no contributions at all
        ]
    )
    base, contrib, price = eur_contributions(rows)
    assert np.allclose(base + contrib.sum(axis=1), price, rtol=1e-12, atol=0)
    assert contrib[0, 0] == pytest.approx(np.exp(12.0) * 0.3)  # expm1(S)/S -> 1 when S = 0
    for explanation in rounded_explanation(names, rows, unit=1000):
        assert explanation.base + sum(explanation.contributions.values()) == explanation.price


def test_largest_remainder_rounding() -> None:
    assert largest_remainder_round([10.3, 20.6, 30.1], 61).tolist() == [10, 21, 30]
    shares = largest_remainder_round([1000.0, -400.0, 0.0], 1100)
    assert shares.sum() == 1100
    assert shares[2] == 0  # a zero contribution takes no share of the rounding remainder
    assert largest_remainder_round([0.0, 0.0, 0.0], 5).sum() == 5
    rng = np.random.default_rng(0)
    for _ in range(200):
        amounts = rng.normal(0, 5e4, rng.integers(1, 12))
        total = round(amounts.sum()) + int(rng.integers(-700, 700))
        assert largest_remainder_round(amounts, total).sum() == total


def test_group_small_keeps_the_total() -> None:
    contributions = {"area": 50_000, "location": -30_000, "rooms": 900, "epc": -400, "garden": 100}
    grouped = group_small(contributions, max_items=3, min_share=0.01)
    assert grouped == [("area", 50_000), ("location", -30_000), ("rooms", 900), (OTHER_LABEL, -300)]
    # With the default 2 % threshold, rooms (1.1 % of the absolute total) joins the other line.
    assert group_small(contributions, max_items=3)[-1] == (OTHER_LABEL, 600)
    assert group_small({"a": 1, "b": 2}, max_items=5, min_share=0.0) == [("b", 2), ("a", 1)]


def test_pred_contrib_equals_shap_tree_explainer() -> None:
    shap = pytest.importorskip("shap")
    sales = synthetic_sales(n=1500, seed=5)
    numeric = ["living_area_m2", "x", "y"]
    model = PriceModel(numeric, params={"learning_rate": 0.1, "num_leaves": 15}, num_boost_round=60).fit(
        sales, np.log(sales["price_eur"])
    )
    matrix = model.matrix(sales.iloc[:300])
    ours = model.contributions(sales.iloc[:300])
    explainer = shap.TreeExplainer(model.booster_)
    theirs = explainer.shap_values(matrix)
    assert np.allclose(ours[:, :-1], theirs, rtol=1e-6, atol=1e-9)
    assert np.allclose(ours[:, -1], explainer.expected_value, rtol=1e-9, atol=1e-9)
