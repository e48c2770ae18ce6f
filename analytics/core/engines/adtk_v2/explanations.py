"""What the engine's explanations quote: the expectation, the seasonal profile, the sigma.

The seasonal profile (daily, weekly) is learnt with ADTK's ClassicSeasonalDecomposition
(:mod:`analytics.core.engines.profiles`) once the data hold ``seasonal_min_cycles``
periods, and refitted when older than ``refit_age``; a full run fits on the past as
production would (when the data double, or every ``refit_age`` of data time). The
expectation is the profile plus the median of the deseasonalised last ``spike_window``;
the seasonal expectation the same over ``seasonal_level_window``; the sigma is the
scoring's level scale in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.core.engines.parameters import parse_duration
from analytics.core.engines.profiles import (
    ProfileSettings,
    SeasonalComponent,
    fit_seasonal_profiles,
    parse_periods,
    seasonal_offset,
)
from analytics.core.engines.rolling import past_median


@dataclass
class Explained:
    expected: np.ndarray
    seasonal_expected: np.ndarray | None
    seasonal: np.ndarray


class ProfileFitter:
    """Seasonal profiles and explanation arrays of one engine configuration."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self.settings = ProfileSettings(
            mode=params["seasonal"], periods=params["seasonal_periods"], min_acf=params["seasonal_min_acf"],
            min_cycles=params["seasonal_min_cycles"],
            smoothing_seconds=float(parse_duration(params["seasonal_smoothing"]).total_seconds()),
        )

        self._seconds = {name: float(parse_duration(params[name]).total_seconds())
                         for name in ("spike_window", "seasonal_level_window", "fit_window", "refit_age")}

    def points(self, name: str, step_seconds: float) -> int:
        return max(1, int(round(self._seconds[name] / step_seconds)))

    def look_back(self, step_seconds: float) -> int:
        """Points before the first new one the explanation arrays look back over."""
        return max(self.points("spike_window", step_seconds), self.points("seasonal_level_window", step_seconds))

    def fit(self, ts: np.ndarray, x: np.ndarray, end: int, step_seconds: float) -> list[SeasonalComponent]:
        """Profiles of the points before ``end`` within ``fit_window``."""
        if end < 4:
            return []
        window_ns = int(self._seconds["fit_window"] * 1e9)
        lo = int(np.searchsorted(ts[:end], ts[end - 1] - window_ns, side="left"))
        return fit_seasonal_profiles(ts[lo:end], x[lo:end], step_seconds, self.settings)

    def arrays(self, ts: np.ndarray, x: np.ndarray, profiles: list[SeasonalComponent], step_seconds: float) -> Explained:
        offset = seasonal_offset(profiles, ts)
        y = x - offset
        expected = offset + past_median(y, self.points("spike_window", step_seconds))
        expected = np.where(np.isfinite(expected), expected, x)
        seasonal_expected = None
        if profiles:
            level = past_median(y, self.points("seasonal_level_window", step_seconds))
            seasonal_expected = np.where(np.isfinite(level), offset + level, expected)
        return Explained(expected, seasonal_expected, offset)

    def walk(self, ts: np.ndarray, x: np.ndarray, step_seconds: float) -> tuple[Explained, list[SeasonalComponent]]:
        """Explanation arrays of a full run, profiles fitted on the past only (first with
        two cycles of data, then when the data double or ``refit_age`` passed); and the
        profiles of all the points."""
        n = len(x)
        cycle_ns = int(min(p.value for p in parse_periods(self.settings.periods)))
        need_ns = self.settings.min_cycles * cycle_ns
        refit_ns = int(self._seconds["refit_age"] * 1e9)
        expected = np.empty(n)
        seasonal = np.zeros(n)
        seasonal_expected = np.full(n, np.nan)
        have = np.zeros(n, dtype=bool)
        i = int(np.searchsorted(ts, ts[0] + need_ns, side="left")) if n and self.settings.mode != "off" else n
        first = self.arrays(ts[:i], x[:i], [], step_seconds)
        expected[:i] = first.expected
        profiles: list[SeasonalComponent] = []
        while i < n:
            profiles = self.fit(ts, x, i, step_seconds)
            by_age = int(np.searchsorted(ts, ts[i - 1] + refit_ns, side="right"))
            nxt = min(max(min(2 * i, by_age), i + 1), n)
            h0 = max(0, i - self.look_back(step_seconds))
            part = self.arrays(ts[h0:nxt], x[h0:nxt], profiles, step_seconds)
            k = i - h0
            expected[i:nxt], seasonal[i:nxt] = part.expected[k:], part.seasonal[k:]
            if part.seasonal_expected is not None:
                seasonal_expected[i:nxt] = part.seasonal_expected[k:]
                have[i:nxt] = True
            i = nxt
        final = self.fit(ts, x, n, step_seconds)
        out = Explained(expected, np.where(have, seasonal_expected, expected) if have.any() else None, seasonal)
        return out, final
