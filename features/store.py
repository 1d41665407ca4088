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


def parcel_features_columns(parcel_ids: list[int | None]) -> dict[str, np.ndarray]:
    """The open-data features of each of ``parcel_ids`` (None, or a parcel without a features row:
    unknown), as one array per feature aligned with the ids: float64 with NaN for numeric features,
    object with None for categorical ones. The fast path for valuing a few properties."""
    wanted = list({i for i in parcel_ids if i is not None})
    found: dict[int, tuple[object, ...]] = {}
    if wanted:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT parcel_id, {', '.join(OPEN_DATA_FEATURES)} "  # noqa: S608
                f"FROM {ParcelFeatures._meta.db_table} WHERE parcel_id = ANY(%s)",
                [wanted],
            )
            found = {row[0]: row[1:] for row in cursor.fetchall()}
    empty = (None,) * len(OPEN_DATA_FEATURES)
    rows = [found.get(i, empty) if i is not None else empty for i in parcel_ids]
    columns: dict[str, np.ndarray] = {}
    for k, name in enumerate(OPEN_DATA_FEATURES):
        values = [row[k] for row in rows]
        if name in OPEN_DATA_CATEGORICAL:
            columns[name] = np.array(values, dtype=object)
        else:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return columns


def parcel_features_frame(parcel_ids: Iterable[int | None]) -> pd.DataFrame:
    """The open-data features of ``parcel_ids``: index ``parcel_id`` (each distinct id given, in order of
    first appearance; None skipped), one column per feature in :data:`OPEN_DATA_FEATURES`. Numeric
    columns are float64 (NaN when unknown or when the parcel has no features row yet), categorical ones
    object (None when unknown)."""
    ids = list(dict.fromkeys(int(i) for i in parcel_ids if i is not None))
    index = pd.Index(ids, name="parcel_id", dtype=np.int64)
    return pd.DataFrame(parcel_features_columns(list(ids)), index=index, columns=list(OPEN_DATA_FEATURES))


if set(OPEN_DATA_FEATURES) != set(FEATURE_COLUMNS):  # pragma: no cover - a programming error
    raise RuntimeError(f"registry and table disagree: {set(OPEN_DATA_FEATURES) ^ set(FEATURE_COLUMNS)}")
