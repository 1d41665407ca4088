"""Generate the synthetic demo municipality Demodorp / Démoville / Demodorf (NIS 99001). Nothing here is real.

Where: the 4 x 4 km square from (194000, 154000) to (198000, 158000) in Belgian Lambert 72 (EPSG:31370), about
50.70-50.74 N, 4.99-5.05 E. That is the open loam plateau of Haspengouw / Hesbaye on the language border
between Landen and Lincent: farmland with ribbon villages, where a bilingual village is plausible, far from
the national borders so every real layer (CadGIS, GRB, BeSt, OSM, Statbel) covers the same spot. The NIS code
99001, the cadastral divisions 99001/99002 and the postcodes 9998/9999 do not exist in Belgium, so no row can
be taken for a real one (the outline does overlap real Landen and Lincent, so do not load both for one area).

What: a village square with six roads out of it (three of them primary roads), rings and cul-de-sacs
(``network``); lots along every street (terraced rows and apartment blocks in the centre, half-open pairs and
small rows in the suburbs, detached houses in the outskirts); a railway with a station, a motorway with an
entry, bus stops; 27 statistical sectors (Voronoi cells clipped to the boundary) with population and income.

Same seed, same region: everything random comes from ``numpy.random.default_rng(seed)``, all collections are
lists walked in a fixed order, and coordinates are rounded to the millimetre (sector outlines to the
micrometre, so that they tile the boundary exactly). ``DemoRegion.checksum`` hashes
the whole content; bump ``GENERATOR_VERSION`` whenever the output for a given seed changes on purpose.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from opendata.demo import names
from opendata.demo.layout import LotPlacer, PlacedLot, building_types, shared_walls
from opendata.demo.network import DemoStreet, generate_network, polar, rounded, xy

GENERATOR_VERSION = 1
SOURCE = "demo"
SRID = 31370
NIS_CODE = "99001"
NAME_NL, NAME_FR, NAME_DE = "Demodorp (synthetisch)", "Démoville (synthétique)", "Demodorf (synthetisch)"
VALID_FROM = date(2025, 1, 1)
SECTOR_VINTAGE = 2024
STATISTICS_YEAR = 2022
DIVISIONS = {
    "A": "99001",
    "B": "99002",
}  # cadastral divisions of the two former municipalities (deelgemeenten)
POSTCODES = {"A": "9998", "B": "9999"}
MUNICIPAL_TAX_RATE_PCT = 7.5
BELGIAN_INCOME_PER_RESIDENT_EUR = 20_500.0  # approximate national figure, only for the prosperity index
_EXPONENT_LETTERS = "ABCDEFGHJKLMNPRSTVWX"


@dataclass(frozen=True, slots=True)
class DemoSector:
    code: str
    name_nl: str
    name_fr: str
    geometry: BaseGeometry
    population: int
    tax_returns: int
    average_income_eur: float | None
    median_income_eur: float | None
    income_quantiles_eur: tuple[float, float, float, float] | None  # p10, p25, p75, p90


@dataclass(frozen=True, slots=True)
class DemoParcel:
    capakey: str
    geometry: Polygon
    sector_code: str


@dataclass(frozen=True, slots=True)
class DemoBuilding:
    source_id: str
    capakey: str
    footprint: Polygon
    building_type: str
    height_m: float
    storeys: int
    dwellings: int


@dataclass(frozen=True, slots=True)
class DemoAddress:
    source_id: str
    capakey: str
    street_nl: str
    street_fr: str
    house_number: str
    box: str
    postcode: str
    point: Point


@dataclass(frozen=True, slots=True)
class DemoPlace:
    kind: str
    source_id: str
    name: str
    point: Point
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DemoLine:
    kind: str
    source_id: str
    name: str
    geometry: LineString


@dataclass(frozen=True)
class DemoRegion:
    seed: int
    boundary: Polygon
    centre: Point
    station: Point
    streets: list[DemoStreet]
    sectors: list[DemoSector]
    parcels: list[DemoParcel]
    buildings: list[DemoBuilding]
    addresses: list[DemoAddress]
    places: list[DemoPlace]
    lines: list[DemoLine]

    @property
    def vintage(self) -> str:
        return f"seed={self.seed} v{GENERATOR_VERSION}"

    @cached_property
    def checksum(self) -> str:
        """SHA-256 of every row and geometry, in order; equal for equal seeds and generator versions."""
        digest = hashlib.sha256()
        for line in _content_lines(self):
            digest.update(line.encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def counts(self) -> dict[str, int]:
        return {
            "municipalities": 1,
            "sectors": len(self.sectors),
            "parcels": len(self.parcels),
            "buildings": len(self.buildings),
            "addresses": len(self.addresses),
            "places": len(self.places),
            "lines": len(self.lines),
        }

    def municipality_statistic(self) -> dict[str, float | int | None]:
        """The municipality's figures summed over its sectors (median: population-weighted sector medians)."""
        known = [
            s for s in self.sectors if s.average_income_eur is not None and s.median_income_eur is not None
        ]
        population = sum(s.population for s in self.sectors)
        returns = sum(s.tax_returns for s in known)
        total = sum(s.tax_returns * (s.average_income_eur or 0.0) for s in known)
        median = sum(s.population * (s.median_income_eur or 0.0) for s in known) / max(
            1, sum(s.population for s in known)
        )
        return {
            "population": population,
            "tax_returns": returns,
            "area_km2": round(self.boundary.area / 1e6, 3),
            "total_net_taxable_income_eur": round(total),
            "average_income_eur": round(total / max(1, returns)),
            "median_income_eur": round(median),
            "municipal_tax_rate_pct": MUNICIPAL_TAX_RATE_PCT,
            "prosperity_index": round(100 * total / max(1, population) / BELGIAN_INCOME_PER_RESIDENT_EUR, 1),
        }


