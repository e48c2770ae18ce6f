"""Fleet simulator: a deterministic, labelled fleet of node metrics (no Django).

A fleet is tenants -> clusters -> nodes -> metrics, sampled every ``step_seconds``
from ``start`` for ``days``. Every value is a pure function of ``(spec, series key,
point index)``: noise is drawn in fixed blocks of points from random streams keyed by
``(seed, entity, purpose, block)``, so any series, or any time range of it, can be
regenerated alone and equals the fleet's copy, and nothing has to be held in memory.

Model (per node)::

    load(t) = (1 - 0.35 w(t)) * daily(t; peak, amp) - W w(t) + ar_noise(t)     unitless
    z_m(t)  = level_m + gain_m * load(t) + own_noise_m(t) [+ shared net noise]  latent
    value   = scale * sigmoid(z)  for cpu_usage (%) and memory_used (bytes, capacity)
            = exp(z)              for disk_io, network_in/out, latency_ms

``daily`` is a cosine with a second harmonic peaking near 14:00 UTC, ``w(t)`` a smooth
weekend indicator (weekly seasonality); every node jitters level, amplitude and
phase. cpu_usage and latency_ms share the node load (they move together);
network_in and network_out share the load and a node network noise. The transforms
keep values plausible: cpu strictly inside (0, 100), memory below the node's
capacity, nothing negative.

Anomalies are added in the latent space (so they never leave the plausible range):

==================  =========  ===============================================
kind                truth type shape
==================  =========  ===============================================
spike / dip         spike      1-5 points far above / below
trend               trend      linear ramp over 2-12 h, back to normal after
level_shift         trend      a step lasting 1-12 h, back to normal after
seasonal_break      seasonal   1-2 whole days whose daily peak moves by 6-12 h;
                               each day's mean value stays the same (a small
                               per-day latent offset compensates the transform)
cluster incident    per shape  one shape (spike, level_shift or trend) on one or
                               two related metrics of >= 3 nodes of a cluster
                               at once (onsets jittered by a few minutes)
==================  =========  ===============================================

``anomaly_rate`` is the expected number of per-series anomalies per series per day
and ``incident_rate`` the expected number of incidents per cluster per day, both
counted over the eligible period: nothing starts in the first ``clean_days`` (the
clean history detectors need). Anomalies on one series never overlap and are at
least ``MIN_GAP_SECONDS`` apart. Ground truth spans are inclusive: ``start`` is the
first and ``end`` the last anomalous sample.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

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
#: NAB windows: the exact span widened on each side by max(NAB_MIN_MARGIN_SECONDS,
#: NAB_MARGIN_FRACTION * span duration), clipped to the series and merged when two touch.
NAB_MIN_MARGIN_SECONDS = HOUR
NAB_MARGIN_FRACTION = 0.5
NAB_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
NAB_WINDOW_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_BLOCK = 1024  # points per noise block
_NEG_OFFSET = 1 << 40  # keeps block indices (which may be negative) non-negative for SeedSequence


# --------------------------------------------------------------------------- spec

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
    tenant_prefix: str = "tenant"
    cluster_prefix: str = "cluster"
    node_prefix: str = "node"

    def __post_init__(self) -> None:
        for name in ("tenants", "clusters_per_tenant", "nodes_per_cluster", "step_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be a non-negative integer, got {self.seed!r}")
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
        data["start"] = _iso(self.start)
        data["end"] = _iso(self.end)
        return data


@dataclass(frozen=True, eq=False)
class Series:
    key: SeriesKey
    unit: str
    timestamps: np.ndarray  # int64 epoch seconds, ascending
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.values)

    def datetimes(self):
        import pandas as pd

        return pd.to_datetime(self.timestamps, unit="s", utc=True)

    def to_metric_series(self):
        """The detection core's contract (analytics.core.contracts.MetricSeries)."""
        from analytics.core.contracts import MetricSeries

        return MetricSeries(self.key.tenant, self.key.cluster, self.key.node, self.key.metric,
                            self.datetimes(), self.values, {"unit": self.unit, "source": "simulator"})


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- randomness

def _words(*parts: object) -> list[int]:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def _rng(seed: int, *parts: object) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *_words(*parts)]))


@lru_cache(maxsize=64)
def _kernel(tau: float, step: int) -> np.ndarray:
    """Unit-variance exponential (AR(1)-like) smoothing kernel for time constant tau."""
    phi = math.exp(-step / tau) if tau > 0 else 0.0
    length = 1 if phi < 1e-3 else min(4096, int(math.ceil(math.log(1e-3) / math.log(phi))) + 1)
    k = phi ** np.arange(length)
    return k / np.sqrt((k**2).sum())


