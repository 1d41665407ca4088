"""The grid-based batch neighbourhood equals a brute-force reading of its definition."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from valuation import market
from valuation.neighbours import COMPARABLES, Grid, neighbourhoods, sale_bands


def brute_force(sales: dict, t: dict, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Band counts and the comparables of one target, straight from the definitions."""
    d = np.hypot(sales["x"] - t["x"], sales["y"] - t["y"])
    d2 = (sales["x"] - t["x"]) ** 2 + (sales["y"] - t["y"]) ** 2
    sel = np.flatnonzero((d2 <= 1000.0**2) & (sales["day"] < t["day"]) & (sales["type"] == t["type"]))
    indexed = sales["price"][sel] * np.exp(gap[sel])
    counts = np.bincount(market.band_index(indexed), minlength=len(market.BAND_EDGES) + 1)
    if t["area"] > 0:
        similar = np.abs(sales["area"][sel] / t["area"] - 1.0) <= 0.3
    else:
        similar = np.ones(sel.size, dtype=bool)
    order = sorted(range(sel.size), key=lambda k: (not similar[k], d[sel[k]], sel[k]))[:COMPARABLES]
    return counts, sel[order], indexed[order]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_matches_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 6000
    # A dense town, a sparse countryside, and repeated sales at the same points (distance ties).
    dense = rng.uniform(0, 2500, size=(n // 2, 2))
    sparse = rng.uniform(-8000, 8000, size=(n // 2, 2))
    xy = np.vstack([dense, sparse])
    xy[:300] = xy[300:600]
    sales = {
        "x": xy[:, 0] + 150_000.0,
        "y": xy[:, 1] + 170_000.0,
        "day": rng.integers(17_000, 20_000, n),
        "price": rng.lognormal(12.5, 0.4, n),
        "area": np.where(rng.random(n) < 0.05, np.nan, rng.uniform(50, 250, n)),
        "type": np.where(rng.random(n) < 0.7, "house", "apartment").astype(object),
    }
    region = rng.integers(0, 3, n)
    sale_level = rng.normal(0, 0.1, n)
    target_level = rng.normal(0, 0.1, 3)

    m = 150
    pick = rng.integers(0, n, m)
    targets = {
        "x": sales["x"][pick] + rng.normal(0, 30, m),
        "y": sales["y"][pick] + rng.normal(0, 30, m),
        "day": rng.integers(17_500, 20_500, m),
        "type": np.where(rng.random(m) < 0.8, "house", "apartment").astype(object),
        "area": np.where(rng.random(m) < 0.1, np.nan, rng.uniform(60, 200, m)),
    }
    targets["type"][0] = "castle"  # a type no sale has

    gap = target_level[region] - sale_level  # one valuation-date level per region, for every target

    grid = Grid.build(sales["x"], sales["y"], sales["type"])

    def bands_at(tday: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        days, row = np.unique(tday, return_inverse=True)
        table = np.stack([sale_bands(int(d), sales["day"], sales["price"], gap) for d in days])
        return table[:, grid.order], row  # in the grid's order

    found = neighbourhoods(
        grid=grid,
        living_area=sales["area"][grid.order],
        tx=targets["x"],
        ty=targets["y"],
        tday=targets["day"],
        ttype=targets["type"],
        tarea=targets["area"],
        bands_at=bands_at,
    )
    for k in range(m):
        t = {name: values[k] for name, values in targets.items()}
        counts, chosen, _ = brute_force(sales, t, gap)
        assert found.band_counts[k].tolist() == counts.tolist()
        assert found.count[k] == counts.sum()
        assert found.comparables[k].tolist() == chosen.tolist(), k
        expected_distance = np.hypot(sales["x"][chosen] - t["x"], sales["y"][chosen] - t["y"])
        np.testing.assert_allclose(found.comparable_distance[k], expected_distance)
    assert found.count[0] == 0 and found.comparables[0].size == 0
    assert found.count.max() > 500  # the dense part really is dense


def test_distribution_from_counts_marks_the_price_band() -> None:
    counts = np.zeros(len(market.BAND_EDGES) + 1, dtype=np.int64)
    counts[[0, 3, 3 + 1]] = [2, 5, 3]
    dist = market.distribution_from_counts(counts, price=260_000)
    assert dist["count"] == 10
    bands: Any = dist["bands"]
    assert [b["count"] for b in bands][:5] == [2, 0, 0, 5, 3]
    assert sum(b["count"] for b in bands) == dist["count"]
    assert [b["low_eur"] for b in bands if b["contains_price"]] == [250_000]
    assert bands[3]["percent"] == 50.0