def wkt(geom: BaseGeometry) -> str:
    """WKT as the checksum hashes it and the database receives it (coordinates are already rounded)."""
    return str(shapely.to_wkt(geom, rounding_precision=6, trim=True))


def generate_region(seed: int = 2026) -> DemoRegion:
    """Build the whole demo region from ``seed``; pure Python and shapely, no database."""
    rng = np.random.default_rng(seed)
    net = generate_network(rng)
    boundary, centre, streets, station = net.boundary, net.centre, net.streets, net.station
    railway, motorway, entry = net.railway, net.motorway, net.entry
    sector_cells = _sector_cells(rng, boundary, centre, station)
    blocked = shapely.union_all(
        [s.line.buffer(s.half_width_m - 0.5) for s in streets]
        + [
            railway.buffer(20),
            motorway.buffer(45),
            station.buffer(50),
            entry.buffer(110),
            Polygon(streets[0].line.coords),
        ]
    )
    placer = LotPlacer(rng, inside=boundary.buffer(-2.0), blocked=blocked, centre=centre)
    for index, street in enumerate(streets):
        placer.street(index, street.line, half_width=street.half_width_m, sides=street.sides)
    sector_of = _sector_index(placer.placed, [cell[1] for cell in sector_cells])
    parcels, buildings, addresses = _cadastre(rng, placer.placed, sector_of, sector_cells, streets, centre)
    sectors = _sectors(rng, sector_cells, buildings, parcels)
    places, lines = _locations(streets, centre, station, railway, motorway, entry)
    return DemoRegion(
        seed, boundary, centre, station, streets, sectors, parcels, buildings, addresses, places, lines
    )


