"""The synthetic demo region: deterministic generation, and what it looks like once loaded in PostGIS."""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from pyproj import Transformer

from opendata.capakey import normalise_capakey, parse_capakey
from opendata.demo.load import (
    DemoLoadResult,
    DemoRegionInvalid,
    demo_checksum,
    demo_counts,
    demo_region_delete,
    demo_region_load,
)
from opendata.demo.region import GENERATOR_VERSION, DemoRegion, generate_region, validate_region
from opendata.models import (
    Address,
    Building,
    BuildingType,
    LocationLine,
    LocationPoint,
    Municipality,
    MunicipalityStatistic,
    Parcel,
    RunStatus,
    SectorStatistic,
    SourceRefreshRun,
    StatisticalSector,
    sector_code_validator,
)

SEED = 2026


def scalar(sql: str, params: tuple[Any, ...] = ()) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


@pytest.fixture(scope="module")
def region() -> DemoRegion:
    return generate_region(SEED)


@pytest.fixture(scope="module")
def loaded(region: DemoRegion, django_db_setup: None, django_db_blocker: Any) -> Iterator[DemoLoadResult]:
    """The region loaded once for the module (committed), removed again afterwards."""
    with django_db_blocker.unblock():
        result = demo_region_load(region=region, force=True, progress_stream=io.StringIO())
        yield result
        demo_region_delete()
        SourceRefreshRun.objects.filter(source="demo").delete()


# Generation, without a database.


def test_the_same_seed_gives_the_same_region(region: DemoRegion) -> None:
    again = generate_region(SEED)
    assert again.checksum == region.checksum
    assert again.counts() == region.counts()
    assert [p.capakey for p in again.parcels] == [p.capakey for p in region.parcels]
    other = generate_region(SEED + 1)
    assert other.checksum != region.checksum
    assert other.vintage == f"seed={SEED + 1} v{GENERATOR_VERSION}"


@pytest.mark.parametrize("seed", [1, SEED])
def test_the_generated_region_passes_its_own_checks(seed: int) -> None:
    assert validate_region(generate_region(seed)) == []


def test_streets_are_bilingual(region: DemoRegion) -> None:
    assert len(region.streets) >= 40
    pairs = {(s.name_nl, s.name_fr) for s in region.streets}
    assert len(pairs) == len(region.streets), "every street has its own name"
    assert all(nl and fr and nl != fr for nl, fr in pairs)
    for pair in [
        ("Stationsstraat", "Rue de la Gare"),
        ("Kerkstraat", "Rue de l'Église"),
        ("Molenweg", "Chemin du Moulin"),
        ("Dorpsplein", "Place du Village"),
    ]:
        assert pair in pairs


def test_odd_numbers_on_the_left_even_on_the_right(region: DemoRegion) -> None:
    street = {s.name_nl: s for s in region.streets}
    wrong = 0
    for address in region.addresses:
        line = street[address.street_nl].line
        d = line.project(address.point)
        a, b = line.interpolate(max(0.0, d - 0.5)), line.interpolate(min(line.length, d + 0.5))
        left = (b.x - a.x) * (address.point.y - a.y) - (b.y - a.y) * (address.point.x - a.x) > 0
        wrong += left != (int(address.house_number) % 2 == 1)
    assert wrong == 0
    assert {int(a.house_number) % 2 for a in region.addresses} == {0, 1}


# The loaded database.


@pytest.mark.django_db
def test_the_municipality_is_obviously_synthetic_and_in_belgium(loaded: DemoLoadResult) -> None:
    municipality = Municipality.objects.get(nis_code="99001")
    assert (municipality.name_nl, municipality.name_fr, municipality.name_de) == (
        "Demodorp (synthetisch)",
        "Démoville (synthétique)",
        "Demodorf (synthetisch)",
    )
    assert municipality.source == "demo"
    assert municipality.geometry is not None
    assert municipality.geometry.srid == 31370
    assert 12e6 < municipality.geometry.area < 20e6  # about 4 x 4 km
    centroid = municipality.geometry.centroid
    lon, lat = Transformer.from_crs(31370, 4326, always_xy=True).transform(centroid.x, centroid.y)
    assert 2.6 < lon < 6.3
    assert 49.6 < lat < 51.4


