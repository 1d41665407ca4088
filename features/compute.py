"""Set-based feature computation per parcel (work in progress: filled in by the features work)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO


def parcel_features_refresh(parcel_ids: Sequence[int] | None, *, stream: IO[str] | None = None) -> int:
    """Recompute the open-data features of ``parcel_ids`` (None: every parcel); return how many."""
    raise NotImplementedError
