"""Demo sales: deterministic, priced by the documented hedonic function, loaded once by demo_region."""

from __future__ import annotations

import io
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection

from opendata.demo.load import demo_counts, demo_region_delete
from opendata.demo.region import DemoRegion, generate_region
from opendata.models import SourceRefreshRun
from tests.conftest import restore_demo
from valuation import demo_sales
from valuation.demo_sales import FIRST_DAY, HEDONIC, LAST_DAY, DemoSale, DemoSales, generate_sales
from valuation.models import PropertyType, Sale

SEED = 2026


def demo(*args: str) -> str:
    out = io.StringIO()
    call_command("demo_region", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture(scope="module")
def region() -> DemoRegion:
    return generate_region(SEED)


@pytest.fixture(scope="module")
def sales(region: DemoRegion) -> list[DemoSale]:
    return generate_sales(region)


@pytest.fixture(scope="module")
def loaded(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """``manage.py demo_region --force`` once for the module (committed), removed again afterwards."""
    with django_db_blocker.unblock():
        output = demo("--seed", str(SEED), "--force")
        yield output
        demo_region_delete(dependants=[DemoSales([])])
        SourceRefreshRun.objects.filter(source="demo").delete()
        restore_demo()


# The price function and the generator, without a database.


def test_the_docstring_states_the_coefficients() -> None:
    doc = demo_sales.__doc__ or ""
    for value in (
        HEDONIC.living_area,
        HEDONIC.land_area,
        HEDONIC.half_open,
        HEDONIC.closed,
        HEDONIC.apartment,
        HEDONIC.centre_per_km,
        HEDONIC.station_per_km,
        HEDONIC.income,
        HEDONIC.epc_per_100_kwh,
        HEDONIC.noise_sd,
    ):
        assert f"{abs(value):.2f}" in doc, value
    assert f"{HEDONIC.base_price_eur:,.0f}" in doc
    for year, change in HEDONIC.yearly_change:
        assert f"{year} {change * 100:+.1f}" in doc


def test_the_price_index_rises_with_a_dip() -> None:
    index = HEDONIC.price_index
    assert index(date(2017, 1, 1)) == 0
    assert index(date(2023, 12, 31)) < index(date(2023, 1, 1)), "prices fall in 2023"
    growth = index(date(2027, 1, 1)) / 10
    assert 0.03 <= growth <= 0.04
    days = [date(2017, 1, 1), date(2020, 7, 1), date(2026, 10, 31)]
    assert [index(d) for d in days] == sorted(index(d) for d in days)


def test_the_same_seed_gives_the_same_sales(region: DemoRegion, sales: list[DemoSale]) -> None:
    assert DemoSales(generate_sales(region)).fingerprint == DemoSales(sales).fingerprint
    other = DemoSales(generate_sales(generate_region(SEED + 1)))
    assert other.fingerprint != DemoSales(sales).fingerprint


def test_sales_look_like_a_decade_of_deeds(sales: list[DemoSale]) -> None:
    assert len(sales) >= 10_000
    assert len({s.external_id for s in sales}) == len(sales)
    days = [s.sale_date for s in sales]
    assert min(days) >= FIRST_DAY
    assert max(days) <= LAST_DAY == date(2026, 10, 31)
    assert (max(days) - min(days)).days >= 8 * 365
    houses = [s for s in sales if s.dwelling.property_type == PropertyType.HOUSE]
    apartments = [s for s in sales if s.dwelling.property_type == PropertyType.APARTMENT]
    assert len(houses) > 0.75 * len(sales)
    assert len(apartments) > 0.03 * len(sales)
    assert statistics.median(s.dwelling.distance_centre_km for s in apartments) < statistics.median(
        s.dwelling.distance_centre_km for s in houses
    )
    assert all(s.dwelling.land_area_m2 is None for s in apartments)
    assert all(s.dwelling.land_area_m2 for s in houses)
    missing = sum(s.epc_kwh_m2 is None for s in sales) / len(sales)
    assert 0.05 < missing < 0.2
    by_home: dict[tuple[str, str], list[DemoSale]] = defaultdict(list)
    for s in sales:
        by_home[(s.dwelling.capakey, s.dwelling.address)].append(s)
    for repeat in (v for v in by_home.values() if len(v) > 1):
        gaps = np.diff(sorted(s.sale_date.toordinal() for s in repeat))
        assert gaps.min() >= 365
        assert len({(s.dwelling.living_area_m2, s.dwelling.year_built) for s in repeat}) == 1


# The loaded database.


def _rows(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.django_db
def test_the_command_loads_ten_thousand_sales_over_eight_years(loaded: str) -> None:
    assert "SYNTHETIC" in loaded
    assert "sales" in loaded
    sales = Sale.objects.filter(source="demo")
    assert sales.count() >= 10_000
    first, last = sales.order_by("sale_date").first(), sales.order_by("sale_date").last()
    assert first is not None
    assert last is not None
    assert (last.sale_date - first.sale_date).days >= 8 * 365
    assert not sales.filter(parcel__isnull=True).exists()
    assert not sales.filter(living_area_m2__isnull=True).exists()
    assert not sales.filter(price_eur__lte=0).exists()
    prices = [
        float(p) for p in sales.filter(property_type=PropertyType.HOUSE).values_list("price_eur", flat=True)
    ]
    p05, p50, p95 = np.percentile(prices, [5, 50, 95])
    assert p05 > 100_000
    assert 200_000 < p50 < 400_000
    assert p95 < 900_000


@pytest.mark.django_db
def test_sales_lie_on_their_parcels_inside_the_municipality(loaded: str) -> None:
    [(outside, off_parcel)] = _rows(
        """
        SELECT count(*) FILTER (WHERE NOT ST_Within(s.point, m.geometry)),
               count(*) FILTER (WHERE NOT ST_Intersects(s.point, p.geometry))
        FROM valuation_sale s
        JOIN opendata_parcel p ON p.id = s.parcel_id
        JOIN opendata_municipality m ON m.id = p.municipality_id
        WHERE s.source = 'demo'
        """
    )
    assert (outside, off_parcel) == (0, 0)


@pytest.mark.django_db
def test_a_hedonic_regression_recovers_the_documented_coefficients(loaded: str) -> None:
    """Fit ln P on the documented variables, all measured in the database, with half-year effects."""
    rows = _rows(
        """
        SELECT ln(s.price_eur), ln(s.living_area_m2 / 150), ln(s.land_area_m2 / 600),
               (b.building_type = 'half_open')::int, (b.building_type = 'closed')::int,
               ST_Distance(s.point, c.point) / 1000, ST_Distance(s.point, t.point) / 1000,
               ln(coalesce(ss.average_income_eur, ms.average_income_eur) / 34000), s.epc_kwh_m2 / 100,
               (extract(year FROM s.sale_date) - 2017) * 2 + (extract(month FROM s.sale_date) > 6)::int
        FROM valuation_sale s
        JOIN opendata_parcel p ON p.id = s.parcel_id
        JOIN opendata_building b ON b.parcel_id = p.id
        JOIN opendata_sectorstatistic ss ON ss.sector_id = p.sector_id
        JOIN opendata_municipalitystatistic ms ON ms.municipality_id = p.municipality_id
        JOIN opendata_locationpoint c ON c.source = 'demo' AND c.kind = 'city_centre'
        JOIN opendata_locationpoint t ON t.source = 'demo' AND t.kind = 'railway_station'
        WHERE s.source = 'demo' AND s.property_type = 'house' AND s.epc_kwh_m2 IS NOT NULL
        """
    )
    data = np.array(rows, dtype=float)
    y, x, half = data[:, 0], data[:, 1:9], data[:, 9].astype(int)
    periods = (half[:, None] == np.arange(half.max() + 1)[None, :]).astype(float)
    coef, *_ = np.linalg.lstsq(np.column_stack([x, periods]), y, rcond=None)
    fitted = dict(
        zip(
            ["living", "land", "half_open", "closed", "centre", "station", "income", "epc"],
            coef[:8],
            strict=True,
        )
    )
    documented = {
        "living": HEDONIC.living_area,
        "land": HEDONIC.land_area,
        "half_open": HEDONIC.half_open,
        "closed": HEDONIC.closed,
        "centre": HEDONIC.centre_per_km,
        "station": HEDONIC.station_per_km,
        "income": HEDONIC.income,
        "epc": HEDONIC.epc_per_100_kwh,
    }
    tolerance = {"income": 0.1, "epc": 0.015}
    for name, value in documented.items():
        assert np.sign(fitted[name]) == np.sign(value), name
        assert abs(fitted[name] - value) < tolerance.get(name, 0.04), (name, fitted[name], value)
    # Bigger houses cost more; closer to the centre costs more per m² (ln P/A falls with distance).
    assert fitted["living"] > 0
    assert fitted["centre"] < 0
    # The half-year effects follow the documented index: rising about 3.3 % a year, with the 2023 dip.
    effects = coef[8:] - coef[8]
    middles = [date(2017 + k // 2, 4 if k % 2 == 0 else 10, 1) for k in range(len(effects))]
    truth = np.array([HEDONIC.price_index(d) for d in middles])
    assert np.corrcoef(effects, truth)[0, 1] > 0.97
    years = np.arange(len(effects)) / 2
    assert abs(np.polyfit(years, effects, 1)[0] - np.polyfit(years, truth, 1)[0]) < 0.01
    assert np.std(y - np.column_stack([x, periods]) @ coef) == pytest.approx(HEDONIC.noise_sd, abs=0.02)


@pytest.mark.django_db
def test_bigger_houses_cost_more(loaded: str) -> None:
    houses = list(
        Sale.objects.filter(source="demo", property_type=PropertyType.HOUSE).values_list(
            "living_area_m2", "price_eur"
        )
    )
    q1, q3 = np.percentile([a for a, _ in houses], [25, 75])
    small = statistics.median(float(p) for a, p in houses if a <= q1)
    big = statistics.median(float(p) for a, p in houses if a >= q3)
    assert big > 1.3 * small


@pytest.mark.django_db
def test_running_twice_changes_nothing_and_force_reloads(loaded: str) -> None:
    before, runs = (
        demo_counts(dependants=[DemoSales([])]),
        SourceRefreshRun.objects.filter(source="demo").count(),
    )
    assert before["sales"] >= 10_000
    assert before["parcels"] >= 3_000
    output = demo("--seed", str(SEED))
    assert "already loaded" in output
    assert demo_counts(dependants=[DemoSales([])]) == before
    runs_after = SourceRefreshRun.objects.filter(source="demo").order_by("id")
    assert [r.status for r in runs_after[runs:]] == ["skipped"]
    output = demo("--seed", str(SEED), "--force")
    assert "Loaded" in output
    assert demo_counts(dependants=[DemoSales([])]) == before
    latest = SourceRefreshRun.objects.filter(source="demo").latest("started_at", "id")
    assert latest.status == "succeeded"
    assert latest.vintage == f"seed={SEED} v1"
    assert latest.rows_loaded == sum(before.values())


@pytest.mark.django_db
def test_another_seed_replaces_the_demo(loaded: str) -> None:
    ids_before = set(Sale.objects.filter(source="demo").values_list("external_id", flat=True)[:100])
    demo("--seed", "7")
    assert SourceRefreshRun.objects.filter(source="demo").latest("started_at", "id").vintage == "seed=7 v1"
    sales = Sale.objects.filter(source="demo")
    assert sales.count() >= 10_000
    assert not sales.filter(external_id__in=ids_before).exists()
    assert not sales.filter(parcel__isnull=True).exists()