@pytest.mark.django_db
def test_parcels_have_canonical_capakeys(loaded: DemoLoadResult) -> None:
    keys = list(Parcel.objects.filter(source="demo").values_list("capakey", flat=True))
    assert len(keys) >= 3_000
    assert all(normalise_capakey(k) == k for k in keys)
    parsed = [parse_capakey(k) for k in keys]
    assert {p.division for p in parsed} == {"99001", "99002"}
    assert len({p.section for p in parsed}) >= 3
    assert any(p.exponent_letter != "_" for p in parsed)
    assert any(p.exponent_letter == "_" for p in parsed)
    assert not Parcel.objects.filter(source="demo", sector__isnull=True).exists()
    assert (
        scalar(
            "SELECT count(*) FROM opendata_parcel "
            "WHERE source = 'demo' AND abs(area_m2 - ST_Area(geometry)) > 0.01"
        )
        == 0
    )


@pytest.mark.django_db
def test_every_building_lies_on_its_parcel(loaded: DemoLoadResult) -> None:
    assert Building.objects.filter(source="demo").count() >= 3_000
    assert not Building.objects.filter(source="demo", parcel__isnull=True).exists()
    outside = scalar(
        "SELECT count(*) FROM opendata_building b JOIN opendata_parcel p ON p.id = b.parcel_id "
        "WHERE b.source = 'demo' AND NOT ST_CoveredBy(b.footprint, ST_Buffer(p.geometry, 0.01))"
    )
    assert outside == 0
    implausible = Building.objects.filter(source="demo").exclude(
        storeys__gte=1, storeys__lte=6, height_m__gte=3, height_m__lte=25
    )
    assert not implausible.exists()


