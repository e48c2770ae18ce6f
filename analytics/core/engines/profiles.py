"""Seasonal profiles for explanations, fitted with ADTK's ClassicSeasonalDecomposition.

An engine's explanations quote what the metric usually does at this time of day or week.
The profile of a period (daily, weekly) is learnt from past data resampled onto a
regular grid, kept when the data hold ``min_cycles`` periods and (in ``auto`` mode) its
autocorrelation at the period's lag passes ``min_acf``; it is stored epoch-aligned and
smoothed, so it applies to any later timestamp.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from adtk.transformer import ClassicSeasonalDecomposition

from analytics.core.engines.base import NOMINAL_STEP_SECONDS
from analytics.core.engines.parameters import parse_duration
from analytics.core.engines.statepack import pack_float32, unpack_float32

warnings.filterwarnings("ignore", category=FutureWarning, module=r"adtk(\..*)?")

def infer_step_seconds(timestamps_ns: np.ndarray) -> float:
    """Median spacing in seconds, rounded to a whole second (>= 1 s); the nominal step
    if unknown."""
    if len(timestamps_ns) < 2:
        return NOMINAL_STEP_SECONDS
    step = float(np.median(np.diff(timestamps_ns))) / 1e9
    return max(1.0, float(round(step)))


def parse_periods(value: str) -> list[pd.Timedelta]:
    """"1d,7d" -> the periods, ascending."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ValueError("needs at least one period, e.g. '1d,7d'")
    periods = [parse_duration(p) for p in parts]
    if any(p <= pd.Timedelta(0) for p in periods):
        raise ValueError(f"periods must be positive, got {value!r}")
    return sorted(periods)


def check_periods(value: Any) -> None:
    parse_periods(value)


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


def circular_smooth(profile: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``width`` slots around the period (wraps at the ends)."""
    if width <= 1 or len(profile) < 3:
        return profile
    width = min(width, len(profile))
    half = width // 2
    padded = np.concatenate([profile[-half:], profile, profile[: width - half - 1]]) if half else profile
    c = np.concatenate([[0.0], np.cumsum(padded)])
    return np.asarray((c[width:] - c[:-width])[: len(profile)] / width, dtype=np.float64)


def lag_autocorrelation(g: np.ndarray, lag: int) -> float:
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


@dataclass
class SeasonalComponent:
    """One seasonal period and its profile, epoch-aligned.

    ``profile[k]`` is the seasonal offset of the slot starting ``k * step`` after the
    start of a period counted from the UTC epoch (for a daily period: from midnight UTC;
    for a weekly one: from Thursday 00:00 UTC, the epoch's weekday).
    """

    period_seconds: float
    step_seconds: float
    profile: np.ndarray
    autocorrelation: float

    def slots(self, timestamps_ns: np.ndarray) -> np.ndarray:
        period_ns = int(round(self.period_seconds * 1e9))
        step_ns = int(round(self.step_seconds * 1e9))
        phase = np.mod(timestamps_ns, period_ns)
        return np.asarray(np.minimum(phase // step_ns, len(self.profile) - 1), dtype=np.int64)

    def expected(self, timestamps_ns: np.ndarray) -> np.ndarray:
        return np.asarray(self.profile[self.slots(timestamps_ns)], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period_seconds": self.period_seconds,
            "step_seconds": self.step_seconds,
            "profile": pack_float32(self.profile),
            "autocorrelation": self.autocorrelation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeasonalComponent:
        return cls(
            period_seconds=float(data["period_seconds"]),
            step_seconds=float(data["step_seconds"]),
            profile=unpack_float32(data["profile"]),
            autocorrelation=float(data["autocorrelation"]),
        )


def seasonal_offset(components: Sequence[SeasonalComponent], timestamps_ns: np.ndarray) -> np.ndarray:
    """The summed seasonal offset of the components at each timestamp."""
    out = np.zeros(len(timestamps_ns), dtype=np.float64)
    for component in components:
        out += component.expected(timestamps_ns)
    return out


@dataclass(frozen=True)
class ProfileSettings:
    """``mode``: auto (periods whose autocorrelation passes ``min_acf``), on (all periods
    with enough data), off."""

    mode: str
    periods: str
    min_acf: float
    min_cycles: int
    smoothing_seconds: float


def fit_seasonal_profiles(
    timestamps_ns: np.ndarray, values: np.ndarray, step_seconds: float, settings: ProfileSettings
) -> list[SeasonalComponent]:
    """The seasonal components of past data, each learnt on what the shorter periods left."""
    if settings.mode == "off" or len(timestamps_ns) < 4:
        return []
    step_ns = int(round(step_seconds * 1e9))
    bins, g = regular_grid(timestamps_ns, values, step_ns)
    components: list[SeasonalComponent] = []
    for period in parse_periods(settings.periods):
        ratio = period.total_seconds() / step_seconds
        slots = int(round(ratio))
        if slots < 4 or abs(ratio - slots) > 1e-6 or len(g) < settings.min_cycles * slots:
            continue
        acf = lag_autocorrelation(g, slots)
        if settings.mode == "auto" and not (acf >= settings.min_acf):
            continue
        index = pd.date_range(
            start=pd.Timestamp(int(bins[0]) * step_ns, tz="UTC"), periods=len(g), freq=pd.Timedelta(step_ns)
        )
        decomposition = ClassicSeasonalDecomposition(freq=slots, trend=True)
        try:
            decomposition.fit(pd.Series(g, index=index))
        except Exception:  # noqa: BLE001 - statsmodels/ADTK refuse some inputs; skip that period
            continue
        pattern = np.asarray(decomposition.seasonal_.to_numpy(), dtype=np.float64)
        period_ns = int(period.value)
        slot0 = int((int(bins[0]) * step_ns) % period_ns // step_ns)
        profile = np.empty(slots, dtype=np.float64)
        profile[(slot0 + np.arange(slots)) % slots] = pattern
        profile = circular_smooth(profile, int(round(settings.smoothing_seconds / step_seconds)))
        component = SeasonalComponent(
            period_seconds=period.total_seconds(), step_seconds=step_seconds,
            profile=profile, autocorrelation=float(acf) if math.isfinite(acf) else 0.0,
        )
        components.append(component)
        g = g - profile[component.slots(bins * step_ns)]
    return components
