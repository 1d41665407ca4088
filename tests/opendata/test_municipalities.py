"""Municipalities after the 2025 mergers and the old-code crosswalk: real files, tiny files, failures."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import box

from opendata.connectors.base import SourceError
from opendata.connectors.mergers import FORMER_CODES, MERGERS_2025, retired_codes
from opendata.models import Municipality, MunicipalityCrosswalk, RunStatus, SourceRefreshRun
from opendata.refresh import refresh

pytestmark = pytest.mark.django_db

STATBEL = Path("belgium/statbel")
SHAPEFILE_2025 = STATBEL / "municipalities_2025_flanders_brussels_31370.shp.zip"
TOPOJSON_581 = STATBEL / "municipalities_581_2020.topojson"

# Five municipalities as small squares (EPSG:31370), enough for the Statbel and BeSt tests.
TINY = [
    ("44021", "Gent", box(95_000, 185_000, 115_000, 200_000)),
    ("44083", "Deinze", box(85_000, 185_000, 95_000, 200_000)),
    ("44088", "Merelbeke-Melle", box(105_000, 180_000, 115_000, 185_000)),
    ("11001", "Aartselaar", box(145_000, 195_000, 150_000, 200_000)),
    ("24062", "Leuven", box(168_000, 170_000, 178_000, 180_000)),
]


def shapefile_zip(
    folder: Path,
    rows: list[tuple[str, str, object]],
    *,
    name: str = "gemeente",
    prj: bool = True,
    crs: int = 31370,
) -> Path:
    """A zipped shapefile with fields geoitem, naam (as the 2025 Flemish file); without .prj if asked."""
    frame = gpd.GeoDataFrame(
        {"geoitem": [r[0] for r in rows], "naam": [r[1] for r in rows]},
        geometry=[r[2] for r in rows],
        crs=crs,
    )
    shp_dir = folder / f"{name}_shp"
    shp_dir.mkdir(parents=True, exist_ok=True)
    frame.to_file(shp_dir / f"{name}.shp", engine="pyogrio")
    path = folder / f"{name}.shp.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for part in sorted(shp_dir.iterdir()):
            if prj or part.suffix != ".prj":
                archive.write(part, part.name)
    return path


def load_tiny_municipalities(folder: Path) -> None:
    """Load :data:`TINY` through the connector (which also builds the crosswalk)."""
    run = refresh("municipalities", file=shapefile_zip(folder, TINY, name="tiny"))
    assert run.status == RunStatus.SUCCEEDED, run.error


def test_real_2025_boundaries_load_with_crosswalk(shared_data: Path) -> None:
    run = refresh("municipalities", file=shared_data / SHAPEFILE_2025)
    assert run.status == RunStatus.SUCCEEDED
    assert run.rows_loaded == 304 and run.counts["municipalities_inserted"] == 304
    assert Municipality.objects.count() == 304

    gent = Municipality.objects.get(nis_code="44021")
    assert gent.name_nl == "Gent" and gent.source == "municipalities"
    assert gent.geometry is not None and gent.geometry.srid == 31370
    assert 150 < gent.geometry.area / 1e6 < 165  # Gent is about 156 km2 (this file is simplified)
    assert Municipality.objects.get(nis_code="73111").name_fr == "Tongres-Looz"  # from the merger list

    crosswalk = dict(MunicipalityCrosswalk.objects.values_list("old_nis_code", "municipality__nis_code"))
    assert crosswalk["44040"] == "44088"  # Melle -> Merelbeke-Melle (2025)
    assert crosswalk["44049"] == "44083"  # Nevele -> Deinze (2019)
    assert crosswalk["11007"] == "11002"  # Borsbeek -> Antwerpen
    assert crosswalk["44021"] == "44021"  # unchanged codes map to themselves
    assert "23106" not in crosswalk  # a new code is not an old one

    again = refresh("municipalities", file=shared_data / SHAPEFILE_2025)
    assert again.status == RunStatus.SKIPPED


def test_the_581_topojson_completes_belgium_without_coarsening_flanders(shared_data: Path) -> None:
    refresh("municipalities", file=shared_data / SHAPEFILE_2025)
    gent_before = Municipality.objects.get(nis_code="44021")
    run = refresh("municipalities", file=shared_data / TOPOJSON_581)
    assert run.status == RunStatus.SUCCEEDED and run.rows_read == 581
    assert Municipality.objects.count() == 565  # 581 - 29 old codes + 13 new ones
    gent = Municipality.objects.get(nis_code="44021")
    assert gent.pk == gent_before.pk and gent.name_fr == "Gand"
    assert gent.geometry is not None and gent_before.geometry is not None
    assert gent.geometry.equals_exact(gent_before.geometry, 0.001)  # the precise boundary stays
    bastogne = Municipality.objects.get(nis_code="82039")  # Bastogne + Bertogne, dissolved
    assert (bastogne.name_nl, bastogne.name_fr) == ("Bastenaken", "Bastogne") and bastogne.geometry
    assert 250 < bastogne.geometry.area / 1e6 < 290
    old_codes = pyogrio.read_dataframe(
        shared_data / TOPOJSON_581, layer="municipalities", read_geometry=False
    )
    crosswalk = set(MunicipalityCrosswalk.objects.values_list("old_nis_code", flat=True))
    assert set(old_codes["nis"]) <= crosswalk  # every one of the 581 codes resolves


def test_merger_list_matches_the_real_files(shared_data: Path) -> None:
    new = set(pyogrio.read_dataframe(shared_data / SHAPEFILE_2025, read_geometry=False)["geoitem"])
    old = pyogrio.read_dataframe(shared_data / TOPOJSON_581, layer="municipalities", read_geometry=False)
    # Flanders and Brussels: NIS codes starting 1, 2 (but not 25, Walloon Brabant), 3, 4 or 7.
    old_north = {c for c in old["nis"] if c[0] in "12347" and not c.startswith("25")}
    merged_2025 = {c for c in retired_codes() if FORMER_CODES[c].valid_from.year == 2025}
    assert old_north - new == {c for c in merged_2025 if c[0] in "12347"}
    assert new - old_north == {m.new_code for m in MERGERS_2025 if m.new_code != "11002"} - {"82039"}


def test_changed_file_upserts_and_keeps_ids(tmp_path: Path) -> None:
    load_tiny_municipalities(tmp_path / "a")
    gent_id = Municipality.objects.get(nis_code="44021").pk
    changed = [(code, name.upper() if code == "44021" else name, geom) for code, name, geom in TINY]
    run = refresh("municipalities", file=shapefile_zip(tmp_path / "b", changed, name="tiny"))
    assert run.counts["municipalities_updated"] == 1 and run.counts["municipalities_unchanged"] == 4
    gent = Municipality.objects.get(nis_code="44021")
    assert gent.pk == gent_id and gent.name_nl == "GENT"
    assert (
        MunicipalityCrosswalk.objects.get(old_nis_code="44043").municipality_id
        == Municipality.objects.get(nis_code="44088").pk
    )


def test_shapefile_without_prj_or_in_the_wrong_crs_fails_and_keeps_data(tmp_path: Path) -> None:
    load_tiny_municipalities(tmp_path / "good")
    before = sorted(Municipality.objects.values_list("nis_code", "name_nl"))

    no_prj = shapefile_zip(tmp_path / "noprj", [("44021", "Gent", box(1, 1, 2, 2))], prj=False)
    with pytest.raises(SourceError, match=r"no \.prj file"):
        refresh("municipalities", file=no_prj)
    # Lon/lat coordinates in a file whose .prj says Lambert 72.
    wrong = shapefile_zip(tmp_path / "wrong", [("44021", "Gent", box(3.70, 51.03, 3.75, 51.07))])
    with pytest.raises(SourceError, match="outside Belgium"):
        refresh("municipalities", file=wrong)

    assert sorted(Municipality.objects.values_list("nis_code", "name_nl")) == before
    failed = SourceRefreshRun.objects.filter(source="municipalities", status=RunStatus.FAILED)
    assert failed.count() == 2 and all(".prj" in r.error or "outside Belgium" in r.error for r in failed)
