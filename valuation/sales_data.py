"""The sales as data frames and arrays: read once by COPY, shared by training and serving.

``sales_frame`` reads sales out of PostGIS (COPY to CSV, about a second per million rows) with the
price-index region of each sale: the municipality of its parcel, else a 10 km grid cell.
``SalesSnapshot`` keeps all sales in memory in each serving process, with a k-d tree on their
coordinates, and reloads them when the sales version (bumped by a trigger on every change to the
sales table) moves; candidate sales for a valuation then cost microseconds instead of a query.
"""

from __future__ import annotations

import hashlib
import io
import threading
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection
from scipy.spatial import cKDTree

GRID_CELL_M = 10_000


def _sales_sql(where: str) -> str:
    # Region of the price index: the municipality of the sale's parcel, else a 10 km grid cell.
    # ``where`` is composed by our own code from fixed clauses; values always travel as parameters.
    return f"""
        select s.id, s.source, s.sale_date, s.price_eur::float8, s.property_type, s.living_area_m2,
               s.land_area_m2, s.rooms, s.bedrooms, s.year_built, s.epc_kwh_m2,
               st_x(s.point) as x, st_y(s.point) as y,
               coalesce(m.nis_code, 'cell:' || floor(st_x(s.point) / {GRID_CELL_M})::int || ':'
                        || floor(st_y(s.point) / {GRID_CELL_M})::int) as region
        from valuation_sale s
        left join opendata_parcel p on p.id = s.parcel_id
        left join opendata_municipality m on m.id = p.municipality_id
        {where}
        order by s.sale_date, s.id
    """  # noqa: S608


def sales_frame(
    *, source: str | None = None, where: str = "", params: list[Any] | None = None
) -> pd.DataFrame:
    """The sales as a DataFrame (COPY out of PostGIS: about a second per million rows)."""
    clauses, args = [], list(params or [])
    if source:
        clauses.append("s.source = %s")
        args.append(source)
    if where:
        clauses.append(where)
    sql = _sales_sql(("where " + " and ".join(clauses)) if clauses else "")
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        query = raw.mogrify(sql, args) if args else sql
        with raw.copy(f"copy ({query}) to stdout with (format csv, header true)") as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    frame = pd.read_csv(buffer, dtype={"region": str, "source": str, "property_type": str})
    frame["sale_date"] = pd.to_datetime(frame["sale_date"])
    return frame


def snapshot_checksum(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update(
        pd.util.hash_pandas_object(frame[["id", "sale_date", "price_eur"]], index=False).values.tobytes()
    )
    return digest.hexdigest()


def sales_version() -> int:
    with connection.cursor() as cursor:
        cursor.execute("select version from valuation_salesversion where id = 1")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


class SalesSnapshot:
    """All sales of the database in memory, with a k-d tree on (x, y)."""

    def __init__(self, frame: pd.DataFrame, version: int) -> None:
        self.frame = frame.reset_index(drop=True)
        self.version = version
        f = self.frame
        # Plain arrays for the per-valuation work (distribution, comparables): no pandas in the loop.
        self.x = f["x"].to_numpy(dtype=np.float64)
        self.y = f["y"].to_numpy(dtype=np.float64)
        self.day = f["sale_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
        self.property_type = f["property_type"].astype(str).to_numpy()
        self.price = f["price_eur"].to_numpy(dtype=np.float64)
        self.living_area = f["living_area_m2"].to_numpy(dtype=np.float64)
        self.land_area = f["land_area_m2"].to_numpy(dtype=np.float64)
        self.ids = f["id"].to_numpy(dtype=np.int64)
        self.region = f["region"].astype(str).to_numpy()
        self.region_names, self.region_code = np.unique(self.region, return_inverse=True)
        self.tree = cKDTree(np.column_stack([self.x, self.y])) if len(f) else None
        self._cache: dict[Any, np.ndarray] = {}
        self._frames: dict[Any, pd.DataFrame] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def around(self, xy: np.ndarray, radius_m: float) -> np.ndarray:
        """Row positions of the sales within ``radius_m`` of one point, or in the box around many."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.tree is None or len(xy) == 0:
            return np.zeros(0, dtype=np.int64)
        if len(xy) == 1:
            return np.sort(np.asarray(self.tree.query_ball_point(xy[0], r=radius_m), dtype=np.int64))
        # Many points: the bounding box grown by the radius (a superset, cheap and small in memory).
        (x0, y0), (x1, y1) = xy.min(axis=0) - radius_m, xy.max(axis=0) + radius_m
        return np.flatnonzero((self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1))

    def near(self, x: float, y: float, radius_m: float, *, before_day: int, property_type: str) -> np.ndarray:
        """Positions of the sales of ``property_type`` within ``radius_m``, dated before ``before_day``."""
        if self.tree is None:
            return np.zeros(0, dtype=np.int64)
        idx = np.asarray(self.tree.query_ball_point((x, y), r=radius_m), dtype=np.int64)
        return np.sort(idx[(self.day[idx] < before_day) & (self.property_type[idx] == property_type)])

    def indexed_frame(self, key: Any, index_pool: Any) -> pd.DataFrame:
        """The sales with their indexed prices for one model (``Bundle.index_pool``), once per snapshot."""
        if ("frame", key) not in self._frames:
            self._frames[("frame", key)] = index_pool(self.frame)
        return self._frames[("frame", key)]

    def cached(self, key: Any, compute: Any) -> np.ndarray:
        """A per-sale array computed once per snapshot (e.g. the index level of each sale for a model)."""
        if key not in self._cache:
            self._cache[key] = compute(self)
        return self._cache[key]


_lock = threading.Lock()
_snapshot: SalesSnapshot | None = None


def sales_snapshot(*, check: bool = True) -> SalesSnapshot:
    """The current snapshot, reloaded when the sales changed since it was read.

    ``check=False`` returns the snapshot already in use without asking the database (within one
    valuation, after a checked call).
    """
    global _snapshot
    if not check and _snapshot is not None:
        return _snapshot
    version = sales_version()
    with _lock:
        if _snapshot is None or _snapshot.version != version:
            _snapshot = SalesSnapshot(sales_frame(), version)
        return _snapshot
