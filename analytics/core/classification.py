"""The moved-day clue: did the daily pattern around an anomaly move in time?

A seasonal anomaly (a day whose peak came hours early or late, a pattern turned upside
down) keeps the series' level and changes its phase; a level shift or a ramp keeps the
phase and changes the level. With the engine's fitted seasonal profile ``P`` (one value
per point, the profile the engine expects at that time), each of the two periods next
to an episode, the one ending with it and the one starting with it (when the data reach
that period's end: a few hours cut short by the data's end are no day, and a level shift
or a ramp over them passes too easily for a piece of a moved profile), is fitted two
ways, each with a level of its own:

- the usual day: ``x(t) ~ P(t) + a``;
- the day moved by ``s``: ``x(t) ~ P(t - s) + a`` for ``s`` on a 10-minute grid within
  ``max_shift`` either way (the profile is read one period away where ``t - s`` falls
  outside the data: it repeats every period).

:func:`moved_days` returns, for each of the two periods, the best-fitting moved day and
two residual ratios: against the usual day over the same period (a moved day fits far
better than the usual one), and against the usual day's misfit one period earlier (the
moved day fits about as well as the usual day normally does: a level shift that happens
to resemble a piece of the moved profile still leaves its edges unexplained).

A third period, the *day before* the one ending with the episode, is fitted the same way:
the engine compares each day with the day before, so the usual day after a moved one
alarms too (its echo). The classifier counts it only when the period ending with the
episode is itself a usual day (``MovedDay.unmoved`` against the day before's ``residual``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from analytics.core.contracts import MetricSeries
from analytics.core.timestamps import as_ns

_SHIFT_GRID = timedelta(minutes=10)  # the shifts tried
_MIN_SHIFT = timedelta(hours=1)  # shorter shifts are the same day, not a moved one
_SMOOTHING = "15min"  # running median of the values: the fits compare shapes, not noise


@dataclass(frozen=True)
class MovedDay:
    """The best-fitting moved day next to an episode."""

    shift: timedelta  # positive: the pattern came later than usual
    fit_ratio: float  # its residual / the usual day's residual over the same period
    usual_ratio: float  # its residual / the usual day's residual over the period one period earlier
    period: str = "ending"  # which: "ending" with the episode, "starting" with it, or the "day before" the ending one
    residual: float = 0.0  # its residual (RMS about its level), in the series' unit
    unmoved: float = 0.0  # the usual day's residual over the same period


def _rms_about_mean(gaps: np.ndarray) -> np.ndarray:
    rms: np.ndarray = np.sqrt(np.mean(np.square(gaps - gaps.mean(axis=-1, keepdims=True)), axis=-1))
    return rms


def moved_days(
    series: MetricSeries, profile: np.ndarray, start: int, end: int, *, period: timedelta, max_shift: timedelta,
) -> list[MovedDay]:
    """The moved-day clues of points ``[start, end)`` (module doc): one per neighbouring
    period that holds 3 points, has a period of data before it to compare with and, for
    the one starting with the episode, data up to its end."""
    ts = as_ns(series.timestamps)
    smooth = pd.Series(series.values, index=series.timestamps).rolling(_SMOOTHING, center=True).median().to_numpy()
    period_ns, grid = pd.Timedelta(period).value, pd.Timedelta(_SHIFT_GRID).value
    steps = pd.Timedelta(max_shift).value // grid
    shifts = np.arange(-steps, steps + 1) * grid
    shifts = shifts[(shifts == 0) | (np.abs(shifts) >= pd.Timedelta(_MIN_SHIFT).value)]
    same = int(np.flatnonzero(shifts == 0)[0])
    found = []
    ending_with = (int(np.searchsorted(ts, ts[end - 1] - period_ns, side="right")), end)
    starting_with = (start, int(np.searchsorted(ts, ts[start] + period_ns)))
    # a period the data's end cuts short is no day: a few hours of a level shift can pass
    # for a piece of a moved day
    periods = [("ending", ending_with)] + ([("starting", starting_with)] if starting_with[1] < len(ts) else [])
    # the engine compares each day with the day before: the day after a moved day alarms too
    periods.append(("day before", (int(np.searchsorted(ts, ts[end - 1] - 2 * period_ns, side="right")), ending_with[0])))
    for name, (lo, hi) in periods:
        before = (int(np.searchsorted(ts, ts[lo] - period_ns)), int(np.searchsorted(ts, ts[hi - 1] - period_ns, side="right")))
        if hi - lo < 3 or before[1] - before[0] < 3 or ts[lo] - period_ns < ts[0]:
            continue
        targets = ts[lo:hi][None, :] - shifts[:, None]
        targets = np.where(targets < ts[0], targets + period_ns, np.where(targets > ts[-1], targets - period_ns, targets))
        reference = profile[np.clip(np.searchsorted(ts, targets), 0, len(ts) - 1)]
        rms = _rms_about_mean(smooth[None, lo:hi] - reference)
        usual = float(_rms_about_mean(smooth[before[0]:before[1]] - profile[before[0]:before[1]]))
        k = int(np.argmin(np.where(np.arange(len(shifts)) == same, np.inf, rms)))
        found.append(MovedDay(
            shift=pd.Timedelta(int(shifts[k])).to_pytimedelta(),
            fit_ratio=float(rms[k] / rms[same]) if rms[same] > 0 else 1.0,
            usual_ratio=float(rms[k] / usual) if usual > 0 else np.inf,
            period=name,
            residual=float(rms[k]),
            unmoved=float(rms[same]),
        ))
    return found
