"""Fitted engine state: what costly fitting learned about one series, kept between runs.

Plain dataclasses, picklable and JSON-able (:meth:`AdtkFittedState.to_dict` /
:meth:`AdtkFittedState.from_dict`), so the detection task can store them next to the
series watermark. A state records when it was fitted (``fit_time``, wall clock) and the
last timestamp of the data it was fitted on (``data_end``); engines decide staleness
from data time (``data_end``) so replays and backfills are deterministic.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

STATE_VERSION = 3  # 2: seasonal lag and likelihood statistics; 3: streamed scoring statistics


def _pack(values: np.ndarray) -> dict[str, Any]:
    """A float array as JSON: float32 deviations from a float64 offset (their median),
    base64. The offset keeps float32 rounding relative to the series' variation, not to
    its magnitude (a counter near 1e9 that moves by 1 stays exact to ~1e-7 of the move)."""
    a = np.asarray(values, dtype=np.float64)
    finite = a[np.isfinite(a)]
    offset = float(np.median(finite)) if finite.size else 0.0
    raw = (a - offset).astype("<f4").tobytes()
    return {"n": int(a.size), "offset": offset, "f32": base64.b64encode(raw).decode("ascii")}


def _unpack(data: Mapping[str, Any]) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(data["f32"]), dtype="<f4").astype(np.float64)
    if a.size != int(data["n"]):
        raise ValueError("packed array: length mismatch")
    return a + float(data["offset"])


def _floats(values: Any) -> str:
    """A small float array as JSON: exact float64 bytes, base64 (NaN kept)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def _array(values: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(values), dtype="<f8").astype(np.float64)
    return a.reshape(shape) if shape is not None else a


_ARRAYS = ("lag_buffer", "tail_x", "tail_dev", "tail_stats", "tail_u", "open_x", "open_sd", "open_r", "ring_level",
           "ring_seasonal", "stats", "ring_likelihood", "lik_open")


@dataclass
class StreamState:
    """The ADTK engine's scoring statistics, advanced point by point (see ``adtk_engine``).

    Everything a new point's score depends on, so an incremental call needs no scoring
    context: the last ``lag`` values (seasonal difference), the per-block summaries of
    the baseline windows (``ring_level`` rows: block median, sum |x - baseline|, count,
    min, max; ``ring_seasonal`` rows: median, sum |sd - baseline|, count of the seasonal
    difference), the statistics refreshed from them at the last block boundary
    (``stats``: level median and scale, seasonal median and scale), the open block's
    values, the likelihood blocks (``ring_likelihood`` rows: sum u, sum u^2, count; the
    open block's sums in ``lik_open``) and the refreshed ``lik_mean``/``lik_std``, the
    short tails of x, of the seasonal deviation and of u that rolling means of a few
    points need, and the alarm state (points since the last alarm start, the end of the
    last reported alarm, recent threshold crossings for k-of-n).
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
    since_alarm: int | None = None
    last_alarm_end_ns: int | None = None
    open_alarm: bool = False
    recent_hits_ns: list[int] = field(default_factory=list)

    def copy(self) -> StreamState:
        out = StreamState(**{f: getattr(self, f) for f in self.__dataclass_fields__})
        for name in _ARRAYS:
            setattr(out, name, np.array(getattr(self, name), dtype=np.float64, copy=True))
        out.recent_hits_ns = list(self.recent_hits_ns)
        return out

    def numbers(self) -> int:
        """How many numbers the state holds (its size, give or take a few scalars)."""
        return int(sum(np.size(getattr(self, n)) for n in _ARRAYS)) + 8 + len(self.recent_hits_ns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_seconds": self.step_seconds,
            "lag": self.lag,
            "points": self.points,
            "cursor_ns": self.cursor_ns,
            "lag_buffer": _pack(self.lag_buffer),
            "tail_x": _floats(self.tail_x),
            "tail_dev": _floats(self.tail_dev),
            "tail_stats": _floats(self.tail_stats),
            "tail_u": _floats(self.tail_u),
            "open_x": _floats(self.open_x),
            "open_sd": _floats(self.open_sd),
            "open_r": _floats(self.open_r),
            "ring_level": _floats(self.ring_level),
            "ring_seasonal": _floats(self.ring_seasonal),
            "stats": _floats(self.stats),
            "ring_likelihood": _floats(self.ring_likelihood),
            "lik_open": _floats(self.lik_open),
            "lik_mean": _nan_to_none(self.lik_mean),
            "lik_std": _nan_to_none(self.lik_std),
            "spike_mean": _nan_to_none(self.spike_mean),
            "spike_std": _nan_to_none(self.spike_std),
            "held_blocks": self.held_blocks,
            "since_alarm": self.since_alarm,
            "last_alarm_end_ns": self.last_alarm_end_ns,
            "open_alarm": self.open_alarm,
            "recent_hits_ns": list(self.recent_hits_ns),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamState:
        return cls(
            step_seconds=float(data["step_seconds"]),
            lag=int(data["lag"]),
            points=int(data["points"]),
            cursor_ns=None if data.get("cursor_ns") is None else int(data["cursor_ns"]),
            lag_buffer=_unpack(data["lag_buffer"]),
            tail_x=_array(data["tail_x"]),
            tail_dev=_array(data["tail_dev"]),
            tail_stats=_array(data["tail_stats"], (-1, 2)),
            tail_u=_array(data["tail_u"]),
            open_x=_array(data["open_x"]),
            open_sd=_array(data["open_sd"]),
            open_r=_array(data["open_r"]),
            ring_level=_array(data["ring_level"], (-1, 7)),
            ring_seasonal=_array(data["ring_seasonal"], (-1, 3)),
            stats=_array(data["stats"]),
            ring_likelihood=_array(data["ring_likelihood"], (-1, 5)),
            lik_open=_array(data["lik_open"]),
            lik_mean=_none_to_nan(data.get("lik_mean")),
            lik_std=_none_to_nan(data.get("lik_std")),
            spike_mean=_none_to_nan(data.get("spike_mean")),
            spike_std=_none_to_nan(data.get("spike_std")),
            held_blocks=int(data.get("held_blocks", 0)),
            since_alarm=None if data.get("since_alarm") is None else int(data["since_alarm"]),
            last_alarm_end_ns=None if data.get("last_alarm_end_ns") is None else int(data["last_alarm_end_ns"]),
            open_alarm=bool(data.get("open_alarm", False)),
            recent_hits_ns=[int(v) for v in data.get("recent_hits_ns", [])],
        )


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
            "profile": _pack(self.profile),
            "autocorrelation": self.autocorrelation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeasonalComponent:
        return cls(
            period_seconds=float(data["period_seconds"]),
            step_seconds=float(data["step_seconds"]),
            profile=_unpack(data["profile"]),
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
            likelihood_mean=_none_to_nan(data.get("likelihood_mean")),
            likelihood_std=_none_to_nan(data.get("likelihood_std")),
            likelihood_count=int(data.get("likelihood_count", 0)),
            stream=None if data.get("stream") is None else StreamState.from_dict(data["stream"]),
        )
