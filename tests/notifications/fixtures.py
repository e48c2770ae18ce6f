"""Building notification rows and incident events for the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction

from results.notifications import crypto, outbox
from results.notifications.facts import IncidentFacts
from results.notifications.models import AlertRule, Channel, Notification
from tenants.scoping import tenant_scope

STARTED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def facts(incident_id: int = 1, event: str = "opened", *, cluster: str = "prod", node: str = "db-1", metric: str = "cpu_usage",
          severity: str = "critical", score: float = 0.95, resolved: bool = False) -> IncidentFacts:
    return IncidentFacts(
        incident_id=incident_id, event=event, cluster=cluster, node=node, severity=severity, peak_score=score,
        started_at=STARTED, summary=f"{metric} spike on {cluster}/{node}", explanation=f"{metric} rose far above its usual range",
        metrics=(metric,), resolved_at=STARTED + timedelta(minutes=30) if resolved else None,
    )


def channel(tenant, kind: str = "webhook", *, url: str = "", secret: str = "", **fields) -> Channel:
    with tenant_scope(tenant):
        made = Channel.objects.create(tenant=tenant, name=f"{kind} channel", kind=kind, url=url,
                                      secret_encrypted=crypto.encrypt(secret), **fields)
        rule = AlertRule.objects.create(tenant=tenant, name=f"all to {made.name}")
        rule.channels.add(made)
    return made


def record(tenant, incident_facts: IncidentFacts) -> list[Notification]:
    """As the incident hook does: inside the incident's transaction."""
    with tenant_scope(tenant), transaction.atomic():
        return outbox.record(tenant, incident_facts)


def notifications(tenant, **filters) -> list[Notification]:
    with tenant_scope(tenant):
        return list(Notification.objects.filter(**filters).order_by("channel_id", "incident_id", "sequence"))
