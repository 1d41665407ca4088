"""Lay out lots along streets for the demo region: parcels, building footprints and house numbers.

Each street side is walked segment by segment. At each step a *group* of lots is planned from the distance to
the centre: terraced rows (and some apartment blocks) in the centre, rows, half-open pairs and detached houses
in the suburbs, detached houses with fields in between in the outskirts. A lot is a rectangle in the frame of
its street segment (``s`` along the street, ``t`` away from it); it is kept only when it lies inside the
municipality, clear of roads, the railway, the motorway and the lots already placed (shortened once if not).

Buildings in a row span the whole width of their lot, so neighbours share the exact same wall coordinates and
the building type can afterwards be read from the geometry alone (see ``building_types``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

CENTRE_R = 520.0  # terraced rows (and apartment blocks inside APARTMENT_R) within this distance of the centre
APARTMENT_R = 430.0
SUBURB_R = 1_250.0  # rows, half-open pairs and some detached houses within this distance; detached beyond
TOUCH_M = 0.5  # two footprints share a wall when their outlines run together for longer than this...
WALL_TOLERANCE_M = 0.01  # ...within this distance of each other
_GRID_M = 50.0


@dataclass(slots=True)
class Lot:
    """One planned lot; ``kind`` is row, apartment, pair_left, pair_right, open or vacant."""

    kind: str
    width: float
    depth: float
    setback: float = 0.0
    building_depth: float = 0.0
    side_gap: float = 0.0
    building_width: float = 0.0
    storeys: int = 0
    roof_m: float = 0.0
    units: int = 1


@dataclass(slots=True)
class PlacedLot:
    parcel: Polygon
    footprint: Polygon | None
    lot: Lot
    street: int
    number: int
    front: Point
    group: int


@dataclass(frozen=True, slots=True)
class _Frame:
    """A street segment's frame: ``p(s, t)`` is ``s`` metres along it and ``t`` metres to the chosen side."""

    ax: float
    ay: float
    ux: float
    uy: float
    nx: float
    ny: float

    def p(self, s: float, t: float) -> tuple[float, float]:
        return (round(self.ax + s * self.ux + t * self.nx, 3), round(self.ay + s * self.uy + t * self.ny, 3))

    def rect(self, s0: float, s1: float, t0: float, t1: float) -> Polygon:
        corners = [self.p(s0, t0), self.p(s1, t0), self.p(s1, t1), self.p(s0, t1)]
        poly = Polygon(corners)
        return poly if poly.exterior.is_ccw else Polygon(corners[::-1])


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 2)


def _storeys(rng: np.random.Generator, low: int, high: int) -> int:
    return int(rng.integers(low, high + 1))


def plan_group(rng: np.random.Generator, r: float) -> tuple[list[Lot], float]:
    """The next lots along a street at distance ``r`` (m) from the centre, and the gap to leave after them."""
    u = rng.random()
    if r < CENTRE_R:
        if r < APARTMENT_R and u < 0.2:
            storeys = _storeys(rng, 3, 5)
            lots = [
                Lot(
                    "apartment",
                    _u(rng, 14, 22),
                    _u(rng, 28, 38),
                    0.0,
                    _u(rng, 12, 15),
                    storeys=storeys,
                    roof_m=_u(rng, 0.4, 1.2),
                    units=storeys * _storeys(rng, 2, 3),
                )
            ]
        else:
            setback = 0.0 if rng.random() < 0.7 else _u(rng, 2, 4)
            depth, building_depth = _u(rng, 24, 32), _u(rng, 9, 12)
            lots = [
                Lot(
                    "row",
                    _u(rng, 5.2, 7.5),
                    depth + _u(rng, -2, 2),
                    setback,
                    building_depth,
                    storeys=_storeys(rng, 2, 3),
                    roof_m=_u(rng, 2.5, 4.5),
                )
                for _ in range(int(rng.integers(3, 11)))
            ]
        return lots, (0.0 if rng.random() < 0.85 else _u(rng, 3, 8))
    if r < SUBURB_R:
        if u < 0.25:
            setback, depth, building_depth = _u(rng, 3, 6), _u(rng, 30, 40), _u(rng, 9, 11)
            lots = [
                Lot("row", _u(rng, 6, 8), depth, setback, building_depth, storeys=2, roof_m=_u(rng, 2.5, 4.5))
                for _ in range(int(rng.integers(3, 7)))
            ]
        elif u < 0.75:
            lots = _pair(rng, width=(9, 13), depth=(35, 50))
        else:
            lots = [_open(rng, width=(16, 24), depth=(35, 55))]
        return lots, (0.0 if rng.random() < 0.6 else _u(rng, 3, 30))
    lots = (
        _pair(rng, width=(11, 15), depth=(40, 60))
        if u < 0.2
        else [_open(rng, width=(18, 35), depth=(40, 70))]
    )
    return lots, (_u(rng, 40, 220) if rng.random() < 0.35 else _u(rng, 2, 15))


