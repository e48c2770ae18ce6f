"""When did each series of a window start to move? A causal change point per series.

The series are put on one time grid (``Grid``: the sampling step, cell 0 at the
window's start; the points before it are the baseline). A series with only positive
values is taken as its logarithm (``log_positive``): most metrics (latency, traffic,
I/O) change by factors, and a fall to a third is then as clear as a rise to three
times. Per series:

1. **Deviation**: each point minus the median of the ``reference_seconds`` before it.
   Comparing with the recent past, not with a level fixed before the window, keeps a
   daily curve or slow noise from looking like a change hours later.
2. **Scale**: the same deviation over the baseline, centred on its median and divided
   by its MAD (or by the point-to-point noise if that is larger), gives ``z`` in
   robust sigmas: what the series usually does within one reference span is 1.
3. **Onset**: a two-sided CUSUM, ``S = max(0, S + |z| - drift)`` per direction, raises
   an alarm when ``S`` passes ``threshold``; the change point is the cell after the
   last time ``S`` was zero before the alarm (the classic CUSUM estimate), moved
   forward to the start of the last run of deviations of at least half the level at
   the alarm (so a slow wander that began adding up before a sudden change does not
   drag the onset back). Nothing after the alarm is used: a later point never moves an
   earlier onset.

What it sees is sudden change: a step, a spike, the sharp end of a ramp. A ramp that
builds slowly over hours moves each point little against the last ten minutes, and is
found late or not at all (docs/evaluation.md has the figures per shape).

A series with fewer than ``min_baseline_points`` baseline points is not analysed.
Missing cells contribute nothing. The defaults were tuned on the simulator's seeds 1-10
(``evaluate --simulated --rca``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import bottleneck as bn
import numpy as np

from analytics.core.contracts import Direction, MetricSeries


@dataclass(frozen=True)
class OnsetSettings:
    reference_seconds: int = 10 * 60  # each point is compared with the median of this span before it
    drift: float = 4.0  # sigmas a series may wander per step without accumulating evidence
    threshold: float = 8.0  # accumulated sigmas that make a change certain
    min_baseline_points: int = 10
    log_positive: bool = True  # a series with only positive values is analysed as log(value)

    def __post_init__(self) -> None:
        for name in ("reference_seconds", "drift", "threshold"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        if not isinstance(self.min_baseline_points, int) or self.min_baseline_points < 2:
            raise ValueError(f"min_baseline_points: must be an integer >= 2, got {self.min_baseline_points!r}")


@dataclass(frozen=True)
class Grid:
    """The series on one grid: ``values[row, cell]``, NaN where a series has no point;
    cell ``i`` holds the last point in ``[start + (i - baseline_cells) * step, + step)``."""

    start: datetime
    step_seconds: int
    baseline_cells: int
    values: np.ndarray  # (series, baseline_cells + window cells), float64

    @property
    def window_cells(self) -> int:
        return int(self.values.shape[1]) - self.baseline_cells

    def time(self, cell: int) -> datetime:
        """The start of window cell ``cell`` (0 = the window's start)."""
        return self.start + timedelta(seconds=cell * self.step_seconds)


def _ns(series: MetricSeries) -> np.ndarray:
    return series.timestamps.to_numpy(dtype=np.int64)


def sampling_step(series: Sequence[MetricSeries]) -> int:
    """The typical spacing of the points, in whole seconds (the median over every series)."""
    gaps = [np.diff(_ns(s)) for s in series if len(s) > 1]
    if not gaps:
        raise ValueError("series: need at least one series with two points to know the sampling step")
    return max(1, int(round(float(np.median(np.concatenate(gaps))) / 1e9)))


def to_grid(series: Sequence[MetricSeries], start: datetime, end: datetime, step_seconds: int,
            log_positive: bool = False) -> Grid:
    if end <= start:
        raise ValueError("end: must be after start")
    start_ns = int(start.timestamp()) * 10**9 + start.microsecond * 1000
    step_ns = step_seconds * 10**9
    window = int(np.ceil((end - start).total_seconds() / step_seconds))
    first = min((int(_ns(s)[0]) for s in series if len(s)), default=start_ns)
    baseline = max(0, int(np.ceil((start_ns - first) / step_ns)))
    values = np.full((len(series), baseline + window), np.nan)
    for row, s in enumerate(series):
        cells = (_ns(s) - start_ns) // step_ns + baseline
        keep = (cells >= 0) & (cells < baseline + window)
        kept = s.values[keep]
        if log_positive and len(kept) and kept.min() > 0:
            kept = np.log(kept)
        values[row, cells[keep]] = kept  # ascending timestamps: the last point of a cell wins
    return Grid(start, step_seconds, baseline, values)


@dataclass(frozen=True)
class Deviations:
    """Per series: the window's deviation from the recent past in robust sigmas (NaN where
    no point) and whether the series could be analysed at all."""

    z: np.ndarray  # (series, window cells)
    analysed: np.ndarray  # (series,) bool


def deviations(grid: Grid, settings: OnsetSettings) -> Deviations:
    """``z[t] = (x[t] - median of the reference cells before t) / scale``; the scale is the
    MAD of the same deviation over the baseline, so it already holds what a series
    usually drifts within one reference span (a daily curve, slow noise)."""
    b, rows = grid.baseline_cells, len(grid.values)
    if b < settings.min_baseline_points:
        return Deviations(np.full((rows, grid.window_cells), np.nan), np.zeros(rows, dtype=bool))
    span = max(2, int(round(settings.reference_seconds / grid.step_seconds)))
    reference = bn.move_median(grid.values, span, min_count=max(1, span // 2), axis=1)
    deviation = np.full_like(grid.values, np.nan)
    deviation[:, 1:] = grid.values[:, 1:] - reference[:, :-1]  # the reference ends one cell before
    base = deviation[:, :b]
    analysed = np.isfinite(base).sum(axis=1) >= settings.min_baseline_points
    with warnings.catch_warnings():  # rows without a baseline: NaN, and not analysed
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmedian(base, axis=1)
        mad = 1.4826 * np.nanmedian(np.abs(base - centre[:, None]), axis=1)
        noise = 1.4826 * np.nanmedian(np.abs(np.diff(grid.values[:, :b], axis=1)), axis=1) / np.sqrt(2.0)
        level = np.abs(np.nanmedian(grid.values[:, :b], axis=1))
    floor = np.fmax(1e-6 * np.nan_to_num(level), 1e-9)  # a flat baseline: any change counts
    scale = np.fmax(np.fmax(np.nan_to_num(mad), np.nan_to_num(noise)), floor)
    z = (deviation[:, b:] - np.nan_to_num(centre)[:, None]) / scale[:, None]
    z[~analysed] = np.nan
    return Deviations(z, analysed)


@dataclass(frozen=True)
class Onset:
    """Where one series changed: ``cell`` the change point, ``alarm_cell`` when the CUSUM
    became certain (both window cells), the direction, and the peak deviation after it."""

    row: int
    cell: int
    alarm_cell: int
    direction: Direction
    peak_sigma: float


def find_onsets(dev: Deviations, settings: OnsetSettings) -> list[Onset]:
    """The first change of every analysed series that has one, in row order."""
    z = np.nan_to_num(dev.z, nan=0.0)
    rows, cells = z.shape
    up, down = np.zeros(rows), np.zeros(rows)
    up_zero, down_zero = np.full(rows, -1), np.full(rows, -1)
    alarm, change = np.full(rows, -1), np.full(rows, -1)
    rising = np.zeros(rows, dtype=bool)
    for cell in range(cells):
        up = np.maximum(0.0, up + z[:, cell] - settings.drift)
        down = np.maximum(0.0, down - z[:, cell] - settings.drift)
        up_zero = np.where(up == 0.0, cell, up_zero)
        down_zero = np.where(down == 0.0, cell, down_zero)
        fresh = (alarm < 0) & dev.analysed & ((up > settings.threshold) | (down > settings.threshold))
        if fresh.any():
            rising = np.where(fresh, up >= down, rising)
            change = np.where(fresh, np.where(up >= down, up_zero, down_zero) + 1, change)
            alarm = np.where(fresh, cell, alarm)
    onsets = []
    for row in np.flatnonzero(alarm >= 0):
        up_row = bool(rising[row])
        signed = z[row] if up_row else -z[row]
        cell = _refine(signed, int(change[row]), int(alarm[row]))
        onsets.append(Onset(int(row), cell, int(alarm[row]), Direction.UP if up_row else Direction.DOWN,
                            float(signed[cell:].max(initial=0.0))))
    return onsets


def _refine(signed: np.ndarray, change: int, alarm: int) -> int:
    """The start of the last run, before the alarm, of deviations of at least half the
    level at the alarm: a slow wander the CUSUM began to add up before a sudden change
    does not pull the onset back to where the wander began."""
    level = float(np.median(signed[max(change, alarm - 4) : alarm + 1]))
    cell = alarm
    while cell > change and signed[cell - 1] >= level / 2:
        cell -= 1
    return cell
