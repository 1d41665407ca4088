"""CadGIS connector: the real WFS GML parcels (Lambert 2008) and shapefile zips built here (Lambert 72)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from django.contrib.gis.geos import MultiPolygon
from django.contrib.gis.geos import Polygon as GeosPolygon
from django.db import connection
from pyproj import Transformer
from shapely.geometry import Polygon, box

from opendata.connectors import cadastre
from opendata.connectors.base import SourceError
from opendata.models import Building, Municipality, Parcel, RunStatus, SourceRefreshRun
from opendata.refresh import refresh

pytestmark = pytest.mark.django_db(transaction=True)

GML = Path("belgium/cadgis/bpn_capa_13_parcels.gml")
GML_KEYS = {
    "24434F0205/00H000",
    "24434F0205/00M000",
    "24434F0208/00A002",
    "24434F0208/00E002",
    "24434F0208/00G002",
    "24434F0208/00H002",
    "24434F0208/00L002",
    "24434F0208/00S000",
    "24434F0208/00Y000",
    "24434F0211/00K008",
    "24434F0211/00K009",
    "24434F0211/00W006",
    "24434F0211/00Z007",
}


def test_real_gml_parcels_load_with_keys_and_lambert72_coordinates(shared_data) -> None:
    run = refresh("cadgis", file=shared_data / GML)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.rows_read, run.rows_loaded, run.counts["parcels_inserted"]) == (13, 13, 13)
    assert run.vintage == "2018-10-06"  # the latest LastUpdDTS
    assert set(Parcel.objects.filter(source="cadgis").values_list("capakey", flat=True)) == GML_KEYS

    parcel = Parcel.objects.get(capakey="24434F0211/00W006")
    assert parcel.source_id == "8603018" and str(parcel.source_updated) == "2018-10-06"
    # First vertex in the file: 672958.0986 671539.9284 (EPSG:3812). Independently transformed:
    x, y = Transformer.from_crs(3812, 31370, always_xy=True).transform(672958.0986, 671539.9284)
    first = parcel.geometry[0].exterior_ring[0]
    assert abs(first[0] - x) < 1 and abs(first[1] - y) < 1
    assert 172_900 < first[0] < 173_000 and 171_500 < first[1] < 171_600  # Leuven, in Lambert 72 metres
    with connection.cursor() as cursor:  # and PostGIS's own transformation agrees within a metre
        cursor.execute(
            "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID("
            "ST_MakePoint(672958.0986, 671539.9284), 3812), 31370) p"
        )
        px, py = cursor.fetchone()
    assert abs(first[0] - px) < 1 and abs(first[1] - py) < 1
    assert parcel.area_m2 == pytest.approx(728.53, abs=0.5)  # SHAPE.STArea__ in the file: 728.525768

    again = refresh("cadgis", file=shared_data / GML)
    assert again.status == RunStatus.SKIPPED


def _frame(rows: list[dict], crs: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=f"EPSG:{crs}")


def _parcels(division: str = "34002", dx: float = 0.0, crs: int = 31370, y: float = 0.0) -> list[dict]:
    x0, y0 = (70_000.0, 170_000.0 + y) if crs == 31370 else (570_000.0, 670_000.0 + y)
    rows = []
    for i in range(6):
        rows.append(
            {
                "RecId": 100 + i,
                "CaPaKey": f"{division}A{i + 1:04d}/00_000",
                "Type": "PR",
                "UpdDate": "15/01/2024",
                "geometry": box(x0 + 20 * i + dx, y0, x0 + 20 * (i + 1), y0 + 30),
            }
        )
    return rows


def _buildings(crs: int = 31370) -> list[dict]:
    x0, y0 = (70_000.0, 170_000.0) if crs == 31370 else (570_000.0, 670_000.0)
    # Three terraced houses sharing walls (on parcels 1-3), one detached house on parcel 5.
    houses = [box(x0 + 5 + 10 * i, y0 + 5, x0 + 15 + 10 * i, y0 + 15) for i in range(3)]
    houses.append(box(x0 + 85, y0 + 5, x0 + 95, y0 + 15))
    return [{"RecId": 900 + i, "Type": "CL", "geometry": g} for i, g in enumerate(houses)]


def _zip(
    tmp_path: Path,
    name: str,
    parcels: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    prj: bool = True,
) -> Path:
    folder = tmp_path / name.removesuffix(".zip")
    folder.mkdir()
    parcels.to_file(folder / "Bpn_CaPa.shp", engine="pyogrio")
    if buildings is not None:
        buildings.to_file(folder / "Bpn_CaBu.shp", engine="pyogrio")
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.iterdir()):
            if prj or file.suffix != ".prj":
                archive.write(file, f"{name.removesuffix('.zip')}/{file.name}")
    return path


ZIP_NAME = "34002_Anzegem_PP-FiscSit_Lb72_01012024.zip"


def test_shapefile_zip_loads_parcels_and_typed_buildings_then_upserts(tmp_path) -> None:
    Municipality.objects.create(nis_code="34002", name_nl="Anzegem", valid_from="2019-01-01", source="test")
    other = _zip(
        tmp_path, "99999_Other_PP-FiscSit_Lb72_01012024.zip", _frame(_parcels("99999", y=1000), 31370)
    )
    refresh("cadgis", file=other)
    first = _zip(tmp_path, ZIP_NAME, _frame(_parcels(), 31370), _frame(_buildings(), 31370))
    run = refresh("cadgis", file=first)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.vintage == "2024-01-01"
    assert run.counts["parcels_inserted"] == 6 and run.counts["buildings_inserted"] == 4
    parcel = Parcel.objects.get(capakey="34002A0001/00_000")
    assert parcel.municipality is not None and parcel.municipality.nis_code == "34002"
    assert (parcel.parcel_type, str(parcel.source_updated), parcel.area_m2) == ("PR", "2024-01-15", 600.0)
    types = dict(Building.objects.filter(source="cadgis").values_list("source_id", "building_type"))
    assert types == {"900": "half_open", "901": "closed", "902": "half_open", "903": "open"}
    links = dict(Building.objects.filter(source="cadgis").values_list("source_id", "parcel__capakey"))
    # House 901 spans x 15-25: 5 m on parcel 1, 5 m on parcel 2; ties go to the lower id, parcel 1.
    assert links["900"] == "34002A0001/00_000" and links["903"] == "34002A0005/00_000"
    kept = Parcel.objects.get(capakey="34002A0003/00_000").pk

    changed = _parcels()
    changed[1]["geometry"] = box(70_020, 170_000, 70_040, 170_035)  # parcel 2 grows
    del changed[5]  # parcel 6 is gone
    (tmp_path / "2").mkdir()
    second = _zip(tmp_path / "2", ZIP_NAME, _frame(changed, 31370), _frame(_buildings()[:3], 31370))
    run = refresh("cadgis", file=second)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (
        run.counts["parcels_updated"],
        run.counts["parcels_deleted"],
        run.counts["parcels_unchanged"],
    ) == (1, 1, 4)
    assert run.counts["buildings_deleted"] == 1 and run.counts["buildings_unchanged"] == 3
    assert Parcel.objects.get(capakey="34002A0003/00_000").pk == kept
    assert not Parcel.objects.filter(capakey="34002A0006/00_000").exists()
    assert Parcel.objects.filter(capakey__startswith="99999").count() == 6  # another division: untouched
    # Touched: parcel 2 (new outline) and parcel 5 (its house went); parcel 6 is gone.
    assert run.counts["parcels_touched"] == 2


def test_lambert_2008_zip_is_transformed_and_bad_rows_are_rejected(tmp_path) -> None:
    rows = _parcels(crs=3812) * 1
    rows += [dict(rows[0], RecId=7, CaPaKey=f"34002A{i:04d}/00_000") for i in range(10, 30)]
    for i, row in enumerate(rows[6:]):
        row["geometry"] = box(571_000 + 10 * i, 671_000, 571_010 + 10 * i, 671_010)
    rows[6]["geometry"] = Polygon(
        [(571_000, 671_000), (571_010, 671_010), (571_010, 671_000), (571_000, 671_010)]
    )
    rows[7]["CaPaKey"] = "not a key"
    run = refresh("cadgis", file=_zip(tmp_path, "34002_A_Lb08.zip", _frame(rows, 3812)))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.rows_read == 26 and run.rows_rejected == 1
    assert "not a CaPaKey" in run.rejections[0]["reason"] and run.rejections[0]["row"] == "8 (7)"
    assert run.counts["parcels_repaired"] == 1  # the bow tie, made valid
    bowtie = Parcel.objects.get(capakey="34002A0010/00_000")
    assert bowtie.geometry.valid and bowtie.area_m2 == pytest.approx(50)
    corner = Parcel.objects.get(capakey="34002A0001/00_000").geometry.extent
    x, y = Transformer.from_crs(3812, 31370, always_xy=True).transform(570_000, 670_000)
    assert abs(corner[0] - x) < 1 and abs(corner[1] - y) < 1


def _assert_refused(path: Path, message: str, before: list) -> None:
    with pytest.raises(SourceError, match=message):
        refresh("cadgis", file=path)
    run = SourceRefreshRun.objects.filter(source="cadgis").first()
    assert run is not None and run.status == RunStatus.FAILED and run.error
    assert sorted(Parcel.objects.values_list("capakey", "geometry")) == before


def test_bad_files_fail_the_run_and_keep_the_data(tmp_path) -> None:
    good = _zip(tmp_path, ZIP_NAME, _frame(_parcels(), 31370), _frame(_buildings(), 31370))
    assert refresh("cadgis", file=good).status == RunStatus.SUCCEEDED
    before = sorted(Parcel.objects.values_list("capakey", "geometry"))
    (tmp_path / "a").mkdir()
    no_prj = _zip(tmp_path / "a", "34002_NoPrj.zip", _frame(_parcels(dx=1), 31370), prj=False)
    _assert_refused(no_prj, r"has no \.prj file", before)

    truncated = tmp_path / "34002_Truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _assert_refused(truncated, "truncated", before)

    (tmp_path / "b").mkdir()
    wgs84 = [
        dict(r, geometry=box(3.4 + 0.001 * i, 50.8, 3.401 + 0.001 * i, 50.801))
        for i, r in enumerate(_parcels())
    ]
    wrong_crs = _zip(tmp_path / "b", "34002_Wgs84.zip", _frame(wgs84, 31370))
    _assert_refused(wrong_crs, "fall outside Belgium", before)

    (tmp_path / "c").mkdir()
    renamed = [{("ParcelKey" if k == "CaPaKey" else k): v for k, v in r.items()} for r in _parcels()]
    no_key = _zip(tmp_path / "c", "34002_NoKey.zip", _frame(renamed, 31370))
    _assert_refused(no_key, "has no CaPaKey column", before)

    assert Building.objects.filter(source="cadgis").count() == 4
    assert SourceRefreshRun.objects.filter(source="cadgis", status=RunStatus.FAILED).count() == 4


def _parcel_schema() -> tuple[list, list]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'opendata_parcel' ORDER BY 1")
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
            "WHERE conrelid = 'opendata_parcel'::regclass ORDER BY 1"
        )
        return indexes, cursor.fetchall()


def test_bulk_first_load_copies_straight_in_then_reloads_keep_ids(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cadastre, "BULK_ROWS", 1)  # these six parcels count as a bulk load
    Municipality.objects.create(nis_code="34002", name_nl="Anzegem", valid_from="2019-01-01", source="test")
    schema = _parcel_schema()
    path = _zip(tmp_path, ZIP_NAME, _frame(_parcels(), 31370), _frame(_buildings(), 31370))

    def broken(*args, **kwargs):
        raise RuntimeError("buildings failed")

    with monkeypatch.context() as patch:  # a failure after the parcels are in changes nothing
        patch.setattr(cadastre, "swap_buildings", broken)
        with pytest.raises(RuntimeError):
            refresh("cadgis", file=path)
    assert not Parcel.objects.exists() and _parcel_schema() == schema

    run = refresh("cadgis", file=path, force=True)  # nothing in division 34002 yet: the COPY path
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.counts["parcels_inserted"] == 6 and run.counts["parcels_touched"] == 6
    assert _parcel_schema() == schema  # indexes and foreign keys back, validated
    parcel = Parcel.objects.get(capakey="34002A0001/00_000")
    assert parcel.municipality is not None and parcel.municipality.nis_code == "34002"
    assert (parcel.parcel_type, str(parcel.source_updated), parcel.area_m2) == ("PR", "2024-01-15", 600.0)
    links = dict(Building.objects.filter(source="cadgis").values_list("source_id", "parcel__capakey"))
    assert links["903"] == "34002A0005/00_000"
    ids = dict(Parcel.objects.values_list("capakey", "pk"))

    changed = _parcels()
    changed[1]["geometry"] = box(70_020, 170_000, 70_040, 170_035)
    (tmp_path / "2").mkdir()
    again = refresh("cadgis", file=_zip(tmp_path / "2", ZIP_NAME, _frame(changed, 31370)))
    assert again.status == RunStatus.SUCCEEDED, again.error
    assert (again.counts["parcels_updated"], again.counts["parcels_unchanged"]) == (1, 5)
    assert dict(Parcel.objects.values_list("capakey", "pk")) == ids  # the staged swap keeps ids
    assert _parcel_schema() == schema


def test_bulk_load_takes_over_a_parcel_another_source_has_in_its_divisions(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cadastre, "BULK_ROWS", 1)
    outline = MultiPolygon(GeosPolygon.from_bbox((70_000, 170_000, 70_020, 170_030)), srid=31370)
    other = Parcel.objects.create(capakey="34002A0001/00_000", geometry=outline, area_m2=600, source="demo")
    run = refresh("cadgis", file=_zip(tmp_path, ZIP_NAME, _frame(_parcels(), 31370)))
    assert run.status == RunStatus.SUCCEEDED, run.error
    matched = run.counts["parcels_unchanged"] + run.counts["parcels_updated"]
    assert (run.counts["parcels_inserted"], matched) == (5, 1)
    assert Parcel.objects.get(capakey="34002A0001/00_000").pk == other.pk  # matched on its key, not copied


def test_parcels_of_an_unknown_municipality_take_the_boundary_holding_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cadastre, "BULK_ROWS", 1)
    area = MultiPolygon(GeosPolygon.from_bbox((69_990, 169_990, 70_045, 170_040)), srid=31370)
    town = Municipality.objects.create(
        nis_code="11111", name_nl="Grensdorp", valid_from="2019-01-01", source="test", geometry=area
    )
    name = "99999_Other_PP-FiscSit_Lb72_01012024.zip"  # no municipality 99999: found by its boundary
    run = refresh("cadgis", file=_zip(tmp_path, name, _frame(_parcels("99999"), 31370)))
    assert run.status == RunStatus.SUCCEEDED, run.error
    found = dict(Parcel.objects.values_list("capakey", "municipality_id"))
    assert found["99999A0001/00_000"] == town.pk and found["99999A0002/00_000"] == town.pk
    assert found["99999A0004/00_000"] is None  # outside the boundary

    def staged(*args, **kwargs):
        raise AssertionError("parcels far from every boundary need no lookup: the direct COPY path")

    monkeypatch.setattr(cadastre, "stage_create", staged)
    (tmp_path / "far").mkdir()
    far_zip = _zip(
        tmp_path / "far", "99998_Far_PP-FiscSit_Lb72_01012024.zip", _frame(_parcels("99998", y=50_000), 31370)
    )
    far = refresh("cadgis", file=far_zip)
    assert far.status == RunStatus.SUCCEEDED, far.error
    assert far.counts["parcels_inserted"] == 6
    assert not Parcel.objects.filter(capakey__startswith="99998", municipality__isnull=False).exists()


def test_live_url_from_options() -> None:
    from opendata.connectors.cadgis import CadGISConnector

    url = CadGISConnector().live_url({"nis": "44021", "year": "2025"})
    assert url == "https://eservices.minfin.fgov.be/myminfin-rest/cadastral-plan/cadastralPlan/2025/44021/72"
    with pytest.raises(SourceError, match="5-digit NIS"):
        CadGISConnector().live_url({"nis": "Gent"})
