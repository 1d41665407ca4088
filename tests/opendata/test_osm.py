"""The OpenStreetMap connector on the real Wechelderzande extract and on tiny files written here.

Counts of the real extract were checked by hand with an independent reader, GDAL's OSM driver
(``lines`` layer: residential 116, secondary 10, tertiary 7, unclassified 7; ``points``: 12 bus stops).
GDAL, like us, drops the one ``area=yes`` residential way and the secondary way whose nodes lie outside
the extract.
"""

from __future__ import annotations

from pathlib import Path

import osmium
import pytest
from django.contrib.gis.geos import Point
from osmium.osm.mutable import Node, Way
from pyproj import Transformer

from opendata.connectors.base import SourceError
from opendata.models import LocationLine, LocationPoint, RunStatus, SourceRefreshRun
from opendata.refresh import refresh

pytestmark = pytest.mark.django_db

KERK_STOP = (1024898908, 4.7858491, 51.263584)  # bus stop "Wechelderzande Kerk"


@pytest.fixture
def wechel(shared_data: Path) -> Path:
    return shared_data / "belgium" / "osm" / "wechelderzande.osm.pbf"


def snapshot() -> list[tuple[str, str, str, str]]:
    points = LocationPoint.objects.values_list("source", "kind", "source_id", "name")
    lines = LocationLine.objects.values_list("source", "kind", "source_id", "name")
    return sorted([*points, *lines])


def test_wechelderzande_bus_stops_and_streets(wechel: Path) -> None:
    run = refresh("osm", file=wechel)
    assert run.status == RunStatus.SUCCEEDED
    osm_points = LocationPoint.objects.filter(source="osm")
    assert osm_points.filter(kind="bus_stop").count() == 12
    assert osm_points.exclude(kind="bus_stop").count() == 0
    streets = LocationLine.objects.filter(source="osm", kind="street")
    by_class = {h: streets.filter(attributes__highway=h).count() for h in ("residential", "secondary")}
    assert by_class == {"residential": 116, "secondary": 10}
    assert streets.filter(attributes__highway="tertiary").count() == 7
    assert streets.filter(attributes__highway="unclassified").count() == 7
    assert streets.count() == 140
    assert not LocationLine.objects.exclude(kind="street").exists()  # no railway, no main roads there
    assert run.rejections == [
        {
            "row": "way/300486867",
            "reason": "only 1 of its 2 nodes have a location in the file (the way lies outside the extract)",
        }
    ]
    assert run.counts["parcels_touched"] == -1  # every parcel's location features may change
    assert run.vintage == "2016-06-06T19:59:58Z"  # newest edit among the kept objects (no header stamp)

    osm_id, lon, lat = KERK_STOP
    stop = LocationPoint.objects.get(source="osm", kind="bus_stop", source_id=str(osm_id))
    assert stop.name == "Wechelderzande Kerk" and stop.point.srid == 31370
    x, y = Transformer.from_crs(4326, 31370, always_xy=True).transform(lon, lat)
    assert stop.point.distance(Point(x, y, srid=31370)) < 1.0
    oostmalsebaan = streets.get(source_id="419036831")
    assert oostmalsebaan.attributes == {
        "highway": "secondary",
        "maxspeed": "50",
        "oneway": "no",
        "ref": "N153",
    }
    assert oostmalsebaan.name == "Oostmalsebaan" and oostmalsebaan.geometry.length > 10

    again = refresh("osm", file=wechel)
    assert again.status == RunStatus.SKIPPED
    forced = refresh("osm", file=wechel, force=True)
    assert forced.counts["points_unchanged"] == 12 and forced.counts["lines_unchanged"] == 140
    assert forced.counts["parcels_touched"] == 0  # nothing changed: no feature recomputation


def test_a_truncated_pbf_fails_and_keeps_the_data(wechel: Path, tmp_path: Path) -> None:
    refresh("osm", file=wechel)
    before = snapshot()
    data = wechel.read_bytes()
    truncated = tmp_path / "belgium-latest.osm.pbf"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"could not be read to the end.*truncated or corrupt"):
        refresh("osm", file=truncated)
    assert snapshot() == before
    failed = SourceRefreshRun.objects.get(source="osm", status=RunStatus.FAILED)
    assert "truncated or corrupt" in failed.error and failed.finished_at is not None


def write_osm(path: Path, nodes: list[Node], ways: list[Way]) -> Path:
    with osmium.SimpleWriter(str(path)) as writer:
        for node in nodes:
            writer.add_node(node)
        for way in ways:
            writer.add_way(way)
    return path


def node(osm_id: int, lon: float, lat: float, **tags: str) -> Node:
    return Node(id=osm_id, location=(lon, lat), tags=tags, version=1, timestamp="2026-11-20T10:00:00Z")


