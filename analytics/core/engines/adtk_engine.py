"""The ADTK engine ("adtk", the product default): causal, per-series calibrated, streamed.

ADTK detectors return labels, and their ``fit`` learns thresholds from the whole series
it is given, so using them as published would look into the future. This engine keeps
ADTK's statistics (:meth:`AdtkEngine.deviations` re-implements them exactly in
numpy/bottleneck; tests check it equals ADTK's transforms) and adds what a corpus-wide
threshold needs: a per-series "anomaly likelihood" and alarm suppression counted in
points. The hot path computes the same statistics from **per-block summaries** kept in the
state, so an incremental call costs in proportion to its new points (below).
Windows are counted in POINTS (sampling steps differ by an order of magnitude between
metrics; a "15min" window is 15 points on one metric and less than one on another).

**Components** (``d``: deviation in robust sigmas, all causal), for every point t. The
baseline statistics are refreshed every ``block_points`` (B = 50) points from summaries of
the last ``baseline_points / B`` (20) complete blocks, H = 1000 points:

  ============ ================================================================ ==========
  component    statistic (exact ADTK transform it approximates)                 parameter
  ============ ================================================================ ==========
  level        for each m in ``scales`` (1, 5, 20 points):                      scales,
               ``|mean(x[t-m+1..t]) - med| / s`` with ``med`` = median of the   baseline_points,
               block medians and ``s`` the scale below, both as in force at      block_points
               point t-m+1 (so they hold none of the m points)
               (``DoubleRollingAggregate(agg=("median", "mean"),
               window=(H, m), center=False, diff="diff")``)
  seasonal     the same on the seasonal difference ``sd = x_t - x_(t-P)``,     seasonal_lag,
               P = one ``seasonal_lag`` in points at the step: ``mean over m     seasonal_reference
               points of |sd - med'| / s'`` (``Series.diff(P)``,
               ``RollingAggregate``); ``seasonal_reference="time"`` subtracts
               the last value in the same time-of-period slot instead (aligned
               on gappy data)
  spike        ``|x_t - median(x[t-w..t-1])| / s''``, w = ``spike_points`` (5)  spike_points,
               (ADTK's ``PersistAD``); feeds only the one-point path below      spike_gain
  ============ ================================================================ ==========

  A block whose median seasonal deviation exceeds ``seasonal_hold`` (5) seasonal sigmas
  is left out of the seasonal baseline (for at most one period of consecutive blocks), so
  a day whose shape changed keeps alarming instead of being learnt within hours.
  Scales: ``s = max(1.2533 * mean |x - med in force|`` over the blocks, ``range_floor``
  (1%) of the blocks' range (max of block maxima - min of block minima),
  ``relative_scale_floor`` (1e-3) of ``|med|``); ``s'`` the same on ``sd`` (range floor
  of x), ``s''`` on the spike residuals. The range floor keeps flat, stepped and
  quantised series from turning ordinary steps into hundreds of sigmas.
  ``d = max`` over level and seasonal components and scales (weighted by
  ``level_weight`` / ``seasonal_weight``; signed by ``direction``).

**Per-series likelihood** (HTM's anomaly likelihood): ``u = log1p(d)``; ``mu``, ``sd`` =
mean and std of ``u`` over the last ``likelihood_window`` (10000) points, from sums kept
per ``likelihood_block`` (500) points plus the open block, refreshed every
``likelihood_refresh`` (50) points (scores are 0 until ``likelihood_min_points`` (200)
and ``min_fit_points`` (200) points were seen);
``z = (mean(u over the last likelihood_short points) - mu) / (sd / sqrt(likelihood_short))``.
**One-point path**: with ``us = log1p(spike)`` and its own mean/std over the same window,
``z = max(z, spike_gain * (us - mean) / std)`` (``spike_gain`` 0.6): an extreme single
point is not diluted by the ``likelihood_short`` average. ``score =
calibration.likelihood_to_score(z)`` (``z / (z + 3.8)``: 0.5 at z = 3.8, the NAB-optimal
operating point, see calibration.py).

**Alarms**: a point alarms at ``score >= threshold`` (0.5; k-of-n via the common
``min_alarm_points``); the ``suppress_points`` (150) points after an alarm's first point
are suppressed: their scores are set to 0 and they start no new alarm
(:func:`base.suppress_following_points`). Suppressed points that still pass the threshold
stay ``confirmed``, so ``detect()`` reports a sustained anomaly as one episode.

**Explanations** use an ADTK-fitted seasonal profile: at fit time, periods among
``seasonal_periods`` (daily, weekly) whose autocorrelation passes ``seasonal_min_acf`` are
learnt with ADTK's ``ClassicSeasonalDecomposition`` (on a regular grid, smoothed over
``seasonal_smoothing``, stored epoch-aligned); ``expected = profile + median of the
deseasonalised past spike_window``, ``seasonal_expected`` the same over
``seasonal_level_window``, and the quoted sigma is learnt by ADTK's
``InterQuartileRangeAD(c=3)`` on the spike statistic (IQR / 1.349, floored).

**State** (:class:`~analytics.core.engines.state.AdtkFittedState`): the explanation fit
(sampling step, profiles, sigma; refitted when older than ``refit_age`` and the call holds
``history_points_for_fit`` points) and the streamed scoring statistics
(:class:`~analytics.core.engines.state.StreamState`: the last P values (1,440 at one-minute
data, float32 in JSON), 20 block summaries each for x, the seasonal difference and the
spike residuals, 20 likelihood blocks, tails of 19 points for the m-point means, the
suppression counter, the last alarm; about 1,840 numbers, ~12 KB of JSON, ~21 KB with the
explanation profile). The scores do not depend on the explanation fit.

**Full runs without a state** (``score(series)``, what the NAB harness calls and a run over
an explicit range does) stream the statistics from the series' first point (the step is
the median spacing of the first ``min_fit_points`` points) and fit the explanation
profiles on the past as production would (first after ``min_fit_points`` points, again
when the data doubles or ``refit_age`` passed). Scores are strictly causal. The returned
state holds the statistics at the series' end. ``history_points_for_fit`` (14 days at
one-minute data: ``fit_window``; the scores' warm-up alone is 12,490 points, see
:meth:`AdtkEngine.warmup_points_for`) is the context such a call wants.

**Incremental runs**: ``score(tail, state)`` scores the points of ``tail`` after the
state's cursor (its last scored point) by advancing a copy of its statistics, and returns
the advanced state; points at or before the cursor are context (score 0). The scores
equal those of one call over all the points (to rounding of the likelihood block sums,
~1e-12; 1e-6 through JSON, whose seasonal lag is float32), so chained 5-point calls
reproduce a stateless full run. The context ``history_points`` (120 points at one-minute
data) is only what the explanations look back over (``seasonal_level_window``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import bottleneck as bn
import numpy as np
import pandas as pd

from analytics.core.contracts import MetricSeries
from analytics.core.engines import calibration
from analytics.core.engines.base import (
    COMMON_PARAMETERS,
    AnomalyDetectionEngine,
    Parameter,
    ScoredSeries,
    duration_parameter,
    parse_duration,
)
from analytics.core.engines.registry import register_engine
from analytics.core.engines.state import (
    AdtkFittedState,
    ComponentScale,
    SeasonalComponent,
    StreamState,
)

warnings.filterwarnings("ignore", category=FutureWarning, module=r"adtk(\..*)?")

COMPONENTS: tuple[str, ...] = ("level", "seasonal")
MEAN_ABS_TO_SIGMA = calibration.MEAN_ABS_TO_SIGMA
IQR_C = 3.0
NOMINAL_STEP_SECONDS = 60.0  # product resolution; history_points is quoted at this step

# parameters that change what a fit learns; a state fitted with other values is refitted
_FIT_PARAMS = (
    "seasonal", "seasonal_periods", "seasonal_min_acf", "seasonal_min_cycles", "seasonal_smoothing", "spike_window",
    "seasonal_level_window", "fit_window", "relative_scale_floor", "baseline_points", "baseline_min_points",
    "scales", "range_floor", "seasonal_lag", "seasonal_lag_cycles", "level_weight", "seasonal_weight", "direction",
    "likelihood_window", "likelihood_min_points", "likelihood_short", "spike_gain", "spike_points", "block_points",
    "likelihood_refresh", "seasonal_reference", "seasonal_hold",
    "likelihood_block", "min_fit_points",
)


def _parse_periods(value: str) -> list[pd.Timedelta]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ValueError("needs at least one period, e.g. '1d,7d'")
    periods = [parse_duration(p) for p in parts]
    if any(p <= pd.Timedelta(0) for p in periods):
        raise ValueError(f"periods must be positive, got {value!r}")
    return sorted(periods)


def _check_periods(value: Any) -> None:
    _parse_periods(value)


def _parse_scales(value: str) -> list[int]:
    try:
        scales = sorted({int(p) for p in value.split(",") if p.strip()})
    except ValueError:
        raise ValueError(f"must be comma-separated whole numbers of points, got {value!r}") from None
    if not scales or scales[0] < 1:
        raise ValueError(f"needs positive numbers of points, e.g. '1,5,20', got {value!r}")
    return scales


def _check_scales(value: Any) -> None:
    _parse_scales(value)


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` delayed by k points (NaN-padded)."""
    out = np.full_like(a, np.nan)
    if k < len(a):
        out[k:] = a[: len(a) - k]
    return out