def _smooth_noise(seed: int, entity: tuple, purpose: str, tau: float, step: int, i0: int, i1: int) -> np.ndarray:
    """Unit-variance correlated noise for point indices [i0, i1): same values whatever the range."""
    kernel = _kernel(tau, step)
    lo = i0 - len(kernel) + 1
    first, last = lo // _BLOCK, (i1 - 1) // _BLOCK
    blocks = [_rng(seed, *entity, purpose, b + _NEG_OFFSET).standard_normal(_BLOCK) for b in range(first, last + 1)]
    white = np.concatenate(blocks)[lo - first * _BLOCK : i1 - first * _BLOCK]
    return np.convolve(white, kernel, mode="valid")


# --------------------------------------------------------------------------- model

@dataclass(frozen=True)
class _NodeParams:
    amp: float
    peak_hour: float
    harmonic: float
    harmonic_hour: float
    weekend_drop: float
    noise: float
    capacity: float  # memory bytes


@dataclass(frozen=True)
class _SeriesParams:
    level: float
    gain: float
    noise: float
    sigma: float  # approximate latent std of the clean series (anomaly magnitude unit)


def _daily(t: np.ndarray, node: _NodeParams, shift_hours: float = 0.0) -> np.ndarray:
    hour = (t % DAY) / HOUR - shift_hours
    return node.amp * (np.cos(2 * np.pi * (hour - node.peak_hour) / 24)
                       + node.harmonic * np.cos(4 * np.pi * (hour - node.harmonic_hour) / 24))


def _weekend(t: np.ndarray) -> np.ndarray:
    """Smooth 0..1 weekend indicator (Saturday 00:00 to Monday 00:00 UTC, 3 h edges)."""
    week_s = (t - 4 * DAY) % WEEK  # seconds since Monday 00:00 (1970-01-05 was a Monday)
    sat, mon = 5 * DAY, 7 * DAY
    edge = 3 * HOUR
    # the Monday edge appears twice: at the end of the week and (wrapped) at its start
    return 0.5 * (np.tanh((week_s - sat) / edge) - np.tanh((week_s - mon) / edge)) + 0.5 * (1 - np.tanh(week_s / edge))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------------- fleet

def _memo(method):
    """Per-instance memo of a method of hashable arguments (no cache shared between fleets)."""
    name = f"_memo_{method.__name__}"

    def wrapper(self, *args):
        cache = self.__dict__.setdefault(name, {})
        try:
            return cache[args]
        except KeyError:
            value = cache[args] = method(self, *args)
            return value

    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


