"""Compute the open-data features of parcels with set-based SQL in PostGIS, into ``ParcelFeatures``.

``parcel_features_refresh(ids)`` recomputes the features of those parcels (``None``: all of them) in chunks
of :data:`CHUNK_SIZE` parcels. Each chunk is one ``INSERT ... SELECT ... ON CONFLICT (parcel_id) DO UPDATE``:
materialised CTEs first gather the chunk's parcels (point on surface, largest building, municipality,
sector) and their fronts, so that no geometry is computed twice, then LATERAL joins compute the rest. No
query is ever made per parcel. The layers and the latest statistics are copied once per run into
temporary tables of the session.

How each feature is computed (the registry says the same for each feature, for people):

- Distances are from the parcel's point on surface to the nearest object of a layer, by a k-nearest
  neighbour search (``ORDER BY geom <-> point LIMIT 1``) on an index. Each layer is first copied into a
  temporary table of its own, so the search never wades through objects of other kinds: points as
  PostgreSQL points on an SP-GiST k-d tree (exact, and 3-4x faster than PostGIS on GiST), lines as PostGIS
  geometries on GiST, cut into pieces of at most 64 vertices (``ST_Subdivide``) so that no distance is
  measured along a whole railway line.
- The building of a parcel is its largest footprint (``Building.parcel``). Its type is the source's
  (``Building.building_type``); a building of unknown type is typed here from the walls it shares with
  other buildings (none: open, one: half-open, two or more: closed).
- The front of a parcel is the edge of its outline facing the street, found from its address point when
  that lies within :data:`FRONT_ADDRESS_MAX_M` of the outline (BeSt points mark the front door or the
  front of the parcel), else from the nearest road centreline within :data:`FRONT_ROAD_MAX_M`, else from
  any address point. The front direction is the outward normal of that edge.
- Street width is the width of the public domain in front of the parcel: the shortest distance from the
  front point to the other (non public-domain) parcels met by a line straight out from it along the front
  direction, up to :data:`STREET_RAY_M`; where it meets none, twice the distance from the front point to a
  road centreline within :data:`FRONT_ROAD_MAX_M`; else unknown. (Distances, not intersections: PostGIS
  measures natively, where an intersection goes through GEOS at several times the cost.)
- The facade is the footprint edge facing the front direction (largest length x cosine of the angle
  between its outward normal and the front direction). Its orientation is the compass direction it faces
  (0-360, 0 north, 90 east): a facade facing south and one facing north differ for light and for the
  garden behind, so the direction is kept whole rather than folded to 0-180. Facade width is the width of
  the whole footprint measured along that facade (its extent along the facade line), so a stepped or
  L-shaped front counts in full.
- Parcel ratio is length / width of the parcel's minimum rotated rectangle (1 for a square, 5 for a strip
  five times as deep as wide); parcel orientation is the compass bearing of that rectangle's long axis,
  folded to 0-180 (an axis has no direction).
- Socio-economic figures come from the parcel's municipality and statistical sector (``Parcel``'s keys,
  else the polygons holding its point on surface), each figure from the latest year that has it.

Transactions: each chunk commits on its own (one atomic block per chunk). Features are derived data, a
rerun recomputes them identically, so a run that stops halfway leaves correct rows for the chunks done
and the rest as they were, and a long run never holds one huge transaction. Called inside an outer
transaction (tests, a connector's own atomic block), the chunks become savepoints of it and the work
stays in the calling thread. Otherwise large runs use :data:`WORKERS` database connections in parallel.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from django.db import connection, connections, transaction
from django.utils import timezone

from features.models import FEATURE_COLUMNS, ParcelFeatures
from opendata.models import Building, Parcel
from opendata.progress import Progress

CHUNK_SIZE = 20_000
WORKERS = 2  # parallel database connections for runs of more than one chunk (the machines have 2 cores)
FRONT_ADDRESS_MAX_M = 3.0
FRONT_ROAD_MAX_M = 25.0
STREET_RAY_M = 50.0
WALL_TOLERANCE_M = 0.05  # two footprints share a wall where their outlines run together within this...
WALL_MIN_M = 1.0  # ...for more than this

# Temporary layers: name -> the kinds it holds. Points from LocationPoint, lines from LocationLine.
POINT_LAYERS: dict[str, tuple[str, ...]] = {
    "major_city": ("city_centre",),
    "centre": ("city_centre", "town_centre"),
    "highway_entry": ("highway_entry",),
    "station": ("railway_station",),
    "bus_stop": ("bus_stop",),
}
LINE_LAYERS: dict[str, tuple[str, ...]] = {
    "primary_road": ("primary_road", "trunk_road"),
    "railway_line": ("railway",),
}
# Road centrelines that parcels front on (OSM streets where a connector loads them, and main roads). They
# are only ever searched within FRONT_ROAD_MAX_M, straight on opendata_locationline's GiST index: copying
# a country's streets for each run would cost more than it saves.
ROAD_KINDS = ("street", "primary_road", "trunk_road")

_PARCEL = Parcel._meta.db_table
_BUILDING = Building._meta.db_table
_FEATURES = ParcelFeatures._meta.db_table


def _has_column(model: Any, name: str) -> bool:
    return any(f.name == name for f in model._meta.concrete_fields)


def _kinds(kinds: tuple[str, ...]) -> str:
    return ", ".join(f"'{kind}'" for kind in kinds)


def _latest(columns: list[tuple[str, str]]) -> str:
    """Per column, its value in the latest year that has one (population and income come in separately)."""
    return ", ".join(
        f"(array_agg({col} ORDER BY year DESC) FILTER (WHERE {col} IS NOT NULL))[1] AS {alias}"
        for col, alias in columns
    )


def _setup_sql() -> list[str]:
    """Session-level temporary tables: the layers with their indexes, and the latest statistics."""
    statements = []
    for name, kinds in POINT_LAYERS.items():
        statements += [
            f"""CREATE TEMP TABLE feat_{name} AS SELECT point(ST_X(point), ST_Y(point)) AS p
                FROM opendata_locationpoint WHERE kind IN ({_kinds(kinds)})""",  # noqa: S608
            f"CREATE INDEX ON feat_{name} USING spgist (p kd_point_ops)",
        ]
    for name, kinds in LINE_LAYERS.items():
        statements += [
            f"""CREATE TEMP TABLE feat_{name} AS SELECT (ST_Dump(ST_Subdivide(geometry, 64))).geom AS geom
                FROM opendata_locationline WHERE kind IN ({_kinds(kinds)})""",  # noqa: S608
            f"CREATE INDEX ON feat_{name} USING gist (geom)",
        ]
    statements += [f"ANALYZE feat_{name}" for name in (*POINT_LAYERS, *LINE_LAYERS)]
    municipality = _latest(
        [
            ("s.population", "population"),
            ("s.area_km2", "area_km2"),
            ("s.municipal_tax_rate_pct", "tax_rate_pct"),
            ("s.prosperity_index", "prosperity_index"),
            ("s.average_income_eur", "income_avg"),
        ]
    )
    sector = _latest(
        [
            ("average_income_eur", "income_avg"),
            ("income_p10_eur", "p10"),
            ("income_p25_eur", "p25"),
            ("median_income_eur", "median"),
            ("income_p75_eur", "p75"),
            ("income_p90_eur", "p90"),
        ]
    )
    statements += [
        f"""CREATE TEMP TABLE feat_municipality AS
            SELECT m.id, {municipality}, ST_Area(m.geometry) / 1e6 AS polygon_km2
            FROM opendata_municipality m
            LEFT JOIN opendata_municipalitystatistic s ON s.municipality_id = m.id GROUP BY m.id""",  # noqa: S608
        f"""CREATE TEMP TABLE feat_sector AS
            SELECT sector_id AS id, {sector} FROM opendata_sectorstatistic GROUP BY sector_id""",  # noqa: S608
        "ALTER TABLE feat_municipality ADD PRIMARY KEY (id)",
        "ALTER TABLE feat_sector ADD PRIMARY KEY (id)",
    ]
    return statements


_TEMP_TABLES = (*POINT_LAYERS, *LINE_LAYERS, "municipality", "sector")


def _parcels_sql() -> str:
    """The chunk's parcels (CTEs ``b``, ``c``): point on surface, largest building, municipality, sector."""
    volume = "coalesce(b.volume_m3, ST_Area(b.footprint) * b.height_m)"
    if not _has_column(Building, "volume_m3"):
        volume = "ST_Area(b.footprint) * b.height_m"
    return f"""
        b AS MATERIALIZED (
            SELECT DISTINCT ON (b.parcel_id) b.parcel_id, b.id, b.footprint, b.building_type, b.height_m,
                   b.storeys, {volume} AS volume
            FROM {_BUILDING} b WHERE b.parcel_id = ANY(%(ids)s)
            ORDER BY b.parcel_id, ST_Area(b.footprint) DESC, b.id
        ),
        c AS MATERIALIZED (
            SELECT p.id, p.geometry AS geom, s.pt, point(ST_X(s.pt), ST_Y(s.pt)) AS p,
                   coalesce(p.municipality_id, (
                       SELECT m.id FROM opendata_municipality m WHERE ST_Intersects(m.geometry, s.pt)
                       ORDER BY m.valid_to IS NOT NULL, m.valid_from DESC LIMIT 1)) AS municipality_id,
                   coalesce(p.sector_id, (
                       SELECT x.id FROM opendata_statisticalsector x WHERE ST_Intersects(x.geometry, s.pt)
                       ORDER BY x.vintage DESC LIMIT 1)) AS sector_id,
                   b.id AS b_id, b.footprint AS b_footprint, b.building_type AS b_type,
                   b.height_m AS b_height, b.storeys AS b_storeys, b.volume AS b_volume
            FROM {_PARCEL} p
            CROSS JOIN LATERAL (SELECT ST_PointOnSurface(p.geometry) AS pt) s
            LEFT JOIN b ON b.parcel_id = p.id
            WHERE p.id = ANY(%(ids)s)
        )
    """  # noqa: S608