def _sector_cells(
    rng: np.random.Generator, boundary: Polygon, centre: Point, station: Point
) -> list[tuple[str, BaseGeometry, float, tuple[str, str]]]:
    """(code, geometry, distance of its seed to the centre in km, names) for each statistical sector."""
    seeds: list[tuple[int, float, float]] = [(0, 0.0, 0.0)]  # ring, radius, angle in degrees
    for ring, (count, radius, offset) in enumerate(
        [(6, 560.0, 30.0), (8, 1_150.0, 22.5), (8, 1_650.0, 0.0), (4, 2_400.0, 45.0)], start=1
    ):
        seeds += [(ring, radius, offset + k * 360 / count) for k in range(count)]
    points, letters = [], []
    for ring, radius, angle in seeds:
        r = radius * (1 + rng.uniform(-0.03, 0.03)) if ring else float(rng.uniform(0, 25))
        points.append(polar(centre, r, math.radians(angle + rng.uniform(-7, 7))))
        letters.append("B" if ring >= 2 and 15 <= angle <= 105 else "A")  # the former hamlet, north-east
    cells = shapely.voronoi_polygons(MultiPoint(points), extend_to=boundary, ordered=True).geoms
    order = sorted(range(len(seeds)), key=lambda i: (letters[i], seeds[i][0], seeds[i][2]))
    station_cell = next(i for i in order if cells[i].contains(station))
    named = iter(n for n in names.SECTORS[2:])
    result, counters = [], {"A": 0, "B": 0}
    for i in order:
        code = f"{NIS_CODE}{letters[i]}{counters[letters[i]]:02d}-"
        counters[letters[i]] += 1
        label = (
            names.SECTORS[0] if seeds[i][0] == 0 else names.SECTORS[1] if i == station_cell else next(named)
        )
        distance_km = math.hypot(points[i][0] - centre.x, points[i][1] - centre.y) / 1000
        # Micrometres, not millimetres: cells cut by the boundary must still tile it exactly.
        result.append((code, rounded(cells[i].intersection(boundary), 6), distance_km, label))
    return result


def _sector_index(placed: list[PlacedLot], cells: list[BaseGeometry]) -> list[int]:
    """Index of the sector holding each lot's centroid."""
    points = np.array([lot.parcel.centroid for lot in placed], dtype=object)
    tree = STRtree(np.array(cells, dtype=object))
    inputs, hits = tree.query(points, predicate="intersects")
    index = [-1] * len(placed)
    for i, j in zip(inputs.tolist(), hits.tolist(), strict=True):
        if index[i] < 0:
            index[i] = j
    return [j if j >= 0 else int(tree.query_nearest(points[i])[0]) for i, j in enumerate(index)]


