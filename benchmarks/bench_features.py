"""``parcel_features_refresh`` speed: every feature of 500,000 parcels (target: at most 2 minutes).

The parcels are the demo region's, replicated: the demo region is loaded (if it is not there yet), then
copied with all its layers (municipality, sectors and statistics, parcels, buildings, addresses, places,
roads and railway) into 126 tiles 4.4 km apart, by SQL (``ST_Translate``), for 127 x 3,961 = 503,047
parcels in all. The copies (source ``bench-features``) are deleted afterwards, unless
``BENCH_FEATURES_KEEP=1`` keeps them for the next run.
"""

from __future__ import annotations

import io
import os
import time

from django.db import connection, transaction

from benchmarks import ROUNDS, Figure, median, runs
from features.compute import parcel_features_refresh
from features.models import ParcelFeatures
from opendata.models import Parcel

SOURCE = "bench-features"
TILES = 126  # copies of the demo region, besides the demo itself
COLUMNS = 12
TILE_M = 4_400.0


def run(tiles: int = TILES) -> list[Figure]:
    _ensure_demo()
    keep = os.environ.get("BENCH_FEATURES_KEEP") == "1"
    started = time.perf_counter()
    made = _replicate(tiles)
    generated = time.perf_counter() - started
    parcels = Parcel.objects.count()
    first, second, incremental = [], [], []
    try:
        for _ in range(ROUNDS):
            _truncate()
            started = time.perf_counter()
            count = parcel_features_refresh(None, stream=io.StringIO())
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            again = parcel_features_refresh(None, stream=io.StringIO())
            second.append(time.perf_counter() - started)
            assert count == again == parcels, (count, again, parcels)
            subset = list(Parcel.objects.order_by("?").values_list("pk", flat=True)[:1_000])
            started = time.perf_counter()
            parcel_features_refresh(subset, stream=io.StringIO())
            incremental.append(time.perf_counter() - started)
        filled = _filled()
    finally:
        if not keep:
            _delete()
    note = f"{'generated' if made else 'reused'} {parcels:,} parcels in {generated:.0f} s; {filled}"
    return [
        Figure(
            f"features of {parcels:,} parcels, all new",
            median(first),
            "s",
            f"{runs(first)} s; {note}",
            "<= 120 s",
        ),
        Figure(
            f"features of {parcels:,} parcels, recomputed",
            median(second),
            "s",
            f"{parcels / median(second):,.0f}/s; {runs(second)} s",
        ),
        Figure(
            "features of 1,000 random parcels (incremental)",
            median(incremental),
            "s",
            runs(incremental, "{:.2f}") + " s",
        ),
    ]


def _ensure_demo() -> None:
    if not Parcel.objects.filter(source="demo").exists():
        from opendata.demo.load import demo_region_load
        from opendata.demo.region import generate_region

        demo_region_load(region=generate_region(2026), progress_stream=io.StringIO())


def _truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {ParcelFeatures._meta.db_table}")


def _filled() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(street_width_m), count(facade_width_m), count(dist_bus_stop_m), "
            "count(sector_income_median_eur) FROM features_parcelfeatures"
        )
        total, street, facade, bus, income = cursor.fetchone()
    return (
        f"known: street width {street / total:.0%}, facade {facade / total:.0%}, bus stop {bus / total:.0%}, "
        f"sector income {income / total:.0%}"
    )


