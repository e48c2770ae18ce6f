"""Top-N of the latest period: the ranking that the API (``GET rankings``) and the
dashboard's ranking page both show, so they always agree."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from django.db.models import QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from results.models import AggregatedScore

if TYPE_CHECKING:  # django-stubs' helper for annotated querysets; a development dependency only
    from django_stubs_ext import WithAnnotations


class Rank(TypedDict):
    rank: int


def latest_period(scores: QuerySet[AggregatedScore], level: str, strategy: str, at: datetime | None = None) -> Subquery:
    """The newest period_end of one level and strategy (ending at or before ``at``), as a
    subquery: no extra round trip."""
    candidates = scores.filter(level=level, strategy=strategy)
    if at is not None:
        candidates = candidates.filter(period_end__lte=at)
    return Subquery(candidates.order_by("-period_end").values("period_end")[:1])


def top_n(
    scores: QuerySet[AggregatedScore], level: str, strategy: str, top: int, at: datetime | None = None
) -> QuerySet[WithAnnotations[AggregatedScore, Rank]]:
    """The ``top`` worst nodes or clusters (``level``) of the latest period, worst first
    (ties broken by anomaly count, then name), each with its ``rank`` from 1."""
    order = ["-score", "-num_anomalies_detected", "node__name" if level == "node" else "cluster__name", "pk"]
    return (
        scores.filter(level=level, strategy=strategy, period_end=latest_period(scores, level, strategy, at))
        .select_related("cluster", "node")
        .annotate(rank=Window(RowNumber(), order_by=order))
        .order_by(*order)[:top]
    )
