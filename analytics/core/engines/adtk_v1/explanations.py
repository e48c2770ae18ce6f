"""The v1 engine's explanation fit: seasonal profiles (ADTK ClassicSeasonalDecomposition,
:mod:`analytics.core.engines.profiles`), the expectation explanations quote, and the
sigma they quote (ADTK's InterQuartileRangeAD on the spike statistic).

The scores do not depend on any of it. A full run fits on the past as production would:
first after ``min_fit_points`` points, again when the data doubles or ``refit_age`` of
data time passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from adtk.detector import InterQuartileRangeAD

from analytics.core.engines import calibration
from analytics.core.engines.adtk_v1.state import AdtkFittedState, ComponentScale
from analytics.core.engines.parameters import parse_duration
from analytics.core.engines.profiles import ProfileSettings, fit_seasonal_profiles, infer_step_seconds
from analytics.core.engines.rolling import past_median

IQR_C = 3.0


class ExplanationFitter:
    """Explanation fits of one engine configuration (``params``)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params

    def _seconds(self, name: str) -> float:
        return float(parse_duration(self.params[name]).total_seconds())

    def points(self, name: str, step_seconds: float) -> int:
        return max(1, int(round(self._seconds(name) / step_seconds)))

    def explain_points(self, step_seconds: float) -> int:
        """The look-back of the explanation arrays, in points."""
        return max(self.points("spike_window", step_seconds), self.points("seasonal_level_window", step_seconds))

    def fit_upto(self, ts: np.ndarray, x: np.ndarray, end: int, fingerprint: dict[str, Any]) -> AdtkFittedState:
        """Fit on the points before ``end`` within ``fit_window`` (no streamed statistics)."""
        if end < 2:
            raise ValueError("series: at least 2 points are needed to fit")
        window_ns = int(parse_duration(self.params["fit_window"]).value)
        lo = int(np.searchsorted(ts[:end], ts[end - 1] - window_ns, side="left"))
        return self.fit(ts[lo:end], x[lo:end], fingerprint)

    def fit(self, ts: np.ndarray, x: np.ndarray, fingerprint: dict[str, Any]) -> AdtkFittedState:
        step_seconds = infer_step_seconds(ts)
        typical = float(np.median(np.abs(x)))
        settings = ProfileSettings(
            mode=self.params["seasonal"], periods=self.params["seasonal_periods"],
            min_acf=self.params["seasonal_min_acf"], min_cycles=self.params["seasonal_min_cycles"],
            smoothing_seconds=self._seconds("seasonal_smoothing"),
        )
        state = AdtkFittedState(
            fit_time=datetime.now(UTC),
            data_end=pd.Timestamp(int(ts[-1]), tz="UTC").floor("us").to_pydatetime(),
            data_start=pd.Timestamp(int(ts[0]), tz="UTC").floor("us").to_pydatetime(),
            n_points=len(ts),
            step_seconds=step_seconds,
            seasonal=fit_seasonal_profiles(ts, x, step_seconds, settings),
            typical_magnitude=typical,
            params=fingerprint,
        )
        # the sigma explanations quote: ADTK's IQR detector on the spike statistic
        stat = self.arrays(ts, x, state)["spike"]
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

    def arrays(self, ts: np.ndarray, x: np.ndarray, state: AdtkFittedState) -> dict[str, np.ndarray]:
        """Seasonal profile offset, expectation (profile + past median of the
        deseasonalised data over spike_window), the spike statistic (PersistAD's) and
        the long seasonal baseline."""
        seasonal = state.seasonal_expected(ts) if state.seasonal else np.zeros(len(x))
        y = x - seasonal
        base = past_median(y, self.points("spike_window", state.step_seconds))
        out = {"seasonal": seasonal, "spike": y - base, "expected": seasonal + base}
        if state.seasonal:
            out["seasonal_expected"] = seasonal + past_median(y, self.points("seasonal_level_window", state.step_seconds))
        return out

    def with_state(self, ts: np.ndarray, x: np.ndarray, state: AdtkFittedState) -> dict[str, np.ndarray]:
        """The arrays a ScoredSeries carries for explanations, from one fit."""
        ex = self.arrays(ts, x, state)
        expected = np.where(np.isfinite(ex["expected"]), ex["expected"], x)
        out = {
            "seasonal": ex["seasonal"],
            "expected": expected,
            "scale": np.full(len(x), state.scales["spike"].sigma if "spike" in state.scales else np.nan),
        }
        if "seasonal_expected" in ex:
            out["seasonal_expected"] = np.where(np.isfinite(ex["seasonal_expected"]), ex["seasonal_expected"], expected)
        return out

    def walk(
        self, ts: np.ndarray, x: np.ndarray, fingerprint: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], AdtkFittedState | None]:
        """Explanation arrays of a full run: profiles fitted on the past, refitted when
        the data doubles (early) or every ``refit_age`` of data time, as production
        would; and the fit on all the points (None if too few)."""
        n = len(x)
        out: dict[str, np.ndarray] = {
            "expected": x.astype(np.float64).copy(), "scale": np.full(n, np.nan),
            "seasonal": np.zeros(n), "seasonal_expected": np.full(n, np.nan),
        }
        has_seasonal = np.zeros(n, dtype=bool)
        i = int(self.params["min_fit_points"])
        refit_ns = int(parse_duration(self.params["refit_age"]).value)
        while i < n:
            state = self.fit_upto(ts, x, i, fingerprint)
            by_age = int(np.searchsorted(ts, ts[i - 1] + refit_ns, side="right"))
            nxt = min(max(min(2 * i, by_age), i + 1), n)
            h0 = max(0, i - self.explain_points(state.step_seconds))
            part = self.with_state(ts[h0:nxt], x[h0:nxt], state)
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
        final = self.fit_upto(ts, x, n, fingerprint) if n >= self.params["min_fit_points"] else None
        return out, final
