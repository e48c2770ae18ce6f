"""The incidents' lifecycle hook writes the notification outbox: ``incident_changed`` is sent inside the
transaction that changed the incident, so its notifications commit or roll back with it
(registered in ``ResultsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from results.incidents.signals import RESOLVED
from results.models import Incident
from results.notifications import outbox
from results.notifications.facts import IncidentFacts
from tenants.models import Node
from tenants.scoping import tenant_scope

# Severity from the peak score, as Alertmanager routes expect a severity label.
SEVERITIES = ((0.9, "critical"), (0.7, "warning"))


def severity(incident: Incident) -> str:
    if incident.kind == Incident.Kind.NO_DATA:
        return "warning"
    return next((name for floor, name in SEVERITIES if incident.peak_score >= floor), "info")


def node_name(incident: Incident) -> str:
    """The one node of the incident, or "" when it spans several nodes of its cluster."""
    if incident.node is not None:
        return incident.node.name
    node_ids = list(incident.node_ids or [])
    if len(node_ids) != 1:
        return ""
    return Node.objects.for_tenant(incident.tenant_id).filter(pk=node_ids[0]).values_list("name", flat=True).first() or ""


def facts_of(incident: Incident, event: str) -> IncidentFacts:
    resolved = event == RESOLVED or incident.state == Incident.State.RESOLVED
    origin = incident.origin.get("summary", "") if isinstance(incident.origin, dict) else ""
    return IncidentFacts(
        incident_id=incident.pk, event=event, cluster=incident.cluster.name, node=node_name(incident), severity=severity(incident),
        peak_score=float(incident.peak_score), started_at=incident.started_at, summary=incident.summary or f"incident {incident.pk}",
        explanation=origin, metrics=tuple(incident.metrics or ()),
        resolved_at=(incident.resolved_at or incident.ended_at or incident.started_at) if resolved else None,
    )


def incident_changed(sender: Any, incident: Incident, event: str, **kwargs: Any) -> None:
    with tenant_scope(incident.tenant_id):  # the pipeline may call with no scope (it names the tenant itself)
        outbox.record(incident.tenant, facts_of(incident, event))
