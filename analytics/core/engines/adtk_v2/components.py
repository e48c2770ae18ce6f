"""The engine's components: deviations of each new point in robust sigmas of its series.

All causal, from the statistics in force (:mod:`.blocks`, refreshed every ``B`` points
from the last ``K`` blocks, about ``H = B * K`` points):

- **level** at scales m (1, 5, 20 points): ``|mean of the last m points - median| /
  scale`` with the median and scale in force at the first of the m points (so they hold
  none of them); the scale is ``1.2533 * mean |x - median|``, floored at ``range_floor``
  of the recent range and 1e-3 of |median| (flat, stepped and quantised series must not
  turn ordinary steps into hundreds of sigmas). ADTK: ``DoubleRollingAggregate(
  agg=("median", "mean"), window=(H, m), diff="diff")``. Where that scale exceeds
  ``noise_cap`` times the spike's (local) scale, e.g. a daily cycle inside the blocks,
  the deviations are scaled up by the excess.
- **seasonal** at the same scales: per seasonal lag (one day, one week; :mod:`.seasonal`)
  the seasonal difference ``sd = x - reference`` against its own median and scale, its
  absolute deviation averaged over m points; the smallest over the lags (a value the
  same time yesterday *or* last week explains is not unusual). ADTK: ``Series.diff(P)``
  then ``RollingAggregate``. A period also gets a lag whose reference is the median of
  its values 1 to ``seasonal_cycles`` periods back (off by default: with 2, the mean of
  yesterday and the day before), so an anomaly or a noise excursion yesterday echoes today
  at most half as large.
- **spike**: ``|x - median of the previous spike_points points|`` against the mean of
  such residuals (ADTK's ``PersistAD``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import bottleneck as bn
import numpy as np

from analytics.core.engines.adtk_v2 import blocks
from analytics.core.engines.adtk_v2.seasonal import references
from analytics.core.engines.adtk_v2.state import StreamState
from analytics.core.engines.calibration import MEAN_ABS_TO_SIGMA

MIN_BASELINE_COUNT = 30  # values a baseline needs before it is used
RELATIVE_FLOOR = 1e-3


@dataclass(frozen=True)
class ComponentSettings:
    block: int
    keep: int
    scales: tuple[int, ...]
    spike_points: int
    range_floor: float
    noise_cap: float  # level scales are at most this many local noise scales (0: off)
    lags: dict[str, tuple[int, ...]]  # seasonal lag name -> offsets in slots (several: their median is the reference)

    @property
    def tail(self) -> int:
        """Past points the m-point means and the spike residual look back over."""
        return max(max(self.scales) - 1, self.spike_points)


@dataclass
class Components:
    """Per new point: deviations in robust sigmas (NaN where undefined); the level
    baseline (median, scale), the point-to-point noise scale explanations quote and the
    first seasonal lag's reference (the value one period back, NaN without one)."""

    level: dict[int, np.ndarray]
    seasonal: dict[int, np.ndarray]
    spike: np.ndarray
    median: np.ndarray
    scale: np.ndarray
    local_scale: np.ndarray
    seasonal_reference: np.ndarray


def trailing_mean(extended: np.ndarray, m: int, n: int) -> np.ndarray:
    """Mean of the finite values among each of the last ``n`` positions and the ``m - 1``
    before (NaN if none), from running sums restarted at the window's first position, so
    the start of ``extended`` does not matter."""
    if m <= 1:
        return extended[len(extended) - n:].copy()
    a = extended[len(extended) - n - m + 1:]
    finite = np.isfinite(a)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, a, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((sums[m:] - sums[:-m]) / (counts[m:] - counts[:-m]), dtype=np.float64)


