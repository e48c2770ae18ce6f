"""Roll per-window results up to metric → node → cluster → tenant scores, and rank them.

A series (tenant, cluster, node, metric) may have several results, one per window.
Its metric score is the highest ``anomaly_score`` among them, and it counts as an
anomaly if any of them is labelled other than NORMAL. With a ``recency_half_life``
(what detection runs use: :data:`RECENCY_HALF_LIFE`, one day), each window's score first
halves for every whole half-life between its end and the end of the newest window
aggregated (the period's end): over a week, the score says what needs attention now,
not which series had its worst moment some day earlier; within the last day nothing
changes, so a periodic run of a few minutes aggregates exactly as without it. Each level then combines the
scores one level down with the chosen ``AggregationStrategy``:

- MAX: the worst child. One bad metric makes a bad node.
- MEAN: the plain average.
- WEIGHTED: the weighted average; weights per metric name for nodes, per node id for
  clusters, per cluster id for tenants; anything not listed weighs 1. At the cluster and
  tenant levels a child also counts once per metric it holds (its weight times its
  ``num_metrics_analyzed``): with no weight set, every metric counts once at every
  level (MEAN is a mean of means), so a cluster of two metrics does not weigh as much as
  one of two hundred.
- P95: the nearest-rank 95th percentile: the value at rank ceil(0.95 * n) of the
  sorted scores. Nearest rank always returns a score one of the children really has,
  so the number on the dashboard points at a real metric; linear interpolation would
  invent one (cpu 0.9 and memory 0.1 would give 0.86, a score neither metric has).

Every score keeps a ``driver``, the child that drove it, so a user drills down from
the tenant to one metric's window:

- node: ``{"metric_name", "score", "anomaly_label", "window_start", "window_end"}``
  (the worst metric and its worst window, ``score`` after the recency weight; times as
  ISO 8601 strings, JSON-ready);
- cluster: ``{"node_id", "score", "metric": <that node's driver>}``;
- tenant: ``{"cluster_id", "score", "node": <that cluster's driver>}``.

The worst child and every ranking use the same order: score descending, then
anomalies descending, then ids ascending compared as strings. Sums use ``math.fsum``
(exactly rounded, so independent of input order), and a mean is clamped into its
inputs' range so rounding can never lift it above the maximum or 1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analytics.core.contracts import (
    AggregatedAnomalyScore,
    AggregationStrategy,
    AnomalyResult,
    Identifier,
)

RECENCY_HALF_LIFE = timedelta(days=1)


def nearest_rank_p95(scores: Sequence[float]) -> float:
    """The value at rank ceil(0.95 * n) (1-based) of the sorted scores."""
    ordered = sorted(scores)
    rank = (95 * len(ordered) + 99) // 100  # ceil(0.95 * n) in integers: no float rounding
    return ordered[rank - 1]


def combine(strategy: AggregationStrategy, scores: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """One score from several by ``strategy``; ``weights`` are used by WEIGHTED only."""
    if not scores:
        raise ValueError("scores: nothing to aggregate")
    strategy = AggregationStrategy(strategy)
    if strategy is AggregationStrategy.MAX:
        return max(scores)
    if strategy is AggregationStrategy.P95:
        return nearest_rank_p95(scores)
    if strategy is AggregationStrategy.MEAN or weights is None:
        weights = [1.0] * len(scores)
    mean = math.fsum(w * s for w, s in zip(weights, scores, strict=True)) / math.fsum(weights)
    return min(max(mean, min(scores)), max(scores))


def _check_weights(name: str, weights: Mapping[Any, float] | None) -> dict[Any, float]:
    checked = dict(weights or {})
    for key, weight in checked.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"{name}: weight for {key!r} must be a positive number, got {weight!r}")
    return checked


def _id_text(*ids: Identifier | None) -> tuple[str, ...]:
    return tuple("" if i is None else str(i) for i in ids)


def ranking_key(score: AggregatedAnomalyScore) -> tuple[float, int, tuple[str, ...]]:
    ids = _id_text(score.tenant_id, score.cluster_id, score.node_id)
    return (-score.aggregate_score, -score.num_anomalies_detected, ids)


def rank(scores: Iterable[AggregatedAnomalyScore], top_n: int | None = None) -> list[AggregatedAnomalyScore]:
    """Worst first: score desc, anomalies desc, then ids asc as strings."""
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0):
        raise ValueError(f"top_n: must be a non-negative integer, got {top_n!r}")
    ordered = sorted(scores, key=ranking_key)
    return ordered if top_n is None else ordered[:top_n]


@dataclass(frozen=True)
class MetricScore:
    """One series' verdict over all its windows, and the window that set it."""

    result: AnomalyResult  # the worst window
    score: float  # its score after the recency weight
    is_anomaly: bool

    @property
    def driver(self) -> dict[str, Any]:
        return {
            "metric_name": self.result.metric_name,
            "score": self.score,
            "anomaly_label": self.result.anomaly_label.value,
            "window_start": self.result.window_start.isoformat(),
            "window_end": self.result.window_end.isoformat(),
        }


