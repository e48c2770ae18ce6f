"""The tenant dashboard's pages over results: overview, ranking, node, anomalies (the
incident pages: ``results.incidents.views``).

Every view runs inside the tenant scope opened by ``TenantScopeMiddleware`` and still
names the tenant explicitly (``for_tenant(request.tenant)``). Pages send summaries:
aggregated scores, the top anomalies, and bucketed series (``get_metric_series_batch``
with "5m"/"1h" roll-ups past a day), never every raw point. Each page issues a fixed
number of queries, whatever the number of nodes (asserted in tests/dashboard).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.core.paginator import Paginator
from django.db.models import Count, Max
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from analytics import health
from analytics.models import Series, TenantDailyCounter
from analytics.store.read import get_metric_series_batch
from results import rootcause
from results.feedback.views import BUTTONS, may_label
from results.filters import AnomalyFilter
from results.models import AggregatedScore, Anomaly, Feedback, Incident
from results.ranking import driver_anomalies, driver_of, latest_period, node_names, ranking_changes, top_n
from tenants.models import Cluster, Node
from tenants.views import tenant_page

STRATEGIES = ("max", "mean", "weighted", "p95")
LEVELS = ("node", "cluster")
LABELS = ("spike", "trend", "seasonal")
RANGES = {"6h": timedelta(hours=6), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_RANGE = "24h"
MAX_RANGE = timedelta(days=31)
HISTORY_POINTS = 96  # tenant score history on the overview
RECENT = timedelta(hours=24)  # "latest anomalies": windows ending within a day of the newest
LATEST_ANOMALIES = 10
OPEN_INCIDENTS = 10
STALE_SHOWN = 20
CHARTS_PER_PAGE = 24  # a node page draws this many series at most (?page= for the rest)
RANKING_TOP = 25
NODE_ANOMALIES = 100
PAGE_SIZE = 50


def score_band(score: float | None) -> str:
    """A CSS class for a score: none, ok, low, elevated, high, critical."""
    if score is None:
        return "none"
    for limit, band in ((0.2, "ok"), (0.4, "low"), (0.6, "elevated"), (0.8, "high")):
        if score < limit:
            return band
    return "critical"


def node_url(node_id: int, start: datetime | None = None, end: datetime | None = None) -> str:
    url = reverse("dashboard:node", args=[node_id])
    if start and end:
        url += "?" + urlencode({"from": _local(start), "to": _local(end)})
    return url


def window_url(anomaly: Anomaly) -> str:
    """The node page around an anomaly's window (3 hours either side)."""
    return node_url(anomaly.node_id, anomaly.window_start - timedelta(hours=3), anomaly.window_end + timedelta(hours=3))


