"""iRail: the national layer of Belgian railway stations, and the rail segments between them.

Two sources from the same CC0 repository (https://github.com/iRail/stations), each its own
``refresh_source`` name so each keeps its own checksum, HTTP validators and schedule:

``stations``
    https://raw.githubusercontent.com/iRail/stations/master/stations.csv: every station NMBS/SNCB
    serves, with its NMBS id in the URI (``http://irail.be/stations/NMBS/008813003``), names (``name``
    and ``alternative-nl/fr/de/en``), ``country-code``, ``longitude``, ``latitude`` (WGS84), average
    stop counts. Columns are read by name. Only stations with ``country-code`` ``be`` are kept (579
    of 729 in iRail/stations @3239f07); they become ``LocationPoint`` rows of kind
    ``railway_station`` with source ``irail`` and source_id the 9-digit NMBS id. ``attributes`` holds
    ``name_nl/fr/de/en`` (the alternative name where iRail gives one, else ``name``), ``uri``,
    ``avg_stop_times`` (iRail's average number of trains stopping per day: how well served the
    station is), ``taf_tap_code`` and ``telegraph_code``.
``rail-segments``
    https://raw.githubusercontent.com/iRail/stations/master/shapes.geojson: station-to-station line
    strings (GeoJSON, WGS84), ``properties.stop`` naming the two station URIs. They become
    ``LocationLine`` rows of kind ``railway`` with source ``irail`` and source_id ``<id>-<id>`` (the two
    NMBS ids). Segments lying wholly outside Belgium (e.g. in the Netherlands) are skipped and counted.
    Nearly all are straight two-point lines between stations (927 of 928), so they are a coarse
    fallback for "distance to a railway line"; the OSM connector (source ``osm``) has the real track
    geometry and should be preferred where it is loaded.

Licence: CC0 (credit "iRail" as a courtesy). Cadence: the repository changes a few times a year; we
check monthly (a conditional request, skipped when unchanged). CRS: WGS84 in both files, stored in
EPSG:31370.

A Belgian station whose coordinates fall outside Belgium is rejected (a swapped or projected column);
too many rejections, a missing column, or a GeoJSON file in another CRS refuse the whole file.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from django.db import transaction

from opendata.connectors.base import (
    Connector,
    LoadResult,
    Rejection,
    RunContext,
    SourceError,
    check_rejections,
    register,
)
from opendata.connectors.crs import transformer
from opendata.connectors.osm import in_belgium, swap_location_rows
from opendata.models import LocationLineKind, LocationPointKind

SOURCE = "irail"
REPOSITORY = "https://raw.githubusercontent.com/iRail/stations/master"
CREDIT = "iRail stations (CC0), https://github.com/iRail/stations"
URI_RE = re.compile(r"^https?://irail\.be/stations/NMBS/(\d{9})$")
REQUIRED_COLUMNS = ("URI", "name", "country-code", "longitude", "latitude")
LANGUAGES = ("nl", "fr", "de", "en")
WGS84_NAMES = (
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "EPSG:4326",
    "urn:ogc:def:crs:EPSG::4326",
)
# When more than this share of the segments lies outside Belgium, the file is refused: it is more
# likely in another CRS, or with longitude and latitude swapped, than a map of the Belgian network.
MAX_OUTSIDE_FRACTION = 0.5


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _changed(*counts: Any) -> bool:
    return any(c.inserted or c.updated or c.deleted for c in counts)


@register
class StationsConnector(Connector):
    name = "stations"
    title = "iRail stations (NMBS/SNCB railway stations in Belgium)"
    url = f"{REPOSITORY}/stations.csv"
    credit = CREDIT
    schedule = ("30", "3", "*", "1", "*")  # the 1st of each month, 03:30 Brussels time
    suffix = ".csv"

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        if path.suffix.lower() in (".geojson", ".json"):
            raise SourceError(
                f"{path.name} looks like the iRail rail segments, not the station list; load it with "
                "`refresh_source rail-segments --file ...`."
            )
        rows, rejections, abroad = read_stations(path)
        check_rejections(len(rows) + len(rejections), rejections, what="Belgian stations")
        if not rows:
            raise SourceError(
                f"{path.name} lists no station in Belgium (country-code be); nothing was changed."
            )
        with transaction.atomic():
            counts = swap_location_rows("opendata_locationpoint", rows, SOURCE)
        return LoadResult(
            rows_read=len(rows) + len(rejections),
            counts={**counts.as_counts("stations"), "stations_abroad_skipped": abroad},
            rejections=rejections,
            vintage=ctx.run.http_last_modified,
            touched_parcels=None if _changed(counts) else [],
        )


def read_stations(path: Path) -> tuple[list[list[str]], list[Rejection], int]:
    """Rows for the Belgian stations of an iRail stations.csv, the rejected rows, and how many
    stations abroad were skipped. Raises :class:`SourceError` when the file is not such a CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise SourceError(
                    f"{path.name} lacks the column(s) {', '.join(missing)} of the iRail stations list "
                    f"(found: {', '.join(columns) or 'nothing'}); nothing was changed."
                )
            found = list(enumerate(reader, start=2))
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path.name} is not UTF-8 text ({exc}); nothing was changed.") from exc
    to_31370 = transformer(4326)
    rows: list[list[str]] = []
    rejections: list[Rejection] = []
    seen: set[str] = set()
    abroad = 0
    for line, row in found:
        if (row.get("country-code") or "").strip().lower() != "be":
            abroad += 1
            continue
        match = URI_RE.match((row.get("URI") or "").strip())
        if not match:
            rejections.append(Rejection(line, f"URI {row.get('URI')!r} is not an iRail NMBS station URI"))
            continue
        station_id = match.group(1)
        if station_id in seen:
            rejections.append(Rejection(line, f"station {station_id} appears a second time"))
            continue
        lon, lat = _number(row.get("longitude")), _number(row.get("latitude"))
        if lon is None or lat is None:
            rejections.append(Rejection(line, "longitude and latitude must be numbers"))
            continue
        if not in_belgium(lon, lat):
            reason = (
                f"lies outside Belgium (longitude {lon}, latitude {lat}): swapped columns or another CRS?"
            )
            rejections.append(Rejection(line, reason))
            continue
        seen.add(station_id)
        x, y = to_31370.transform(lon, lat)
        name = (row.get("name") or "").strip()
        attributes: dict[str, Any] = {
            f"name_{lang}": (row.get(f"alternative-{lang}") or "").strip() or name for lang in LANGUAGES
        }
        attributes["uri"] = match.group(0)
        attributes["avg_stop_times"] = _number(row.get("avg_stop_times"))
        for column in ("taf-tap-code", "telegraph-code"):
            if row.get(column):
                attributes[column.replace("-", "_")] = row[column].strip()
        rows.append(
            [
                LocationPointKind.RAILWAY_STATION.value,
                name[:200],
                f"SRID=31370;POINT({x:.3f} {y:.3f})",
                SOURCE,
                station_id,
                json.dumps(attributes, ensure_ascii=False, sort_keys=True),
            ]
        )
    return rows, rejections, abroad


