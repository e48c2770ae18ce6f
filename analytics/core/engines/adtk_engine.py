"""The ADTK engine ("adtk", the product default): causal, per-series calibrated, fit rarely.

ADTK detectors return labels, and their ``fit`` learns thresholds from the whole series
it is given, so using them as published would look into the future. This engine keeps
ADTK's transforms (the hot path re-implements them in numpy/bottleneck; tests check the
re-implementations equal ADTK's output) and adds what a corpus-wide threshold needs:
a per-series "anomaly likelihood" and alarm suppression counted in points.
Windows are counted in POINTS (sampling steps differ by an order of magnitude between
metrics; a "15min" window is 15 points on one metric and less than one on another).

**Components** (``d``: deviation in robust sigmas, all causal), for every point t:

  ============ ================================================================ ==========
  component    statistic (ADTK transform it equals)                             parameter
  ============ ================================================================ ==========
  level        for each m in ``scales`` (1, 5, 20 points):                      scales,
               ``|mean(x[t-m+1..t]) - median(x[t-m-H+1..t-m])| / s_m``           baseline_points
               (``DoubleRollingAggregate(agg=("median", "mean"),                 (H = 1000)
               window=(H, m), center=False, diff="diff")``)
  seasonal     the same on the seasonal difference ``x_t - x_(t-P)``, P = one  seasonal_lag
               ``seasonal_lag`` in points: ``mean over m points of |sd -
               median(sd over the H points before)| / s'`` (``Series.diff(P)``,
               ``RollingAggregate``); on once the data holds
               ``seasonal_lag_cycles`` (0: from the start) periods, unless "off"
  ============ ================================================================ ==========

  Scales: ``s = max(1.2533 * mean|x - rolling median|`` over the same H past points
  (``RollingAggregate(agg="median")`` then ``RollingAggregate(agg="mean")``),
  ``range_floor`` (1%) of that window's range (``max - min``), ``relative_scale_floor``
  (1e-3) of ``|median|``). The range floor keeps flat, stepped and quantised series from
  turning ordinary steps into hundreds of sigmas. ``d = max`` over components and scales
  (each weighted by ``level_weight`` / ``seasonal_weight``; signed by ``direction``).

**Per-series likelihood** (HTM's anomaly likelihood): ``u = log1p(d)``; the fitted
state holds ``mu``, ``sd`` = mean and std of ``u`` over the ``likelihood_window`` (10000)
points before the fit (at least ``likelihood_min_points``, 200); the point's
``z = (mean(u over the last likelihood_short points) - mu) / (sd / sqrt(likelihood_short))``
and ``score = calibration.likelihood_to_score(z)`` (``z / (z + 2.8)``: 0.5 at z = 2.8,
the NAB-optimal operating point, see calibration.py).

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

**Fit (rare, on past data only)** -> :class:`~analytics.core.engines.state.AdtkFittedState`:
sampling step (median spacing), seasonal lag in points, likelihood statistics, seasonal
profiles and the explanation sigma. ``fit_history_points`` is what a refit wants.

**Full runs without a state** (``score(series)``, what the NAB harness calls) walk the
series as production would: nothing is scored until ``min_fit_points`` points exist; a
state fitted on the points before index i scores the following segment; it is refitted
when the data doubles (early) or when ``refit_age`` (6 h) of data time has passed. Scores are
strictly causal, fits included. The returned state is fitted on the whole series.

**Incremental runs**: ``score(tail, state)`` where ``tail`` holds ``history_points``
points before the new ones gives the new points the same scores as
``score(full_series, state)`` (to rounding of rolling sums, ~1e-12): ``history_points``
covers the longest look-back (the seasonal lag plus two baseline windows plus the
largest scale plus the likelihood's short window) plus ``suppress_points`` (to see an
earlier alarm that suppresses a new point; exact unless alarms chained back further
than that). The long likelihood window lives in the state, not in the history.
``analyse``/``detect`` refit a state that is older than ``refit_age`` when the series
holds enough earlier points.
"""