def recency_weight(window_end: datetime, as_of: datetime, half_life: timedelta | None) -> float:
    """0.5 to the power of the whole half-lives from ``window_end`` to ``as_of`` (1 without
    a half-life or for a window ending at or after ``as_of``)."""
    if half_life is None or window_end >= as_of:
        return 1.0
    return 0.5 ** ((as_of - window_end) // half_life)


def worst_window(windows: Sequence[AnomalyResult], as_of: datetime | None = None,
                 recency_half_life: timedelta | None = None) -> tuple[AnomalyResult, float]:
    """The worst of one series' windows and its (recency-weighted) score: the highest
    weighted score, an anomaly before a normal one, then the earliest. ``as_of``: the
    period's end (default: the newest window's end)."""
    end = as_of or max(r.window_end for r in windows)

    def weighted(r: AnomalyResult) -> float:
        return r.anomaly_score * recency_weight(r.window_end, end, recency_half_life)

    worst = min(windows, key=lambda r: (-weighted(r), not r.is_anomaly, r.window_start, r.window_end))
    return worst, weighted(worst)


def metric_scores(results: Iterable[AnomalyResult], recency_half_life: timedelta | None = None,
                  as_of: datetime | None = None) -> list[MetricScore]:
    """One ``MetricScore`` per series key, in key order; with a half-life, scores are
    weighted by recency relative to ``as_of`` (default: the newest window's end among
    ``results``)."""
    by_series: dict[tuple[Any, ...], list[AnomalyResult]] = defaultdict(list)
    for result in results:
        if not isinstance(result, AnomalyResult):
            raise ValueError(f"results: expected AnomalyResult, got {type(result).__name__}")
        by_series[result.series_key].append(result)
    if not by_series:
        return []
    end = as_of or max(r.window_end for windows in by_series.values() for r in windows)
    summaries = []
    for key in sorted(by_series, key=lambda k: _id_text(*k)):
        windows = by_series[key]
        worst, score = worst_window(windows, end, recency_half_life)
        summaries.append(MetricScore(worst, score, any(r.is_anomaly for r in windows)))
    return summaries


class NodeAnomalyAggregator:
    """Metric scores → one score per node; weights per metric name (WEIGHTED only)."""

    def __init__(self, strategy: AggregationStrategy | str, metric_weights: Mapping[str, float] | None = None,
                 recency_half_life: timedelta | None = None) -> None:
        self.strategy = _strategy(strategy)
        self.metric_weights = _check_weights("metric_weights", metric_weights)
        if recency_half_life is not None and recency_half_life <= timedelta(0):
            raise ValueError(f"recency_half_life: must be a positive duration, got {recency_half_life!r}")
        self.recency_half_life = recency_half_life

    def aggregate(self, results: Iterable[AnomalyResult], as_of: datetime | None = None) -> list[AggregatedAnomalyScore]:
        """``as_of``: the period's end, for the recency weight (default: the newest window's end)."""
        by_node: dict[tuple[Any, ...], list[MetricScore]] = defaultdict(list)
        for metric in metric_scores(results, self.recency_half_life, as_of):
            by_node[metric.result.series_key[:3]].append(metric)
        scores = []
        for (tenant_id, cluster_id, node_id), metrics in by_node.items():
            worst = min(metrics, key=lambda m: (-m.score, not m.is_anomaly, m.result.metric_name))
            scores.append(AggregatedAnomalyScore(
                tenant_id, cluster_id, node_id, self.strategy,
                aggregate_score=combine(
                    self.strategy,
                    [m.score for m in metrics],
                    [self.metric_weights.get(m.result.metric_name, 1.0) for m in metrics],
                ),
                num_metrics_analyzed=len(metrics),
                num_anomalies_detected=sum(m.is_anomaly for m in metrics),
                driver=worst.driver,
            ))
        return rank(scores)


class _ParentAggregator:
    """Shared by cluster and tenant: group child scores, combine, name the worst child."""

    child_level: str
    child_id_field: str
    driver_key: str
    weights_name: str

    def __init__(self, strategy: AggregationStrategy | str, weights: Mapping[Any, float] | None = None) -> None:
        self.strategy = _strategy(strategy)
        self.weights = _check_weights(self.weights_name, weights)

    def _parent_key(self, child: AggregatedAnomalyScore) -> tuple[Any, Any, Any]:
        raise NotImplementedError

    def aggregate(self, children: Iterable[AggregatedAnomalyScore]) -> list[AggregatedAnomalyScore]:
        groups: dict[tuple[Any, Any, Any], list[AggregatedAnomalyScore]] = defaultdict(list)
        for child in children:
            if not isinstance(child, AggregatedAnomalyScore) or child.level != self.child_level:
                raise ValueError(f"scores: expected {self.child_level}-level AggregatedAnomalyScore, got {child!r}")
            groups[self._parent_key(child)].append(child)
        if any(child.aggregation_strategy is not self.strategy for group in groups.values() for child in group):
            raise ValueError(f"scores: every {self.child_level} score must use the {self.strategy.value} strategy")
        parents = []
        for (tenant_id, cluster_id, node_id), group in groups.items():
            worst = rank(group)[0]
            child_id = getattr(worst, self.child_id_field)
            parents.append(AggregatedAnomalyScore(
                tenant_id, cluster_id, node_id, self.strategy,
                aggregate_score=combine(
                    self.strategy,
                    [c.aggregate_score for c in group],
                    [self.weights.get(getattr(c, self.child_id_field), 1.0) * max(c.num_metrics_analyzed, 1) for c in group],
                ),
                num_metrics_analyzed=sum(c.num_metrics_analyzed for c in group),
                num_anomalies_detected=sum(c.num_anomalies_detected for c in group),
                driver={self.child_id_field: child_id, "score": worst.aggregate_score, self.driver_key: worst.driver},
            ))
        return rank(parents)


class ClusterAnomalyAggregator(_ParentAggregator):
    """Node scores → one score per cluster; WEIGHTED: weights per node id, times each node's metrics."""

    child_level, child_id_field, driver_key, weights_name = "node", "node_id", "metric", "node_weights"

    def _parent_key(self, child: AggregatedAnomalyScore) -> tuple[Any, Any, Any]:
        return (child.tenant_id, child.cluster_id, None)


class TenantAnomalyAggregator(_ParentAggregator):
    """Cluster scores → one score per tenant; WEIGHTED: weights per cluster id, times each cluster's metrics."""

    child_level, child_id_field, driver_key, weights_name = "cluster", "cluster_id", "node", "cluster_weights"

    def _parent_key(self, child: AggregatedAnomalyScore) -> tuple[Any, Any, Any]:
        return (child.tenant_id, None, None)


def _strategy(strategy: AggregationStrategy | str) -> AggregationStrategy:
    try:
        return AggregationStrategy(strategy)
    except ValueError:
        choices = [s.value for s in AggregationStrategy]
        raise ValueError(f"strategy: must be one of {choices}, got {strategy!r}") from None


@dataclass(frozen=True)
class AggregationOutcome:
    """Every level's scores, each list ranked worst first."""

    nodes: list[AggregatedAnomalyScore]
    clusters: list[AggregatedAnomalyScore]
    tenants: list[AggregatedAnomalyScore]

    def top_nodes(self, n: int) -> list[AggregatedAnomalyScore]:
        return rank(self.nodes, n)

    def top_clusters(self, n: int) -> list[AggregatedAnomalyScore]:
        return rank(self.clusters, n)


class AggregationPipeline:
    """Results → node, cluster and tenant scores with one strategy at every level."""

    rank = staticmethod(rank)

    def __init__(
        self,
        strategy: AggregationStrategy | str,
        metric_weights: Mapping[str, float] | None = None,
        node_weights: Mapping[Identifier, float] | None = None,
        cluster_weights: Mapping[Identifier, float] | None = None,
        recency_half_life: timedelta | None = None,
    ) -> None:
        self.strategy = _strategy(strategy)
        self.nodes = NodeAnomalyAggregator(self.strategy, metric_weights, recency_half_life)
        self.clusters = ClusterAnomalyAggregator(self.strategy, node_weights)
        self.tenants = TenantAnomalyAggregator(self.strategy, cluster_weights)

    def run(self, results: Iterable[AnomalyResult], as_of: datetime | None = None) -> AggregationOutcome:
        nodes = self.nodes.aggregate(results, as_of)
        clusters = self.clusters.aggregate(nodes)
        return AggregationOutcome(nodes, clusters, self.tenants.aggregate(clusters))

