"""Top-N of the latest period: the ranking that the API (``GET rankings``) and the
dashboard's ranking page both show, so they always agree."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet, Subquery

from results.models import AggregatedScore


def latest_period(scores: QuerySet[AggregatedScore], level: str, strategy: str, at: datetime | None = None) -> Subquery:
    """The newest period_end of one level and strategy (ending at or before ``at``), as a
    subquery: no extra round trip."""
    candidates = scores.filter(level=level, strategy=strategy)
    if at is not None:
        candidates = candidates.filter(period_end__lte=at)
    return Subquery(candidates.order_by("-period_end").values("period_end")[:1])


def top_n(scores: QuerySet[AggregatedScore], level: str, strategy: str, top: int, at: datetime | None = None) -> QuerySet[AggregatedScore]:
    """The ``top`` worst nodes or clusters (``level``) of the latest period, worst first;
    ties broken by anomaly count, then name."""
    name = "node__name" if level == "node" else "cluster__name"
    return (
        scores.filter(level=level, strategy=strategy, period_end=latest_period(scores, level, strategy, at))
        .select_related("cluster", "node")
        .order_by("-score", "-num_anomalies_detected", name, "pk")[:top]
    )
