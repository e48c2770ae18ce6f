"""The vectorised engine ("vector"): one numpy pass scores a whole fleet of series.

For a batch ``values[n_series, n_points]`` sharing ``timestamps`` (the fast path for
fleets: one query returns 1,000 series x 1 day as one array), every step is a numpy /
bottleneck operation along the time axis, causal at every point:

1. **Seasonal baseline** (when history allows): ``S[t] = median_j x[t - j days]`` for
   ``j = 1 .. seasonal_days`` over the points available (same time on past days,
   looked up by timestamp, so irregular sampling works); NaN (no baseline) before one
   day of history. ``y = x - S`` where S exists, else ``y = x``.
2. **Local level** from ``y[t-w .. t-1]`` (w = ``baseline_window``): when ``w = 3k``
   (the default 15 points at one minute) the median of the medians of the window's
   three k-point thirds (min/max networks for k <= 5, :func:`_causal_level`), else the
   exact rolling median. Residual ``r = y - L``; expected value ``S + L``.
3. **Robust scale of the past** (calibration.causal_mean_abs_scale, twice, inlined):
   ``s1[t] = 1.2533 * mean(|r|)`` over the past ``scale_window`` points (all past points
   while the series is shorter than the window), then the same
   over ``min(|r|, clip_sigma * s1)`` so an outlier does not inflate the scale of the
   points after it; floored at ``relative_scale_floor`` x the past mean |x| (the same
   floor for both paths, computed once).
4. ``z = r / scale`` -> :func:`calibration.sigma_to_score` (0.5 = 4 robust sigmas).
   Points without a full baseline window or ``min_scale_points`` past residuals score 0.

``seasonal_expected`` (for the classifier) is the same expectation where a seasonal
baseline exists. No fitted state: the engine is stateless, and ``history_points`` covers the look-back
(``seasonal_days`` days plus the windows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import bottleneck as bn
import numpy as np

from analytics.core.contracts import MetricSeries, to_utc_index
from analytics.core.engines import calibration
from analytics.core.engines.base import NOMINAL_STEP_SECONDS, AnomalyDetectionEngine
from analytics.core.engines.parameters import COMMON_PARAMETERS, Parameter, duration_parameter
from analytics.core.engines.registry import register_engine
from analytics.core.engines.scored import ScoredSeries
from analytics.core.timestamps import as_ns

DAY_NS = 86_400 * 10**9


def _timestamps_ns(timestamps: Any) -> np.ndarray:
    if isinstance(timestamps, np.ndarray) and np.issubdtype(timestamps.dtype, np.integer):
        return timestamps.astype(np.int64, copy=False)
    return as_ns(to_utc_index(timestamps))


def _med3(a: np.ndarray, b: np.ndarray, c: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """Elementwise median of three, ``max(min(a, b), min(max(a, b), c))``, NaN if any is NaN.

    ``out`` may alias an input; ``tmp`` must not."""
    np.maximum(a, b, out=tmp)
    np.minimum(tmp, c, out=tmp)
    np.minimum(a, b, out=out)
    np.maximum(out, tmp, out=out)
    return out


def _rolling_median(y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``M[:, t] = median(y[:, t-k+1 .. t])`` for ``t >= k - 1``; columns ``t < k - 1`` are
    unspecified. ``y`` must be C-contiguous. Returns ``(M, scratch)``, scratch a free flat
    buffer of ``y.size`` floats (or None) the caller may reuse.

    k = 1, 3, 5: min/max networks (a few passes, NaN if the window holds one); otherwise
    bottleneck.move_median. The networks run on the flattened array shifted by whole
    points: contiguous 1-D ufunc loops are ~4x faster than row-sliced 2-D views; the
    windows that straddle two rows land only in the unspecified columns.
    """
    if k == 1:
        return y, None
    if k not in (3, 5):
        return bn.move_median(y, k, axis=1), None
    yf = y.reshape(-1)
    lo = np.empty_like(yf)  # lo[t], hi[t]: the sorted pair (y[t-1], y[t])
    hi = np.empty_like(yf)
    lo[0] = hi[0] = yf[0]
    np.minimum(yf[:-1], yf[1:], out=lo[1:])
    np.maximum(yf[:-1], yf[1:], out=hi[1:])
    med = np.empty_like(yf)
    med[:k - 1] = yf[:k - 1]
    if k == 3:  # med3(y[t-2], y[t-1], y[t]) = max(lo[t-1], min(hi[t-1], y[t]))
        np.minimum(hi[1:-1], yf[2:], out=med[2:])
        np.maximum(lo[1:-1], med[2:], out=med[2:])
    else:  # k == 5: of the sorted pairs (t-4, t-3) and (t-2, t-1), max(lows) and
        # min(highs) are the middle two of the four; the median of five is their
        # median with y[t]
        np.maximum(lo[1:-3], lo[3:-1], out=med[4:])
        np.minimum(hi[1:-3], hi[3:-1], out=lo[4:])
        _med3(med[4:], lo[4:], yf[4:], out=med[4:], tmp=hi[4:])
    return med.reshape(y.shape), hi


