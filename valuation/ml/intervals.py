"""Price intervals with a stated coverage, calibrated by split-conformal on time-later sales.

All the work happens on the log price, where errors are roughly symmetric and multiplicative. Three
conformity scores are offered (``method``):

``"cqr"`` (conformalised quantile regression, Romano et al. 2019)
    LightGBM quantile models give a lower and an upper quantile of log price (alpha/2 and 1 - alpha/2);
    the score ``max(lower - y, y - upper)`` measures how far a calibration sale falls outside them, and
    its conformal quantile ``q`` widens (or narrows, if negative) both ends: ``[lower - q, upper + q]``.
``"normalised"``
    Symmetric around the point estimate, scaled by the quantile models' half-spread ``s``: score
    ``|y - point| / s``, interval ``point +/- q * s``.
``"absolute"``
    Plain split-conformal on log residuals, the same relative width everywhere: ``point +/- q``.

With ``n_bins > 1`` the calibration is *Mondrian*: ``q`` is computed separately within quantile bins of
the point estimate, so each predicted-price tier gets its stated coverage, not only the total.

The conformal quantile is the ``ceil((n + 1) * coverage) / n`` empirical quantile of the ``n`` scores,
which guarantees at least the stated coverage for sales exchangeable with the calibration sales. The
calibration sales must not have been used to fit the point or quantile models; take them from the end of
the training period. Finally the interval is widened, where needed, to contain the point estimate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from valuation.ml.metrics import coverage_by_quartile, interval_coverage
from valuation.ml.model import PriceModel

FloatArray = npt.NDArray[np.float64]
FORMAT = "valuation.conformal_interval/1"
METHODS = ("cqr", "normalised", "absolute")

#: LightGBM parameters of the quantile models (on top of the PriceModel defaults).
QUANTILE_PARAMS: dict[str, Any] = {
    "objective": "quantile",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
}


def conformal_quantile(scores: npt.ArrayLike, coverage: float) -> float:
    """The ``ceil((n + 1) * coverage)``-th smallest score (infinite when ``n`` is too small)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    rank = math.ceil((s.size + 1) * coverage)
    if rank > s.size:
        return float("inf")
    return float(s[rank - 1])


