"""Read a vector layer (shapefile / GeoJSON / TopoJSON / GeoPackage / SQLite, plain or in a zip) into
EPSG:31370, refusing a file whose coordinate system is unknown or does not fit Belgium.

GDAL (bundled in the pyogrio wheel) reads the file; pyproj transforms Lambert 2008 (EPSG:3812) and WGS84.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from opendata.connectors.base import SourceError, check_archive
from opendata.connectors.crs import BELGIUM_31370
from opendata.models import STORAGE_SRID

VECTOR_SUFFIXES = (".shp", ".geojson", ".json", ".topojson", ".gpkg", ".sqlite")
# Formats whose coordinates are WGS84 by definition when they state no CRS.
WGS84_DRIVERS = {"GeoJSON", "TopoJSON"}


def vector_source(path: Path) -> str:
    """The GDAL path of the vector data in ``path`` (a zip holding one layer file, or the file itself)."""
    if not zipfile.is_zipfile(path):
        return str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, path.name)
            names = [n for n in archive.namelist() if not n.endswith("/")]
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{path.name} is not a readable zip file ({exc}).") from exc
    layers = [n for n in names if n.lower().endswith(VECTOR_SUFFIXES)]
    if not layers:
        raise SourceError(
            f"{path.name} holds no shapefile, GeoJSON, GeoPackage or SQLite file "
            f"(it has: {', '.join(names[:8]) or 'nothing'})."
        )
    member = sorted(layers, key=lambda n: (not n.lower().endswith(".shp"), n))[0]
    if member.lower().endswith(".shp"):
        stem = member[:-4].lower()
        if f"{stem}.prj" not in {n.lower() for n in names}:
            raise SourceError(
                f"The shapefile {member} in {path.name} has no .prj file, so its coordinate system is "
                "unknown; nothing was loaded. Download the complete zip again."
            )
    return f"/vsizip/{path}/{member}"


def read_layer(path: Path, *, layer: str | None = None, what: str = "features") -> gpd.GeoDataFrame:
    """Every feature of ``path`` (one ``layer`` of it), transformed to EPSG:31370, with its attributes.

    Raises :class:`SourceError` when the file cannot be read, has no CRS, or its coordinates do not fall
    in Belgium once read in the CRS it declares (the usual sign of a wrong .prj).
    """
    source = vector_source(path)
    try:
        info = pyogrio.read_info(source, layer=layer)
        frame = pyogrio.read_dataframe(source, layer=layer)
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        raise SourceError(f"{path.name} could not be read as a vector file: {exc}") from exc
    if frame.geometry is None or len(frame) == 0:
        raise SourceError(f"{path.name} holds no {what}.")
    crs = info.get("crs")
    if not crs:
        if info.get("driver") not in WGS84_DRIVERS:
            raise SourceError(
                f"{path.name} does not state its coordinate system (no .prj or CRS), so its coordinates "
                "cannot be placed; nothing was loaded."
            )
        crs = "EPSG:4326"
    frame = frame.set_crs(crs, allow_override=True)
    if frame.crs.to_epsg() != STORAGE_SRID:
        frame = frame.to_crs(STORAGE_SRID)
    minx, miny, maxx, maxy = frame.total_bounds
    bx0, by0, bx1, by1 = BELGIUM_31370
    if not (bx0 <= minx <= maxx <= bx1 and by0 <= miny <= maxy <= by1):
        raise SourceError(
            f"The {what} of {path.name} lie outside Belgium once read in the coordinate system the file "
            f"declares ({crs}): x {minx:,.0f}..{maxx:,.0f}, y {miny:,.0f}..{maxy:,.0f} in EPSG:31370. The "
            "file is probably in another coordinate system than it says; nothing was loaded."
        )
    return frame


def column_map(columns: object) -> dict[str, str]:
    """Lower-case column name -> the name as the file spells it (column case differs between vintages)."""
    return {str(c).strip().lower(): str(c) for c in columns}  # type: ignore[attr-defined]


def ewkb(geom: BaseGeometry) -> str:
    """Hex EWKB in EPSG:31370, which PostGIS reads from COPY text."""
    return str(shapely.to_wkb(shapely.set_srid(geom, STORAGE_SRID), hex=True, include_srid=True))


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon | None:
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    polygons = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    return MultiPolygon(polygons) if polygons else None
