"""Roll-ups: min, max, sum and count per series per 5-minute and 1-hour bucket.

Computed by compaction from a day's complete points (numpy, vectorised across series);
buckets are aligned to the Unix epoch, so both widths divide a UTC day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WIDTHS_S = (300, 3600)


@dataclass(frozen=True)
class RollupRows:
    tenant_id: np.ndarray
    series_id: np.ndarray
    resolution: np.ndarray
    bucket_start_us: np.ndarray
    min: np.ndarray
    max: np.ndarray
    sum: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return len(self.series_id)


def compute_rollups(
    tenant_ids: np.ndarray, series_ids: np.ndarray, ts_us: np.ndarray, values: np.ndarray, widths_s=WIDTHS_S
) -> RollupRows:
    """Roll-up rows of points sorted by (series, ts)."""
    parts = []
    for width_s in widths_s:
        width = width_s * 1_000_000
        buckets = ts_us - ts_us % width
        if not len(ts_us):
            continue
        change = (series_ids[1:] != series_ids[:-1]) | (buckets[1:] != buckets[:-1])
        starts = np.concatenate(([0], np.flatnonzero(change) + 1))
        parts.append(
            (
                tenant_ids[starts],
                series_ids[starts],
                np.full(len(starts), width_s, dtype=np.int64),
                buckets[starts],
                np.minimum.reduceat(values, starts),
                np.maximum.reduceat(values, starts),
                np.add.reduceat(values, starts),
                np.diff(np.append(starts, len(values))),
            )
        )
    if not parts:
        empty_i, empty_f = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        return RollupRows(empty_i, empty_i, empty_i, empty_i, empty_f, empty_f, empty_f, empty_i)
    return RollupRows(*(np.concatenate(column) for column in zip(*parts, strict=True)))
