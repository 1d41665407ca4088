"""OpenStreetMap: stations, bus stops, highway entries, main roads, railway lines, town centres, streets.

- Source: Geofabrik's Belgium extract, https://download.geofabrik.de/europe/belgium-latest.osm.pbf
  (about 600 MB, rebuilt daily); any .osm.pbf (or .osm/.osm.bz2) extract works with ``--file``.
- Licence: ODbL 1.0; credit "(c) OpenStreetMap contributors" wherever the data is shown.
- Cadence: we refresh weekly (Tuesday night); an unchanged download is skipped by its checksum.
- CRS: WGS84 (EPSG:4326) in the file; stored in Belgian Lambert 72 (EPSG:31370), rounded to the mm.

What is kept (rows of ``LocationPoint`` / ``LocationLine`` with source ``osm``, source_id = the OSM id):

======================  =========================================================================
kind                    rule
======================  =========================================================================
railway_station (node)  ``railway=station`` or ``railway=halt``, or ``public_transport=station`` with
                        ``train=yes``; not when ``station=subway/light_rail/tram/monorail/funicular/
                        miniature`` (metro and tram stops are not train stations). Stations mapped
                        only as areas are not read: Belgian stations carry a node, and the national
                        station layer comes from iRail (``refresh_source stations``).
bus_stop (node)         ``highway=bus_stop``
highway_entry (node)    ``highway=motorway_junction`` (attributes: ``ref``, the exit number)
city_centre (node)      ``place=city``; town_centre: ``place=town``; attributes carry ``population``
                        (an integer, when the tag is one), ``capital``, ``nis_code`` (``ref:INS``) and
                        ``name_nl/fr/de/en`` (``name:nl``...), as the iRail stations do.
motorway (way)          ``highway=motorway``; trunk_road: ``highway=trunk``; primary_road:
                        ``highway=primary``. Slip roads (``*_link``) are left out: they belong to the
                        junction, which the highway_entry points already represent.
railway (way)           ``railway=rail`` without a ``service`` tag: main and branch lines. Yards,
                        sidings, spurs and crossovers (``service=yard/siding/spur/crossover``) lie
                        inside stations and industrial sites and would make every parcel near a
                        goods yard look like it is next to a running line; trams, metro, light rail
                        and narrow gauge are other keys or values and are not read.
street (way)            the centrelines houses front on, for street width: ``highway=secondary,
                        tertiary, unclassified, residential, living_street, pedestrian`` (not areas
                        with ``area=yes``). Primary, trunk and motorway are stored under their own
                        kinds above, not again as streets; a street-width feature reads all of them.
======================  =========================================================================

The file is read once, streaming, with pyosmium: C++ tag filters hand Python only the objects above,
and node locations live in osmium's location index (``flex_mem`` by default; ``--option
index=sparse_file_array`` keeps them in a temporary file instead of memory), never in Python objects.
Way geometries are built by libosmium and transformed in batches (shapely + pyproj), and rows are
spooled to temporary files (memory stays flat); only when the whole file has been read
without error are they staged and swapped in (one transaction). A truncated or corrupt PBF raises in
the reader and fails the run with nothing written. Ways cut by the edge of an extract keep the part
whose nodes are in the file; a way with fewer than two known nodes, or an object outside Belgium, is
rejected (too many rejections refuse the file as a whole).
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import osmium
import shapely
from django.db import transaction

from opendata.connectors.base import (
    Connector,
    LoadResult,
    Rejection,
    RunContext,
    SourceError,
    SwapCounts,
    check_rejections,
    register,
    stage_create,
    staged_swap,
)
from opendata.connectors.crs import transformer
from opendata.copy import copy_rows
from opendata.models import LocationLineKind, LocationPointKind

SOURCE = "osm"

# A generous box around Belgium in WGS84 (lon_min, lat_min, lon_max, lat_max): the country spans about
# 2.54-6.41 E, 49.50-51.51 N; Geofabrik's extract polygon reaches a little over the border.
BELGIUM_BBOX = (2.3, 49.3, 6.6, 51.7)

NOT_TRAIN_STATIONS = frozenset({"subway", "light_rail", "tram", "monorail", "funicular", "miniature"})
ROAD_KINDS = {
    "motorway": LocationLineKind.MOTORWAY,
    "trunk": LocationLineKind.TRUNK_ROAD,
    "primary": LocationLineKind.PRIMARY_ROAD,
}
STREET_HIGHWAYS = ("secondary", "tertiary", "unclassified", "residential", "living_street", "pedestrian")
PLACE_KINDS = {"city": LocationPointKind.CITY_CENTRE, "town": LocationPointKind.TOWN_CENTRE}

# (key, value) pairs the C++ filter lets through to Python; everything else never leaves libosmium.
NODE_TAGS = [
    ("highway", "bus_stop"),
    ("highway", "motorway_junction"),
    ("railway", "station"),
    ("railway", "halt"),
    ("public_transport", "station"),
    ("place", "city"),
    ("place", "town"),
]
WAY_TAGS = [("highway", v) for v in (*ROAD_KINDS, *STREET_HIGHWAYS)] + [("railway", "rail")]

# OSM tags kept in ``attributes``, under these names (the same names as the iRail station layer uses).
POINT_ATTRIBUTES = {
    "railway": "railway",
    "ref": "ref",
    "operator": "operator",
    "uic_ref": "uic_ref",
    "capital": "capital",
    "ref:INS": "nis_code",
    "name:nl": "name_nl",
    "name:fr": "name_fr",
    "name:de": "name_de",
    "name:en": "name_en",
}
LINE_ATTRIBUTES = {
    key: key for key in ("highway", "railway", "ref", "lanes", "width", "oneway", "maxspeed", "usage")
} | {"name:nl": "name_nl", "name:fr": "name_fr"}
OSM_SUFFIXES = (".pbf", ".osm", ".osm.bz2", ".osm.gz", ".opl", ".o5m")
LOCATION_INDEXES = ("flex_mem", "sparse_mem_array", "sparse_file_array")
BATCH_SIZE = 10_000  # objects transformed together
POINT_COLUMNS = ["kind", "name", "point", "source", "source_id", "attributes"]
LINE_COLUMNS = ["kind", "name", "geometry", "source", "source_id", "attributes"]


BELGIUM_BOX = shapely.box(*BELGIUM_BBOX)


def in_belgium(lon: float, lat: float) -> bool:
    lon_min, lat_min, lon_max, lat_max = BELGIUM_BBOX
    return lon_min <= lon <= lon_max and lat_min <= lat <= lat_max


def node_kinds(tags: Any) -> list[str]:
    """The point kinds an OSM node with these tags belongs to (usually none or one)."""
    kinds = []
    railway = tags.get("railway")
    train_station = railway in ("station", "halt") or (
        tags.get("public_transport") == "station" and tags.get("train") == "yes"
    )
    if train_station and tags.get("station") not in NOT_TRAIN_STATIONS:
        kinds.append(LocationPointKind.RAILWAY_STATION.value)
    highway = tags.get("highway")
    if highway == "bus_stop":
        kinds.append(LocationPointKind.BUS_STOP.value)
    elif highway == "motorway_junction":
        kinds.append(LocationPointKind.HIGHWAY_ENTRY.value)
    place = tags.get("place")
    if place in PLACE_KINDS:
        kinds.append(PLACE_KINDS[place].value)
    return kinds


def way_kinds(tags: Any) -> list[str]:
    """The line kinds an OSM way with these tags belongs to (usually none or one)."""
    kinds = []
    highway = tags.get("highway")
    if highway in ROAD_KINDS:
        kinds.append(ROAD_KINDS[highway].value)
    elif highway in STREET_HIGHWAYS and tags.get("area") != "yes":
        kinds.append(LocationLineKind.STREET.value)
    if tags.get("railway") == "rail" and "service" not in tags:
        kinds.append(LocationLineKind.RAILWAY.value)
    return kinds


def population(value: str | None) -> int | None:
    """The ``population`` tag as an integer when it is one ("12345", "12 345"); otherwise None."""
    if not value:
        return None
    digits = re.sub(r"[\s\u202f\u00a0]", "", value)
    return int(digits) if digits.isdigit() else None


@dataclass
class _Pending:
    kinds: list[str]
    osm_id: int
    name: str
    attributes: dict[str, Any]


@dataclass
class Extract:
    """What one pass over the file found: spooled rows, rejections, counts by kind, newest edit."""

    points: IO[str]
    lines: IO[str]
    rejections: list[Rejection] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    objects_read: int = 0
    newest: datetime | None = None

    def rows(self, spool: IO[str]) -> Iterator[list[str]]:
        spool.seek(0)
        yield from csv.reader(spool)


class _Reader:
    """Turns the filtered OSM objects into rows. Way geometries are built by libosmium (WKB) and
    transformed to EPSG:31370 in batches with shapely and pyproj, so Python touches no single vertex."""

    def __init__(self, extract: Extract) -> None:
        self.extract = extract
        self.point_writer = csv.writer(extract.points)
        self.line_writer = csv.writer(extract.lines)
        self.factory = osmium.geom.WKBFactory()
        self.points: list[tuple[_Pending, float, float]] = []
        self.lines: list[tuple[_Pending, str]] = []  # hex WKB

    def node(self, node: osmium.osm.Node) -> None:
        tags = dict(node.tags)
        kinds = node_kinds(tags)
        if not kinds:
            return
        self._seen(node)
        location = node.location
        if not location.valid():
            self.extract.rejections.append(Rejection(f"node/{node.id}", "the node has no valid location"))
            return
        if not in_belgium(location.lon, location.lat):
            reason = f"lies outside Belgium (lon {location.lon:.5f}, lat {location.lat:.5f})"
            self.extract.rejections.append(Rejection(f"node/{node.id}", reason))
            return
        attributes = _attributes(tags, POINT_ATTRIBUTES)
        if "population" in tags:
            attributes["population"] = population(tags["population"])
        self.points.append(
            (_Pending(kinds, node.id, tags.get("name", ""), attributes), location.lon, location.lat)
        )
        if len(self.points) >= BATCH_SIZE:
            self.flush()

    def way(self, way: osmium.osm.Way) -> None:
        tags = dict(way.tags)
        kinds = way_kinds(tags)
        if not kinds:
            return
        self._seen(way)
        try:
            wkb = self.factory.create_linestring(way)
        except osmium.InvalidLocationError:
            # Nodes outside the extract have no location. libosmium leaves such nodes out where it can
            # and raises where it cannot; either way we keep the part of the way that is in the file.
            coords = [(n.lon, n.lat) for n in way.nodes if n.location.valid()]
            coords = [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]
            if len(coords) < 2:
                reason = (
                    f"only {len(coords)} of its {len(way.nodes)} nodes have a location in the file "
                    "(the way lies outside the extract)"
                )
                self.extract.rejections.append(Rejection(f"way/{way.id}", reason))
                return
            wkb = shapely.to_wkb(shapely.LineString(coords), hex=True)
        except RuntimeError:  # libosmium: fewer than two distinct points
            self.extract.rejections.append(
                Rejection(f"way/{way.id}", "the way has fewer than two distinct points")
            )
            return
        self.lines.append(
            (_Pending(kinds, way.id, tags.get("name", ""), _attributes(tags, LINE_ATTRIBUTES)), wkb)
        )
        if len(self.lines) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if self.points:
            lon = np.array([p[1] for p in self.points])
            lat = np.array([p[2] for p in self.points])
            xs, ys = transformer(4326).transform(lon, lat)
            for (pending, _, _), x, y in zip(self.points, xs.tolist(), ys.tolist(), strict=True):
                self._write(self.point_writer, pending, f"SRID=31370;POINT({x:.3f} {y:.3f})")
            self.points = []
        if self.lines:
            geometries = shapely.from_wkb([wkb for _, wkb in self.lines])
            inside = shapely.intersects(geometries, BELGIUM_BOX)
            for (pending, _), ok, geometry in zip(self.lines, inside.tolist(), geometries, strict=True):
                if not ok:
                    lon, lat = shapely.get_coordinates(geometry)[0]
                    reason = f"lies outside Belgium (starts at lon {lon:.5f}, lat {lat:.5f})"
                    self.extract.rejections.append(Rejection(f"way/{pending.osm_id}", reason))
            kept = geometries[inside]
            projected = shapely.transform(kept, _to_lambert72_array)
            multi = shapely.multilinestrings(projected, indices=np.arange(len(projected)))
            ewkb = shapely.to_wkb(shapely.set_srid(multi, 31370), hex=True, include_srid=True)
            pendings = [pending for (pending, _), ok in zip(self.lines, inside.tolist(), strict=True) if ok]
            for pending, geometry in zip(pendings, ewkb.tolist(), strict=True):
                self._write(self.line_writer, pending, geometry)
            self.lines = []

    def _write(self, writer: Any, pending: _Pending, geometry: str) -> None:
        attributes = json.dumps(pending.attributes, ensure_ascii=False, sort_keys=True)
        for kind in pending.kinds:
            writer.writerow([kind, pending.name[:200], geometry, SOURCE, str(pending.osm_id), attributes])
            self.extract.kinds[kind] += 1

    def _seen(self, obj: osmium.osm.Node | osmium.osm.Way) -> None:
        self.extract.objects_read += 1
        stamp = obj.timestamp
        if stamp.year > 1970 and (self.extract.newest is None or stamp > self.extract.newest):
            self.extract.newest = stamp


def _attributes(tags: dict[str, str], keys: dict[str, str]) -> dict[str, Any]:
    return {name: tags[key] for key, name in keys.items() if key in tags}


def _to_lambert72_array(lonlat: np.ndarray) -> np.ndarray:
    """(n, 2) WGS84 longitude/latitude to (n, 2) EPSG:31370 metres, rounded to the millimetre."""
    x, y = transformer(4326).transform(lonlat[:, 0], lonlat[:, 1])
    return np.round(np.column_stack([x, y]), 3)


def spool() -> IO[str]:
    """A temporary file for rows in CSV form (deleted when closed)."""
    return tempfile.TemporaryFile("w+", newline="", encoding="utf-8")


def osm_file(path: Path) -> osmium.io.File:
    """The file for osmium: its format from the name (.osm.pbf, .osm, .osm.bz2...), else PBF."""
    if path.name.lower().endswith(OSM_SUFFIXES):
        return osmium.io.File(str(path))
    return osmium.io.File(str(path), "pbf")


def read_osm(
    path: Path, *, points: IO[str], lines: IO[str], index: str = "flex_mem", progress: Any = None
) -> Extract:
    """Read the whole OSM file, writing point and line rows to ``points`` and ``lines`` (CSV);
    raise :class:`SourceError` when the file cannot be read to the end."""
    if index not in LOCATION_INDEXES:
        raise SourceError(f"Unknown location index {index!r}; choose one of: {', '.join(LOCATION_INDEXES)}.")
    extract = Extract(points=points, lines=lines)
    reader = _Reader(extract)
    with tempfile.TemporaryDirectory(prefix="osm-index-") as index_dir:
        storage = f"{index},{Path(index_dir) / 'nodes.idx'}" if index.endswith("_file_array") else index
        processor = (
            osmium.FileProcessor(osm_file(path), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations(storage)
            .with_filter(osmium.filter.TagFilter(*NODE_TAGS, *WAY_TAGS))
        )
        done = 0
        try:
            for done, obj in enumerate(processor, start=1):
                if isinstance(obj, osmium.osm.Node):
                    reader.node(obj)
                elif isinstance(obj, osmium.osm.Way):
                    reader.way(obj)
                if progress is not None and done % 10_000 == 0:
                    progress.advance(10_000)
            reader.flush()
            if progress is not None:
                progress.advance(done % 10_000)
        except RuntimeError as exc:  # libosmium's I/O and PBF decoding errors
            raise SourceError(
                f"The OpenStreetMap file {path.name} could not be read to the end ({exc}). It is probably "
                "truncated or corrupt (an interrupted download?); nothing was changed."
            ) from exc
    return extract


def file_vintage(path: Path, extract: Extract) -> str:
    """The data's date: the replication timestamp in the file header, else the newest object's edit."""
    try:
        header = osmium.io.Reader(osm_file(path), osmium.osm.NOTHING).header()
        stamp = header.get("osmosis_replication_timestamp") or header.get("timestamp")
    except RuntimeError:
        stamp = ""
    if stamp:
        return stamp
    return extract.newest.strftime("%Y-%m-%dT%H:%M:%SZ") if extract.newest else ""


@register
class OsmConnector(Connector):
    name = "osm"
    title = "OpenStreetMap (Geofabrik Belgium extract): stations, stops, roads, railways, towns"
    url = "https://download.geofabrik.de/europe/belgium-latest.osm.pbf"
    credit = "(c) OpenStreetMap contributors"
    schedule = ("15", "3", "2", "*", "*")  # Tuesdays 03:15 Brussels time
    suffix = ".osm.pbf"

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        index = str(ctx.options.get("index", "flex_mem"))
        with spool() as points_spool, spool() as lines_spool:
            with ctx.progress(total=None, label="OSM objects read") as progress:
                extract = read_osm(
                    path, points=points_spool, lines=lines_spool, index=index, progress=progress
                )
            rows_read = sum(extract.kinds.values()) + len(extract.rejections)
            check_rejections(rows_read, extract.rejections, what="OSM objects")
            if not extract.kinds:
                raise SourceError(
                    f"The OpenStreetMap file {path.name} holds none of the objects we keep (stations, bus "
                    "stops, roads, railways, towns): it is empty or not the extract you meant, so the "
                    "previous OSM data was kept."
                )
            with transaction.atomic():
                points = swap_location_rows("opendata_locationpoint", extract.rows(extract.points), SOURCE)
                lines = swap_location_rows("opendata_locationline", extract.rows(extract.lines), SOURCE)
        changed = any(c.inserted or c.updated or c.deleted for c in (points, lines))
        counts = {**points.as_counts("points"), **lines.as_counts("lines")}
        counts.update({f"kind_{kind}": n for kind, n in sorted(extract.kinds.items())})
        return LoadResult(
            rows_read=rows_read,
            counts=counts,
            rejections=extract.rejections,
            vintage=file_vintage(path, extract),
            touched_parcels=None if changed else [],
        )


def swap_location_rows(target: str, rows: Iterable[Sequence[Any]], source: str) -> SwapCounts:
    """Make the rows of ``source`` in ``opendata_locationpoint`` / ``opendata_locationline`` equal to
    ``rows`` (kind, name, EWKT geometry, source, source_id, attributes JSON), keyed on (source, kind,
    source_id). Call inside ``transaction.atomic()``."""
    columns = POINT_COLUMNS if target == "opendata_locationpoint" else LINE_COLUMNS
    stage = stage_create(target.removeprefix("opendata_"), columns, like=target)
    copy_rows(stage, columns, rows)
    return staged_swap(
        target=target,
        stage=stage,
        key=["source", "kind", "source_id"],
        columns=columns,
        scope="source = %s",
        scope_params=[source],
    )