def _past_median(y: np.ndarray, w: int) -> np.ndarray:
    """median(y[t-w .. t-1]) (NaN until w past points exist)."""
    return _shift(bn.move_median(y, w), 1) if w <= len(y) else np.full_like(y, np.nan)


def infer_step_seconds(timestamps_ns: np.ndarray) -> float:
    """Median spacing in seconds, rounded to a whole second (>= 1 s); 60 s if unknown."""
    if len(timestamps_ns) < 2:
        return NOMINAL_STEP_SECONDS
    step = float(np.median(np.diff(timestamps_ns))) / 1e9
    return max(1.0, float(round(step)))


def regular_grid(timestamps_ns: np.ndarray, values: np.ndarray, step_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample onto an epoch-aligned grid of ``step_ns``: bin means, empty bins
    interpolated linearly. Returns (bin numbers, values)."""
    bins = timestamps_ns // step_ns
    first = int(bins[0])
    rel = (bins - first).astype(np.int64)
    n = int(rel[-1]) + 1
    sums = np.bincount(rel, weights=values, minlength=n)
    counts = np.bincount(rel, minlength=n)
    grid = np.arange(first, first + n, dtype=np.int64)
    have = counts > 0
    out = np.empty(n, dtype=np.float64)
    out[have] = sums[have] / counts[have]
    if not have.all():
        idx = np.flatnonzero(have)
        out[~have] = np.interp(np.flatnonzero(~have), idx, out[have])
    return grid, out


def _circular_smooth(profile: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``width`` slots around the period (wraps at the ends)."""
    if width <= 1 or len(profile) < 3:
        return profile
    width = min(width, len(profile))
    half = width // 2
    padded = np.concatenate([profile[-half:], profile, profile[: width - half - 1]]) if half else profile
    c = np.concatenate([[0.0], np.cumsum(padded)])
    return (c[width:] - c[:-width])[: len(profile)] / width


def _lag_autocorrelation(g: np.ndarray, lag: int) -> float:
    """Autocorrelation at ``lag`` after removing a centred moving average of one period."""
    if len(g) < 2 * lag or lag < 2:
        return math.nan
    c = np.concatenate([[0.0], np.cumsum(g)])
    half = lag // 2
    idx = np.arange(len(g))
    lo = np.clip(idx - half, 0, len(g))
    hi = np.clip(idx - half + lag, 0, len(g))
    ma = (c[hi] - c[lo]) / np.maximum(hi - lo, 1)
    d = g - ma
    a, b = d[:-lag], d[lag:]
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denom if denom > 0 else math.nan


def _clamped(f, a: np.ndarray, w: int, min_count: int) -> np.ndarray:
    """bottleneck moving function with the window clamped to the data (same values)."""
    if len(a) == 0:
        return np.zeros(0)
    w = max(1, min(int(w), len(a)))
    return f(a, w, min_count=max(1, min(int(min_count), w)))


def rolling_baseline(x: np.ndarray, window: int, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trailing rolling median of ``x`` over ``window`` points (including t), the rolling
    mean absolute deviation from it, and the rolling range (max - min). NaN until
    ``min_count`` values (the range needs 10). Equal to ADTK's
    ``RollingAggregate(agg="median"/"mean"/"max"/"min", center=False)``."""
    med = _clamped(bn.move_median, x, window, min_count)
    mad = _clamped(bn.move_mean, np.abs(x - med), window, min_count)
    rng = _clamped(bn.move_max, x, window, min(10, min_count)) - _clamped(bn.move_min, x, window, min(10, min_count))
    return med, mad, rng


def _value_before(ts: np.ndarray, x: np.ndarray, lag_ns: int) -> np.ndarray:
    """x interpolated at ``ts - lag_ns`` from the points around it (NaN before the data)."""
    target = ts - lag_ns
    j = np.searchsorted(ts, target, side="right") - 1
    out = np.full(len(x), np.nan)
    ok = j >= 0
    jj = j[ok]
    nxt = np.minimum(jj + 1, len(x) - 1)
    span = (ts[nxt] - ts[jj]).astype(np.float64)
    frac = np.where(span > 0, (target[ok] - ts[jj]) / np.where(span > 0, span, 1.0), 0.0)
    out[ok] = x[jj] + frac * (x[nxt] - x[jj])
    return out


def _trailing_mean(ext: np.ndarray, m: int, n: int) -> np.ndarray:
    """For each of the last ``n`` positions of ``ext``, the mean of the finite values
    among it and the ``m - 1`` before (NaN if none). Each window is summed on its own,
    so the result does not depend on where ``ext`` starts (incremental == full)."""
    if m <= 1:
        return ext[len(ext) - n:].copy()
    a = np.ascontiguousarray(ext[len(ext) - n - m + 1:])
    w = np.lib.stride_tricks.as_strided(a, shape=(n, m), strides=(a.strides[0], a.strides[0]), writeable=False)
    fin = np.isfinite(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(fin, w, 0.0).sum(axis=1) / fin.sum(axis=1)


def level_difference(x: np.ndarray, median: np.ndarray, m: int) -> np.ndarray:
    """``mean(x[t-m+1..t]) - median[t-m]``: with ``median`` the trailing rolling median
    of H points this is ADTK's ``DoubleRollingAggregate(agg=("median", "mean"),
    window=(H, m), center=False, diff="diff")``."""
    return _clamped(bn.move_mean, x, m, 1) - _shift(median, m)


@register_engine
class AdtkEngine(AnomalyDetectionEngine):
    """ADTK-based engine; see the module docstring for the method."""

    name: ClassVar[str] = "adtk"
    parameters: ClassVar[Mapping[str, Parameter]] = {
        **COMMON_PARAMETERS,
        # scoring components (windows in points)
        "baseline_points": Parameter(int, 1000, "H: points of past data the level baseline and scales use",
                                     minimum=10, maximum=100_000),
        "baseline_min_points": Parameter(int, 30, "points needed before a baseline exists", minimum=2,
                                         maximum=100_000),
        "scales": Parameter(str, "1,5,20", "averaging lengths in points of the level deviation, comma separated",
                            check=_check_scales),
        "range_floor": Parameter(float, 0.01, "scale floor: this fraction of the baseline window's range",
                                 minimum=0.0, maximum=1.0),
        "relative_scale_floor": Parameter(float, 1e-3, "scale floor relative to the baseline median",
                                          minimum=0.0, maximum=1.0),
        "seasonal": Parameter(
            str, "auto", "auto/on: seasonal-difference component once seasonal_lag_cycles periods of data exist "
            "(auto fits explanation profiles whose autocorrelation passes, on fits all); off: no seasonality",
            choices=("auto", "on", "off"),
        ),
        "seasonal_lag": duration_parameter("1d", "lag of the seasonal-difference component (in points at the "
                                           "fitted step)"),
        "seasonal_lag_cycles": Parameter(int, 0, "periods of data before the seasonal difference is used "
                                         "(0: from the start; it exists once one period is seen)",
                                         minimum=0, maximum=100),
        "level_weight": Parameter(float, 1.0, "weight of the level component (0 = off)", minimum=0.0, maximum=10.0),
        "seasonal_weight": Parameter(float, 1.0, "weight of the seasonal-difference component",
                                     minimum=0.0, maximum=10.0),
        "direction": Parameter(str, "both", "which deviations count", choices=("both", "up", "down")),
        # per-series likelihood
        "likelihood_window": Parameter(int, 10000, "points of past surprise a fit summarises (mean, std)",
                                       minimum=10, maximum=1_000_000),
        "likelihood_min_points": Parameter(int, 200, "past points needed before scoring", minimum=2,
                                           maximum=1_000_000),
        "likelihood_short": Parameter(int, 5, "points averaged into the recent surprise", minimum=1, maximum=1000),
        "spike_points": Parameter(int, 5, "spike component: a point against the median of this many points before "
                                  "(0 = off; at most the largest scale - 1)", minimum=0, maximum=1000),
        "spike_gain": Parameter(float, 0.6, "one-point path: z = max(z, spike_gain * (log1p(spike) - its mean) / "
                                "its std) lets an extreme single point through the likelihood_short average "
                                "(0 = off)", minimum=0.0, maximum=10.0),
        "block_points": Parameter(int, 50, "the baseline statistics (medians, scales, range) are refreshed from "
                                  "per-block summaries every this many points", minimum=1, maximum=100_000),
        "seasonal_hold": Parameter(float, 5.0, "a block whose median seasonal deviation exceeds this many "
                                   "seasonal sigmas is left out of the seasonal baseline, for at most one period "
                                   "(0 = off)", minimum=0.0, maximum=1000.0),
        "seasonal_reference": Parameter(str, "points", "what the seasonal difference subtracts: time (the last value "
                                        "in the same step-wide slot of the period, aligned on gappy data) or "
                                        "points (the value seasonal_lag points earlier)", choices=("time", "points")),
        "likelihood_refresh": Parameter(int, 50, "the likelihood mean and std are refreshed every this many points "
                                        "(likelihood_block must be a multiple)", minimum=1, maximum=1_000_000),
        "likelihood_block": Parameter(int, 500, "points per block of the likelihood window's sums (a multiple of "
                                      "block_points)", minimum=1, maximum=1_000_000),
        "suppress_points": Parameter(int, 150, "points after an alarm's first point whose scores are suppressed "
                                     "(0 = off)", minimum=0, maximum=1_000_000),
        # explanations (seasonal profile, expectation, quoted sigma)
        "seasonal_periods": Parameter(str, "1d,7d", "candidate profile periods, comma separated",
                                      check=_check_periods),
        "seasonal_min_cycles": Parameter(int, 2, "cycles of data needed before a profile is fitted",
                                         minimum=2, maximum=100),
        "seasonal_smoothing": duration_parameter(
            "15min", "circular moving average over the fitted profile (slot means of few cycles are noisy)",
            positive=False),
        "seasonal_min_acf": Parameter(float, 0.3, "autocorrelation at the period lag needed in auto mode",
                                      minimum=-1.0, maximum=1.0),
        "spike_window": duration_parameter("15min", "explanations: expectation = median of this much past data"),
        "seasonal_level_window": duration_parameter("2h", "explanations: long baseline of deseasonalised data"),
        # fitting
        "fit_window": duration_parameter("14d", "past data a profile fit uses (weekly seasonality needs 14d)"),
        "refit_age": duration_parameter("1d", "refit the explanation profiles when the state's fit is older than "
                                        "this (the scores do not depend on it: their statistics are streamed)"),
        "min_fit_points": Parameter(int, 200, "points before the first fit; earlier points score 0",
                                    minimum=10, maximum=1_000_000),
    }

    def duration(self, name: str) -> pd.Timedelta:
        cache = self.__dict__.setdefault("_durations", {})
        if name not in cache:
            cache[name] = parse_duration(self.params[name])
        return cache[name]

    def validate_params(self) -> None:
        if self.params["likelihood_min_points"] > self.params["likelihood_window"]:
            raise ValueError("likelihood_min_points: must not exceed likelihood_window")
        if self.params["likelihood_block"] % self.params["likelihood_refresh"]:
            raise ValueError("likelihood_block: must be a multiple of likelihood_refresh")

    # --- sizes ---------------------------------------------------------------------------

    def scale_points(self) -> list[int]:
        return _parse_scales(self.params["scales"])

    def seasonal_lag_points_for(self, step_seconds: float) -> int:
        return max(1, int(round(self.duration("seasonal_lag").total_seconds() / step_seconds)))

    def _explain_points(self, step_seconds: float) -> int:
        def pts(name: str) -> int:
            return max(1, int(round(self.duration(name).total_seconds() / step_seconds)))

        return max(pts("spike_window"), pts("seasonal_level_window"))

    def history_points_for(self, step_seconds: float) -> int:
        """Context points an incremental call (with a state) needs at this sampling step:
        the explanations' look-back (``spike_window``, ``seasonal_level_window``). The
        scores need none: the state carries every statistic they use."""
        return self._explain_points(step_seconds)

    @property
    def history_points(self) -> int:
        """Context points an incremental call needs before the first new point, at
        one-minute sampling (use :meth:`history_points_for` for another step)."""
        return self.history_points_for(NOMINAL_STEP_SECONDS)

    def warmup_points_for(self, step_seconds: float) -> int:
        """Points a stateless run streams before its statistics hold full windows: the
        seasonal lag, the seasonal difference's baseline blocks, the likelihood window
        and a block of slack."""
        lag = 0
        if self.params["seasonal"] != "off" and self.params["seasonal_weight"] > 0:
            lag = self.seasonal_lag_points_for(step_seconds)
        b = self.params["block_points"]
        return lag + self._ring_size() * b + self._likelihood_ring_size() * self.params["likelihood_block"] + b

    def fit_history_points(self, step_seconds: float = NOMINAL_STEP_SECONDS) -> int:
        """Points a fit (or a call without a state) wants: the score statistics' warm-up
        and ``fit_window`` for the explanation profiles."""
        by_time = int(self.duration("fit_window").total_seconds() / step_seconds)
        return max(self.params["min_fit_points"], by_time, self.warmup_points_for(step_seconds))

    def history_points_for_fit(self) -> int:
        return self.fit_history_points(NOMINAL_STEP_SECONDS)

    def _ring_size(self) -> int:
        return max(1, int(round(self.params["baseline_points"] / self.params["block_points"])))

    def _likelihood_ring_size(self) -> int:
        return max(1, int(round(self.params["likelihood_window"] / self.params["likelihood_block"])))

    def _fit_fingerprint(self) -> dict[str, Any]:
        return {k: self.params[k] for k in _FIT_PARAMS}

    # --- components ----------------------------------------------------------------------

    def deviations(self, x: np.ndarray, lag: int, ts: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Component deviations in robust sigmas (max over scales; NaN where undefined)
        and their maximum ``"d"`` (NaN -> 0). ``lag`` = seasonal lag in points, 0 = off.
        With timestamps ``ts`` the seasonal difference is taken against the value one
        ``seasonal_lag`` earlier in time (linear interpolation between the neighbouring
        past points), which equals the ``lag``-point difference on regular data and
        stays aligned on jittered or gappy data."""
        x = np.asarray(x, dtype=np.float64)
        n = len(x)
        h, h_min = self.params["baseline_points"], self.params["baseline_min_points"]
        direction = self.params["direction"]
        range_floor, rel_floor = self.params["range_floor"], self.params["relative_scale_floor"]
        out: dict[str, np.ndarray] = {}
        med, mad, rng = rolling_baseline(x, h, h_min)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.full(n, np.nan)
            if self.params["level_weight"] > 0:
                for m in self.scale_points():
                    base = _shift(med, m)
                    scale = np.fmax(np.fmax(MEAN_ABS_TO_SIGMA * _shift(mad, m), rel_floor * np.abs(base) + 1e-9),
                                    range_floor * _shift(rng, m))
                    diff = level_difference(x, med, m)
                    signed = np.abs(diff) if direction == "both" else (diff if direction == "up" else -diff)
                    level = np.fmax(level, np.fmax(signed, 0.0) / scale)
                out["level"] = level
            d = self.params["level_weight"] * np.nan_to_num(level, nan=0.0)
            if lag > 0 and self.params["seasonal_weight"] > 0:
                sd = x - (_shift(x, lag) if ts is None else _value_before(ts, x, int(self.duration("seasonal_lag").value)))
                smed, smad, _ = rolling_baseline(sd, h, h_min)
                dev = sd - _shift(smed, 1)
                if direction == "both":
                    dev = np.abs(dev)
                elif direction == "down":
                    dev = np.fmax(-dev, 0.0)
                else:
                    dev = np.fmax(dev, 0.0)
                scale = np.fmax(np.fmax(MEAN_ABS_TO_SIGMA * _shift(smad, 1), range_floor * _shift(rng, 1)), 1e-9)
                seasonal = np.full(n, np.nan)
                for m in self.scale_points():
                    seasonal = np.fmax(seasonal, _clamped(bn.move_mean, dev, m, 1) / scale)
                out["seasonal"] = seasonal
                d = np.fmax(d, self.params["seasonal_weight"] * np.nan_to_num(seasonal, nan=0.0))
        out["d"] = d
        out["baseline"] = _shift(med, 1)
        return out

    def surprise(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``u = log1p(d)`` and its trailing mean over ``likelihood_short`` points."""
        u = np.log1p(np.fmax(d, 0.0))
        return u, _clamped(bn.move_mean, u, self.params["likelihood_short"], 1)

    # --- fitting -------------------------------------------------------------------------

    def fit(self, series: MetricSeries, *, end_index: int | None = None) -> AdtkFittedState:
        """Fit on the points before ``end_index`` (all by default): explanation profiles
        on the last ``fit_window``, and the scoring statistics streamed over all of them
        (a stateless pass, as a full run makes)."""
        ts = series.timestamps.asi8
        x = np.asarray(series.values, dtype=np.float64)
        end = len(ts) if end_index is None else int(end_index)
        stream = self.new_stream(ts[:end])
        if end:
            self._advance(stream, ts[:end], x[:end])
        return self._fit_upto(ts, x, end, stream)

    def _fit_upto(self, ts: np.ndarray, x: np.ndarray, end: int, stream: StreamState | None) -> AdtkFittedState:
        """Explanation fit on points before ``end`` (within ``fit_window``), with
        ``stream`` (scoring statistics up to ``end``) attached."""
        if end < 2:
            raise ValueError("series: at least 2 points are needed to fit")
        lo = int(np.searchsorted(ts[:end], ts[end - 1] - int(self.duration("fit_window").value), side="left"))
        state = self._fit_arrays(ts[lo:end], x[lo:end])
        if stream is not None:
            self._attach(state, stream)
        return state

    def _attach(self, state: AdtkFittedState, stream: StreamState) -> None:
        state.stream = stream
        state.seasonal_lag_points = stream.lag
        state.likelihood_mean, state.likelihood_std = stream.lik_mean, stream.lik_std
        state.likelihood_count = int(stream.ring_likelihood[:, 2].sum() + stream.lik_open[2])

    # --- the streamed scoring statistics ----------------------------------------------

    def new_stream(self, ts: np.ndarray) -> StreamState:
        """An empty stream; the step is the median spacing of the first
        ``min_fit_points`` points (what a product knows from the metric's configuration)."""
        step = infer_step_seconds(ts[: self.params["min_fit_points"]])
        lag = 0
        if self.params["seasonal"] != "off" and self.params["seasonal_weight"] > 0:
            p = self.seasonal_lag_points_for(step)
            lag = p if p >= 2 else 0
        tail = max(max(self.scale_points()) - 1, self.params["spike_points"])
        return StreamState(
            step_seconds=step, lag=lag, lag_buffer=np.full(lag, np.nan),
            tail_x=np.full(tail, np.nan), tail_dev=np.full(tail, np.nan), tail_stats=np.full((tail, 2), np.nan),
            tail_u=np.full(self.params["likelihood_short"] - 1, np.nan),
        )

    def _slot_reference(self, st: StreamState, ts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Seasonal reference by time of period: the slot of a point is its offset in
        the (epoch-aligned) ``seasonal_lag`` period in steps; its reference is the last
        earlier value seen in the same slot (one period ago on regular data, equal to
        the ``lag``-point difference; still aligned on gappy or jittered data).
        ``st.lag_buffer[slot]`` holds the last value per slot."""
        step_ns = int(round(st.step_seconds * 1e9))
        slots = ((ts % (st.lag * step_ns)) // step_ns).astype(np.int64)
        slots = np.minimum(slots, st.lag - 1)
        order = np.argsort(slots, kind="stable")
        ss = slots[order]
        ref_sorted = np.empty(len(x))
        same = np.zeros(len(x), dtype=bool)
        same[1:] = ss[1:] == ss[:-1]
        xs = x[order]
        ref_sorted[1:] = np.where(same[1:], xs[:-1], np.nan)
        ref_sorted[~same] = st.lag_buffer[ss[~same]]
        ref = np.empty(len(x))
        ref[order] = ref_sorted
        last = np.ones(len(x), dtype=bool)
        last[:-1] = ss[1:] != ss[:-1]
        st.lag_buffer = st.lag_buffer.copy()
        st.lag_buffer[ss[last]] = xs[last]
        return ref

    def _close_block(self, st: StreamState) -> None:
        """The open block is complete: summarise it into the rings, refresh the stats."""
        k = self._ring_size()
        bx, bsd = st.open_x, st.open_sd
        base, sbase = st.stats[0], st.stats[2]
        ref = base if math.isfinite(base) else float(np.median(bx))
        br = st.open_r[np.isfinite(st.open_r)]
        row = [float(np.median(bx)), float(np.abs(bx - ref).sum()), float(len(bx)), float(bx.min()), float(bx.max()),
               float(np.abs(br).sum()), float(br.size)]
        st.ring_level = np.vstack([st.ring_level, row])[-k:]
        fin = bsd[np.isfinite(bsd)]
        if fin.size:
            smed = float(np.median(fin))
            sref = sbase if math.isfinite(sbase) else smed
            srow = [smed, float(np.abs(fin - sref).sum()), float(fin.size)]
        else:
            srow = [math.nan, 0.0, 0.0]
        hold = self.params["seasonal_hold"]
        sscale = st.stats[3]
        if (hold > 0 and fin.size and math.isfinite(sbase) and math.isfinite(sscale)
                and float(np.median(np.abs(fin - sbase))) > hold * sscale
                and (st.held_blocks + 1) * len(bx) <= st.lag):
            st.held_blocks += 1  # an anomalous block does not teach the seasonal baseline (for up to a period)
        else:
            st.held_blocks = 0
            st.ring_seasonal = np.vstack([st.ring_seasonal, srow])[-k:]
        st.open_x, st.open_sd, st.open_r = np.zeros(0), np.zeros(0), np.zeros(0)
        # refresh
        h_min = self.params["baseline_min_points"]
        stats = np.full(5, np.nan)
        ring = st.ring_level
        cnt = ring[:, 2].sum()
        rng = float(ring[:, 4].max() - ring[:, 3].min())
        if cnt >= h_min:
            med = float(np.median(ring[:, 0]))
            mad = float(ring[:, 1].sum() / cnt)
            stats[0] = med
            floor = max(self.params["range_floor"] * rng, self.params["relative_scale_floor"] * abs(med) + 1e-9)
            stats[1] = max(MEAN_ABS_TO_SIGMA * mad, floor)
            rcnt = ring[:, 6].sum()
            if rcnt >= h_min:
                stats[4] = max(MEAN_ABS_TO_SIGMA * float(ring[:, 5].sum() / rcnt), floor)
        sring = st.ring_seasonal
        have = sring[:, 2] > 0
        scnt = sring[have, 2].sum()
        if scnt >= h_min:
            stats[2] = float(np.median(sring[have, 0]))
            smad = float(sring[have, 1].sum() / scnt)
            stats[3] = max(MEAN_ABS_TO_SIGMA * smad, self.params["range_floor"] * rng, 1e-9)
        st.stats = stats

    def _refresh_likelihood(self, st: StreamState, close: bool) -> None:
        if close:
            st.ring_likelihood = np.vstack([st.ring_likelihood, st.lik_open])[-self._likelihood_ring_size():]
            st.lik_open = np.zeros(5)
        tot = st.ring_likelihood.sum(axis=0) + st.lik_open
        if tot[2] >= self.params["likelihood_min_points"]:
            mean = tot[0] / tot[2]
            st.lik_mean = float(mean)
            st.lik_std = float(math.sqrt(max(tot[1] / tot[2] - mean * mean, 0.0)))
            smean = tot[3] / tot[2]
            st.spike_mean = float(smean)
            st.spike_std = float(math.sqrt(max(tot[4] / tot[2] - smean * smean, 0.0)))


    def _advance(self, st: StreamState, ts: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:  # noqa: C901 - until the detection rewrite
        """Score new points ``x`` (after ``st.cursor_ns``) and advance ``st`` in place.
        Returns per-point arrays: level, seasonal (deviations in sigmas), d, u, z. The
        same numbers however the points are split into calls (to rounding of the
        likelihood block sums)."""
        x = np.asarray(x, dtype=np.float64)
        n = len(x)
        b = self.params["block_points"]
        lb = self.params["likelihood_block"]
        direction = self.params["direction"]
        g0 = st.points
        # seasonal difference x_t - x_(t - lag), lag in points
        lag = st.lag
        if lag > 0:
            if self.params["seasonal_reference"] == "time":
                sd = x - self._slot_reference(st, ts, x)
            else:
                ext = np.concatenate([st.lag_buffer, x])
                sd = x - ext[:n]
                st.lag_buffer = ext[-lag:]
            cycles = self.params["seasonal_lag_cycles"]
            if cycles > 0:
                sd = np.where(g0 + np.arange(n) >= cycles * lag, sd, np.nan)
        else:
            sd = np.full(n, np.nan)
        # statistics in force at each point (refreshed at block boundaries)
        # one-point residual against the median of the few points before (ADTK's PersistAD)
        w = self.params["spike_points"]
        ext_x = np.concatenate([st.tail_x, x])
        t = len(st.tail_x)
        if w > 0:  # median of the w points before each new point (exact: a selection)
            r = x - bn.move_median(ext_x[t - w:t - 1 + n], w, min_count=1)[w - 1:]
        else:
            r = np.full(n, np.nan)
        stats = np.empty((n, 5))
        i = 0
        while i < n:
            j = min(n, i + b - (g0 + i) % b)
            stats[i:j] = st.stats
            st.open_x = np.concatenate([st.open_x, x[i:j]])
            st.open_sd = np.concatenate([st.open_sd, sd[i:j]])
            st.open_r = np.concatenate([st.open_r, r[i:j]])
            if (g0 + j) % b == 0:
                self._close_block(st)
            i = j
        _, _, sbase, sscale, rscale = stats.T  # the level uses the statistics in force m - 1 points earlier
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.full(n, np.nan)
            # scale m compares the mean of the last m points with the statistics in force
            # at the first of them (the baseline then holds none of the m points)
            ext_stats = np.concatenate([st.tail_stats, stats[:, :2]])
            if self.params["level_weight"] > 0:
                for m in self.scale_points():
                    bs = ext_stats[t - m + 1:t - m + 1 + n]
                    diff = _trailing_mean(ext_x, m, n) - bs[:, 0]
                    signed = np.abs(diff) if direction == "both" else (diff if direction == "up" else -diff)
                    level = np.fmax(level, np.fmax(signed, 0.0) / bs[:, 1])
            dev = sd - sbase
            if direction == "both":
                dev = np.abs(dev)
            elif direction == "down":
                dev = np.where(np.isnan(dev), np.nan, np.fmax(-dev, 0.0))
            else:
                dev = np.where(np.isnan(dev), np.nan, np.fmax(dev, 0.0))
            ext_dev = np.concatenate([st.tail_dev, dev])
            seasonal = np.full(n, np.nan)
            if lag > 0:
                for m in self.scale_points():
                    seasonal = np.fmax(seasonal, _trailing_mean(ext_dev, m, n) / sscale)
            signed = np.abs(r) if direction == "both" else (r if direction == "up" else -r)
            spike = np.fmax(signed, 0.0) / rscale
            d = self.params["level_weight"] * np.nan_to_num(level, nan=0.0)
            d = np.fmax(d, self.params["seasonal_weight"] * np.nan_to_num(seasonal, nan=0.0))
            u = np.log1p(np.fmax(d, 0.0))
            ext_u = np.concatenate([st.tail_u, u])
            short = _trailing_mean(ext_u, self.params["likelihood_short"], n)
        if t:
            st.tail_x, st.tail_dev, st.tail_stats = ext_x[-t:], ext_dev[-t:], ext_stats[-t:]
        if len(st.tail_u):
            st.tail_u = ext_u[-len(st.tail_u):]
        # likelihood: mean/std of u over the likelihood window, refreshed every block
        mu = np.empty(n)
        sdv = np.empty(n)
        smu = np.empty(n)
        ssd = np.empty(n)
        us = np.log1p(np.nan_to_num(spike, nan=0.0))
        i = 0
        r = self.params["likelihood_refresh"]
        while i < n:
            j = min(n, i + r - (g0 + i) % r)
            mu[i:j], sdv[i:j] = st.lik_mean, st.lik_std
            smu[i:j], ssd[i:j] = st.spike_mean, st.spike_std
            seg, sseg = u[i:j], us[i:j]
            st.lik_open = st.lik_open + np.array([seg.sum(), (seg * seg).sum(), float(j - i), sseg.sum(),
                                                  (sseg * sseg).sum()])
            if (g0 + j) % r == 0:
                self._refresh_likelihood(st, close=(g0 + j) % lb == 0)
            i = j
        k = self.params["likelihood_short"]
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (short - mu) / np.fmax(sdv / math.sqrt(k), 1e-6)
            gain = self.params["spike_gain"]
            if gain > 0:
                z = np.fmax(z, gain * (us - smu) / np.fmax(ssd, 1e-6))
        z = np.nan_to_num(z, nan=0.0)
        z[g0 + np.arange(n) < self.params["min_fit_points"]] = 0.0
        st.points = g0 + n
        if n:
            st.cursor_ns = int(ts[-1])
        return {"level": level, "seasonal": seasonal, "spike": spike, "d": d, "u": u, "z": z}

    def _score_stream(
        self, st: StreamState, ts: np.ndarray, x: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Advance ``st`` over new points; returns (arrays, scores, alarms, confirmed)."""
        out = self._advance(st, ts, x)
        carry = {"previous_start": st.since_alarm, "last_alarm_end_ns": st.last_alarm_end_ns,
                 "recent_hits_ns": st.recent_hits_ns, "open": st.open_alarm}
        scores, alarms, confirmed, carry = self.postprocess_carry(
            calibration.likelihood_to_score(out["z"]), ts, suppress_points=int(self.params["suppress_points"]),
            carry=carry,
        )
        st.since_alarm, st.last_alarm_end_ns = carry["previous_start"], carry["last_alarm_end_ns"]
        st.recent_hits_ns, st.open_alarm = carry["recent_hits_ns"], carry["open"]
        return out, scores, alarms, confirmed

    def _fit_arrays(self, ts: np.ndarray, x: np.ndarray) -> AdtkFittedState:
        from adtk.detector import InterQuartileRangeAD  # imported lazily: adtk import is slow

        step_seconds = infer_step_seconds(ts)
        typical = float(np.median(np.abs(x)))
        seasonal = self._fit_seasonal(ts, x, step_seconds)
        state = AdtkFittedState(
            fit_time=datetime.now(UTC),
            data_end=pd.Timestamp(int(ts[-1]), tz="UTC").floor("us").to_pydatetime(),
            data_start=pd.Timestamp(int(ts[0]), tz="UTC").floor("us").to_pydatetime(),
            n_points=len(ts),
            step_seconds=step_seconds,
            seasonal=seasonal,
            typical_magnitude=typical,
            params=self._fit_fingerprint(),
        )
        # the sigma explanations quote: ADTK's IQR detector on the spike statistic
        stat = self._explanation_arrays(ts, x, state)["spike"]
        finite = np.isfinite(stat)
        floor = float(calibration.floor_scale(0.0, typical, relative_floor=self.params["relative_scale_floor"]))
        center, sigma, low, high = 0.0, math.nan, math.nan, math.nan
        if finite.sum() >= 4:
            detector = InterQuartileRangeAD(c=IQR_C)
            detector.fit(pd.Series(stat, index=pd.DatetimeIndex(ts, tz="UTC")))
            low, high = float(detector.abs_low_), float(detector.abs_high_)
            center = (high + low) / 2.0
            sigma = (high - low) / (1.0 + 2.0 * IQR_C) * calibration.IQR_TO_SIGMA
            if not (sigma > 0.0 and math.isfinite(sigma)):
                center, sigma = calibration.robust_location_scale(stat[finite])
        if not math.isfinite(center):
            center = 0.0
        sigma = max(sigma, floor) if math.isfinite(sigma) else floor
        state.scales["spike"] = ComponentScale(center=center, sigma=sigma, low=low, high=high)
        return state

    def _fit_seasonal(self, ts: np.ndarray, x: np.ndarray, step_seconds: float) -> list[SeasonalComponent]:
        mode = self.params["seasonal"]
        if mode == "off" or len(ts) < 4:
            return []
        from adtk.transformer import ClassicSeasonalDecomposition

        step_ns = int(round(step_seconds * 1e9))
        bins, g = regular_grid(ts, x, step_ns)
        components: list[SeasonalComponent] = []
        for period in _parse_periods(self.params["seasonal_periods"]):
            ratio = period.total_seconds() / step_seconds
            slots = int(round(ratio))
            if slots < 4 or abs(ratio - slots) > 1e-6 or len(g) < self.params["seasonal_min_cycles"] * slots:
                continue
            acf = _lag_autocorrelation(g, slots)
            if mode == "auto" and not (acf >= self.params["seasonal_min_acf"]):
                continue
            index = pd.date_range(
                start=pd.Timestamp(int(bins[0]) * step_ns, tz="UTC"), periods=len(g), freq=pd.Timedelta(step_ns)
            )
            csd = ClassicSeasonalDecomposition(freq=slots, trend=True)
            try:
                csd.fit(pd.Series(g, index=index))
            except Exception:  # noqa: BLE001 - statsmodels/ADTK refuse some inputs; skip that period
                continue
            pattern = np.asarray(csd.seasonal_.to_numpy(), dtype=np.float64)
            period_ns = int(period.value)
            slot0 = int((int(bins[0]) * step_ns) % period_ns // step_ns)
            profile = np.empty(slots, dtype=np.float64)
            profile[(slot0 + np.arange(slots)) % slots] = pattern
            profile = _circular_smooth(profile, int(round(self.duration("seasonal_smoothing").total_seconds() / step_seconds)))
            component = SeasonalComponent(
                period_seconds=period.total_seconds(), step_seconds=step_seconds,
                profile=profile, autocorrelation=float(acf) if math.isfinite(acf) else 0.0,
            )
            components.append(component)
            g = g - profile[component.slots(bins * step_ns)]
        return components

    # --- scoring -------------------------------------------------------------------------

    def _explanation_arrays(self, ts: np.ndarray, x: np.ndarray, state: AdtkFittedState) -> dict[str, np.ndarray]:
        """Seasonal profile offset, expectation (profile + past median of the
        deseasonalised data over spike_window), the spike statistic (PersistAD's) and
        the long seasonal baseline."""
        def pts(name: str) -> int:
            return max(1, int(round(self.duration(name).total_seconds() / state.step_seconds)))

        seasonal = state.seasonal_expected(ts) if state.seasonal else np.zeros(len(x))
        y = x - seasonal
        base = _past_median(y, pts("spike_window"))
        out = {"seasonal": seasonal, "spike": y - base, "expected": seasonal + base}
        if state.seasonal:
            out["seasonal_expected"] = seasonal + _past_median(y, pts("seasonal_level_window"))
        return out

    def _explain_with_state(self, ts: np.ndarray, x: np.ndarray, state: AdtkFittedState) -> dict[str, np.ndarray]:
        ex = self._explanation_arrays(ts, x, state)
        expected = np.where(np.isfinite(ex["expected"]), ex["expected"], x)
        out = {
            "seasonal": ex["seasonal"],
            "expected": expected,
            "scale": np.full(len(x), state.scales["spike"].sigma if "spike" in state.scales else np.nan),
        }
        if "seasonal_expected" in ex:
            out["seasonal_expected"] = np.where(np.isfinite(ex["seasonal_expected"]), ex["seasonal_expected"], expected)
        return out

    def _walk_explanations(self, ts: np.ndarray, x: np.ndarray) -> tuple[dict[str, np.ndarray], AdtkFittedState | None]:
        """Explanation arrays of a full run: profiles fitted on the past, refitted when
        the data doubles (early) or every ``refit_age`` of data time, as production would."""
        n = len(x)
        out: dict[str, np.ndarray] = {
            "expected": x.astype(np.float64).copy(), "scale": np.full(n, np.nan),
            "seasonal": np.zeros(n), "seasonal_expected": np.full(n, np.nan),
        }
        has_seasonal = np.zeros(n, dtype=bool)
        i = int(self.params["min_fit_points"])
        refit_ns = int(self.duration("refit_age").value)
        state = None
        while i < n:
            state = self._fit_upto(ts, x, i, None)
            by_age = int(np.searchsorted(ts, ts[i - 1] + refit_ns, side="right"))
            nxt = min(max(min(2 * i, by_age), i + 1), n)
            h0 = max(0, i - self._explain_points(state.step_seconds))
            part = self._explain_with_state(ts[h0:nxt], x[h0:nxt], state)
            k = i - h0
            for key in ("expected", "scale", "seasonal"):
                out[key][i:nxt] = part[key][k:]
            if "seasonal_expected" in part:
                out["seasonal_expected"][i:nxt] = part["seasonal_expected"][k:]
                has_seasonal[i:nxt] = True
            i = nxt
        out["seasonal_expected"] = np.where(has_seasonal, out["seasonal_expected"], out["expected"])
        if not has_seasonal.any():
            del out["seasonal_expected"]
        scale = out["scale"]
        if np.isfinite(scale).any():  # warm-up points quote the first fitted sigma
            out["scale"] = np.where(np.isfinite(scale), scale, scale[np.flatnonzero(np.isfinite(scale))[0]])
        final = self._fit_upto(ts, x, n, None) if n >= self.params["min_fit_points"] else None
        return out, final

    def _usable_stream(self, state: AdtkFittedState) -> bool:
        st = state.stream
        return (
            st is not None and state.params == self._fit_fingerprint()
            and len(st.tail_x) == max(max(self.scale_points()) - 1, self.params["spike_points"])
            and len(st.tail_u) == self.params["likelihood_short"] - 1
        )

    def score(self, series: MetricSeries, state: AdtkFittedState | None = None) -> tuple[ScoredSeries, Any]:
        """Causal scores. Without a state: a stateless pass over the whole series (the
        scoring statistics streamed from its first point; explanation profiles fitted
        as in the module docstring); returns the state at its end. With a state: the
        points after the state's cursor are scored by advancing a copy of its streamed
        statistics (returned in the new state); points at or before the cursor were
        scored by an earlier call and are context only (score 0, no alarm)."""
        ts = series.timestamps.asi8
        x = np.asarray(series.values, dtype=np.float64)
        if state is not None and not isinstance(state, AdtkFittedState):
            raise ValueError(f"state: must be an AdtkFittedState, got {type(state).__name__}")
        n = len(x)
        if n == 0:
            empty = np.zeros(0)
            return ScoredSeries(empty, empty, empty, np.zeros(0, dtype=bool)), state
        scores = np.zeros(n)
        alarms = np.zeros(n, dtype=bool)
        confirmed = np.zeros(n, dtype=bool)
        level, seasonal, d, z = (np.full(n, np.nan) for _ in range(4))
        if state is None or not self._usable_stream(state):
            ex, final = self._walk_explanations(ts, x)
            stream = self.new_stream(ts)
            first = 0
        else:
            ex = self._explain_with_state(ts, x, state)
            stream = state.stream.copy()
            first = 0 if stream.cursor_ns is None else int(np.searchsorted(ts, stream.cursor_ns, side="right"))
            final = state
        if first < n:
            out, scores[first:], alarms[first:], confirmed[first:] = self._score_stream(stream, ts[first:], x[first:])
            level[first:], seasonal[first:], d[first:], z[first:] = out["level"], out["seasonal"], out["d"], out["z"]
        if final is not None:
            final = dataclasses.replace(final, scales=dict(final.scales), params=dict(final.params))
            self._attach(final, stream)
        components = {"level": level, "deviation": d, "likelihood": z}
        if stream.lag > 0:
            components["seasonal"] = seasonal
        return (
            ScoredSeries(
                scores=scores,
                expected=ex["expected"],
                scale=ex["scale"],
                alarms=alarms,
                seasonal_expected=ex.get("seasonal_expected"),
                components=components,
                seasonal_component=ex.get("seasonal"),
                confirmed=confirmed,
            ),
            final,
        )

    def load_state(self, data: Any) -> AdtkFittedState | None:
        if data is None:
            return None
        if isinstance(data, AdtkFittedState):
            return data
        try:
            return AdtkFittedState.from_dict(data)
        except (KeyError, TypeError, ValueError):
            return None  # unreadable or old version: refit

    def needs_refit(self, state: AdtkFittedState | None, now: datetime) -> bool:
        if state is None:
            return True
        return state.params != self._fit_fingerprint() or state.is_stale(now, self.duration("refit_age"))

    def refresh_state(self, series: MetricSeries, state: Any, since_index: int) -> Any:
        """Refit a stale (or differently configured) state on the points before
        ``since_index`` when there are enough of them; otherwise keep it (a stale state
        still scores: its streamed statistics are current, only the explanation profiles
        age; the caller should load ``history_points_for_fit`` next time). A refit of the
        explanation profiles keeps the streamed statistics; a changed configuration
        restreams them from the series."""
        if state is None or since_index <= 0 or since_index > len(series):
            return state
        now = series.timestamps[min(since_index, len(series) - 1)].to_pydatetime()
        if not self.needs_refit(state, now):
            return state
        enough = min(state.n_points, self.fit_history_points(state.step_seconds))
        changed = state.params != self._fit_fingerprint() or state.stream is None
        if changed:
            if since_index >= self.params["min_fit_points"]:
                return self.fit(series, end_index=since_index)
            return state
        if since_index >= enough:
            ts = series.timestamps.asi8
            fresh = self._fit_upto(ts, np.asarray(series.values, dtype=np.float64), since_index, None)
            self._attach(fresh, state.stream)
            return fresh
        return state
