"""Date helpers shared by the ML modules: everything becomes ``datetime64[D]`` (whole days)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

DayArray = npt.NDArray[np.datetime64]


def as_days(dates: Any) -> DayArray:
    """Dates as a 1-D ``datetime64[D]`` array.

    Accepts anything numpy understands as dates: ``datetime.date`` objects, ISO strings, pandas
    Series or DatetimeIndex, ``datetime64`` arrays of any unit (truncated to the day), or one scalar.
    """
    if hasattr(dates, "to_numpy"):
        dates = dates.to_numpy()
    array = np.asarray(dates)
    if array.dtype.kind == "M":
        return np.atleast_1d(array.astype("datetime64[D]"))
    return np.atleast_1d(np.asarray(array, dtype="datetime64[D]"))


def as_day_numbers(dates: Any) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 as int64 (cheap to compare and subtract)."""
    return as_days(dates).astype(np.int64)