class ConformalInterval:
    """A price interval with a stated coverage, by split-conformal calibration.

    Parameters
    ----------
    feature_names, categorical_features : sequence of str
        Inputs of the quantile models (as for :class:`~valuation.ml.model.PriceModel`); unused by
        ``method="absolute"``.
    coverage : float, default 0.80
        Stated share of prices inside the interval.
    method : {"cqr", "normalised", "absolute"}, default "cqr"
        Conformity score, see the module notes.
    n_bins : int, default 1
        Mondrian bins of the point estimate (1 = one calibration for all).
    quantile_params : mapping, optional
        LightGBM parameters of the quantile models, overriding :data:`QUANTILE_PARAMS`.
    offset_feature : str, optional
        As for PriceModel: quantile models of log price per m2 when it is the living area.
    num_boost_round, early_stopping_rounds, seed, num_threads
        As for PriceModel.

    Attributes
    ----------
    lower_model_, upper_model_ : PriceModel or None
        Quantile models of log price (None for ``method="absolute"``).
    bin_edges_ : numpy.ndarray
        Inner edges of the Mondrian bins, on the log point estimate.
    corrections_ : numpy.ndarray
        Conformal quantile ``q`` of each bin.
    n_calibration_ : int
        Calibration sales.
    calibration_coverage_ : float
        Coverage on the calibration sales themselves (at least ``coverage`` by construction).
    """

    def __init__(
        self,
        feature_names: Sequence[str] = (),
        categorical_features: Sequence[str] = (),
        *,
        coverage: float = 0.80,
        method: str = "cqr",
        n_bins: int = 1,
        quantile_params: Mapping[str, Any] | None = None,
        offset_feature: str | None = None,
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 100,
        seed: int = 42,
        num_threads: int = 2,
    ) -> None:
        if not 0 < coverage < 1:
            raise ValueError("coverage must be strictly between 0 and 1")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        if n_bins < 1:
            raise ValueError("n_bins must be at least 1")
        self.feature_names = list(feature_names)
        self.categorical_features = list(categorical_features)
        self.coverage = coverage
        self.method = method
        self.n_bins = n_bins
        self.quantile_params = dict(quantile_params or {})
        self.offset_feature = offset_feature
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads

    # -- fitting -------------------------------------------------------------------------------------
    def _quantile_model(self, alpha: float) -> PriceModel:
        return PriceModel(
            self.feature_names,
            self.categorical_features,
            params={**QUANTILE_PARAMS, **self.quantile_params, "alpha": alpha},
            num_boost_round=self.num_boost_round,
            early_stopping_rounds=self.early_stopping_rounds,
            seed=self.seed,
            num_threads=self.num_threads,
            offset_feature=self.offset_feature,
        )

    def fit_quantile_models(
        self,
        X_train: Any,
        price_train: npt.ArrayLike,
        X_valid: Any = None,
        price_valid: npt.ArrayLike | None = None,
    ) -> Self:
        """Train the lower and upper quantile models (skipped for ``method="absolute"``).

        Parameters
        ----------
        X_train, price_train
            Training features and prices (EUR), the same rows as the point model's.
        X_valid, price_valid : optional
            A time-later slice for early stopping (not the calibration slice).
        """
        self.lower_model_: PriceModel | None = None
        self.upper_model_: PriceModel | None = None
        if self.method == "absolute":
            return self
        alpha = (1 - self.coverage) / 2
        y = np.log(np.asarray(price_train, dtype=np.float64))
        y_valid = None if price_valid is None else np.log(np.asarray(price_valid, dtype=np.float64))
        self.lower_model_ = self._quantile_model(alpha).fit(X_train, y, X_valid, y_valid)
        self.upper_model_ = self._quantile_model(1 - alpha).fit(X_train, y, X_valid, y_valid)
        return self

    def _centre_and_scale(self, X: Any, log_point: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per row: the raw interval ends (log) before correction, and the score's scale."""
        if self.method == "absolute":
            return log_point, log_point, np.ones_like(log_point)
        if self.lower_model_ is None or self.upper_model_ is None:
            raise RuntimeError("fit_quantile_models() first")
        lower, upper = self.lower_model_.predict(X), self.upper_model_.predict(X)
        lower, upper = np.minimum(lower, upper), np.maximum(lower, upper)  # quantile models may cross
        if self.method == "cqr":
            return lower, upper, np.ones_like(log_point)
        scale = np.maximum((upper - lower) / 2, 1e-3)
        return log_point, log_point, scale

    def _bins(self, log_point: FloatArray) -> npt.NDArray[np.intp]:
        return np.searchsorted(self.bin_edges_, log_point, side="right")

    def calibrate(self, X_cal: Any, price_cal: npt.ArrayLike, point_cal: npt.ArrayLike) -> Self:
        """Compute the conformal corrections on calibration sales the models did not train on.

        ``method="absolute"`` needs no quantile models, so it can be calibrated directly.

        Parameters
        ----------
        X_cal : pandas.DataFrame or array-like
            Calibration features.
        price_cal : array-like of float
            Their sale prices (EUR, on the same index date as the estimates).
        point_cal : array-like of float
            The point model's estimates for them (EUR).
        """
        if not hasattr(self, "lower_model_"):
            if self.method != "absolute":
                raise RuntimeError("fit_quantile_models() first")
            self.lower_model_ = self.upper_model_ = None
        y = np.log(np.asarray(price_cal, dtype=np.float64))
        log_point = np.log(np.asarray(point_cal, dtype=np.float64))
        lower, upper, scale = self._centre_and_scale(X_cal, log_point)
        scores = np.maximum(lower - y, y - upper) / scale
        inner = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        self.bin_edges_ = np.quantile(log_point, inner) if self.n_bins > 1 else np.zeros(0)
        bins = self._bins(log_point)
        self.corrections_ = np.array(
            [conformal_quantile(scores[bins == b], self.coverage) for b in range(self.n_bins)]
        )
        self.n_calibration_ = int(y.size)
        low, high = self.predict_interval(X_cal, point_cal)
        self.calibration_coverage_ = interval_coverage(price_cal, low, high)
        return self

    def fit(
        self,
        X_train: Any,
        price_train: npt.ArrayLike,
        X_cal: Any,
        price_cal: npt.ArrayLike,
        point_cal: npt.ArrayLike,
        X_valid: Any = None,
        price_valid: npt.ArrayLike | None = None,
    ) -> Self:
        """:meth:`fit_quantile_models` on the training slice, then :meth:`calibrate` on the calibration
        slice."""
        return self.fit_quantile_models(X_train, price_train, X_valid, price_valid).calibrate(
            X_cal, price_cal, point_cal
        )

    # -- predicting ----------------------------------------------------------------------------------
    def predict_interval(self, X: Any, point: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Interval ends in EUR for estimates ``point`` (EUR) of the rows ``X``.

        Returns
        -------
        low, high : numpy.ndarray
            ``low <= point <= high`` always.
        """
        if not hasattr(self, "corrections_"):
            raise RuntimeError("this ConformalInterval is not calibrated yet")
        point_eur = np.asarray(point, dtype=np.float64)
        log_point = np.log(point_eur)
        lower, upper, scale = self._centre_and_scale(X, log_point)
        correction = self.corrections_[self._bins(log_point)] * scale
        low = np.minimum(np.exp(lower - correction), point_eur)
        high = np.maximum(np.exp(upper + correction), point_eur)
        return low, high

    def coverage_report(self, X: Any, price: npt.ArrayLike, point: npt.ArrayLike) -> dict[str, Any]:
        """Measured coverage on sales: overall, by sale-price quartile and by estimate quartile."""
        low, high = self.predict_interval(X, point)
        return {
            "stated": self.coverage,
            "overall": interval_coverage(price, low, high),
            "by_price_quartile": coverage_by_quartile(price, low, high),
            "by_estimate_quartile": coverage_by_quartile(price, low, high, by=point),
            "median_relative_width": float(np.median((high - low) / np.asarray(point, dtype=np.float64))),
        }

    # -- storage -------------------------------------------------------------------------------------
    def save(self, directory: str | Path, *, name: str = "interval") -> Path:
        """Write ``<name>.json`` (corrections, settings) and the quantile models into ``directory``."""
        if not hasattr(self, "corrections_"):
            raise RuntimeError("this ConformalInterval is not calibrated yet")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        models = {}
        for label, model in (("lower", self.lower_model_), ("upper", self.upper_model_)):
            if model is not None:
                model_file = directory / f"{name}-{label}.txt"
                model.save(model_file)
                models[label] = model_file.name
        description = {
            "format": FORMAT,
            "coverage": self.coverage,
            "method": self.method,
            "n_bins": self.n_bins,
            "feature_names": self.feature_names,
            "categorical_features": self.categorical_features,
            "offset_feature": self.offset_feature,
            "quantile_params": self.quantile_params,
            "bin_edges": [float(v) for v in self.bin_edges_],
            "corrections": [float(v) for v in self.corrections_],
            "n_calibration": self.n_calibration_,
            "calibration_coverage": self.calibration_coverage_,
            "models": models,
        }
        path = directory / f"{name}.json"
        path.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path, *, num_threads: int | None = None) -> ConformalInterval:
        """Load an interval written by :meth:`save` (``path`` is its JSON file)."""
        path = Path(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} document")
        interval = cls(
            data["feature_names"],
            data["categorical_features"],
            coverage=data["coverage"],
            method=data["method"],
            n_bins=data["n_bins"],
            quantile_params=data["quantile_params"],
            offset_feature=data["offset_feature"],
        )
        models = data["models"]
        interval.lower_model_ = (
            PriceModel.load(path.parent / models["lower"], num_threads=num_threads)
            if "lower" in models
            else None
        )
        interval.upper_model_ = (
            PriceModel.load(path.parent / models["upper"], num_threads=num_threads)
            if "upper" in models
            else None
        )
        interval.bin_edges_ = np.asarray(data["bin_edges"], dtype=np.float64)
        interval.corrections_ = np.asarray(data["corrections"], dtype=np.float64)
        interval.n_calibration_ = int(data["n_calibration"])
        interval.calibration_coverage_ = float(data["calibration_coverage"])
        return interval