@register
class RailSegmentsConnector(Connector):
    name = "rail-segments"
    title = "iRail rail segments (station-to-station lines)"
    url = f"{REPOSITORY}/shapes.geojson"
    credit = CREDIT
    schedule = ("45", "3", "*", "1", "*")  # the 1st of each month, 03:45 Brussels time
    suffix = ".geojson"

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        rows, rejections, outside = read_segments(path)
        check_rejections(len(rows) + len(rejections), rejections, what="rail segments")
        if not rows:
            raise SourceError(f"{path.name} holds no rail segment in Belgium; nothing was changed.")
        with transaction.atomic():
            counts = swap_location_rows("opendata_locationline", rows, SOURCE)
        return LoadResult(
            rows_read=len(rows) + len(rejections),
            counts={**counts.as_counts("segments"), "segments_outside_belgium": outside},
            rejections=rejections,
            vintage=ctx.run.http_last_modified,
            touched_parcels=None if _changed(counts) else [],
        )


def read_segments(path: Path) -> tuple[list[list[str]], list[Rejection], int]:
    """Rows for the rail segments in Belgium of an iRail shapes.geojson, the rejected features, and how
    many segments lay wholly outside Belgium. Raises :class:`SourceError` for a file that is not a
    WGS84 GeoJSON FeatureCollection."""
    if path.suffix.lower() == ".csv":
        raise SourceError(
            f"{path.name} looks like the iRail station list, not the rail segments; load it with "
            "`refresh_source stations --file ...`."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(
            f"{path.name} is not valid JSON, perhaps truncated ({exc}); nothing was changed."
        ) from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise SourceError(f"{path.name} is not a GeoJSON FeatureCollection; nothing was changed.")
    crs = ((data.get("crs") or {}).get("properties") or {}).get("name")
    if crs and crs not in WGS84_NAMES:
        raise SourceError(
            f"{path.name} declares the CRS {crs}; GeoJSON must be in WGS84 longitude/latitude "
            "(RFC 7946). Reproject it first; nothing was changed."
        )
    features = data.get("features") or []
    parsed: list[tuple[str, str, list[str], list[tuple[float, float]]]] = []
    rejections: list[Rejection] = []
    seen: set[str] = set()
    outside = 0
    for number, feature in enumerate(features, start=1):
        properties = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        stops = properties.get("stop") or []
        ids = [m.group(1) for m in (URI_RE.match(str(s)) for s in stops) if m]
        if len(ids) != 2 or len(stops) != 2:
            rejections.append(
                Rejection(number, f"properties.stop must name two iRail station URIs, not {stops!r}")
            )
            continue
        key = "-".join(ids)
        if key in seen:
            rejections.append(Rejection(number, f"segment {key} appears a second time"))
            continue
        if geometry.get("type") != "LineString":
            rejections.append(
                Rejection(number, f"geometry must be a LineString, not {geometry.get('type')!r}")
            )
            continue
        coords = geometry.get("coordinates") or []
        if not all(
            isinstance(c, list) and len(c) >= 2 and all(isinstance(v, int | float) for v in c[:2])
            for c in coords
        ):
            rejections.append(Rejection(number, f"coordinates must be pairs of numbers, not {coords[:2]!r}"))
            continue
        points = [(float(c[0]), float(c[1])) for c in coords]
        if any(abs(lon) > 180 or abs(lat) > 90 for lon, lat in points):
            raise SourceError(
                f"{path.name} has coordinates such as {points[0]} that are not longitude/latitude degrees: "
                "GeoJSON must be in WGS84 (RFC 7946), this file is probably in a projected CRS; nothing "
                "was changed."
            )
        if len(set(points)) < 2:
            rejections.append(Rejection(number, "the line has fewer than two distinct points"))
            continue
        seen.add(key)
        if not any(in_belgium(lon, lat) for lon, lat in points):
            outside += 1
            continue
        parsed.append((key, str(properties.get("description") or ""), [str(s) for s in stops], points))
    if features and outside > MAX_OUTSIDE_FRACTION * len(features):
        raise SourceError(
            f"{outside:,} of {len(features):,} rail segments lie outside Belgium: the file is probably in "
            "another CRS or has longitude and latitude swapped; nothing was changed."
        )
    to_31370 = transformer(4326)
    rows = []
    for key, description, stops, points in parsed:
        xs, ys = to_31370.transform([p[0] for p in points], [p[1] for p in points])
        text = ",".join(f"{x:.3f} {y:.3f}" for x, y in zip(xs, ys, strict=True))
        attributes = json.dumps({"stops": stops}, ensure_ascii=False)
        rows.append(
            [
                LocationLineKind.RAILWAY.value,
                description[:200],
                f"SRID=31370;MULTILINESTRING(({text}))",
                SOURCE,
                key,
                attributes,
            ]
        )
    return rows, rejections, outside
