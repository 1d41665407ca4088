"""Building heights from a surface model (DSM) and a terrain model (DTM): height, storeys and volume.

- Source: Flanders' Digitaal Hoogtemodel Vlaanderen II (DHMV II), DSM and DTM rasters at 1 m
  (``https://www.vlaanderen.be/datavindplaats/catalogus/digitaal-hoogtemodel-vlaanderen-ii-dsm-raster-1-m``
  and ``...-dtm-raster-1-m``), or any pair of GeoTIFFs on the same grid (Wallonia, Brussels). Never the
  national NGI DTM 1 m: its licence forbids commercial use.
- Licence: Flemish free open data licence (credit "Bron: Digitaal Vlaanderen, DHMV II").
- Cadence: static surveys (Flanders 2013-2015, Wallonia 2013-2014, Brussels yearly); run yearly or on
  demand. There is no single live file: give ``--file`` (a folder or zip holding ``dsm*.tif`` and
  ``dtm*.tif``, or the DSM itself with ``--option dtm=PATH``), or set option ``url`` on the periodic task
  to a zip of both.
- CRS: EPSG:31370 (Lambert 72), heights in metres TAW; both rasters must share one grid.

Method, for every building (any source) whose footprint lies on the rasters: the pixels whose centre
falls inside the footprint (all pixels it touches for a footprint too small to hold a centre) give
``DSM - DTM``, ignoring no-data. The **median** of those differences is the height: robust to the
mixed pixels along the walls, to trees overhanging the roof and to a chimney, and for a pitched roof
it lands about halfway between eaves and ridge. Negative differences count as 0.

- ``storeys = max(1, floor((height - 1) / 3 + 0.5))``: one metre for the raised ground floor and the roof
  structure, three metres per storey; a median height under 2 m (a carport, a ruin, a building
  demolished since the survey) gets no storey count.
- ``volume_m3 = footprint area x height``.

Buildings the rasters do not cover are left as they were. The new values are written through a staging
table in one transaction; the parcels of the buildings whose height changed are reported as touched.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import shapely
from django.db import connection, transaction
from rasterio.features import rasterize
from rasterio.windows import Window

from opendata.connectors.base import (
    Connector,
    LoadResult,
    RunContext,
    SourceError,
    check_archive,
    register,
    stage_create,
)
from opendata.connectors.cadastre import copy_binary
from opendata.models import STORAGE_SRID

SOURCE = "heights"
TILE_M = 1_000.0  # buildings are grouped by the square kilometre their centroid lies in
MIN_HEIGHT_FOR_STOREYS_M = 2.0
STOREY_M = 3.0
GROUND_AND_ROOF_M = 1.0


def storeys_for(height_m: float) -> int | None:
    if height_m < MIN_HEIGHT_FOR_STOREYS_M:
        return None
    return max(1, math.floor((height_m - GROUND_AND_ROOF_M) / STOREY_M + 0.5))


@register
class HeightsConnector(Connector):
    name = SOURCE
    title = "Building heights from DSM - DTM rasters (DHMV II)"
    credit = "Bron: Digitaal Vlaanderen, DHMV II"
    schedule = ("0", "4", "*", "1", "3")  # yearly, 1 March 04:00, Brussels time (needs option url)
    suffix = ".zip"

    def live_url(self, options: dict[str, Any]) -> str | None:
        return str(options["url"]) if options.get("url") else None

    def load(self, path: Path, ctx: RunContext) -> LoadResult:
        dsm_path, dtm_path = find_rasters(path, ctx.options)
        with rasterio.open(dsm_path) as dsm, rasterio.open(dtm_path) as dtm:
            check_grids(dsm, dtm)
            bounds = dsm.bounds
            buildings = _buildings_within(bounds)
            with ctx.progress(total=len(buildings), label="building heights") as progress:
                heights = measure(dsm, dtm, buildings, progress=progress.advance)
            label = f"DSM-DTM median, {Path(str(dsm_path)).name}"[:100]
        touched = _write(heights, label)
        return LoadResult(
            rows_read=len(buildings),
            counts={
                "buildings_on_rasters": len(buildings),
                "buildings_measured": len(heights),
                "buildings_without_data": len(buildings) - len(heights),
                "buildings_changed": touched.changed,
            },
            vintage=str(ctx.options.get("year") or ""),
            touched_parcels=sorted(touched.parcels),
        )


def find_rasters(path: Path, options: dict[str, Any]) -> tuple[str, str]:
    """GDAL paths of the DSM and the DTM: from the options, else by name in the folder or zip."""
    dsm = str(options.get("dsm") or "")
    dtm = str(options.get("dtm") or "")
    if path.is_file() and path.suffix.lower() in {".tif", ".tiff"}:
        dsm = dsm or str(path)
    elif path.is_dir():
        names = [str(p.relative_to(path)) for p in sorted(path.rglob("*")) if p.is_file()]
        dsm = dsm or _pick(names, "dsm", str(path) + "/")
        dtm = dtm or _pick(names, "dtm", str(path) + "/")
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, path.name)
            names = archive.namelist()
        dsm = dsm or _pick(names, "dsm", f"/vsizip/{path}/")
        dtm = dtm or _pick(names, "dtm", f"/vsizip/{path}/")
    else:
        raise SourceError(
            f"{path.name} is neither a GeoTIFF, a folder nor a zip file (it may be truncated); give a folder "
            "or zip holding dsm.tif and dtm.tif. Nothing was changed."
        )
    missing = [name for name, value in (("DSM", dsm), ("DTM", dtm)) if not value]
    if missing:
        raise SourceError(
            f"No {' and no '.join(missing)} raster found in {path.name}: name the files dsm*.tif and "
            "dtm*.tif "
            "or give --option dsm=PATH --option dtm=PATH. Nothing was changed."
        )
    return dsm, dtm


def _pick(names: list[str], kind: str, prefix: str) -> str:
    for name in names:
        low = Path(name).name.lower()
        if kind in low and low.endswith((".tif", ".tiff")):
            return prefix + name
    return ""


def check_grids(dsm: Any, dtm: Any) -> None:
    for label, raster in (("DSM", dsm), ("DTM", dtm)):
        epsg = raster.crs.to_epsg() if raster.crs else None
        if epsg != STORAGE_SRID:
            raise SourceError(
                f"The {label} is in {raster.crs or 'no declared coordinate system'}, expected Belgian "
                "Lambert 72 (EPSG:31370); nothing was changed."
            )
    if dsm.transform != dtm.transform or dsm.shape != dtm.shape:
        raise SourceError(
            "The DSM and the DTM do not cover the same grid (origin, pixel size or size differ), so they "
            "cannot be subtracted pixel by pixel; resample one onto the other first. Nothing was changed."
        )


@dataclass(frozen=True)
class Footprints:
    ids: np.ndarray
    geometries: np.ndarray
    areas: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _buildings_within(bounds: Any) -> Footprints:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, ST_AsBinary(footprint), ST_Area(footprint) FROM opendata_building "
            "WHERE footprint @ ST_MakeEnvelope(%s, %s, %s, %s, %s) ORDER BY id",
            [bounds.left, bounds.bottom, bounds.right, bounds.top, STORAGE_SRID],
        )
        rows = cursor.fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    geometries = shapely.from_wkb([bytes(r[1]) for r in rows]) if rows else np.array([], dtype=object)
    return Footprints(ids, np.asarray(geometries, dtype=object), np.array([r[2] for r in rows], dtype=float))


def measure(
    dsm: Any, dtm: Any, buildings: Footprints, *, progress: Any = None
) -> dict[int, tuple[float, float]]:
    """Median DSM - DTM per building id, with the footprint area: {id: (height_m, area_m2)}."""
    out: dict[int, tuple[float, float]] = {}
    if not len(buildings):
        return out
    centroids = shapely.get_coordinates(shapely.centroid(buildings.geometries))
    tiles = pd.Series(np.arange(len(buildings))).groupby(
        [np.floor(centroids[:, 0] / TILE_M), np.floor(centroids[:, 1] / TILE_M)]
    )
    area = dict(zip(buildings.ids.tolist(), buildings.areas.tolist(), strict=True))
    for _, members in tiles:
        index = members.to_numpy()
        heights = _measure_tile(dsm, dtm, buildings.geometries[index], buildings.ids[index])
        out.update({b: (h, area[b]) for b, h in heights.items()})
        if progress is not None:
            progress(len(index))
    return out


def _measure_tile(dsm: Any, dtm: Any, geometries: np.ndarray, ids: np.ndarray) -> dict[int, float]:
    xmin, ymin, xmax, ymax = shapely.total_bounds(geometries)
    inverse = ~dsm.transform
    (c0, r0), (c1, r1) = inverse @ (xmin, ymax), inverse @ (xmax, ymin)
    col_off, row_off = max(0, math.floor(min(c0, c1))), max(0, math.floor(min(r0, r1)))
    col_end, row_end = min(dsm.width, math.ceil(max(c0, c1))), min(dsm.height, math.ceil(max(r0, r1)))
    if col_end <= col_off or row_end <= row_off:
        return {}
    window = Window(col_off, row_off, col_end - col_off, row_end - row_off)
    surface = dsm.read(1, window=window, masked=True).astype("float64")
    terrain = dtm.read(1, window=window, masked=True).astype("float64")
    difference = np.ma.masked_array(
        surface - terrain, mask=np.ma.getmaskarray(surface) | np.ma.getmaskarray(terrain)
    )
    transform = dsm.window_transform(window)
    shape = difference.shape
    results: dict[int, float] = {}
    for all_touched in (False, True):  # a footprint too small to hold a pixel centre takes what it touches
        todo = [i for i in range(len(ids)) if int(ids[i]) not in results]
        if not todo:
            break
        labels = rasterize(
            ((geometries[i], i + 1) for i in todo),
            out_shape=shape,
            transform=transform,
            fill=0,
            all_touched=all_touched,
            dtype="int32",
        )
        usable = (labels > 0) & ~np.ma.getmaskarray(difference)
        if not usable.any():
            continue
        values = pd.Series(np.maximum(difference.data[usable], 0.0)).groupby(labels[usable]).median()
        for label, value in values.items():
            results[int(ids[int(label) - 1])] = round(float(value), 2)
    return results


@dataclass
class Written:
    changed: int
    parcels: set[int]


def _write(heights: dict[int, tuple[float, float]], label: str) -> Written:
    columns = ["id", "height_m", "storeys", "volume_m3", "height_source"]
    ids = np.array(list(heights), dtype=np.int64)
    values = np.array([heights[int(i)][0] for i in ids], dtype=float)
    areas = np.array([heights[int(i)][1] for i in ids], dtype=float)
    storeys = np.array([storeys_for(h) for h in values], dtype=object)
    with transaction.atomic():
        stage = stage_create("building_height", columns, like="opendata_building")
        copy_binary(
            stage,
            {
                "id": "int8",
                "height_m": "float8",
                "storeys": "int2",
                "volume_m3": "float8",
                "height_source": "text",
            },
            {
                "id": ids,
                "height_m": values,
                "storeys": storeys,
                "volume_m3": np.round(areas * values, 1),
                "height_source": label,
            },
            len(ids),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE opendata_building b SET height_m = s.height_m, storeys = s.storeys, "  # noqa: S608
                "volume_m3 = s.volume_m3, height_source = s.height_source "
                f'FROM "{stage}" s WHERE b.id = s.id '
                "AND (b.height_m IS DISTINCT FROM s.height_m OR b.storeys IS DISTINCT FROM s.storeys "
                "OR b.volume_m3 IS DISTINCT FROM s.volume_m3 "
                "OR b.height_source IS DISTINCT FROM s.height_source) "
                "RETURNING b.parcel_id"
            )
            parcels = [row[0] for row in cursor.fetchall()]
    return Written(changed=len(parcels), parcels={p for p in parcels if p is not None})
