"""The street network of the demo region: boundary, square, roads, rings, cul-de-sacs, railway, motorway.

A village square with six roads out of it (three are primary roads, the one south passes the station and
ends at the motorway entry); full rings at 200, 380 and 900 m, parts of rings at 640 and 1,600 m, each arc
between two roads a street of its own; cul-de-sacs off the longer streets wherever they keep 45 m from other
roads. Coordinates are rounded to the millimetre as they are made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from opendata.demo import names

ORIGIN_X, ORIGIN_Y, SIZE_M = 194_000.0, 154_000.0, 4_000.0  # south-west corner and side, EPSG:31370
_RADIAL_ANGLES = (5.0, 62.0, 118.0, 185.0, 238.0, 287.0)  # degrees anticlockwise from east
_RING_RADII = (200.0, 380.0, 640.0, 900.0, 1_600.0)
_RINGS = [
    (ring, k)
    for ring, arcs in enumerate([range(6), range(6), (0, 2, 4), range(6), (0, 1, 2, 3)])
    for k in arcs
]
_INNER_RING = 1  # the radials change name where they cross the ring at 380 m
_STATION_DISTANCE_M = 760.0


@dataclass(frozen=True, slots=True)
class DemoStreet:
    name_nl: str
    name_fr: str
    line: LineString
    half_width_m: float
    sides: tuple[int, ...] = (1, -1)  # +1 left of the drawing direction (odd numbers), -1 right (even)
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Network:
    boundary: Polygon
    centre: Point
    streets: list[DemoStreet]  # the square first
    station: Point
    railway: LineString
    motorway: LineString
    entry: Point  # the motorway entry


def generate_network(rng: np.random.Generator) -> Network:
    boundary = _boundary(rng)
    centre = Point(xy(ORIGIN_X + 2_000 + rng.uniform(-50, 50), ORIGIN_Y + 2_050 + rng.uniform(-50, 50)))
    streets, station, railway, motorway, entry = _streets(rng, boundary, centre)
    return Network(boundary, centre, streets, station, railway, motorway, entry)


def xy(x: float, y: float) -> tuple[float, float]:
    """A point rounded to the millimetre."""
    return (round(float(x), 3), round(float(y), 3))


def rounded(geom: BaseGeometry, decimals: int = 3) -> Any:
    return shapely.transform(geom, lambda coords: np.round(coords, decimals))


def _boundary(rng: np.random.Generator) -> Polygon:
    """The square with its sides bent in and out by up to about 110 m, like a real municipal boundary."""
    corners = [(0.0, 0.0), (SIZE_M, 0.0), (SIZE_M, SIZE_M), (0.0, SIZE_M)]
    points = []
    for k, (x0, y0) in enumerate(corners):
        x1, y1 = corners[(k + 1) % 4]
        nx, ny = (y1 - y0) / SIZE_M, -(x1 - x0) / SIZE_M  # outward normal of an anticlockwise ring
        for i in range(4):
            jitter = rng.uniform(-60, 60) if i == 0 else rng.uniform(-110, 110)
            f = i / 4
            points.append(
                xy(ORIGIN_X + x0 + f * (x1 - x0) + jitter * nx, ORIGIN_Y + y0 + f * (y1 - y0) + jitter * ny)
            )
    return Polygon(points)


def polar(centre: Point, r: float, angle: float) -> tuple[float, float]:
    return xy(centre.x + r * math.cos(angle), centre.y + r * math.sin(angle))


def _part_from(geom: BaseGeometry, start: Point) -> LineString:
    parts = list(getattr(geom, "geoms", [geom]))
    return min(parts, key=lambda part: part.distance(start))


def _at_radius(line: LineString, centre: Point, r: float) -> Point | None:
    hits = line.intersection(centre.buffer(r, quad_segs=64).exterior)
    if hits.is_empty:
        return None
    points = list(getattr(hits, "geoms", [hits]))
    first = min(points, key=lambda p: line.project(p))
    return Point(xy(first.x, first.y))


def _arc(rng: np.random.Generator, centre: Point, start: Point, end: Point, r: float) -> LineString:
    a0 = math.atan2(start.y - centre.y, start.x - centre.x)
    sweep = (math.atan2(end.y - centre.y, end.x - centre.x) - a0) % (2 * math.pi)
    n = max(2, math.ceil(sweep * r / 150))
    middle = [polar(centre, r * (1 + rng.normal(0, 0.025)), a0 + sweep * i / n) for i in range(1, n)]
    return LineString([(start.x, start.y), *middle, (end.x, end.y)])


def _split(line: LineString, at: Point) -> tuple[LineString, LineString]:
    d = line.project(at)
    return rounded(substring(line, 0, d)), rounded(substring(line, d, line.length))


def _streets(
    rng: np.random.Generator, boundary: Polygon, centre: Point
) -> tuple[list[DemoStreet], Point, LineString, LineString, Point]:
    """The street network, the station, the railway, the motorway and its entry."""
    limit = boundary.buffer(-20.0)
    spin = math.radians(_RADIAL_ANGLES[0])
    square = [polar(centre, 48 * math.sqrt(2), spin + math.pi / 4 + k * math.pi / 2) for k in range(4)]
    square.append(square[0])
    streets = [_street(names.SQUARE, LineString(square), 5.0, sides=(-1,))]  # anticlockwise: outside is right
    radials = []
    for base in _RADIAL_ANGLES:
        angle = math.radians(base + rng.uniform(-4, 4))
        points = [(centre.x, centre.y)]  # the roads meet on the square
        for d in (420.0, 900.0, 1_500.0, 2_200.0, 3_600.0):
            angle += math.radians(rng.normal(0, 2.5))
            points.append(polar(centre, d, angle))
        radials.append(rounded(_part_from(LineString(points).intersection(limit), Point(points[0]))))
    station = _at_radius(radials[5], centre, _STATION_DISTANCE_M)
    assert station is not None, "the road south always reaches the railway"
    theta = math.radians(8 + rng.uniform(-4, 4))
    dx, dy = 8_000 * math.cos(theta), 8_000 * math.sin(theta)
    rail_line = LineString([(station.x - dx, station.y - dy), (station.x + dx, station.y + dy)])
    railway = rounded(_part_from(rail_line.intersection(boundary), station))
    y = ORIGIN_Y + 320 + rng.uniform(-40, 40)
    motorway_line = LineString([(ORIGIN_X - 1_000, y - 40), (ORIGIN_X + SIZE_M + 1_000, y + 40)])
    motorway = rounded(_part_from(motorway_line.intersection(boundary), centre))
    crossing = radials[5].intersection(motorway)
    if not isinstance(crossing, Point):
        crossing = motorway.interpolate(motorway.project(radials[5].boundary.geoms[-1]))
    entry = Point(xy(crossing.x, crossing.y))

    ring_ends = [[_at_radius(line, centre, r) for r in _RING_RADII] for line in radials]
    for k, ((inner, outer, primary), line) in enumerate(zip(names.RADIALS, radials, strict=True)):
        split_at = station if k == 5 else ring_ends[k][_INNER_RING]
        width = 6.0 if primary else 5.0
        if inner == outer or split_at is None:
            streets.append(_street(inner, line, width, primary=primary))
            continue
        first, second = _split(line, split_at)
        streets.append(_street(inner, first, 5.0))
        streets.append(_street(outer, second, width, primary=primary))
    generic = [names.STREETS[i] for i in rng.permutation(len(names.STREETS)).tolist()]
    for ring, k in _RINGS:
        start, end = ring_ends[k][ring], ring_ends[(k + 1) % 6][ring]
        if start is not None and end is not None:
            arc = _arc(rng, centre, start, end, _RING_RADII[ring])
            streets.append(_street(generic.pop(0), arc, 4.5))
    parents = [s for s in streets[1:] if s.line.distance(centre) > 300 or s.line.length > 600]
    for parent in parents:
        for fraction in (0.25, 0.5, 0.75) if parent.line.length > 900 else (0.5,):
            if not generic:
                break
            side_street = _side_street(rng, parent, fraction, streets, limit.buffer(-20), [railway, motorway])
            if side_street is not None:
                streets.append(_street(generic.pop(0), side_street, 4.0))
    return streets, station, railway, motorway, entry


def _street(
    name: names.Name,
    line: LineString,
    half_width: float,
    *,
    sides: tuple[int, ...] = (1, -1),
    primary: bool = False,
) -> DemoStreet:
    return DemoStreet(name[0], name[1], line, half_width, sides=sides, primary=primary)


def _side_street(
    rng: np.random.Generator,
    parent: DemoStreet,
    fraction: float,
    streets: list[DemoStreet],
    limit: BaseGeometry,
    barriers: list[LineString],
) -> LineString | None:
    """A cul-de-sac off ``parent``, perpendicular with one bend; None when it would come near other roads."""
    d = fraction * parent.line.length
    a, b = parent.line.interpolate(max(0.0, d - 1)), parent.line.interpolate(min(parent.line.length, d + 1))
    heading = math.atan2(b.y - a.y, b.x - a.x) + (math.pi / 2 if rng.random() < 0.5 else -math.pi / 2)
    length, bend = float(rng.uniform(140, 300)), math.radians(rng.normal(0, 15))
    for scale in (1.0, 0.6):
        half = length * scale / 2
        mid = (a.x + half * math.cos(heading), a.y + half * math.sin(heading))
        end = (mid[0] + half * math.cos(heading + bend), mid[1] + half * math.sin(heading + bend))
        line = LineString([xy(a.x, a.y), xy(*mid), xy(*end)])
        reach = substring(line, 20.0, line.length)
        others = [s.line for s in streets if s is not parent]
        if limit.contains(reach) and min(g.distance(reach) for g in others + barriers) > 45:
            return line
    return None
