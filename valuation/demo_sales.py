"""Synthetic sales for the demo region, priced by a documented hedonic function. Nothing here is real.

Every sale is one dwelling of ``opendata.demo.region`` (a house, or an apartment unit behind a box number)
sold on a day between 2017-01-01 and 2026-10-31, at most once a year per dwelling. Its price is

    ln P = ln 280,000
         + 0.75 ln(A / 150)             A living area, m²
         + 0.12 ln(L / 600)             L land area, m²; houses only (apartments carry no land area)
         + type                         open 0, half-open -0.08, closed -0.15, apartment -0.10
         - 0.12 (d_centre - 1)          d_centre distance to the city centre, km
         - 0.05 (d_station - 1)         d_station distance to the railway station, km
         + 0.50 ln(I / 34,000)          I average net taxable income per return in the parcel's sector, EUR
         - 0.06 (E - 300) / 100         E EPC primary energy, kWh/m² a year (the true value, shown or not)
         + T(t)                         price index, 0 on 2017-01-01
         + e,  e ~ Normal(0, 0.15²)     lognormal noise

T(t) is linear between 1 January knots; its yearly changes in log points are 2017 +3.0, 2018 +3.5, 2019 +4.0,
2020 +5.0, 2021 +6.5, 2022 +4.5, 2023 -3.0 (the dip after the interest-rate rises), 2024 +2.5, 2025 +3.5,
2026 +3.5: about 3.3 % a year on average. So a 150 m² detached house on 600 m² at 1 km from centre and station
costs 280,000 EUR in January 2017 (income 34,000, EPC 300); a 120 m² terraced house on 150 m² at 300 m from
the centre and 800 m from the station, income 33,000, EPC 450, about 171,000.

Dwellings get their facts once (so repeat sales agree): living area from footprint x storeys, land from the
parcel, year built from the building type, EPC from the year built (30 % of pre-1990 houses renovated).
As in real deeds some facts are missing: EPC in 12 % of sales, year built 6 %, rooms 4 %, bedrooms 2 %.
Prices are rounded to 500 EUR. Loading replaces every sale with source "demo" (see ``DemoSales``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import IO

import numpy as np
from django.utils import timezone
from shapely.geometry import Point

from opendata.demo.load import DemoLoadResult, copy_model_rows, demo_region_load
from opendata.demo.region import NAME_NL, SOURCE, SRID, DemoRegion, generate_region, wkt
from valuation.models import SALE_FACTS, PropertyType, Sale

SALES_VERSION = 1
N_SALES = 11_000
FIRST_DAY, LAST_DAY = date(2017, 1, 1), date(2026, 10, 31)  # fixed, never "today"
MIN_DAYS_BETWEEN_SALES = 365


@dataclass(frozen=True, slots=True)
class Hedonic:
    """The coefficients of the price function in the module docstring."""

    base_price_eur: float = 280_000.0
    living_area: float = 0.75
    land_area: float = 0.12
    half_open: float = -0.08
    closed: float = -0.15
    apartment: float = -0.10
    centre_per_km: float = -0.12
    station_per_km: float = -0.05
    income: float = 0.50
    epc_per_100_kwh: float = -0.06
    noise_sd: float = 0.15
    yearly_change: tuple[tuple[int, float], ...] = (
        (2017, 0.030),
        (2018, 0.035),
        (2019, 0.040),
        (2020, 0.050),
        (2021, 0.065),
        (2022, 0.045),
        (2023, -0.030),
        (2024, 0.025),
        (2025, 0.035),
        (2026, 0.035),
    )

    def price_index(self, day: date) -> float:
        """T(t): the log price index, 0 on 2017-01-01, linear within each year."""
        level = 0.0
        for year, change in self.yearly_change:
            if day.year > year:
                level += change
            elif day.year == year:
                return level + change * (day.timetuple().tm_yday - 1) / (366 if year % 4 == 0 else 365)
        return level

    def log_price(
        self,
        *,
        property_type: str,
        building_type: str,
        living_area_m2: float,
        land_area_m2: float | None,
        distance_centre_km: float,
        distance_station_km: float,
        sector_income_eur: float,
        epc_kwh_m2: float,
        sale_date: date,
    ) -> float:
        """ln P without the noise term."""
        if property_type == PropertyType.APARTMENT:
            kind, land = self.apartment, 0.0
        else:
            kind = {"half_open": self.half_open, "closed": self.closed}.get(building_type, 0.0)
            land = self.land_area * math.log((land_area_m2 or 600.0) / 600.0)
        return (
            math.log(self.base_price_eur)
            + self.living_area * math.log(living_area_m2 / 150.0)
            + land
            + kind
            + self.centre_per_km * (distance_centre_km - 1.0)
            + self.station_per_km * (distance_station_km - 1.0)
            + self.income * math.log(sector_income_eur / 34_000.0)
            + self.epc_per_100_kwh * (epc_kwh_m2 - 300.0) / 100.0
            + self.price_index(sale_date)
        )


HEDONIC = Hedonic()


@dataclass(frozen=True, slots=True)
class Dwelling:
    capakey: str
    point: Point
    address: str
    property_type: str
    building_type: str
    living_area_m2: float
    land_area_m2: float | None
    rooms: int
    bedrooms: int
    year_built: int
    epc_kwh_m2: float
    distance_centre_km: float
    distance_station_km: float
    sector_income_eur: float


@dataclass(frozen=True, slots=True)
class DemoSale:
    external_id: str
    sale_date: date
    price_eur: Decimal
    dwelling: Dwelling
    rooms: int | None
    bedrooms: int | None
    year_built: int | None
    epc_kwh_m2: float | None


def dwellings(region: DemoRegion, rng: np.random.Generator) -> list[Dwelling]:
    """Every house and apartment unit of the region with its facts, in address order."""
    parcels = {p.capakey: p for p in region.parcels}
    buildings = {b.capakey: b for b in region.buildings}
    income = {s.code: s.average_income_eur for s in region.sectors}
    fallback = float(region.municipality_statistic()["average_income_eur"] or 34_000.0)
    result, built = [], {}
    for a in region.addresses:
        building, parcel = buildings[a.capakey], parcels[a.capakey]
        apartment = building.dwellings > 1
        if a.capakey not in built:
            built[a.capakey] = _year_built(
                rng, building.building_type, apartment, a.point.distance(region.centre)
            )
        year = built[a.capakey]
        if apartment:
            living = np.clip(
                building.footprint.area
                * building.storeys
                * 0.78
                / building.dwellings
                * rng.lognormal(0, 0.12),
                45,
                180,
            )
        else:
            living = np.clip(
                building.footprint.area * (building.storeys + 0.35) * 0.78 * rng.lognormal(0, 0.08), 50, 400
            )
        epc = 700 - 5.5 * (year - 1900) + rng.normal(0, 40)
        if year < 1990 and rng.random() < 0.3:
            epc *= 0.6  # renovated
        bedrooms = int(np.clip(round(living / 40 + rng.normal(0, 0.5)), 1, 6))
        box = f" bus {a.box}" if a.box else ""
        result.append(
            Dwelling(
                a.capakey,
                a.point,
                f"{a.street_nl} {a.house_number}{box}, {a.postcode} {NAME_NL}",
                PropertyType.APARTMENT if apartment else PropertyType.HOUSE,
                building.building_type,
                round(float(living)),
                None if apartment else round(parcel.geometry.area),
                int(np.clip(round(living / 22), bedrooms + 2, 14)),
                bedrooms,
                year,
                round(float(np.clip(epc * (0.8 if apartment else 1.0), 30, 900))),
                a.point.distance(region.centre) / 1000,
                a.point.distance(region.station) / 1000,
                float(income[parcel.sector_code] or fallback),
            )
        )
    return result


def _year_built(rng: np.random.Generator, building_type: str, apartment: bool, distance_m: float) -> int:
    """Old terraced rows in the centre, post-war pairs, detached houses of every decade further out."""
    if apartment:
        return int(rng.integers(1965, 2023))
    if building_type == "closed":
        return int(rng.integers(1990, 2024)) if rng.random() < 0.1 else int(rng.integers(1880, 1976))
    if building_type == "half_open":
        return int(rng.integers(1935, 2006))
    return int(rng.integers(1950, 2016)) if distance_m < 1_250 else int(rng.integers(1955, 2025))


def generate_sales(region: DemoRegion, *, hedonic: Hedonic = HEDONIC) -> list[DemoSale]:
    """N_SALES sales of the region's dwellings, ordered by date; deterministic for the region's seed."""
    rng = np.random.default_rng([region.seed, SALES_VERSION])
    homes = dwellings(region, rng)
    n_days = (LAST_DAY - FIRST_DAY).days + 1
    picked: list[tuple[int, int]] = []
    sold: dict[int, list[int]] = {}
    while len(picked) < N_SALES:
        for home, day in zip(
            rng.integers(0, len(homes), 4_000).tolist(), rng.integers(0, n_days, 4_000).tolist(), strict=True
        ):
            if len(picked) < N_SALES and all(
                abs(day - d) >= MIN_DAYS_BETWEEN_SALES for d in sold.get(home, [])
            ):
                sold.setdefault(home, []).append(day)
                picked.append((day, home))
    picked.sort()
    noise = rng.normal(0, hedonic.noise_sd, len(picked))
    missing = rng.random((len(picked), 4)) < np.array([0.12, 0.06, 0.04, 0.02])
    sales = []
    for n, ((day, home), e, gaps) in enumerate(
        zip(picked, noise.tolist(), missing.tolist(), strict=True), start=1
    ):
        d, sale_date = homes[home], FIRST_DAY + timedelta(days=day)
        log_price = hedonic.log_price(
            property_type=d.property_type,
            building_type=d.building_type,
            living_area_m2=d.living_area_m2,
            land_area_m2=d.land_area_m2,
            distance_centre_km=d.distance_centre_km,
            distance_station_km=d.distance_station_km,
            sector_income_eur=d.sector_income_eur,
            epc_kwh_m2=d.epc_kwh_m2,
            sale_date=sale_date,
        )
        price = Decimal(500 * round(math.exp(log_price + e) / 500)).quantize(Decimal("0.01"))
        sales.append(
            DemoSale(
                f"demo-{region.seed}-{n:06d}",
                sale_date,
                price,
                d,
                None if gaps[2] else d.rooms,
                None if gaps[3] else d.bedrooms,
                None if gaps[1] else d.year_built,
                None if gaps[0] else d.epc_kwh_m2,
            )
        )
    return sales


class DemoSales:
    """The demo sales as a dependant of the demo region load (``opendata.demo.load.DemoDependant``)."""

    name = "sales"

    def __init__(self, sales: list[DemoSale]) -> None:
        self.sales = sales
        self.planned = len(sales)
        digest = hashlib.sha256(f"sales v{SALES_VERSION}".encode())
        for s in sales:
            digest.update(
                f"{s.external_id}|{s.sale_date}|{s.price_eur}|{s.dwelling.capakey}|{s.rooms}|{s.bedrooms}|"
                f"{s.year_built}|{s.epc_kwh_m2}|{s.dwelling.living_area_m2}\n".encode()
            )
        self.fingerprint = digest.hexdigest()

    def count(self) -> int:
        return Sale.objects.filter(source=SOURCE).count()

    def delete(self) -> int:
        return Sale.objects.filter(source=SOURCE).delete()[0]

    def load(self, parcel_ids: Mapping[str, int]) -> int:
        now = timezone.now()
        fields = [
            "source",
            "external_id",
            "sale_date",
            "price_eur",
            *SALE_FACTS,
            "point",
            "parcel",
            "address",
            "imported_at",
        ]
        rows = (
            (
                SOURCE,
                s.external_id,
                s.sale_date,
                s.price_eur,
                s.dwelling.property_type,
                s.dwelling.living_area_m2,
                s.dwelling.land_area_m2,
                s.rooms,
                s.bedrooms,
                s.year_built,
                s.epc_kwh_m2,
                f"SRID={SRID};{wkt(s.dwelling.point)}",
                parcel_ids[s.dwelling.capakey],
                s.dwelling.address,
                now,
            )
            for s in self.sales
        )
        return copy_model_rows(Sale, fields, rows)


def demo_load(
    *, seed: int = 2026, force: bool = False, progress_stream: IO[str] | None = None
) -> DemoLoadResult:
    """Generate the demo region and its sales and load both in one transaction, unless already loaded;
    then compute the open-data features of the demo parcels that have none yet (about a second), and
    refresh the planner's statistics of those tables."""
    from django.db import connection

    from features.compute import parcel_features_refresh
    from features.models import ParcelFeatures
    from opendata import models as od
    from opendata.models import Parcel

    region = generate_region(seed)
    sales = DemoSales(generate_sales(region))
    result = demo_region_load(region=region, dependants=[sales], force=force, progress_stream=progress_stream)
    missing = list(
        Parcel.objects.filter(source=SOURCE)
        .exclude(pk__in=ParcelFeatures.objects.values("parcel_id"))
        .values_list("pk", flat=True)
    )
    if missing:
        parcel_features_refresh(missing, stream=progress_stream)
    # Rows written by COPY have no statistics until autovacuum's next pass (none where it is off): the
    # planner then guesses a few hundred addresses and the suggestions' trigram search scans them all
    # (60 ms instead of 5). PostgreSQL's advice after a bulk load is ANALYZE; 0.4 s here, every time,
    # so that a demo loaded before this line gets its statistics too.
    tables = (
        od.Municipality,
        od.StatisticalSector,
        od.SectorStatistic,
        od.MunicipalityStatistic,
        Parcel,
        od.Building,
        od.Address,
        od.LocationPoint,
        od.LocationLine,
        Sale,
        ParcelFeatures,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(m._meta.db_table) for m in tables))
    return result