def _pair(rng: np.random.Generator, *, width: tuple[float, float], depth: tuple[float, float]) -> list[Lot]:
    setback, building_depth, lot_depth = _u(rng, 5, 8), _u(rng, 9, 12), _u(rng, *depth)
    storeys = 1 if rng.random() < 0.2 else 2
    return [
        Lot(
            kind,
            _u(rng, *width),
            lot_depth,
            setback,
            building_depth,
            side_gap=_u(rng, 3, 4.5),
            storeys=storeys,
            roof_m=_u(rng, 2.5, 4.5),
        )
        for kind in ("pair_left", "pair_right")
    ]


def _open(rng: np.random.Generator, *, width: tuple[float, float], depth: tuple[float, float]) -> Lot:
    lot_width = _u(rng, *width)
    lot = Lot(
        "open",
        lot_width,
        _u(rng, *depth),
        _u(rng, 6, 10),
        _u(rng, 9, 13),
        building_width=min(lot_width - 6.0, _u(rng, 9, 13)),
        storeys=1 if rng.random() < 0.35 else 2,
        roof_m=_u(rng, 2.5, 4.5),
    )
    if rng.random() < 0.04:
        lot.kind = "vacant"  # building land (bouwgrond / terrain à bâtir)
    return lot


class LotPlacer:
    """Places lots along streets, never on a road, outside the municipality or on another lot."""

    def __init__(
        self, rng: np.random.Generator, *, inside: Polygon, blocked: BaseGeometry, centre: Point
    ) -> None:
        self.rng = rng
        self.inside = inside
        self.blocked = blocked
        shapely.prepare(self.inside)
        shapely.prepare(self.blocked)
        self.cx, self.cy = centre.x, centre.y
        self.placed: list[PlacedLot] = []
        self._grid: dict[tuple[int, int], list[int]] = {}
        self._group = 0

    def street(self, index: int, line: LineString, *, half_width: float, sides: tuple[int, ...]) -> None:
        """Walk each side of one street; odd house numbers on the left (+1), even on the right (-1)."""
        coords = list(line.coords)
        for side in sides:
            number = 1 if side > 0 else 2
            for (ax, ay), (bx, by) in itertools.pairwise(coords):
                length = math.hypot(bx - ax, by - ay)
                ux, uy = (bx - ax) / length, (by - ay) / length
                frame = _Frame(ax, ay, ux, uy, -uy * side, ux * side)
                number = self._segment(frame, length, half_width, index, number)

    def _segment(self, frame: _Frame, length: float, t0: float, street: int, number: int) -> int:
        s = 0.0
        while True:
            x, y = frame.p(s + 10.0, t0 + 15.0)
            lots, gap = plan_group(self.rng, math.hypot(x - self.cx, y - self.cy))
            if s + sum(lot.width for lot in lots) > length:
                return number
            self._group += 1
            for lot in lots:
                parcel = self._fit(frame, s, s + lot.width, t0, lot)
                if parcel is not None:
                    self._add(parcel)
                    front = Point(frame.p((2 * s + lot.width) / 2, t0 + 1.0))
                    footprint = _footprint(frame, s, s + lot.width, t0, lot)
                    self.placed.append(PlacedLot(parcel, footprint, lot, street, number, front, self._group))
                    number += 2
                s += lot.width
            s += gap

    def _fit(self, frame: _Frame, s0: float, s1: float, t0: float, lot: Lot) -> Polygon | None:
        needed = 12.0 if lot.kind == "vacant" else lot.setback + lot.building_depth + 4.0
        for depth in (lot.depth, 0.75 * lot.depth):
            if depth < needed:
                return None
            parcel = frame.rect(s0, s1, t0, t0 + depth)
            if self._free(parcel):
                return parcel
        return None

    def _free(self, parcel: Polygon) -> bool:
        if not self.inside.contains(parcel) or self.blocked.intersects(parcel):
            return False
        for j in sorted({j for cell in _cells(parcel.bounds) for j in self._grid.get(cell, ())}):
            other = self.placed[j].parcel
            if parcel.intersects(other) and parcel.intersection(other).area > 0.05:
                return False
        return True

    def _add(self, parcel: Polygon) -> None:
        for cell in _cells(parcel.bounds):
            self._grid.setdefault(cell, []).append(len(self.placed))


