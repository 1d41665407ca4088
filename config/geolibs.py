"""Which GDAL, GEOS and PROJ GeoDjango loads.

Decision: GeoDjango uses the GDAL (3.12) bundled in the pyogrio wheel and the GEOS bundled in the
shapely wheel, with pyogrio's PROJ database. Debian 12's GDAL 3.6 cannot block file and network
access while parsing spatial references (Django's check gis.W001), and the wheels give every
machine - a developer's, CI, the Docker image - the same versions that geopandas, pyogrio and
shapely already use for the connectors, pinned in requirements.lock. PostGIS keeps its own
libraries inside the database server.

GDAL_LIBRARY_PATH, GEOS_LIBRARY_PATH and PROJ_DATA in the environment override this.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _bundled(package: str, pattern: str) -> str | None:
    root = _package_dir(package)
    if root is None:
        return None
    matches = sorted((root.parent / f"{package}.libs").glob(pattern))
    return str(matches[0]) if matches else None


def configure() -> tuple[str | None, str | None]:
    """Return (gdal_library_path, geos_library_path) and point PROJ/GDAL at pyogrio's data."""
    gdal = os.environ.get("GDAL_LIBRARY_PATH") or _bundled("pyogrio", "libgdal-*.so*")
    geos = os.environ.get("GEOS_LIBRARY_PATH") or _bundled("shapely", "libgeos_c-*.so*")
    pyogrio_dir = _package_dir("pyogrio")
    if pyogrio_dir is not None and gdal and "pyogrio.libs" in gdal:
        os.environ.setdefault("PROJ_DATA", str(pyogrio_dir / "proj_data"))
        os.environ.setdefault("GDAL_DATA", str(pyogrio_dir / "gdal_data"))
    return gdal, geos
