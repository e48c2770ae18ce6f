"""Metric → node → cluster → tenant roll-up, drivers and rankings."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.core.aggregation import (
    RECENCY_HALF_LIFE,
    AggregationPipeline,
    ClusterAnomalyAggregator,
    NodeAnomalyAggregator,
    TenantAnomalyAggregator,
    combine,
    nearest_rank_p95,
    rank,
)
from analytics.core.contracts import AggregatedAnomalyScore, AggregationStrategy, AnomalyResult, AnomalyType

MAX, MEAN, WEIGHTED, P95 = (AggregationStrategy[name] for name in ("MAX", "MEAN", "WEIGHTED", "P95"))
T0 = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)


def result(metric, score, *, node="n1", cluster="c1", tenant="t1", label=None, minute=0):
    label = label or (AnomalyType.SPIKE if score >= 0.5 else AnomalyType.NORMAL)
    start = T0 + timedelta(minutes=minute)
    return AnomalyResult(tenant, cluster, node, metric, start, start + timedelta(minutes=5), score, label)


def node_score(results, strategy, **weights):
    (score,) = NodeAnomalyAggregator(strategy, **weights).aggregate(results)
    return score.aggregate_score


@pytest.mark.parametrize(("strategy", "expected"), [(MAX, 0.9), (MEAN, 0.5), (P95, 0.9), (WEIGHTED, 0.5)])
def test_worked_example_cpu_and_memory(strategy, expected):
    # The design's example: linear interpolation would put P95 at 0.86; nearest rank gives 0.9.
    results = [result("cpu", 0.9), result("memory", 0.1)]
    assert node_score(results, strategy) == pytest.approx(expected)


def test_nearest_rank_p95_by_hand():
    assert nearest_rank_p95([0.3]) == 0.3
    assert nearest_rank_p95([0.1, 0.9]) == 0.9
    twenty = [i / 100 for i in range(1, 21)]  # rank ceil(19.0) = 19 → 0.19, not the max
    assert nearest_rank_p95(list(reversed(twenty))) == 0.19
    assert nearest_rank_p95([i / 100 for i in range(1, 22)]) == 0.20  # rank ceil(19.95) = 20 of 21
    assert nearest_rank_p95([0.0] * 99 + [1.0]) == 0.0  # rank 95 of 100


@pytest.mark.parametrize("n", range(1, 41))
def test_p95_is_the_nearest_rank_ceiling_at_every_size(n):
    """The value at rank ceil(0.95 n) of the sorted scores, computed here in exact
    fractions; sizes where rounding and the ceiling differ (with Python's round: 11-19 and 30-39) catch a
    rounded rank."""
    scores = [k / 100 for k in range(1, n + 1)]
    rank = math.ceil(Fraction(95, 100) * n)
    expected = sorted(scores)[rank - 1]
    assert nearest_rank_p95(list(reversed(scores))) == expected
    assert combine(P95, scores[::2] + scores[1::2]) == expected
    (node,) = NodeAnomalyAggregator(P95).aggregate([result(f"m{k}", s) for k, s in enumerate(scores)])
    assert node.aggregate_score == expected


def test_weighted_mean_by_hand():
    results = [result("cpu", 0.9), result("memory", 0.1), result("disk", 0.5)]
    assert node_score(results, WEIGHTED, metric_weights={"cpu": 3}) == pytest.approx((2.7 + 0.1 + 0.5) / 5)
    assert node_score(results, MEAN, metric_weights={"cpu": 3}) == pytest.approx(0.5)  # weights only for WEIGHTED


def test_combine_never_leaves_its_inputs_range():
    assert combine(MEAN, [0.1, 0.1, 0.1]) == 0.1  # 0.1 + 0.1 + 0.1 / 3 rounds above 0.1
    assert combine(WEIGHTED, [1.0] * 7, [0.3] * 7) == 1.0
    with pytest.raises(ValueError, match="scores"):
        combine(MAX, [])


def test_recency_halves_a_windows_score_per_whole_half_life_before_the_periods_end():
    """Over a week, an older anomaly counts less than a recent one (the roll-up says what
    needs attention now); within the last half-life nothing changes."""
    day = 24 * 60
    old_spike = result("cpu", 0.96, minute=0)  # ends 5 days and 5 minutes before the period's end
    recent = result("cpu", 0.4, minute=5 * day + 5)  # the last window
    (node,) = NodeAnomalyAggregator(MAX, recency_half_life=RECENCY_HALF_LIFE).aggregate([old_spike, recent])
    assert RECENCY_HALF_LIFE == timedelta(days=1)
    assert node.aggregate_score == 0.4 and node.num_anomalies_detected == 1  # 0.96 / 32 = 0.03 < 0.4
    assert node.driver["window_start"] == recent.window_start.isoformat()
    (unweighted,) = NodeAnomalyAggregator(MAX).aggregate([old_spike, recent])
    assert unweighted.aggregate_score == 0.96
    (node,) = NodeAnomalyAggregator(MAX, recency_half_life=RECENCY_HALF_LIFE).aggregate(
        [old_spike], as_of=old_spike.window_end + timedelta(days=1) - timedelta(minutes=1))
    assert node.aggregate_score == 0.96  # within one half-life: unchanged
    (node,) = NodeAnomalyAggregator(MAX, recency_half_life=RECENCY_HALF_LIFE).aggregate(
        [old_spike], as_of=old_spike.window_end + timedelta(days=2))
    assert node.aggregate_score == 0.96 / 4
    with pytest.raises(ValueError, match="recency_half_life"):
        NodeAnomalyAggregator(MAX, recency_half_life=timedelta(0))


def test_metric_score_is_its_worst_window_and_any_label_counts():
    results = [
        result("cpu", 0.2, minute=0),
        result("cpu", 0.7, minute=5, label=AnomalyType.TREND),
        result("cpu", 0.4, minute=10),
        result("memory", 0.45, label=AnomalyType.SPIKE),  # low score, still labelled an anomaly
        result("disk", 0.3),
    ]
    (node,) = NodeAnomalyAggregator(MEAN).aggregate(results)
    assert node.aggregate_score == pytest.approx((0.7 + 0.45 + 0.3) / 3)
    assert (node.num_metrics_analyzed, node.num_anomalies_detected) == (3, 2)
    assert node.driver == {
        "metric_name": "cpu", "score": 0.7, "anomaly_label": "trend",
        "window_start": (T0 + timedelta(minutes=5)).isoformat(),
        "window_end": (T0 + timedelta(minutes=10)).isoformat(),
    }


def fleet():
    return [
        result("cpu", 0.95, node="n1", cluster="c1"),
        result("memory", 0.2, node="n1", cluster="c1"),
        result("cpu", 0.3, node="n2", cluster="c1"),
        result("cpu", 0.6, node="n3", cluster="c2", label=AnomalyType.SEASONAL, minute=30),
        result("disk", 0.55, node="n3", cluster="c2"),
        result("cpu", 0.1, node="n4", cluster="c2"),
    ]


def test_drill_down_from_tenant_to_one_window():
    outcome = AggregationPipeline(MAX).run(fleet())
    (tenant,) = outcome.tenants
    assert (tenant.level, tenant.aggregate_score) == ("tenant", 0.95)
    assert (tenant.num_metrics_analyzed, tenant.num_anomalies_detected) == (6, 3)
    cluster = tenant.driver
    assert (cluster["cluster_id"], cluster["score"]) == ("c1", 0.95)
    node = cluster["node"]
    assert (node["node_id"], node["score"]) == ("n1", 0.95)
    assert node["metric"]["metric_name"] == "cpu"
    assert node["metric"]["window_start"] == T0.isoformat()
    # every level's driver is the driver of the level below
    (c1,) = [c for c in outcome.clusters if c.cluster_id == "c1"]
    (n1,) = [n for n in outcome.nodes if n.node_id == "n1"]
    assert cluster == {"cluster_id": "c1", "score": 0.95, "node": c1.driver}
    assert node == {"node_id": "n1", "score": 0.95, "metric": n1.driver}


def test_each_level_by_hand_with_mean():
    outcome = AggregationPipeline(MEAN).run(fleet())
    nodes = {n.node_id: n.aggregate_score for n in outcome.nodes}
    assert nodes == pytest.approx({"n1": 0.575, "n2": 0.3, "n3": 0.575, "n4": 0.1})
    clusters = {c.cluster_id: c.aggregate_score for c in outcome.clusters}
    assert clusters == pytest.approx({"c1": 0.4375, "c2": 0.3375})
    assert outcome.tenants[0].aggregate_score == pytest.approx(0.3875)
    # n1 and n3 tie on score; n3 has two anomalies to n1's one, so it ranks first
    assert [n.node_id for n in outcome.top_nodes(2)] == ["n3", "n1"]
    assert [c.cluster_id for c in outcome.top_clusters(1)] == ["c1"]


def test_weights_per_node_and_per_cluster_times_their_metrics():
    outcome = AggregationPipeline(
        WEIGHTED, metric_weights={"memory": 3}, node_weights={"n2": 2}, cluster_weights={"c2": 3},
    ).run(fleet())
    nodes = {n.node_id: n.aggregate_score for n in outcome.nodes}
    assert nodes["n1"] == pytest.approx((0.95 + 3 * 0.2) / 4)
    clusters = {c.cluster_id: c.aggregate_score for c in outcome.clusters}
    # n1: weight 1 x 2 metrics; n2: weight 2 x 1 metric
    assert clusters["c1"] == pytest.approx((2 * nodes["n1"] + 2 * 0.3) / 4)
    # n3: 1 x 2 metrics (cpu 0.6, disk 0.55); n4: 1 x 1
    assert clusters["c2"] == pytest.approx((2 * 0.575 + 0.1) / 3)
    # c1: 1 x 3 metrics; c2: 3 x 3 metrics
    assert outcome.tenants[0].aggregate_score == pytest.approx((3 * clusters["c1"] + 9 * clusters["c2"]) / 12)


def test_weighted_with_no_weight_set_averages_per_metric_not_per_node():
    outcome = AggregationPipeline(WEIGHTED).run(fleet())
    (tenant,) = outcome.tenants
    assert tenant.aggregate_score == pytest.approx((0.95 + 0.2 + 0.3 + 0.6 + 0.55 + 0.1) / 6)  # every metric once
    mean = AggregationPipeline(MEAN).run(fleet()).tenants[0].aggregate_score
    assert mean == pytest.approx(0.3875) != pytest.approx(tenant.aggregate_score)  # MEAN: a mean of means


def test_ties_break_on_anomalies_then_ids_as_strings():
    results = [result("cpu", 0.5, node=node, label=AnomalyType.NORMAL) for node in (10, 9, "b", "a")]
    results.append(result("cpu", 0.5, node=2, label=AnomalyType.SPIKE))
    nodes = AggregationPipeline(MAX).run(results).nodes
    assert [n.node_id for n in nodes] == [2, 10, 9, "a", "b"]
    assert [n.node_id for n in rank(reversed(nodes), top_n=3)] == [2, 10, 9]
    assert AggregationPipeline.rank(nodes, 0) == []


def test_several_tenants_are_kept_apart():
    outcome = AggregationPipeline(MAX).run([result("cpu", 0.9, tenant="t1"), result("cpu", 0.4, tenant="t2")])
    assert [(t.tenant_id, t.aggregate_score) for t in outcome.tenants] == [("t1", 0.9), ("t2", 0.4)]


def test_empty_input_gives_empty_outcome():
    outcome = AggregationPipeline(P95).run([])
    assert (outcome.nodes, outcome.clusters, outcome.tenants) == ([], [], [])


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: AggregationPipeline("median"), "strategy"),
        (lambda: AggregationPipeline(WEIGHTED, metric_weights={"cpu": 0}), "metric_weights"),
        (lambda: AggregationPipeline(WEIGHTED, node_weights={"n1": -1}), "node_weights"),
        (lambda: AggregationPipeline(WEIGHTED, cluster_weights={"c1": float("inf")}), "cluster_weights"),
        (lambda: rank([], top_n=-1), "top_n"),
        (lambda: NodeAnomalyAggregator(MAX).aggregate([{"metric_name": "cpu"}]), "results"),
        (lambda: ClusterAnomalyAggregator(MAX).aggregate(AggregationPipeline(MAX).run(fleet()).clusters), "scores"),
        (lambda: TenantAnomalyAggregator(MAX).aggregate(AggregationPipeline(MEAN).run(fleet()).clusters), "scores"),
    ],
)
def test_bad_input_names_the_argument(make, field):
    with pytest.raises(ValueError, match=field):
        make()


# ------------------------------------------------------------------ properties

score_values = st.floats(0, 1, allow_nan=False)
fleets = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["n1", "n2", "n3", "n4"]),
        st.sampled_from(["cpu", "memory", "disk", "latency"]), score_values, st.booleans(), st.integers(0, 3),
    ),
    min_size=1, max_size=40,
)


def build(rows):
    return [
        result(metric, score, node=f"{cluster}-{node}", cluster=cluster, minute=minute * 5,
               label=AnomalyType.SPIKE if flagged else AnomalyType.NORMAL)
        for cluster, node, metric, score, flagged, minute in rows
    ]


def by_level(outcome):
    return {
        **{("node", s.node_id): s for s in outcome.nodes},
        **{("cluster", s.cluster_id): s for s in outcome.clusters},
        **{("tenant", s.tenant_id): s for s in outcome.tenants},
    }


@settings(max_examples=150, deadline=None)
@given(fleets, st.dictionaries(st.sampled_from(["cpu", "memory", "disk"]), st.floats(0.1, 10)))
def test_max_bounds_every_strategy_and_mean_lies_between_min_and_max(rows, weights):
    results = build(rows)
    outcomes = {
        strategy: by_level(AggregationPipeline(strategy, metric_weights=weights).run(results))
        for strategy in AggregationStrategy
    }
    metric_scores = {}
    for r in results:
        metric_scores[r.series_key] = max(metric_scores.get(r.series_key, 0.0), r.anomaly_score)
    for key, top in outcomes[MAX].items():
        for strategy in AggregationStrategy:
            score = outcomes[strategy][key].aggregate_score
            assert 0.0 <= score <= top.aggregate_score <= 1.0, (strategy, key)
        if key[0] == "node":
            lowest = min(s for k, s in metric_scores.items() if k[2] == key[1])
            assert lowest <= outcomes[MEAN][key].aggregate_score <= top.aggregate_score
            assert lowest <= outcomes[P95][key].aggregate_score
            assert top.aggregate_score == max(s for k, s in metric_scores.items() if k[2] == key[1])


@settings(max_examples=150, deadline=None)
@given(fleets, st.sampled_from(list(AggregationStrategy)), st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_outcome(rows, strategy, rnd: random.Random):
    results = build(rows)
    shuffled = list(results)
    rnd.shuffle(shuffled)
    pipeline = AggregationPipeline(strategy, metric_weights={"cpu": 2.5}, node_weights={"c1-n1": 0.3})
    assert pipeline.run(results) == pipeline.run(shuffled)


@settings(max_examples=100, deadline=None)
@given(fleets)
def test_counts_add_up_and_drivers_point_at_the_worst_child(rows):
    results = build(rows)
    outcome = AggregationPipeline(MAX).run(results)
    (tenant,) = outcome.tenants
    assert tenant.num_metrics_analyzed == len({r.series_key for r in results})
    assert tenant.num_anomalies_detected == len({r.series_key for r in results if r.is_anomaly})
    assert sum(c.num_metrics_analyzed for c in outcome.clusters) == tenant.num_metrics_analyzed
    assert tenant.driver["cluster_id"] == outcome.clusters[0].cluster_id
    metric = tenant.driver["node"]["metric"]
    assert metric["score"] == tenant.aggregate_score == max(r.anomaly_score for r in results)
    assert all(isinstance(s, AggregatedAnomalyScore) for s in outcome.nodes + outcome.clusters)
