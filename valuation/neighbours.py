"""The 1 km neighbourhood of many properties at once: price distribution and comparable sales.

For every property, the earlier sales of its type within 1 km are found through a grid over the sales
snapshot (rows of 250 m cells, each row's cells contiguous in one sorted array, so a property's
candidates are a handful of slices, gathered for a chunk of properties with vectorised index
arithmetic). Then, for all the (property, sale) pairs of a chunk at once:

- each sale's price is indexed to the valuation date (the index level of the sale's region at that
  date, minus the level at its sale date), banded, and counted per property: the distribution;
- the comparables are the 10 nearest sales of living area within +/-30% (nearest same-type sales fill
  the list when fewer are that similar), ties by position in the snapshot. Pairs farther than a cut are
  dropped first for properties that have enough similar sales within it, so the final sort is small.

One valuation goes through the same function as a batch of 10,000, so both give identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from valuation import market
from valuation.ml.grid import CELL_M, Grid

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHUNK_PAIRS = 1_000_000  # candidate pairs per chunk (bounded memory, about 100 bytes a pair at peak)
COMPARABLE_CUTS_M = (150.0, 400.0)  # try these before all of the 1 km
COMPARABLES = 10
AREA_TOLERANCE = 0.3
NO_BAND = len(market.BAND_EDGES) + 1  # a sale not dated before the valuation day has no band


def sale_bands(day: int, sale_day: IntArray, sale_price: FloatArray, gap: FloatArray) -> npt.NDArray[np.int8]:
    """The band of every sale's price indexed to ``day`` (``gap``: log index change from its sale date
    to ``day``), or ``NO_BAND`` for a sale not dated strictly before ``day``."""
    band = market.band_index(sale_price * np.exp(gap)).astype(np.int8)
    band[sale_day >= day] = NO_BAND
    return band


@dataclass
class Neighbourhood:
    """Per property: the count of earlier same-type sales within 1 km, band counts, comparables."""

    count: IntArray
    band_counts: IntArray  # (n, bands)
    comparables: list[IntArray]  # snapshot positions, best first
    comparable_distance: list[FloatArray]


def neighbourhoods(
    *,
    grid: Grid,
    living_area: FloatArray,
    tx: FloatArray,
    ty: FloatArray,
    tday: IntArray,
    ttype: npt.NDArray[Any],
    tarea: FloatArray,
    bands_at: Callable[[IntArray], tuple[npt.NDArray[np.int8], IntArray]],
    radius: float = market.DISTRIBUTION_RADIUS_M,
) -> Neighbourhood:
    """The neighbourhood of each target (``tday``: valuation day numbers; ``tarea`` NaN if unknown).

    The sales are given in the grid's order (position ``i`` is sale ``grid.order[i]``: a target's
    candidates are then runs of consecutive positions, and reading them stays local): ``grid.xs``,
    ``grid.ys``, ``living_area``, and the table that ``bands_at(days)`` returns for the distinct
    valuation days, ``band[d, i]`` (the band of the sale's price indexed to day ``d``, or ``NO_BAND``
    when it is not dated strictly before it), with the position of each target's day in that table.
    The comparables come back as sale positions (``grid.order[i]``).
    """
    n = tx.size
    n_bands = len(market.BAND_EDGES) + 1
    count = np.zeros(n, dtype=np.int64)
    bands = np.zeros((n, n_bands), dtype=np.int64)
    comparables: list[IntArray] = [np.zeros(0, np.int64)] * n
    distance_out: list[FloatArray] = [np.zeros(0)] * n
    table, day_of_target = bands_at(tday)
    in_grid, gx, gy, garea = grid.order, grid.xs, grid.ys, living_area
    per_target = max(1.0, CHUNK_PAIRS / max(1, _density_guess(grid, radius)))
    step = int(max(1, min(n, per_target)))
    r2 = radius * radius
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        m = hi - lo
        ti, g = grid.runs(tx[lo:hi], ty[lo:hi], ttype[lo:hi], radius)
        dx = gx[g] - tx[lo:hi][ti]
        dy = gy[g] - ty[lo:hi][ti]
        d2 = dx * dx + dy * dy
        # One valuation date (the usual batch): a plain gather from its row of the table.
        band = table[0][g] if table.shape[0] == 1 else table[day_of_target[lo:hi][ti], g]
        # Pairs outside the circle go to the extra "no band" column, dropped with the undated ones.
        band[d2 > r2] = NO_BAND
        per_band = np.bincount(ti * (n_bands + 1) + band, minlength=m * (n_bands + 1))
        bands[lo:hi] = per_band.reshape(m, n_bands + 1)[:, :n_bands]
        count[lo:hi] = bands[lo:hi].sum(axis=1)
        # Comparables: similar living area (when the target's is known), nearest first. Most targets
        # have enough similar sales close by: only their pairs within a short cut are sorted.
        valid = band != NO_BAND
        area = tarea[lo:hi]
        settled = np.zeros(m, dtype=bool)
        picked: list[IntArray] = []
        for cut in (*COMPARABLE_CUTS_M, None):
            wanted = valid & ~settled[ti]
            if cut is not None:
                wanted &= d2 <= cut * cut
            at = np.flatnonzero(wanted)
            similar = _similar(garea[g[at]], area[ti[at]])
            if cut is None:
                picked.append(at[~settled[ti[at]]])
                break
            enough = np.bincount(ti[at[similar]], minlength=m) >= COMPARABLES
            newly = enough & ~settled
            picked.append(at[newly[ti[at]]])
            settled |= newly
        at = np.concatenate(picked)
        ci, cg, cd2 = ti[at], g[at], d2[at]
        cj = in_grid[cg]
        cs = _similar(garea[cg], area[ci])
        # Sort by (target, not similar, distance, snapshot position): a stable sort on an exact key.
        order = np.lexsort((cj, cd2, ~cs, ci))
        ci, cj, cd2 = ci[order], cj[order], cd2[order]
        first = np.searchsorted(ci, np.arange(m), side="left")
        top = (np.arange(ci.size) - first[ci]) < COMPARABLES
        ci, cj, cd = ci[top], cj[top], np.sqrt(cd2[top])
        bounds = np.searchsorted(ci, np.arange(m + 1), side="left").tolist()
        for k in range(m):
            a, b = bounds[k], bounds[k + 1]
            comparables[lo + k], distance_out[lo + k] = cj[a:b], cd[a:b]
    return Neighbourhood(count, bands, comparables, distance_out)


def _similar(sale_area: FloatArray, target_area: FloatArray) -> npt.NDArray[np.bool_]:
    """Living area within +/-30% of the target's; every sale is similar when the target's is unknown."""
    known = target_area > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        close = np.abs(sale_area / np.where(known, target_area, 1.0) - 1.0) <= AREA_TOLERANCE
    return np.where(known, close, True)


def _density_guess(grid: Grid, radius: float) -> int:
    """Average candidate pairs a target may have: sales per cell x cells the circle touches."""
    cells = max(1, grid.n_rows * grid.n_cols * max(1, grid.type_names.size))
    per_cell = grid.keys.size / cells
    touched = (2 * radius / CELL_M + 1) ** 2
    return int(per_cell * touched * 4) + 1  # x4: the densest parts, not the average
