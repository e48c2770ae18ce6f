"""The v1 engine's fitted state: streamed scoring statistics plus the explanation fit.

Plain dataclasses, picklable and JSON-able (:meth:`AdtkFittedState.to_dict` /
:meth:`AdtkFittedState.from_dict`), so the detection task can store them next to the
series watermark. A state records when it was fitted (``fit_time``, wall clock) and the
last timestamp of the data it was fitted on (``data_end``); the engine decides staleness
from data time (``data_end``) so replays and backfills are deterministic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.core.engines.alarms import AlarmCarry
from analytics.core.engines.profiles import SeasonalComponent, seasonal_offset
from analytics.core.engines.statepack import (
    nan_to_none,
    none_to_nan,
    optional_int,
    pack_float32,
    pack_float64,
    unpack_float32,
    unpack_float64,
)

STATE_VERSION = 3  # 2: seasonal lag and likelihood statistics; 3: streamed scoring statistics

_ARRAYS = ("lag_buffer", "tail_x", "tail_dev", "tail_stats", "tail_u", "open_x", "open_sd", "open_r", "ring_level",
           "ring_seasonal", "stats", "ring_likelihood", "lik_open")


@dataclass
class StreamState:
    """The v1 engine's scoring statistics, advanced point by point (:mod:`.streaming`).

    Everything a new point's score depends on, so an incremental call needs no scoring
    context:

    - ``lag_buffer``: the last ``lag`` values (the seasonal difference), or with
      ``seasonal_reference="time"`` the last value seen in each slot of the period;
    - per-block summaries of the last ``baseline_points / block_points`` blocks:
      ``ring_level`` rows (block median, sum |x - median in force|, count, min, max,
      sum |spike residual|, count of spike residuals) and ``ring_seasonal`` rows
      (median, sum |sd - median in force|, count of the seasonal difference sd);
      ``held_blocks`` counts consecutive seasonal blocks left out as anomalous;
    - ``stats``, refreshed from the rings at the last block boundary: level median and
      scale, seasonal median and scale, spike scale; the open block's values
      (``open_x``, ``open_sd``, ``open_r``);
    - the likelihood sums per likelihood block, ``ring_likelihood`` rows (sum u, sum
      u^2, count, sum of the spike path's u, its sum of squares) plus the open block's
      ``lik_open``, and the refreshed ``lik_mean``/``lik_std`` and
      ``spike_mean``/``spike_std``;
    - the short tails the m-point means need (``tail_x``, ``tail_dev``, ``tail_stats``,
      ``tail_u``);
    - ``alarm``: what alarm post-processing carries to the next call.
    """

    step_seconds: float
    lag: int
    points: int = 0
    cursor_ns: int | None = None
    lag_buffer: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail_dev: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail_stats: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    tail_u: np.ndarray = field(default_factory=lambda: np.zeros(0))
    open_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    open_sd: np.ndarray = field(default_factory=lambda: np.zeros(0))
    open_r: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ring_level: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))
    ring_seasonal: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    stats: np.ndarray = field(default_factory=lambda: np.full(5, np.nan))
    ring_likelihood: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    lik_open: np.ndarray = field(default_factory=lambda: np.zeros(5))
    lik_mean: float = math.nan
    lik_std: float = math.nan
    spike_mean: float = math.nan
    spike_std: float = math.nan
    held_blocks: int = 0
    alarm: AlarmCarry = field(default_factory=AlarmCarry)

    def copy(self) -> StreamState:
        out = StreamState(**{f: getattr(self, f) for f in self.__dataclass_fields__})
        for name in _ARRAYS:
            setattr(out, name, np.array(getattr(self, name), dtype=np.float64, copy=True))
        out.alarm = dataclasses.replace(self.alarm, recent_hits_ns=list(self.alarm.recent_hits_ns))
        return out

    def numbers(self) -> int:
        """How many numbers the state holds (its size, give or take a few scalars)."""
        return int(sum(np.size(getattr(self, n)) for n in _ARRAYS)) + 8 + len(self.alarm.recent_hits_ns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_seconds": self.step_seconds,
            "lag": self.lag,
            "points": self.points,
            "cursor_ns": self.cursor_ns,
            "lag_buffer": pack_float32(self.lag_buffer),
            "tail_x": pack_float64(self.tail_x),
            "tail_dev": pack_float64(self.tail_dev),
            "tail_stats": pack_float64(self.tail_stats),
            "tail_u": pack_float64(self.tail_u),
            "open_x": pack_float64(self.open_x),
            "open_sd": pack_float64(self.open_sd),
            "open_r": pack_float64(self.open_r),
            "ring_level": pack_float64(self.ring_level),
            "ring_seasonal": pack_float64(self.ring_seasonal),
            "stats": pack_float64(self.stats),
            "ring_likelihood": pack_float64(self.ring_likelihood),
            "lik_open": pack_float64(self.lik_open),
            "lik_mean": nan_to_none(self.lik_mean),
            "lik_std": nan_to_none(self.lik_std),
            "spike_mean": nan_to_none(self.spike_mean),
            "spike_std": nan_to_none(self.spike_std),
            "held_blocks": self.held_blocks,
            "since_alarm": self.alarm.previous_start,
            "last_alarm_end_ns": self.alarm.last_alarm_end_ns,
            "open_alarm": self.alarm.open,
            "recent_hits_ns": list(self.alarm.recent_hits_ns),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamState:
        return cls(
            step_seconds=float(data["step_seconds"]),
            lag=int(data["lag"]),
            points=int(data["points"]),
            cursor_ns=None if data.get("cursor_ns") is None else int(data["cursor_ns"]),
            lag_buffer=unpack_float32(data["lag_buffer"]),
            tail_x=unpack_float64(data["tail_x"]),
            tail_dev=unpack_float64(data["tail_dev"]),
            tail_stats=unpack_float64(data["tail_stats"], 2),
            tail_u=unpack_float64(data["tail_u"]),
            open_x=unpack_float64(data["open_x"]),
            open_sd=unpack_float64(data["open_sd"]),
            open_r=unpack_float64(data["open_r"]),
            ring_level=unpack_float64(data["ring_level"], 7),
            ring_seasonal=unpack_float64(data["ring_seasonal"], 3),
            stats=unpack_float64(data["stats"]),
            ring_likelihood=unpack_float64(data["ring_likelihood"], 5),
            lik_open=unpack_float64(data["lik_open"]),
            lik_mean=none_to_nan(data.get("lik_mean")),
            lik_std=none_to_nan(data.get("lik_std")),
            spike_mean=none_to_nan(data.get("spike_mean")),
            spike_std=none_to_nan(data.get("spike_std")),
            held_blocks=int(data.get("held_blocks", 0)),
            alarm=AlarmCarry(optional_int(data.get("since_alarm")), optional_int(data.get("last_alarm_end_ns")),
                             bool(data.get("open_alarm", False)), [int(v) for v in data.get("recent_hits_ns", [])]),
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
        return {"center": self.center, "sigma": self.sigma, "low": nan_to_none(self.low), "high": nan_to_none(self.high)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComponentScale:
        return cls(
            center=float(data["center"]),
            sigma=float(data["sigma"]),
            low=none_to_nan(data.get("low")),
            high=none_to_nan(data.get("high")),
        )


@dataclass
class AdtkFittedState:
    """What the v1 engine fitted on one series' past (:mod:`.engine`).

    ``seasonal`` (profiles) and ``scales`` feed the explanations; the scores use
    ``seasonal_lag_points`` (lag of the seasonal-difference component, 0 = off) and the
    per-series likelihood statistics: mean and standard deviation of
    ``u = log1p(deviation)`` over the ``likelihood_count`` points before the fit
    (``likelihood_mean`` is NaN while there are too few: the engine scores 0).
    ``stream`` holds the scoring statistics as of the last scored point (its
    ``cursor_ns``); scoring new points advances a copy of it. ``data_end`` is the end
    of the data the explanation profiles were fitted on (their staleness).
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
    stream: StreamState | None = None
    version: int = STATE_VERSION

    @property
    def likelihood_ready(self) -> bool:
        return math.isfinite(self.likelihood_mean) and math.isfinite(self.likelihood_std)

    def age(self, now: datetime) -> pd.Timedelta:
        """Data time elapsed since the end of the fitted data."""
        return pd.Timestamp(now) - pd.Timestamp(self.data_end)

    def is_stale(self, now: datetime, max_age: pd.Timedelta | str) -> bool:
        return self.age(now) > pd.Timedelta(max_age)

    def seasonal_expected(self, timestamps_ns: np.ndarray) -> np.ndarray:
        return seasonal_offset(self.seasonal, timestamps_ns)

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
            "likelihood_mean": nan_to_none(self.likelihood_mean),
            "likelihood_std": nan_to_none(self.likelihood_std),
            "likelihood_count": self.likelihood_count,
            "stream": None if self.stream is None else self.stream.to_dict(),
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
            likelihood_mean=none_to_nan(data.get("likelihood_mean")),
            likelihood_std=none_to_nan(data.get("likelihood_std")),
            likelihood_count=int(data.get("likelihood_count", 0)),
            stream=None if data.get("stream") is None else StreamState.from_dict(data["stream"]),
        )
