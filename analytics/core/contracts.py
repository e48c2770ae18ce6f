"""Data contracts shared by the store, the engines, the aggregators and the API.

Plain frozen dataclasses with validation: invalid input raises ``ValueError`` naming the
field. Series hold numpy arrays (not lists of datetimes) so a day of one-minute points
or a fleet of series costs arrays, not millions of Python objects.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

Identifier = Hashable  # ids are ints in the database and strings in files and notebooks


class AnomalyType(enum.StrEnum):
    SPIKE = "spike"
    TREND = "trend"
    SEASONAL = "seasonal"
    NORMAL = "normal"


class Direction(enum.StrEnum):
    UP = "up"
    DOWN = "down"


def _require_id(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None:
        if optional:
            return
        raise ValueError(f"{name}: required")
    if isinstance(value, str) and not value:
        raise ValueError(f"{name}: must not be empty")


def _require_unit_interval(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is None:
        if optional:
            return
        raise ValueError(f"{name}: required")
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: must be in [0, 1], got {value!r}")


def _require_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{name}: must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: must be timezone-aware")


def to_utc_index(timestamps: Any, name: str = "timestamps") -> pd.DatetimeIndex:
    """Normalise timestamps to a UTC DatetimeIndex; naive input is rejected."""
    if isinstance(timestamps, pd.DatetimeIndex):
        index = timestamps
    else:
        array = np.asarray(timestamps) if not isinstance(timestamps, Sequence) else None
        if array is not None and np.issubdtype(array.dtype, np.datetime64):
            raise ValueError(f"{name}: numpy datetime64 has no timezone; pass aware datetimes")
        try:
            index = pd.DatetimeIndex(list(timestamps) if array is None else array)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: not datetimes ({exc})") from None
    if len(index) and index.tz is None:
        raise ValueError(f"{name}: must be timezone-aware")
    if index.tz is None:
        return index.tz_localize("UTC")
    return index.tz_convert("UTC").as_unit("ns")


@dataclass(frozen=True)
class MetricPoint:
    timestamp: datetime
    value: float

    def __post_init__(self) -> None:
        _require_aware("timestamp", self.timestamp)
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise ValueError(f"value: must be a number, got {type(self.value).__name__}")
        if not math.isfinite(self.value):
            raise ValueError(f"value: must be finite, got {self.value!r}")


@dataclass(frozen=True, eq=False)
class MetricSeries:
    """One metric of one node over time: UTC timestamps strictly ascending, finite values."""

    tenant_id: Identifier
    cluster_id: Identifier
    node_id: Identifier
    metric_name: str
    timestamps: pd.DatetimeIndex
    values: np.ndarray
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("tenant_id", "cluster_id", "node_id"):
            _require_id(name, getattr(self, name))
        if not isinstance(self.metric_name, str) or not self.metric_name:
            raise ValueError("metric_name: must be a non-empty string")
        index = to_utc_index(self.timestamps)
        try:
            values = np.array(self.values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("values: must be numbers") from None
        if values.ndim != 1:
            raise ValueError("values: must be one-dimensional")
        if len(values) != len(index):
            raise ValueError(f"values: length {len(values)} differs from timestamps length {len(index)}")
        if not np.isfinite(values).all():
            raise ValueError("values: must be finite (no NaN or infinity)")
        if len(index) > 1 and not (np.diff(index.to_numpy(dtype=np.int64)) > 0).all():
            raise ValueError("timestamps: must be strictly ascending")
        values.flags.writeable = False
        object.__setattr__(self, "timestamps", index)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __len__(self) -> int:
        return len(self.values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetricSeries):
            return NotImplemented
        return (
            self.key == other.key
            and self.timestamps.equals(other.timestamps)
            and np.array_equal(self.values, other.values)
            and self.metadata == other.metadata
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def key(self) -> tuple[Identifier, Identifier, Identifier, str]:
        return (self.tenant_id, self.cluster_id, self.node_id, self.metric_name)

    @property
    def points(self) -> list[MetricPoint]:
        return [MetricPoint(ts.to_pydatetime(), float(v)) for ts, v in zip(self.timestamps, self.values, strict=True)]

    def slice(self, start: datetime | None = None, end: datetime | None = None) -> MetricSeries:
        """Points with start <= t < end."""
        lo = 0 if start is None else int(self.timestamps.searchsorted(pd.Timestamp(start), side="left"))
        hi = len(self) if end is None else int(self.timestamps.searchsorted(pd.Timestamp(end), side="left"))
        return MetricSeries(
            self.tenant_id, self.cluster_id, self.node_id, self.metric_name,
            self.timestamps[lo:hi], self.values[lo:hi], self.metadata,
        )


@dataclass(frozen=True)
class AnomalyExplanation:
    """Why a window is anomalous, in numbers; templates turn it into a sentence."""

    anomaly_type: AnomalyType
    confidence: float
    observed: float
    expected: float
    deviation_sigma: float
    deviation_percent: float | None  # None when the expected value is zero
    direction: Direction
    start: datetime
    end: datetime
    metric_name: str = ""
    node: str = ""
    text: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "anomaly_type", AnomalyType(self.anomaly_type))
        object.__setattr__(self, "direction", Direction(self.direction))
        _require_unit_interval("confidence", self.confidence)
        for name in ("observed", "expected", "deviation_sigma"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name}: must be a finite number, got {value!r}")
        _require_aware("start", self.start)
        _require_aware("end", self.end)
        if self.end < self.start:
            raise ValueError("end: must not be before start")

    @property
    def duration_seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.anomaly_type.value,
            "confidence": self.confidence,
            "observed": self.observed,
            "expected": self.expected,
            "deviation_sigma": self.deviation_sigma,
            "deviation_percent": self.deviation_percent,
            "direction": self.direction.value,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "duration_seconds": self.duration_seconds,
            "metric_name": self.metric_name,
            "node": self.node,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnomalyExplanation:
        return cls(
            anomaly_type=AnomalyType(data["type"]),
            confidence=data["confidence"],
            observed=data["observed"],
            expected=data["expected"],
            deviation_sigma=data["deviation_sigma"],
            deviation_percent=data["deviation_percent"],
            direction=Direction(data["direction"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            metric_name=data.get("metric_name", ""),
            node=data.get("node", ""),
            text=data.get("text", ""),
        )


@dataclass(frozen=True)
class AnomalyResult:
    """The verdict on one window of one series."""

    tenant_id: Identifier
    cluster_id: Identifier
    node_id: Identifier
    metric_name: str
    window_start: datetime
    window_end: datetime
    anomaly_score: float
    anomaly_label: AnomalyType = AnomalyType.NORMAL
    magnitude: float | None = None
    explanation: AnomalyExplanation | None = None
    engine: str = ""

    def __post_init__(self) -> None:
        for name in ("tenant_id", "cluster_id", "node_id"):
            _require_id(name, getattr(self, name))
        if not isinstance(self.metric_name, str) or not self.metric_name:
            raise ValueError("metric_name: must be a non-empty string")
        _require_aware("window_start", self.window_start)
        _require_aware("window_end", self.window_end)
        if self.window_end < self.window_start:
            raise ValueError("window_end: must not be before window_start")
        _require_unit_interval("anomaly_score", self.anomaly_score)
        _require_unit_interval("magnitude", self.magnitude, optional=True)
        try:
            object.__setattr__(self, "anomaly_label", AnomalyType(self.anomaly_label))
        except ValueError:
            raise ValueError(f"anomaly_label: must be one of {[t.value for t in AnomalyType]}") from None
        if self.explanation is not None and not isinstance(self.explanation, AnomalyExplanation):
            raise ValueError("explanation: must be an AnomalyExplanation or None")

    @property
    def series_key(self) -> tuple[Identifier, Identifier, Identifier, str]:
        return (self.tenant_id, self.cluster_id, self.node_id, self.metric_name)

    @property
    def is_anomaly(self) -> bool:
        return self.anomaly_label is not AnomalyType.NORMAL


class AggregationStrategy(enum.StrEnum):
    MAX = "max"
    MEAN = "mean"
    WEIGHTED = "weighted"
    P95 = "p95"


@dataclass(frozen=True)
class AggregatedAnomalyScore:
    """A score rolled up to a node (node_id set), a cluster (node_id None) or the tenant
    (cluster_id and node_id None). ``driver`` names what drove it: the metric behind a
    node, the node behind a cluster, the cluster behind the tenant."""

    tenant_id: Identifier
    cluster_id: Identifier | None
    node_id: Identifier | None
    aggregation_strategy: AggregationStrategy
    aggregate_score: float
    num_metrics_analyzed: int
    num_anomalies_detected: int
    driver: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_id("tenant_id", self.tenant_id)
        if self.node_id is not None and self.cluster_id is None:
            raise ValueError("cluster_id: required when node_id is set")
        try:
            object.__setattr__(self, "aggregation_strategy", AggregationStrategy(self.aggregation_strategy))
        except ValueError:
            raise ValueError(
                f"aggregation_strategy: must be one of {[s.value for s in AggregationStrategy]}"
            ) from None
        _require_unit_interval("aggregate_score", self.aggregate_score)
        for name in ("num_metrics_analyzed", "num_anomalies_detected"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}: must be a non-negative integer, got {value!r}")
        if self.num_anomalies_detected > self.num_metrics_analyzed:
            raise ValueError("num_anomalies_detected: cannot exceed num_metrics_analyzed")
        object.__setattr__(self, "driver", dict(self.driver))

    @property
    def level(self) -> str:
        if self.node_id is not None:
            return "node"
        if self.cluster_id is not None:
            return "cluster"
        return "tenant"
