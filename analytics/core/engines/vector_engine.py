"""The vectorised engine ("vector"): one numpy pass scores a whole fleet of series.

For a batch ``values[n_series, n_points]`` sharing ``timestamps`` (the fast path for
fleets: one query returns 1,000 series x 1 day as one array), every step is a numpy /
bottleneck operation along the time axis, causal at every point:

1. **Seasonal baseline** (when history allows): ``S[t] = median_j x[t - j days]`` for
   ``j = 1 .. seasonal_days`` over the points available (same time on past days,
   looked up by timestamp, so irregular sampling works); NaN (no baseline) before one
   day of history. ``y = x - S`` where S exists, else ``y = x``.
2. **Local level**: ``L[t] = median(y[t-w .. t-1])`` (``bottleneck.move_median``,
   w = ``baseline_window``). Residual ``r = y - L``; expected value ``S + L``.
3. **Robust scale of the past** (calibration.causal_mean_abs_scale, twice):
   ``s1[t] = 1.2533 * mean(|r|)`` over the past ``scale_window`` points, then the same
   over ``min(|r|, clip_sigma * s1)`` so an outlier does not inflate the scale of the
   points after it; floored at ``relative_scale_floor`` x the past mean |x|.
4. ``z = r / scale`` -> :func:`calibration.sigma_to_score` (0.5 = 4 robust sigmas).
   Points without a full baseline window or ``min_scale_points`` past residuals score 0.

``seasonal_expected`` (for the classifier) is the same expectation where a seasonal
baseline exists. No fitted state: the engine is stateless, and ``history_points`` covers the look-back
(``seasonal_days`` days plus the windows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import bottleneck as bn
import numpy as np

from analytics.core.contracts import MetricSeries, to_utc_index
from analytics.core.engines import calibration
from analytics.core.engines.base import (
    COMMON_PARAMETERS,
    AnomalyDetectionEngine,
    Parameter,
    ScoredSeries,
    duration_parameter,
)
from analytics.core.engines.registry import register_engine

DAY_NS = 86_400 * 10**9
NOMINAL_STEP_SECONDS = 60.0


def _timestamps_ns(timestamps: Any) -> np.ndarray:
    if isinstance(timestamps, np.ndarray) and np.issubdtype(timestamps.dtype, np.integer):
        return timestamps.astype(np.int64, copy=False)
    return to_utc_index(timestamps).asi8


@register_engine
class VectorEngine(AnomalyDetectionEngine):
    """Robust rolling z-score with a same-time-on-past-days baseline, for many series."""

    name: ClassVar[str] = "vector"
    parameters: ClassVar[Mapping[str, Parameter]] = {
        **COMMON_PARAMETERS,
        "baseline_window": duration_parameter("15min", "local level: median of this much past data"),
        "scale_window": duration_parameter("6h", "robust scale: mean |residual| over this much past data"),
        "seasonal_days": Parameter(int, 7, "same-time-of-day baseline over up to this many past days (0 = off)",
                                   minimum=0, maximum=28),
        "min_scale_points": Parameter(int, 30, "past residuals needed before scoring", minimum=2, maximum=100_000),
        "clip_sigma": Parameter(float, 5.0, "residuals are clipped at this many sigmas when estimating the scale",
                                minimum=1.0, maximum=100.0),
        "direction": Parameter(str, "both", "which deviations count", choices=("both", "up", "down")),
        "relative_scale_floor": Parameter(float, 1e-3, "sigma floor relative to the past mean |value|",
                                          minimum=0.0, maximum=1.0),
    }

    def _points(self, name: str, step_seconds: float, minimum: int) -> int:
        return max(minimum, int(round(self.duration(name).total_seconds() / step_seconds)))

    def history_points_for(self, step_seconds: float) -> int:
        w = self._points("baseline_window", step_seconds, 1)
        scale = self._points("scale_window", step_seconds, 2)
        seasonal = int(round(self.params["seasonal_days"] * 86_400 / step_seconds))
        return max(seasonal + w, w + scale + 1)

    @property
    def history_points(self) -> int:
        """Look-back needed at one-minute sampling (see :meth:`history_points_for`)."""
        return self.history_points_for(NOMINAL_STEP_SECONDS)

    # --- the batch path -------------------------------------------------------------------

    def score_batch(self, values: np.ndarray, timestamps: Any) -> np.ndarray:
        """Scores in [0, 1] for ``values[n_series, n_points]`` sharing ``timestamps``."""
        return self._batch(values, timestamps)["scores"]

    def _batch(self, values: np.ndarray, timestamps: Any) -> dict[str, np.ndarray]:
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"values: must be 2-D [n_series, n_points], got shape {x.shape}")
        ts = _timestamps_ns(timestamps)
        m, n = x.shape
        if len(ts) != n:
            raise ValueError(f"timestamps: length {len(ts)} differs from n_points {n}")
        if n == 0:
            empty = np.zeros((m, 0))
            return {"scores": empty, "z": empty, "expected": empty, "scale": empty, "seasonal": empty}
        if n > 1 and not (np.diff(ts) > 0).all():
            raise ValueError("timestamps: must be strictly ascending")
        step_ns = float(np.median(np.diff(ts))) if n > 1 else NOMINAL_STEP_SECONDS * 1e9
        step_seconds = max(step_ns / 1e9, 1e-3)

        seasonal = self._seasonal_baseline(x, ts, step_ns)
        level, z, scale = self._path(x, x, step_seconds)
        if seasonal is not None:
            # a second, deseasonalised path; used wherever its windows are complete, so
            # no window mixes raw and deseasonalised values
            level_s, z_s, scale_s = self._path(x - seasonal, x, step_seconds)
            use = np.isfinite(z_s)
            level = np.where(use, level_s + seasonal, level)
            z = np.where(use, z_s, z)
            scale = np.where(use, scale_s, scale)
        direction = self.params["direction"]
        if direction == "up":
            z = np.where(z > 0, z, 0.0)
        elif direction == "down":
            z = np.where(z < 0, z, 0.0)
        scores = calibration.sigma_to_score(z)  # NaN (warm-up) -> 0
        return {"scores": scores, "z": z, "expected": level, "scale": scale, "seasonal": seasonal}

    def _path(self, y: np.ndarray, x: np.ndarray, step_seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local level, deviation and scale of ``y`` (NaN where windows are incomplete)."""
        n = y.shape[1]
        w = self._points("baseline_window", step_seconds, 1)
        level = np.full_like(y, np.nan)
        if w <= n:
            level[:, 1:] = bn.move_median(y, w, axis=1)[:, :-1]
        r = y - level
        window = self._points("scale_window", step_seconds, 2)
        min_count = int(self.params["min_scale_points"])
        s1 = calibration.causal_mean_abs_scale(r, window, min_count)
        clipped = np.minimum(np.abs(r), self.params["clip_sigma"] * np.where(np.isnan(s1), np.inf, s1))
        scale = calibration.causal_mean_abs_scale(clipped, window, min_count)
        typical = calibration.causal_mean_abs_scale(x, window, 1) / calibration.MEAN_ABS_TO_SIGMA
        scale = np.where(
            np.isnan(scale), np.nan,
            calibration.floor_scale(scale, np.nan_to_num(typical), relative_floor=self.params["relative_scale_floor"]),
        )
        return level, calibration.deviation(r, scale), scale

    def _seasonal_baseline(self, x: np.ndarray, ts: np.ndarray, step_ns: float) -> np.ndarray | None:
        days = int(self.params["seasonal_days"])
        if days == 0 or len(ts) < 2 or ts[-1] - ts[0] < DAY_NS:
            return None
        shifted = []
        for j in range(1, days + 1):
            target = ts - j * DAY_NS
            if target[-1] < ts[0] - step_ns / 2:
                break
            idx = np.searchsorted(ts, target + int(step_ns // 2), side="right") - 1
            ok = (idx >= 0) & (np.abs(ts[np.maximum(idx, 0)] - target) <= step_ns / 2)
            column = x[:, np.maximum(idx, 0)]
            shifted.append(np.where(ok[None, :], column, np.nan))
        if not shifted:
            return None
        if len(shifted) == 1:
            return shifted[0]
        return bn.nanmedian(np.stack(shifted), axis=0)

    # --- the single-series interface ------------------------------------------------------

    def score(self, series: MetricSeries, state: Any = None) -> tuple[ScoredSeries, Any]:
        """The batch path with one series. Stateless: ``state`` is ignored and None returned."""
        ts = series.timestamps.asi8
        out = self._batch(np.asarray(series.values, dtype=np.float64)[None, :], ts)
        scores, alarms, confirmed = self.postprocess(out["scores"][0], ts)
        x = np.asarray(series.values, dtype=np.float64)
        expected = np.where(np.isfinite(out["expected"][0]), out["expected"][0], x)
        scale = out["scale"][0]
        seasonal = None if out["seasonal"] is None else np.nan_to_num(out["seasonal"][0])
        return (
            ScoredSeries(
                scores=scores,
                expected=expected,
                scale=scale,
                alarms=alarms,
                seasonal_expected=None if seasonal is None else expected,
                components={"combined": np.nan_to_num(out["z"][0])},
                seasonal_component=seasonal,
                confirmed=confirmed,
            ),
            None,
        )


__all__ = ["VectorEngine"]
