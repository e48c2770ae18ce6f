"""What the pipeline runs after a detection run's aggregation (``results.tasks.finalize_run``):

1. group the anomalies of the run's range that belong to no incident yet
   (``grouping``): they join an incident (a resolved one within its quiet period
   reopens) or open new ones; incidents whose member episodes grew are refreshed;
2. resolve active incidents once every affected node has been analysed for the quiet
   period past the incident's end with no anomaly joining: "no data" is not recovery,
   since a silent node's watermark does not advance;
3. for a run up to the present: open a "no data" incident for each node that has gone
   stale (``analytics.health.is_stale``), resolve those whose node reports again.

Idempotent: a re-run of the same range finds its anomalies grouped already, and the
automatic resolution time is computed from the data (end + quiet period), so it changes
nothing and fires no event. Builders of one tenant are serialised by an advisory lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from analytics.health import is_stale, last_points
from analytics.models import Series
from config.pg import is_postgresql, raw_connection
from results.incidents import lifecycle, signals
from results.incidents.grouping import Group, Span, assign
from results.incidents.summary import anomaly_summary, no_data_summary
from results.models import Anomaly, Incident, IncidentMember
from tenants.models import Node, Tenant

INCIDENT_LOCK = 0x46570003  # advisory lock class for one tenant's incident builder; the tenant id is the second key
UNGROUPED_LOOKBACK = timedelta(days=1)
Kind, State = Incident.Kind, Incident.State


def settings_of(tenant: Tenant) -> tuple[timedelta, timedelta]:
    """The tenant's grouping window and quiet period."""
    return timedelta(minutes=tenant.incident_window_minutes), timedelta(minutes=tenant.incident_quiet_minutes)


def build_incidents(tenant_id: int, start: datetime, end: datetime, now: datetime | None = None) -> None:
    """Group, refresh and resolve incidents for anomalies in ``[start, end)``; with ``now``
    (a run up to the present) also the "no data" incidents."""
    tenant = Tenant.objects.get(pk=tenant_id)
    window, quiet = settings_of(tenant)
    with transaction.atomic():
        _lock(tenant_id)
        refreshed = _group_new(tenant, start, end, window, quiet)
        _refresh_active(tenant, exclude=refreshed)
        _auto_resolve(tenant, quiet)
        if now is not None:
            _no_data(tenant, now)


def _lock(tenant_id: int) -> None:
    if is_postgresql():
        with raw_connection().cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (INCIDENT_LOCK, tenant_id % 2**31))


def incidents(tenant: Tenant):
    return Incident.objects.for_tenant(tenant)


def _group_new(tenant: Tenant, start: datetime, end: datetime, window: timedelta, quiet: timedelta) -> set[int]:
    """Assign the range's ungrouped anomalies; return the ids of the incidents refreshed."""
    grouped = IncidentMember.objects.for_tenant(tenant).filter(anomaly_id=OuterRef("pk"))
    # a new anomaly lies in the run's period (an older start means an episode grouped when it began);
    # the bound on window_start keeps the read on the (tenant, -window_start) index, whatever the history
    earliest = start - window - UNGROUPED_LOOKBACK
    rows = (Anomaly.objects.for_tenant(tenant).filter(window_end__gte=start - window, window_start__lt=end,
                                                      window_start__gte=earliest)
            .exclude(Exists(grouped)).values_list("pk", "cluster_id", "node_id", "window_start", "window_end"))
    spans = [Span(*row) for row in rows]
    if not spans:
        return set()
    first, last = min(s.start for s in spans), max(s.end for s in spans)
    stored = incidents(tenant).filter(
        kind=Kind.ANOMALY, cluster_id__in={s.cluster_id for s in spans}, started_at__lte=last + window,
    ).filter(Q(state__in=Incident.ACTIVE) | Q(ended_at__gte=first - window) | Q(resolved_at__gte=first - quiet))
    by_id = {i.pk: i for i in stored}
    groups = [Group(i.cluster_id, i.started_at, i.ended_at or i.started_at, i.pk,
                    i.resolved_at if i.state == State.RESOLVED else None) for i in by_id.values()]
    refreshed = set()
    for group in assign(spans, groups, window, quiet):
        incident = by_id.get(group.incident_id) if group.incident_id else None
        grown = incident is not None and incident.is_active  # the other cases' event is opened or reopened
        if incident is None:
            incident = incidents(tenant).create(tenant=tenant, cluster_id=group.cluster_id, started_at=group.start,
                                                ended_at=group.end)
        elif incident.state == State.RESOLVED:
            incident = lifecycle.reopen(incident, lifecycle.AUTO, {"anomalies": [s.anomaly_id for s in group.added]})
        IncidentMember.objects.for_tenant(tenant).bulk_create([
            IncidentMember(tenant=tenant, incident=incident, anomaly_id=s.anomaly_id) for s in group.added
        ])
        _refresh(incident, new_members=grown)
        if group.incident_id is None:
            lifecycle.record(incident, signals.OPENED, lifecycle.AUTO, {"anomalies": len(group.added)})
        refreshed.add(incident.pk)
    return refreshed


