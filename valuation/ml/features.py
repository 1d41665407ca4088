"""The standard feature builder: one function from sales to model inputs, for training and serving.

A feature builder is called with the *targets* (sales to learn from, or properties to value, each with
its date) and the *pool* of sales that may serve as neighbours, carrying ``indexed_price_m2``. It returns
one row per target. Every neighbourhood quantity uses only pool sales dated strictly before the
target's date, through :mod:`valuation.ml.neighbourhood` and :mod:`valuation.ml.baseline`, whose batch
and single-target paths give identical numbers; so the same builder serves training, backtests and a
one-property valuation.

Columns of a non-numeric dtype (here: pandas categoricals) are the categorical features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from valuation.ml.baseline import comparables_price_m2, comparables_price_m2_one
from valuation.ml.neighbourhood import SaleArrays, neighbourhood_features, neighbourhood_features_one

OPTIONAL_NUMERIC = ("land_area_m2", "rooms", "bedrooms", "year_built", "epc_kwh_m2")


def comparables_names(k: int) -> tuple[str, str]:
    """Column names of the k-nearest comparables features: median price per m2 and reach in metres."""
    return f"cmp{k}_ppm2_median", f"cmp{k}_distance_m"


@dataclass
class DefaultFeatures:
    """The standard feature set: the sale's own attributes, location, neighbourhood and comparables.

    All settings are plain values, so a builder can be stored as JSON (``dataclasses.asdict``) with a
    model and rebuilt identically.

    Parameters
    ----------
    numeric : sequence of str
        Numeric columns used when present (living area, land area, rooms, bedrooms, year built, EPC,
        x, y).
    categorical : sequence of str
        Columns used as categorical features when present (property type, postcode...).
    radii : sequence of float
        Neighbourhood radii in metres: count and median indexed price per m2 of earlier sales.
    same_type : bool
        Neighbourhood and comparables features from sales of the same property type only.
    lag_days : int
        Publication lag: only sales dated before ``date - lag_days`` count.
    workers : int
        Threads for the neighbourhood computation.
    extra_numeric : sequence of str
        More numeric columns to use when present.
    knn : sequence of int
        For each ``k``: median indexed price per m2 of the ``k`` nearest earlier sales and the distance
        to the farthest of them (:func:`~valuation.ml.baseline.comparables_price_m2`).
    comparables_column : str or None
        Name of the comparables estimate column, living area x the first ``knn`` median (the
        baseline's estimate), a natural model offset; None to leave it out. Where a target has no
        earlier comparable of its type, the largest-radius median, then the median of all earlier
        pool sales stand in; it stays NaN only when no sale at all is earlier.
    max_age_days : int or None
        Neighbourhood features from sales at most this old (None: all earlier sales).
    """

    numeric: Sequence[str] = ("living_area_m2", *OPTIONAL_NUMERIC, "x", "y")
    categorical: Sequence[str] = ("property_type",)
    radii: Sequence[float] = (500.0, 1000.0)
    same_type: bool = True
    lag_days: int = 0
    workers: int = 2
    extra_numeric: Sequence[str] = field(default_factory=tuple)
    knn: Sequence[int] = (20,)
    comparables_column: str | None = "comparables_eur"
    max_age_days: int | None = None

    def sale_arrays(self, pool: pd.DataFrame) -> SaleArrays:
        """The pool as the neighbourhood functions read it (build it once to value in parts)."""
        return SaleArrays.build(
            pool["x"],
            pool["y"],
            pool["sale_date"],
            pool["indexed_price_m2"],
            pool["property_type"].astype(str),
        )

    def __call__(
        self, targets: pd.DataFrame, pool: pd.DataFrame, sales: SaleArrays | None = None
    ) -> pd.DataFrame:
        """The features of ``targets`` from the candidate sales ``pool`` (``sales``: the same pool as
        :meth:`sale_arrays` built it, reused across calls)."""
        columns: dict[str, Any] = {}
        present = [name for name in (*self.numeric, *self.extra_numeric) if name in targets.columns]
        numeric = targets[present]
        if all(pd.api.types.is_numeric_dtype(dtype) for dtype in numeric.dtypes):
            block = numeric.to_numpy(dtype=np.float64)  # one conversion for all (the common case)
            for j, name in enumerate(present):
                columns[name] = block[:, j]
        else:
            for name in present:
                columns[name] = pd.to_numeric(targets[name], errors="coerce").to_numpy(dtype=np.float64)
        for name in self.categorical:
            if name in targets.columns:
                columns[name] = pd.Categorical(targets[name].astype("string"))
        if sales is None:
            sales = self.sale_arrays(pool)
        kinds = targets["property_type"].astype(str).to_numpy() if self.same_type else None
        if len(targets) == 1:
            # One property (the serving path): the single-target functions skip building k-d trees and
            # give the same numbers as the batch functions.
            return self._one(targets, sales, kinds, columns)
        neighbourhood = neighbourhood_features(
            targets["x"],
            targets["y"],
            targets["sale_date"],
            sales,
            property_type=kinds,
            radii=self.radii,
            lag_days=self.lag_days,
            max_age_days=self.max_age_days,
            workers=self.workers,
        )
        for name in neighbourhood.columns:
            columns[name] = neighbourhood[name].to_numpy(dtype=np.float64)
        for position, k in enumerate(self.knn):
            median, _, reach = comparables_price_m2(
                targets["x"],
                targets["y"],
                targets["sale_date"],
                sales,
                property_type=kinds,
                k=k,
                lag_days=self.lag_days,
                workers=self.workers,
            )
            median_name, reach_name = comparables_names(k)
            columns[median_name], columns[reach_name] = median, reach
            if position == 0 and self.comparables_column is not None:
                columns[self.comparables_column] = self._comparables_estimate(
                    targets, sales, median, neighbourhood
                )
        return pd.DataFrame(columns, index=targets.index)

    def _one(
        self, targets: pd.DataFrame, sales: SaleArrays, kinds: np.ndarray | None, columns: dict[str, Any]
    ) -> pd.DataFrame:
        x, y = float(targets["x"].iloc[0]), float(targets["y"].iloc[0])
        when = targets["sale_date"].iloc[0]
        kind = None if kinds is None else kinds[0]
        values = neighbourhood_features_one(
            x,
            y,
            when,
            sales,
            property_type=kind,
            radii=self.radii,
            lag_days=self.lag_days,
            max_age_days=self.max_age_days,
        )
        neighbourhood = pd.DataFrame({name: [value] for name, value in values.items()}, dtype=np.float64)
        for name in neighbourhood.columns:
            columns[name] = neighbourhood[name].to_numpy(dtype=np.float64)
        for position, k in enumerate(self.knn):
            median, _, reach = comparables_price_m2_one(
                x, y, when, sales, property_type=kind, k=k, lag_days=self.lag_days
            )
            median_name, reach_name = comparables_names(k)
            columns[median_name], columns[reach_name] = np.array([median]), np.array([reach])
            if position == 0 and self.comparables_column is not None:
                columns[self.comparables_column] = self._comparables_estimate(
                    targets, sales, np.array([median]), neighbourhood
                )
        return pd.DataFrame(columns, index=targets.index)

    def _comparables_estimate(
        self, targets: pd.DataFrame, sales: SaleArrays, median: np.ndarray, neighbourhood: pd.DataFrame
    ) -> np.ndarray:
        """Living area x comparables' median, with the documented stand-ins where it is missing."""
        price_m2 = median.copy()
        if self.radii:
            widest = neighbourhood[f"nbh_ppm2_median_{max(self.radii):g}m"].to_numpy(dtype=np.float64)
            price_m2 = np.where(np.isnan(price_m2), widest, price_m2)
        missing = np.flatnonzero(np.isnan(price_m2))
        if missing.size:
            days = pd.to_datetime(targets["sale_date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
            usable = np.isfinite(sales.price_m2)
            for i in missing:
                earlier = usable & (sales.day < days[i] - self.lag_days)
                if earlier.any():
                    price_m2[i] = np.median(sales.price_m2[earlier])
        area = pd.to_numeric(targets["living_area_m2"], errors="coerce").to_numpy(dtype=np.float64)
        return area * price_m2


def categorical_columns(features: pd.DataFrame) -> list[str]:
    """Columns of a non-numeric dtype: the categorical features."""
    return [name for name in features.columns if not pd.api.types.is_numeric_dtype(features[name])]
