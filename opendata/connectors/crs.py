"""Coordinates shared by every connector: transformers to EPSG:31370 and the extent of Belgium there."""

from __future__ import annotations

import functools

import numpy as np
from pyproj import Transformer

from opendata.models import STORAGE_SRID

# Belgium in Lambert 72 lies within about x 17 000-300 000, y 18 000-250 000 (metres); with a margin.
# Coordinates outside it mean a file in another CRS than it declares (e.g. WGS84 degrees as metres).
BELGIUM_31370 = (10_000.0, 10_000.0, 310_000.0, 260_000.0)


@functools.lru_cache(maxsize=8)
def transformer(epsg: int) -> Transformer:
    """Reused transformer from ``epsg`` to EPSG:31370 (x, y order whatever the CRS's axis order)."""
    return Transformer.from_crs(epsg, STORAGE_SRID, always_xy=True)


def inside_belgium(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which EPSG:31370 points lie within Belgium's extent."""
    x0, y0, x1, y1 = BELGIUM_31370
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
