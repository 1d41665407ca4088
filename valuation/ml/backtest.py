"""Time-split backtest: train before a date, value the later sales, ratio-study model and baseline.

:func:`run_backtest` does what a production cycle does, with the future held back:

1. **Index** -- a :class:`~valuation.ml.price_index.PriceIndex` is fitted on the training sales only
   (log price per m2 on period effects, log area and, when given, region cells); every price is
   expressed at the index vintage (the last training period). The index is flat beyond its vintage, so
   a test sale is valued at the vintage level: no knowledge of later price moves.
2. **Features** -- the feature builder turns each sale into model inputs; neighbourhood features use
   only sales dated strictly before the target (test sales may use earlier *test* sales, as a
   production system fed with new deeds would, unless ``test_neighbours="training"``).
3. **Slices** -- the last ``holdout_months`` of the training period are held out of the fit and split
   at random (seeded) into a *validation* half (early stopping, hyper-parameters, the vertical-equity
   stretch, the interval method) and a *calibration* half (the conformal correction of the interval).
   Both are later in time than every fitted row. The test period is not looked at until the final
   predictions.
4. **Predictions** -- the model, its interval and the comparables baseline value every test sale; the
   ratio studies of model and baseline are computed on the same sales (those both can value).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from valuation.ml.baseline import comparables_price_m2
from valuation.ml.drift import reference_distribution, reference_rows
from valuation.ml.features import OPTIONAL_NUMERIC, DefaultFeatures, categorical_columns
from valuation.ml.intervals import ConformalInterval
from valuation.ml.metrics import QUARTILE_LABELS, coverage_by_quartile, mdape, ratio_study
from valuation.ml.model import PriceModel
from valuation.ml.neighbourhood import SaleArrays
from valuation.ml.price_index import PriceIndex

__all__ = [
    "DEFAULT_PARAM_GRID",
    "OPTIONAL_NUMERIC",
    "REQUIRED_COLUMNS",
    "DefaultFeatures",
    "FeatureBuilder",
    "categorical_columns",
    "run_backtest",
]

REQUIRED_COLUMNS = ("sale_date", "price_eur", "x", "y", "property_type", "living_area_m2")

#: Hyper-parameter candidates tried on the validation slice (each on top of the PriceModel defaults).
#: The L1 and Huber losses on log price aim at the median ratio, the ratio study's centre.
DEFAULT_PARAM_GRID: tuple[dict[str, Any], ...] = (
    {"objective": "regression_l1", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 40},
    {"objective": "regression_l1", "learning_rate": 0.05, "num_leaves": 63, "min_data_in_leaf": 20},
    {"objective": "huber", "alpha": 0.3, "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 40},
    {"objective": "regression", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 40},
)

#: Vertical-equity targets on the validation slice (see PriceModel.calibrate_vertical_equity).
DEFAULT_VERTICAL_EQUITY: dict[str, Any] = {"prd_max": 1.02, "prb_bounds": (-0.03, 0.03)}


class FeatureBuilder(Protocol):
    """Turns sales into model inputs (see :mod:`valuation.ml.features`)."""

    def __call__(self, targets: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame: ...


def _prepare(sales: pd.DataFrame) -> pd.DataFrame:
    """Checked copy of the sales, unusable rows dropped, sorted by date."""
    missing = [c for c in REQUIRED_COLUMNS if c not in sales.columns]
    if missing:
        raise ValueError(f"sales lack the columns {missing}")
    frame = sales.copy()
    frame["sale_date"] = pd.to_datetime(frame["sale_date"]).dt.normalize()
    for name in ("price_eur", "x", "y", "living_area_m2"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    usable = (
        frame["sale_date"].notna()
        & (frame["price_eur"] > 0)
        & (frame["living_area_m2"] > 0)
        & np.isfinite(frame["x"])
        & np.isfinite(frame["y"])
    )
    return frame.loc[usable].sort_values("sale_date", kind="stable").reset_index(drop=True)


@dataclass
class _Slices:
    fit: npt.NDArray[np.intp]
    valid: npt.NDArray[np.intp]
    cal: npt.NDArray[np.intp]
    test: npt.NDArray[np.intp]


def _slices(
    frame: pd.DataFrame, split: pd.Timestamp, end: pd.Timestamp | None, holdout_months: int, seed: int
) -> _Slices:
    dates = frame["sale_date"]
    train = (dates < split).to_numpy()
    test = (dates >= split).to_numpy()
    if end is not None:
        test &= (dates < end).to_numpy()
    holdout_start = split - pd.DateOffset(months=holdout_months)
    holdout = train & (dates >= holdout_start).to_numpy()
    holdout_rows = np.flatnonzero(holdout)
    in_valid = np.random.default_rng(seed).random(holdout_rows.size) < 0.5
    return _Slices(
        fit=np.flatnonzero(train & ~holdout),
        valid=holdout_rows[in_valid],
        cal=holdout_rows[~in_valid],
        test=np.flatnonzero(test),
    )


def _interval_deviation(report: Mapping[str, Any], stated: float) -> float:
    """Worst distance from the stated coverage, overall or in any sale-price quartile."""
    values = [report["overall"], *(report["by_price_quartile"][q] for q in QUARTILE_LABELS)]
    return float(max(abs(v - stated) for v in values))


def _positive(
    features: pd.DataFrame, column: str | None, rows: npt.NDArray[np.intp]
) -> npt.NDArray[np.bool_]:
    if column is None:
        return np.ones(rows.size, dtype=bool)
    values = features[column].to_numpy(dtype=np.float64)[rows]
    return np.isfinite(values) & (values > 0)


def _select_model(
    features: pd.DataFrame,
    y: npt.NDArray[np.float64],
    price: npt.NDArray[np.float64],
    slices: _Slices,
    param_grid: Sequence[Mapping[str, Any]],
    offset_options: Sequence[str | None],
    seed: int,
    num_threads: int,
) -> tuple[PriceModel, list[dict[str, Any]]]:
    """Fit every candidate on the fit slice (early stopping on validation); keep the best validation MdAPE.

    An offset needs a positive value on every validation, calibration and test row, else it is skipped;
    fit rows without it (the first sales, with no earlier comparable) are left out of that candidate.
    """
    names = list(features.columns)
    categorical = categorical_columns(features)
    selection: list[dict[str, Any]] = []
    best: tuple[float, PriceModel] | None = None
    later = np.concatenate([slices.valid, slices.cal, slices.test])
    for offset in offset_options:
        if offset is not None and (offset not in names or not _positive(features, offset, later).all()):
            continue
        fit_rows = slices.fit[_positive(features, offset, slices.fit)]
        X_fit, X_valid = features.iloc[fit_rows], features.iloc[slices.valid]
        for params in param_grid:
            candidate = PriceModel(
                names, categorical, params=params, seed=seed, num_threads=num_threads, offset_feature=offset
            ).fit(X_fit, y[fit_rows], X_valid, y[slices.valid])
            score = mdape(candidate.predict_price(X_valid), price[slices.valid])
            selection.append(
                {
                    "offset": offset,
                    "params": dict(params),
                    "trees": candidate.best_iteration_,
                    "fit_rows": int(fit_rows.size),
                    "valid_mdape": score,
                }
            )
            if best is None or score < best[0]:
                best = (score, candidate)
    if best is None:
        raise ValueError("no model candidate (check offset_options against the features)")
    return best[1], selection


def _select_interval(
    model: PriceModel,
    features: pd.DataFrame,
    price: npt.NDArray[np.float64],
    holdout_price: npt.NDArray[np.float64],
    slices: _Slices,
    coverage: float,
    methods: Sequence[str],
    bins: Sequence[int],
    seed: int,
    num_threads: int,
) -> tuple[ConformalInterval, list[dict[str, Any]]]:
    """Quantile models on the fit slice; each method calibrated on one holdout half and measured on the
    other, both ways; the one with the smallest worst deviation (overall or per price quartile) wins,
    then it is calibrated on the calibration half only. ``holdout_price`` is what the holdout's
    prices are compared with (see ``interval_drift`` in :func:`run_backtest`)."""
    base = ConformalInterval(
        list(features.columns),
        categorical_columns(features),
        coverage=coverage,
        method="cqr" if any(m != "absolute" for m in methods) else "absolute",
        offset_feature=model.offset_feature,
        seed=seed,
        num_threads=num_threads,
    )
    if base.method == "absolute":
        base.lower_model_ = base.upper_model_ = None
    else:
        fit_rows = slices.fit[_positive(features, model.offset_feature, slices.fit)]
        base.fit_quantile_models(
            features.iloc[fit_rows], price[fit_rows], features.iloc[slices.valid], price[slices.valid]
        )
    halves = [
        (features.iloc[rows], holdout_price[rows], model.predict_price(features.iloc[rows]))
        for rows in (slices.cal, slices.valid)
    ]
    selection: list[dict[str, Any]] = []
    chosen: tuple[float, ConformalInterval] | None = None
    for method in methods:
        for n_bins in bins:
            candidate = copy.copy(base)
            candidate.method, candidate.n_bins = method, n_bins
            deviation = float(
                np.mean(
                    [
                        _interval_deviation(candidate.calibrate(*one).coverage_report(*other), coverage)
                        for one, other in ((halves[0], halves[1]), (halves[1], halves[0]))
                    ]
                )
            )
            selection.append({"method": method, "n_bins": n_bins, "holdout_worst_deviation": deviation})
            if chosen is None or deviation < chosen[0]:
                chosen = (deviation, copy.copy(candidate).calibrate(*halves[0]))
    if chosen is None:
        raise ValueError("no interval candidate")
    return chosen[1], selection


def _comparables(
    frame: pd.DataFrame, rows: npt.NDArray[np.intp], pool: pd.DataFrame, k: int, lag_days: int, workers: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The baseline's median indexed price per m2 (and comparables used) for some rows of ``frame``."""
    sales = SaleArrays.build(
        pool["x"], pool["y"], pool["sale_date"], pool["indexed_price_m2"], pool["property_type"].astype(str)
    )
    price_m2, count, _ = comparables_price_m2(
        frame["x"].to_numpy()[rows],
        frame["y"].to_numpy()[rows],
        frame["sale_date"].iloc[rows],
        sales,
        property_type=frame["property_type"].astype(str).to_numpy()[rows],
        k=k,
        lag_days=lag_days,
        workers=workers,
    )
    return price_m2, count


