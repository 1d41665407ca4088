"""A grid over points for radius searches of many targets at once (pure numpy, no tree).

The points are sorted by (type, cell row, cell column), so each cell row of one type is a contiguous run
of the sorted array: the candidates of a target are a handful of slices (one per cell row its circle
touches), and those of many targets are gathered at once with vectorised index arithmetic. The
candidates are a superset of the points within the radius; callers apply the exact distance test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CELL_M = 250.0


@dataclass
class Grid:
    """Points sorted by (type, cell row, cell column): each cell row of one type is a contiguous run."""

    x0: float
    y0: float
    n_rows: int
    n_cols: int
    type_names: npt.NDArray[Any]
    type_code: IntArray
    order: IntArray  # point positions sorted by key
    keys: IntArray  # sorted keys
    xs: FloatArray  # the points' coordinates in that order
    ys: FloatArray

    @classmethod
    def build(cls, x: FloatArray, y: FloatArray, property_type: npt.NDArray[Any] | None = None) -> Grid:
        """The grid of points ``x, y`` (metres); ``property_type`` None: one type for all."""
        if property_type is None:
            property_type = np.zeros(x.size, dtype=np.int8)
        type_names, type_code = np.unique(property_type.astype(str), return_inverse=True)
        x0 = float(np.floor(x.min() / CELL_M) * CELL_M) if x.size else 0.0
        y0 = float(np.floor(y.min() / CELL_M) * CELL_M) if y.size else 0.0
        col = np.floor((x - x0) / CELL_M).astype(np.int64)
        row = np.floor((y - y0) / CELL_M).astype(np.int64)
        n_cols = int(col.max()) + 1 if x.size else 1
        n_rows = int(row.max()) + 1 if y.size else 1
        key = (type_code.astype(np.int64) * n_rows + row) * n_cols + col
        order = np.argsort(key, kind="stable").astype(np.int64)
        return cls(
            x0,
            y0,
            n_rows,
            n_cols,
            type_names,
            type_code.astype(np.int64),
            order,
            key[order],
            x[order],
            y[order],
        )

    def spans(
        self, tx: FloatArray, ty: FloatArray, ttype: npt.NDArray[Any] | None, radius: float
    ) -> tuple[IntArray, IntArray]:
        """Start and length in ``order`` of each (target, cell row) run the target's circle touches,
        both of shape (targets, rows spanned); ``ttype`` None: the grid was built without types."""
        n = tx.size
        if ttype is None:
            code = np.zeros(n, dtype=np.int64)
            known = np.full(n, self.type_names.size > 0)
        else:
            code = np.searchsorted(self.type_names, ttype.astype(str))
            code = np.minimum(code, max(self.type_names.size - 1, 0))
            known = self.type_names[code] == ttype.astype(str) if self.type_names.size else np.zeros(n, bool)
        span = int(np.ceil(2 * radius / CELL_M)) + 1
        rows = np.floor((ty - radius - self.y0) / CELL_M).astype(np.int64)[:, None] + np.arange(span)
        # The part of the circle inside each cell row: its half-width from the row's nearest edge.
        low_edge = self.y0 + rows * CELL_M
        dy = np.maximum(0.0, np.maximum(low_edge - ty[:, None], ty[:, None] - (low_edge + CELL_M)))
        inside = (dy <= radius) & (rows >= 0) & (rows < self.n_rows) & known[:, None]
        half = np.sqrt(np.maximum(radius * radius - dy * dy, 0.0))
        c0 = np.clip(np.floor((tx[:, None] - half - self.x0) / CELL_M), 0, self.n_cols - 1).astype(np.int64)
        c1 = np.floor((tx[:, None] + half - self.x0) / CELL_M).astype(np.int64)
        inside &= (c1 >= 0) & (np.floor((tx[:, None] - half - self.x0) / CELL_M) < self.n_cols)
        c1 = np.clip(c1, 0, self.n_cols - 1)
        base = (code[:, None] * self.n_rows + rows) * self.n_cols
        start = np.searchsorted(self.keys, base + c0, side="left")
        end = np.searchsorted(self.keys, base + c1, side="right")
        return start, np.where(inside, end - start, 0)

    def runs(
        self, tx: FloatArray, ty: FloatArray, ttype: npt.NDArray[Any] | None, radius: float
    ) -> tuple[IntArray, IntArray]:
        """(target, position in ``order``) candidate pairs: every point of the target's type in the
        cells the circle touches (a superset of the points within ``radius``), grouped by target in
        target order; each target's positions are a few runs of consecutive ones."""
        start, length = self.spans(tx, ty, ttype, radius)
        span = start.shape[1] if start.ndim == 2 else 0
        length, start = length.ravel(), start.ravel()
        total = int(length.sum())
        owner = np.repeat(np.repeat(np.arange(tx.size, dtype=np.int64), span), length)
        offset = np.repeat(start - (np.cumsum(length) - length), length) + np.arange(total, dtype=np.int64)
        return owner, offset

    def candidates(
        self, tx: FloatArray, ty: FloatArray, ttype: npt.NDArray[Any] | None, radius: float
    ) -> tuple[IntArray, IntArray]:
        """(target, point) candidate pairs, as :meth:`runs` but with the points' own positions."""
        owner, offset = self.runs(tx, ty, ttype, radius)
        return owner, self.order[offset]

    def counts(
        self, tx: FloatArray, ty: FloatArray, ttype: npt.NDArray[Any] | None, radius: float
    ) -> IntArray:
        """The number of candidate pairs of each target (to size chunks before gathering them)."""
        return self.spans(tx, ty, ttype, radius)[1].sum(axis=1).astype(np.int64)
