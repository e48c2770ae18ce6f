"""store_anomaly_results(): the write contract of detection results (idempotent upserts)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

from django.utils import timezone

from analytics.core.contracts import AggregatedAnomalyScore, AnomalyResult
from results.models import AggregatedScore, Anomaly


def store_anomaly_results(
    tenant_id: int,
    results: Iterable[AnomalyResult],
    series_ids: Mapping[tuple, int],
    *,
    run_id: int | None = None,
) -> int:
    """Upsert the anomalous results (NORMAL ones are not stored) on the natural key
    (tenant, series, engine, window_start); ``first_score`` keeps the first verdict.
    ``series_ids`` maps a result's ``series_key`` to its Series id; the result's
    cluster_id and node_id are the database ids. Returns the number of rows written."""
    now = timezone.now()
    rows = [
        Anomaly(
            tenant_id=tenant_id,
            series_id=series_ids[result.series_key],
            cluster_id=database_id(result.cluster_id),
            node_id=database_id(result.node_id),
            metric_name=result.metric_name,
            run_id=run_id,
            engine=result.engine,
            window_start=result.window_start,
            window_end=result.window_end,
            score=result.anomaly_score,
            first_score=result.anomaly_score,
            label=result.anomaly_label.value,
            magnitude=result.magnitude,
            explanation=result.explanation.to_dict() if result.explanation else {},
            text=result.explanation.text if result.explanation else "",
            created_at=now,
            updated_at=now,
        )
        for result in results
        if result.is_anomaly
    ]
    Anomaly.objects.for_tenant(tenant_id).bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "series", "engine", "window_start"],
        update_fields=["window_end", "score", "label", "magnitude", "explanation", "text", "run", "updated_at"],
        batch_size=1000,
    )
    return len(rows)


def database_id(identifier: Hashable) -> int:
    """A core identifier (any hashable there) that must be a database id here: results
    are stored for series of the store, whose cluster and node ids are integers."""
    if type(identifier) is not int:
        raise TypeError(f"expected a database id (an integer), got {identifier!r}")
    return identifier


def subject_of(score: AggregatedAnomalyScore) -> str:
    if score.node_id is not None:
        return f"node:{score.node_id}"
    if score.cluster_id is not None:
        return f"cluster:{score.cluster_id}"
    return "tenant"


def store_aggregated_scores(
    tenant_id: int, scores: Iterable[AggregatedAnomalyScore], period_start, period_end, *, run_id: int | None = None
) -> int:
    """Upsert scores on (tenant, level, subject, strategy, period): same period, same rows."""
    rows = [
        AggregatedScore(
            tenant_id=tenant_id,
            run_id=run_id,
            level=score.level,
            subject=subject_of(score),
            cluster_id=None if score.cluster_id is None else database_id(score.cluster_id),
            node_id=None if score.node_id is None else database_id(score.node_id),
            strategy=score.aggregation_strategy.value,
            score=score.aggregate_score,
            num_metrics_analyzed=score.num_metrics_analyzed,
            num_anomalies_detected=score.num_anomalies_detected,
            period_start=period_start,
            period_end=period_end,
            driver=_json_safe(score.driver),
        )
        for score in scores
    ]
    AggregatedScore.objects.for_tenant(tenant_id).bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "level", "subject", "strategy", "period_start", "period_end"],
        update_fields=["run", "score", "num_metrics_analyzed", "num_anomalies_detected", "driver"],
        batch_size=1000,
    )
    return len(rows)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, int | float | str):  # enums
        return value.value
    return value