def _fronts_sql() -> str:
    """The front of each parcel of the chunk (CTEs ``addr``, ``fr``): point ``f`` on the outline, outward
    direction ``dir`` (radians from north, clockwise), the ray across the street, the nearest road."""
    segment_az = "ST_Azimuth(ST_StartPoint(s.geom), ST_EndPoint(s.geom))"
    return f"""
        addr AS MATERIALIZED (
            SELECT DISTINCT ON (a.parcel_id) a.parcel_id, a.point,
                   ST_Distance(a.point, ST_Boundary(c.geom)) AS d
            FROM opendata_address a JOIN c ON c.id = a.parcel_id
            WHERE a.parcel_id = ANY(%(ids)s)
            ORDER BY a.parcel_id, 3, a.id
        ),
        fr AS MATERIALIZED (
            SELECT c.id, fr.f, fr.dir,
                   ST_MakeLine(ST_Translate(fr.f, 0.5 * sin(fr.dir), 0.5 * cos(fr.dir)),
                               ST_Translate(fr.f, {STREET_RAY_M} * sin(fr.dir), {STREET_RAY_M} * cos(fr.dir)))
                       AS ray
            FROM c
            LEFT JOIN addr ON addr.parcel_id = c.id
            LEFT JOIN LATERAL (  -- only where the address point does not mark the front
                SELECT r.geometry AS geom FROM opendata_locationline r
                WHERE ST_DWithin(r.geometry, c.geom, {FRONT_ROAD_MAX_M}) AND r.kind IN ({_kinds(ROAD_KINDS)})
                ORDER BY r.geometry <-> c.geom LIMIT 1
            ) road ON addr.d IS NULL OR addr.d > {FRONT_ADDRESS_MAX_M}
            -- the reference: the address point near the outline, else the nearest road, else any address
            CROSS JOIN LATERAL (
                SELECT CASE WHEN addr.d <= {FRONT_ADDRESS_MAX_M} THEN addr.point
                            ELSE coalesce(road.geom, addr.point) END AS ref
            ) front_ref
            -- the outline's edge nearest the reference (at a corner: the one whose middle is nearer)
            JOIN LATERAL (
                SELECT ST_ClosestPoint(s.geom, front_ref.ref) AS f, {segment_az} - pi() / 2 AS dir
                FROM ST_DumpSegments(ST_ForcePolygonCW(c.geom)) s
                WHERE {segment_az} IS NOT NULL
                ORDER BY ST_Distance(s.geom, front_ref.ref),
                         ST_Distance(ST_LineInterpolatePoint(s.geom, 0.5), front_ref.ref)
                LIMIT 1
            ) fr ON front_ref.ref IS NOT NULL
        )
    """  # noqa: S608


