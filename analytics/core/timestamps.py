"""Timestamps as integer nanoseconds since the epoch (UTC), the engines' time unit."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd


def as_ns(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """Nanoseconds since the epoch of each timestamp (naive ones read as UTC). ``asi8``
    of an aware index already counts from the UTC epoch; no conversion is needed (a
    time-zone conversion cost a tenth of an incremental call)."""
    if index.unit != "ns":
        index = index.as_unit("ns")
    return np.asarray(index.asi8, dtype=np.int64)  # type: ignore[attr-defined]  # public, absent from pandas-stubs
