"""Sliding and epoch-aligned time windows: examples, properties, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.core.contracts import MetricSeries
from analytics.core.windows import SlidingWindowExtractor, TimeBasedWindowExtractor, Window

US = 1_000  # nanoseconds per microsecond


def series_at(minutes, start="2024-03-04 10:00"):
    index = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.asarray(minutes, dtype=float), unit="min")
    return MetricSeries("t", "c", "n", "cpu", index, np.arange(len(index), dtype=float))


def pairs(bounds):
    return [tuple(map(int, b)) for b in bounds]


# ------------------------------------------------------------------ sliding

@pytest.mark.parametrize(
    ("size", "step", "partial", "n", "expected"),
    [
        (3, 2, "drop", 7, [(0, 3), (2, 5), (4, 7)]),
        (3, 2, "drop", 8, [(0, 3), (2, 5), (4, 7)]),
        (3, 2, "keep", 8, [(0, 3), (2, 5), (4, 7), (6, 8)]),
        (3, 3, "keep", 6, [(0, 3), (3, 6)]),  # nothing left over: no extra window
        (2, 3, "keep", 7, [(0, 2), (3, 5), (6, 7)]),  # step > size samples the series
        (2, 3, "keep", 6, [(0, 2), (3, 5)]),  # point 5 falls between windows
        (5, 1, "drop", 3, []),
        (5, 1, "keep", 3, [(0, 3)]),
        (4, 2, "keep", 0, []),
    ],
)
def test_sliding_bounds_by_hand(size, step, partial, n, expected):
    assert pairs(SlidingWindowExtractor(size, step, partial).bounds(np.arange(n) * 60 * 10**9)) == expected


def test_sliding_counts_duplicate_timestamps_as_one_instant():
    ts = np.array([0, 1, 1, 2, 3, 3, 3, 4])
    assert pairs(SlidingWindowExtractor(2, 2).bounds(ts)) == [(0, 3), (3, 7)]
    assert pairs(SlidingWindowExtractor(2, 2, "keep").bounds(ts)) == [(0, 3), (3, 7), (7, 8)]


def test_sliding_extract_gives_windows_and_sub_series():
    series = series_at([0, 1, 2, 5, 6])  # a three-minute gap inside
    windows = SlidingWindowExtractor(2, 2, partial="keep").extract(series)
    assert [(w.start_index, w.end_index, w.complete) for w in windows] == [(0, 2, True), (2, 4, True), (4, 5, False)]
    first = windows[0]
    assert first.start == datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    assert first.end == datetime(2024, 3, 4, 10, 1, 0, 1, tzinfo=UTC)  # exclusive, just past the last point
    assert list(windows[1].select(series).values) == [2.0, 3.0]
    for window in windows:
        assert window.select(series) == series.slice(window.start, window.end)
        assert len(window) == len(window.select(series))


def test_sliding_end_never_swallows_the_next_point():
    ts = pd.DatetimeIndex([pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(ns) for ns in (0, 200, 400, 600)])
    series = MetricSeries("t", "c", "n", "cpu", ts, [1.0, 2.0, 3.0, 4.0])
    for window in SlidingWindowExtractor(1, 1).extract(series):
        assert window.select(series) == series.slice(window.start, window.end)


# ------------------------------------------------------------------ time based

def test_time_windows_align_to_the_epoch_not_to_the_data():
    series = series_at([7, 8, 20, 21, 22, 59], start="2024-03-04 10:00")
    windows = TimeBasedWindowExtractor(timedelta(minutes=15), timedelta(minutes=15)).extract(series)
    assert [(w.start.strftime("%H:%M"), w.end.strftime("%H:%M"), w.start_index, w.end_index) for w in windows] == [
        ("10:00", "10:15", 0, 2), ("10:15", "10:30", 2, 5),  # 10:30-10:45 holds no point: skipped
    ]
    # 10:45-11:00 holds 10:59, but the data stops there: incomplete, dropped
    kept = TimeBasedWindowExtractor(timedelta(minutes=15), timedelta(minutes=15), "keep").extract(series)
    assert [(w.start.strftime("%H:%M"), w.complete) for w in kept][-1] == ("10:45", False)
    until = datetime(2024, 3, 4, 11, 0, tzinfo=UTC)
    known = TimeBasedWindowExtractor(timedelta(minutes=15), timedelta(minutes=15)).extract(series, until=until)
    assert [w.start.strftime("%H:%M") for w in known] == ["10:00", "10:15", "10:45"]


def test_overlapping_time_windows_and_duplicates():
    ts = np.array([1, 3, 3, 12, 40, 41]) * 10**9
    extractor = TimeBasedWindowExtractor(timedelta(seconds=10), timedelta(seconds=5), "keep")
    # [-5,5) [0,10) [5,15) [10,20) [35,45) [40,50): every window holding a point
    assert pairs(extractor.bounds(ts)) == [(0, 3), (0, 3), (3, 4), (3, 4), (4, 6), (4, 6)]


def test_time_windows_with_stride_longer_than_duration_skip_points_between():
    ts = np.array([0, 1, 2, 3, 4, 5, 6]) * 10**9
    extractor = TimeBasedWindowExtractor(timedelta(seconds=2), timedelta(seconds=5), "keep")
    assert pairs(extractor.bounds(ts)) == [(0, 2), (5, 7)]


def test_time_windows_before_1970_floor_correctly():
    ts = np.array([-7, -6, -1, 0, 1]) * 10**9
    extractor = TimeBasedWindowExtractor(timedelta(seconds=5), timedelta(seconds=5), "keep")
    assert pairs(extractor.bounds(ts)) == [(0, 2), (2, 3), (3, 5)]  # [-10,-5) [-5,0) [0,5)


def test_time_windows_accept_datetime64_arrays():
    ts = np.array(["2024-01-01T00:00", "2024-01-01T00:01", "2024-01-01T00:02"], dtype="datetime64[ns]")
    extractor = TimeBasedWindowExtractor(timedelta(minutes=2), timedelta(minutes=2))
    assert pairs(extractor.bounds(ts)) == [(0, 2)]


def test_bounds_on_a_long_series_is_vectorised():
    ts = np.arange(2_000_000, dtype=np.int64) * 10**9
    assert len(TimeBasedWindowExtractor(timedelta(minutes=10), timedelta(minutes=1)).bounds(ts)) > 30_000
    assert len(SlidingWindowExtractor(60, 10).bounds(ts)) > 100_000


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SlidingWindowExtractor(0, 1), "size"),
        (lambda: SlidingWindowExtractor(3, -1), "step"),
        (lambda: SlidingWindowExtractor(3.0, 1), "size"),
        (lambda: SlidingWindowExtractor(3, True), "step"),
        (lambda: SlidingWindowExtractor(3, 1, partial="pad"), "partial"),
        (lambda: TimeBasedWindowExtractor(timedelta(0), timedelta(minutes=1)), "duration"),
        (lambda: TimeBasedWindowExtractor(timedelta(minutes=1), timedelta(seconds=-1)), "stride"),
        (lambda: TimeBasedWindowExtractor(60, timedelta(minutes=1)), "duration"),
        (lambda: TimeBasedWindowExtractor(timedelta(minutes=1), timedelta(minutes=1), "Keep"), "partial"),
        (lambda: SlidingWindowExtractor(2, 1).bounds(np.array([3, 2, 1])), "timestamps_ns"),
        (lambda: SlidingWindowExtractor(2, 1).bounds(np.array([[1, 2]])), "timestamps_ns"),
        (lambda: SlidingWindowExtractor(2, 1).bounds(np.array([1.5, 2.5])), "timestamps_ns"),
        (lambda: TimeBasedWindowExtractor(timedelta(seconds=1), timedelta(seconds=1)).bounds(
            np.array([0, 5 * 10**9]), until_ns=10**9), "until"),
        (lambda: TimeBasedWindowExtractor(timedelta(seconds=1), timedelta(seconds=1)).extract(
            series_at([0, 1]), until=datetime(2030, 1, 1)), "until"),
    ],
)
def test_bad_arguments_name_themselves(make, field):
    with pytest.raises(ValueError, match=field):
        make()


# ------------------------------------------------------------------ properties

# Microsecond-grained timestamps, duplicates and pre-1970 values included.
timestamps = st.lists(st.integers(-10**6, 10**6), max_size=80).map(lambda xs: np.array(sorted(xs), dtype=np.int64) * US)
spans = st.integers(1, 300_000).map(lambda us: timedelta(microseconds=us))


@st.composite
def window_shapes(draw):
    """(duration, stride) with at most a few dozen windows over any one point."""
    stride = draw(spans)
    duration = max(stride * draw(st.floats(0.05, 30)), timedelta(microseconds=1))
    return duration, stride


partials = st.sampled_from(["drop", "keep"])


def check_well_formed(ts, bounds):
    assert bounds.shape[1] == 2 and bounds.dtype == np.int64
    starts, ends = bounds[:, 0], bounds[:, 1]
    assert ((0 <= starts) & (starts < ends) & (ends <= len(ts))).all()  # in range, never empty
    assert (np.diff(starts) >= 0).all() and (np.diff(ends) >= 0).all()  # ordered
    for b in np.r_[starts, ends]:  # no boundary splits equal timestamps
        assert b in (0, len(ts)) or ts[b - 1] != ts[b]


def covered(n, bounds):
    mask = np.zeros(n, dtype=bool)
    for a, b in bounds:
        mask[a:b] = True
    return mask


@settings(max_examples=300, deadline=None)
@given(timestamps, st.integers(1, 12), st.integers(1, 12), partials)
def test_sliding_properties(ts, size, step, partial):
    extractor = SlidingWindowExtractor(size, step, partial)
    bounds = extractor.bounds(ts)
    check_well_formed(ts, bounds)
    assert np.array_equal(bounds, SlidingWindowExtractor(size, step, partial).bounds(ts.copy()))
    distinct = [len(np.unique(ts[a:b])) for a, b in bounds]
    assert all(d == size for d in distinct[: len(distinct) - (partial == "keep")])
    if partial == "keep" and step <= size:
        assert covered(len(ts), bounds).all()


@settings(max_examples=300, deadline=None)
@given(timestamps, window_shapes(), partials)
def test_time_properties(ts, shape, partial):
    duration, stride = shape
    extractor = TimeBasedWindowExtractor(duration, stride, partial)
    bounds = extractor.bounds(ts)
    check_well_formed(ts, bounds)
    assert np.array_equal(bounds, TimeBasedWindowExtractor(duration, stride, partial).bounds(ts.copy()))
    starts, ends, _ = extractor._windows(ts, None)
    assert (np.diff(starts) > 0).all() and (starts % (stride // timedelta(microseconds=1) * US) == 0).all()
    for (a, b), start, end in zip(bounds, starts, ends, strict=True):  # exactly the points in [start, end)
        assert np.array_equal(np.flatnonzero((ts >= start) & (ts < end)), np.arange(a, b))
    if partial == "keep" and stride <= duration:
        assert covered(len(ts), bounds).all()


@settings(max_examples=300, deadline=None)
@given(timestamps, spans, st.floats(0.05, 8), partials)
def test_time_windows_are_exactly_the_nonempty_aligned_windows(ts, stride, ratio, partial):
    duration = max(stride * ratio, timedelta(microseconds=1))
    got = TimeBasedWindowExtractor(duration, stride, partial)._windows(ts, None)[0]
    stride_ns, duration_ns = stride // timedelta(microseconds=1) * US, duration // timedelta(microseconds=1) * US
    expected = set()
    for t in ts:  # walk back from the window starting at or before t while it still holds t
        k = t // stride_ns
        while k * stride_ns + duration_ns > t:
            if partial == "keep" or k * stride_ns + duration_ns <= ts[-1] + 1:
                expected.add(int(k * stride_ns))
            k -= 1
    assert list(got) == sorted(expected)


@settings(max_examples=300, deadline=None)
@given(timestamps, window_shapes(), st.data())
def test_time_windows_from_a_later_start_coincide_on_the_overlap(ts, shape, data):
    duration, stride = shape
    if len(ts) == 0:
        return
    cut = data.draw(st.integers(0, len(ts) - 1))
    cut = int(np.searchsorted(ts, ts[cut]))  # the same data from one instant on: keep duplicates whole
    extractor = TimeBasedWindowExtractor(duration, stride)
    original = extractor._windows(ts, None)[0]
    later = extractor._windows(ts[cut:], None)[0]
    full_bounds = {int(s): tuple(b) for s, b in zip(original, extractor.bounds(ts), strict=True)}
    for start, (a, b) in zip(later, extractor.bounds(ts[cut:]), strict=True):
        if start >= ts[cut]:  # the later slice saw this whole window
            assert full_bounds[int(start)] == (a + cut, b + cut)
    assert [s for s in original if s >= ts[cut]] == [s for s in later if s >= ts[cut]]


@settings(max_examples=200, deadline=None)
@given(timestamps, window_shapes(), st.data())
def test_complete_windows_never_change_when_data_arrives(ts, shape, data):
    duration, stride = shape
    if len(ts) == 0:
        return
    cut = data.draw(st.integers(1, len(ts)))
    extractor = TimeBasedWindowExtractor(duration, stride)
    earlier = pairs(extractor.bounds(ts[:cut]))
    assert pairs(extractor.bounds(ts))[: len(earlier)] == earlier
    sliding = SlidingWindowExtractor(data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    earlier = pairs(sliding.bounds(ts[:cut]))
    assert all(b <= cut for _, b in earlier)
    # a window that ended inside the earlier data ends the same way on the full data,
    # unless the next point shares its last timestamp (duplicates stay together)
    full = pairs(sliding.bounds(ts))
    for (a, b), (a2, b2) in zip(earlier, full, strict=False):
        assert a == a2 and (b == b2 or ts[b - 1] == ts[min(b, len(ts) - 1)])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=60, unique=True), window_shapes(), partials)
def test_extract_matches_bounds_and_series_slices(offsets_us, shape, partial):
    duration, stride = shape
    index = pd.DatetimeIndex(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(sorted(offsets_us), unit="us"))
    series = MetricSeries("t", "c", "n", "cpu", index, np.arange(len(index), dtype=float))
    for extractor in (TimeBasedWindowExtractor(duration, stride, partial), SlidingWindowExtractor(3, 2, partial)):
        windows = extractor.extract(series)
        assert pairs(extractor.bounds(series.timestamps.asi8)) == [(w.start_index, w.end_index) for w in windows]
        for window in windows:
            assert isinstance(window, Window) and window.start < window.end
            assert window.start.tzinfo is not None and window.end.tzinfo is not None
            assert window.select(series) == series.slice(window.start, window.end)
