"""Neighbourhood features from earlier sales only: the one definition used for training and serving.

For a target (x, y in metres, a date and optionally a property type) and each radius (500 m and 1 km by
default), the features are the number of sales within the radius dated *strictly before* the target date
(minus an optional publication lag) and the median of their indexed price per m2. A sale on the target's
own date or later never counts, so a training row never sees itself or the future.

Both entry points end in the same function, :func:`_features_from_pairs`, which applies the date filter,
the exact distance test and the median to candidate (target, sale) pairs:

- :func:`neighbourhood_features` (many targets, training and backtests) finds the candidate pairs with
  a k-d tree, in chunks of bounded memory;
- :func:`neighbourhood_features_one` (one target, the serving path, given the candidate sales fetched
  around the address) takes every candidate sale as a pair.

Because the distance (``dx*dx + dy*dy <= r*r``, in float64, same operand order) and the median are
computed by the same code, the two give bit-identical results.
"""

from __future__ import annotations

import functools
import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from valuation.ml._dates import as_day_numbers
from valuation.ml.grid import Grid

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_RADII: tuple[float, ...] = (500.0, 1000.0)
#: Upper bound on candidate pairs held in memory at once by the batch path (about 40 bytes each).
DEFAULT_MAX_PAIRS = 1_000_000
#: Derived structures kept per SaleArrays (see :meth:`SaleArrays.memo`).
MEMO_SIZE = 16


def feature_names(radii: Sequence[float] = DEFAULT_RADII) -> list[str]:
    """Column names, e.g. ``nbh_ppm2_median_500m`` and ``nbh_count_500m`` for each radius."""
    names = []
    for r in radii:
        names += [f"nbh_ppm2_median_{r:g}m", f"nbh_count_{r:g}m"]
    return names


@dataclass(frozen=True)
class SaleArrays:
    """The sales that may serve as neighbours, as flat arrays. Build it with :meth:`build`.

    Attributes
    ----------
    x, y : numpy.ndarray of float
        Coordinates in metres (a projected CRS: EPSG:31370 in Belgium).
    day : numpy.ndarray of int
        Sale dates as days since 1970-01-01.
    price_m2 : numpy.ndarray of float
        Indexed price per m2; sales with NaN here are ignored.
    property_type : numpy.ndarray, optional
        Property type of each sale, needed for same-type features.
    by_value : numpy.ndarray of int
        Sale positions sorted by ``price_m2`` (NaN last); ``rank`` is its inverse. Sorting pairs by
        ``(target, rank)`` as one integer key is what makes the medians fast.
    """

    x: FloatArray
    y: FloatArray
    day: IntArray
    price_m2: FloatArray
    property_type: npt.NDArray[Any] | None
    by_value: IntArray
    rank: IntArray
    _memo: OrderedDict[Any, Any] = field(default_factory=OrderedDict, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        date: Any,
        price_m2: npt.ArrayLike,
        property_type: npt.ArrayLike | None = None,
    ) -> SaleArrays:
        """Validate and convert the arrays.

        Parameters
        ----------
        x, y : array-like of float
            Coordinates in metres.
        date : array-like of dates
            Sale dates (anything :func:`numpy.asarray` turns into ``datetime64``).
        price_m2 : array-like of float
            Indexed price per m2 (NaN: the sale is ignored).
        property_type : array-like, optional
            Property type of each sale.
        """
        xs, ys = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
        day = as_day_numbers(date)
        value = np.asarray(price_m2, dtype=np.float64).ravel()
        kinds = None if property_type is None else np.asarray(property_type).ravel()
        lengths = {xs.size, ys.size, day.size, value.size} | ({kinds.size} if kinds is not None else set())
        if len(lengths) != 1:
            raise ValueError("x, y, date, price_m2 (and property_type) must have the same length")
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
            raise ValueError("sale coordinates must be finite")
        by_value = np.argsort(value, kind="stable").astype(np.int64)
        rank = np.empty_like(by_value)
        rank[by_value] = np.arange(by_value.size, dtype=np.int64)
        return cls(xs, ys, day, value, kinds, by_value, rank)

    def __len__(self) -> int:
        return int(self.x.size)

    def memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """A structure derived from these sales (a search grid, a k-d tree), built on first use and
        kept for the next calls with the same sales (a batch valued in parts); the latest
        :data:`MEMO_SIZE` are kept."""
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        value = build()
        self._memo[key] = value
        while len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)
        return value


