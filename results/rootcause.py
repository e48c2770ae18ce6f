"""What moved together with a stored anomaly: the core's root-cause analysis
(analytics.core.rca) over the anomaly's cluster around its window, on request.

The work is bounded whatever the tenant stores, so no request can be made expensive:

- the window: from ``LEAD`` before the anomaly to ``LEAD`` after it, at most
  ``MAX_WINDOW``, plus ``BASELINE`` of history before it;
- the series: at most ``settings.FLEETWATCH_RCA_MAX_SERIES`` of the cluster (the
  anomaly's own series, then its node's, then those with an anomaly overlapping the
  window, then the rest by id); raw points, one batched read;
- the requests: the endpoint's own per-tenant rate (``FLEETWATCH_ANALYSIS_RATE``), and
  an answer is cached for ``CACHE_SECONDS`` per anomaly version.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Case, Exists, IntegerField, OuterRef, Value, When

from analytics.core.rca.analysis import analyse_window
from analytics.core.rca.hint import GroupMember, RootCauseHint
from analytics.models import Series
from analytics.store.read import get_metric_series_batch
from results.models import Anomaly
from tenants.models import Tenant

LEAD = timedelta(hours=1)
MAX_WINDOW = timedelta(hours=6)
BASELINE = timedelta(hours=2)
CACHE_SECONDS = 300


def analysis_series(tenant: Tenant, cluster_id: int, start: datetime, end: datetime, series_first: Collection[int],
                    nodes_first: Collection[int]) -> list[int]:
    """Ids of the cluster's series to analyse, the most relevant first (``series_first``,
    then the series of ``nodes_first``, then those with an anomaly overlapping the
    window, then the rest by id), at most the configured cap."""
    overlapping = Anomaly.objects.for_tenant(tenant).filter(series=OuterRef("pk"), window_end__gt=start, window_start__lt=end)
    priority = Case(
        When(pk__in=list(series_first), then=Value(0)),
        When(node_id__in=list(nodes_first), then=Value(1)),
        When(Exists(overlapping), then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    rows = (Series.objects.for_tenant(tenant).filter(cluster_id=cluster_id)
            .annotate(priority=priority).order_by("priority", "pk").values_list("pk", flat=True))
    return list(rows[: settings.FLEETWATCH_RCA_MAX_SERIES])


def analysis_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window analysed around ``[start, end)``: ``LEAD`` either side, at most ``MAX_WINDOW``."""
    first = start - LEAD
    return first, min(end + LEAD, first + MAX_WINDOW)


def related(tenant: Tenant, anomaly: Anomaly) -> dict[str, Any]:
    """The answer of ``GET anomalies/{id}/related`` (JSON-ready), cached per anomaly version."""
    key = f"rca:related:{tenant.pk}:{anomaly.pk}:{anomaly.updated_at.timestamp()}"
    answer = cache.get(key)
    if answer is None:
        answer = _related(tenant, anomaly)
        cache.set(key, answer, CACHE_SECONDS)
    return answer


def _related(tenant: Tenant, anomaly: Anomaly) -> dict[str, Any]:
    start, end = analysis_window(anomaly.window_start, anomaly.window_end)
    ids = analysis_series(tenant, anomaly.cluster_id, start, end, [anomaly.series_id], [anomaly.node_id])
    series = get_metric_series_batch(tenant.pk, ids, start - BASELINE, end)
    answer: dict[str, Any] = {
        "anomaly": anomaly.pk, "series": anomaly.series_id, "node": anomaly.node.name, "metric": anomaly.metric_name,
        "window": {"start": start.isoformat(), "end": end.isoformat()}, "series_analysed": 0, "moved": False,
        "onset": None, "related": [], "origin": None, "confidence": 0.0,
        "text": "No points in this window to analyse.",
    }
    if not any(len(s) > 1 for s in series):
        return answer
    series_ids = {s.key: int(s.metadata["series_id"]) for s in series}
    focus = next(key for key, sid in series_ids.items() if sid == anomaly.series_id)
    hint = analyse_window(series, start, end, focus=focus)
    moved = next((m for m in hint.moved if m.key == focus), None)
    group = hint.group_of(focus)
    if moved is None or group is None:
        return answer | {"series_analysed": hint.analysed,
                         "text": "This series shows no clear change in the window; nothing to relate it to."}
    return answer | {
        "series_analysed": hint.analysed,
        "moved": True,
        "onset": moved.onset.isoformat(),
        "related": [_member(m, series_ids, moved.onset) for m in group.members if m.moved.key != focus],
        "origin": _origin(hint, series_ids),
        "confidence": round(hint.confidence, 3),
        "text": hint.text,
    }


def _member(member: GroupMember, series_ids: dict, focus_onset: datetime) -> dict[str, Any]:
    m = member.moved
    return {
        "series": series_ids[m.key], "node_id": m.key[2], "node": m.node, "metric": m.metric,
        "onset": m.onset.isoformat(), "lag_seconds": (m.onset - focus_onset).total_seconds(),
        "direction": m.direction.value, "peak_sigma": round(m.peak_sigma, 2), "correlation": round(member.correlation, 3),
    }


def _origin(hint: RootCauseHint, series_ids: dict) -> dict[str, Any] | None:
    if hint.origin is None:
        return None
    m = hint.origin.moved
    return {"series": series_ids[m.key], "node_id": m.key[2], "node": m.node, "metric": m.metric,
            "onset": m.onset.isoformat(), "lead_seconds": hint.origin.lead_seconds,
            "confidence": round(hint.origin.confidence, 3), "evidence": hint.origin.evidence}