def _refresh_active(tenant: Tenant, exclude: set[int]) -> None:
    """Member episodes continue across runs: an active incident's span and peak follow them."""
    for incident in incidents(tenant).filter(kind=Kind.ANOMALY, state__in=Incident.ACTIVE).exclude(pk__in=exclude):
        _refresh(incident, new_members=False)


def _refresh(incident: Incident, *, new_members: bool) -> None:
    """Recompute span, peak, nodes, metrics and summary from the members; save what
    changed; an ``updated`` event for new members or a higher peak."""
    members = list(
        Anomaly.objects.for_tenant(incident.tenant_id).filter(
            pk__in=IncidentMember.objects.for_tenant(incident.tenant_id).filter(incident=incident).values("anomaly_id")
        ).order_by("window_start", "pk").values_list(
            "window_start", "window_end", "score", "node_id", "node__name", "metric_name", "cluster__name", "explanation"
        )
    )
    if not members:
        return
    nodes: dict[int, str] = {}
    metrics: list[str] = []
    for _, _, _, node_id, node_name, metric, _, _ in members:
        nodes.setdefault(node_id, node_name)
        if metric not in metrics:
            metrics.append(metric)
    directions = {(m[7] or {}).get("direction", "") for m in members} - {""}
    started, ended = min(m[0] for m in members), max(m[1] for m in members)
    values = {
        "started_at": started, "ended_at": ended, "peak_score": max(m[2] for m in members),
        "node_ids": sorted(nodes), "metrics": metrics,
        "summary": anomaly_summary(members[0][6], list(nodes.values()), metrics, directions, started)[:300],
    }
    changed = [name for name, value in values.items() if getattr(incident, name) != value]
    if not changed and not new_members:
        return
    higher_peak = 0 < incident.peak_score < values["peak_score"]  # a new incident's first refresh is no "update"
    for name, value in values.items():
        setattr(incident, name, value)
    incident.updated_at = timezone.now()
    incident.save(update_fields=[*changed, "updated_at"])
    if new_members or higher_peak:
        lifecycle.record(incident, signals.UPDATED, lifecycle.AUTO,
                         {"peak_score": incident.peak_score, "nodes": len(nodes), "metrics": metrics})


def _auto_resolve(tenant: Tenant, quiet: timedelta) -> None:
    active = list(incidents(tenant).filter(kind=Kind.ANOMALY, state__in=Incident.ACTIVE, ended_at__isnull=False))
    if not active:
        return
    node_ids = {n for i in active for n in i.node_ids}
    observed = dict(Series.objects.for_tenant(tenant).filter(node_id__in=node_ids).values("node_id")
                    .annotate(until=Max("analysed_until")).values_list("node_id", "until"))
    for incident in active:
        quiet_until = incident.ended_at + quiet
        seen = [observed.get(n) for n in incident.node_ids]
        if seen and all(s is not None and s >= quiet_until for s in seen):
            lifecycle.resolve(incident, lifecycle.AUTO, at=quiet_until)


def _no_data(tenant: Tenant, now: datetime) -> None:
    """Open a "no data" incident per node gone stale (that had reported in the health
    lookback), resolve those whose node reports again."""
    last = {node: at for node, at in last_points(tenant, now).items() if at is not None}
    stale = {node for node, at in last.items() if is_stale(at, now)}
    silent = incidents(tenant).filter(kind=Kind.NO_DATA)
    active = {i.node_id: i for i in silent.filter(state__in=Incident.ACTIVE)}
    for node_id, incident in active.items():
        if node_id in last and node_id not in stale:  # reports again (silent past the lookback: still silent)
            lifecycle.resolve(incident, lifecycle.AUTO, at=now)
    new = stale - set(active)
    if not new:
        return
    already = set(silent.filter(node_id__in=new).values_list("node_id", "started_at"))  # silences resolved by hand
    for node in Node.objects.for_tenant(tenant).filter(pk__in=new).select_related("cluster").order_by("pk"):
        if (node.pk, last[node.pk]) in already:
            continue
        incident = incidents(tenant).create(
            tenant=tenant, kind=Kind.NO_DATA, cluster_id=node.cluster_id, node_id=node.pk, started_at=last[node.pk],
            node_ids=[node.pk], summary=no_data_summary(node.cluster.name, node.name, last[node.pk]),
        )
        lifecycle.record(incident, signals.OPENED, lifecycle.AUTO, {"last_point_at": last[node.pk].isoformat()})
