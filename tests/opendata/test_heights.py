"""Heights connector: small DSM/DTM GeoTIFFs written here over buildings made here, checked by hand."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from django.contrib.gis.geos import MultiPolygon, Polygon

from opendata.connectors.base import SourceError
from opendata.connectors.heights import storeys_for
from opendata.models import Building, Parcel, RunStatus, SourceRefreshRun
from opendata.refresh import refresh

db = pytest.mark.django_db(transaction=True)

X0, Y0 = 150_000.0, 170_100.0  # top-left corner of the 100 x 100 m rasters (1 m pixels)
NODATA = -9999.0


def _square(x: float, y: float, w: float, h: float) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox((x, y, x + w, y + h)), srid=31370)


def _pixels(x: float, y: float, w: float, h: float) -> tuple[slice, slice]:
    """Rows and columns of the pixels inside a box in Lambert 72 (row 0 is the top, y = Y0)."""
    return slice(int(Y0 - (y + h)), int(Y0 - y)), slice(int(x - X0), int(x + w - X0))


def _rasters(folder: Path, *, crs: str = "EPSG:31370", dtm_shift: float = 0.0) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    terrain = np.full((100, 100), 20.0, dtype="float32")
    terrain[:, 50:] = 22.0  # a step in the ground: heights are relative to the terrain under each house
    surface = terrain.copy()
    surface[_pixels(150_010, 170_010, 10, 10)] += 6.0  # A: flat roof, 6 m
    rows, cols = _pixels(150_060, 170_010, 10, 10)  # B: split roof, 9 m on the left half, 7 m on the right
    surface[rows, cols.start : cols.start + 5] += 9.0
    surface[rows, cols.start + 5 : cols.stop] += 7.0
    surface[_pixels(150_010, 170_060, 10, 10)] += 4.0  # C: 4 m, its top half without DSM data
    surface[_pixels(150_010, 170_065, 10, 5)] = NODATA
    surface[_pixels(150_060, 170_060, 10, 10)] = 21.0  # D: 1 m below the terrain of 22 m: a pit, height 0
    profile = {
        "driver": "GTiff",
        "height": 100,
        "width": 100,
        "count": 1,
        "dtype": "float32",
        "crs": crs,
        "transform": Affine(1.0, 0.0, X0, 0.0, -1.0, Y0),
        "nodata": NODATA,
    }
    paths = []
    for name, data, shift in (("dsm.tif", surface, 0.0), ("dtm.tif", terrain, dtm_shift)):
        with rasterio.open(
            folder / name, "w", **dict(profile, transform=Affine(1.0, 0.0, X0 + shift, 0.0, -1.0, Y0))
        ) as out:
            out.write(data, 1)
        paths.append(folder / name)
    return paths[0], paths[1]


@pytest.fixture
def buildings() -> dict[str, Building]:
    parcel = Parcel.objects.create(
        capakey="24062A0001/00_000",
        geometry=_square(150_000, 170_000, 100, 100),
        area_m2=10_000,
        source="test",
    )
    made = {
        "A": _square(150_010, 170_010, 10, 10),
        "B": _square(150_060, 170_010, 10, 10),
        "C": _square(150_010, 170_060, 10, 10),
        "D": _square(150_060, 170_060, 10, 10),
        "far": _square(160_000, 170_000, 10, 10),  # off the rasters
    }
    return {
        key: Building.objects.create(footprint=geom, parcel=parcel, source="test", source_id=key)
        for key, geom in made.items()
    }


@db
def test_heights_from_a_folder_then_skip_nothing_changed(buildings, tmp_path) -> None:
    _rasters(tmp_path / "rasters")
    run = refresh("heights", file=tmp_path / "rasters")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.counts["buildings_on_rasters"] == 4 and run.counts["buildings_measured"] == 4
    got = {b.source_id: (b.height_m, b.storeys, b.volume_m3) for b in Building.objects.all()}
    assert got == {
        "A": (6.0, 2, 600.0),  # storeys: floor((6 - 1) / 3 + 0.5) = 2
        "B": (8.0, 2, 800.0),  # median of 50 pixels at 9 m and 50 at 7 m
        "C": (4.0, 1, 400.0),  # only the 50 pixels with data count
        "D": (0.0, None, 0.0),  # below ground counts as 0: no storeys
        "far": (None, None, None),
    }
    assert Building.objects.get(source_id="A").height_source == "DSM-DTM median, dsm.tif"
    assert run.counts["parcels_touched"] == 1

    again = refresh("heights", file=tmp_path / "rasters", force=True)
    assert again.counts["buildings_changed"] == 0 and again.counts["parcels_touched"] == 0


@db
def test_heights_from_a_zip_and_from_options(buildings, tmp_path) -> None:
    dsm, dtm = _rasters(tmp_path / "r")
    archive = tmp_path / "dhmv.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.write(dsm, "DHMVIIDSMRAS1m_k31.tif")
        out.write(dtm, "DHMVIIDTMRAS1m_k31.tif")
    run = refresh("heights", file=archive)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert Building.objects.get(source_id="B").height_m == 8.0

    Building.objects.update(height_m=None, storeys=None, volume_m3=None)
    run = refresh("heights", file=dsm, options={"dtm": str(dtm)})
    assert run.status == RunStatus.SUCCEEDED and Building.objects.get(source_id="A").height_m == 6.0


@db
def test_bad_rasters_fail_and_keep_the_heights(buildings, tmp_path) -> None:
    refresh("heights", file=_rasters(tmp_path / "good")[0].parent)
    before = sorted(Building.objects.values_list("source_id", "height_m", "storeys"))
    only_dsm = tmp_path / "only"
    only_dsm.mkdir()
    (only_dsm / "dsm.tif").write_bytes((tmp_path / "good" / "dsm.tif").read_bytes())
    with pytest.raises(SourceError, match="No DTM raster"):
        refresh("heights", file=only_dsm)
    with pytest.raises(SourceError, match="same grid"):
        refresh("heights", file=_rasters(tmp_path / "shifted", dtm_shift=0.5)[0].parent)
    with pytest.raises(SourceError, match="expected Belgian Lambert 72"):
        refresh("heights", file=_rasters(tmp_path / "wgs84", crs="EPSG:4326")[0].parent)
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    with pytest.raises(SourceError, match="truncated"):
        refresh("heights", file=truncated)
    assert sorted(Building.objects.values_list("source_id", "height_m", "storeys")) == before
    assert SourceRefreshRun.objects.filter(source="heights", status=RunStatus.FAILED).count() == 4


def test_storeys_rule() -> None:
    heights = [1.5, 2.0, 3.0, 5.4, 5.5, 8.5, 11.0, 12.0]
    assert [storeys_for(h) for h in heights] == [None, 1, 1, 1, 2, 3, 3, 4]
