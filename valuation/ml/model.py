"""``PriceModel``: gradient-boosted trees (LightGBM) on the log of the indexed price.

The model is reproducible (``deterministic=True``, row-wise histograms, one seed for every random
choice, a configurable thread count), takes its feature names and categorical features explicitly,
accepts NaN for missing values, and stops early on a time-later validation slice.

An optional *offset feature* (typically the living area) turns the target into log price per m2:
``log price = log(offset) + f(X)``, where the trees learn ``f``. Price per m2 varies far more smoothly
than price, so trees need fewer splits to follow it; the offset feature stays an ordinary input of ``f``
too. Explanations hand the offset's part to that feature (see :meth:`PriceModel.contributions`).

Categorical features are encoded by the model itself: every value becomes a string key (``69001``,
``69001.0`` and ``"69001"`` are the same key), keys seen in training get integer codes (their position
in the sorted keys) stored with the model, unseen keys and missing values become NaN (LightGBM's
missing-value branch).

A saved model is LightGBM's own text file plus a JSON sidecar with its provenance; in memory the
booster is rebuilt from that same text, so a reloaded model predicts bit-identically.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from valuation.ml.metrics import ratio_study

FloatArray = npt.NDArray[np.float64]
FORMAT = "valuation.price_model/1"

#: Defaults; any key can be overridden through ``params``. The learning rate of 0.1 with at most 2000
#: trees keeps a 1M-row training within 3 minutes on 2 cores; smaller data can afford 0.05.
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.1,
    "num_leaves": 63,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    # Shallow trees keep TreeSHAP (pred_contrib, O(trees x leaves x depth^2)) fast enough to explain
    # every valuation of a 10,000-item batch; measured on Lyon: no loss of accuracy.
    "max_depth": 8,
    "max_bin": 255,
    "cat_smooth": 10.0,
    "min_data_per_group": 50,
    "verbosity": -1,
}


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a model's predictions depend on."""
    versions = {"python": platform.python_version()}
    for package in ("lightgbm", "numpy", "pandas", "scipy", "scikit-learn"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover - scikit-learn is optional
            versions[package] = "absent"
    return versions


def category_key(value: Any) -> str:
    """The string key of one category value; integral numbers lose their ``.0`` (69001.0 -> "69001")."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def _factorize(values: Any) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Codes (-1 for missing) and the string keys of the distinct values."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(codes), [category_key(u) for u in uniques]


def encode_categories(values: Any, categories: Sequence[str]) -> FloatArray:
    """Codes of ``values`` in ``categories`` (positions of their keys), NaN for unseen or missing."""
    codes, keys = _factorize(values)
    lookup = {key: float(code) for code, key in enumerate(categories)}
    by_unique = np.array([lookup.get(key, np.nan) for key in keys] + [np.nan], dtype=np.float64)
    return by_unique[codes]  # code -1 (missing) picks the trailing NaN


class PriceModel:
    """LightGBM regression of log price on explicitly named features.

    Parameters
    ----------
    feature_names : sequence of str
        Inputs, in the order the booster sees them.
    categorical_features : sequence of str, default ()
        The subset of ``feature_names`` that is categorical.
    params : mapping, optional
        LightGBM parameters overriding :data:`DEFAULT_PARAMS`.
    num_boost_round : int, default 2000
        Maximum number of trees (bounds the training time: about 0.08 s a tree for 1M rows x 40
        features on 2 cores).
    early_stopping_rounds : int, default 100
        Stop when the validation loss has not improved for this many rounds (only with a validation set).
    seed : int, default 42
        Seed of every random choice (bagging, feature fraction, data sampling).
    num_threads : int, default 2
        Threads for training and prediction.
    offset_feature : str, optional
        A positive feature (living area) whose log is added to the trees' output, see the module notes.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The fitted booster (only the trees up to the best iteration).
    best_iteration_ : int
        Number of trees kept.
    categories_ : dict of str to list of str
        Category keys of each categorical feature; a key's position is its code.
    offset_ref_ : float
        Mean log offset of the training rows (0 without offset); the explanations' reference.
    stretch_, stretch_centre_ : float
        Vertical-equity stretch of the log predictions and its centre (1 and 0 until
        :meth:`calibrate_vertical_equity`).
    vertical_equity_ : dict or None
        Figures of that calibration (before/after MdAPE, COD, PRD, PRB on the held-out sales).
    n_train_, n_valid_ : int
        Rows used for training and for early stopping.
    valid_score_ : float or None
        Best validation loss (LightGBM's metric for the objective, on the log target).
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        categorical_features: Sequence[str] = (),
        *,
        params: Mapping[str, Any] | None = None,
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 100,
        seed: int = 42,
        num_threads: int = 2,
        offset_feature: str | None = None,
    ) -> None:
        self.feature_names = list(feature_names)
        self.categorical_features = list(categorical_features)
        unknown = set(self.categorical_features) - set(self.feature_names)
        if unknown:
            raise ValueError(f"categorical features not among the features: {sorted(unknown)}")
        if offset_feature is not None and offset_feature not in self.feature_names:
            raise ValueError(f"offset feature {offset_feature!r} is not among the features")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ValueError("feature names must be unique")
        self.params = dict(params or {})
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads
        self.offset_feature = offset_feature

    # -- inputs --------------------------------------------------------------------------------------
    def lgb_params(self) -> dict[str, Any]:
        """The full LightGBM parameters used for training."""
        params = {**DEFAULT_PARAMS, **self.params, "seed": self.seed, "num_threads": self.num_threads}
        params["deterministic"] = True
        # Determinism needs a fixed histogram layout: column-wise (measured faster on 2 cores with
        # 40 features) unless row-wise is asked for.
        if not params.get("force_row_wise"):
            params["force_col_wise"] = True
        return params

    def _column(self, X: Any, j: int) -> Any:
        if isinstance(X, pd.DataFrame):
            return X[self.feature_names[j]]
        return np.asarray(X)[:, j]

    def _check_columns(self, X: Any) -> int:
        if isinstance(X, pd.DataFrame):
            missing = [name for name in self.feature_names if name not in X.columns]
            if missing:
                raise ValueError(f"missing feature columns: {missing}")
            return len(X)
        array = np.asarray(X)
        if array.ndim != 2 or array.shape[1] != len(self.feature_names):
            raise ValueError(f"X must have {len(self.feature_names)} columns in feature_names order")
        return int(array.shape[0])

    def matrix(self, X: Any) -> FloatArray:
        """The float64 matrix the booster sees: features in order, categories as codes, NaN if missing.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n, n_features)
            A frame with (at least) the feature columns, or an array in ``feature_names`` order.
        """
        n = self._check_columns(X)
        out = np.empty((n, len(self.feature_names)), dtype=np.float64)
        if isinstance(X, pd.DataFrame):
            # Numeric columns in one block (a column at a time costs ~40 us each through pandas).
            numeric = [
                j for j, name in enumerate(self.feature_names) if name not in self.categorical_features
            ]
            out[:, numeric] = X[[self.feature_names[j] for j in numeric]].to_numpy(dtype=np.float64)
            for j, name in enumerate(self.feature_names):
                if name in self.categorical_features:
                    out[:, j] = encode_categories(X[name], self.categories_[name])
            return out
        for j, name in enumerate(self.feature_names):
            column = self._column(X, j)
            if name in self.categorical_features:
                out[:, j] = encode_categories(column, self.categories_[name])
            else:
                out[:, j] = np.asarray(column, dtype=np.float64)
        return out

    def _log_offset(self, matrix: FloatArray) -> FloatArray:
        if self.offset_feature is None:
            return np.zeros(matrix.shape[0])
        offset = matrix[:, self.feature_names.index(self.offset_feature)]
        if not np.all(np.isfinite(offset) & (offset > 0)):
            raise ValueError(f"the offset feature {self.offset_feature!r} must be positive and present")
        return np.log(offset)

    # -- fitting -------------------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        log_price: npt.ArrayLike,
        X_valid: Any = None,
        log_price_valid: npt.ArrayLike | None = None,
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> Self:
        """Train on ``X`` -> ``log_price``, stopping early on the (time-later) validation set if given.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Training features (see :meth:`matrix`).
        log_price : array-like of float
            Natural log of the (indexed) price in EUR.
        X_valid, log_price_valid : optional
            Validation slice, later in time than the training rows, for early stopping.
        sample_weight : array-like of float, optional
            Training row weights.

        Returns
        -------
        PriceModel
            self.
        """
        self._check_columns(X)
        self.categories_ = {
            name: sorted(set(_factorize(self._column(X, self.feature_names.index(name)))[1]))
            for name in self.categorical_features
        }
        train_matrix = self.matrix(X)
        y = np.asarray(log_price, dtype=np.float64).ravel()
        if y.size != train_matrix.shape[0] or not np.all(np.isfinite(y)):
            raise ValueError("log_price must be finite, one value per row of X")
        train_offset = self._log_offset(train_matrix)
        self.offset_ref_ = float(train_offset.mean()) if self.offset_feature is not None else 0.0
        params = self.lgb_params()
        dataset_params = {"max_bin": params["max_bin"], "verbosity": -1}
        categorical = [self.feature_names.index(name) for name in self.categorical_features]
        train_set = lgb.Dataset(
            train_matrix,
            label=y - train_offset,
            weight=None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64),
            feature_name=self.feature_names,
            categorical_feature=categorical,
            params=dataset_params,
            free_raw_data=True,
        )
        callbacks: list[Any] = []
        valid_sets = []
        self.n_valid_ = 0
        if X_valid is not None and log_price_valid is not None:
            valid_matrix = self.matrix(X_valid)
            y_valid = np.asarray(log_price_valid, dtype=np.float64).ravel()
            valid_sets = [
                lgb.Dataset(valid_matrix, label=y_valid - self._log_offset(valid_matrix), reference=train_set)
            ]
            callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
            self.n_valid_ = int(y_valid.size)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=self.num_boost_round,
            valid_sets=valid_sets or None,
            valid_names=["valid"] if valid_sets else None,
            callbacks=callbacks,
        )
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        self.valid_score_ = None
        if valid_sets:
            scores = booster.best_score["valid"]
            self.valid_score_ = float(next(iter(scores.values())))
        # Keep exactly what save() writes, so in-memory and reloaded predictions are the same numbers.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=self.best_iteration_))
        self.n_train_ = int(y.size)
        self.stretch_, self.stretch_centre_ = 1.0, 0.0
        self.vertical_equity_: dict[str, Any] | None = None
        self.provenance_: dict[str, Any] = {}
        return self

    def calibrate_vertical_equity(
        self,
        X: Any,
        price: npt.ArrayLike,
        *,
        prd_max: float = 1.02,
        prb_bounds: tuple[float, float] = (-0.03, 0.03),
        stretch_bounds: tuple[float, float] = (0.8, 1.3),
        step: float = 0.005,
    ) -> Self:
        """Choose a stretch of the log predictions that removes their regressivity, on held-out sales.

        A model of the conditional mean or median is regressive when prices are noisy: it pulls
        estimates towards the middle, so cheap homes are over-valued and dear ones under-valued (PRD
        above 1, PRB below 0). The remedy here is one parameter, ``b``, applied around the median
        log estimate ``c`` of these sales: ``log estimate' = c + b * (log estimate - c)``. The ``b``
        closest to 1 for which PRD <= ``prd_max`` and PRB is within ``prb_bounds`` (bounds inside the
        IAAO's 0.98-1.03 and +/-0.05, to leave room for sampling noise) is kept; if none qualifies,
        the least violating one. It costs a little MdAPE, which is reported.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Held-out sales, later than the training rows (the validation slice; not the interval's
            calibration slice and never the test period).
        price : array-like of float
            Their (indexed) prices in EUR.

        Returns
        -------
        PriceModel
            self, with ``stretch_``, ``stretch_centre_`` and the before/after figures in
            ``vertical_equity_``.
        """
        self._check_fitted()
        log_estimate = self._raw_predict(X)
        prices = np.asarray(price, dtype=np.float64)
        centre = float(np.median(log_estimate))
        stretches = np.round(np.arange(stretch_bounds[0], stretch_bounds[1] + step / 2, step), 6)
        stretches = stretches[np.argsort(np.abs(stretches - 1.0), kind="stable")]
        best: tuple[float, float, dict[str, Any]] | None = None
        for b in stretches:
            study = ratio_study(np.exp(centre + b * (log_estimate - centre)), prices)
            violation = max(
                study["prd"] - prd_max, prb_bounds[0] - study["prb"], study["prb"] - prb_bounds[1], 0.0
            )
            if best is None or violation < best[1]:
                best = (float(b), violation, study)
            if violation == 0.0:
                break
        assert best is not None
        before = ratio_study(np.exp(log_estimate), prices)
        keys = ("mdape", "cod", "prd", "prb", "median_ratio")
        self.stretch_, self.stretch_centre_ = best[0], centre
        self.vertical_equity_ = {
            "stretch": best[0],
            "centre": centre,
            "n": int(prices.size),
            "prd_max": prd_max,
            "prb_bounds": list(prb_bounds),
            "met": best[1] == 0.0,
            "before": {key: before[key] for key in keys},
            "after": {key: best[2][key] for key in keys},
        }
        return self

    # -- predicting ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise RuntimeError("this PriceModel is not fitted yet")

    def _raw_predict(self, X: Any) -> FloatArray:
        """Log price before the vertical-equity stretch: ``Booster.predict`` plus the log offset."""
        self._check_fitted()
        matrix = self.matrix(X)
        raw = self.booster_.predict(matrix, num_threads=self.num_threads)
        return np.asarray(raw, dtype=np.float64) + self._log_offset(matrix)

    def predict(self, X: Any) -> FloatArray:
        """Predicted log price: ``Booster.predict``, plus the log offset, stretched (see
        :meth:`calibrate_vertical_equity`; no stretch unless calibrated)."""
        raw = self._raw_predict(X)
        if self.stretch_ == 1.0:
            return raw
        return self.stretch_centre_ + self.stretch_ * (raw - self.stretch_centre_)

    def predict_price(self, X: Any) -> FloatArray:
        """Predicted price in EUR: ``exp(predict(X))`` (a median-type estimate, right for ratio studies)."""
        return np.exp(self.predict(X))

    def contributions(self, X: Any) -> FloatArray:
        """TreeSHAP contributions to the log price, shape (n, n_features + 1), the last column the base.

        Rows add up to :meth:`predict`. With an offset feature, its part ``log(offset) - offset_ref_`` is
        added to that feature's column and ``offset_ref_`` to the base, so the base is the log price of
        a property with the typical (geometric-mean) offset. A vertical-equity stretch ``b`` around
        ``c`` multiplies every contribution by ``b`` and maps the base to ``c + b * (base - c)``.
        """
        self._check_fitted()
        matrix = self.matrix(X)
        contrib = np.asarray(
            self.booster_.predict(matrix, pred_contrib=True, num_threads=self.num_threads), dtype=np.float64
        )
        if self.offset_feature is not None:
            contrib[:, self.feature_names.index(self.offset_feature)] += (
                self._log_offset(matrix) - self.offset_ref_
            )
            contrib[:, -1] += self.offset_ref_
        if self.stretch_ != 1.0:
            contrib[:, :-1] *= self.stretch_
            contrib[:, -1] = self.stretch_centre_ + self.stretch_ * (contrib[:, -1] - self.stretch_centre_)
        return contrib

    def _target_description(self) -> str:
        trees = "trees" if self.offset_feature is None else f"log({self.offset_feature}) + trees"
        if self.stretch_ == 1.0:
            return f"log(price_eur) = {trees}"
        return (
            f"log(price_eur) = c + b * ({trees} - c), b = {self.stretch_:g}, c = {self.stretch_centre_:.6g}"
        )

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each feature's splits, as a share of the total."""
        self._check_fitted()
        gain = self.booster_.feature_importance(importance_type="gain")
        total = float(gain.sum()) or 1.0
        return {name: float(g) / total for name, g in zip(self.feature_names, gain, strict=True)}

    # -- storage -------------------------------------------------------------------------------------
    @staticmethod
    def sidecar_path(path: str | Path) -> Path:
        """The JSON sidecar next to a model file: ``model.txt`` -> ``model.json``."""
        return Path(path).with_suffix(".json")

    def save(
        self,
        path: str | Path,
        *,
        training_snapshot: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        code_version: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write the model in LightGBM's text format at ``path`` and its provenance next to it.

        Parameters
        ----------
        path : str or Path
            Model file, e.g. ``models/price-2025-06.txt``; the sidecar is ``price-2025-06.json``.
        training_snapshot : mapping, optional
            What the model was trained on (sales query, date range, row count, checksum...).
        metrics : mapping, optional
            Its evaluation (ratio studies of the validation or backtest).
        code_version : str, optional
            Git revision of the code that trained it.
        extra : mapping, optional
            Anything else worth keeping (price index vintage...).

        Returns
        -------
        Path
            The sidecar path.
        """
        self._check_fitted()
        path = Path(path)
        text = self.booster_.model_to_string()
        path.write_text(text, encoding="utf-8")
        sidecar = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_file": path.name,
            "model_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "target": self._target_description(),
            "feature_names": self.feature_names,
            "categorical_features": self.categorical_features,
            "categories": self.categories_,
            "offset_feature": self.offset_feature,
            "offset_ref": self.offset_ref_,
            "stretch": self.stretch_,
            "stretch_centre": self.stretch_centre_,
            "vertical_equity": self.vertical_equity_,
            "params": self.params,
            "lgb_params": self.lgb_params(),
            "num_boost_round": self.num_boost_round,
            "early_stopping_rounds": self.early_stopping_rounds,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "best_iteration": self.best_iteration_,
            "n_train": self.n_train_,
            "n_valid": self.n_valid_,
            "valid_score": self.valid_score_,
            "feature_importance_gain": self.feature_importance(),
            "library_versions": library_versions(),
            "code_version": code_version,
            "training_snapshot": dict(training_snapshot or {}),
            "metrics": dict(metrics or {}),
            "extra": dict(extra or {}),
        }
        sidecar_path = self.sidecar_path(path)
        sidecar_path.write_text(json.dumps(sidecar, indent=2, default=_json_default) + "\n", encoding="utf-8")
        return sidecar_path

    @classmethod
    def load(cls, path: str | Path, *, num_threads: int | None = None) -> PriceModel:
        """Load a model written by :meth:`save`, checking the model file against the sidecar's checksum.

        The provenance is available as ``model.provenance_``.
        """
        path = Path(path)
        meta = json.loads(cls.sidecar_path(path).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{cls.sidecar_path(path)} is not a {FORMAT} sidecar")
        text = path.read_text(encoding="utf-8")
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != meta["model_sha256"]:
            raise ValueError(f"{path} does not match the checksum in its sidecar")
        model = cls(
            meta["feature_names"],
            meta["categorical_features"],
            params=meta["params"],
            num_boost_round=meta["num_boost_round"],
            early_stopping_rounds=meta["early_stopping_rounds"],
            seed=meta["seed"],
            num_threads=num_threads if num_threads is not None else meta["num_threads"],
            offset_feature=meta["offset_feature"],
        )
        model.booster_ = lgb.Booster(model_str=text)
        model.categories_ = {name: list(keys) for name, keys in meta["categories"].items()}
        model.offset_ref_ = float(meta["offset_ref"])
        model.stretch_ = float(meta["stretch"])
        model.stretch_centre_ = float(meta["stretch_centre"])
        model.vertical_equity_ = meta["vertical_equity"]
        model.best_iteration_ = int(meta["best_iteration"])
        model.n_train_ = int(meta["n_train"])
        model.n_valid_ = int(meta["n_valid"])
        model.valid_score_ = meta["valid_score"]
        model.provenance_ = meta
        return model


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (datetime, pd.Timestamp, np.datetime64)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