def _test_batches(
    frame: pd.DataFrame,
    test_rows: npt.NDArray[np.intp],
    features: pd.DataFrame,
    pool: pd.DataFrame,
    pool_region: npt.NDArray[Any] | None,
    region: npt.NDArray[Any] | None,
    index: PriceIndex,
    refresh: str | None,
    builder: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame],
) -> Iterator[tuple[npt.NDArray[np.intp], PriceIndex, pd.DataFrame, pd.DataFrame]]:
    """(positions in the test rows, index, neighbour pool, features) to value the test period with.

    Frozen (``refresh`` None): one batch, the training index and the features already built. Monthly
    (``"M"``): for each month, an index refitted on every sale before that month (training and earlier
    test sales, like a production index refreshed each month), the pool re-indexed to the model's
    vintage with it, and the month's features rebuilt from that pool. The model is not retrained.
    """
    if refresh is None:
        yield np.arange(test_rows.size), index, pool, features.iloc[test_rows]
        return
    if refresh != "M":
        raise ValueError("index_refresh must be None or 'M'")
    vintage = index.vintage_date()
    months = frame["sale_date"].iloc[test_rows].dt.to_period("M").to_numpy()
    all_dates = frame["sale_date"]
    for month in pd.unique(months):
        positions = np.flatnonzero(months == month)
        known = np.flatnonzero((all_dates < month.start_time).to_numpy())
        known_sales = frame.iloc[known]
        refreshed = PriceIndex(
            index.freq, index.min_sales_per_region, index.step_sd, index.region_step_sd
        ).fit(
            known_sales["sale_date"],
            np.log(known_sales["price_eur"] / known_sales["living_area_m2"]),
            region=None if region is None else region[known],
            controls=np.log(known_sales["living_area_m2"]),
        )
        month_pool = pool.copy()
        month_pool["indexed_price_m2"] = (
            month_pool["price_eur"].to_numpy()
            * refreshed.factor(month_pool["sale_date"], pool_region, to_date=vintage)
            / month_pool["living_area_m2"].to_numpy()
        )
        targets = frame.iloc[test_rows[positions]]
        yield positions, refreshed, month_pool, builder(targets, month_pool).reindex(columns=features.columns)


