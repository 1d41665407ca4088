"""The open-data features per parcel, computed on the synthetic demo region and checked by hand."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from features import registry
from features.compute import parcel_features_refresh
from features.models import FEATURE_COLUMNS, ParcelFeatures
from features.store import OPEN_DATA_CATEGORICAL, OPEN_DATA_NUMERIC, parcel_features_frame
from opendata.demo.load import DemoLoadResult, demo_region_delete, demo_region_load
from opendata.demo.region import generate_region
from opendata.models import (
    Building,
    BuildingType,
    LocationPoint,
    MunicipalityStatistic,
    Parcel,
    SectorStatistic,
    SourceRefreshRun,
)
from tests.conftest import restore_demo

pytestmark = pytest.mark.django_db


def rows(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[DemoLoadResult]:
    """The demo region with its features computed, once for the module (committed), removed afterwards.

    Outside a transaction and in chunks of 1,000 parcels, the refresh takes its parallel path (two
    connections); the tests' own refreshes run inside their transaction, on the calling connection."""
    with django_db_blocker.unblock():
        result = demo_region_load(region=generate_region(2026), force=True, progress_stream=io.StringIO())
        computed = parcel_features_refresh(None, stream=io.StringIO(), chunk_size=1_000, workers=2)
        assert computed == result.counts["parcels"]
        yield result
        demo_region_delete()
        SourceRefreshRun.objects.filter(source="demo").delete()
        restore_demo()


def features(pk: int) -> ParcelFeatures:
    return ParcelFeatures.objects.get(pk=pk)


# The registry and the table agree.


def test_every_column_has_a_registry_entry_and_back() -> None:
    open_data = registry.names(registry.OPEN_DATA_GROUPS)
    assert set(open_data) == set(FEATURE_COLUMNS)
    assert len(open_data) == len(FEATURE_COLUMNS)
    assert set(OPEN_DATA_NUMERIC) | set(OPEN_DATA_CATEGORICAL) == set(FEATURE_COLUMNS)
    assert OPEN_DATA_CATEGORICAL == ("building_type",)
    for name in FEATURE_COLUMNS:
        feature = registry.get(name)
        assert feature.group in {"cadastral", "height", "accessibility", "socio_economic"}
        assert all(feature.labels[lang] and feature.explanations[lang] for lang in registry.LANGUAGES), name
        assert feature.source and feature.computed, name
        assert not feature.notary_input


# Values checkable by hand.


def test_every_demo_parcel_gets_a_row(demo: DemoLoadResult) -> None:
    parcels = Parcel.objects.filter(source="demo").count()
    assert ParcelFeatures.objects.filter(parcel__source="demo").count() == parcels == demo.counts["parcels"]


def test_parcel_area_is_the_area_of_the_outline(demo: DemoLoadResult) -> None:
    off = rows(
        "SELECT count(*) FROM features_parcelfeatures f JOIN opendata_parcel p ON p.id = f.parcel_id "
        "WHERE p.source = 'demo' AND abs(f.parcel_area_m2 - ST_Area(p.geometry)) > 1e-6"
    )
    assert off == [(0,)]


def test_building_facts_are_those_of_the_largest_building(demo: DemoLoadResult) -> None:
    built = Building.objects.filter(source="demo").select_related("parcel")[:300]
    for building in built:
        assert building.parcel_id is not None and building.height_m is not None
        f = features(building.parcel_id)
        assert f.building_type == building.building_type
        assert f.building_height_m == building.height_m
        assert f.storeys == building.storeys
        assert f.building_area_m2 == pytest.approx(building.footprint.area, abs=1e-6)
        assert f.building_volume_m3 == pytest.approx(building.footprint.area * building.height_m, rel=1e-9)
    counts = dict(rows("SELECT building_type, count(*) FROM features_parcelfeatures GROUP BY 1"))
    assert set(counts) == {"open", "half_open", "closed", None}  # None: the vacant lots