def _causal_level(y: np.ndarray, w: int) -> np.ndarray:
    """Local level ``L[t]`` from ``y[t-w .. t-1]`` (NaN for ``t < w`` or a NaN in the window).

    When ``w = 3k`` (the default 15 points at one minute: k = 5; 3 at five minutes): the
    median of the medians of the three consecutive k-point thirds of the window (Tukey's
    median of medians; k = 1 is the exact median of 3). For odd k it ignores up to k
    outliers anywhere in the window (the exact median: up to ``(w - 1) / 2``) and any
    number confined to one third; at k = 5 it is ~12 passes over the array, several
    times cheaper than a rolling median. Other ``w``: the exact rolling median.
    ``y`` must be C-contiguous.
    """
    m, n = y.shape
    if w > n or w < 3 or w % 3:
        level = np.full_like(y, np.nan)
        if w <= n:
            level[:, 1:] = bn.move_median(y, w, axis=1)[:, :-1]
        return level
    k = w // 3
    med, scratch = _rolling_median(y, k)
    medf = med.reshape(-1)
    size = medf.size
    level = np.empty_like(y)
    # level[t] = med3(M[t-1-2k], M[t-1-k], M[t-1]), on the flattened arrays; the columns
    # t < w (windows reaching into the previous row) are reset to NaN below
    _med3(medf[w - 1 - 2 * k:size - 1 - 2 * k], medf[w - 1 - k:size - 1 - k], medf[w - 1:size - 1],
          out=level.reshape(-1)[w:], tmp=np.empty(size - w, dtype=y.dtype) if scratch is None else scratch[w:])
    level[:, :w] = np.nan
    return level


@dataclass
class _Batch:
    """Per series and point: score, deviation, expectation, scale, seasonal baseline."""

    scores: np.ndarray
    z: np.ndarray
    expected: np.ndarray
    scale: np.ndarray
    seasonal: np.ndarray | None


def _sigma_to_score(z: np.ndarray) -> np.ndarray:
    """calibration.sigma_to_score in five passes: same values (z^2 / (z^2 + 16); NaN -> 0; +-inf -> 1)."""
    with np.errstate(over="ignore"):
        z2: np.ndarray = np.square(z)
    np.minimum(z2, 1e300, out=z2)  # inf -> 1e300 (score 1.0; calibration overflows |z| > 1e154 to 0); NaN stays NaN
    denom = z2 + calibration.Z_HALF * calibration.Z_HALF
    np.divide(z2, denom, out=z2)
    np.fmax(z2, 0.0, out=z2)  # NaN -> 0
    return z2


