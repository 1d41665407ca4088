"""Ratio-study statistics for valuation models (docs/avm-quality.md, IAAO Standard on Ratio Studies).

Every statistic is computed on the per-sale ratio ``estimate / price`` of sales the model did not train
on. Conventions (kept stable because reports and the model registry store these numbers):

- ``mdape``, ``ppe10``, ``ppe20`` and ``coverage`` are fractions (0.071 means 7.1 %) over *all* sales;
- ``cod`` is in percent, as the IAAO defines it;
- ``median_ratio``, ``cod``, ``prd`` and ``prb`` are computed after trimming ratios beyond 3 x IQR
  (IAAO's recommended outlier trim), like the Cook County Assessor's ``assessr`` package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

#: Keys of :func:`ratio_study`'s result, in a stable order.
RATIO_STUDY_KEYS = (
    "count",
    "mdape",
    "ppe10",
    "ppe20",
    "cod",
    "prd",
    "prb",
    "median_ratio",
    "coverage",
    "coverage_by_quartile",
)

#: Labels of the price quartiles in ``coverage_by_quartile`` (Q1 = cheapest quarter of the sales).
QUARTILE_LABELS = ("Q1", "Q2", "Q3", "Q4")


def _as_positive(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name} must be finite and strictly positive")
    return array


def _check_same_length(**arrays: FloatArray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays differ in length: {lengths}")


def trim_mask(ratios: ArrayLike, multiplier: float = 3.0) -> npt.NDArray[np.bool_]:
    """Flag the ratios kept by the IQR outlier trim.

    Parameters
    ----------
    ratios : array-like
        Sales ratios (estimate / price).
    multiplier : float, default 3.0
        Ratios below ``Q1 - multiplier * IQR`` or above ``Q3 + multiplier * IQR`` are trimmed.

    Returns
    -------
    numpy.ndarray of bool
        True for the ratios kept.
    """
    r = np.asarray(ratios, dtype=np.float64)
    if r.size == 0:
        return np.zeros(0, dtype=bool)
    q1, q3 = np.quantile(r, [0.25, 0.75])
    iqr = q3 - q1
    return (r >= q1 - multiplier * iqr) & (r <= q3 + multiplier * iqr)


def mdape(estimates: ArrayLike, prices: ArrayLike) -> float:
    """Median absolute percentage error, as a fraction: ``median(|estimate - price| / price)``."""
    est, price = _as_positive(estimates, "estimates"), _as_positive(prices, "prices")
    _check_same_length(estimates=est, prices=price)
    return float(np.median(np.abs(est - price) / price)) if est.size else float("nan")


def ppe(estimates: ArrayLike, prices: ArrayLike, within: float) -> float:
    """Share of estimates within ``within`` of the price (0.10 for PPE10): ``|estimate/price - 1| <= within``.

    The comparison allows 1e-12 of float rounding, so an estimate exactly 10 % off counts as within 10 %.
    """
    est, price = _as_positive(estimates, "estimates"), _as_positive(prices, "prices")
    _check_same_length(estimates=est, prices=price)
    return float(np.mean(np.abs(est - price) / price <= within + 1e-12)) if est.size else float("nan")


def cod(ratios: ArrayLike) -> float:
    """Coefficient of dispersion in percent: ``100 * mean(|ratio - median|) / median`` (no trimming here)."""
    r = np.asarray(ratios, dtype=np.float64)
    if r.size == 0:
        return float("nan")
    median = np.median(r)
    return float(100.0 * np.mean(np.abs(r - median)) / median)


def prd(estimates: ArrayLike, prices: ArrayLike) -> float:
    """Price-related differential: ``mean(ratio) / (sum(estimates) / sum(prices))`` (no trimming here)."""
    est, price = np.asarray(estimates, dtype=np.float64), np.asarray(prices, dtype=np.float64)
    if est.size == 0:
        return float("nan")
    return float(np.mean(est / price) / (est.sum() / price.sum()))


def prb(estimates: ArrayLike, prices: ArrayLike) -> float:
    """Price-related bias, the slope of ``(ratio - m) / m`` on ``log2(0.5 * estimate / m + 0.5 * price)``.

    ``m`` is the median ratio. The value proxy mixes estimate and price so that neither alone drives the
    regression (IAAO Standard on Ratio Studies, appendix; ``assessr::prb``). A PRB of -0.03 means ratios
    fall by 3 % each time the value doubles. No trimming here.
    """
    est, price = np.asarray(estimates, dtype=np.float64), np.asarray(prices, dtype=np.float64)
    if est.size < 2:
        return float("nan")
    ratio = est / price
    median = np.median(ratio)
    lhs = (ratio - median) / median
    rhs = np.log2(0.5 * est / median + 0.5 * price)
    rhs_centred = rhs - rhs.mean()
    denominator = float(np.sum(rhs_centred**2))
    if denominator == 0.0:
        return float("nan")
    return float(np.sum(rhs_centred * (lhs - lhs.mean())) / denominator)


def interval_coverage(prices: ArrayLike, low: ArrayLike, high: ArrayLike) -> float:
    """Share of prices inside the closed interval ``[low, high]``."""
    price = np.asarray(prices, dtype=np.float64)
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    _check_same_length(prices=price, low=lo, high=hi)
    return float(np.mean((price >= lo) & (price <= hi))) if price.size else float("nan")


def quartile_labels(values: ArrayLike) -> npt.NDArray[np.int64]:
    """Quartile (0-3) of each value, by rank, so ties and skewed prices still give four near-equal groups.

    Values are ranked (ties broken by position, stably) and split into four groups of sizes as equal as
    possible: rank ``i`` of ``n`` goes to quartile ``floor(4 * i / n)``.
    """
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size, dtype=np.int64)
    ranks[order] = np.arange(v.size)
    return (4 * ranks) // max(v.size, 1)


def coverage_by_quartile(
    prices: ArrayLike, low: ArrayLike, high: ArrayLike, by: ArrayLike | None = None
) -> dict[str, float]:
    """Interval coverage within each quartile of ``by`` (the sale price when omitted).

    Returns
    -------
    dict
        ``{"Q1": coverage, ..., "Q4": coverage}``, Q1 being the lowest quarter.
    """
    price = np.asarray(prices, dtype=np.float64)
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    groups = quartile_labels(price if by is None else by)
    inside = (price >= lo) & (price <= hi)
    return {
        label: float(np.mean(inside[groups == q])) if np.any(groups == q) else float("nan")
        for q, label in enumerate(QUARTILE_LABELS)
    }


def ratio_study(
    estimates: ArrayLike,
    prices: ArrayLike,
    low: ArrayLike | None = None,
    high: ArrayLike | None = None,
    *,
    trim_multiplier: float = 3.0,
) -> dict[str, Any]:
    """The ratio study of a set of estimates against sale prices.

    Parameters
    ----------
    estimates, prices : array-like of float
        Model estimates and the corresponding sale prices, strictly positive.
    low, high : array-like of float, optional
        Interval bounds; when given, ``coverage`` and ``coverage_by_quartile`` (by sale-price quartile)
        are filled in, otherwise they are None.
    trim_multiplier : float, default 3.0
        IQR multiplier of the outlier trim applied before ``median_ratio``, ``cod``, ``prd`` and ``prb``.

    Returns
    -------
    dict
        Keys :data:`RATIO_STUDY_KEYS`: ``count`` (int, all sales), ``mdape``, ``ppe10``, ``ppe20``
        (fractions, all sales), ``cod`` (percent), ``prd``, ``prb``, ``median_ratio`` (trimmed sales),
        ``coverage`` (fraction or None) and ``coverage_by_quartile`` (dict Q1..Q4 or None). Values are
        plain Python numbers, ready for JSON.
    """
    est, price = _as_positive(estimates, "estimates"), _as_positive(prices, "prices")
    _check_same_length(estimates=est, prices=price)
    ratio = est / price
    kept = trim_mask(ratio, trim_multiplier)
    est_t, price_t, ratio_t = est[kept], price[kept], ratio[kept]
    result: dict[str, Any] = {
        "count": int(est.size),
        "mdape": mdape(est, price),
        "ppe10": ppe(est, price, 0.10),
        "ppe20": ppe(est, price, 0.20),
        "cod": cod(ratio_t),
        "prd": prd(est_t, price_t),
        "prb": prb(est_t, price_t),
        "median_ratio": float(np.median(ratio_t)) if ratio_t.size else float("nan"),
        "coverage": None,
        "coverage_by_quartile": None,
    }
    if (low is None) != (high is None):
        raise ValueError("give both low and high, or neither")
    if low is not None and high is not None:
        result["coverage"] = interval_coverage(price, low, high)
        result["coverage_by_quartile"] = coverage_by_quartile(price, low, high)
    return result