@pytest.mark.django_db
def test_building_types_follow_from_shared_walls(loaded: DemoLoadResult) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.building_type, count(b.id) FILTER (WHERE ST_Length(ST_Intersection(
                       ST_Buffer(ST_Boundary(a.footprint), 0.01), ST_Boundary(b.footprint))) > 0.5) AS walls,
                   coalesce(max(ST_Area(ST_Intersection(a.footprint, b.footprint))), 0) AS overlap
            FROM opendata_building a
            LEFT JOIN opendata_building b
                ON b.source = 'demo' AND b.id <> a.id AND ST_DWithin(a.footprint, b.footprint, 0.01)
            WHERE a.source = 'demo'
            GROUP BY a.id, a.building_type
            """
        )
        rows = cursor.fetchall()
    expected = {0: BuildingType.OPEN, 1: BuildingType.HALF_OPEN}
    assert [(t, w) for t, w, _ in rows if t != expected.get(w, BuildingType.CLOSED)] == []
    assert {t for t, _, _ in rows} == {BuildingType.OPEN, BuildingType.HALF_OPEN, BuildingType.CLOSED}
    assert max(overlap for _, _, overlap in rows) < 0.01, "buildings share walls but never overlap"


@pytest.mark.django_db
def test_addresses_lie_on_their_parcels(loaded: DemoLoadResult) -> None:
    addresses = Address.objects.filter(source="demo")
    assert addresses.count() >= 3_000
    assert not addresses.filter(parcel__isnull=True).exists()
    off = scalar(
        "SELECT count(*) FROM opendata_address a JOIN opendata_parcel p ON p.id = a.parcel_id "
        "WHERE a.source = 'demo' AND NOT ST_Intersects(a.point, p.geometry)"
    )
    assert off == 0
    assert all(
        len(code) == 4 and code.isdigit() for code in addresses.values_list("postcode", flat=True).distinct()
    )
    assert addresses.exclude(street_nl="").exclude(street_fr="").count() == addresses.count()
    boxed = addresses.exclude(box="")
    assert boxed.exists()
    # Boxes belong to apartment blocks near the centre: several addresses on one parcel.
    centre = LocationPoint.objects.get(source="demo", kind="city_centre").point
    assert max(a.point.distance(centre) for a in boxed) < 600
    assert all(
        addresses.filter(parcel_id=p).count() > 1
        for p in boxed.values_list("parcel_id", flat=True).distinct()
    )


@pytest.mark.django_db
def test_sectors_tile_the_municipality_with_varying_incomes(loaded: DemoLoadResult) -> None:
    sectors = StatisticalSector.objects.filter(source="demo")
    assert sectors.count() >= 20
    for code in sectors.values_list("code", flat=True):
        sector_code_validator(code)
        assert code.startswith("99001")
    area, total, gap = (
        scalar("SELECT ST_Area(geometry) FROM opendata_municipality WHERE nis_code = '99001'"),
        scalar("SELECT sum(ST_Area(geometry)) FROM opendata_statisticalsector WHERE source = 'demo'"),
        scalar(
            "SELECT ST_Area(ST_SymDifference(m.geometry, (SELECT ST_Union(geometry) "
            "FROM opendata_statisticalsector WHERE source = 'demo'))) "
            "FROM opendata_municipality m WHERE m.nis_code = '99001'"
        ),
    )
    assert abs(total - area) < 0.1, "no overlaps"
    assert gap < 0.1, "no holes"
    stats = SectorStatistic.objects.filter(source="demo")
    assert stats.count() == sectors.count()
    incomes = [i for i in stats.values_list("average_income_eur", flat=True) if i is not None]
    assert len(incomes) >= 15
    assert max(incomes) / min(incomes) > 1.2
    municipality = MunicipalityStatistic.objects.get(source="demo")
    assert municipality.population == sum(p or 0 for p in stats.values_list("population", flat=True)) > 1_000
    assert municipality.average_income_eur is not None
    assert min(incomes) < municipality.average_income_eur < max(incomes)


@pytest.mark.django_db
def test_location_layers_are_present(loaded: DemoLoadResult) -> None:
    points = LocationPoint.objects.filter(source="demo")
    for kind, least in [("city_centre", 1), ("railway_station", 1), ("bus_stop", 3), ("highway_entry", 1)]:
        assert points.filter(kind=kind).count() >= least, kind
    lines = LocationLine.objects.filter(source="demo")
    for kind in ("railway", "primary_road"):
        assert lines.filter(kind=kind).exists(), kind
    railway = lines.get(kind="railway").geometry
    assert railway.distance(points.get(kind="railway_station").point) < 1.0, "the station is on the line"
    municipality = Municipality.objects.get(nis_code="99001").geometry
    assert municipality is not None
    assert all(municipality.contains(p.point) for p in points)


@pytest.mark.django_db
def test_the_run_is_recorded(loaded: DemoLoadResult, region: DemoRegion) -> None:
    run = SourceRefreshRun.objects.get(pk=loaded.run.pk)
    assert run.source == "demo"
    assert run.status == RunStatus.SUCCEEDED
    assert run.vintage == f"seed={SEED} v{GENERATOR_VERSION}"
    assert run.checksum == demo_checksum(region) == loaded.run.checksum
    assert run.rows_loaded == run.rows_read == sum(demo_counts().values()) == sum(loaded.counts.values())


@pytest.mark.django_db
def test_loading_again_is_a_no_op_unless_forced(loaded: DemoLoadResult, region: DemoRegion) -> None:
    before, runs = demo_counts(), SourceRefreshRun.objects.count()
    again = demo_region_load(region=region, progress_stream=io.StringIO())
    assert not again.loaded
    assert again.run.status == RunStatus.SKIPPED, "the skip is recorded too"
    assert again.loaded_by.pk == loaded.run.pk
    assert demo_counts() == before
    assert SourceRefreshRun.objects.count() == runs + 1
    forced = demo_region_load(region=region, force=True, progress_stream=io.StringIO())
    assert forced.loaded
    assert forced.run.pk != loaded.run.pk
    assert demo_counts() == before


@pytest.mark.django_db
def test_an_invalid_region_writes_nothing_and_records_why(loaded: DemoLoadResult, region: DemoRegion) -> None:
    before = demo_counts()
    broken = dataclasses.replace(region, parcels=[*region.parcels, region.parcels[0]])
    with pytest.raises(DemoRegionInvalid, match="CaPaKeys are not unique"):
        demo_region_load(region=broken, force=True, progress_stream=io.StringIO())
    run = SourceRefreshRun.objects.filter(source="demo").latest("started_at", "id")
    assert run.status == RunStatus.FAILED
    assert "CaPaKeys" in run.error
    assert run.rows_rejected >= 1
    assert demo_counts() == before


def test_the_location_is_documented() -> None:
    from opendata.demo import network, region

    assert region.__doc__ is not None
    assert "EPSG:31370" in region.__doc__
    x, y = network.ORIGIN_X + network.SIZE_M / 2, network.ORIGIN_Y + network.SIZE_M / 2
    lon, lat = Transformer.from_crs(31370, 4326, always_xy=True).transform(x, y)
    assert math.isclose(lon, 5.02, abs_tol=0.05)
    assert math.isclose(lat, 50.72, abs_tol=0.05)