def run_backtest(
    sales: pd.DataFrame,
    split_date: Any,
    feature_builder: FeatureBuilder | Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame] | None = None,
    *,
    end_date: Any = None,
    holdout_months: int = 6,
    region_column: str | None = None,
    index_freq: str = "M",
    min_sales_per_region: int = 500,
    param_grid: Sequence[Mapping[str, Any]] = DEFAULT_PARAM_GRID,
    offset_options: Sequence[str | None] = ("comparables_eur", "living_area_m2", None),
    vertical_equity: Mapping[str, Any] | None = DEFAULT_VERTICAL_EQUITY,
    coverage: float = 0.80,
    interval_drift: bool = True,
    index_refresh: str | None = None,
    interval_methods: Sequence[str] = ("cqr", "normalised", "absolute"),
    interval_bins: Sequence[int] = (1, 4),
    test_neighbours: str = "earlier",
    baseline_k: int = 20,
    baseline_lag_days: int = 0,
    seed: int = 42,
    num_threads: int = 2,
    keep_predictions: bool = True,
    reference: bool = False,
) -> dict[str, Any]:
    """Train on the sales before ``split_date``, value those from it on, and ratio-study the result.

    Parameters
    ----------
    sales : pandas.DataFrame
        Columns ``sale_date``, ``price_eur``, ``x``, ``y`` (metres), ``property_type``,
        ``living_area_m2`` and optional others (land_area_m2, rooms, bedrooms, year_built, epc_kwh_m2,
        postcode, extra numeric features) for the feature builder. Rows without a positive price or
        area or without coordinates are dropped.
    split_date : date-like
        First day of the test period.
    feature_builder : FeatureBuilder, optional
        Default :class:`~valuation.ml.features.DefaultFeatures`.
    end_date : date-like, optional
        End (exclusive) of the test period; default: all later sales.
    holdout_months : int, default 6
        Length of the validation + calibration slice at the end of the training period.
    region_column : str, optional
        Column of price-index regions (and fixed-effect cells), e.g. a postcode or district.
    index_freq : {"M", "Q"}
        Price index periods.
    min_sales_per_region : int
        Regions with fewer training sales use the overall index.
    param_grid : sequence of mapping
        LightGBM parameter candidates; the one with the lowest validation MdAPE wins.
    offset_options : sequence of str or None
        Offset features to try: ``"comparables_eur"`` (the trees correct the comparables estimate),
        ``"living_area_m2"`` (they model price per m2), None (price itself).
    vertical_equity : mapping or None
        Targets for :meth:`PriceModel.calibrate_vertical_equity` on the validation half (``prd_max``,
        ``prb_bounds``); None leaves the model's regressivity as it is.
    coverage : float, default 0.80
        Stated coverage of the interval.
    interval_drift : bool, default True
        Calibrate the interval on holdout prices as a model frozen at the holdout start would meet them
        (indexed with the index held flat from then on), so that the market's move after the index
        vintage, which the test period (and any valuation after the vintage) will meet too, is part
        of the calibrated error. False: calibrate on prices indexed to each sale's own month.
    index_refresh : {None, "M"}
        None (the protocol): the test period is valued with the training index, flat after its vintage.
        ``"M"``: as a production system refreshing its index each month, every test month is valued
        with an index refitted on all sales before that month (features rebuilt from the pool
        re-indexed with it); the model and interval stay as trained.
    interval_methods, interval_bins : sequences
        Interval candidates (see :mod:`valuation.ml.intervals`).
    test_neighbours : {"earlier", "training"}
        Neighbour pool of test sales: every earlier sale (production-like) or training sales only.
    baseline_k, baseline_lag_days : int
        Comparables baseline settings.
    seed, num_threads : int
        Reproducibility and parallelism.
    keep_predictions : bool, default True
        Include the per-sale predictions of the test period.
    reference : bool, default False
        Include ``reference``: the distribution of every feature and of the predicted log price on
        the latest training sales (:func:`valuation.ml.drift.reference_distribution`), which model
        monitoring compares recent valuations with.

    Returns
    -------
    dict
        ``model`` and ``baseline`` (ratio studies of the test period, see
        :func:`~valuation.ml.metrics.ratio_study`), ``interval`` (method, coverage overall / per price
        quartile / per estimate quartile, calibration figures, selection), ``hit_rate``, ``selection``
        (validation scores of every candidate), ``chosen`` (offset, parameters, trees, vertical
        equity), ``validation`` (ratio studies of model and baseline on the validation half),
        ``index`` (the price index as a dict), ``counts``, ``timings`` (seconds), ``features``,
        ``artefacts`` (the fitted PriceModel, ConformalInterval and PriceIndex) and ``predictions``
        (a DataFrame) and ``reference`` when asked.
    """
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    if test_neighbours not in ("earlier", "training"):
        raise ValueError("test_neighbours must be 'earlier' or 'training'")
    builder = feature_builder if feature_builder is not None else DefaultFeatures(workers=num_threads)
    split = pd.Timestamp(split_date)
    frame = _prepare(sales)
    slices = _slices(frame, split, None if end_date is None else pd.Timestamp(end_date), holdout_months, seed)
    if min(slices.fit.size, slices.valid.size, slices.cal.size, slices.test.size) == 0:
        raise ValueError("each of the fit, validation, calibration and test slices needs sales")
    train_rows = np.concatenate([slices.fit, slices.valid, slices.cal])

    # 1. Price index on the training sales only; all prices expressed at its vintage.
    train = frame.iloc[train_rows]
    region = None if region_column is None else frame[region_column].astype(str).to_numpy()
    index = PriceIndex(freq=index_freq, min_sales_per_region=min_sales_per_region).fit(
        train["sale_date"],
        np.log(train["price_eur"] / train["living_area_m2"]),
        region=None if region is None else region[train_rows],
        controls=np.log(train["living_area_m2"]),
    )
    to_vintage = index.factor(frame["sale_date"], region)
    frame["indexed_price_eur"] = frame["price_eur"] * to_vintage
    frame["indexed_price_m2"] = frame["indexed_price_eur"] / frame["living_area_m2"]
    price = frame["indexed_price_eur"].to_numpy()
    y = np.log(price)
    lap("price_index")

    # 2. Features, leak-free: neighbours strictly earlier than each target.
    pool = frame if test_neighbours == "earlier" else frame.iloc[train_rows]
    features = builder(frame, pool)
    lap("features")

    # 3. Model choice and vertical equity on the validation half.
    model, selection = _select_model(
        features, y, price, slices, param_grid, offset_options, seed, num_threads
    )
    X_valid = features.iloc[slices.valid]
    if vertical_equity is not None:
        model.calibrate_vertical_equity(X_valid, price[slices.valid], **vertical_equity)
    lap("model_selection")

    # 4. Interval, calibrated on the calibration half with the final point model.
    holdout_price = price
    if interval_drift:
        # The holdout's prices as a model frozen at the holdout start would face them: indexed with the
        # index held flat from that month on, so the market's move since then counts as error.
        holdout_start = (split - pd.DateOffset(months=holdout_months)).to_datetime64()
        holdout_price = price * index.factor(
            np.repeat(holdout_start, len(frame)), region, to_date=frame["sale_date"]
        )
    interval, interval_selection = _select_interval(
        model,
        features,
        price,
        holdout_price,
        slices,
        coverage,
        interval_methods,
        interval_bins,
        seed,
        num_threads,
    )
    lap("interval")

    # 5. The test period: model, interval and baseline, back from the vintage to each sale's date.
    test = frame.iloc[slices.test]
    vintage = index.vintage_date()
    pool_region = None if region_column is None else pool[region_column].astype(str).to_numpy()
    estimate, low, high, baseline = (np.full(slices.test.size, np.nan) for _ in range(4))
    baseline_count = np.zeros(slices.test.size, dtype=np.int64)
    refreshes: list[dict[str, Any]] = []
    for positions, batch_index, batch_pool, X_batch in _test_batches(
        frame, slices.test, features, pool, pool_region, region, index, index_refresh, builder
    ):
        rows = slices.test[positions]
        to_sale = batch_index.factor(
            np.repeat(vintage, rows.size),
            None if region is None else region[rows],
            to_date=frame["sale_date"].iloc[rows],
        )
        point_indexed = model.predict_price(X_batch)
        low_indexed, high_indexed = interval.predict_interval(X_batch, point_indexed)
        estimate[positions], low[positions], high[positions] = (
            v * to_sale for v in (point_indexed, low_indexed, high_indexed)
        )
        baseline_m2, baseline_count[positions] = _comparables(
            frame, rows, batch_pool, baseline_k, baseline_lag_days, num_threads
        )
        baseline[positions] = baseline_m2 * frame["living_area_m2"].to_numpy()[rows] * to_sale
        if batch_index is not index:
            refreshes.append({"vintage": batch_index.vintage_, "sales": int(rows.size)})
    baseline_valid_m2, _ = _comparables(frame, slices.valid, pool, baseline_k, baseline_lag_days, num_threads)
    baseline_valid = baseline_valid_m2 * frame["living_area_m2"].to_numpy()[slices.valid]
    lap("test_predictions")

    sale_price = test["price_eur"].to_numpy()
    both = np.isfinite(baseline) & np.isfinite(estimate)
    model_study = ratio_study(estimate[both], sale_price[both], low[both], high[both])
    baseline_study = ratio_study(baseline[both], sale_price[both])
    interval_report = {
        "method": interval.method,
        "n_bins": interval.n_bins,
        "stated": coverage,
        "overall": model_study["coverage"],
        "by_price_quartile": model_study["coverage_by_quartile"],
        "by_estimate_quartile": coverage_by_quartile(
            sale_price[both], low[both], high[both], by=estimate[both]
        ),
        "median_relative_width": float(np.median((high - low)[both] / estimate[both])),
        "calibration_coverage": interval.calibration_coverage_,
        "n_calibration": interval.n_calibration_,
        "selection": interval_selection,
    }
    valid_ok = np.isfinite(baseline_valid)
    validation = {
        "model": ratio_study(model.predict_price(X_valid)[valid_ok], price[slices.valid][valid_ok]),
        "baseline": ratio_study(baseline_valid[valid_ok], price[slices.valid][valid_ok]),
    }
    lap("ratio_studies")
    timings["total"] = round(time.perf_counter() - started, 2)

    result: dict[str, Any] = {
        "model": model_study,
        "baseline": baseline_study,
        "interval": interval_report,
        "hit_rate": {
            "model": float(np.mean(np.isfinite(estimate))),
            "baseline": float(np.mean(np.isfinite(baseline))),
        },
        "selection": selection,
        "chosen": {
            "offset_feature": model.offset_feature,
            "params": model.params,
            "trees": model.best_iteration_,
            "valid_mdape": min(row["valid_mdape"] for row in selection),
            "vertical_equity": model.vertical_equity_,
        },
        "validation": validation,
        "index": index.to_dict(),
        "counts": {
            "sales": len(frame),
            "fit": int(slices.fit.size),
            "valid": int(slices.valid.size),
            "calibration": int(slices.cal.size),
            "test": int(slices.test.size),
            "test_valued_by_both": int(both.sum()),
        },
        "timings": timings,
        "index_refreshes": refreshes,
        "features": {"names": list(features.columns), "categorical": categorical_columns(features)},
        "artefacts": {"model": model, "interval": interval, "index": index},
    }
    if reference:
        rows = reference_rows(train_rows, slices.valid.size + slices.cal.size, seed=seed)
        # The model predicts only where its offset (e.g. the comparables estimate) is present, as in the fit.
        rows = rows[_positive(features, model.offset_feature, rows)]
        X_reference = features.iloc[rows]
        result["reference"] = reference_distribution(X_reference, model.predict(X_reference))
        result["reference"]["from"] = str(frame["sale_date"].iloc[rows[0]].date())
        result["reference"]["to"] = str(frame["sale_date"].iloc[rows[-1]].date())
    if keep_predictions:
        result["predictions"] = pd.DataFrame(
            {
                "sale_date": test["sale_date"].to_numpy(),
                "price_eur": sale_price,
                "estimate_eur": estimate,
                "low_eur": low,
                "high_eur": high,
                "baseline_eur": baseline,
                "baseline_comparables": baseline_count,
            }
        )
    return result
