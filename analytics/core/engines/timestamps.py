"""Timestamps as integer nanoseconds since the epoch (UTC), the engines' time unit."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd


def as_ns(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """Nanoseconds since the epoch of each timestamp (naive ones read as UTC)."""
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return np.asarray(index.to_numpy(dtype="datetime64[ns]").view(np.int64))