class Fleet:
    """A generated fleet: series on demand plus their ground truth."""

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self.step = spec.step_seconds
        self.n_points = spec.n_points
        self._clean_index = int(math.ceil(spec.clean_days * DAY / self.step))

    # ---- names
    @cached_property
    def tenants(self) -> list[str]:
        return [f"{self.spec.tenant_prefix}-{i + 1}" for i in range(self.spec.tenants)]

    def clusters(self, tenant: str) -> list[str]:
        return [f"{self.spec.cluster_prefix}-{i + 1}" for i in range(self.spec.clusters_per_tenant)]

    def nodes(self, tenant: str, cluster: str) -> list[str]:
        width = max(2, len(str(self.spec.nodes_per_cluster)))
        return [f"{self.spec.node_prefix}-{i + 1:0{width}d}" for i in range(self.spec.nodes_per_cluster)]

    def keys(self, tenant: str | None = None) -> list[SeriesKey]:
        return [
            SeriesKey(t, c, n, m)
            for t in self.tenants if tenant is None or t == tenant
            for c in self.clusters(t)
            for n in self.nodes(t, c)
            for m in self.spec.metrics
        ]

    def __len__(self) -> int:
        return self.spec.tenants * self.spec.clusters_per_tenant * self.spec.nodes_per_cluster * len(self.spec.metrics)

    @property
    def total_points(self) -> int:
        return len(self) * self.n_points

    # ---- time
    @cached_property
    def timestamps(self) -> np.ndarray:
        return self._times(0, self.n_points)

    def _times(self, i0: int, i1: int) -> np.ndarray:
        return self.spec.start_epoch + np.arange(i0, i1, dtype=np.int64) * self.step

    def index_range(self, t0: float, t1: float) -> tuple[int, int]:
        """Point indices whose timestamps fall in [t0, t1) (epoch seconds), clipped to the fleet."""
        def index(t: float) -> int:
            if t == math.inf:
                return self.n_points
            if t == -math.inf:
                return 0
            return max(0, min(self.n_points, math.ceil((t - self.spec.start_epoch) / self.step)))

        return index(t0), max(index(t0), index(t1))

    def when(self, index: int) -> datetime:
        return datetime.fromtimestamp(self.spec.start_epoch + index * self.step, UTC)

    # ---- parameters
    @_memo
    def _node(self, node_key: tuple[str, str, str]) -> _NodeParams:
        rng = _rng(self.spec.seed, *node_key, "node")
        return _NodeParams(
            amp=rng.uniform(0.8, 1.2),
            peak_hour=14 + rng.uniform(-1.5, 1.5),
            harmonic=rng.uniform(0.15, 0.35),
            harmonic_hour=rng.uniform(9, 12),
            weekend_drop=rng.uniform(0.3, 0.7),
            noise=rng.uniform(0.2, 0.3),
            capacity=float(rng.choice([8, 16, 32, 64]) * GIB),
        )

    @_memo
    def _params(self, key: SeriesKey) -> _SeriesParams:
        model = METRIC_MODELS[key.metric]
        node = self._node(key.node_key)
        rng = _rng(self.spec.seed, *key.node_key, key.metric, "params")
        if key.metric == "network_out":  # follows network_in closely
            base = _rng(self.spec.seed, *key.node_key, "network_in", "params")
            in_level = base.uniform(*map(math.log, METRIC_MODELS["network_in"].level))  # network_in's own draws
            in_gain = base.uniform(*METRIC_MODELS["network_in"].gain)
            level = in_level + math.log(rng.uniform(0.3, 1.2))
            gain = in_gain * rng.uniform(0.9, 1.1)
        elif model.transform == "logit":
            frac = rng.uniform(*model.level)
            level, gain = math.log(frac / (1 - frac)), rng.uniform(*model.gain)
        else:
            level, gain = rng.uniform(*map(math.log, model.level)), rng.uniform(*model.gain)
        noise = model.noise * rng.uniform(0.8, 1.2)
        net = 0.15 if key.metric in ("network_in", "network_out") else 0.0
        load_var = node.amp**2 * (0.5 + 0.5 * node.harmonic**2) + node.noise**2
        sigma = math.sqrt(gain**2 * load_var + noise**2 + net**2)
        return _SeriesParams(level, gain, noise, sigma)

    # ---- anomaly schedule
    @_memo
    def _incidents(self, tenant: str, cluster: str) -> tuple[Anomaly, ...]:
        spec = self.spec
        eligible_days = max(0.0, (self.n_points - self._clean_index) * self.step / DAY)
        if spec.incident_rate <= 0 or eligible_days <= 0:
            return ()
        rng = _rng(spec.seed, tenant, cluster, "incidents")
        count = int(rng.poisson(spec.incident_rate * eligible_days))
        nodes = self.nodes(tenant, cluster)
        scenarios = [("cpu_usage", "latency_ms"), ("network_in", "network_out"), ("latency_ms",), ("disk_io",)]
        out: list[Anomaly] = []
        taken: list[tuple[int, int]] = []
        for number in range(count):
            kind = str(rng.choice(["spike", "level_shift", "trend"], p=[0.4, 0.35, 0.25]))
            length = self._length(rng, kind)
            if kind == "spike":
                length = max(length, 3)
            # onsets differ by less than the length, so every hit series is anomalous at one common moment
            jitter = min(length - 1, max(1, int(15 * 60 // self.step)))
            start = self._place(rng, length + jitter, taken)
            scenario = scenarios[int(rng.integers(len(scenarios)))]
            metrics = [m for m in scenario if m in spec.metrics] or [spec.metrics[int(rng.integers(len(spec.metrics)))]]
            hit = max(min(3, len(nodes)), int(math.ceil(len(nodes) * rng.uniform(0.5, 1.0))))
            chosen = sorted(rng.choice(len(nodes), size=hit, replace=False).tolist())
            factor = rng.uniform(4, 7) if kind == "spike" else rng.uniform(2.5, 4)
            offsets = rng.integers(0, jitter + 1, size=hit)
            if start is None:
                continue
            taken.append((start, start + length + jitter - 1))
            incident_id = f"{tenant}/{cluster}/incident-{number + 1}"
            for node_pos, offset in zip(chosen, offsets, strict=True):
                for metric in metrics:
                    s = start + int(offset)
                    out.append(self._anomaly(SeriesKey(tenant, cluster, nodes[node_pos], metric), kind, s, s + length - 1,
                                             factor, incident_id))
        return tuple(out)

    def _length(self, rng: np.random.Generator, kind: str) -> int:
        step = self.step
        if kind in ("spike", "dip"):
            return int(rng.integers(1, 6))
        if kind == "trend":
            return max(2, int(rng.uniform(2, 12) * HOUR // step))
        if kind == "level_shift":
            return max(2, int(rng.uniform(1, 12) * HOUR // step))
        return max(1, int(int(rng.integers(1, 3)) * DAY // step))  # seasonal_break: whole days

    def _place(self, rng: np.random.Generator, length: int, taken: Sequence[tuple[int, int]]) -> int | None:
        lo, hi = self._clean_index, self.n_points - length  # start in [lo, hi]
        gap = int(math.ceil(MIN_GAP_SECONDS / self.step))
        start = None
        for _ in range(30):  # always the same draws for the same state: deterministic
            if hi < lo:
                break
            candidate = int(rng.integers(lo, hi + 1))
            end = candidate + length - 1
            if all(end + gap < a or candidate > b + gap for a, b in taken):
                start = candidate
                break
        return start

    def _anomaly(self, key: SeriesKey, kind: str, start: int, end: int, factor: float, incident: str | None,
                 sign: float = 1.0) -> Anomaly:
        if kind == "seasonal_break":
            magnitude = factor  # hours
        else:
            magnitude = sign * factor * self._params(key).sigma
            if kind == "dip":
                magnitude = -abs(magnitude)
        return Anomaly(key.tenant, key.cluster, key.node, key.metric, KIND_TYPE[kind], kind,
                       self.when(start), self.when(end), start, end, float(magnitude), incident)

    @_memo
    def anomalies_for(self, key: SeriesKey) -> tuple[Anomaly, ...]:
        """Ground truth of one series, ordered by start (computed from the spec alone)."""
        incidents = tuple(a for a in self._incidents(key.tenant, key.cluster) if a.key == key)
        spec = self.spec
        eligible_days = max(0.0, (self.n_points - self._clean_index) * self.step / DAY)
        own: list[Anomaly] = []
        if spec.anomaly_rate > 0 and eligible_days > 0:
            rng = _rng(spec.seed, key.tenant, key.cluster, key.node, key.metric, "anomalies")
            count = int(rng.poisson(spec.anomaly_rate * eligible_days))
            # the whole span of every incident of the cluster is kept free
            cluster_spans = [(a.start_index, a.end_index) for a in self._incidents(key.tenant, key.cluster)]
            taken = list(cluster_spans)
            kinds, weights = list(KIND_WEIGHTS), np.array(list(KIND_WEIGHTS.values()))
            for _ in range(count):
                kind = str(rng.choice(kinds, p=weights / weights.sum()))
                length = self._length(rng, kind)
                start = self._place(rng, length, taken)
                if kind == "spike":
                    factor, sign = rng.uniform(4, 7), 1.0
                elif kind == "dip":
                    factor, sign = rng.uniform(4, 7), -1.0
                elif kind == "seasonal_break":
                    factor, sign = float(rng.choice([-1, 1]) * rng.uniform(6, 12)), 1.0
                else:
                    factor = rng.uniform(3, 5) if kind == "trend" else rng.uniform(2, 3.5)
                    sign = 1.0 if key.metric == "memory_used" else float(rng.choice([-1.0, 1.0], p=[0.3, 0.7]))
                if start is None:
                    continue
                taken.append((start, start + length - 1))
                own.append(self._anomaly(key, kind, start, start + length - 1, factor, None, sign))
        return tuple(sorted(incidents + tuple(own), key=lambda a: a.start_index))

    @cached_property
    def ground_truth(self) -> list[Anomaly]:
        return [a for key in self.keys() for a in self.anomalies_for(key)]

    # ---- values
    def _node_state(self, node_key: tuple[str, str, str], i0: int, i1: int) -> dict[str, np.ndarray]:
        node = self._node(node_key)
        t = self._times(i0, i1).astype(np.float64)
        weekend = _weekend(t)
        seasonal_scale = 1 - 0.35 * weekend
        noise = node.noise * _smooth_noise(self.spec.seed, node_key, "load", HOUR, self.step, i0, i1)
        load = seasonal_scale * _daily(t, node) - node.weekend_drop * weekend + noise
        state = {"t": t, "load": load, "seasonal_scale": seasonal_scale}
        if "network_in" in self.spec.metrics or "network_out" in self.spec.metrics:
            state["net"] = 0.15 * _smooth_noise(self.spec.seed, node_key, "net", 10 * 60, self.step, i0, i1)
        return state

    def _latent(self, key: SeriesKey, state: dict[str, np.ndarray], i0: int, i1: int) -> np.ndarray:
        """The clean latent series z (logit or log units) for [i0, i1)."""
        model = METRIC_MODELS[key.metric]
        params = self._params(key)
        own = params.noise * _smooth_noise(self.spec.seed, (*key.node_key, key.metric), "own", model.noise_tau, self.step, i0, i1)
        z = params.level + params.gain * state["load"] + own
        if "net" in state and key.metric in ("network_in", "network_out"):
            z = z + state["net"]
        return z

    def _transform(self, key: SeriesKey, z: np.ndarray, derivative: bool = False) -> np.ndarray:
        if METRIC_MODELS[key.metric].transform == "logit":
            scale = 100.0 if key.metric == "cpu_usage" else self._node(key.node_key).capacity
            sig = _sigmoid(z)
            return scale * sig * (1 - sig) if derivative else scale * sig
        return np.exp(z)

    def _break_shape(self, key: SeriesKey, a: Anomaly, state: dict[str, np.ndarray], sl: slice) -> np.ndarray:
        """Latent change of a seasonal break: the daily curve moved by ``a.magnitude`` hours."""
        node, params = self._node(key.node_key), self._params(key)
        t = state["t"][sl]
        return params.gain * state["seasonal_scale"][sl] * (_daily(t, node, a.magnitude) - _daily(t, node))

    @_memo
    def _break_offsets(self, key: SeriesKey, a: Anomaly) -> np.ndarray:
        """Per day of a seasonal break, the latent offset keeping that day's mean value unchanged."""
        i0, i1 = a.start_index, a.end_index + 1
        state = self._node_state(key.node_key, i0, i1)
        z = self._latent(key, state, i0, i1)
        moved = z + self._break_shape(key, a, state, slice(0, i1 - i0))
        per_day = max(1, DAY // self.step)
        offsets = []
        for d0 in range(0, i1 - i0, per_day):
            target = self._transform(key, z[d0 : d0 + per_day]).mean()
            day = moved[d0 : d0 + per_day]
            c = 0.0
            for _ in range(8):  # Newton on mean(f(day + c)) = target
                gap = self._transform(key, day + c).mean() - target
                c -= gap / self._transform(key, day + c, derivative=True).mean()
            offsets.append(c)
        return np.repeat(np.asarray(offsets), per_day)[: i1 - i0]

    def _values(self, key: SeriesKey, state: dict[str, np.ndarray], i0: int, i1: int, clean: bool) -> np.ndarray:
        z = self._latent(key, state, i0, i1)
        if not clean:
            for a in self.anomalies_for(key):
                lo, hi = max(a.start_index, i0), min(a.end_index + 1, i1)
                if lo >= hi:
                    continue
                sl = slice(lo - i0, hi - i0)
                if a.kind in ("spike", "dip", "level_shift"):
                    z[sl] += a.magnitude
                elif a.kind == "trend":
                    n = a.end_index - a.start_index + 1
                    z[sl] += a.magnitude * (np.arange(lo, hi) - a.start_index + 1) / n
                elif a.kind == "seasonal_break":
                    offsets = self._break_offsets(key, a)[lo - a.start_index : hi - a.start_index]
                    z[sl] += self._break_shape(key, a, state, sl) + offsets
        return np.round(self._transform(key, z), METRIC_MODELS[key.metric].decimals)

    def values(self, key: SeriesKey, i0: int = 0, i1: int | None = None, *, clean: bool = False) -> np.ndarray:
        """Values of one series for point indices [i0, i1) (clean=True: without anomalies)."""
        i1 = self.n_points if i1 is None else i1
        if not 0 <= i0 <= i1 <= self.n_points:
            raise ValueError(f"index range [{i0}, {i1}) outside [0, {self.n_points})")
        if i0 == i1:
            return np.empty(0)
        return self._values(key, self._node_state(key.node_key, i0, i1), i0, i1, clean)

    def series(self, key: SeriesKey, i0: int = 0, i1: int | None = None, *, clean: bool = False) -> Series:
        """One series (regenerated alone; equal to the fleet's copy)."""
        i1 = self.n_points if i1 is None else i1
        return Series(key, METRIC_MODELS[key.metric].unit, self._times(i0, i1), self.values(key, i0, i1, clean=clean))

    def iter_series(self, i0: int = 0, i1: int | None = None, *, tenant: str | None = None,
                    clean: bool = False) -> Iterator[Series]:
        """Every series (optionally one tenant's) for [i0, i1), one at a time; node state computed once per node."""
        i1 = self.n_points if i1 is None else i1
        if not 0 <= i0 <= i1 <= self.n_points:
            raise ValueError(f"index range [{i0}, {i1}) outside [0, {self.n_points})")
        if i0 == i1:
            return
        times = self._times(i0, i1)
        state_key, state = None, None
        for key in self.keys(tenant):
            if key.node_key != state_key:
                state_key, state = key.node_key, self._node_state(key.node_key, i0, i1)
            yield Series(key, METRIC_MODELS[key.metric].unit, times, self._values(key, state, i0, i1, clean))

    __iter__ = iter_series

    def window(self, t0: float, t1: float, *, tenant: str | None = None) -> Iterator[Series]:
        """Live mode: the points of every series with timestamps in [t0, t1) (epoch seconds)."""
        i0, i1 = self.index_range(t0, t1)
        return self.iter_series(i0, i1, tenant=tenant)


def generate(spec: FleetSpec) -> Fleet:
    return Fleet(spec)


def aligned_start(end: datetime | float, days: float, step_seconds: int = 60) -> datetime:
    """The start of ``days`` of points ending at ``end`` rounded down to the step (the last point)."""
    end_s = end.timestamp() if isinstance(end, datetime) else float(end)
    last = int(end_s // step_seconds) * step_seconds
    n = int(math.floor(days * DAY / step_seconds + 1e-9))
    return datetime.fromtimestamp(last - (n - 1) * step_seconds, UTC)


# --------------------------------------------------------------------------- NAB layout

def nab_dir(fleet: Fleet, key: SeriesKey) -> str:
    """Directory under data/: the cluster, prefixed by the tenant when the fleet has several."""
    return key.cluster if fleet.spec.tenants == 1 else f"{key.tenant}__{key.cluster}"


def nab_relpath(fleet: Fleet, key: SeriesKey) -> str:
    return f"{nab_dir(fleet, key)}/{key.node}__{key.metric}.csv"


def nab_margin_seconds(anomaly: Anomaly, step_seconds: int = 1) -> int:
    """max(1 h, half the span's duration), rounded up to whole steps."""
    duration = (anomaly.end - anomaly.start).total_seconds()
    margin = max(NAB_MIN_MARGIN_SECONDS, NAB_MARGIN_FRACTION * duration)
    return int(math.ceil(margin / step_seconds) * step_seconds)


def nab_windows(fleet: Fleet, anomalies: Iterable[Anomaly]) -> list[tuple[datetime, datetime]]:
    """NAB windows of one series: each span widened by :func:`nab_margin_seconds`, clipped, merged."""
    first, last = fleet.when(0), fleet.when(fleet.n_points - 1)
    spans = sorted(
        (max(first, a.start - timedelta(seconds=nab_margin_seconds(a, fleet.step))),
         min(last, a.end + timedelta(seconds=nab_margin_seconds(a, fleet.step))))
        for a in anomalies
    )
    merged: list[list[datetime]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def write_nab(fleet: Fleet, out_dir: str | os.PathLike, *, progress: Callable[[int], Any] | None = None) -> Path:
    """Write the fleet in NAB layout::

        out_dir/data/<cluster>/<node>__<metric>.csv   timestamp,value ("YYYY-MM-DD HH:MM:SS", UTC)
        out_dir/labels/combined_windows.json          {"<relpath>": [[start, end], ...]} (widened windows)
        out_dir/labels/ground_truth.json              {"<relpath>": [{type, kind, start, end, window, ...}]}

    ground_truth.json keeps the exact spans and their types (NAB has none) plus the
    window each belongs to; ``progress`` is called with the points written per file.
    """
    root = Path(out_dir)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    windows: dict[str, list[list[str]]] = {}
    truth: dict[str, list[dict[str, Any]]] = {}
    stamps = None
    for series in fleet.iter_series():
        rel = nab_relpath(fleet, series.key)
        path = root / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if stamps is None:
            stamps = np.array([datetime.fromtimestamp(int(t), UTC).strftime(NAB_TIME_FORMAT) for t in series.timestamps])
        decimals = METRIC_MODELS[series.key.metric].decimals
        fmt = f"{{:.{decimals}f}}"
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("timestamp,value\n")
            handle.writelines(f"{ts},{fmt.format(v)}\n" for ts, v in zip(stamps, series.values, strict=True))
        anomalies = fleet.anomalies_for(series.key)
        file_windows = nab_windows(fleet, anomalies)
        windows[rel] = [[s.strftime(NAB_WINDOW_FORMAT), e.strftime(NAB_WINDOW_FORMAT)] for s, e in file_windows]
        entries = []
        for a in anomalies:
            window = next(w for w in file_windows if w[0] <= a.start and a.end <= w[1])
            entries.append({
                "type": a.type, "kind": a.kind,
                "start": a.start.strftime(NAB_WINDOW_FORMAT), "end": a.end.strftime(NAB_WINDOW_FORMAT),
                "window": [window[0].strftime(NAB_WINDOW_FORMAT), window[1].strftime(NAB_WINDOW_FORMAT)],
                "tenant": a.tenant, "cluster": a.cluster, "node": a.node, "metric": a.metric,
                "magnitude": a.magnitude, "incident": a.incident,
            })
        truth[rel] = entries
        if progress:
            progress(len(series))
    with open(root / "labels" / "combined_windows.json", "w", encoding="utf-8") as handle:
        json.dump(windows, handle, indent=4, sort_keys=True)
    meta = {"spec": spec_dict(fleet.spec), "window_margin": {"min_seconds": NAB_MIN_MARGIN_SECONDS,
                                                              "fraction_of_duration": NAB_MARGIN_FRACTION}}
    with open(root / "labels" / "ground_truth.json", "w", encoding="utf-8") as handle:
        json.dump({"_meta": meta, "files": truth}, handle, indent=2, sort_keys=True)
    return root


def spec_dict(spec: FleetSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["start"] = _iso(spec.start)
    data["metrics"] = list(spec.metrics)
    return data


def write_truth(fleet: Fleet, path: str | os.PathLike) -> None:
    """Ground truth as JSON: {"spec": ..., "anomalies": [{tenant, cluster, node, metric, type, kind, start, end, ...}]}."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"spec": spec_dict(fleet.spec), "anomalies": [a.as_dict() for a in fleet.ground_truth]}, handle, indent=2)


# --------------------------------------------------------------------------- sending

Batch = dict[str, list[dict[str, Any]]]
Sender = Callable[[Batch], dict[str, Any]]


def _json_number(value: float, decimals: int) -> float | int:
    return int(value) if decimals == 0 else float(value)


def batches(fleet: Fleet, i0: int = 0, i1: int | None = None, *, tenant: str | None = None,
            batch_points: int = 10_000, chunk_points: int | None = None) -> Iterator[Batch]:
    """Ingestion bodies (compact "series" form, epoch-second timestamps) for [i0, i1).

    Time-major: the range is cut into chunks of ``chunk_points`` per series (default one
    day) and each chunk of every series is sent before the next, so the oldest points
    go first (the server refuses points older than the hot retention). Each body holds
    at most ``batch_points`` points.
    """
    i1 = fleet.n_points if i1 is None else i1
    if batch_points < 1:
        raise ValueError("batch_points: must be positive")
    chunk = chunk_points or max(1, DAY // fleet.step)
    entries: list[dict[str, Any]] = []
    size = 0
    for c0 in range(i0, i1, chunk):
        c1 = min(i1, c0 + chunk)
        for series in fleet.iter_series(c0, c1, tenant=tenant):
            decimals = METRIC_MODELS[series.key.metric].decimals
            pairs = [[int(t), _json_number(v, decimals)] for t, v in zip(series.timestamps.tolist(), series.values.tolist(), strict=True)]
            while pairs:
                room = batch_points - size
                part, pairs = pairs[:room], pairs[room:]
                entries.append({"cluster": series.key.cluster, "node": series.key.node, "metric": series.key.metric,
                                "unit": series.unit, "points": part})
                size += len(part)
                if size >= batch_points:
                    yield {"series": entries}
                    entries, size = [], 0
    if entries:
        yield {"series": entries}


def batch_size(batch: Batch) -> int:
    return sum(len(s["points"]) for s in batch.get("series", [])) + len(batch.get("points", []))


@dataclass
class SendReport:
    batches: int = 0
    points: int = 0
    accepted: int = 0
    new_series: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def add(self, batch: Batch, answer: dict[str, Any]) -> None:
        self.batches += 1
        self.points += batch_size(batch)
        self.accepted += int(answer.get("accepted", 0))
        self.new_series += int(answer.get("new_series", 0))


def _single_tenant(fleet: Fleet, tenant: str | None) -> str:
    if tenant is None:
        if fleet.spec.tenants != 1:
            raise ValueError("tenant: required when the fleet has several tenants (an API key is one tenant)")
        return fleet.tenants[0]
    if tenant not in fleet.tenants:
        raise ValueError(f"tenant: {tenant!r} is not in the fleet")
    return tenant


def send_history(fleet: Fleet, sender: Sender, *, tenant: str | None = None, t0: float | None = None,
                 t1: float | None = None, batch_points: int = 10_000,
                 progress: Callable[[int], Any] | None = None) -> SendReport:
    """Send the points of one tenant with timestamps in [t0, t1) (default: the whole fleet).

    ``sender`` takes one batch body (a dict) and returns the decoded answer
    (``{"accepted": N, "new_series": M}``); it raises to stop. ``progress`` is called
    with the point count of each batch sent.
    """
    tenant = _single_tenant(fleet, tenant)
    i0, i1 = fleet.index_range(fleet.spec.start_epoch if t0 is None else t0, math.inf if t1 is None else t1)
    report = SendReport()
    for batch in batches(fleet, i0, i1, tenant=tenant, batch_points=batch_points):
        answer = sender(batch)
        report.add(batch, answer)
        if progress:
            progress(batch_size(batch))
    return report


def send_live(fleet: Fleet, sender: Sender, *, sim_start: float, duration: float, speed: float = 1.0,
              tenant: str | None = None, tick_seconds: float = 1.0, batch_points: int = 10_000,
              clock: Callable[[], float] | None = None, sleep: Callable[[float], Any] | None = None,
              progress: Callable[[int], Any] | None = None) -> SendReport:
    """Send points as simulated time passes: ``speed`` simulated seconds per wall-clock second.

    Simulated time starts at ``sim_start`` (epoch seconds) and runs for ``duration``
    wall-clock seconds, i.e. over [sim_start, sim_start + duration * speed). Every
    tick (``tick_seconds`` of wall clock) sends the points that became due: those
    whose timestamp is at or before the current simulated time. With ``speed == 1``
    and ``sim_start`` = now, each point is sent as its timestamp arrives.
    """
    import time

    clock = clock or time.time
    sleep = sleep or time.sleep
    tenant = _single_tenant(fleet, tenant)
    if speed <= 0 or duration < 0:
        raise ValueError("speed: must be positive; duration: must not be negative")
    report = SendReport()
    sim_end = sim_start + duration * speed
    next_index, last_index = fleet.index_range(sim_start, sim_end)  # points to send: [next_index, last_index)
    wall0 = clock()
    while next_index < last_index:
        sim_now = sim_start + (clock() - wall0) * speed
        due = min(last_index, max(0, math.floor((sim_now - fleet.spec.start_epoch) / fleet.step) + 1))
        if due > next_index:
            for batch in batches(fleet, next_index, due, tenant=tenant, batch_points=batch_points):
                report.add(batch, sender(batch))
                if progress:
                    progress(batch_size(batch))
            next_index = due
        if next_index < last_index:
            sleep(tick_seconds)
    return report


class IngestError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        self.status, self.body = status, body
        super().__init__(f"HTTP {status}: {body}")


class HttpSender:
    """POST batches to /api/v1/metrics over one persistent HTTP(S) connection (stdlib only).

    429 and 503 (and dropped connections) are retried ``retries`` times with
    exponential backoff, honouring ``Retry-After``; any other non-2xx answer raises
    :class:`IngestError` carrying the body.
    """

    def __init__(self, url: str, api_key: str, *, path: str = "/api/v1/metrics", retries: int = 5,
                 backoff: float = 0.5, timeout: float = 120.0, sleep: Callable[[float], Any] | None = None) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: expected http(s)://host[:port], got {url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.path = parts.path.rstrip("/") + path
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                        "Accept": "application/json", "Connection": "keep-alive"}
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._sleep = sleep
        self._conn = None

    def _connection(self):
        import http.client

        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __call__(self, batch: Batch) -> dict[str, Any]:
        import http.client
        import time

        sleep = self._sleep or time.sleep
        body = json.dumps(batch, separators=(",", ":")).encode()
        for attempt in range(self.retries + 1):
            delay = self.backoff * 2**attempt
            try:
                conn = self._connection()
                conn.request("POST", self.path, body=body, headers=self.headers)
                response = conn.getresponse()
                status, text = response.status, response.read().decode("utf-8", "replace")
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
            except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                self.close()
                if attempt == self.retries:
                    raise IngestError(0, f"connection failed: {exc}") from None
                sleep(delay)
                continue
            if 200 <= status < 300:
                return json.loads(text)
            if status in (429, 503) and attempt < self.retries:
                retry_after = response.getheader("Retry-After")
                try:
                    delay = max(delay, float(retry_after)) if retry_after else delay
                except ValueError:
                    pass
                sleep(delay)
                continue
            raise IngestError(status, text)
        raise AssertionError("unreachable")