def test_distances_equal_st_distance_from_the_point_on_surface(demo: DemoLoadResult) -> None:
    station = LocationPoint.objects.get(source="demo", kind="railway_station").point
    centre = LocationPoint.objects.get(source="demo", kind="city_centre").point
    checked = rows(
        """
        SELECT f.dist_station_m, ST_Distance(ST_PointOnSurface(p.geometry), %s::geometry),
               f.dist_centre_m, f.dist_major_city_m, ST_Distance(ST_PointOnSurface(p.geometry), %s::geometry),
               f.dist_railway_line_m, (SELECT min(ST_Distance(ST_PointOnSurface(p.geometry), l.geometry))
                                       FROM opendata_locationline l WHERE l.kind = 'railway'),
               f.dist_bus_stop_m, (SELECT min(ST_Distance(ST_PointOnSurface(p.geometry), b.point))
                                   FROM opendata_locationpoint b WHERE b.kind = 'bus_stop')
        FROM features_parcelfeatures f JOIN opendata_parcel p ON p.id = f.parcel_id
        WHERE p.source = 'demo' ORDER BY p.id LIMIT 50
        """,
        [station.ewkt, centre.ewkt],
    )
    assert len(checked) == 50
    for (
        station_m,
        station_check,
        centre_m,
        city_m,
        centre_check,
        rail_m,
        rail_check,
        bus_m,
        bus_check,
    ) in checked:
        assert station_m == pytest.approx(station_check, abs=1e-6)
        assert centre_m == city_m == pytest.approx(centre_check, abs=1e-6)
        assert rail_m == pytest.approx(rail_check, abs=1e-6)
        assert bus_m == pytest.approx(bus_check, abs=1e-6)
    assert 0 < station_m < 5_000


def test_socio_economic_figures_come_from_the_parcels_sector_and_municipality(demo: DemoLoadResult) -> None:
    parcel = Parcel.objects.filter(source="demo", sector__statistics__median_income_eur__isnull=False).first()
    assert parcel is not None
    sector = SectorStatistic.objects.get(sector__parcels=parcel)
    municipality = MunicipalityStatistic.objects.get(municipality__parcels=parcel)
    f = features(parcel.pk)
    assert f.sector_income_median_eur == sector.median_income_eur
    assert f.sector_income_avg_eur == sector.average_income_eur
    assert (f.sector_income_p10_eur, f.sector_income_p90_eur) == (
        sector.income_p10_eur,
        sector.income_p90_eur,
    )
    assert f.municipality_population == municipality.population
    assert f.municipality_tax_rate_pct == municipality.municipal_tax_rate_pct
    assert f.municipality_prosperity_index == municipality.prosperity_index
    assert f.municipality_income_avg_eur == municipality.average_income_eur
    assert municipality.population and municipality.area_km2
    assert f.municipality_density_km2 == pytest.approx(municipality.population / municipality.area_km2)


def test_shapes_street_widths_and_facades_are_plausible(demo: DemoLoadResult) -> None:
    (ratio_min, orientation_max, facade_max, facade_min) = rows(
        "SELECT min(parcel_ratio), max(parcel_orientation_deg), max(facade_orientation_deg), "
        "min(facade_orientation_deg) FROM features_parcelfeatures"
    )[0]
    assert ratio_min >= 1.0
    assert 0 <= orientation_max < 180
    assert facade_min >= 0 and facade_max < 360
    # Demo streets are 8, 9, 10 or 12 m between the parcel fronts: most parcels with one across say so.
    widths = dict(
        rows(
            "SELECT round(street_width_m)::int, count(*) FROM features_parcelfeatures "
            "WHERE street_width_m IS NOT NULL GROUP BY 1"
        )
    )
    assert sum(widths.get(w, 0) for w in (8, 9, 10, 12)) > 0.85 * sum(widths.values())
    # Every facade faces its address point (the demo's points sit 1 m inside the parcel front).
    wrong = rows(
        """
        SELECT count(*) FROM features_parcelfeatures f
        JOIN opendata_building b ON b.parcel_id = f.parcel_id
        JOIN LATERAL (SELECT point FROM opendata_address a WHERE a.parcel_id = f.parcel_id LIMIT 1) a ON true
        WHERE abs(mod((f.facade_orientation_deg - degrees(ST_Azimuth(ST_Centroid(b.footprint), a.point))
                       + 540)::numeric, 360) - 180) > 30
        """
    )
    assert wrong == [(0,)]
    # The demo's footprints are rectangles square to their street: the facade is the side along it, for
    # a terraced house its narrow side (5.2-7.5 m wide, 9-12 m deep).
    sides = rows(
        """
        SELECT f.facade_width_m, least(ST_Distance(ST_PointN(r, 1), ST_PointN(r, 2)),
                                       ST_Distance(ST_PointN(r, 2), ST_PointN(r, 3))) AS short
        FROM features_parcelfeatures f JOIN opendata_building b ON b.parcel_id = f.parcel_id
        CROSS JOIN ST_ExteriorRing(ST_OrientedEnvelope(b.footprint)) r
        WHERE b.building_type = 'closed' AND ST_Area(b.footprint) < 7.6 * 12
        """
    )
    assert len(sides) > 500
    assert sum(abs(width - short) < 0.01 for width, short in sides) > 0.99 * len(sides)