def advance(st: StreamState, ts: np.ndarray, x: np.ndarray, cfg: ComponentSettings,
            relative_floor: bool = True) -> Components:
    """The components of new points ``x``; advances ``st`` (rings, tables, tails). Without
    ``relative_floor`` (``x`` a log scale) the level's scale is floored at ``RELATIVE_FLOOR``
    itself, the same relative size."""
    n = len(x)
    t = cfg.tail
    position = st.points
    level, st.level_rows, st.level_open = blocks.advance(
        st.level_rows, st.level_open, x, position, cfg.block, cfg.keep, MIN_BASELINE_COUNT)
    span = level.high - level.low
    scale = np.fmax(np.fmax(MEAN_ABS_TO_SIGMA * level.mean_abs_dev, cfg.range_floor * span),
                    RELATIVE_FLOOR * (np.abs(level.median) if relative_floor else 1.0) + 1e-9)
    ext_x = np.concatenate([st.tail_x, x])
    ext_level = np.empty((t + n, 2))  # [tail_level; (median, scale)], without column_stack's overhead
    ext_level[:t], ext_level[t:, 0], ext_level[t:, 1] = st.tail_level, level.median, scale
    with np.errstate(invalid="ignore", divide="ignore"):
        level_dev = {}
        for m in cfg.scales:
            force = ext_level[t - m + 1:t - m + 1 + n]
            level_dev[m] = np.abs(trailing_mean(ext_x, m, n) - force[:, 0]) / force[:, 1]
        seasonal_dev, reference = _seasonal(st, ts, x, cfg, span, t)
        w = cfg.spike_points
        if w > 0:
            previous = bn.move_median(ext_x[t - w:t - 1 + n], w, min_count=1)[w - 1:]
            residual = x - previous
        else:
            residual = np.full(n, np.nan)
        spike_scale, st.spike_rows, st.spike_open = blocks.advance(
            st.spike_rows, st.spike_open, np.abs(residual), position, cfg.block, cfg.keep, MIN_BASELINE_COUNT)
        # NaN until the residuals' own scale exists: the range floor alone (from the level's
        # blocks, in force earlier) made the first points tens of "sigmas", which then sat
        # in both views' references for thousands of points
        spike_floor = np.fmax(MEAN_ABS_TO_SIGMA * spike_scale.mean, cfg.range_floor * span)
        spike_floor[np.isnan(spike_scale.mean)] = np.nan
        spike = np.abs(residual) / np.maximum(spike_floor, 1e-9)
        if cfg.noise_cap > 0:
            _cap_level(level_dev, scale, spike_floor, cfg.noise_cap)
    if t:
        st.tail_x, st.tail_level = ext_x[-t:], ext_level[-t:]
    return Components(level_dev, seasonal_dev, spike, level.median, scale, spike_floor, reference)


def _cap_level(level_dev: dict[int, np.ndarray], scale: np.ndarray, local: np.ndarray, cap: float) -> None:
    """Where the level's scale exceeds ``cap`` local noise scales (a daily cycle inside its
    blocks), scale the level deviations up by the excess: a jump many times the noise is
    not hidden by the cycle's swing. Points without a local scale are left alone."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(local), np.fmax(scale / (cap * local), 1.0), 1.0)
    for m in level_dev:
        level_dev[m] = level_dev[m] * ratio


def _seasonal(st: StreamState, ts: np.ndarray, x: np.ndarray, cfg: ComponentSettings, span: np.ndarray,
              t: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Per scale, the smallest seasonal deviation over the lags (NaN without a reference),
    and the first lag's reference.
    A lag with several offsets references the median of the values they point at (those
    defined): one anomalous or unusually noisy period among them is outvoted (halved
    between two), so a spike or an excursion yesterday does not come back today as a
    deviation."""
    n = len(x)
    names = list(cfg.lags)
    flat = [lag for k in names for lag in cfg.lags[k]]
    found, st.slots = references(st.slots, ts, x, flat)
    refs, first = [], 0
    for name in names:
        group = found[first:first + len(cfg.lags[name])]
        first += len(group)
        refs.append(group[0] if len(group) == 1 else _median_defined(np.vstack(group)))
    deviations: dict[int, list[np.ndarray]] = {m: [] for m in cfg.scales}
    for name, ref in zip(names, refs, strict=True):
        lag = st.lags[name]
        sd = x - ref
        stats, lag.rows, lag.open_values = blocks.advance(
            lag.rows, lag.open_values, sd, st.points, cfg.block, cfg.keep, MIN_BASELINE_COUNT)
        scale = np.fmax(np.fmax(MEAN_ABS_TO_SIGMA * stats.mean_abs_dev, cfg.range_floor * span), 1e-9)
        ext_dev = np.concatenate([lag.tail_dev, np.abs(sd - stats.median)])
        for m in cfg.scales:
            deviations[m].append(trailing_mean(ext_dev, m, n) / scale)
        if t:
            lag.tail_dev = ext_dev[-t:]
    # the smallest finite deviation (fmin skips NaN; an infinite one counts as none)
    best = {m: functools.reduce(np.fmin, ds) for m, ds in deviations.items()}
    return {m: np.where(np.isfinite(v), v, np.nan) for m, v in best.items()}, refs[0]


def _median_defined(rows: np.ndarray) -> np.ndarray:
    """Per column, the median of the finite values (NaN if none)."""
    return np.asarray(bn.nanmedian(rows, axis=0), dtype=np.float64)