def _group_medians(
    group: IntArray, rank: IntArray, n_groups: int, sales: SaleArrays
) -> tuple[IntArray, FloatArray]:
    """Count and median price per m2 per group id, from the sales' ranks (pairs in any order).

    The median is the mean of the values at the lower and upper middle positions of the group's sales
    sorted by value. Small inputs sort (group, rank) keys; large ones (thousands of sales per group, the
    1 km circles of a dense town) find each middle rank without sorting: a histogram of the ranks in
    buckets per group locates the bucket that holds it, and only the pairs in that bucket are sorted.
    Both give the same two values, so the same median, bit for bit.
    """
    count = np.bincount(group, minlength=n_groups).astype(np.int64)
    median = np.full(n_groups, np.nan)
    has = np.flatnonzero(count > 0)
    if not has.size:
        return count, median
    lower_k, upper_k = (count[has] - 1) // 2, count[has] // 2
    bits = max(1, len(sales).bit_length())
    # Buckets of 2**shift ranks, about one per two pairs of a group on average: the histogram stays
    # smaller than the pairs, and the bucket of a middle rank holds few of the group's sales.
    per_group = group.size / n_groups
    shift = max(0, int(np.ceil(np.log2(max(1.0, 2.0 * len(sales) / per_group)))))
    if per_group < 256 or shift >= bits:
        key = np.sort((group << bits) | rank)
        start = np.concatenate(([0], np.cumsum(count)[:-1]))[has]
        lower, upper = key[start + lower_k], key[start + upper_k]
    else:
        n_buckets = (len(sales) >> shift) + 1
        bucket = rank >> shift
        hist = np.bincount(group * n_buckets + bucket, minlength=n_groups * n_buckets)
        cumulative = np.cumsum(hist.reshape(n_groups, n_buckets)[has], axis=1)
        # The bucket holding each middle position, and how many of the group's sales come before it.
        lower_b = (cumulative <= lower_k[:, None]).sum(axis=1)
        upper_b = (cumulative <= upper_k[:, None]).sum(axis=1)
        rows = np.arange(has.size)
        before = np.where(lower_b > 0, cumulative[rows, np.maximum(lower_b - 1, 0)], 0)
        where = np.full(n_groups, -1, dtype=np.int64)
        where_upper = np.full(n_groups, -1, dtype=np.int64)
        where[has], where_upper[has] = lower_b, upper_b
        # Buckets between the two are empty: the selected pairs of a group are its sales at sorted
        # positions before .. upper, in order.
        pick = np.flatnonzero((bucket == where[group]) | (bucket == where_upper[group]))
        key = np.sort((group[pick] << bits) | rank[pick])
        start = np.searchsorted(key >> bits, has)
        lower, upper = key[start + lower_k - before], key[start + upper_k - before]
    mask = (1 << bits) - 1
    low_value = sales.price_m2[sales.by_value[lower & mask]]
    high_value = sales.price_m2[sales.by_value[upper & mask]]
    median[has] = (low_value + high_value) / 2.0
    return count, median


def _date_window(
    sale_day: IntArray, target_day: IntArray | np.int64, lag_days: int, max_age_days: int | None
) -> npt.NDArray[np.bool_]:
    """Pairs whose sale is dated before ``target day - lag_days`` (and at most ``max_age_days`` old)."""
    keep = sale_day < target_day - lag_days
    if max_age_days is not None:
        keep &= sale_day >= target_day - max_age_days
    return keep


def _stats_from_pairs(
    target_idx: IntArray,
    sale_x: FloatArray,
    sale_y: FloatArray,
    sale_rank: IntArray,
    tx: FloatArray,
    ty: FloatArray,
    sales: SaleArrays,
    radii: Sequence[float],
    min_count: int,
) -> dict[str, npt.NDArray[Any]]:
    """The single definition of the features, from usable (target, sale) pairs in any order, given
    as the target and the sale's coordinates and rank: for each radius, the pairs with
    ``dx*dx + dy*dy <= r*r`` and per target their count and median (NaN under ``min_count``)."""
    n_targets = tx.size
    dx = sale_x - tx[target_idx]
    dy = sale_y - ty[target_idx]
    d2 = dx * dx + dy * dy
    rank = sale_rank
    out: dict[str, npt.NDArray[Any]] = {}
    # Largest radius first, each one's pairs a subset of the previous one's: the work shrinks fast.
    for r in sorted(radii, reverse=True):
        inside = np.flatnonzero(d2 <= r * r)
        if inside.size < d2.size:
            target_idx, rank, d2 = target_idx[inside], rank[inside], d2[inside]
        count, median = _group_medians(target_idx, rank, n_targets, sales)
        median[count < min_count] = np.nan
        median_name, count_name = feature_names([r])
        out[median_name] = median
        out[count_name] = count
    return {name: out[name] for name in feature_names(radii)}


