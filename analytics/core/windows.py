"""Cut a series into the windows the engines score and the results report.

Two extractors, one interface:

- ``SlidingWindowExtractor(size, step)``: windows of ``size`` timestamps advancing by
  ``step`` timestamps, counted from the first point.
- ``TimeBasedWindowExtractor(duration, stride)``: windows ``[k*stride, k*stride+duration)``
  aligned to the Unix epoch, so two runs over overlapping data cut identical windows
  wherever each run's data starts.

``bounds(timestamps_ns)`` is the vectorised core: it takes sorted int64 nanosecond
timestamps (duplicates allowed) and returns an ``(n_windows, 2)`` int64 array of
``[start_index, end_index)`` slices. ``extract(series)`` wraps those in ``Window`` objects.

Partial windows (``partial=``), the same small set for both extractors:

- ``"drop"`` (default): only complete windows, so a window's content never changes
  when more data arrives; incremental runs pick the window up once it is complete.
- ``"keep"``: also emit the one trailing incomplete window (clipped to the data).

There is no ``"pad"``: a window is a slice of real points, and padding would invent
data the engines would then score.

Rules shared by both extractors:

- Points with the same timestamp are one instant: they always land in the same window
  (a sliding window counts distinct timestamps, not rows).
- No window is ever empty. Time windows with no points (gaps) are skipped, and with
  ``stride > duration`` the points between windows belong to none.
- The output is a pure function of the input: no clock, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analytics.core.contracts import MetricSeries

PARTIAL_POLICIES = ("drop", "keep")

# Python datetimes and PostgreSQL both stop at microseconds; an exclusive end one
# microsecond past the last point survives a round trip through either.
_END_PAD_NS = 1_000


@dataclass(frozen=True)
class Window:
    """One window of a series: ``series.values[start_index:end_index]``.

    ``start``/``end`` are aware UTC timestamps (``pd.Timestamp``, a ``datetime``
    subclass that keeps nanoseconds), ``end`` exclusive. ``complete`` is False only
    for the trailing window that ``partial="keep"`` adds.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    start_index: int
    end_index: int
    complete: bool = True

    def __len__(self) -> int:
        return self.end_index - self.start_index

    def select(self, series: MetricSeries) -> MetricSeries:
        """The window's points as a series of their own (same ids and metadata)."""
        return MetricSeries(
            series.tenant_id, series.cluster_id, series.node_id, series.metric_name,
            series.timestamps[self.start_index:self.end_index],
            series.values[self.start_index:self.end_index],
            series.metadata,
        )


def _check_partial(partial: str) -> str:
    if partial not in PARTIAL_POLICIES:
        raise ValueError(f"partial: must be one of {list(PARTIAL_POLICIES)}, got {partial!r}")
    return partial


def _as_ns(timestamps_ns: Any) -> np.ndarray:
    """Validate sorted nanosecond timestamps; datetime64 arrays are accepted as-is."""
    array = np.asarray(timestamps_ns)
    if np.issubdtype(array.dtype, np.datetime64):
        array = array.astype("datetime64[ns]").view(np.int64)
    if array.ndim != 1:
        raise ValueError("timestamps_ns: must be one-dimensional")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"timestamps_ns: must be integer nanoseconds, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.size > 1 and (np.diff(array) < 0).any():
        raise ValueError("timestamps_ns: must be sorted ascending (duplicates allowed)")
    return array


def _empty_bounds() -> np.ndarray:
    return np.empty((0, 2), dtype=np.int64)