def _cells(bounds: tuple[float, float, float, float]) -> Iterator[tuple[int, int]]:
    minx, miny, maxx, maxy = bounds
    for i in range(int(minx // _GRID_M), int(maxx // _GRID_M) + 1):
        for j in range(int(miny // _GRID_M), int(maxy // _GRID_M) + 1):
            yield (i, j)


def _footprint(frame: _Frame, s0: float, s1: float, t0: float, lot: Lot) -> Polygon | None:
    if lot.kind == "vacant":
        return None
    front = t0 + lot.setback
    back = front + lot.building_depth
    if lot.kind == "pair_left":
        return frame.rect(s0 + lot.side_gap, s1, front, back)
    if lot.kind == "pair_right":
        return frame.rect(s0, s1 - lot.side_gap, front, back)
    if lot.kind == "open":
        middle = (s0 + s1) / 2
        return frame.rect(middle - lot.building_width / 2, middle + lot.building_width / 2, front, back)
    return frame.rect(s0, s1, front, back)  # row houses and apartment blocks fill the width of the lot


def shared_walls(footprints: list[Polygon]) -> tuple[np.ndarray, float]:
    """Per footprint, how many others it shares a wall with; and the largest overlap between two (m²).

    Two footprints share a wall when their outlines run together, within WALL_TOLERANCE_M, for more than
    TOUCH_M. The tolerance matters: walls between neighbouring groups are collinear only up to the millimetre
    rounding, so an exact intersection would be a sliver polygon rather than a line.
    """
    geoms = np.array(footprints, dtype=object)
    left, right = STRtree(geoms).query(geoms, predicate="dwithin", distance=WALL_TOLERANCE_M)
    keep = left < right
    left, right = left[keep], right[keep]
    outlines = shapely.boundary(geoms)
    near = shapely.buffer(outlines, WALL_TOLERANCE_M)
    walls = shapely.length(shapely.intersection(near[left], outlines[right]))
    touching = walls > TOUCH_M
    counts = np.zeros(len(footprints), dtype=int)
    np.add.at(counts, left[touching], 1)
    np.add.at(counts, right[touching], 1)
    overlaps = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    return counts, float(overlaps.max()) if len(overlaps) else 0.0


def building_types(footprints: list[Polygon]) -> list[str]:
    """open, half_open or closed from the walls shared with neighbours: none, one, two or more."""
    counts, _ = shared_walls(footprints)
    return ["open" if n == 0 else "half_open" if n == 1 else "closed" for n in counts]
