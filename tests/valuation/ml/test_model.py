"""PriceModel: reproducible, saved with provenance, and a reloaded model predicts identically."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.valuation.ml import synthetic_sales
from valuation.ml.model import PriceModel, category_key, encode_categories

FEATURES = ["living_area_m2", "x", "y", "property_type", "district"]
CATEGORICAL = ["property_type", "district"]
FAST = {"learning_rate": 0.1, "num_leaves": 15}


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    sales = synthetic_sales(n=2000, seed=3)
    sales.loc[sales.index[::17], "living_area_m2"] = np.nan  # missing values are allowed
    return sales, np.log(sales["price_eur"].to_numpy())


def _fit(**kwargs) -> tuple[PriceModel, pd.DataFrame]:
    sales, y = _data()
    model = PriceModel(
        FEATURES, CATEGORICAL, params=FAST, num_boost_round=300, early_stopping_rounds=20, **kwargs
    )
    return model.fit(sales.iloc[:1500], y[:1500], sales.iloc[1500:], y[1500:]), sales


def test_saved_and_reloaded_model_predicts_identically(tmp_path) -> None:
    model, sales = _fit()
    sidecar = model.save(
        tmp_path / "price.txt",
        training_snapshot={"sales": 1500, "until": "2018-06-30"},
        metrics={"valid_mdape": 0.1},
        code_version="abc123",
    )
    assert sidecar == tmp_path / "price.json"
    loaded = PriceModel.load(tmp_path / "price.txt")
    probe = sales.iloc[1500:]
    assert np.array_equal(loaded.predict(probe), model.predict(probe))
    assert np.array_equal(loaded.contributions(probe), model.contributions(probe))
    # Booster.predict on the raw LightGBM file (what a request path does) gives the same numbers.
    assert np.array_equal(
        loaded.booster_.predict(model.matrix(probe)), model.booster_.predict(model.matrix(probe))
    )

    meta = json.loads(sidecar.read_text())
    assert meta["feature_names"] == FEATURES
    assert meta["categorical_features"] == CATEGORICAL
    assert meta["training_snapshot"] == {"sales": 1500, "until": "2018-06-30"}
    assert meta["metrics"] == {"valid_mdape": 0.1}
    assert meta["code_version"] == "abc123"
    assert meta["best_iteration"] == model.best_iteration_ < 300
    assert set(meta["library_versions"]) >= {"python", "lightgbm", "numpy"}
    assert meta["lgb_params"]["deterministic"] is True
    assert loaded.provenance_["model_sha256"] == meta["model_sha256"]


def test_tampered_model_file_is_refused(tmp_path) -> None:
    model, _ = _fit()
    model.save(tmp_path / "m.txt")
    (tmp_path / "m.txt").write_text((tmp_path / "m.txt").read_text() + "\n")
    with pytest.raises(ValueError, match="checksum"):
        PriceModel.load(tmp_path / "m.txt")


def test_training_is_reproducible() -> None:
    first, sales = _fit(seed=5)
    second, _ = _fit(seed=5)
    assert first.booster_.model_to_string() == second.booster_.model_to_string()
    assert np.array_equal(first.predict(sales), second.predict(sales))


def test_offset_feature_models_price_per_m2_and_contributions_add_up() -> None:
    sales, y = _data()
    sales = sales.dropna(subset=["living_area_m2"])
    y = np.log(sales["price_eur"].to_numpy())
    model = PriceModel(
        FEATURES, CATEGORICAL, params=FAST, num_boost_round=100, offset_feature="living_area_m2"
    ).fit(sales, y)
    assert model.offset_ref_ == pytest.approx(np.log(sales["living_area_m2"]).mean())
    contrib = model.contributions(sales)
    assert np.allclose(contrib.sum(axis=1), model.predict(sales), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="offset feature"):
        model.predict(sales.assign(living_area_m2=np.nan))


def test_categories_are_keys_and_unseen_values_are_missing() -> None:
    assert category_key(69001.0) == category_key(69001) == category_key("69001") == "69001"
    codes = encode_categories(pd.Series(["b", None, "zz", "a"]), ["a", "b"])
    assert codes[[0, 3]].tolist() == [1.0, 0.0]
    assert np.isnan(codes[[1, 2]]).all()
    model, sales = _fit()
    unseen = sales.iloc[:5].assign(district=99, property_type="castle")
    assert np.all(np.isfinite(model.predict(unseen)))


def test_arrays_in_feature_order_work_like_frames() -> None:
    model, sales = _fit()
    frame = sales.iloc[:50][FEATURES]
    assert np.array_equal(model.predict(frame.to_numpy(dtype=object)), model.predict(frame))


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="categorical"):
        PriceModel(["a"], ["b"])
    model, sales = _fit()
    with pytest.raises(ValueError, match="missing feature columns"):
        model.predict(sales.drop(columns=["x"]))


def test_vertical_equity_stretch_removes_regressivity_and_keeps_additivity(tmp_path) -> None:
    sales, y = _data()
    sales = sales.dropna(subset=["living_area_m2"]).reset_index(drop=True)
    y = np.log(sales["price_eur"].to_numpy())
    # A model of area alone leaves most of the price unexplained, so it is shrunk towards the mean.
    model = PriceModel(["living_area_m2"], params=FAST, num_boost_round=60).fit(sales.iloc[:1200], y[:1200])
    held_out, price = sales.iloc[1200:], sales["price_eur"].to_numpy()[1200:]
    model.calibrate_vertical_equity(held_out, price, prd_max=1.02, prb_bounds=(-0.03, 0.03))
    report = model.vertical_equity_
    assert report is not None
    assert report["before"]["prb"] < -0.03
    assert model.stretch_ > 1
    assert report["met"]
    assert report["after"]["prd"] <= 1.02
    assert -0.03 <= report["after"]["prb"] <= 0.03
    assert np.allclose(model.contributions(held_out).sum(axis=1), model.predict(held_out), rtol=0, atol=1e-9)
    model.save(tmp_path / "m.txt")
    loaded = PriceModel.load(tmp_path / "m.txt")
    assert loaded.stretch_ == model.stretch_
    assert np.array_equal(loaded.predict(held_out), model.predict(held_out))
