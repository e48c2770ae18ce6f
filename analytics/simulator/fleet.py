"""The fleet model: a deterministic, labelled fleet of node metrics generated on demand.

A fleet is tenants -> clusters -> nodes -> metrics, sampled every ``step_seconds``
from ``start`` for ``days``. Every value is a pure function of ``(spec, series key,
point index)``: every draw comes from a keyed random stream (``randomness``), so any
series, or any time range of it, can be regenerated alone and equals the fleet's copy,
and nothing has to be held in memory.

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

With ``propagation`` (opt-in; off, a seed gives exactly what it gave before) every
cluster incident propagates instead: it starts on one origin series (a random node and
metric), then 0-2 other metrics of the origin node and 1-2 metrics on each of 1 to
all other nodes follow, each starting 5-30 minutes after the origin (a keyed stream
of its own, ``"propagation"``). The shape is a level shift (1-6 h), a spike (3-5
points) or a ramp (30 min - 3 h: a cascade builds within minutes, not over half a
day); every series draws its own size from the same range, so the origin's deviation
is often not the largest. ``Fleet.propagations`` names the origin and the order.

``anomaly_rate`` is the expected number of per-series anomalies per series per day
and ``incident_rate`` the expected number of incidents per cluster per day, both
counted over the eligible period: nothing starts in the first ``clean_days`` (the
clean history detectors need). Anomalies on one series never overlap and are at
least ``MIN_GAP_SECONDS`` apart. Ground truth spans are inclusive: ``start`` is the
first and ``end`` the last anomalous sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np

from analytics.simulator.randomness import keyed_rng, smooth_noise
from analytics.simulator.spec import (
    DAY,
    GIB,
    HOUR,
    KIND_TYPE,
    KIND_WEIGHTS,
    METRIC_MODELS,
    MIN_GAP_SECONDS,
    WEEK,
    Anomaly,
    FleetSpec,
    Propagation,
    Series,
    SeriesKey,
)

PROPAGATION_KINDS = {"level_shift": 0.45, "spike": 0.25, "trend": 0.3}
PROPAGATION_DELAY_MINUTES = (5, 30)
#: sizes of a propagating incident's anomalies, in sigmas of each series (origin and followers alike)
PROPAGATION_SIZES = {"level_shift": (2.0, 4.0), "spike": (4.0, 7.0), "trend": (2.5, 4.5)}


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
        rng = keyed_rng(self.spec.seed, *node_key, "node")
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
        rng = keyed_rng(self.spec.seed, *key.node_key, key.metric, "params")
        if key.metric == "network_out":  # follows network_in closely
            base = keyed_rng(self.spec.seed, *key.node_key, "network_in", "params")
            low, high = METRIC_MODELS["network_in"].level
            in_level = base.uniform(math.log(low), math.log(high))  # network_in's own draws
            in_gain = base.uniform(*METRIC_MODELS["network_in"].gain)
            level = in_level + math.log(rng.uniform(0.3, 1.2))
            gain = in_gain * rng.uniform(0.9, 1.1)
        elif model.transform == "logit":
            frac = rng.uniform(*model.level)
            level, gain = math.log(frac / (1 - frac)), rng.uniform(*model.gain)
        else:
            level, gain = rng.uniform(math.log(model.level[0]), math.log(model.level[1])), rng.uniform(*model.gain)
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
        if spec.propagation:
            return self._propagating_incidents(tenant, cluster, eligible_days)
        rng = keyed_rng(spec.seed, tenant, cluster, "incidents")
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

    def _propagating_incidents(self, tenant: str, cluster: str, eligible_days: float) -> tuple[Anomaly, ...]:
        """Incidents that start on one series and reach the others 5-30 minutes later."""
        spec, step = self.spec, self.step
        rng = keyed_rng(spec.seed, tenant, cluster, "propagation")
        count = int(rng.poisson(spec.incident_rate * eligible_days))
        nodes, metrics = self.nodes(tenant, cluster), spec.metrics
        min_delay, max_delay = (max(1, round(m * 60 / step)) for m in PROPAGATION_DELAY_MINUTES)
        kinds = list(PROPAGATION_KINDS)
        out: list[Anomaly] = []
        taken: list[tuple[int, int]] = []
        for number in range(count):
            kind = str(rng.choice(kinds, p=list(PROPAGATION_KINDS.values())))
            hours = {"level_shift": (1, 6), "trend": (0.5, 3)}.get(kind)
            length = int(rng.integers(3, 6)) if hours is None else max(2, int(rng.uniform(*hours) * HOUR // step))
            start = self._place(rng, length + max_delay, taken)
            origin_node = int(rng.integers(len(nodes)))
            origin = SeriesKey(tenant, cluster, nodes[origin_node], metrics[int(rng.integers(len(metrics)))])
            same = [m for m in metrics if m != origin.metric]
            n_same = min(len(same), int(rng.integers(0, 3)))
            others = [i for i in range(len(nodes)) if i != origin_node]
            reached = rng.choice(others, size=int(rng.integers(1, len(others) + 1)), replace=False).tolist() if others else []
            n_same = max(n_same, 1 if not reached and same else 0)
            followers = [SeriesKey(tenant, cluster, origin.node, str(m)) for m in rng.choice(same, size=n_same, replace=False)]
            for i in sorted(reached):
                size = min(len(metrics), int(rng.integers(1, 3)))
                followers += [SeriesKey(tenant, cluster, nodes[i], str(m)) for m in rng.choice(metrics, size=size, replace=False)]
            delays = [0, *rng.integers(min_delay, max_delay + 1, size=len(followers)).tolist()]
            sizes = rng.uniform(*PROPAGATION_SIZES[kind], size=len(delays))
            signs = np.where(rng.random(len(delays)) < 0.2, -1.0, 1.0)
            if start is None:
                continue
            taken.append((start, start + length + max_delay - 1))
            incident_id = f"{tenant}/{cluster}/incident-{number + 1}"
            for key, delay, factor, sign in zip([origin, *followers], delays, sizes, signs, strict=True):
                s = start + delay
                down = sign < 0 and key.metric != "memory_used"
                shape = "dip" if down and kind == "spike" else kind
                out.append(self._anomaly(key, shape, s, s + length - 1, float(factor), incident_id, -1.0 if down else 1.0))
        return tuple(out)

    @cached_property
    def propagations(self) -> list[Propagation]:
        """The propagating incidents' truth, by start (empty unless ``spec.propagation``)."""
        if not self.spec.propagation:
            return []
        by_incident: dict[str, list[Anomaly]] = {}
        for tenant in self.tenants:
            for cluster in self.clusters(tenant):
                for a in self._incidents(tenant, cluster):
                    by_incident.setdefault(str(a.incident), []).append(a)
        found = [Propagation(i, tuple(sorted(group, key=lambda a: a.start_index))) for i, group in by_incident.items()]
        return sorted(found, key=lambda p: (p.order[0].start_index, p.incident))

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

    def _strength(self, rng: np.random.Generator, kind: str, metric: str) -> tuple[float, float]:
        """(factor, sign) of a single-series anomaly: sigmas of the series (hours for a seasonal break)."""
        if kind == "spike":
            return rng.uniform(4, 7), 1.0
        if kind == "dip":
            return rng.uniform(4, 7), -1.0
        if kind == "seasonal_break":
            return float(rng.choice([-1, 1]) * rng.uniform(6, 12)), 1.0
        factor = rng.uniform(3, 5) if kind == "trend" else rng.uniform(2, 3.5)
        sign = 1.0 if metric == "memory_used" else float(rng.choice([-1.0, 1.0], p=[0.3, 0.7]))
        return factor, sign

    @_memo
    def _scheduled(self, key: SeriesKey) -> tuple[Anomaly, ...]:
        """The series' share of its cluster's incidents and its own Poisson-drawn anomalies."""
        incidents = tuple(a for a in self._incidents(key.tenant, key.cluster) if a.key == key)
        spec = self.spec
        eligible_days = max(0.0, (self.n_points - self._clean_index) * self.step / DAY)
        own: list[Anomaly] = []
        if spec.anomaly_rate > 0 and eligible_days > 0:
            rng = keyed_rng(spec.seed, key.tenant, key.cluster, key.node, key.metric, "anomalies")
            count = int(rng.poisson(spec.anomaly_rate * eligible_days))
            # the whole span of every incident of the cluster is kept free
            taken = [(a.start_index, a.end_index) for a in self._incidents(key.tenant, key.cluster)]
            kinds, weights = list(KIND_WEIGHTS), np.array(list(KIND_WEIGHTS.values()))
            for _ in range(count):
                kind = str(rng.choice(kinds, p=weights / weights.sum()))
                length = self._length(rng, kind)
                start = self._place(rng, length, taken)
                factor, sign = self._strength(rng, kind, key.metric)
                if start is None:
                    continue
                taken.append((start, start + length - 1))
                own.append(self._anomaly(key, kind, start, start + length - 1, factor, None, sign))
        return incidents + tuple(own)

    @_memo
    def _top_up(self) -> dict[SeriesKey, tuple[Anomaly, ...]]:
        """Extra single-series anomalies until the fleet holds ``min_anomalies_per_kind`` of
        every kind. They come from a stream of their own, placed after the schedule, so a
        fleet without the option (or already holding enough) is unchanged."""
        wanted = self.spec.min_anomalies_per_kind
        if wanted <= 0:
            return {}
        keys = self.keys()
        counts = {kind: 0 for kind in KIND_WEIGHTS}
        for key in keys:
            for a in self._scheduled(key):
                counts[a.kind] += 1
        extra: dict[SeriesKey, list[Anomaly]] = {}
        rng = keyed_rng(self.spec.seed, "top-up")
        for kind in KIND_WEIGHTS:
            for _ in range(max(0, wanted - counts[kind])):
                for _attempt in range(10 * len(keys)):  # a random series with room for it
                    key = keys[int(rng.integers(len(keys)))]
                    taken = [(a.start_index, a.end_index)
                             for a in (*self._incidents(key.tenant, key.cluster), *self._scheduled(key),
                                       *extra.get(key, ()))]
                    length = self._length(rng, kind)
                    start = self._place(rng, length, taken)
                    factor, sign = self._strength(rng, kind, key.metric)
                    if start is not None:
                        extra.setdefault(key, []).append(
                            self._anomaly(key, kind, start, start + length - 1, factor, None, sign))
                        break
                else:
                    raise ValueError(f"min_anomalies_per_kind: no room left for another {kind} in this fleet")
        return {key: tuple(anomalies) for key, anomalies in extra.items()}

    @_memo
    def anomalies_for(self, key: SeriesKey) -> tuple[Anomaly, ...]:
        """Ground truth of one series, ordered by start (computed from the spec alone)."""
        return tuple(sorted(self._scheduled(key) + self._top_up().get(key, ()), key=lambda a: a.start_index))

    def severity(self, anomaly: Anomaly) -> float:
        """How strong an injected anomaly is, the same way for every kind: the largest change
        it makes to the latent series, in sigmas of the clean series (a spike's, dip's or
        level shift's size, a ramp's final height, a seasonal break's widest gap between
        the moved and the usual daily curve)."""
        i0, i1 = anomaly.start_index, anomaly.end_index + 1
        added = self._added(anomaly, self._node_state(anomaly.key.node_key, i0, i1), i0, i0, i1)
        return float(np.max(np.abs(added))) / self._params(anomaly.key).sigma

    @cached_property
    def ground_truth(self) -> list[Anomaly]:
        return [a for key in self.keys() for a in self.anomalies_for(key)]

    # ---- values
    def _node_state(self, node_key: tuple[str, str, str], i0: int, i1: int) -> dict[str, np.ndarray]:
        node = self._node(node_key)
        t = self._times(i0, i1).astype(np.float64)
        weekend = _weekend(t)
        seasonal_scale = 1 - 0.35 * weekend
        noise = node.noise * smooth_noise(self.spec.seed, node_key, "load", HOUR, self.step, i0, i1)
        load = seasonal_scale * _daily(t, node) - node.weekend_drop * weekend + noise
        state = {"t": t, "load": load, "seasonal_scale": seasonal_scale}
        if "network_in" in self.spec.metrics or "network_out" in self.spec.metrics:
            state["net"] = 0.15 * smooth_noise(self.spec.seed, node_key, "net", 10 * 60, self.step, i0, i1)
        return state

    def _latent(self, key: SeriesKey, state: dict[str, np.ndarray], i0: int, i1: int) -> np.ndarray:
        """The clean latent series z (logit or log units) for [i0, i1)."""
        model = METRIC_MODELS[key.metric]
        params = self._params(key)
        own = params.noise * smooth_noise(self.spec.seed, (*key.node_key, key.metric), "own", model.noise_tau, self.step, i0, i1)
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
                if lo < hi:
                    z[lo - i0 : hi - i0] += self._added(a, state, i0, lo, hi)
        return np.round(self._transform(key, z), METRIC_MODELS[key.metric].decimals)

    def _added(self, a: Anomaly, state: dict[str, np.ndarray], i0: int, lo: int, hi: int) -> np.ndarray | float:
        """What anomaly ``a`` adds to the latent series at points [lo, hi) (``state`` starts at ``i0``)."""
        if a.kind == "trend":
            n = a.end_index - a.start_index + 1
            return a.magnitude * (np.arange(lo, hi) - a.start_index + 1) / n
        if a.kind == "seasonal_break":
            offsets = self._break_offsets(a.key, a)[lo - a.start_index : hi - a.start_index]
            return self._break_shape(a.key, a, state, slice(lo - i0, hi - i0)) + offsets
        return a.magnitude  # spike, dip, level_shift

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
        state_key: tuple[str, str, str] | None = None
        state: dict[str, np.ndarray] = {}
        for key in self.keys(tenant):
            if key.node_key != state_key:
                state_key, state = key.node_key, self._node_state(key.node_key, i0, i1)
            yield Series(key, METRIC_MODELS[key.metric].unit, times, self._values(key, state, i0, i1, clean))

    __iter__ = iter_series


def generate(spec: FleetSpec) -> Fleet:
    return Fleet(spec)
