"""BeSt Address CSV: read by column name (both Lambert spellings), x = 0 fallback, parcel links, failures."""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from pathlib import Path

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from pyproj import Transformer

from opendata.capakey import normalise_capakey
from opendata.connectors.base import SourceError
from opendata.models import Address, Municipality, Parcel, RunStatus, SourceRefreshRun
from opendata.refresh import refresh

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "best" / "openaddress-bevlg.csv"
KORENMARKT = (104702.41, 194076.88)  # address 2000041537, Korenmarkt 1, Gent


def gent() -> Municipality:
    return Municipality.objects.create(
        nis_code="44021", name_nl="Gent", valid_from=datetime.date(1977, 1, 1), source="test"
    )


def rows() -> list[dict[str, str]]:
    with open(FIXTURE, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, records: list[dict[str, str]], *, zipped: bool = False) -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    if zipped:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("openaddress-bevlg.csv", text.getvalue())
    else:
        path.write_text(text.getvalue(), encoding="utf-8")
    return path


def test_fixture_loads_links_parcels_and_creates_municipalities() -> None:
    gent()
    square = Polygon.from_bbox(
        (KORENMARKT[0] - 10, KORENMARKT[1] - 10, KORENMARKT[0] + 10, KORENMARKT[1] + 10)
    )
    parcel = Parcel.objects.create(
        capakey=normalise_capakey("44021A0001/00_000"),
        geometry=MultiPolygon(square, srid=31370),
        area_m2=400.0,
        source="test",
    )
    run = refresh("best", file=FIXTURE)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.rows_read, run.rows_loaded, run.rows_rejected) == (20, 19, 1)
    assert "postcode '9OOO'" in run.rejections[0]["reason"]
    assert run.counts["lat_lon_fallback"] == 1 and run.counts["municipalities_created"] == 1
    assert run.counts["parcels_touched"] == 1

    leuven = Municipality.objects.get(nis_code="24062")  # created from the BeSt names
    assert (leuven.name_nl, leuven.name_fr, leuven.name_de, leuven.source) == (
        "Leuven",
        "Louvain",
        "Löwen",
        "best",
    )
    korenmarkt = Address.objects.get(source="best", source_id="2000041537")
    assert korenmarkt.parcel_id == parcel.pk and korenmarkt.municipality.nis_code == "44021"
    assert korenmarkt.label() == "Korenmarkt 1, 9000 Gent"
    kouter = Address.objects.get(source_id="2000043311")
    assert (kouter.house_number, kouter.box) == ("29", "3")
    fallback = Address.objects.get(source_id="2000046219")  # x = 0: the point comes from lat/lon
    assert fallback.point.distance(Point(104632.45, 193489.51, srid=31370)) < 1.0
    assert Address.objects.filter(parcel__isnull=True).count() == 18

    assert refresh("best", file=FIXTURE).status == RunStatus.SKIPPED


def test_lambert_2008_columns_zip_and_changed_file(tmp_path: Path) -> None:
    gent()
    to_3812 = Transformer.from_crs(31370, 3812, always_xy=True)
    records = []
    for row in rows():
        x, y = float(row.pop("EPSG:31370_x")), float(row.pop("EPSG:31370_y"))
        x2, y2 = to_3812.transform(x, y) if x else (0.0, 0.0)
        records.append({"EPSG:3812_x": f"{x2:.2f}", "EPSG:3812_y": f"{y2:.2f}", **row})
    run = refresh("best", file=write(tmp_path / "openaddress-bevlg.zip", records, zipped=True))
    assert run.status == RunStatus.SUCCEEDED and run.rows_loaded == 19
    korenmarkt = Address.objects.get(source_id="2000041537")
    assert korenmarkt.point.distance(Point(*KORENMARKT, srid=31370)) < 1.0  # within a metre
    kept = korenmarkt.pk

    # Korenlei 10 is gone (and the bad row too: one bad row in 19 would be more than 5%).
    changed = [r for r in records if r["address_id"] not in {"2000045107", "2000049999"}]
    next(r for r in changed if r["address_id"] == "2000041621")["house_number"] = "12A"
    run = refresh("best", file=write(tmp_path / "changed.csv", changed))
    assert (run.counts["addresses_updated"], run.counts["addresses_deleted"]) == (1, 1)
    assert Address.objects.get(source_id="2000041621").house_number == "12A"
    assert Address.objects.get(source_id="2000041537").pk == kept


def test_missing_column_or_wrong_crs_fails_and_keeps_data(tmp_path: Path) -> None:
    gent()
    refresh("best", file=FIXTURE)
    before = sorted(Address.objects.values_list("source_id", "house_number"))

    no_postcode = [{k: v for k, v in r.items() if k != "postcode"} for r in rows()]
    with pytest.raises(SourceError, match="lacks the BeSt column"):
        refresh("best", file=write(tmp_path / "no_postcode.csv", no_postcode))
    to_3812 = Transformer.from_crs(31370, 3812, always_xy=True)
    wrong = []  # Lambert 2008 values under the Lambert 72 headers
    for row in rows():
        x, y = float(row["EPSG:31370_x"]), float(row["EPSG:31370_y"])
        if x:
            row["EPSG:31370_x"], row["EPSG:31370_y"] = (f"{v:.2f}" for v in to_3812.transform(x, y))
        wrong.append(row)
    with pytest.raises(SourceError, match="another coordinate system"):
        refresh("best", file=write(tmp_path / "wrong_crs.csv", wrong))

    assert sorted(Address.objects.values_list("source_id", "house_number")) == before
    failed = SourceRefreshRun.objects.filter(source="best", status=RunStatus.FAILED)
    assert failed.count() == 2 and all(run.error and run.finished_at for run in failed)


def test_rows_without_any_coordinate_are_rejected_and_retired_ones_skipped(tmp_path: Path) -> None:
    gent()
    records = [r for r in rows() if r["address_id"] != "2000049999"]
    records += [{**r, "address_id": r["address_id"] + "1"} for r in records]  # 36 good rows
    records[0].update({"EPSG:31370_x": "0", "EPSG:31370_y": "0", "EPSG:4326_lat": "", "EPSG:4326_lon": ""})
    records[1]["status"] = "retired"
    run = refresh("best", file=write(tmp_path / "openaddress-bevlg.csv", records))
    assert run.status == RunStatus.SUCCEEDED
    assert run.counts["retired_skipped"] == 1 and run.rows_rejected == 1
    assert run.rejections[0] == {"row": 2, "reason": "address 2000041537: x is 0 and lat/lon are missing too"}
    assert not Address.objects.filter(source_id__in=["2000041537", "2000041621"]).exists()