def _local(moment: datetime) -> str:
    """UTC, minute precision, as an <input type=datetime-local> value."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


# Overview ------------------------------------------------------------------------

@require_GET
@tenant_page
def overview(request):
    tenant = request.tenant
    scores = AggregatedScore.objects.for_tenant(tenant)

    history = list(
        scores.filter(level="tenant", strategy="max").order_by("-period_end").values("score", "period_end")[:HISTORY_POINTS]
    )[::-1]
    current = history[-1] if history else None

    cluster_scores = {
        row.cluster_id: row
        for row in scores.filter(level="cluster", strategy="max", period_end=latest_period(scores, "cluster", "max"))
    }
    clusters = list(Cluster.objects.for_tenant(tenant).annotate(node_count=Count("nodes")).order_by("name"))
    for cluster in clusters:
        row = cluster_scores.get(cluster.pk)
        cluster.score = row.score if row else None
        cluster.anomaly_count = row.num_anomalies_detected if row else 0
        cluster.band = score_band(cluster.score)
    clusters.sort(key=lambda c: (c.score is None, -(c.score or 0), c.name))

    # open incidents come before single anomalies: one problem, one line
    incidents = list(Incident.objects.for_tenant(tenant).filter(state__in=Incident.ACTIVE).select_related("cluster")
                     .order_by("-started_at", "-pk")[:OPEN_INCIDENTS])
    for incident in incidents:
        incident.band = score_band(incident.peak_score if incident.kind == Incident.Kind.ANOMALY else None)

    anomalies = Anomaly.objects.for_tenant(tenant)
    newest = anomalies.aggregate(newest=Max("window_end"))["newest"]
    latest = []
    if newest is not None:
        latest = list(
            anomalies.filter(window_end__gte=newest - RECENT)
            .select_related("cluster", "node")
            .order_by("-score", "-window_start", "id")[:LATEST_ANOMALIES]
        )
        for anomaly in latest:
            anomaly.chart_url = window_url(anomaly)
            anomaly.band = score_band(anomaly.score)

    now = timezone.now()
    nodes = health.node_health(tenant, now)
    stale = sorted((n for n in nodes if n.stale), key=lambda n: (n.last_point_at is not None, n.last_point_at, n.node.name))
    today = TenantDailyCounter.objects.for_tenant(tenant).filter(day=now.date()).values("points_accepted", "points_rejected").first()

    return render(request, "dashboard/overview.html", {
        "nav": "overview",
        "current": current,
        "current_band": score_band(current["score"] if current else None),
        "history": {"t": [int(h["period_end"].timestamp()) for h in history], "v": [h["score"] for h in history]},
        "clusters": clusters,
        "incidents": incidents,
        "latest": latest,
        "stale": stale[:STALE_SHOWN],
        "stale_total": len(stale),
        "stale_after_minutes": int(health.STALE_AFTER.total_seconds() // 60),
        "node_total": len(nodes),
        "today": today or {"points_accepted": 0, "points_rejected": 0},
    })


# Ranking -------------------------------------------------------------------------

@dataclass
class RankingRow:
    rank: int
    score: AggregatedScore
    node_id: int | None
    node_name: str
    cluster_name: str
    cluster_id: int | None
    driver_metric: str
    driver_label: str
    anomaly: Anomaly | None

    @property
    def band(self) -> str:
        return score_band(self.score.score)

    @property
    def url(self) -> str:
        if self.node_id is None:
            return reverse("dashboard:anomalies") + "?" + urlencode({"cluster": self.cluster_name})
        if self.anomaly is not None:
            return window_url(self.anomaly)
        return node_url(self.node_id)


def _choice(value: str | None, choices: tuple[str, ...], default: str) -> str:
    return value if value in choices else default


@require_GET
@tenant_page
def ranking(request):
    tenant = request.tenant
    strategy = _choice(request.GET.get("strategy"), STRATEGIES, "max")
    level = _choice(request.GET.get("level"), LEVELS, "node")
    try:
        top = min(max(int(request.GET.get("top", RANKING_TOP)), 1), 500)
    except ValueError:
        top = RANKING_TOP
    ranked = list(top_n(AggregatedScore.objects.for_tenant(tenant), level, strategy, top))
    drivers = [driver_of(entry, level) for entry in ranked]
    names = node_names(tenant, {d.node_id for d in drivers}) if level == "cluster" else {}
    matches = driver_anomalies(Anomaly.objects.for_tenant(tenant), drivers)

    rows = []
    for entry, driver in zip(ranked, drivers, strict=True):
        anomaly = matches.get(driver.key)
        rows.append(RankingRow(
            rank=entry.rank,
            score=entry,
            node_id=entry.node_id if level == "node" else None,
            node_name=(entry.node.name if entry.node else "") if level == "node" else names.get(driver.node_id, ""),
            cluster_name=entry.cluster.name if entry.cluster else "",
            cluster_id=entry.cluster_id,
            driver_metric=driver.metric,
            driver_label=anomaly.label if anomaly else driver.label,
            anomaly=anomaly,
        ))
    movers = ranking_changes(tenant, level, strategy, top)

    return render(request, "dashboard/ranking.html", {
        "nav": "ranking",
        "rows": rows,
        "strategy": strategy,
        "level": level,
        "top": top,
        "strategies": STRATEGIES,
        "levels": LEVELS,
        "period": ranked[0] if ranked else None,
        "movers": movers[0] if movers and movers[0].period_end == (ranked[0].period_end if ranked else None) else None,
    })


# Node ----------------------------------------------------------------------------

def chart_range(params, now: datetime) -> tuple[datetime, datetime, str, list[str]]:
    """(start, end, range key, errors) from ?range=6h|24h|7d or ?from=&to= (UTC)."""
    errors = []
    if params.get("from") or params.get("to"):
        try:
            end = _parse_time(params["to"]) if params.get("to") else now
            start = _parse_time(params["from"]) if params.get("from") else end - RANGES[DEFAULT_RANGE]
        except ValueError:
            errors.append("from/to: expected a date and time such as 2026-11-27T10:00 (UTC)")
        else:
            end = min(end, now)  # nothing to draw in the future
            if start >= end:
                errors.append("from: must be before to")
            elif end - start > MAX_RANGE:
                errors.append(f"the range may span at most {MAX_RANGE.days} days")
            else:
                return start, end, "custom", errors
    key = _choice(params.get("range"), tuple(RANGES), DEFAULT_RANGE)
    return now - RANGES[key], now, key, errors


def _parse_time(value: str) -> datetime:
    """In UTC: Python accepts offsets up to ±24 h, PostgreSQL only up to ±15:59."""
    moment = datetime.fromisoformat(value.strip())
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"{value!r}: out of range") from None


def resolution_for(span: timedelta) -> str | None:
    """Raw points up to a day (≤ 1,440 at one a minute), 5-minute means up to a week
    (≤ 2,016), hourly means beyond (≤ 744 over the longest range, 31 days)."""
    if span <= timedelta(days=1):
        return None
    if span <= timedelta(days=7, hours=1):
        return "5m"
    return "1h"


def _compact(value: float) -> float:
    return float(f"{value:.6g}")


@require_GET
@tenant_page
def node_detail(request, node_id: int):
    tenant = request.tenant
    node = get_object_or_404(Node.objects.for_tenant(tenant).select_related("cluster"), pk=node_id)
    now = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    start, end, range_key, errors = chart_range(request.GET, now)
    resolution = resolution_for(end - start)

    all_series = Series.objects.for_tenant(tenant).filter(node_id=node.pk).order_by("metric_name", "pk").values_list("pk", flat=True)
    page = Paginator(all_series, CHARTS_PER_PAGE).get_page(request.GET.get("page"))
    series = list(page.object_list)
    data = get_metric_series_batch(tenant.pk, series, start, end, resolution) if series else []

    anomalies = list(
        Anomaly.objects.for_tenant(tenant)
        .filter(node_id=node.pk, window_end__gt=start, window_start__lt=end)
        .order_by("-score", "-window_start", "id")[:NODE_ANOMALIES]
    )
    windows: dict[str, list[dict]] = {}
    for anomaly in anomalies:
        anomaly.band = score_band(anomaly.score)
        windows.setdefault(anomaly.metric_name, []).append({
            "start": int(anomaly.window_start.timestamp()),
            "end": int(anomaly.window_end.timestamp()),
            "label": anomaly.label,
            "score": round(anomaly.score, 3),
            "id": anomaly.pk,
        })

    charts = []
    for item in data:
        ts = (item.timestamps.to_numpy(dtype=np.int64) // 1_000_000_000).tolist()
        charts.append({
            "id": int(item.metadata["series_id"]),
            "metric": item.metric_name,
            "unit": item.metadata.get("unit", ""),
            "t": ts,
            "v": [_compact(v) for v in item.values.tolist()],
            "windows": sorted(windows.get(item.metric_name, []), key=lambda w: w["start"]),
        })

    node_score = (
        AggregatedScore.objects.for_tenant(tenant)
        .filter(level="node", strategy="max", subject=f"node:{node.pk}")
        .order_by("-period_end")
        .first()
    )
    return render(request, "dashboard/node.html", {
        "nav": "node",
        "node": node,
        "node_score": node_score,
        "node_band": score_band(node_score.score if node_score else None),
        "charts": charts,
        "page": page,
        "chart_data": {"start": int(start.timestamp()), "end": int(end.timestamp()), "resolution": resolution, "series": charts},
        "anomalies": anomalies,
        "range_key": range_key,
        "ranges": list(RANGES),
        "start": start,
        "end": end,
        "start_local": _local(start),
        "end_local": _local(end),
        "resolution": resolution or "raw",
        "errors": errors,
        "labels": LABELS,
    })


# Related series ------------------------------------------------------------------

@require_GET
@tenant_page
def anomaly_related(request, anomaly_id: int):
    """What moved together with one anomaly (results/rootcause.py), each linked to its node's chart."""
    tenant = request.tenant
    anomaly = get_object_or_404(Anomaly.objects.for_tenant(tenant).select_related("cluster", "node"), pk=anomaly_id)
    answer = rootcause.related(tenant, anomaly)
    for item in answer["related"]:
        onset = datetime.fromisoformat(item["onset"])
        item["url"] = node_url(item["node_id"], onset - timedelta(hours=3), onset + timedelta(hours=3))
    return render(request, "dashboard/related.html", {
        "nav": "anomalies", "anomaly": anomaly, "answer": answer, "back": window_url(anomaly),
    })


# Anomalies -----------------------------------------------------------------------

@require_GET
@tenant_page
def anomaly_list(request):
    tenant = request.tenant
    queryset = Anomaly.objects.for_tenant(tenant).select_related("cluster", "node").order_by("-window_start", "-score", "id")
    filterset = AnomalyFilter(request.GET, queryset=queryset)
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    verdicts = dict(Feedback.objects.for_tenant(tenant).filter(anomaly__in=[a.pk for a in page.object_list])
                    .values_list("anomaly_id", "verdict"))
    for anomaly in page.object_list:
        anomaly.chart_url = window_url(anomaly)
        anomaly.band = score_band(anomaly.score)
        anomaly.verdict = verdicts.get(anomaly.pk, "")
    return render(request, "dashboard/anomalies.html", {
        "verdicts": BUTTONS,
        "can_label": may_label(request),
        "nav": "anomalies",
        "page": page,
        "errors": filterset.errors,
        "params": request.GET,
        "clusters": Cluster.objects.for_tenant(tenant).order_by("name").values_list("name", flat=True),
        "metrics": Series.objects.for_tenant(tenant).order_by("metric_name").values_list("metric_name", flat=True).distinct(),
        "labels": LABELS,
    })

