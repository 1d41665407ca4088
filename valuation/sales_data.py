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
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection
from scipy.spatial import cKDTree

from features.store import OPEN_DATA_CATEGORICAL, OPEN_DATA_FEATURES

GRID_CELL_M = 10_000


def _sales_sql(where: str, *, open_data: bool, address: bool = False) -> str:
    # Region of the price index: the municipality of the sale's parcel, else a 10 km grid cell.
    # ``where`` is composed by our own code from fixed clauses; values always travel as parameters.
    # ``open_data``: also the open-data features of the sale's parcel (features_parcelfeatures).
    extra = "".join(f", pf.{name}" for name in OPEN_DATA_FEATURES) if open_data else ""
    join = "left join features_parcelfeatures pf on pf.parcel_id = s.parcel_id" if open_data else ""
    if address:
        extra += ", s.address"
    return f"""
        select s.id, s.source, s.sale_date, s.price_eur::float8, s.property_type, s.living_area_m2,
               s.land_area_m2, s.rooms, s.bedrooms, s.year_built, s.epc_kwh_m2,
               st_x(s.point) as x, st_y(s.point) as y,
               coalesce(m.nis_code, 'cell:' || floor(st_x(s.point) / {GRID_CELL_M})::int || ':'
                        || floor(st_y(s.point) / {GRID_CELL_M})::int) as region{extra}
        from valuation_sale s
        left join opendata_parcel p on p.id = s.parcel_id
        left join opendata_municipality m on m.id = p.municipality_id
        {join}
        {where}
        order by s.sale_date, s.id
    """  # noqa: S608


def sales_frame(
    *,
    source: str | None = None,
    where: str = "",
    params: list[Any] | None = None,
    open_data: bool = True,
    address: bool = False,
) -> pd.DataFrame:
    """The sales as a DataFrame (COPY out of PostGIS: about a second per million rows), with the
    open-data features of their parcels unless ``open_data`` is False (the serving snapshot, whose
    sales only serve as neighbours, does not need them); with each sale's ``address`` (empty when
    unknown) if asked."""
    clauses, args = [], list(params or [])
    if source:
        clauses.append("s.source = %s")
        args.append(source)
    if where:
        clauses.append(where)
    sql = _sales_sql(
        ("where " + " and ".join(clauses)) if clauses else "", open_data=open_data, address=address
    )
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        query = raw.mogrify(sql, args) if args else sql
        with raw.copy(f"copy ({query}) to stdout with (format csv, header true)") as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    text = {"region": str, "source": str, "property_type": str, "address": str}
    if open_data:
        text.update(dict.fromkeys(OPEN_DATA_CATEGORICAL, str))
    frame = pd.read_csv(buffer, dtype=text)
    frame["sale_date"] = pd.to_datetime(frame["sale_date"])
    if address:
        frame["address"] = frame["address"].fillna("")
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
        # Addresses are only ever shown (comparables): a plain list, out of the frame.
        self.addresses: list[str] = f.pop("address").tolist() if "address" in f.columns else [""] * len(f)
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
        self._grid: Any = None
        self._per_day: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._display: dict[str, list[Any]] | None = None

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

    def grid(self) -> Any:
        """The sales grid of :mod:`valuation.neighbours`, built once per snapshot."""
        from valuation.ml.grid import Grid

        if self._grid is None:
            self._grid = Grid.build(self.x, self.y, self.property_type)
        return self._grid

    def indexed_frame(self, key: Any, index_pool: Any) -> pd.DataFrame:
        """The sales with their indexed prices for one model (``Bundle.index_pool``), once per snapshot."""
        if ("frame", key) not in self._frames:
            self._frames[("frame", key)] = index_pool(self.frame)
        return self._frames[("frame", key)]

    def per_day(self, key: Any, compute: Any, *, keep: int = 16) -> np.ndarray:
        """Like :meth:`cached` for arrays that depend on a valuation date: the ``keep`` latest stay."""
        if key in self._per_day:
            self._per_day.move_to_end(key)
            return self._per_day[key]
        value = compute(self)
        self._per_day[key] = value
        while len(self._per_day) > keep:
            self._per_day.popitem(last=False)
        return value

    def display_columns(self) -> dict[str, list[Any]]:
        """The facts shown for a comparable sale, as JSON-ready Python lists (built once)."""
        if self._display is None:

            def plain(values: np.ndarray) -> list[Any]:
                return [None if v != v else round(v, 2) for v in values.tolist()]

            self._display = {
                "sale_id": self.ids.tolist(),
                "sale_date": np.datetime_as_string(self.day.astype("datetime64[D]")).tolist(),
                "property_type": self.property_type.tolist(),
                "living_area_m2": plain(self.living_area),
                "land_area_m2": plain(self.land_area),
                "price_eur": np.round(self.price).astype(np.int64).tolist(),
                "address": self.addresses,
            }
        return self._display

    def cached(self, key: Any, compute: Any) -> Any:
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
            _snapshot = SalesSnapshot(sales_frame(open_data=False, address=True), version)
        return _snapshot
