"""The dashboard's incident pages: the list (open first) and one incident (its summary,
affected nodes, who acknowledged, the origin hint, the member anomalies, the timeline
and one chart per affected metric, drawn by static/js/charts.js with the member windows
shaded). Owners and members may acknowledge, resolve and reopen; viewers only read."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from analytics.models import Series
from analytics.store.read import get_metric_series_batch
from results.filters import IncidentFilter
from results.incidents import lifecycle
from results.incidents import origin as origin_hint
from results.incidents.api import OPEN_FIRST
from results.models import Anomaly, Incident, IncidentEvent, IncidentMember
from results.views import PAGE_SIZE, node_url, resolution_for, score_band
from tenants.models import Cluster, Membership, Node
from tenants.views import tenant_page

CHART_MARGIN = timedelta(hours=1)  # drawn before the incident's start and after its end
MAX_CHART_SPAN = timedelta(days=2)
MAX_LINES = 8  # nodes drawn per metric chart
ACTIONS = ("acknowledge", "resolve", "reopen")


def can_act(request) -> bool:
    return request.membership is not None and request.membership.role in (Membership.Role.OWNER, Membership.Role.MEMBER)


@require_GET
@tenant_page
def incident_list(request):
    tenant = request.tenant
    queryset = (Incident.objects.for_tenant(tenant).select_related("cluster", "node")
                .annotate(resolved=OPEN_FIRST).order_by("resolved", "-started_at", "-pk"))
    filterset = IncidentFilter(request.GET, queryset=queryset)
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    for incident in page.object_list:
        incident.band = score_band(incident.peak_score if incident.kind == Incident.Kind.ANOMALY else None)
    return render(request, "dashboard/incidents.html", {
        "nav": "incidents", "page": page, "errors": filterset.errors, "params": request.GET,
        "states": Incident.State.values,
        "clusters": Cluster.objects.for_tenant(tenant).order_by("name").values_list("name", flat=True),
    })


def _charts(tenant, incident: Incident, members: list[Anomaly]) -> dict:
    """One chart per affected metric: the affected nodes' series around the incident."""
    end = min((incident.ended_at or incident.started_at) + CHART_MARGIN, incident.started_at + MAX_CHART_SPAN)
    start = incident.started_at - CHART_MARGIN
    resolution = resolution_for(end - start)
    series = (Series.objects.for_tenant(tenant).filter(node_id__in=incident.node_ids, metric_name__in=incident.metrics)
              .select_related("node").order_by("metric_name", "node__name"))
    by_metric: dict[str, list[Series]] = {}
    for s in series:
        drawn = by_metric.setdefault(s.metric_name, [])
        if len(drawn) < MAX_LINES:
            drawn.append(s)
    ids = [s.pk for drawn in by_metric.values() for s in drawn]
    data = {int(d.metadata["series_id"]): d for d in get_metric_series_batch(tenant.pk, ids, start, end, resolution)} if ids else {}
    charts = []
    for metric in incident.metrics:
        lines = []
        for s in by_metric.get(metric, []):
            d = data.get(s.pk)
            t = (d.timestamps.to_numpy(dtype=np.int64) // 1_000_000_000).tolist() if d is not None else []
            lines.append({"label": s.node.name, "t": t, "v": [float(f"{v:.6g}") for v in d.values.tolist()] if d is not None else []})
        windows = [{"start": int(a.window_start.timestamp()), "end": int(a.window_end.timestamp()), "label": a.label,
                    "score": round(a.score, 3), "id": a.pk, "node": a.node.name} for a in members if a.metric_name == metric]
        charts.append({"metric": metric, "unit": "", "lines": lines, "t": lines[0]["t"] if lines else [],
                       "v": lines[0]["v"] if lines else [], "windows": windows})
    return {"start": int(start.timestamp()), "end": int(end.timestamp()), "resolution": resolution, "series": charts}


@require_GET
@tenant_page
def incident_detail(request, incident_id: int):
    tenant = request.tenant
    incident = get_object_or_404(Incident.objects.for_tenant(tenant).select_related("cluster", "node"), pk=incident_id)
    member_ids = IncidentMember.objects.for_tenant(tenant).filter(incident=incident).values("anomaly_id")
    members = list(Anomaly.objects.for_tenant(tenant).filter(pk__in=member_ids).select_related("node").order_by("window_start", "pk"))
    for anomaly in members:
        anomaly.band = score_band(anomaly.score)
    nodes = list(Node.objects.for_tenant(tenant).filter(pk__in=incident.node_ids).order_by("name"))
    for node in nodes:
        node.url = node_url(node.pk, incident.started_at - CHART_MARGIN, (incident.ended_at or incident.started_at) + CHART_MARGIN)
    chart_data = _charts(tenant, incident, members)
    return render(request, "dashboard/incident.html", {
        "nav": "incidents", "incident": incident, "band": score_band(incident.peak_score), "members": members,
        "nodes": nodes, "charts": chart_data["series"], "chart_data": chart_data,
        "origin": origin_hint.origin(tenant, incident),
        "timeline": IncidentEvent.objects.for_tenant(tenant).filter(incident=incident).order_by("at", "pk"),
        "can_act": can_act(request),
    })


@require_POST
@tenant_page
def incident_action(request, incident_id: int):
    incident = get_object_or_404(Incident.objects.for_tenant(request.tenant), pk=incident_id)
    action, actor = request.POST.get("action", ""), request.user.get_username()
    if action not in ACTIONS:
        messages.error(request, f"action: expected one of {', '.join(ACTIONS)}")
        return redirect("dashboard:incident", incident_id=incident.pk)
    if not can_act(request):
        raise PermissionDenied("owners and members may act on incidents; viewers only read")
    try:
        if action == "acknowledge":
            lifecycle.acknowledge(incident, actor, request.user)
        elif action == "resolve":
            lifecycle.resolve(incident, actor)
        else:
            lifecycle.reopen(incident, actor)
    except lifecycle.TransitionError as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:incident", incident_id=incident.pk)