from __future__ import annotations

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
from analytics.core.engines.state import AdtkFittedState, ComponentScale, SeasonalComponent

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
    "likelihood_window", "likelihood_min_points", "likelihood_short",
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
        "refit_age": duration_parameter("6h", "refit when the state's data is older than this (the likelihood "
                                        "statistics should follow the series)"),
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
        """Context points an incremental call needs at this sampling step (see the module doc)."""
        h = self.params["baseline_points"]
        m = max(self.scale_points())
        look = 2 * h + m - 2  # level: the scale's residuals need their own rolling median
        if self.params["seasonal"] != "off" and self.params["seasonal_weight"] > 0:
            look = max(look, self.seasonal_lag_points_for(step_seconds) + 2 * h + m - 2)
        look += self.params["likelihood_short"] - 1 + self.params["suppress_points"]
        return max(look, self._explain_points(step_seconds))

    @property
    def history_points(self) -> int:
        """Context points needed before the first new point, at one-minute sampling
        (use :meth:`history_points_for` for another step)."""
        return self.history_points_for(NOMINAL_STEP_SECONDS)

    def fit_history_points(self, step_seconds: float = NOMINAL_STEP_SECONDS) -> int:
        """Points a refit wants: the likelihood window plus its look-back, and ``fit_window``."""
        by_time = int(self.duration("fit_window").total_seconds() / step_seconds)
        by_likelihood = self.params["likelihood_window"] + self.history_points_for(step_seconds)
        return max(self.params["min_fit_points"], by_time, by_likelihood)

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
        """Fit on the points before ``end_index`` (all by default)."""
        ts = series.timestamps.asi8
        return self._fit_upto(ts, np.asarray(series.values, dtype=np.float64), len(ts) if end_index is None else end_index)

    def _fit_upto(
        self, ts: np.ndarray, x: np.ndarray, end: int, surprise_cache: dict[int, np.ndarray] | None = None
    ) -> AdtkFittedState:
        """Fit on points before ``end``. ``surprise_cache`` (lag -> u over the whole
        series, causal) saves recomputing u in a walk."""
        if end < 2:
            raise ValueError("series: at least 2 points are needed to fit")
        lo = int(np.searchsorted(ts[:end], ts[end - 1] - int(self.duration("fit_window").value), side="left"))
        state = self._fit_arrays(ts[lo:end], x[lo:end])
        # seasonal lag: counted over all the data available, not only fit_window
        lag = 0
        if self.params["seasonal"] != "off" and self.params["seasonal_weight"] > 0:
            p = self.seasonal_lag_points_for(state.step_seconds)
            if p >= 2 and end >= self.params["seasonal_lag_cycles"] * p:
                lag = p
        state.seasonal_lag_points = lag
        # likelihood statistics of u over the last likelihood_window points
        window = self.params["likelihood_window"]
        if surprise_cache is not None and lag in surprise_cache:
            u = surprise_cache[lag][max(0, end - window):end]
        else:
            h0 = max(0, end - window - self.history_points_for(state.step_seconds))
            u = self.surprise(self.deviations(x[h0:end], lag)["d"])[0][-window:]
        state.likelihood_count = int(len(u))
        if len(u) >= self.params["likelihood_min_points"]:
            state.likelihood_mean = float(np.mean(u))
            state.likelihood_std = float(np.std(u))
        return state

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

    def _likelihood(self, short: np.ndarray, state: AdtkFittedState) -> np.ndarray:
        if not state.likelihood_ready:
            return np.zeros(len(short))
        k = self.params["likelihood_short"]
        se = max(state.likelihood_std / math.sqrt(k), 1e-6)
        return np.nan_to_num((short - state.likelihood_mean) / se, nan=0.0)

    def _score_with_state(
        self, ts: np.ndarray, x: np.ndarray, state: AdtkFittedState, comps: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        if comps is None:
            comps = self.deviations(x, state.seasonal_lag_points)
            comps["short"] = self.surprise(comps["d"])[1]
        z = self._likelihood(comps["short"], state)
        ex = self._explanation_arrays(ts, x, state)
        expected = np.where(np.isfinite(ex["expected"]), ex["expected"], x)
        out = {
            "z": z,
            "d": comps["d"],
            "seasonal": ex["seasonal"],
            "expected": expected,
            "scale": np.full(len(x), state.scales["spike"].sigma if "spike" in state.scales else np.nan),
        }
        if "seasonal_expected" in ex:
            out["seasonal_expected"] = np.where(np.isfinite(ex["seasonal_expected"]), ex["seasonal_expected"], expected)
        for name in ("level", "seasonal"):
            if name in comps:
                out[f"z_{name}"] = comps[name]
        return out

    def _walk(self, ts: np.ndarray, x: np.ndarray) -> tuple[dict[str, np.ndarray], AdtkFittedState | None]:
        """Causal full run: fit on the past, score the next segment, refit as production would."""
        n = len(x)
        out: dict[str, np.ndarray] = {
            "z": np.zeros(n), "d": np.zeros(n), "expected": x.astype(np.float64).copy(), "scale": np.full(n, np.nan),
            "seasonal": np.zeros(n), "seasonal_expected": np.full(n, np.nan),
        }
        has_seasonal = np.zeros(n, dtype=bool)
        comps_by_lag: dict[int, dict[str, np.ndarray]] = {}  # components are causal: compute once per lag
        u_by_lag: dict[int, np.ndarray] = {}

        def components(lag: int) -> dict[str, np.ndarray]:
            if lag not in comps_by_lag:
                comps = self.deviations(x, lag)
                u_by_lag[lag], comps["short"] = self.surprise(comps["d"])
                comps_by_lag[lag] = comps
            return comps_by_lag[lag]

        i = int(self.params["min_fit_points"])
        refit_ns = int(self.duration("refit_age").value)
        while i < n:
            step = infer_step_seconds(ts[:i])
            lag_guess = 0
            if self.params["seasonal"] != "off" and self.params["seasonal_weight"] > 0:
                p = self.seasonal_lag_points_for(step)
                lag_guess = p if p >= 2 and i >= self.params["seasonal_lag_cycles"] * p else 0
            components(lag_guess)
            state = self._fit_upto(ts, x, i, u_by_lag)
            comps = components(state.seasonal_lag_points)
            by_age = int(np.searchsorted(ts, ts[i - 1] + refit_ns, side="right"))
            nxt = min(max(min(2 * i, by_age), i + 1), n)
            h0 = max(0, i - self._explain_points(state.step_seconds))
            part = self._score_with_state(ts[h0:nxt], x[h0:nxt], state, {k: v[h0:nxt] for k, v in comps.items()})
            k = i - h0
            for key in ("z", "d", "expected", "scale", "seasonal"):
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
        final = self._fit_upto(ts, x, n, u_by_lag) if n >= self.params["min_fit_points"] else None
        if comps_by_lag:
            last = comps_by_lag[max(comps_by_lag)] if final is None else components(final.seasonal_lag_points)
            for name in ("level", "seasonal"):
                if name in last:
                    out[f"z_{name}"] = last[name]
        return out, final

    def score(self, series: MetricSeries, state: AdtkFittedState | None = None) -> tuple[ScoredSeries, Any]:
        """Causal scores. Without a state: the walk described in the module docstring
        (returns a state fitted on the whole series). With a state: every point is
        scored with it (no refit here; see :meth:`refresh_state`)."""
        ts = series.timestamps.asi8
        x = np.asarray(series.values, dtype=np.float64)
        if state is not None and not isinstance(state, AdtkFittedState):
            raise ValueError(f"state: must be an AdtkFittedState, got {type(state).__name__}")
        if len(x) == 0:
            empty = np.zeros(0)
            return ScoredSeries(empty, empty, empty, np.zeros(0, dtype=bool)), state
        if state is None:
            out, state = self._walk(ts, x)
        else:
            out = self._score_with_state(ts, x, state)
        scores = calibration.likelihood_to_score(out["z"])
        scores, alarms, confirmed = self.postprocess(scores, ts, suppress_points=int(self.params["suppress_points"]))
        components = {k[2:]: v for k, v in out.items() if k.startswith("z_")}
        components["deviation"] = out["d"]
        components["likelihood"] = out["z"]
        return (
            ScoredSeries(
                scores=scores,
                expected=out["expected"],
                scale=out["scale"],
                alarms=alarms,
                seasonal_expected=out.get("seasonal_expected"),
                components=components,
                seasonal_component=out.get("seasonal"),
                confirmed=confirmed,
            ),
            state,
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
        still scores; the caller should load ``fit_history_points`` next time)."""
        if state is None or since_index <= 0 or since_index > len(series):
            return state
        now = series.timestamps[min(since_index, len(series) - 1)].to_pydatetime()
        if not self.needs_refit(state, now):
            return state
        enough = min(state.n_points, self.fit_history_points(state.step_seconds))
        changed = state.params != self._fit_fingerprint()
        if since_index >= enough or (changed and since_index >= self.params["min_fit_points"]):
            return self.fit(series, end_index=since_index)
        return state
