"""GRB connector: the 321 real Adp parcels of Leuven, a changed file upserted, Gbg buildings, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opendata.connectors.base import SourceError
from opendata.connectors.grb import GRBConnector
from opendata.models import Building, Municipality, Parcel, RunStatus, SourceRefreshRun
from opendata.refresh import refresh

pytestmark = pytest.mark.django_db(transaction=True)

ADP = Path("belgium/grb/adp_leuven_321_parcels.geojson")


def test_real_leuven_parcels_load_then_skip_then_upsert(shared_data, tmp_path) -> None:
    Municipality.objects.create(nis_code="24062", name_nl="Leuven", valid_from="2019-01-01", source="test")
    run = refresh("grb", file=shared_data / ADP)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.rows_read, run.rows_loaded, run.counts["parcels_inserted"]) == (321, 321, 321)
    assert Parcel.objects.filter(source="grb").count() == 321
    parcel = Parcel.objects.get(capakey="24432H0037/00M016")  # the first feature of the file
    assert (parcel.source_id, str(parcel.source_updated)) == ("3619774", "2018-12-01")
    assert parcel.municipality is not None and parcel.municipality.nis_code == "24062"
    # First vertex as written in the file (EPSG:31370, stored as is).
    assert parcel.geometry[0].exterior_ring[0] == pytest.approx((171778.79554631, 171796.04172135), abs=1e-6)
    assert Parcel.objects.filter(source="grb", municipality__nis_code="24062").count() == 321
    assert refresh("grb", file=shared_data / ADP).status == RunStatus.SKIPPED

    data = json.loads((shared_data / ADP).read_text(encoding="utf-8"))
    gone = data["features"].pop()["properties"]["CAPAKEY"]
    ring = data["features"][0]["geometry"]["coordinates"][0]
    ring[0][0] += 1.0
    ring[-1][0] += 1.0  # the first parcel's outline moves by a metre
    kept = parcel.pk
    changed = tmp_path / "adp.geojson"
    changed.write_text(json.dumps(data), encoding="utf-8")
    run = refresh("grb", file=changed)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (
        run.counts["parcels_updated"],
        run.counts["parcels_deleted"],
        run.counts["parcels_unchanged"],
    ) == (
        1,
        1,
        319,
    )
    assert Parcel.objects.get(capakey="24432H0037/00M016").pk == kept
    assert not Parcel.objects.filter(capakey=gone).exists()


def _feature(oidn: int, ring: list[tuple[float, float]], **props: object) -> dict:
    return {
        "type": "Feature",
        "properties": {"OIDN": oidn, **props},
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
    }


def _square(x: float, y: float, size: float) -> list[tuple[float, float]]:
    return [(x, y), (x + size, y), (x + size, y + size), (x, y + size), (x, y)]


def _collection(features: list[dict], crs: str = "urn:ogc:def:crs:EPSG::31370") -> str:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": crs}},
            "features": features,
        }
    )


def test_buildings_link_to_parcels_and_get_types(tmp_path) -> None:
    parcels = [
        _feature(
            i, _square(150_000 + 20 * i, 170_000, 20), CAPAKEY=f"24062A{i + 1:04d}/00_000", NISCODE="24062"
        )
        for i in range(4)
    ]
    refresh("grb", file=_write(tmp_path / "adp.geojson", _collection(parcels)))
    buildings = [
        _feature(10, _square(150_005, 170_005, 10), LBLTYPE="hoofdgebouw"),
        _feature(11, _square(150_015, 170_005, 10), LBLTYPE="hoofdgebouw"),
        _feature(12, _square(150_065, 170_005, 8), LBLTYPE="bijgebouw"),
    ]
    run = refresh("grb", file=_write(tmp_path / "gbg.geojson", _collection(buildings)))
    assert run.status == RunStatus.SUCCEEDED, run.error
    rows = {
        b.source_id: (b.building_type, b.parcel.capakey if b.parcel else None, b.kind)
        for b in Building.objects.filter(source="grb").select_related("parcel")
    }
    assert rows == {
        "10": ("half_open", "24062A0001/00_000", "hoofdgebouw"),
        "11": (
            "half_open",
            "24062A0001/00_000",
            "hoofdgebouw",
        ),  # 5 m on parcel 1 and 5 m on 2: tie -> lower id
        "12": ("open", "24062A0004/00_000", "bijgebouw"),
    }
    assert run.counts["parcels_touched"] == 2


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_files_fail_and_keep_the_data(tmp_path) -> None:
    parcels = [
        _feature(i, _square(150_000 + 20 * i, 170_000, 20), CAPAKEY=f"24062A{i + 1:04d}/00_000")
        for i in range(3)
    ]
    good = _write(tmp_path / "adp.geojson", _collection(parcels))
    assert refresh("grb", file=good).status == RunStatus.SUCCEEDED
    before = sorted(Parcel.objects.values_list("capakey", "geometry"))

    truncated = _write(tmp_path / "cut.geojson", good.read_text()[:300])
    with pytest.raises(SourceError, match="cannot be read"):
        refresh("grb", file=truncated)
    degrees = [
        _feature(i, _square(4.7 + 0.001 * i, 50.88, 0.0005), CAPAKEY=f"24062A{i + 1:04d}/00_000")
        for i in range(3)
    ]
    with pytest.raises(SourceError, match="outside Belgium"):
        refresh("grb", file=_write(tmp_path / "wgs84.geojson", _collection(degrees)))
    no_key = [
        _feature(i, _square(150_000 + 20 * i, 170_000, 20), PERCEEL=f"24062A{i + 1:04d}/00_000")
        for i in range(3)
    ]
    with pytest.raises(SourceError, match="no CAPAKEY column"):
        refresh("grb", file=_write(tmp_path / "nokey.geojson", _collection(no_key)))

    assert sorted(Parcel.objects.values_list("capakey", "geometry")) == before
    failed = SourceRefreshRun.objects.filter(source="grb", status=RunStatus.FAILED)
    assert failed.count() == 3 and all(run.error for run in failed)


def test_live_url_needs_an_area() -> None:
    assert GRBConnector().live_url({}) is None
    url = GRBConnector().live_url({"bbox": "171000,171000,172000,172000", "collection": "gbg"})
    assert url is not None and url.startswith(
        "https://geo.api.vlaanderen.be/GRB/ogc/features/v1/collections/GBG/items?"
    )
    assert "bbox=171000%2C171000%2C172000%2C172000" in url
    with pytest.raises(SourceError, match="bbox"):
        GRBConnector().live_url({"bbox": "Leuven"})
