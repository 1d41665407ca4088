"""The neighbourhood as the notary sees it: the 1 km price distribution and the comparable sales.

Plain numpy over the candidate sales around the property (already indexed to the valuation date);
no database access, so the single and the batch valuation paths share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Bands of the reference screen: < 100,000, then EUR 50,000 wide up to 650,000, then > 650,000.
BAND_EDGES: tuple[int, ...] = tuple(range(100_000, 650_001, 50_000))
DISTRIBUTION_RADIUS_M = 1000.0


def band_labels() -> list[tuple[int | None, int | None]]:
    """(low, high) of each band in EUR; None for an open end."""
    edges: list[int | None] = [None, *BAND_EDGES, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def band_index(prices: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Band of each price: 0 for < 100,000 ... len(BAND_EDGES) for > 650,000 (a band holds its low edge)."""
    return np.searchsorted(
        np.asarray(BAND_EDGES, dtype=np.float64), np.asarray(prices, dtype=np.float64), side="right"
    ).astype(np.int64)


def price_distribution(indexed_prices: npt.ArrayLike, *, price: float | None = None) -> dict[str, object]:
    """Counts and percentages per band; the band holding ``price`` is marked."""
    values = np.asarray(indexed_prices, dtype=np.float64)
    counts = (
        np.bincount(band_index(values), minlength=len(BAND_EDGES) + 1)
        if values.size
        else np.zeros(len(BAND_EDGES) + 1, dtype=np.int64)
    )
    total = int(values.size)
    highlight = int(band_index([price])[0]) if price is not None else None
    bands = []
    for i, (low, high) in enumerate(band_labels()):
        bands.append(
            {
                "low_eur": low,
                "high_eur": high,
                "count": int(counts[i]),
                "percent": round(100.0 * counts[i] / total, 1) if total else 0.0,
                "contains_price": i == highlight,
            }
        )
    return {"count": total, "radius_m": DISTRIBUTION_RADIUS_M, "bands": bands}


@dataclass(frozen=True)
class ComparableQuery:
    x: float
    y: float
    living_area_m2: float | None
    property_type: str


def comparable_order(
    query: ComparableQuery,
    *,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    living_area: npt.NDArray[np.float64],
    property_type: npt.NDArray[np.object_],
    limit: int = 10,
    area_tolerance: float = 0.3,
) -> npt.NDArray[np.int64]:
    """Indices of the nearest similar sales: same type, living area within +/-30% when known, nearest first.

    When fewer than ``limit`` sales are that similar, the nearest sales of the same type fill the list.
    """
    distance = np.hypot(x - query.x, y - query.y)
    same_type = property_type == query.property_type
    similar = same_type.copy()
    if query.living_area_m2 and query.living_area_m2 > 0:
        ratio = living_area / query.living_area_m2
        similar &= np.isfinite(ratio) & (np.abs(ratio - 1.0) <= area_tolerance)
    first = _nearest(np.flatnonzero(similar), distance, limit)
    if first.size < limit:
        rest = _nearest(np.flatnonzero(same_type & ~similar), distance, limit - first.size)
        first = np.concatenate([first, rest])
    return first.astype(np.int64)


def _nearest(
    candidates: npt.NDArray[np.int64], distance: npt.NDArray[np.float64], n: int
) -> npt.NDArray[np.int64]:
    """The ``n`` nearest candidates, nearest first (ties by position), without sorting them all."""
    if candidates.size > n:
        d = distance[candidates]
        cut = np.partition(d, n - 1)[n - 1]
        candidates = candidates[d <= cut]
    return candidates[np.argsort(distance[candidates], kind="stable")][:n]
