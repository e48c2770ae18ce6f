"""Top-N of the latest period: the ranking that the API (``GET rankings``) and the
dashboard's ranking page both show, so they always agree; what drove each entry; and
the movers between consecutive periods (``GET rankings/changes``, the ranking page)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from django.db.models import QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from analytics.core.rca.movers import RankMove, rank_moves
from analytics.core.rca.text import driver_phrase, move_sentence
from results.models import AggregatedScore, Anomaly
from tenants.models import Node, Tenant

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


# Drivers and movers ----------------------------------------------------------------

@dataclass(frozen=True)
class Driver:
    """The metric window behind a ranked node (or a cluster's worst node)."""

    node_id: int | None
    metric: str
    window_start: datetime | None
    label: str
    score: float | None

    @property
    def key(self) -> tuple[int | None, str, datetime | None]:
        return (self.node_id, self.metric, self.window_start)


def driver_of(entry: AggregatedScore, level: str) -> Driver:
    """Node drivers name the metric directly; cluster drivers through their worst node."""
    driver = entry.driver if isinstance(entry.driver, dict) else {}
    node_id = entry.node_id if level == "node" else driver.get("node_id")
    metric = driver if level == "node" else (driver.get("metric") or {})
    try:
        window_start = datetime.fromisoformat(metric["window_start"])
    except (KeyError, TypeError, ValueError):
        window_start = None
    return Driver(node_id, str(metric.get("metric_name", "")), window_start, str(metric.get("anomaly_label", "")),
                  metric.get("score"))


def driver_anomalies(anomalies: QuerySet[Anomaly], drivers: Iterable[Driver]) -> dict[tuple, Anomaly]:
    """The stored anomaly of each driver's window (one query); the highest score wins when
    two engines flagged one window."""
    keys = {d.key for d in drivers if d.node_id is not None and d.window_start is not None}
    if not keys:
        return {}
    matches: dict[tuple, Anomaly] = {}
    candidates = anomalies.filter(node_id__in={k[0] for k in keys}, window_start__in={k[2] for k in keys}).order_by("score")
    for anomaly in candidates:
        key = (anomaly.node_id, anomaly.metric_name, anomaly.window_start)
        if key in keys:
            matches[key] = anomaly
    return matches


@dataclass
class RankChange:
    move: RankMove
    entry: AggregatedScore  # its row now (the previous one when it left)
    score: float | None  # now (None: it left)
    previous_score: float | None  # before (None: it entered)
    driver: Driver
    anomaly: Anomaly | None
    name: str
    text: str

    @property
    def driver_data(self) -> dict:
        sigma = (self.anomaly.explanation or {}).get("deviation_sigma") if self.anomaly else None
        return {"node_id": self.driver.node_id, "metric_name": self.driver.metric, "window_start": self.driver.window_start,
                "anomaly_label": self.anomaly.label if self.anomaly else self.driver.label, "score": self.driver.score,
                "deviation_sigma": sigma, "anomaly": self.anomaly.pk if self.anomaly else None}


@dataclass
class PeriodChanges:
    period_start: datetime
    period_end: datetime
    previous_period_end: datetime
    changes: list[RankChange]


def period_ends(scores: QuerySet[AggregatedScore], level: str, strategy: str, count: int, at: datetime | None = None) -> list:
    """The newest ``count`` distinct period ends of one level and strategy (at or before ``at``)."""
    rows = scores.filter(level=level, strategy=strategy)
    if at is not None:
        rows = rows.filter(period_end__lte=at)
    return list(rows.order_by("-period_end").values_list("period_end", flat=True).distinct()[:count])


def ranking_changes(tenant: Tenant, level: str, strategy: str, top: int, at: datetime | None = None,
                    periods: int = 1) -> list[PeriodChanges]:
    """For each of the newest ``periods`` periods (newest first) that has a period before it:
    who entered, left, climbed or fell in the Top-``top`` compared with that previous
    period, and what drove it. Both rankings are exactly what ``top_n`` (the rankings
    endpoint and page) shows for those periods. periods + 4 queries at most."""
    scores = AggregatedScore.objects.for_tenant(tenant)
    ends = period_ends(scores, level, strategy, periods + 1, at)
    ranked: dict[datetime, dict[str, AggregatedScore]] = {
        end: {row.subject: row for row in top_n(scores, level, strategy, top, end)} for end in ends
    }
    # (period end, move, its row now or else before, row now, row before)
    found: list[tuple[datetime, RankMove, AggregatedScore, AggregatedScore | None, AggregatedScore | None]] = []
    for newer, older in zip(ends, ends[1:], strict=False):
        now, before = ranked[newer], ranked[older]
        for move in rank_moves(list(before), list(now)):
            subject = str(move.subject)
            found.append((newer, move, now.get(subject) or before[subject], now.get(subject), before.get(subject)))
    drivers = {id(f): driver_of(f[2], level) for f in found}
    anomalies = driver_anomalies(Anomaly.objects.for_tenant(tenant), drivers.values())
    names = node_names(tenant, {d.node_id for d in drivers.values()}) if level == "cluster" else {}
    out = {newer: PeriodChanges(next(iter(ranked[newer].values())).period_start if ranked[newer] else newer, newer, older, [])
           for newer, older in zip(ends, ends[1:], strict=False)}
    for item in found:
        newer, move, row, current, previous = item
        driver = drivers[id(item)]
        anomaly = anomalies.get(driver.key)
        sigma = (anomaly.explanation or {}).get("deviation_sigma") if anomaly else None
        name = row.node.name if level == "node" and row.node else (row.cluster.name if row.cluster else "")
        metric = f"{names[driver.node_id]} {driver.metric}" if driver.node_id in names else driver.metric
        text = move_sentence(name, move, top, driver_phrase(metric, sigma, driver.score))
        out[newer].changes.append(RankChange(move, row, current.score if current else None,
                                             previous.score if previous else None, driver, anomaly, name, text))
    return list(out.values())


def node_names(tenant: Tenant, ids: set[int | None]) -> dict[int | None, str]:
    wanted = {i for i in ids if i is not None}
    return dict(Node.objects.for_tenant(tenant).filter(pk__in=wanted).values_list("pk", "name")) if wanted else {}
