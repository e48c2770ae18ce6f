"""Numpy/bottleneck versions of the ADTK transforms the v1 engine is built on.

:func:`deviations` is the exact (unstreamed) definition of the engine's components; the
tests check it equals ADTK's ``DoubleRollingAggregate`` and ``RollingAggregate`` results.
The streamed scores (:mod:`.streaming`) approximate it with block summaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bottleneck as bn
import numpy as np

from analytics.core.engines.calibration import MEAN_ABS_TO_SIGMA
from analytics.core.engines.rolling import clamped, shift


def rolling_baseline(x: np.ndarray, window: int, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trailing rolling median of ``x`` over ``window`` points (including t), the rolling
    mean absolute deviation from it, and the rolling range (max - min). NaN until
    ``min_count`` values (the range needs 10). Equal to ADTK's
    ``RollingAggregate(agg="median"/"mean"/"max"/"min", center=False)``."""
    med = clamped(bn.move_median, x, window, min_count)
    mad = clamped(bn.move_mean, np.abs(x - med), window, min_count)
    rng = clamped(bn.move_max, x, window, min(10, min_count)) - clamped(bn.move_min, x, window, min(10, min_count))
    return med, mad, rng



def trailing_mean(ext: np.ndarray, m: int, n: int) -> np.ndarray:
    """For each of the last ``n`` positions of ``ext``, the mean of the finite values
    among it and the ``m - 1`` before (NaN if none). Each window is summed on its own,
    so the result does not depend on where ``ext`` starts (incremental == full)."""
    if m <= 1:
        return ext[len(ext) - n:].copy()
    a = np.ascontiguousarray(ext[len(ext) - n - m + 1:])
    w = np.lib.stride_tricks.as_strided(a, shape=(n, m), strides=(a.strides[0], a.strides[0]), writeable=False)
    fin = np.isfinite(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(fin, w, 0.0).sum(axis=1) / fin.sum(axis=1), dtype=np.float64)


def level_difference(x: np.ndarray, median: np.ndarray, m: int) -> np.ndarray:
    """``mean(x[t-m+1..t]) - median[t-m]``: with ``median`` the trailing rolling median
    of H points this is ADTK's ``DoubleRollingAggregate(agg=("median", "mean"),
    window=(H, m), center=False, diff="diff")``."""
    return np.asarray(clamped(bn.move_mean, x, m, 1) - shift(median, m), dtype=np.float64)



def parse_scales(value: str) -> list[int]:
    """"1,5,20" -> the averaging lengths in points, ascending."""
    try:
        scales = sorted({int(p) for p in value.split(",") if p.strip()})
    except ValueError:
        raise ValueError(f"must be comma-separated whole numbers of points, got {value!r}") from None
    if not scales or scales[0] < 1:
        raise ValueError(f"needs positive numbers of points, e.g. '1,5,20', got {value!r}")
    return scales


def check_scales(value: Any) -> None:
    parse_scales(value)


def deviations(x: np.ndarray, lag: int, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Component deviations in robust sigmas (max over scales; NaN where undefined) and
    their maximum ``"d"`` (NaN -> 0), with exact rolling windows. ``lag`` = seasonal lag
    in points, 0 = off."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    h, h_min = params["baseline_points"], params["baseline_min_points"]
    direction = params["direction"]
    range_floor, rel_floor = params["range_floor"], params["relative_scale_floor"]
    scales = parse_scales(params["scales"])
    out: dict[str, np.ndarray] = {}
    med, mad, rng = rolling_baseline(x, h, h_min)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.full(n, np.nan)
        if params["level_weight"] > 0:
            for m in scales:
                base = shift(med, m)
                scale = np.fmax(np.fmax(MEAN_ABS_TO_SIGMA * shift(mad, m), rel_floor * np.abs(base) + 1e-9),
                                range_floor * shift(rng, m))
                diff = level_difference(x, med, m)
                signed = np.abs(diff) if direction == "both" else (diff if direction == "up" else -diff)
                level = np.fmax(level, np.fmax(signed, 0.0) / scale)
            out["level"] = level
        d = params["level_weight"] * np.nan_to_num(level, nan=0.0)
        if lag > 0 and params["seasonal_weight"] > 0:
            sd = x - shift(x, lag)
            smed, smad, _ = rolling_baseline(sd, h, h_min)
            dev = sd - shift(smed, 1)
            if direction == "both":
                dev = np.abs(dev)
            elif direction == "down":
                dev = np.fmax(-dev, 0.0)
            else:
                dev = np.fmax(dev, 0.0)
            scale = np.fmax(np.fmax(MEAN_ABS_TO_SIGMA * shift(smad, 1), range_floor * shift(rng, 1)), 1e-9)
            seasonal = np.full(n, np.nan)
            for m in scales:
                seasonal = np.fmax(seasonal, clamped(bn.move_mean, dev, m, 1) / scale)
            out["seasonal"] = seasonal
            d = np.fmax(d, params["seasonal_weight"] * np.nan_to_num(seasonal, nan=0.0))
    out["d"] = d
    out["baseline"] = shift(med, 1)
    return out
