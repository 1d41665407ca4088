"""A deployable valuation model: price index, feature builder settings, price model and interval.

The :class:`Bundle` is what training produces, what the registry stores in a folder, and what
serving loads once per process. It values *targets* (the properties, each with a valuation date)
against a *pool* of candidate sales around them, with the same feature builder as training, so
training and serving cannot drift apart.

Folder layout (all text)::

    manifest.json        format, features, categorical features, builder settings, region column
    model.txt/.json      PriceModel (LightGBM text + provenance sidecar)
    interval.json, interval-lower.txt, interval-upper.txt
    price_index.json     PriceIndex.to_dict()
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from valuation.ml.explain import Explanation, rounded_explanation
from valuation.ml.features import DefaultFeatures
from valuation.ml.intervals import ConformalInterval
from valuation.ml.model import PriceModel
from valuation.ml.neighbourhood import SaleArrays
from valuation.ml.price_index import PriceIndex

FORMAT = "valuation.bundle/1"
TIME_TERM = "market_change"
FloatArray = npt.NDArray[np.float64]


@dataclass
class Valued:
    """The outcome for many targets, row-aligned with them."""

    features: pd.DataFrame  # model inputs, one row per target
    price: FloatArray  # EUR at the valuation date, unrounded
    low: FloatArray
    high: FloatArray
    time_factor: FloatArray  # index move from the index vintage to the valuation date
    explanations: list[Explanation]  # integer euros, add up to the rounded price exactly


@dataclass
class Bundle:
    model: PriceModel
    interval: ConformalInterval
    index: PriceIndex
    builder: DefaultFeatures
    region_column: str | None = None

    @property
    def feature_names(self) -> list[str]:
        return list(self.model.feature_names)

    @property
    def coverage(self) -> float:
        return float(self.interval.coverage)

    @classmethod
    def from_backtest(
        cls, result: dict[str, Any], builder: DefaultFeatures, region_column: str | None
    ) -> Bundle:
        artefacts = result["artefacts"]
        return cls(
            model=artefacts["model"],
            interval=artefacts["interval"],
            index=artefacts["index"],
            builder=builder,
            region_column=region_column,
        )

    # -- serving -----------------------------------------------------------------------------------
    @contextmanager
    def threads(self, n: int) -> Iterator[Bundle]:
        """Use ``n`` threads for features and predictions inside the block (a batch), then go back."""
        models = [self.model, self.interval.lower_model_, self.interval.upper_model_]
        before = [m.num_threads if m is not None else 1 for m in models], self.builder.workers
        for m in models:
            if m is not None:
                m.num_threads = n
        self.builder.workers = n
        try:
            yield self
        finally:
            for m, t in zip(models, before[0], strict=True):
                if m is not None:
                    m.num_threads = t
            self.builder.workers = before[1]

    def _region(self, frame: pd.DataFrame) -> Any:
        if self.region_column is None or self.region_column not in frame.columns:
            return None
        return frame[self.region_column].astype(str).to_numpy()

    def index_pool(self, pool: pd.DataFrame) -> pd.DataFrame:
        """The pool with ``indexed_price_eur`` and ``indexed_price_m2`` at the index vintage."""
        out = pool.copy()
        factor = self.index.factor(out["sale_date"], self._region(out)) if len(out) else np.zeros(0)
        out["indexed_price_eur"] = out["price_eur"].to_numpy(dtype=np.float64) * factor
        out["indexed_price_m2"] = out["indexed_price_eur"] / out["living_area_m2"].to_numpy(dtype=np.float64)
        return out

    def time_factor(self, dates: Any, region: Any = None) -> FloatArray:
        """Multiplier from the index vintage to each valuation date (1 beyond the vintage: held flat)."""
        vintage = self.index.vintage_date().astype("datetime64[D]")
        n = len(np.atleast_1d(np.asarray(dates)))
        return self.index.factor(np.repeat(vintage, n), region, to_date=dates)

    def value(
        self, targets: pd.DataFrame, pool: pd.DataFrame, *, unit: int = 1000, sales: SaleArrays | None = None
    ) -> Valued:
        """Value the targets (``sale_date`` = valuation date) against candidate sales ``pool``.

        ``pool`` must be indexed (see :meth:`index_pool`) and hold every sale within the largest
        neighbourhood radius of each target; sales on or after a target's date never count. ``sales``:
        the pool as ``self.builder.sale_arrays(pool)`` built it, to reuse across calls.
        """
        # A fact that no target has (e.g. no EPC anywhere) is simply unknown for all of them.
        features = self.builder(targets, pool, sales).reindex(columns=self.feature_names)
        point_vintage = self.model.predict_price(features)
        low_v, high_v = self.interval.predict_interval(features, point_vintage)
        factor = self.time_factor(targets["sale_date"].to_numpy(), self._region(targets))
        log_contrib = self.model.contributions(features)
        # The market's move from the vintage to the valuation date is one more additive log term.
        with_time = np.column_stack([log_contrib[:, :-1], np.log(factor), log_contrib[:, -1]])
        explanations = rounded_explanation([*self.feature_names, TIME_TERM], with_time, unit=unit)
        return Valued(
            features=features,
            price=point_vintage * factor,
            low=low_v * factor,
            high=high_v * factor,
            time_factor=factor,
            explanations=explanations,
        )

    # -- storage -----------------------------------------------------------------------------------
    def save(
        self,
        directory: str | Path,
        *,
        training_snapshot: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        code_version: str | None = None,
    ) -> Path:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(
            folder / "model.txt",
            training_snapshot=training_snapshot,
            metrics=metrics,
            code_version=code_version,
        )
        self.interval.save(folder, name="interval")
        (folder / "price_index.json").write_text(json.dumps(self.index.to_dict()), encoding="utf-8")
        manifest = {
            "format": FORMAT,
            "features": self.feature_names,
            "categorical_features": list(self.model.categorical_features),
            "builder": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.builder).items()},
            "region_column": self.region_column,
            "coverage": self.coverage,
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, directory: str | Path, *, num_threads: int = 1) -> Bundle:
        folder = Path(directory)
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{folder} does not hold a {FORMAT} bundle")
        builder_settings = dict(manifest["builder"])
        builder_settings["workers"] = 1
        return cls(
            model=PriceModel.load(folder / "model.txt", num_threads=num_threads),
            interval=ConformalInterval.load(folder / "interval.json", num_threads=num_threads),
            index=PriceIndex.from_dict(json.loads((folder / "price_index.json").read_text(encoding="utf-8"))),
            builder=DefaultFeatures(**builder_settings),
            region_column=manifest.get("region_column"),
        )