def _nearest(layer: str) -> str:
    if layer in POINT_LAYERS:  # PostgreSQL's own points on a k-d tree: exact, and 3-4x faster than GiST
        return f"(SELECT l.p <-> c.p FROM feat_{layer} l ORDER BY 1 LIMIT 1)"  # noqa: S608
    return f"(SELECT l.geom <-> c.pt FROM feat_{layer} l ORDER BY 1 LIMIT 1)"  # noqa: S608


@functools.cache
def _features_sql() -> str:
    """Every feature of the chunk in one INSERT ... SELECT, upserted. The parcels and their fronts are
    materialised first, so that no geometry is computed twice."""
    values = {
        "parcel_area_m2": "ST_Area(c.geom)",
        "street_width_m": f"""coalesce(sw.gap, (
            SELECT 2 * ST_Distance(r.geometry, fr.f) FROM opendata_locationline r
            WHERE ST_DWithin(r.geometry, fr.f, {FRONT_ROAD_MAX_M}) AND r.kind IN ({_kinds(ROAD_KINDS)})
            ORDER BY r.geometry <-> fr.f LIMIT 1))""",  # noqa: S608
        "parcel_ratio": "CASE WHEN least(oe.a, oe.b) > 0 THEN greatest(oe.a, oe.b) / least(oe.a, oe.b) END",
        "parcel_orientation_deg": """mod(degrees(CASE WHEN oe.a >= oe.b THEN ST_Azimuth(oe.p1, oe.p2)
                                          ELSE ST_Azimuth(oe.p2, oe.p3) END)::numeric, 180)::float8""",
        "building_area_m2": "ST_Area(c.b_footprint)",
        "building_type": f"""CASE WHEN c.b_type IN ('open', 'half_open', 'closed') THEN c.b_type
            WHEN c.b_id IS NOT NULL THEN (
                SELECT CASE count(*) WHEN 0 THEN 'open' WHEN 1 THEN 'half_open' ELSE 'closed' END
                FROM {_BUILDING} o
                WHERE o.id <> c.b_id AND ST_DWithin(o.footprint, c.b_footprint, {WALL_TOLERANCE_M})
                  AND ST_Length(ST_Intersection(ST_Buffer(ST_Boundary(c.b_footprint), {WALL_TOLERANCE_M}),
                                                ST_Boundary(o.footprint))) > {WALL_MIN_M})
            END""",  # noqa: S608
        "facade_width_m": "ST_XMax(fa.rotated) - ST_XMin(fa.rotated)",
        "facade_orientation_deg": "mod(degrees(fa.normal)::numeric + 720, 360)::float8",
        "building_height_m": "c.b_height",
        "building_volume_m3": "c.b_volume",
        "storeys": "c.b_storeys",
        "dist_major_city_m": _nearest("major_city"),
        "dist_centre_m": _nearest("centre"),
        "dist_highway_entry_m": _nearest("highway_entry"),
        "dist_primary_road_m": _nearest("primary_road"),
        "dist_railway_line_m": _nearest("railway_line"),
        "dist_station_m": _nearest("station"),
        "dist_bus_stop_m": _nearest("bus_stop"),
        "municipality_population": "ms.population",
        "municipality_density_km2": "ms.population / nullif(coalesce(ms.area_km2, ms.polygon_km2), 0)",
        "municipality_tax_rate_pct": "ms.tax_rate_pct",
        "municipality_prosperity_index": "ms.prosperity_index",
        "municipality_income_avg_eur": "ms.income_avg",
        "sector_income_avg_eur": "ss.income_avg",
        "sector_income_p10_eur": "ss.p10",
        "sector_income_p25_eur": "ss.p25",
        "sector_income_median_eur": "ss.median",
        "sector_income_p75_eur": "ss.p75",
        "sector_income_p90_eur": "ss.p90",
    }
    if set(values) != set(FEATURE_COLUMNS):  # pragma: no cover - caught by the tests
        raise RuntimeError(f"features without SQL: {set(FEATURE_COLUMNS) ^ set(values)}")
    columns = ", ".join(FEATURE_COLUMNS)
    select = ",\n               ".join(values[name] for name in FEATURE_COLUMNS)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in ("computed_at", *FEATURE_COLUMNS))
    segment_az = "ST_Azimuth(ST_StartPoint(s.geom), ST_EndPoint(s.geom))"
    return f"""
        WITH {_parcels_sql()}, {_fronts_sql()}
        INSERT INTO {_FEATURES} (parcel_id, computed_at, {columns})
        SELECT c.id, %(now)s,
               {select}
        FROM c
        LEFT JOIN fr ON fr.id = c.id
        LEFT JOIN feat_municipality ms ON ms.id = c.municipality_id
        LEFT JOIN feat_sector ss ON ss.id = c.sector_id
        -- the parcel's minimum rotated rectangle: corners p1, p2, p3 and side lengths a, b
        LEFT JOIN LATERAL (
            SELECT e.p1, e.p2, e.p3, ST_Distance(e.p1, e.p2) AS a, ST_Distance(e.p2, e.p3) AS b
            FROM (SELECT ST_PointN(r, 1) AS p1, ST_PointN(r, 2) AS p2, ST_PointN(r, 3) AS p3
                  FROM ST_ExteriorRing(ST_OrientedEnvelope(c.geom)) r) e
        ) oe ON true
        -- street width: straight out from the front to the first parcel across
        LEFT JOIN LATERAL (
            SELECT min(ST_Distance(fr.f, q.geometry)) AS gap
            FROM {_PARCEL} q
            WHERE ST_DWithin(q.geometry, fr.ray, 0) AND q.id <> c.id AND q.parcel_type IS DISTINCT FROM 'PP'
        ) sw ON fr.ray IS NOT NULL
        -- the facade: the footprint edge facing the front direction
        LEFT JOIN LATERAL (
            SELECT e.normal, ST_Rotate(c.b_footprint, e.normal) AS rotated
            FROM (SELECT {segment_az} - pi() / 2 AS normal, ST_Length(s.geom) AS len
                  FROM ST_DumpSegments(ST_ForcePolygonCW(c.b_footprint)) s) e
            WHERE e.normal IS NOT NULL
            ORDER BY e.len * cos(e.normal - fr.dir) DESC LIMIT 1
        ) fa ON c.b_footprint IS NOT NULL AND fr.dir IS NOT NULL
        ON CONFLICT (parcel_id) DO UPDATE SET {updates}
    """  # noqa: S608