def tiny_belgium(path: Path) -> Path:
    """A few objects around Mechelen, one of each kind plus look-alikes that must be left out."""
    nodes = [
        node(1, 4.4833, 51.0172, railway="station", name="Mechelen", uic_ref="8822004"),
        node(2, 4.4900, 51.0100, railway="halt", name="Mechelen-Nekkerspoel"),
        node(3, 4.3500, 50.8500, railway="station", station="subway", name="Metro"),  # not a train
        node(4, 4.4600, 51.0300, public_transport="station", train="yes", name="Mechelen-Noord"),
        node(5, 4.4400, 51.0400, highway="motorway_junction", ref="10", name="Mechelen-Noord"),
        node(6, 4.4797, 51.0259, place="town", name="Mechelen", population="86 921"),
        node(7, 4.4003, 51.2213, place="city", name="Antwerpen", population="530504", capital="6"),
        node(8, 4.4700, 51.0200, highway="bus_stop", name="Grote Markt"),
        node(9, 4.4650, 51.0250, place="village", name="Muizen"),  # not a town
    ]
    line_nodes = [node(100 + i, 4.40 + 0.01 * i, 51.05) for i in range(6)]
    ways = [
        Way(id=201, nodes=[100, 101], tags={"highway": "motorway", "ref": "E19"}),
        Way(id=202, nodes=[101, 102], tags={"highway": "trunk", "ref": "N1"}),
        Way(id=203, nodes=[102, 103], tags={"highway": "primary", "ref": "N15"}),
        Way(id=204, nodes=[103, 104], tags={"railway": "rail", "usage": "main"}),
        Way(id=205, nodes=[104, 105], tags={"railway": "rail", "service": "siding"}),  # left out
        Way(id=206, nodes=[100, 105], tags={"highway": "residential", "name": "Kerkstraat", "width": "6"}),
        Way(id=207, nodes=[101, 104], tags={"highway": "motorway_link"}),  # left out
        Way(id=208, nodes=[102, 105], tags={"highway": "service"}),  # left out
    ]
    return write_osm(path, [*nodes, *line_nodes], ways)


def test_every_kind_lands_where_it_belongs(tmp_path: Path) -> None:
    run = refresh("osm", file=tiny_belgium(tmp_path / "tiny.osm.pbf"))
    assert run.status == RunStatus.SUCCEEDED and run.rows_rejected == 0
    points = {(p.kind, p.source_id): p for p in LocationPoint.objects.filter(source="osm")}
    assert sorted(points) == [
        ("bus_stop", "8"),
        ("city_centre", "7"),
        ("highway_entry", "5"),
        ("railway_station", "1"),
        ("railway_station", "2"),
        ("railway_station", "4"),
        ("town_centre", "6"),
    ]
    assert points[("town_centre", "6")].attributes == {"population": 86921}
    assert points[("city_centre", "7")].attributes == {"population": 530504, "capital": "6"}
    assert points[("highway_entry", "5")].attributes == {"ref": "10"}
    lines = dict(LocationLine.objects.filter(source="osm").values_list("source_id", "kind"))
    assert lines == {
        "201": "motorway",
        "202": "trunk_road",
        "203": "primary_road",
        "204": "railway",
        "206": "street",
    }
    street = LocationLine.objects.get(source="osm", source_id="206")
    assert street.attributes == {"highway": "residential", "width": "6"} and street.name == "Kerkstraat"
    assert run.vintage == "2026-11-20T10:00:00Z"


def test_a_file_outside_belgium_is_refused(tmp_path: Path) -> None:
    refresh("osm", file=tiny_belgium(tmp_path / "tiny.osm.pbf"))
    before = snapshot()
    paris = write_osm(
        tmp_path / "paris.osm.pbf",
        [node(i, 2.30 + 0.01 * i, 48.85, highway="bus_stop") for i in range(1, 6)]
        + [node(9, 4.47, 51.02, highway="bus_stop")],
        [],
    )
    with pytest.raises(SourceError, match=r"5 of 6 OSM objects are invalid.*outside Belgium"):
        refresh("osm", file=paris)
    empty = write_osm(tmp_path / "empty.osm.pbf", [node(1, 4.47, 51.02, amenity="bench")], [])
    with pytest.raises(SourceError, match="holds none of the objects we keep"):
        refresh("osm", file=empty)
    with pytest.raises(SourceError, match="Unknown location index"):
        refresh("osm", file=tiny_belgium(tmp_path / "again.osm.pbf"), options={"index": "nope"}, force=True)
    assert snapshot() == before
    assert SourceRefreshRun.objects.filter(source="osm", status=RunStatus.FAILED).count() == 3


def test_the_file_backed_location_index_gives_the_same_rows(tmp_path: Path) -> None:
    path = tiny_belgium(tmp_path / "tiny.osm.pbf")
    refresh("osm", file=path, options={"index": "sparse_file_array"})
    lines = sorted((line.source_id, line.geometry.wkt) for line in LocationLine.objects.all())
    run = refresh("osm", file=path, force=True)
    assert run.counts["lines_unchanged"] == 5 and run.counts["points_unchanged"] == 7
    assert sorted((line.source_id, line.geometry.wkt) for line in LocationLine.objects.all()) == lines
