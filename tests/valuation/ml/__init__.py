"""Tests of the ML core (no database). Shared synthetic data lives here."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_sales(
    n: int = 3000, seed: int = 0, years: float = 4.0, annual_growth: float = 0.05
) -> pd.DataFrame:
    """Sales on a 10 x 10 km town with a price gradient, area effect, two types and a known trend.

    ``log price = 8.0 + 0.4 * centre-ness + 0.9 * log(area) + 0.1 * house + growth * t + noise(0.15)``,
    with ``t`` in years from 2015-01-01.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10_000, n)
    y = rng.uniform(0, 10_000, n)
    days = np.sort(rng.integers(0, int(365.25 * years), n))
    date = np.datetime64("2015-01-01") + days
    kind = rng.choice(np.array(["apartment", "house"]), n, p=[0.6, 0.4])
    area = np.exp(rng.normal(np.log(np.where(kind == "house", 130, 75)), 0.3))
    centre = np.exp(-np.hypot(x - 5_000, y - 5_000) / 3_000)
    t = days / 365.25
    log_price = (
        8.0
        + 0.4 * centre
        + 0.9 * np.log(area)
        + 0.1 * (kind == "house")
        + annual_growth * t
        + rng.normal(0, 0.15, n)
    )
    return pd.DataFrame(
        {
            "sale_date": pd.to_datetime(date),
            "price_eur": np.exp(log_price).round(-2),
            "x": x,
            "y": y,
            "property_type": kind,
            "living_area_m2": area.round(),
            "district": (x // 5_000).astype(int) * 2 + (y // 5_000).astype(int),
        }
    )