def parcel_features_refresh(
    parcel_ids: Sequence[int] | None,
    *,
    stream: IO[str] | None = None,
    chunk_size: int = CHUNK_SIZE,
    workers: int = WORKERS,
) -> int:
    """Recompute the open-data features of ``parcel_ids`` (None: every parcel); return how many rows.

    Ids of parcels that no longer exist are ignored. See the module docstring for how each feature is
    computed and how the work is split into chunks and transactions.
    """
    with connection.cursor() as cursor:
        if parcel_ids is None:
            cursor.execute(f"SELECT id FROM {_PARCEL} ORDER BY id")  # noqa: S608
        else:
            cursor.execute(
                f"SELECT id FROM {_PARCEL} WHERE id = ANY(%s) ORDER BY id",  # noqa: S608
                [list({int(i) for i in parcel_ids})],
            )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return 0
    chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
    now = timezone.now()
    done = 0
    with Progress(total=len(ids), label="parcel features", stream=stream) as progress:
        if len(chunks) <= 1 or workers <= 1 or connection.in_atomic_block:
            _setup()
            try:
                for chunk in chunks:
                    done += _compute_chunk(chunk, now)
                    progress.advance(len(chunk))
            finally:
                _teardown()
        else:
            done = _parallel(chunks, now, min(workers, len(chunks)), progress)
    return done