def _features_from_pairs(
    target_idx: IntArray,
    sale_idx: IntArray,
    tx: FloatArray,
    ty: FloatArray,
    tday: IntArray,
    sales: SaleArrays,
    radii: Sequence[float],
    lag_days: int,
    max_age_days: int | None,
    min_count: int,
) -> dict[str, npt.NDArray[Any]]:
    """The features from candidate (target, sale) pairs in any order: the pairs whose sale has a price
    per m2 and falls in the target's date window, then :func:`_stats_from_pairs`."""
    keep = _date_window(sales.day[sale_idx], tday[target_idx], lag_days, max_age_days)
    keep &= np.isfinite(sales.price_m2[sale_idx])
    target_idx, sale_idx = target_idx[keep], sale_idx[keep]
    return _stats_from_pairs(
        target_idx,
        sales.x[sale_idx],
        sales.y[sale_idx],
        sales.rank[sale_idx],
        tx,
        ty,
        sales,
        radii,
        min_count,
    )


def _validate_targets(
    x: npt.ArrayLike, y: npt.ArrayLike, date: Any
) -> tuple[FloatArray, FloatArray, IntArray]:
    tx, ty = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    tday = as_day_numbers(date)
    if tday.size == 1 and tx.size > 1:
        tday = np.repeat(tday, tx.size)
    if not tx.size == ty.size == tday.size:
        raise ValueError("target x, y and date must have the same length")
    return tx, ty, tday


def neighbourhood_features(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    date: Any,
    sales: SaleArrays,
    *,
    property_type: npt.ArrayLike | None = None,
    radii: Sequence[float] = DEFAULT_RADII,
    lag_days: int = 0,
    max_age_days: int | None = None,
    min_count: int = 1,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    workers: int = 1,
) -> pd.DataFrame:
    """Neighbourhood features of many targets, from the earlier sales among ``sales``.

    Parameters
    ----------
    x, y : array-like of float
        Target coordinates in metres. Targets with NaN coordinates get NaN medians and zero counts.
    date : array-like of dates, or one date
        Valuation (or sale) date of each target; only sales dated strictly before it count.
    sales : SaleArrays
        Candidate neighbour sales with their indexed price per m2.
    property_type : array-like, optional
        Type of each target; when given, only sales of the same type count.
    radii : sequence of float, default (500, 1000)
        Radii in metres.
    lag_days : int, default 0
        Only sales dated before ``date - lag_days`` count (a publication lag, for honest backtests).
    max_age_days : int, optional
        Ignore sales older than this many days before the target.
    min_count : int, default 1
        Medians over fewer sales are NaN (the count is still given).
    max_pairs : int
        Memory bound: candidate pairs per chunk (each chunk holds about 60 bytes a pair at its peak).
    workers : int, default 1
        Threads: chunks are processed in parallel (memory grows with it).

    Returns
    -------
    pandas.DataFrame
        One row per target, columns :func:`feature_names` (``radii``), in the order of the targets.
    """
    tx, ty, tday = _validate_targets(x, y, date)
    n_targets = tx.size
    columns = feature_names(radii)
    result = {
        name: (np.zeros(n_targets, dtype=np.int64) if "count" in name else np.full(n_targets, np.nan))
        for name in columns
    }
    valid_target = np.isfinite(tx) & np.isfinite(ty)
    priced = np.isfinite(sales.price_m2)
    if property_type is None:
        groups: dict[Any, tuple[IntArray, IntArray]] = {
            None: (np.flatnonzero(valid_target), np.flatnonzero(priced))
        }
    else:
        if sales.property_type is None:
            raise ValueError("same-type features need the sales' property_type")
        kinds = np.asarray(property_type).ravel()
        if kinds.size != n_targets:
            raise ValueError("property_type must have one value per target")
        groups = {
            kind: (
                np.flatnonzero(valid_target & (kinds == kind)),
                np.flatnonzero(priced & (sales.property_type == kind)),
            )
            for kind in pd.unique(kinds[valid_target])
        }
    max_radius = float(max(radii))
    # A hair of slack on the search radius, so that the exact test in _features_from_pairs, not the
    # grid's own arithmetic, decides the boundary.
    query_radius = max_radius * (1 + 1e-9) + 1e-6
    jobs = []
    for kind, (targets, candidates) in groups.items():
        for day, chunk_targets in _by_day(targets, tday):
            searchable = sales.memo(
                ("grid", kind, day, lag_days, max_age_days),
                functools.partial(_usable_grid, sales, candidates, day, lag_days, max_age_days),
            )
            grid = searchable.grid
            if chunk_targets.size == 0 or searchable.sale.size == 0:
                continue
            # Spatially coherent chunks (2 km strips, then y) keep each chunk's candidates local.
            order = chunk_targets[np.lexsort((ty[chunk_targets], np.floor(tx[chunk_targets] / 2000.0)))]
            lengths = grid.counts(tx[order], ty[order], None, query_radius)
            bounds = _chunk_bounds(lengths, max_pairs)
            jobs += [(searchable, order[lo:hi], day is not None) for lo, hi in itertools.pairwise(bounds)]

    def run(job: tuple[_Searchable, IntArray, bool]) -> tuple[IntArray, dict[str, npt.NDArray[Any]]]:
        found, chunk, dated = job
        owner, at = found.grid.runs(tx[chunk], ty[chunk], None, query_radius)
        if not dated:
            keep = _date_window(found.day[at], tday[chunk][owner], lag_days, max_age_days)
            owner, at = owner[keep], at[keep]
        stats = _stats_from_pairs(
            owner,
            found.grid.xs[at],
            found.grid.ys[at],
            found.rank[at],
            tx[chunk],
            ty[chunk],
            sales,
            radii,
            min_count,
        )
        return chunk, stats

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for chunk, stats in pool.map(run, jobs):
            for name in columns:
                result[name][chunk] = stats[name]
    return pd.DataFrame(result, columns=columns)


