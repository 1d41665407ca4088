"""The comparables baseline every model must beat, and the comparables feature.

estimate = living area x median indexed price per m2 of the ``k`` (20) nearest sales of the same property
type dated strictly before the target date. It is what a careful person does with a sales register and
a map. The same median is also a model input (and can be its offset), so, like
:mod:`valuation.ml.neighbourhood`, it has one definition for many targets and for one:

- the ``k`` nearest are chosen by exact squared distance ``dx*dx + dy*dy`` (float64), ties broken by the
  more recent sale first, then the lower price per m2, so the choice does not depend on which other
  sales happen to be in the candidate set or on the k-d tree's internal order;
- :func:`comparables_price_m2` (many targets) gets candidates from k-d trees over date-ordered
  prefixes of the sales (so that later, ineligible sales never crowd out the earlier ones) and widens
  the query until every sale as close as the k-th chosen one has been seen; :func:`comparables_price_m2_one`
  (one target, the serving path) ranks all candidate sales. Both rank with :func:`_rank_and_median`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial import cKDTree

from valuation.ml._dates import as_day_numbers
from valuation.ml.neighbourhood import SaleArrays

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _rank_and_median(
    d2: FloatArray, day: IntArray, value: FloatArray, k: int
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Per row of candidates (``inf`` distance = not eligible): the median of the first ``k`` by rank.

    Rank: squared distance, then the more recent sale, then the lower value. Returns the median, the
    number used and the distance of the farthest one used (NaN when none).
    """
    n, width = d2.shape
    rows = np.repeat(np.arange(n), width)
    order = np.lexsort((value.ravel(), -day.ravel(), d2.ravel(), rows)).reshape(n, width)[:, :k]
    order_cols = order - (np.arange(n) * width)[:, None]
    picked_d2 = np.take_along_axis(d2, order_cols, axis=1)
    picked = np.isfinite(picked_d2)
    values = np.where(picked, np.take_along_axis(value, order_cols, axis=1), np.inf)
    values.sort(axis=1)
    count = picked.sum(axis=1).astype(np.int64)
    median = np.full(n, np.nan)
    farthest = np.full(n, np.nan)
    has = count > 0
    idx = np.flatnonzero(has)
    median[has] = (values[idx, (count[has] - 1) // 2] + values[idx, count[has] // 2]) / 2.0
    farthest[has] = np.sqrt(picked_d2[idx, count[has] - 1])
    return median, count, farthest


def _eligible_d2(
    sale_idx: IntArray, tx: FloatArray, ty: FloatArray, tday: IntArray, sales: SaleArrays, lag_days: int
) -> FloatArray:
    """Exact squared distances to candidate sales, ``inf`` where the sale is not strictly earlier."""
    dx = sales.x[sale_idx] - tx[:, None]
    dy = sales.y[sale_idx] - ty[:, None]
    d2 = dx * dx + dy * dy
    earlier = sales.day[sale_idx] < (tday - lag_days)[:, None]
    return np.where(earlier & np.isfinite(sales.price_m2[sale_idx]), d2, np.inf)


def _nearest_in_tree(
    pending: IntArray,
    tree: cKDTree,
    candidates: IntArray,
    tx: FloatArray,
    ty: FloatArray,
    tday: IntArray,
    sales: SaleArrays,
    k: int,
    lag_days: int,
    workers: int,
    median: FloatArray,
    count: IntArray,
    farthest: FloatArray,
) -> None:
    """Fill the outputs for ``pending`` targets from the candidates of ``tree`` (in place)."""
    width = min(4 * k + 8, candidates.size)
    while pending.size:
        points = np.column_stack([tx[pending], ty[pending]])
        tree_distance, idx = tree.query(points, k=width, workers=workers)
        tree_distance = tree_distance.reshape(pending.size, width)
        sale_idx = candidates[idx.reshape(pending.size, width)]
        d2 = _eligible_d2(sale_idx, tx[pending], ty[pending], tday[pending], sales, lag_days)
        m, c, far = _rank_and_median(d2, sales.day[sale_idx], sales.price_m2[sale_idx], k)
        # Complete when every sale as close as the k-th chosen one was returned: the query reached
        # strictly beyond it, or returned all candidates. Otherwise widen and ask again.
        reach = tree_distance[:, -1]
        complete = (width >= candidates.size) | ((c >= k) & (reach > far * (1 + 1e-9) + 1e-6))
        done = pending[complete]
        median[done], count[done], farthest[done] = m[complete], c[complete], far[complete]
        pending = pending[~complete]
        width = min(width * 4, candidates.size)


def _tree(sales: SaleArrays, positions: IntArray) -> cKDTree:
    return cKDTree(np.column_stack([sales.x[positions], sales.y[positions]]))


def _by_date(sales: SaleArrays, usable: npt.NDArray[np.bool_], kind: Any) -> IntArray:
    """The usable sales (of ``kind`` unless None) in date order."""
    candidates = np.flatnonzero(usable if kind is None else usable & (sales.property_type == kind))
    return candidates[np.argsort(sales.day[candidates], kind="stable")]


def comparables_price_m2(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    date: Any,
    sales: SaleArrays,
    *,
    property_type: npt.ArrayLike | None = None,
    k: int = 20,
    lag_days: int = 0,
    workers: int = 1,
    chunk_size: int = 20_000,
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Median indexed price per m2 of the ``k`` nearest earlier sales of each target.

    Parameters
    ----------
    x, y : array-like of float
        Target coordinates in metres.
    date : array-like of dates, or one date
        Only sales dated strictly before ``date - lag_days`` count.
    sales : SaleArrays
        Candidate comparables with their indexed price per m2 (NaN: ignored).
    property_type : array-like, optional
        Type of each target; when given, only sales of the same type count.
    k : int, default 20
        Number of comparables.
    lag_days : int, default 0
        Publication lag, as in the neighbourhood features.
    workers : int, default 1
        Threads for the k-d tree queries.
    chunk_size : int, default 20000
        Targets ranked at once (memory: about ``chunk_size * 4k * 60`` bytes).

    Returns
    -------
    price_m2 : numpy.ndarray
        The median (NaN without any earlier comparable; fewer than ``k`` are used when that is all).
    count : numpy.ndarray of int
        Comparables used (at most ``k``).
    distance : numpy.ndarray
        Distance to the farthest comparable used, in metres.
    """
    tx, ty = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    tday = as_day_numbers(date)
    if tday.size == 1:
        tday = np.repeat(tday, tx.size)
    n = tx.size
    median, farthest = np.full(n, np.nan), np.full(n, np.nan)
    count = np.zeros(n, dtype=np.int64)
    usable = np.isfinite(sales.price_m2)
    valid = np.isfinite(tx) & np.isfinite(ty)
    if property_type is None:
        groups = {None: np.flatnonzero(valid)}
    else:
        if sales.property_type is None:
            raise ValueError("same-type comparables need the sales' property_type")
        kinds = np.asarray(property_type).ravel()
        groups = {kind: np.flatnonzero(valid & (kinds == kind)) for kind in pd.unique(kinds[valid])}
    for kind, targets in groups.items():
        # Candidates in date order. A target's eligible sales are a prefix of that order, of length
        # `eligible`; it is searched in a tree over the first power-of-two many (at least twice as many
        # as it needs), so later sales, never eligible, are at most half of what the tree holds. The
        # trees for all targets hold at most twice the candidates in total. Both are kept with the
        # sales for the next call (a batch valued in parts).
        candidates = sales.memo(("knn-candidates", kind), functools.partial(_by_date, sales, usable, kind))
        if targets.size == 0 or candidates.size == 0:
            continue
        eligible = np.searchsorted(sales.day[candidates], tday[targets] - lag_days, side="left")
        size = np.minimum(2 ** np.ceil(np.log2(np.maximum(eligible, 64))).astype(np.int64), candidates.size)
        for tree_size in np.unique(size[eligible > 0]).tolist():
            prefix = candidates[:tree_size]
            tree = sales.memo(("knn-tree", kind, tree_size), functools.partial(_tree, sales, prefix))
            group = targets[(size == tree_size) & (eligible > 0)]
            for chunk in np.array_split(group, -(-group.size // chunk_size)):
                _nearest_in_tree(
                    chunk, tree, prefix, tx, ty, tday, sales, k, lag_days, workers, median, count, farthest
                )
    return median, count, farthest


def comparables_price_m2_one(
    x: float,
    y: float,
    date: Any,
    sales: SaleArrays,
    *,
    property_type: Any = None,
    k: int = 20,
    lag_days: int = 0,
) -> tuple[float, int, float]:
    """:func:`comparables_price_m2` for one target from its candidate sales (the serving path).

    ``sales`` must hold every sale at least as close as the ``k``-th nearest earlier one (any superset
    does). Returns ``(price_m2, count, distance)``, identical to the batch function's.
    """
    tx, ty = np.array([x], dtype=np.float64), np.array([y], dtype=np.float64)
    tday = as_day_numbers([date])
    if not (np.isfinite(tx[0]) and np.isfinite(ty[0])):
        return float("nan"), 0, float("nan")
    if property_type is None:
        sale_idx = np.arange(len(sales), dtype=np.int64)
    else:
        if sales.property_type is None:
            raise ValueError("same-type comparables need the sales' property_type")
        sale_idx = np.flatnonzero(sales.property_type == property_type)
    sale_idx = sale_idx[np.isfinite(sales.price_m2[sale_idx])][None, :]
    if sale_idx.size == 0:
        return float("nan"), 0, float("nan")
    d2 = _eligible_d2(sale_idx, tx, ty, tday, sales, lag_days)
    m, c, far = _rank_and_median(d2, sales.day[sale_idx], sales.price_m2[sale_idx], k)
    return float(m[0]), int(c[0]), float(far[0])


def comparables_estimate(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    date: Any,
    living_area_m2: npt.ArrayLike,
    sales: SaleArrays,
    *,
    property_type: npt.ArrayLike | None = None,
    k: int = 20,
    lag_days: int = 0,
    workers: int = 1,
) -> FloatArray:
    """Baseline estimate in EUR (at the sales' index date): living area x comparables' median price/m2."""
    price_m2, _, _ = comparables_price_m2(
        x, y, date, sales, property_type=property_type, k=k, lag_days=lag_days, workers=workers
    )
    return np.asarray(living_area_m2, dtype=np.float64) * price_m2