def test_a_parcel_missing_layers_gets_unknown_values_not_a_crash(demo: DemoLoadResult) -> None:
    vacant = Parcel.objects.filter(source="demo", buildings__isnull=True).first()
    assert vacant is not None, "the demo has vacant building land"
    f = features(vacant.pk)
    assert f.building_type is None and f.building_area_m2 is None and f.facade_width_m is None
    assert f.building_height_m is None and f.storeys is None and f.building_volume_m3 is None
    assert f.parcel_area_m2 and f.dist_station_m is not None

    # A built parcel whose sector and municipality lost their statistics, and no bus stops anywhere.
    built = Building.objects.filter(source="demo").first()
    assert built is not None and built.parcel_id is not None
    parcel = Parcel.objects.get(pk=built.parcel_id)
    SectorStatistic.objects.filter(sector__parcels=parcel).delete()
    MunicipalityStatistic.objects.filter(municipality__parcels=parcel).delete()
    LocationPoint.objects.filter(kind="bus_stop").delete()
    assert parcel_features_refresh([parcel.pk, vacant.pk], stream=io.StringIO()) == 2
    f = features(parcel.pk)
    assert f.sector_income_median_eur is None and f.municipality_population is None
    assert f.municipality_density_km2 is None and f.dist_bus_stop_m is None
    assert f.building_type == built.building_type and f.dist_station_m is not None


def test_unknown_building_types_are_read_from_shared_walls(demo: DemoLoadResult) -> None:
    sample = {}
    for kind in ("open", "half_open", "closed"):
        building = Building.objects.filter(source="demo", building_type=kind).first()
        assert building is not None and building.parcel_id is not None
        sample[kind] = (building.pk, building.parcel_id)
    Building.objects.filter(pk__in=[b for b, _ in sample.values()]).update(building_type=BuildingType.UNKNOWN)
    parcel_features_refresh([p for _, p in sample.values()], stream=io.StringIO())
    for kind, (_, parcel_id) in sample.items():
        assert features(parcel_id).building_type == kind


def test_the_municipality_and_sector_are_found_by_location_when_the_keys_are_missing(
    demo: DemoLoadResult,
) -> None:
    parcel = Parcel.objects.filter(source="demo", sector__statistics__median_income_eur__isnull=False).first()
    assert parcel is not None
    before = features(parcel.pk)
    Parcel.objects.filter(pk=parcel.pk).update(municipality=None, sector=None)
    parcel_features_refresh([parcel.pk], stream=io.StringIO())
    after = features(parcel.pk)
    assert after.sector_income_median_eur == before.sector_income_median_eur is not None
    assert after.municipality_population == before.municipality_population is not None