def _setup() -> None:
    with connection.cursor() as cursor:
        _drop(cursor)
        for statement in _setup_sql():
            cursor.execute(statement)


def _teardown() -> None:
    with connection.cursor() as cursor:
        _drop(cursor)


def _drop(cursor: Any) -> None:
    cursor.execute("DROP TABLE IF EXISTS " + ", ".join(f"feat_{name}" for name in _TEMP_TABLES))


def _compute_chunk(ids: list[int], now: datetime) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")  # compiling the big query costs more than it saves per chunk
        cursor.execute(_features_sql(), {"ids": ids, "now": now})
        return int(cursor.rowcount)


def _parallel(chunks: list[list[int]], now: datetime, workers: int, progress: Progress) -> int:
    """Chunks shared among ``workers`` threads, each with its own connection (and temporary tables)."""
    todo: queue.Queue[list[int]] = queue.Queue()
    for chunk in chunks:
        todo.put(chunk)
    finished: queue.Queue[tuple[int, int] | BaseException] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            _setup()
            while not stop.is_set():
                try:
                    chunk = todo.get_nowait()
                except queue.Empty:
                    break
                finished.put((len(chunk), _compute_chunk(chunk, now)))
            _teardown()
        except BaseException as exc:  # reported to the calling thread, which raises it
            finished.put(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, name=f"features-{n}", daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    done, error = 0, None
    for _ in range(len(chunks)):
        item = finished.get()
        if isinstance(item, BaseException):
            error = item
            stop.set()
            break
        progress.advance(item[0])
        done += item[1]
    for thread in threads:
        thread.join()
    if error is not None:
        raise error
    return done
