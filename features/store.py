"""Read the open-data features of parcels for training and serving: one frame, the registry's names.

The valuation side joins these to sales (by the sale's parcel) and to the property being valued (by its
parcel), so training and serving read the very same stored values.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from django.db import connection

from features import registry
from features.models import FEATURE_COLUMNS, ParcelFeatures

#: The open-data features the model can take, by kind (registry order).
OPEN_DATA_FEATURES: tuple[str, ...] = tuple(registry.names(registry.OPEN_DATA_GROUPS))
OPEN_DATA_CATEGORICAL: tuple[str, ...] = tuple(registry.categorical_names(OPEN_DATA_FEATURES))
OPEN_DATA_NUMERIC: tuple[str, ...] = tuple(n for n in OPEN_DATA_FEATURES if n not in OPEN_DATA_CATEGORICAL)


def parcel_features_frame(parcel_ids: Iterable[int | None]) -> pd.DataFrame:
    """The open-data features of ``parcel_ids``: index ``parcel_id`` (each distinct id given, in order of
    first appearance; None skipped), one column per feature in :data:`OPEN_DATA_FEATURES`. Numeric
    columns are float64 (NaN when unknown or when the parcel has no features row yet), categorical ones
    object (None when unknown)."""
    ids = list(dict.fromkeys(int(i) for i in parcel_ids if i is not None))
    columns = ", ".join(OPEN_DATA_FEATURES)
    rows: list[tuple[object, ...]] = []
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT parcel_id, {columns} FROM {ParcelFeatures._meta.db_table} "  # noqa: S608
                "WHERE parcel_id = ANY(%s)",
                [ids],
            )
            rows = cursor.fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["parcel_id", *OPEN_DATA_FEATURES])
    frame = frame.set_index("parcel_id").reindex(pd.Index(ids, name="parcel_id", dtype=np.int64))
    for name in OPEN_DATA_NUMERIC:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    for name in OPEN_DATA_CATEGORICAL:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


if set(OPEN_DATA_FEATURES) != set(FEATURE_COLUMNS):  # pragma: no cover - a programming error
    raise RuntimeError(f"registry and table disagree: {set(OPEN_DATA_FEATURES) ^ set(FEATURE_COLUMNS)}")