class SlidingWindowExtractor:
    """Windows of ``size`` distinct timestamps, starting every ``step`` timestamps.

    ``step < size`` overlaps windows, ``step == size`` tiles the series, ``step > size``
    samples it (points between windows belong to none). With ``partial="keep"`` the
    trailing short window is emitted only if it holds points no full window covers.
    """

    def __init__(self, size: int, step: int, partial: str = "drop") -> None:
        for name, value in (("size", size), ("step", step)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        self.size = size
        self.step = step
        self.partial = _check_partial(partial)

    def __repr__(self) -> str:
        return f"SlidingWindowExtractor(size={self.size}, step={self.step}, partial={self.partial!r})"

    def bounds(self, timestamps_ns: Any) -> np.ndarray:
        return self._bounds(_as_ns(timestamps_ns))[0]

    def _bounds(self, ts: np.ndarray) -> tuple[np.ndarray, int]:
        """The slices, and how many of them (from the first) are complete."""
        if ts.size == 0:
            return _empty_bounds(), 0
        # Work on distinct timestamps so duplicates never straddle a boundary:
        # first_row[j] is the row of the j-th distinct timestamp, with len(ts) appended.
        first_row = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
        distinct = first_row.size
        first_row = np.r_[first_row, ts.size]

        n_full = (distinct - self.size) // self.step + 1 if distinct >= self.size else 0
        starts = np.arange(n_full, dtype=np.int64) * self.step
        ends = starts + self.size
        if self.partial == "keep":
            covered = int(ends[-1]) if n_full else 0
            tail = n_full * self.step
            if tail < distinct and covered < distinct:
                starts = np.r_[starts, tail]
                ends = np.r_[ends, distinct]
        return np.column_stack([first_row[starts], first_row[ends]]).astype(np.int64), n_full

    def extract(self, series: MetricSeries) -> list[Window]:
        ts = series.timestamps.to_numpy(dtype=np.int64)
        bounds, n_full = self._bounds(ts)
        starts, ends = bounds[:, 0], bounds[:, 1]
        # Exclusive end just past the window's last point, capped at the next point.
        end_ns = ts[ends - 1] + _END_PAD_NS if len(bounds) else ends
        has_next = ends < ts.size
        end_ns[has_next] = np.minimum(end_ns[has_next], ts[ends[has_next]])
        return [
            Window(_utc(ts[s]), _utc(e), int(s), int(stop), complete=i < n_full)
            for i, (s, stop, e) in enumerate(zip(starts, ends, end_ns, strict=True))
        ]


class TimeBasedWindowExtractor:
    """Epoch-aligned windows ``[k*stride, k*stride + duration)`` that hold at least one point.

    A window is complete when the data is known up to its end: by default through the
    last point (``until`` = last timestamp + 1 ns); pass ``until`` when the caller knows
    the data is complete up to a later instant (e.g. the end of the analysed range).
    """

    def __init__(self, duration: timedelta, stride: timedelta, partial: str = "drop") -> None:
        self.duration_ns = self._positive_ns("duration", duration)
        self.stride_ns = self._positive_ns("stride", stride)
        self.duration = duration
        self.stride = stride
        self.partial = _check_partial(partial)

    @staticmethod
    def _positive_ns(name: str, value: Any) -> int:
        if not isinstance(value, timedelta):
            raise ValueError(f"{name}: must be a timedelta, got {type(value).__name__}")
        ns = pd.Timedelta(value).value
        if ns <= 0:
            raise ValueError(f"{name}: must be positive, got {value!r}")
        return ns

    def __repr__(self) -> str:
        return (f"TimeBasedWindowExtractor(duration={self.duration!r}, stride={self.stride!r}, "
                f"partial={self.partial!r})")

    def _window_numbers(self, ts: np.ndarray) -> np.ndarray:
        """Ascending distinct k whose window holds at least one point, without a loop."""
        # Point t lies in window k iff t - duration < k*stride <= t.
        lo = (ts - self.duration_ns) // self.stride_ns + 1
        hi = ts // self.stride_ns
        hit = lo <= hi  # False for points in the gaps left by stride > duration
        lo, hi = lo[hit], hi[hit]
        if not lo.size:
            return np.empty(0, dtype=np.int64)
        # Both bounds are non-decreasing; start each range past the previous one's end
        # so every k is produced once, then expand the ranges with one arange.
        lo[1:] = np.maximum(lo[1:], hi[:-1] + 1)
        counts = np.maximum(hi - lo + 1, 0)
        offsets = np.repeat(np.cumsum(counts) - counts, counts)
        numbers: np.ndarray = np.repeat(lo, counts) + (np.arange(counts.sum(), dtype=np.int64) - offsets)
        return numbers

    def _windows(self, ts: np.ndarray, until_ns: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start and end nanoseconds of the emitted windows, and which are complete."""
        if ts.size == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty.astype(bool)
        if until_ns is None:
            until_ns = int(ts[-1]) + 1
        elif until_ns <= ts[-1]:
            raise ValueError("until: must be after the last timestamp")
        starts = self._window_numbers(ts) * self.stride_ns
        ends = starts + self.duration_ns
        complete = ends <= until_ns
        if self.partial == "drop":
            starts, ends, complete = starts[complete], ends[complete], complete[complete]
        return starts, ends, complete

    def bounds(self, timestamps_ns: Any, *, until_ns: int | None = None) -> np.ndarray:
        ts = _as_ns(timestamps_ns)
        starts, ends, _ = self._windows(ts, until_ns)
        return np.column_stack([np.searchsorted(ts, starts), np.searchsorted(ts, ends)]).astype(np.int64)

    def extract(self, series: MetricSeries, *, until: datetime | None = None) -> list[Window]:
        if until is not None and (until.tzinfo is None or until.utcoffset() is None):
            raise ValueError("until: must be timezone-aware")
        ts = series.timestamps.to_numpy(dtype=np.int64)
        starts, ends, complete = self._windows(ts, None if until is None else pd.Timestamp(until).value)
        lo, hi = np.searchsorted(ts, starts), np.searchsorted(ts, ends)
        return [
            Window(_utc(s), _utc(e), int(a), int(b), complete=bool(c))
            for s, e, a, b, c in zip(starts, ends, lo, hi, complete, strict=True)
        ]


def _utc(ns: Any) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")
