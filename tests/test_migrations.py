"""The schema on real PostGIS: migrations complete, geometries in EPSG:31370 with spatial indexes."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from opendata.models import Municipality, Parcel
from valuation.models import Sale

pytestmark = pytest.mark.django_db


def test_models_and_migrations_agree() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_postgis_is_installed() -> None:
    with connection.cursor() as cursor:
        cursor.execute("select postgis_lib_version()")
        (version,) = cursor.fetchone()
    assert int(version.split(".")[0]) >= 3


def test_every_geometry_is_stored_in_lambert_72_with_a_gist_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "select f_table_name, f_geometry_column, srid from geometry_columns "
            "where f_table_schema = 'public' order by 1"
        )
        columns = cursor.fetchall()
        cursor.execute(
            "select tablename, indexdef from pg_indexes "
            "where schemaname = 'public' and indexdef ilike '%gist%'"
        )
        gist = cursor.fetchall()
    tables = {table for table, _, _ in columns}
    assert {"opendata_parcel", "opendata_building", "opendata_address", "valuation_sale"} <= tables
    assert {srid for _, _, srid in columns} == {31370}
    for table, column, _ in columns:
        assert any(t == table and column in indexdef for t, indexdef in gist), (
            f"{table}.{column} has no GiST index"
        )


def test_a_wgs84_point_is_stored_in_metres() -> None:
    municipality = Municipality.objects.create(
        nis_code="44021", name_nl="Gent", valid_from="2025-01-01", source="t"
    )
    square = Polygon.from_bbox((104000, 194000, 104020, 194030))
    parcel = Parcel.objects.create(
        capakey="44021A0001/00_000",
        geometry=MultiPolygon(square, srid=31370),
        area_m2=square.area,
        municipality=municipality,
        source="test",
    )
    # Sint-Baafskathedraal, Gent, in WGS84; Lambert 72 roughly (105 000, 193 900).
    sale = Sale.objects.create(
        source="test",
        external_id="1",
        sale_date="2024-05-01",
        price_eur=350000,
        point=Point(3.7266, 51.0530, srid=4326),
        parcel=parcel,
    )
    sale.refresh_from_db()
    assert sale.point.srid == 31370
    assert 104_000 < sale.point.x < 106_500
    assert 193_000 < sale.point.y < 195_000


def test_the_database_refuses_a_duplicate_sale_and_a_non_positive_price() -> None:
    point = Point(104000, 194000, srid=31370)
    Sale.objects.create(source="p", external_id="a", sale_date="2024-01-01", price_eur=1, point=point)
    with pytest.raises(IntegrityError), transaction.atomic():
        Sale.objects.create(source="p", external_id="a", sale_date="2024-01-02", price_eur=2, point=point)
    with pytest.raises(IntegrityError), transaction.atomic():
        Sale.objects.create(source="p", external_id="b", sale_date="2024-01-02", price_eur=0, point=point)