@register_engine
class VectorEngine(AnomalyDetectionEngine):
    """Robust rolling z-score with a same-time-on-past-days baseline, for many series."""

    name: ClassVar[str] = "vector"
    parameters: ClassVar[Mapping[str, Parameter]] = {
        **COMMON_PARAMETERS,
        "baseline_window": duration_parameter("15min", "local level: robust median of this much past data"),
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
        return self._batch(values, timestamps).scores

    def _batch(self, values: np.ndarray, timestamps: Any) -> _Batch:
        x = np.ascontiguousarray(values, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"values: must be 2-D [n_series, n_points], got shape {x.shape}")
        ts = _timestamps_ns(timestamps)
        m, n = x.shape
        if len(ts) != n:
            raise ValueError(f"timestamps: length {len(ts)} differs from n_points {n}")
        if n == 0 or m == 0:
            empty = np.zeros((m, n))
            return _Batch(empty, empty, empty, empty, empty)
        if n > 1 and not (np.diff(ts) > 0).all():
            raise ValueError("timestamps: must be strictly ascending")
        step_ns = float(np.median(np.diff(ts))) if n > 1 else NOMINAL_STEP_SECONDS * 1e9
        step_seconds = max(step_ns / 1e9, 1e-3)

        seasonal = self._seasonal_baseline(x, ts, step_ns)
        floor = self._scale_floor(x, step_seconds)
        level, z, scale = self._path(x, floor, step_seconds)
        if seasonal is not None:
            # a second, deseasonalised path; used wherever its windows are complete, so
            # no window mixes raw and deseasonalised values
            level_s, z_s, scale_s = self._path(x - seasonal, floor, step_seconds)
            use = np.isfinite(z_s)
            level = np.where(use, level_s + seasonal, level)
            z = np.where(use, z_s, z)
            scale = np.where(use, scale_s, scale)
        direction = self.params["direction"]
        if direction == "up":
            z = np.where(z > 0, z, 0.0)
        elif direction == "down":
            z = np.where(z < 0, z, 0.0)
        scores = _sigma_to_score(z)  # NaN (warm-up) -> 0
        return _Batch(scores, z, level, scale, seasonal)

    def _path(self, y: np.ndarray, floor: np.ndarray, step_seconds: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local level, deviation and scale of ``y`` (NaN where windows are incomplete).

        ``floor`` is the scale floor per point (:meth:`_scale_floor`). Written with
        preallocated outputs and in-place ufuncs: at fleet sizes every temporary
        [n_series, n_points] array costs about as much as the arithmetic.
        """
        n = y.shape[1]
        w = self._points("baseline_window", step_seconds, 1)
        level = _causal_level(y, w)
        r = np.subtract(y, level)
        window = min(self._points("scale_window", step_seconds, 2), n)
        min_count = min(int(self.params["min_scale_points"]), window)
        # pass 1: s1[t] = 1.2533 * mean(|r|) over the past window (bn.move_mean skips NaN)
        a = np.abs(r)
        bound = bn.move_mean(a, window, min_count=min_count, axis=1)
        bound *= self.params["clip_sigma"] * calibration.MEAN_ABS_TO_SIGMA  # bound[t] clips a[t + 1]
        # clipped[t] = min(|r[t]|, bound[t - 1]); no bound yet (NaN) -> unclipped; NaN |r| stays NaN
        # (shifts by one point run on the flattened arrays, see _rolling_median; column 0,
        # whose "previous point" is the previous row's last, is set afterwards)
        clipped = np.empty_like(a)
        cf, af = clipped.reshape(-1), a.reshape(-1)
        np.fmin(bound.reshape(-1)[:-1], af[1:], out=cf[1:])
        np.minimum(af[1:], cf[1:], out=cf[1:])
        clipped[:, 0] = a[:, 0]
        # pass 2: the same mean over the clipped residuals, shifted by one point (causal)
        mean2 = bn.move_mean(clipped, window, min_count=min_count, axis=1)
        scale = a  # reuse the buffer
        np.multiply(mean2.reshape(-1)[:-1], calibration.MEAN_ABS_TO_SIGMA, out=scale.reshape(-1)[1:])
        scale[:, 0] = np.nan
        np.maximum(scale, floor, out=scale)  # NaN (no scale yet) stays NaN
        z = np.divide(r, scale, out=r)
        return level, z, scale

    def _scale_floor(self, x: np.ndarray, step_seconds: float) -> np.ndarray:
        """``max(relative_scale_floor * mean(|x|) over the past scale window, 1e-9)`` per point
        (calibration.floor_scale's floors; shared by the raw and the deseasonalised path)."""
        n = x.shape[1]
        window = min(self._points("scale_window", step_seconds, 2), n)
        typical = bn.move_mean(np.abs(x), window, min_count=1, axis=1)
        floor = np.empty_like(typical)
        np.multiply(typical.reshape(-1)[:-1], self.params["relative_scale_floor"], out=floor.reshape(-1)[1:])
        floor[:, 0] = np.nan
        np.fmax(floor, calibration.DEFAULT_ABSOLUTE_FLOOR, out=floor)  # NaN (no past) -> absolute floor
        return np.asarray(floor, dtype=np.float64)

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
        return np.asarray(bn.nanmedian(np.stack(shifted), axis=0), dtype=np.float64)

    # --- the single-series interface ------------------------------------------------------

    def score(self, series: MetricSeries, state: Any = None) -> tuple[ScoredSeries, Any]:
        """The batch path with one series. Stateless: ``state`` is ignored and None returned."""
        ts = as_ns(series.timestamps)
        out = self._batch(np.asarray(series.values, dtype=np.float64)[None, :], ts)
        evidence = out.scores[0]
        scores, alarms, confirmed, _ = self.postprocess(evidence, ts)
        x = np.asarray(series.values, dtype=np.float64)
        expected = np.where(np.isfinite(out.expected[0]), out.expected[0], x)
        scale = out.scale[0]
        seasonal = None if out.seasonal is None else np.nan_to_num(out.seasonal[0])
        return (
            ScoredSeries(
                scores=scores,
                expected=expected,
                scale=scale,
                alarms=alarms,
                seasonal_expected=None if seasonal is None else expected,
                components={"combined": np.nan_to_num(out.z[0])},
                seasonal_component=seasonal,
                confirmed=confirmed,
                evidence=evidence,
            ),
            None,
        )


__all__ = ["VectorEngine"]
