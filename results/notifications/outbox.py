"""Writing notifications: ``record`` runs inside the transaction that opens, updates or
resolves an incident, so the outbox rows commit (or roll back) with the incident; the
delivery tasks are enqueued only after that commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from celery import current_app
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from results.notifications import matching
from results.notifications.facts import IncidentFacts
from results.notifications.models import AlertRule, Channel, Notification, Silence
from tenants.models import Membership, Tenant

DEFAULT_CHANNEL_NAME = "Owners (default)"
TEST_INCIDENT_ID = 0  # test notifications are ordered on their own
DELIVER_TASK = "results.notifications.deliver"


@dataclass
class DefaultRule:
    """The plan's rule for a tenant with no rule of its own: every channel it has, or its
    owners' e-mail when it has none, for incidents at or above the plan's score."""

    min_peak_score: float
    min_duration_seconds: int = 0
    clusters: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)


def _owners_channel(tenant: Tenant) -> list[Channel]:
    emails = sorted(set(Membership.objects.for_tenant(tenant).filter(role=Membership.Role.OWNER)
                        .exclude(user__email="").values_list("user__email", flat=True)))
    if not emails:
        return []
    channel, _ = Channel.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, name=DEFAULT_CHANNEL_NAME, kind=Channel.Kind.EMAIL,
        defaults={"recipients": emails[: tenant.plan.max_email_recipients]})
    return [channel]


def channels_for(tenant: Tenant, facts: IncidentFacts, now: datetime) -> list[Channel]:
    """The enabled channels of every enabled rule that matches, in id order."""
    rules = list(AlertRule.objects.for_tenant(tenant).prefetch_related("channels"))
    if not rules:
        if not matching.rule_matches(DefaultRule(tenant.plan.default_alert_min_score), facts, now):
            return []
        channels = list(Channel.objects.for_tenant(tenant).filter(enabled=True).order_by("pk"))
        return channels or _owners_channel(tenant)
    matched = [rule for rule in rules if rule.enabled and matching.rule_matches(rule, facts, now)]
    chosen = {c.pk: c for rule in matched for c in rule.channels.all() if c.enabled}
    return [chosen[pk] for pk in sorted(chosen)]


def active_silence(tenant: Tenant, facts: IncidentFacts, now: datetime) -> Silence | None:
    """The matching silence that lasts longest, if any."""
    silences = Silence.objects.for_tenant(tenant).filter(starts_at__lte=now, ends_at__gt=now).order_by("-ends_at")
    return next((s for s in silences if matching.silence_matches(s, facts, now)), None)


def add(tenant: Tenant, channel: Channel, facts: IncidentFacts, silence: Silence | None = None) -> Notification:
    """One outbox row, next in its channel's and incident's order; delivered after commit."""
    last = Notification.objects.for_tenant(tenant).filter(channel=channel, incident_id=facts.incident_id).aggregate(
        last=Max("sequence"))["last"]
    notification = Notification.objects.for_tenant(tenant).create(
        tenant=tenant, channel=channel, incident_id=facts.incident_id, sequence=(last or 0) + 1, event=facts.event,
        facts=facts.to_json(), status=Notification.Status.SILENCED if silence else Notification.Status.PENDING, silence=silence)
    if silence is None:
        enqueue_after_commit(tenant.pk, channel.pk, facts.incident_id)
    return notification


def record(tenant: Tenant, facts: IncidentFacts) -> list[Notification]:
    """The incident hook's entry point: call it inside the incident's transaction."""
    now = timezone.now()
    channels = {c.pk: c for c in channels_for(tenant, facts, now)}
    if not facts.firing:  # a resolve also reaches every channel told about the incident before
        told = Notification.objects.for_tenant(tenant).filter(incident_id=facts.incident_id).exclude(
            Q(status=Notification.Status.SILENCED) | Q(status=Notification.Status.SUPPRESSED)).values_list("channel_id", flat=True)
        channels.update({c.pk: c for c in Channel.objects.for_tenant(tenant).filter(pk__in=told, enabled=True)})
    silence = active_silence(tenant, facts, now)
    return [add(tenant, channels[pk], facts, silence) for pk in sorted(channels)]


def enqueue_after_commit(tenant_id: int, channel_id: int, incident_id: int) -> None:
    """Deliver the pair's notifications once the transaction commits. The task is found by
    name in the app's registry (results.tasks imports this module, not the reverse)."""
    kwargs = {"tenant_id": tenant_id, "channel_id": channel_id, "incident_id": incident_id}
    transaction.on_commit(lambda: current_app.tasks[DELIVER_TASK].delay(**kwargs))
