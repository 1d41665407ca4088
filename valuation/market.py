"""The neighbourhood as the notary sees it: the 1 km price distribution and the comparable sales.

Plain numpy over the candidate sales around the property (already indexed to the valuation date);
no database access, so the single and the batch valuation paths share it.
"""

from __future__ import annotations

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


_BANDS = band_labels()


def distribution_from_counts(counts: npt.ArrayLike, *, price: float | None = None) -> dict[str, object]:
    """The distribution from its band counts (``len(BAND_EDGES) + 1`` of them)."""
    per_band: list[int] = np.asarray(counts, dtype=np.int64).tolist()
    total = sum(per_band)
    highlight = int(np.searchsorted(BAND_EDGES, price, side="right")) if price is not None else None
    bands = [
        {
            "low_eur": low,
            "high_eur": high,
            "count": n,
            "percent": round(100.0 * n / total, 1) if total else 0.0,
            "contains_price": i == highlight,
        }
        for i, ((low, high), n) in enumerate(zip(_BANDS, per_band, strict=True))
    ]
    return {"count": total, "radius_m": DISTRIBUTION_RADIUS_M, "bands": bands}