#: Up to this many distinct target days, the sales usable on each day are selected once per day
#: (a batch valued on one date); beyond, every candidate pair is checked against its target's day.
MAX_DAY_GROUPS = 8


def _by_day(targets: IntArray, tday: IntArray) -> list[tuple[int | None, IntArray]]:
    """The targets per day when they have few distinct days (their usable sales are then selected
    once per day), else all of them with day None (every candidate pair is checked)."""
    days = np.unique(tday[targets])
    if days.size > MAX_DAY_GROUPS:
        return [(None, targets)]
    return [(day, targets[tday[targets] == day]) for day in days.tolist()]


@dataclass(frozen=True)
class _Searchable:
    """Sales found through a grid, with what the features read of them in the grid's order: the
    candidates of a target are runs of consecutive positions, so reading them stays local."""

    grid: Grid  # its xs and ys: the coordinates in that order
    sale: IntArray  # sale positions, in the grid's order
    day: IntArray
    rank: IntArray


def _usable_grid(
    sales: SaleArrays, candidates: IntArray, day: int | None, lag_days: int, max_age_days: int | None
) -> _Searchable:
    """The candidates usable on ``day`` (all of them when None), searchable by a grid."""
    if day is not None:
        candidates = candidates[_date_window(sales.day[candidates], np.int64(day), lag_days, max_age_days)]
    grid = Grid.build(sales.x[candidates], sales.y[candidates])
    ordered = candidates[grid.order]
    return _Searchable(grid, ordered, sales.day[ordered], sales.rank[ordered])


def _chunk_bounds(lengths: IntArray, max_pairs: int) -> list[int]:
    """Split consecutive targets into chunks of at most ``max_pairs`` pairs (at least one target each)."""
    bounds = [0]
    running = 0
    for i, length in enumerate(lengths.tolist()):
        if running and running + length > max_pairs:
            bounds.append(i)
            running = 0
        running += length
    bounds.append(lengths.size)
    return bounds


def neighbourhood_features_one(
    x: float,
    y: float,
    date: Any,
    sales: SaleArrays,
    *,
    property_type: Any = None,
    radii: Sequence[float] = DEFAULT_RADII,
    lag_days: int = 0,
    max_age_days: int | None = None,
    min_count: int = 1,
) -> dict[str, float | int]:
    """Neighbourhood features of one target, from candidate sales (the serving path).

    Same parameters and results as :func:`neighbourhood_features`, for a single target; ``sales`` are
    the candidates fetched around it (any superset of the sales within the largest radius).

    Returns
    -------
    dict
        Feature name to value (float medians, int counts).
    """
    tx, ty, tday = _validate_targets([x], [y], [date])
    columns = feature_names(radii)
    if not (np.isfinite(tx[0]) and np.isfinite(ty[0])):
        return {name: (0 if "count" in name else float("nan")) for name in columns}
    if property_type is None:
        sale_idx = np.arange(len(sales), dtype=np.int64)
    else:
        if sales.property_type is None:
            raise ValueError("same-type features need the sales' property_type")
        sale_idx = np.flatnonzero(sales.property_type == property_type)
    stats = _features_from_pairs(
        np.zeros(sale_idx.size, dtype=np.int64),
        sale_idx,
        tx,
        ty,
        tday,
        sales,
        radii,
        lag_days,
        max_age_days,
        min_count,
    )
    return {name: (int(stats[name][0]) if "count" in name else float(stats[name][0])) for name in columns}
