"""An incident's lifecycle: open -> acknowledged -> resolved, and reopened. Every change
writes a timeline event and sends ``incident_changed`` in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from results.incidents import signals
from results.models import Incident, IncidentEvent

State = Incident.State
AUTO = "auto"  # the actor of the pipeline's changes


class TransitionError(ValueError):
    """The incident's state does not allow the change (the API answers 409)."""


def record(incident: Incident, event: str, actor: str, detail: dict | None = None, at: datetime | None = None) -> None:
    """Write the timeline event and fire the hook (inside the caller's transaction)."""
    IncidentEvent.objects.for_tenant(incident.tenant_id).create(
        tenant_id=incident.tenant_id, incident=incident, event=event, actor=actor, detail=detail or {},
        at=at or timezone.now(),
    )
    signals.incident_changed.send(sender=Incident, incident=incident, event=event, actor=actor)


def _locked(incident: Incident) -> Incident:
    return Incident.objects.for_tenant(incident.tenant_id).select_for_update().get(pk=incident.pk)


def acknowledge(incident: Incident, actor: str, user=None) -> Incident:
    with transaction.atomic():
        incident = _locked(incident)
        if incident.state != State.OPEN:
            raise TransitionError(f"state: an incident can be acknowledged only while open (it is {incident.state})")
        now = timezone.now()
        incident.state, incident.acknowledged_at, incident.updated_at = State.ACKNOWLEDGED, now, now
        incident.acknowledged_by, incident.acknowledged_by_label = user, actor
        incident.save(update_fields=["state", "acknowledged_at", "acknowledged_by", "acknowledged_by_label", "updated_at"])
        record(incident, signals.ACKNOWLEDGED, actor)
    return incident


def resolve(incident: Incident, actor: str, at: datetime | None = None) -> Incident:
    """Resolve an active incident; ``at``: when (the pipeline gives the end of the quiet period)."""
    with transaction.atomic():
        incident = _locked(incident)
        if not incident.is_active:
            raise TransitionError(f"state: an incident can be resolved only while open or acknowledged (it is {incident.state})")
        incident.state, incident.resolved_at = State.RESOLVED, at or timezone.now()
        incident.resolved_by_label, incident.updated_at = actor, timezone.now()
        incident.save(update_fields=["state", "resolved_at", "resolved_by_label", "updated_at"])
        record(incident, signals.RESOLVED, actor, {"resolved_at": incident.resolved_at.isoformat()})
    return incident


def reopen(incident: Incident, actor: str, detail: dict | None = None) -> Incident:
    """Open a resolved incident again (its acknowledgement is cleared: someone must take it again)."""
    with transaction.atomic():
        incident = _locked(incident)
        if incident.state != State.RESOLVED:
            raise TransitionError(f"state: only a resolved incident can be reopened (it is {incident.state})")
        incident.state, incident.resolved_at, incident.resolved_by_label = State.OPEN, None, ""
        incident.acknowledged_at, incident.acknowledged_by, incident.acknowledged_by_label = None, None, ""
        incident.reopened_count += 1
        incident.updated_at = timezone.now()
        incident.save()
        record(incident, signals.REOPENED, actor, detail)
    return incident
