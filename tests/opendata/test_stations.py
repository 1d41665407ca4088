"""iRail stations and rail segments from the real files, and the ways a bad file is refused."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point
from pyproj import Transformer

from opendata.connectors.base import SourceError
from opendata.models import LocationLine, LocationPoint, RunStatus, SourceRefreshRun
from opendata.refresh import refresh

pytestmark = pytest.mark.django_db

TO_LAMBERT72 = Transformer.from_crs(4326, 31370, always_xy=True)


@pytest.fixture
def stations_csv(shared_data: Path) -> Path:
    return shared_data / "belgium" / "transport" / "irail_stations.csv"


@pytest.fixture
def segments_geojson(shared_data: Path) -> Path:
    return shared_data / "belgium" / "transport" / "irail_rail_segments.geojson"


def stations() -> list[tuple[str, str, str]]:
    return sorted(LocationPoint.objects.filter(source="irail").values_list("source_id", "name", "kind"))


def rewrite(source: Path, target: Path, change: Callable[[dict[str, str]], dict[str, str] | None]) -> Path:
    """Copy the CSV, passing each row (a dict) through ``change``; None drops the row."""
    with open(source, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        rows = [row for row in (change(dict(r)) for r in reader) if row is not None]
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[c for c in columns if c in rows[0]])
        writer.writeheader()
        writer.writerows(rows)
    return target


def test_the_belgian_stations_load_with_their_names_and_coordinates(stations_csv: Path) -> None:
    run = refresh("stations", file=stations_csv)
    assert run.status == RunStatus.SUCCEEDED
    assert run.rows_loaded == 579 and run.rows_rejected == 0
    assert run.counts["stations_inserted"] == 579 and run.counts["stations_abroad_skipped"] == 150
    assert LocationPoint.objects.filter(source="irail", kind="railway_station").count() == 579
    assert not LocationPoint.objects.filter(source="irail", name__startswith="Aachen").exists()

    gent = LocationPoint.objects.get(source="irail", source_id="008892007")
    assert gent.name == "Gent-Sint-Pieters"
    assert gent.attributes["name_fr"] == "Gand-Saint-Pierre"
    assert gent.attributes["name_nl"] == "Gent-Sint-Pieters"  # no alternative: the name itself
    assert gent.attributes["name_en"] == "Ghent-Sint-Pieters"
    assert gent.attributes["uri"] == "http://irail.be/stations/NMBS/008892007"
    x, y = TO_LAMBERT72.transform(3.710675, 51.035896)
    assert gent.point.srid == 31370 and gent.point.distance(Point(x, y, srid=31370)) < 1.0

    brussels = LocationPoint.objects.get(source="irail", source_id="008813003")
    assert brussels.attributes["name_nl"] == "Brussel-Centraal"
    assert brussels.attributes["name_fr"] == "Bruxelles-Central"
    assert brussels.attributes["name_de"] == "Brüssel-Central"
    assert brussels.attributes["avg_stop_times"] == pytest.approx(903.747922)

    assert refresh("stations", file=stations_csv).status == RunStatus.SKIPPED


def test_a_changed_file_upserts_and_deletes(stations_csv: Path, tmp_path: Path) -> None:
    refresh("stations", file=stations_csv)
    kept = LocationPoint.objects.get(source="irail", source_id="008892007").pk

    def change(row: dict[str, str]) -> dict[str, str] | None:
        if row["URI"].endswith("008895000"):  # Aalst closes
            return None
        if row["URI"].endswith("008892007"):
            row["alternative-en"] = "Ghent Saint Peter's"
        return row

    run = refresh("stations", file=rewrite(stations_csv, tmp_path / "stations.csv", change))
    assert run.status == RunStatus.SUCCEEDED
    assert (run.counts["stations_updated"], run.counts["stations_deleted"]) == (1, 1)
    assert run.counts["stations_unchanged"] == 577 and run.counts["parcels_touched"] == -1
    gent = LocationPoint.objects.get(source="irail", source_id="008892007")
    assert gent.pk == kept and gent.attributes["name_en"] == "Ghent Saint Peter's"
    assert not LocationPoint.objects.filter(source="irail", source_id="008895000").exists()


def test_bad_station_files_fail_and_keep_the_data(stations_csv: Path, tmp_path: Path) -> None:
    refresh("stations", file=stations_csv)
    before = stations()

    def drop_latitude(row: dict[str, str]) -> dict[str, str]:
        row.pop("latitude")
        return row

    with pytest.raises(SourceError, match=r"lacks the column.*latitude"):
        refresh("stations", file=rewrite(stations_csv, tmp_path / "no_latitude.csv", drop_latitude))

    def lambert(row: dict[str, str]) -> dict[str, str]:  # Lambert 72 metres where degrees belong
        x, y = TO_LAMBERT72.transform(float(row["longitude"]), float(row["latitude"]))
        row["longitude"], row["latitude"] = f"{x:.1f}", f"{y:.1f}"
        return row

    with pytest.raises(SourceError, match=r"refused as a whole.*outside Belgium"):
        refresh("stations", file=rewrite(stations_csv, tmp_path / "lambert.csv", lambert))

    def swapped(row: dict[str, str]) -> dict[str, str]:
        row["longitude"], row["latitude"] = row["latitude"], row["longitude"]
        return row

    with pytest.raises(SourceError, match="refused as a whole"):
        refresh("stations", file=rewrite(stations_csv, tmp_path / "swapped.csv", swapped))

    assert stations() == before
    failed = SourceRefreshRun.objects.filter(source="stations", status=RunStatus.FAILED)
    assert failed.count() == 3 and all(run.error for run in failed)


def test_rail_segments_in_belgium(segments_geojson: Path) -> None:
    run = refresh("rail-segments", file=segments_geojson)
    assert run.status == RunStatus.SUCCEEDED
    # 928 features: 57 wholly abroad (Netherlands, France...), 2 refused, 869 loaded
    assert run.rows_loaded == 869 and run.counts["segments_outside_belgium"] == 57
    assert [r["row"] for r in run.rejections] == [780, 919]
    assert "pairs of numbers" in run.rejections[0]["reason"]  # Zedelgem - Torhout: text, lat/lon swapped
    segments = LocationLine.objects.filter(source="irail", kind="railway")
    assert segments.count() == 869
    liers = segments.get(source_id="008841673-008841665")
    assert liers.name == "Liers - Milmort"
    x, y = TO_LAMBERT72.transform(5.56683, 50.698181)
    start = liers.geometry[0][0]
    assert Point(start, srid=31370).distance(Point(x, y, srid=31370)) < 1.0
    assert 2300 < liers.geometry.length < 2500  # 2.4 km, measured in metres


def test_bad_segment_files_fail_and_keep_the_data(
    segments_geojson: Path, stations_csv: Path, tmp_path: Path
) -> None:
    refresh("rail-segments", file=segments_geojson)
    before = sorted(LocationLine.objects.values_list("source_id", flat=True))
    data = json.loads(segments_geojson.read_text(encoding="utf-8"))

    projected = dict(data, features=[])
    for feature in data["features"][:50]:
        coords = feature["geometry"]["coordinates"]
        if all(isinstance(v, float) for c in coords for v in c):
            xy = [list(TO_LAMBERT72.transform(*c)) for c in coords]
            projected["features"].append(dict(feature, geometry={"type": "LineString", "coordinates": xy}))
    (tmp_path / "lambert.geojson").write_text(json.dumps(projected), encoding="utf-8")
    with pytest.raises(SourceError, match="not longitude/latitude degrees"):
        refresh("rail-segments", file=tmp_path / "lambert.geojson")

    declared = dict(data, crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::31370"}})
    (tmp_path / "declared.geojson").write_text(json.dumps(declared), encoding="utf-8")
    with pytest.raises(SourceError, match="declares the CRS urn:ogc:def:crs:EPSG::31370"):
        refresh("rail-segments", file=tmp_path / "declared.geojson")

    text = segments_geojson.read_bytes()
    (tmp_path / "truncated.geojson").write_bytes(text[: len(text) // 2])
    with pytest.raises(SourceError, match="not valid JSON, perhaps truncated"):
        refresh("rail-segments", file=tmp_path / "truncated.geojson")
    with pytest.raises(SourceError, match="looks like the iRail station list"):
        refresh("rail-segments", file=stations_csv)
    with pytest.raises(SourceError, match="looks like the iRail rail segments"):
        refresh("stations", file=segments_geojson)

    assert sorted(LocationLine.objects.values_list("source_id", flat=True)) == before
    assert SourceRefreshRun.objects.filter(status=RunStatus.FAILED).count() == 5
