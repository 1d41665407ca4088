"""The price index recovers a known synthetic trend, per region where there are enough sales."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valuation.ml.price_index import PriceIndex, parse_period, period_label


def _synthetic(n: int = 40_000, seed: int = 1):
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 4 * 365, n)
    dates = np.datetime64("2016-01-01") + days
    region = rng.choice(np.array(["north", "south", "tiny"]), n, p=[0.6, 0.395, 0.005])
    cells = rng.integers(0, 300, n)
    cell_effect = rng.normal(0, 0.3, 300)
    log_area = rng.normal(4.3, 0.35, n)
    t = days / 365.25
    national_trend = 0.06 * t + 0.03 * np.sin(2 * np.pi * t)  # growth with a seasonal wave
    extra_south = np.where(region == "south", -0.04 * t, 0.0)  # the south lags behind
    log_ppm2 = 8.0 + national_trend + extra_south + cell_effect[cells] - 0.15 * (log_area - 4.3)
    return dates, log_ppm2 + rng.normal(0, 0.15, n), region, cells, log_area


def _truth(months: np.ndarray, extra: float = 0.0) -> np.ndarray:
    t = (months + 0.5) / 12  # mid-month, in years from 2016-01
    level = 0.06 * t + 0.03 * np.sin(2 * np.pi * t) + extra * t
    return level - level[0]


def test_recovers_a_known_trend_nationally_and_per_region() -> None:
    dates, y, region, cells, log_area = _synthetic()
    index = PriceIndex(freq="M", min_sales_per_region=1000).fit(
        dates, y, region=region, controls=log_area, cells=cells
    )
    assert index.start_ == "2016-01"
    assert index.vintage_ == "2019-12"
    assert set(index.regions_) == {"north", "south"}  # "tiny" has about 200 sales: national index
    months = np.arange(48)
    # Only ratios of levels matter, so compare up to a constant: every month within 2 % of the truth.
    for name, extra in (("north", 0.0), ("south", -0.04)):
        error = index.regions_[name] - _truth(months, extra)
        assert np.max(np.abs(error - error.mean())) < 0.02, name
    # Growth over the last three years, the number that matters for indexing: within 1.5 %.
    assert index.factor("2017-01-15", "north", to_date="2019-12-15")[0] == pytest.approx(
        np.exp(_truth(months)[-1] - _truth(months)[12]), rel=0.015
    )
    assert index.residual_sd_ == pytest.approx(0.15, abs=0.01)


def test_factor_is_flat_outside_the_data_and_falls_back_to_national() -> None:
    dates, y, region, _, log_area = _synthetic(n=20_000)
    index = PriceIndex(min_sales_per_region=1000).fit(dates, y, region=region, controls=log_area)
    after = index.factor(["2019-12-20", "2022-06-01"], "north", to_date="2030-01-01")
    assert after.tolist() == [1.0, 1.0]
    before = index.factor("2010-01-01", "north", to_date="2016-01-31")
    assert before.tolist() == [1.0]
    national = index.factor("2017-03-03", None, to_date="2019-01-01")
    tiny = index.factor("2017-03-03", "tiny", to_date="2019-01-01")
    unknown = index.factor("2017-03-03", "nowhere", to_date="2019-01-01")
    assert tiny == national
    assert unknown == national
    # Default to_date: the vintage. Per-date regions.
    per_date = index.factor(["2017-03-03", "2017-03-03"], ["north", "south"])
    assert per_date[0] != per_date[1]


def test_round_trip_through_json_and_quarterly() -> None:
    dates, y, region, _, log_area = _synthetic(n=20_000)
    index = PriceIndex(freq="Q", min_sales_per_region=1000).fit(dates, y, region=region, controls=log_area)
    assert index.vintage_ == "2019Q4"
    restored = PriceIndex.from_dict(json.loads(json.dumps(index.to_dict())))
    probe = np.array(["2016-02-01", "2017-08-09", "2019-11-30"], dtype="datetime64[D]")
    for region_name in ("north", "south", "tiny"):
        assert np.array_equal(restored.factor(probe, region_name), index.factor(probe, region_name))
    assert restored.table().equals(index.table())
    with pytest.raises(ValueError, match=r"not a valuation\.price_index"):
        PriceIndex.from_dict({"format": "something else"})


def test_period_labels() -> None:
    for freq, label in (("M", "2016-12"), ("Q", "2016Q4")):
        assert period_label(parse_period(label, freq), freq) == label