# Each statement copies the demo rows of one table into every tile (t.k = 1..tiles, offset t.dx, t.dy).
_COPY = [
    """INSERT INTO opendata_municipality (nis_code, name_nl, name_fr, name_de, geometry, valid_from, source)
       SELECT t.nis, 'Bench ' || t.k, 'Bench ' || t.k, '', ST_Translate(m.geometry, t.dx, t.dy), m.valid_from,
              %(source)s
       FROM opendata_municipality m CROSS JOIN bench_tiles t WHERE m.source = 'demo'""",
    """INSERT INTO opendata_statisticalsector (code, municipality_id, name_nl, name_fr, geometry, vintage,
              source)
       SELECT t.nis || substr(s.code, 6), m.id, s.name_nl, s.name_fr, ST_Translate(s.geometry, t.dx, t.dy),
              s.vintage, %(source)s
       FROM opendata_statisticalsector s CROSS JOIN bench_tiles t
       JOIN opendata_municipality m ON m.nis_code = t.nis
       WHERE s.source = 'demo'""",
    """INSERT INTO opendata_sectorstatistic (sector_id, year, population, area_km2, tax_returns,
              total_net_taxable_income_eur, average_income_eur, median_income_eur, income_p10_eur,
              income_p25_eur, income_p75_eur, income_p90_eur, source, vintage)
       SELECT n.id, s.year, s.population, s.area_km2, s.tax_returns, s.total_net_taxable_income_eur,
              s.average_income_eur * (0.8 + 0.4 * t.k / %(tiles)s), s.median_income_eur, s.income_p10_eur,
              s.income_p25_eur, s.income_p75_eur, s.income_p90_eur, %(source)s, s.vintage
       FROM opendata_sectorstatistic s JOIN opendata_statisticalsector o ON o.id = s.sector_id
       CROSS JOIN bench_tiles t
       JOIN opendata_statisticalsector n ON n.code = t.nis || substr(o.code, 6)
       WHERE s.source = 'demo'""",
    """INSERT INTO opendata_municipalitystatistic (municipality_id, year, population, area_km2, tax_returns,
              total_net_taxable_income_eur, average_income_eur, median_income_eur, municipal_tax_rate_pct,
              prosperity_index, source, vintage)
       SELECT m.id, s.year, s.population, s.area_km2, s.tax_returns, s.total_net_taxable_income_eur,
              s.average_income_eur, s.median_income_eur, s.municipal_tax_rate_pct, s.prosperity_index,
              %(source)s, s.vintage
       FROM opendata_municipalitystatistic s CROSS JOIN bench_tiles t
       JOIN opendata_municipality m ON m.nis_code = t.nis
       WHERE s.source = 'demo'""",
    # CaPaKeys stay unique: each tile has its own two cadastral divisions.
    """INSERT INTO opendata_parcel (capakey, geometry, area_m2, parcel_type, source, municipality_id,
              sector_id)
       SELECT lpad((10000 + 2 * t.k + (left(p.capakey, 5) = '99002')::int)::text, 5, '0')
              || substr(p.capakey, 6), ST_Translate(p.geometry, t.dx, t.dy), p.area_m2, p.parcel_type,
              %(source)s, m.id, n.id
       FROM opendata_parcel p JOIN opendata_statisticalsector o ON o.id = p.sector_id CROSS JOIN bench_tiles t
       JOIN opendata_municipality m ON m.nis_code = t.nis
       JOIN opendata_statisticalsector n ON n.code = t.nis || substr(o.code, 6)
       WHERE p.source = 'demo'
       ORDER BY t.k, p.id""",
    """CREATE TEMP TABLE bench_parcels AS
       SELECT p.id AS old_id, t.k, n.id AS new_id
       FROM opendata_parcel p CROSS JOIN bench_tiles t
       JOIN opendata_parcel n
         ON n.capakey = lpad((10000 + 2 * t.k + (left(p.capakey, 5) = '99002')::int)::text, 5, '0')
                        || substr(p.capakey, 6)
       WHERE p.source = 'demo'""",
    "CREATE INDEX ON bench_parcels (old_id, k)",
    """INSERT INTO opendata_building (footprint, building_type, height_m, storeys, parcel_id, source,
              source_id)
       SELECT ST_Translate(b.footprint, t.dx, t.dy), b.building_type, b.height_m, b.storeys, bp.new_id,
              %(source)s, t.k || ':' || b.source_id
       FROM opendata_building b CROSS JOIN bench_tiles t JOIN bench_parcels bp ON bp.k = t.k
       WHERE b.source = 'demo' AND bp.old_id = b.parcel_id""",
    """INSERT INTO opendata_address (street_nl, street_fr, street_de, house_number, box, postcode,
              municipality_id, point, parcel_id, source, source_id)
       SELECT a.street_nl, a.street_fr, a.street_de, a.house_number, a.box, a.postcode, m.id,
              ST_Translate(a.point, t.dx, t.dy), bp.new_id, %(source)s, t.k || ':' || a.source_id
       FROM opendata_address a CROSS JOIN bench_tiles t JOIN opendata_municipality m ON m.nis_code = t.nis
       JOIN bench_parcels bp ON bp.k = t.k
       WHERE a.source = 'demo' AND bp.old_id = a.parcel_id""",
    """INSERT INTO opendata_locationpoint (kind, name, point, source, source_id, attributes)
       SELECT l.kind, l.name, ST_Translate(l.point, t.dx, t.dy), %(source)s, t.k || ':' || l.source_id, '{}'
       FROM opendata_locationpoint l CROSS JOIN bench_tiles t WHERE l.source = 'demo'""",
    """INSERT INTO opendata_locationline (kind, name, geometry, source, source_id)
       SELECT l.kind, l.name, ST_Translate(l.geometry, t.dx, t.dy), %(source)s, t.k || ':' || l.source_id
       FROM opendata_locationline l CROSS JOIN bench_tiles t WHERE l.source = 'demo'""",
]


def _replicate(tiles: int) -> bool:
    """Copy the demo region into ``tiles`` tiles; False when a previous run's copies are still there."""
    demo = Parcel.objects.filter(source="demo").count()
    if Parcel.objects.filter(source=SOURCE).count() == demo * tiles:
        return False
    _delete()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_tiles ON COMMIT DROP AS SELECT k, (k %% %(columns)s) * %(tile)s AS dx, "
            "(k / %(columns)s) * %(tile)s AS dy, (97000 + k)::text AS nis "
            "FROM generate_series(1, %(tiles)s) k",
            {"columns": COLUMNS, "tile": TILE_M, "tiles": tiles},
        )
        for statement in _COPY:
            cursor.execute(statement, {"source": SOURCE, "tiles": tiles})
        cursor.execute("DROP TABLE bench_parcels")
    with connection.cursor() as cursor:
        for table in ("opendata_parcel", "opendata_building", "opendata_address"):
            cursor.execute(f"ANALYZE {table}")
    return True


def _delete() -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (
            "opendata_address",
            "opendata_building",
            "opendata_locationpoint",
            "opendata_locationline",
            "opendata_sectorstatistic",
            "opendata_municipalitystatistic",
            "opendata_parcel",
            "opendata_statisticalsector",
            "opendata_municipality",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE source = %s", [SOURCE])  # noqa: S608
    # Reclaim the 500,000 deleted rows now (autovacuum may be late on a bench server): their dead
    # index entries made the next benchmarks' searches scan hundreds of thousands of them.
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) opendata_address, opendata_building, opendata_parcel, features_parcelfeatures"
        )
