"""What a simulated fleet is made of: its specification, the metric models, and the
records the generator yields (series keys, series, labelled anomalies). No Django.

Units and names shared by the whole package live here too: the time constants, the
metrics, and the anomaly kinds with the truth type each one counts as.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.core.contracts import MetricSeries

DAY = 86_400
WEEK = 7 * DAY
HOUR = 3_600
GIB = 1024**3

DEFAULT_METRICS: tuple[str, ...] = ("cpu_usage", "memory_used", "disk_io", "network_in", "network_out", "latency_ms")
ANOMALY_TYPES = ("spike", "trend", "seasonal")
KIND_TYPE = {"spike": "spike", "dip": "spike", "trend": "trend", "level_shift": "trend", "seasonal_break": "seasonal"}
#: relative frequency of the per-series anomaly kinds
KIND_WEIGHTS = {"spike": 0.25, "dip": 0.15, "trend": 0.2, "level_shift": 0.2, "seasonal_break": 0.2}
MIN_GAP_SECONDS = 2 * HOUR


@dataclass(frozen=True)
class MetricModel:
    name: str
    unit: str
    transform: str  # "logit" (scale * sigmoid) or "log" (exp)
    level: tuple[float, float]  # logit: mean fraction range; log: typical value range
    gain: tuple[float, float]  # response to the node load
    noise: float  # own noise std in latent units
    noise_tau: float  # own noise time constant, seconds
    decimals: int


METRIC_MODELS: dict[str, MetricModel] = {
    m.name: m
    for m in (
        MetricModel("cpu_usage", "%", "logit", (0.15, 0.45), (0.45, 0.7), 0.08, 120, 2),
        MetricModel("memory_used", "bytes", "logit", (0.35, 0.65), (0.15, 0.3), 0.03, 2 * HOUR, 0),
        MetricModel("disk_io", "ops/s", "log", (40, 400), (0.35, 0.6), 0.15, 120, 2),
        MetricModel("network_in", "bytes/s", "log", (2e6, 5e7), (0.5, 0.8), 0.06, 120, 0),
        MetricModel("network_out", "bytes/s", "log", (1e6, 4e7), (0.5, 0.8), 0.06, 120, 0),
        MetricModel("latency_ms", "ms", "log", (4, 40), (0.3, 0.45), 0.06, 120, 3),
    )
}


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("start: must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class FleetSpec:
    tenants: int = 1
    clusters_per_tenant: int = 2
    nodes_per_cluster: int = 4
    metrics: tuple[str, ...] = DEFAULT_METRICS
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    days: float = 7.0
    step_seconds: int = 60
    anomaly_rate: float = 0.1  # per series per eligible day
    seed: int = 0
    incident_rate: float = 0.15  # per cluster per eligible day
    clean_days: float = 2.0  # no anomaly starts before start + clean_days
    min_anomalies_per_kind: int = 0  # top the fleet up to this many anomalies of every kind (0: off)
    propagation: bool = False  # cluster incidents start on one series and spread (see fleet.py)
    tenant_prefix: str = "tenant"
    cluster_prefix: str = "cluster"
    node_prefix: str = "node"

    def __post_init__(self) -> None:
        for name in ("tenants", "clusters_per_tenant", "nodes_per_cluster", "step_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        if not isinstance(self.propagation, bool):
            raise ValueError(f"propagation: must be true or false, got {self.propagation!r}")
        for name in ("seed", "min_anomalies_per_kind"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}: must be a non-negative integer, got {value!r}")
        metrics = tuple(self.metrics)
        unknown = [m for m in metrics if m not in METRIC_MODELS]
        if not metrics or unknown or len(set(metrics)) != len(metrics):
            raise ValueError(f"metrics: must be distinct names among {', '.join(METRIC_MODELS)}, got {list(metrics)}")
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "start", _utc(self.start))
        if self.start.timestamp() % self.step_seconds:
            raise ValueError("start: must be a multiple of step_seconds since the epoch")
        for name in ("days", "anomaly_rate", "incident_rate", "clean_days"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: must be a finite non-negative number, got {value!r}")
        if self.days * DAY < self.step_seconds:
            raise ValueError("days: shorter than one step")

    @property
    def n_points(self) -> int:
        return int(math.floor(self.days * DAY / self.step_seconds + 1e-9))

    @property
    def start_epoch(self) -> int:
        return int(self.start.timestamp())

    def without_anomalies(self) -> FleetSpec:
        """The same fleet, clean (identical values outside the anomaly spans)."""
        return replace(self, anomaly_rate=0.0, incident_rate=0.0)


@dataclass(frozen=True, order=True)
class SeriesKey:
    tenant: str
    cluster: str
    node: str
    metric: str

    @property
    def node_key(self) -> tuple[str, str, str]:
        return (self.tenant, self.cluster, self.node)

    def __str__(self) -> str:
        return f"{self.tenant}/{self.cluster}/{self.node}/{self.metric}"


@dataclass(frozen=True)
class Anomaly:
    """One labelled anomaly on one series; ``start``/``end`` are its first/last anomalous samples."""

    tenant: str
    cluster: str
    node: str
    metric: str
    type: str  # spike | trend | seasonal
    kind: str  # spike | dip | trend | level_shift | seasonal_break
    start: datetime
    end: datetime
    start_index: int
    end_index: int  # inclusive
    magnitude: float  # latent units (logit/log); for seasonal_break the peak shift in hours
    incident: str | None = None  # cluster incident id, None for a single-series anomaly

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(self.tenant, self.cluster, self.node, self.metric)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = iso(self.start)
        data["end"] = iso(self.end)
        return data


@dataclass(frozen=True)
class Propagation:
    """The truth of a propagating incident (``FleetSpec.propagation``): its anomalies in the
    order they started, the origin first (the others start 5-30 minutes after it)."""

    incident: str
    order: tuple[Anomaly, ...]

    @property
    def origin(self) -> SeriesKey:
        return self.order[0].key

    @property
    def start(self) -> datetime:
        return self.order[0].start

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "origin": str(self.origin),
            "order": [{"series": str(a.key), "start": iso(a.start),
                       "lag_seconds": (a.start - self.start).total_seconds()} for a in self.order],
        }


@dataclass(frozen=True, eq=False)
class Series:
    key: SeriesKey
    unit: str
    timestamps: np.ndarray  # int64 epoch seconds, ascending
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.values)

    def to_metric_series(self) -> MetricSeries:
        """The detection core's contract."""
        return MetricSeries(self.key.tenant, self.key.cluster, self.key.node, self.key.metric,
                            pd.to_datetime(self.timestamps, unit="s", utc=True), self.values,
                            {"unit": self.unit, "source": "simulator"})


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def spec_dict(spec: FleetSpec) -> dict[str, Any]:
    """The spec as JSON-able data (what the written ground truth records).
    ``min_anomalies_per_kind`` and ``propagation`` only when used: files of fleets
    without them stay as they were."""
    data = asdict(spec)
    data["start"] = iso(spec.start)
    data["metrics"] = list(spec.metrics)
    for option in ("min_anomalies_per_kind", "propagation"):
        if not data[option]:
            del data[option]
    return data