def test_an_incremental_refresh_recomputes_only_those_parcels(demo: DemoLoadResult) -> None:
    ids = list(Parcel.objects.filter(source="demo").order_by("pk").values_list("pk", flat=True))
    subset, others = ids[10:15], ids[:10] + ids[15:]
    ParcelFeatures.objects.filter(pk__in=ids).update(
        computed_at=ParcelFeatures.objects.get(pk=ids[0]).computed_at - timedelta(days=1)
    )
    stale = ParcelFeatures.objects.get(pk=ids[0]).computed_at
    ParcelFeatures.objects.filter(pk__in=subset).update(parcel_area_m2=-1)
    assert parcel_features_refresh([*subset, 999_999_999], stream=io.StringIO()) == len(subset)
    assert not ParcelFeatures.objects.filter(pk__in=subset, computed_at=stale).exists()
    assert not ParcelFeatures.objects.filter(pk__in=subset, parcel_area_m2=-1).exists()
    assert ParcelFeatures.objects.filter(pk__in=others, computed_at=stale).count() == len(others)


def test_features_go_with_their_parcel_even_on_a_plain_sql_delete(demo: DemoLoadResult) -> None:
    parcel = Parcel.objects.filter(source="demo", buildings__isnull=True).first()
    assert parcel is not None and ParcelFeatures.objects.filter(pk=parcel.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM opendata_parcel WHERE id = %s", [parcel.pk])
    assert not ParcelFeatures.objects.filter(pk=parcel.pk).exists()


def test_the_frame_for_the_model_has_the_registry_names(demo: DemoLoadResult) -> None:
    ids = list(Parcel.objects.filter(source="demo").order_by("pk").values_list("pk", flat=True)[:5])
    frame = parcel_features_frame([ids[2], *ids, None, 999_999_999])
    assert list(frame.index) == [ids[2], ids[0], ids[1], *ids[3:], 999_999_999]
    assert list(frame.columns) == registry.names(registry.OPEN_DATA_GROUPS)
    assert math.isnan(frame.loc[999_999_999, "parcel_area_m2"])
    assert frame.loc[ids[0], "parcel_area_m2"] == features(ids[0]).parcel_area_m2
    assert all(frame[name].dtype == "float64" for name in OPEN_DATA_NUMERIC)
    assert set(frame["building_type"].dropna()) <= {"open", "half_open", "closed"}
    assert parcel_features_frame([]).empty


def test_the_command_recomputes_one_parcel_by_capakey(demo: DemoLoadResult) -> None:
    parcel = Parcel.objects.filter(source="demo").order_by("pk").first()
    assert parcel is not None
    ParcelFeatures.objects.filter(pk=parcel.pk).delete()
    out = io.StringIO()
    call_command("compute_features", "--capakey", parcel.capakey, stdout=out, stderr=io.StringIO())
    assert "features of 1 parcel in" in out.getvalue()
    assert features(parcel.pk).parcel_area_m2 == pytest.approx(parcel.geometry.area)


def test_without_an_address_the_front_faces_the_nearest_road(demo: DemoLoadResult) -> None:
    # A parcel on a primary road (half-width 6 m in the demo), its front 6 m from the centreline.
    found = rows(
        """
        SELECT p.id FROM opendata_parcel p JOIN opendata_building b ON b.parcel_id = p.id
        JOIN opendata_address a ON a.parcel_id = p.id
        JOIN opendata_locationline l ON l.kind = 'primary_road' AND ST_DWithin(l.geometry, a.point, 7.5)
        WHERE p.source = 'demo' ORDER BY p.id LIMIT 1
        """
    )
    assert found, "the demo has houses on its primary roads"
    pk = found[0][0]
    before = features(pk)
    assert before.street_width_m == pytest.approx(12.0, abs=0.5)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM opendata_address WHERE parcel_id = %s", [pk])
    parcel_features_refresh([pk], stream=io.StringIO())
    after = features(pk)
    assert after.facade_orientation_deg == pytest.approx(before.facade_orientation_deg, abs=1.0)
    assert after.street_width_m == pytest.approx(12.0, abs=0.5)
    # Nothing across the street any more: twice the distance from the front to the centreline.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE opendata_parcel SET geometry = ST_Translate(geometry, 100000, 0) WHERE id <> %s", [pk]
        )
    parcel_features_refresh([pk], stream=io.StringIO())
    assert features(pk).street_width_m == pytest.approx(12.0, abs=0.1)
