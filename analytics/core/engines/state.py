"""Fitted engine state: what costly fitting learned about one series, kept between runs.

Plain dataclasses, picklable and JSON-able (:meth:`AdtkFittedState.to_dict` /
:meth:`AdtkFittedState.from_dict`), so the detection task can store them next to the
series watermark. A state records when it was fitted (``fit_time``, wall clock) and the
last timestamp of the data it was fitted on (``data_end``); engines decide staleness
from data time (``data_end``) so replays and backfills are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

STATE_VERSION = 2  # 2: seasonal lag and likelihood statistics


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
        return np.minimum(phase // step_ns, len(self.profile) - 1).astype(np.int64)

    def expected(self, timestamps_ns: np.ndarray) -> np.ndarray:
        return self.profile[self.slots(timestamps_ns)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "period_seconds": self.period_seconds,
            "step_seconds": self.step_seconds,
            "profile": [float(v) for v in self.profile],
            "autocorrelation": self.autocorrelation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeasonalComponent:
        return cls(
            period_seconds=float(data["period_seconds"]),
            step_seconds=float(data["step_seconds"]),
            profile=np.asarray(data["profile"], dtype=np.float64),
            autocorrelation=float(data["autocorrelation"]),
        )


@dataclass
class ComponentScale:
    """Robust centre and sigma of one detector statistic over the fit window.

    ``low`` and ``high`` are the thresholds ADTK's InterQuartileRangeAD learned on the
    same statistic (``Q1 - c*IQR``, ``Q3 + c*IQR``); ``center``/``sigma`` derive from
    them (mid-quartile, ``IQR / 1.349``) with a MAD / floor fallback.
    """

    center: float
    sigma: float
    low: float = math.nan
    high: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"center": self.center, "sigma": self.sigma, "low": _nan_to_none(self.low), "high": _nan_to_none(self.high)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComponentScale:
        return cls(
            center=float(data["center"]),
            sigma=float(data["sigma"]),
            low=_none_to_nan(data.get("low")),
            high=_none_to_nan(data.get("high")),
        )


def _nan_to_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _none_to_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass
class AdtkFittedState:
    """What the ADTK engine fitted on one series' past (see ``adtk_engine``).

    ``seasonal`` (profiles) and ``scales`` feed the explanations; the scores use
    ``seasonal_lag_points`` (lag of the seasonal-difference component, 0 = off) and the
    per-series likelihood statistics: mean and standard deviation of
    ``u = log1p(deviation)`` over the ``likelihood_count`` points before the fit
    (``likelihood_mean`` is NaN while there are too few: the engine scores 0).
    """

    fit_time: datetime
    data_end: datetime
    data_start: datetime
    n_points: int
    step_seconds: float
    seasonal: list[SeasonalComponent] = field(default_factory=list)
    scales: dict[str, ComponentScale] = field(default_factory=dict)
    typical_magnitude: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    seasonal_lag_points: int = 0
    likelihood_mean: float = math.nan
    likelihood_std: float = math.nan
    likelihood_count: int = 0
    version: int = STATE_VERSION

    @property
    def likelihood_ready(self) -> bool:
        return math.isfinite(self.likelihood_mean) and math.isfinite(self.likelihood_std)

    @property
    def periods_seconds(self) -> list[float]:
        return [c.period_seconds for c in self.seasonal]

    def age(self, now: datetime) -> pd.Timedelta:
        """Data time elapsed since the end of the fitted data."""
        return pd.Timestamp(now) - pd.Timestamp(self.data_end)

    def is_stale(self, now: datetime, max_age: pd.Timedelta | str) -> bool:
        return self.age(now) > pd.Timedelta(max_age)

    def seasonal_expected(self, timestamps_ns: np.ndarray) -> np.ndarray:
        out = np.zeros(len(timestamps_ns), dtype=np.float64)
        for component in self.seasonal:
            out += component.expected(timestamps_ns)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "fit_time": self.fit_time.isoformat(),
            "data_end": self.data_end.isoformat(),
            "data_start": self.data_start.isoformat(),
            "n_points": self.n_points,
            "step_seconds": self.step_seconds,
            "seasonal": [c.to_dict() for c in self.seasonal],
            "scales": {k: v.to_dict() for k, v in self.scales.items()},
            "typical_magnitude": self.typical_magnitude,
            "params": dict(self.params),
            "seasonal_lag_points": self.seasonal_lag_points,
            "likelihood_mean": _nan_to_none(self.likelihood_mean),
            "likelihood_std": _nan_to_none(self.likelihood_std),
            "likelihood_count": self.likelihood_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdtkFittedState:
        if int(data.get("version", 0)) != STATE_VERSION:
            raise ValueError(f"version: unsupported state version {data.get('version')!r}")
        return cls(
            fit_time=datetime.fromisoformat(data["fit_time"]),
            data_end=datetime.fromisoformat(data["data_end"]),
            data_start=datetime.fromisoformat(data["data_start"]),
            n_points=int(data["n_points"]),
            step_seconds=float(data["step_seconds"]),
            seasonal=[SeasonalComponent.from_dict(c) for c in data.get("seasonal", [])],
            scales={k: ComponentScale.from_dict(v) for k, v in data.get("scales", {}).items()},
            typical_magnitude=float(data.get("typical_magnitude", 0.0)),
            params=dict(data.get("params", {})),
            seasonal_lag_points=int(data["seasonal_lag_points"]),
            likelihood_mean=_none_to_nan(data.get("likelihood_mean")),
            likelihood_std=_none_to_nan(data.get("likelihood_std")),
            likelihood_count=int(data.get("likelihood_count", 0)),
        )