def _cadastre(
    rng: np.random.Generator,
    placed: list[PlacedLot],
    sector_of: list[int],
    cells: list[tuple[str, BaseGeometry, float, tuple[str, str]]],
    streets: list[DemoStreet],
    centre: Point,
) -> tuple[list[DemoParcel], list[DemoBuilding], list[DemoAddress]]:
    """CaPaKeys, building rows and addresses for the placed lots, in placement order."""
    letter = [cells[sector_of[i]][0][5] for i in range(len(placed))]
    keys: list[tuple[str, str]] = []
    for i, lot in enumerate(placed):
        c = lot.parcel.centroid
        wedge = math.degrees(math.atan2(c.y - centre.y, c.x - centre.x)) % 360
        keys.append(
            (DIVISIONS[letter[i]], "ABCDEF"[int(wedge // 60)] if letter[i] == "A" else "AB"[wedge >= 60])
        )
    runs: list[list[int]] = []  # lots of one group in one section share a radical (a split parcel)
    for i in range(len(placed)):
        same = i > 0 and placed[i].group == placed[i - 1].group and keys[i] == keys[i - 1]
        if same:
            runs[-1].append(i)
        else:
            runs.append([i])
    radicals: dict[tuple[str, str], int] = {}
    capakey = [""] * len(placed)
    for run in runs:
        division, section = keys[run[0]]
        radicals[(division, section)] = radical = radicals.get((division, section), 0) + 1
        for j, i in enumerate(run):
            if len(run) > 1:
                exponent, number, bis = _EXPONENT_LETTERS[j % 20], j // 20, 0
            elif rng.random() < 0.3:
                exponent, number, bis = str(rng.choice(list(_EXPONENT_LETTERS))), int(rng.integers(0, 10)), 0
            else:
                exponent, number, bis = "_", 0, 2 if rng.random() < 0.05 else 0
            capakey[i] = f"{division}{section}{radical:04d}/{bis:02d}{exponent}{number:03d}"
    parcels = [DemoParcel(capakey[i], lot.parcel, cells[sector_of[i]][0]) for i, lot in enumerate(placed)]
    built = [i for i, lot in enumerate(placed) if lot.footprint is not None]
    types = building_types([placed[i].footprint for i in built if placed[i].footprint is not None])
    buildings: list[DemoBuilding] = []
    addresses: list[DemoAddress] = []
    for n, (i, kind) in enumerate(zip(built, types, strict=True), start=1):
        lot, street = placed[i], streets[placed[i].street]
        assert lot.footprint is not None
        height = round(lot.lot.storeys * 2.9 + lot.lot.roof_m, 1)
        units = lot.lot.units if lot.lot.kind == "apartment" else 1
        buildings.append(
            DemoBuilding(f"B{n:05d}", capakey[i], lot.footprint, kind, height, lot.lot.storeys, units)
        )
        for box in [str(b) for b in range(1, units + 1)] if units > 1 else [""]:
            addresses.append(
                DemoAddress(
                    f"A{len(addresses) + 1:06d}",
                    capakey[i],
                    street.name_nl,
                    street.name_fr,
                    str(lot.number),
                    box,
                    POSTCODES[letter[i]],
                    lot.front,
                )
            )
    return parcels, buildings, addresses


def _sectors(
    rng: np.random.Generator,
    cells: list[tuple[str, BaseGeometry, float, tuple[str, str]]],
    buildings: list[DemoBuilding],
    parcels: list[DemoParcel],
) -> list[DemoSector]:
    """Residents from the dwellings (2.45 a house, 1.9 an apartment), 0.58 tax returns a resident, and an
    average income per return around 34,000 EUR rising by about 9 % a km away from the centre."""
    sector_of_parcel = {p.capakey: p.sector_code for p in parcels}
    residents = {code: 0.0 for code, *_ in cells}
    for b in buildings:
        residents[sector_of_parcel[b.capakey]] += b.dwellings * (1.9 if b.dwellings > 1 else 2.45)
    sectors = []
    for code, geometry, distance_km, (name_nl, name_fr) in cells:
        population = round(residents[code] * rng.uniform(0.97, 1.03))
        returns = round(population * 0.58)
        log_income = (
            math.log(34_000)
            + 0.09 * distance_km
            + rng.normal(0, 0.10)
            - (0.06 if name_nl == "Stationswijk" else 0)
        )
        # Statbel hides the income figures of sectors with very few tax returns.
        average = round(math.exp(log_income)) if returns >= 10 else None
        median = round(average * rng.uniform(0.82, 0.88)) if average else None
        quantiles = (0.35 * median, 0.62 * median, 1.45 * median, 1.95 * median) if median else None
        sectors.append(
            DemoSector(code, name_nl, name_fr, geometry, population, returns, average, median, quantiles)
        )
    return sectors


def _locations(
    streets: list[DemoStreet],
    centre: Point,
    station: Point,
    railway: LineString,
    motorway: LineString,
    entry: Point,
) -> tuple[list[DemoPlace], list[DemoLine]]:
    places = [
        DemoPlace(
            "city_centre",
            "centre",
            "Demodorp centrum",
            centre,
            {"name_fr": "Démoville centre", "synthetic": True},
        ),
        DemoPlace("railway_station", "station", "Demodorp / Démoville", station, {"synthetic": True}),
        DemoPlace(
            "highway_entry", "entry-99", "Oprit 99 Demodorp / Accès 99 Démoville", entry, {"synthetic": True}
        ),
    ]
    to_station = next(s for s in streets if s.line.distance(station) < 0.01)
    stops = [(streets[0], 20.0), (to_station, to_station.line.length - 40)]
    stops += [(s, d) for s in streets if s.primary for d in (300.0, 900.0, 1_500.0) if s.line.length > d + 50]
    seen: dict[str, int] = {}
    for n, (street, d) in enumerate(stops, start=1):
        at = street.line.interpolate(d)
        seen[street.name_nl] = k = seen.get(street.name_nl, 0) + 1
        suffix = f" {k}" if k > 1 else ""
        places.append(
            DemoPlace(
                "bus_stop",
                f"stop-{n:02d}",
                f"Demodorp {street.name_nl}{suffix}",
                Point(xy(at.x, at.y)),
                {"name_fr": f"Démoville {street.name_fr}{suffix}", "synthetic": True},
            )
        )
    lines = [
        DemoLine("railway", "line-99", "Spoorlijn 99 / Ligne 99 (demo)", railway),
        DemoLine("motorway", "a99", "A99 (demo)", motorway),
    ]
    lines += [
        DemoLine("primary_road", f"n{n}", f"{s.name_nl} / {s.name_fr}", s.line)
        for n, s in enumerate((s for s in streets if s.primary), start=1)
    ]
    return places, lines


def _content_lines(region: DemoRegion) -> list[str]:
    out = [f"municipality|{NIS_CODE}|{NAME_NL}|{NAME_FR}|{NAME_DE}|{wkt(region.boundary)}"]
    out += [
        f"sector|{s.code}|{s.name_nl}|{s.name_fr}|{s.population}|{s.tax_returns}|{s.average_income_eur}|"
        f"{s.median_income_eur}|{s.income_quantiles_eur}|{wkt(s.geometry)}"
        for s in region.sectors
    ]
    out += [f"parcel|{p.capakey}|{p.sector_code}|{wkt(p.geometry)}" for p in region.parcels]
    out += [
        f"building|{b.source_id}|{b.capakey}|{b.building_type}|{b.height_m}|{b.storeys}|{b.dwellings}|"
        f"{wkt(b.footprint)}"
        for b in region.buildings
    ]
    out += [
        f"address|{a.source_id}|{a.capakey}|{a.street_nl}|{a.street_fr}|{a.house_number}|{a.box}|"
        f"{a.postcode}|{wkt(a.point)}"
        for a in region.addresses
    ]
    out += [
        f"place|{p.kind}|{p.source_id}|{p.name}|{sorted(p.attributes.items())}|{wkt(p.point)}"
        for p in region.places
    ]
    out += [f"line|{ln.kind}|{ln.source_id}|{ln.name}|{wkt(ln.geometry)}" for ln in region.lines]
    return out


def validate_region(region: DemoRegion) -> list[str]:
    """What is wrong with the generated region (empty when nothing): checked before anything is written."""
    problems = []
    keys = [p.capakey for p in region.parcels]
    if len(set(keys)) != len(keys):
        problems.append("CaPaKeys are not unique")
    parcel = {p.capakey: p.geometry for p in region.parcels}
    inside = region.boundary.buffer(0.01)
    problems += [f"parcel {k} leaves the municipality" for k, g in parcel.items() if not inside.covers(g)]
    problems += [
        f"building {b.source_id} leaves parcel {b.capakey}"
        for b in region.buildings
        if not parcel[b.capakey].buffer(0.01).covers(b.footprint)
    ]
    problems += [
        f"address {a.source_id} is not on parcel {a.capakey}"
        for a in region.addresses
        if not parcel[a.capakey].contains(a.point)
    ]
    _, overlap = shared_walls([b.footprint for b in region.buildings])
    if overlap > 0.01:
        problems.append(f"buildings overlap (up to {overlap:.2f} m²)")
    union = shapely.union_all([s.geometry for s in region.sectors])
    if union.symmetric_difference(region.boundary).area > 0.1:
        problems.append("the statistical sectors do not tile the municipality")
    return problems
