"""The ADTK engine ("adtk", the product default): causal, calibrated, fit rarely.

ADTK detectors return labels, and their ``fit`` learns thresholds from the whole series
it is given, so using them as published would look into the future. This engine keeps
ADTK's definitions but splits the work the way production needs it:

**Fit (rare, on past data only)** -> :class:`~analytics.core.engines.state.AdtkFittedState`
  - sampling step = median spacing of the fit data (NAB-style irregular data works);
  - resample the fit data onto a regular epoch-aligned grid (bin means, gaps
    interpolated), find seasonal periods among ``seasonal_periods`` (default daily and
    weekly) by autocorrelation at the period lag (kept when >= ``seasonal_min_acf`` and
    the data holds >= ``seasonal_min_cycles`` cycles, default 2), and learn each profile with ADTK's
    ``ClassicSeasonalDecomposition(freq=..., trend=True)`` (shortest period first, the
    next one on what remains), smoothed over ``seasonal_smoothing`` and stored
    epoch-aligned so any timestamp finds its slot;
  - compute the four detector statistics below over the fit data and learn their
    robust centre and sigma with ADTK's ``InterQuartileRangeAD(c=3)`` fitted on that
    past statistic (sigma = IQR / 1.349; MAD / mean-absolute fallback; floored at
    ``relative_scale_floor`` x the series' typical magnitude).

**Score (often, causal)**: with ``y = x - seasonal(t)``, for every point t:
  ============ =========================================================== ================
  component    statistic (ADTK equivalent, all causal: ``center=False``)   window param
  ============ =========================================================== ================
  spike        ``y[t] - median(y[t-w .. t-1])`` (PersistAD)                spike_window
  level        ``median(y[t-w+1 .. t]) - median(y[t-2w+1 .. t-w])``        level_window
               (LevelShiftAD's DoubleRollingAggregate, not centred)
  volatility   ``std(y[t-w+1 .. t]) - std(y[t-2w+1 .. t-w])``              volatility_window
               (VolatilityShiftAD's DoubleRollingAggregate, not centred)
  seasonal     ``y[t] - median(y[t-w .. t-1])`` with a long w, only when   seasonal_level_window
               a seasonal profile was fitted (seasonal violation)
  ============ =========================================================== ================

  Each statistic becomes a deviation ``z_c = (stat - center_c) / sigma_c`` in robust
  sigmas of the fitted past; the point's deviation is ``max_c weight_c * z_c`` (signed
  by ``direction``), mapped to [0, 1] by :func:`calibration.sigma_to_score` (0.5 = 4
  sigma). The hot path is numpy/bottleneck re-implementations of those ADTK transforms
  (tests check they equal ADTK's output), so an incremental call costs
  ``history_points`` + new points, not a pandas pipeline.

**Full runs without a state** (``score(series)``, what the NAB harness calls) walk the
series as production would: nothing is scored before ``min_fit_points``; the state is
fitted on the points before index i and scores the following segment; it is refitted
when the data doubles (early) or when ``refit_age`` of data time has passed. Scores are
therefore strictly causal, including the fits. The state returned is fitted on the
whole series, ready for the next incremental call.

**Incremental runs**: ``score(tail, state)`` where ``tail`` holds ``history_points``
points before the new ones gives the same scores for the new points as
``score(full_series, state)``: exactly for spike/level/seasonal, and within ~1e-9
relative for volatility (bottleneck's rolling std accumulates sums, so rounding depends
on where the window started). ``analyse``/``detect`` refit a state that is older than
``refit_age`` when the given series holds enough earlier points (``fit_history_points``).
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

COMPONENTS: tuple[str, ...] = ("spike", "level", "volatility", "seasonal")
IQR_C = 3.0
NOMINAL_STEP_SECONDS = 60.0  # product resolution; history_points is quoted at this step

# parameters that change what a fit learns; a state fitted with other values is refitted
_FIT_PARAMS = (
    "seasonal", "seasonal_periods", "seasonal_min_acf", "seasonal_min_cycles", "seasonal_smoothing", "spike_window", "level_window",
    "volatility_window", "seasonal_level_window", "fit_window", "relative_scale_floor",
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


@register_engine
class AdtkEngine(AnomalyDetectionEngine):
    """ADTK-based engine; see the module docstring for the method."""

    name: ClassVar[str] = "adtk"
    parameters: ClassVar[Mapping[str, Parameter]] = {
        **COMMON_PARAMETERS,
        "seasonal": Parameter(
            str, "auto", "auto: keep periods whose autocorrelation passes; on: fit all listed periods "
            "the data is long enough for; off: no seasonality", choices=("auto", "on", "off"),
        ),
        "seasonal_periods": Parameter(str, "1d,7d", "candidate periods, comma separated", check=_check_periods),
        "seasonal_min_cycles": Parameter(int, 2, "cycles of data needed before a period is fitted",
                                         minimum=2, maximum=100),
        "seasonal_smoothing": duration_parameter(
            "15min", "circular moving average over the fitted profile (slot means of few cycles are noisy, "
            "and a noisy in-sample profile makes residuals look smaller than they will be)", positive=False),
        "seasonal_min_acf": Parameter(float, 0.3, "autocorrelation at the period lag needed in auto mode",
                                      minimum=-1.0, maximum=1.0),
        "spike_window": duration_parameter("15min", "spike baseline: median of this much past data"),
        "level_window": duration_parameter("30min", "level shift / trend: compare medians of two such windows"),
        "volatility_window": duration_parameter("30min", "volatility shift: compare stds of two such windows"),
        "seasonal_level_window": duration_parameter("2h", "seasonal violation: long baseline of deseasonalised data"),
        "spike_weight": Parameter(float, 1.0, "weight of the spike component (0 = off)", minimum=0.0, maximum=10.0),
        "level_weight": Parameter(float, 1.0, "weight of the level/trend component", minimum=0.0, maximum=10.0),
        "volatility_weight": Parameter(float, 1.0, "weight of the volatility component", minimum=0.0, maximum=10.0),
        "seasonal_weight": Parameter(float, 1.0, "weight of the seasonal component", minimum=0.0, maximum=10.0),
        "direction": Parameter(str, "both", "which deviations count", choices=("both", "up", "down")),
        "fit_window": duration_parameter("14d", "past data a fit uses (weekly seasonality needs 14d)"),
        "refit_age": duration_parameter("1d", "refit when the state's data is older than this"),
        "min_fit_points": Parameter(int, 120, "points before the first fit; earlier points score 0",
                                    minimum=10, maximum=1_000_000),
        "relative_scale_floor": Parameter(float, 1e-3, "sigma floor relative to the series' typical magnitude",
                                          minimum=0.0, maximum=1.0),
    }

    # --- sizes ---------------------------------------------------------------------------

    def window_points(self, step_seconds: float) -> dict[str, int]:
        def pts(name: str, minimum: int) -> int:
            return max(minimum, int(round(self.duration(name).total_seconds() / step_seconds)))

        return {
            "spike": pts("spike_window", 1),
            "level": pts("level_window", 2),
            "volatility": pts("volatility_window", 3),
            "seasonal": pts("seasonal_level_window", 2),
        }

    def history_points_for(self, step_seconds: float) -> int:
        w = self.window_points(step_seconds)
        return max(w["spike"], 2 * w["level"], 2 * w["volatility"], w["seasonal"])

    @property
    def history_points(self) -> int:
        """Context points needed before the first new point, at one-minute sampling
        (use :meth:`history_points_for` for another step)."""
        return self.history_points_for(NOMINAL_STEP_SECONDS)

    def fit_history_points(self, step_seconds: float = NOMINAL_STEP_SECONDS) -> int:
        """Points a refit wants (``fit_window`` at this step)."""
        return max(self.params["min_fit_points"], int(self.duration("fit_window").total_seconds() / step_seconds))

    def _fit_fingerprint(self) -> dict[str, Any]:
        return {k: self.params[k] for k in _FIT_PARAMS}

    # --- fitting -------------------------------------------------------------------------

    def fit(self, series: MetricSeries, *, end_index: int | None = None) -> AdtkFittedState:
        """Fit on the points before ``end_index`` (all by default), at most ``fit_window``."""
        ts = series.timestamps.asi8
        return self._fit_upto(ts, np.asarray(series.values, dtype=np.float64), len(ts) if end_index is None else end_index)

    def _fit_upto(self, ts: np.ndarray, x: np.ndarray, end: int) -> AdtkFittedState:
        if end < 2:
            raise ValueError("series: at least 2 points are needed to fit")
        lo = int(np.searchsorted(ts[:end], ts[end - 1] - int(self.duration("fit_window").value), side="left"))
        return self._fit_arrays(ts[lo:end], x[lo:end])

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
        stats, _, _, _ = self._statistics(ts, x, state)
        index = pd.DatetimeIndex(ts, tz="UTC")
        floor = float(calibration.floor_scale(0.0, typical, relative_floor=self.params["relative_scale_floor"]))
        for name, stat in stats.items():
            finite = np.isfinite(stat)
            center, sigma, low, high = 0.0, math.nan, math.nan, math.nan
            if finite.sum() >= 4:
                detector = InterQuartileRangeAD(c=IQR_C)
                detector.fit(pd.Series(stat, index=index))
                low, high = float(detector.abs_low_), float(detector.abs_high_)
                iqr = (high - low) / (1.0 + 2.0 * IQR_C)
                center = (high + low) / 2.0
                sigma = iqr * calibration.IQR_TO_SIGMA
                if not (sigma > 0.0 and math.isfinite(sigma)):
                    center, sigma = calibration.robust_location_scale(stat[finite])
            if not math.isfinite(center):
                center = 0.0
            sigma = max(sigma, floor) if math.isfinite(sigma) else floor
            state.scales[name] = ComponentScale(center=center, sigma=sigma, low=low, high=high)
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

    def _statistics(
        self, ts: np.ndarray, x: np.ndarray, state: AdtkFittedState
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray | None]:
        """Component statistics; also (seasonal offset, spike baseline, long baseline)."""
        w = self.window_points(state.step_seconds)
        seasonal = state.seasonal_expected(ts) if state.seasonal else np.zeros(len(x))
        y = x - seasonal
        base_spike = _past_median(y, w["spike"])
        stats: dict[str, np.ndarray] = {"spike": y - base_spike}
        wl = w["level"]
        if 2 * wl <= len(y):
            m = bn.move_median(y, wl)
            stats["level"] = m - _shift(m, wl)
        else:
            stats["level"] = np.full_like(y, np.nan)
        wv = w["volatility"]
        if 2 * wv <= len(y):
            s = bn.move_std(y, wv, ddof=1)
            stats["volatility"] = s - _shift(s, wv)
        else:
            stats["volatility"] = np.full_like(y, np.nan)
        base_long = None
        if state.seasonal:
            base_long = _past_median(y, w["seasonal"])
            stats["seasonal"] = y - base_long
        return stats, seasonal, base_spike, base_long

    def _score_with_state(self, ts: np.ndarray, x: np.ndarray, state: AdtkFittedState) -> dict[str, np.ndarray]:
        stats, seasonal, base_spike, base_long = self._statistics(ts, x, state)
        direction = self.params["direction"]
        z = np.zeros(len(x))
        components: dict[str, np.ndarray] = {}
        for name, stat in stats.items():
            scale = state.scales.get(name)
            weight = float(self.params[f"{name}_weight"])
            if scale is None or weight == 0.0:
                continue
            zc = (stat - scale.center) / scale.sigma
            components[name] = zc
            if name == "volatility" or direction == "both":
                signed = np.abs(zc)
            elif direction == "up":
                signed = zc
            else:
                signed = -zc
            z = np.fmax(z, weight * signed)
        z = np.nan_to_num(z, nan=0.0)
        expected = seasonal + base_spike
        expected = np.where(np.isfinite(expected), expected, x)
        out = {
            "z": z,
            "seasonal": seasonal,
            "expected": expected,
            "scale": np.full(len(x), state.scales["spike"].sigma if "spike" in state.scales else np.nan),
        }
        if base_long is not None:
            seasonal_expected = seasonal + base_long
            out["seasonal_expected"] = np.where(np.isfinite(seasonal_expected), seasonal_expected, expected)
        out.update({f"z_{k}": v for k, v in components.items()})
        return out

    def _walk(self, ts: np.ndarray, x: np.ndarray) -> tuple[dict[str, np.ndarray], AdtkFittedState | None]:
        """Causal full run: fit on the past, score the next segment, refit as production would."""
        n = len(x)
        out: dict[str, np.ndarray] = {
            "z": np.zeros(n), "expected": x.astype(np.float64).copy(), "scale": np.full(n, np.nan),
            "seasonal": np.zeros(n), "seasonal_expected": np.full(n, np.nan),
        }
        has_seasonal = np.zeros(n, dtype=bool)
        i = int(self.params["min_fit_points"])
        refit_ns = int(self.duration("refit_age").value)
        while i < n:
            state = self._fit_upto(ts, x, i)
            by_age = int(np.searchsorted(ts, ts[i - 1] + refit_ns, side="right"))
            nxt = min(max(min(2 * i, by_age), i + 1), n)
            h0 = max(0, i - self.history_points_for(state.step_seconds))
            part = self._score_with_state(ts[h0:nxt], x[h0:nxt], state)
            k = i - h0
            for key in ("z", "expected", "scale", "seasonal"):
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
        final = self._fit_upto(ts, x, n) if n >= self.params["min_fit_points"] else None
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
        scores = calibration.sigma_to_score(out["z"])
        scores, alarms, confirmed = self.postprocess(scores, ts)
        components = {k[2:]: v for k, v in out.items() if k.startswith("z_")}
        components["combined"] = out["z"]
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
