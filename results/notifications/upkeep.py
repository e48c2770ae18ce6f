"""The periodic sweep over every tenant's outbox (a system task, ``all_tenants``):
releases notifications whose silence has ended, posts firing alerts to Alertmanager
again before it forgets them, reminds of incidents still open (the rules' re-notify
interval), and lists the pairs with notifications due, so a delivery message lost with
a worker or the broker is sent anyway."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q

from results.notifications import outbox
from results.notifications.facts import IncidentFacts
from results.notifications.models import AlertRule, Channel, Notification

Pair = tuple[int, int, int]  # tenant, channel, incident


def _latest_per_pair(queryset) -> list[Notification]:
    heads = queryset.values("channel_id", "incident_id").annotate(last=Max("sequence"))
    keys = Q()
    for head in heads:
        keys |= Q(channel_id=head["channel_id"], incident_id=head["incident_id"], sequence=head["last"])
    return list(Notification.objects.unscoped().filter(keys).select_related("tenant", "channel")) if heads else []


def release_ended_silences(now: datetime) -> list[Pair]:
    """A pair whose latest notification was silenced by a silence now over: sent if the
    incident still fires, else kept as a record that nothing is owed."""
    ended = Notification.objects.unscoped().filter(Q(silence__isnull=True) | Q(silence__ends_at__lte=now),
                                                   status=Notification.Status.SILENCED)
    released: list[Pair] = []
    for latest in _latest_per_pair(ended):
        pair = Notification.objects.unscoped().filter(channel_id=latest.channel_id, incident_id=latest.incident_id,
                                                      status=Notification.Status.SILENCED)
        newer = Notification.objects.unscoped().filter(channel_id=latest.channel_id, incident_id=latest.incident_id,
                                                       sequence__gt=latest.sequence)
        if IncidentFacts.from_json(latest.facts).firing and not newer.exists():
            pair.exclude(pk=latest.pk).update(status=Notification.Status.SUPPRESSED)
            pair.filter(pk=latest.pk).update(status=Notification.Status.PENDING, next_attempt_at=now)
            released.append((latest.tenant_id, latest.channel_id, latest.incident_id))
        else:
            pair.update(status=Notification.Status.SUPPRESSED)
    return released


def repost_firing_alerts(now: datetime) -> list[Pair]:
    """Alertmanager drops an alert with no endsAt after its resolve_timeout: post again."""
    stale = now - timedelta(seconds=settings.FLEETWATCH_ALERTMANAGER_REPOST_SECONDS)
    alerts = Notification.objects.unscoped().filter(channel__kind=Channel.Kind.ALERTMANAGER, channel__enabled=True).exclude(
        incident_id=outbox.TEST_INCIDENT_ID)
    reposted: list[Pair] = []
    for latest in _latest_per_pair(alerts):
        facts = IncidentFacts.from_json(latest.facts)
        if latest.status == Notification.Status.SENT and facts.firing and latest.sent_at and latest.sent_at < stale:
            again = IncidentFacts.from_json({**latest.facts, "event": "repost"})
            outbox.add(latest.tenant, latest.channel, again)
            reposted.append((latest.tenant_id, latest.channel_id, latest.incident_id))
    return reposted


def remind_while_open(now: datetime) -> list[Pair]:
    """A firing incident whose last notification to a channel is older than the shortest
    re-notify interval of the enabled rules sending there: a reminder."""
    intervals: dict[int, int] = {}
    for channel_id, minutes in AlertRule.objects.unscoped().filter(enabled=True, renotify_minutes__gt=0).values_list(
            "channels", "renotify_minutes"):
        if channel_id is not None:
            intervals[channel_id] = min(minutes, intervals.get(channel_id, minutes))
    told = Notification.objects.unscoped().filter(channel_id__in=intervals, channel__enabled=True).exclude(
        incident_id=outbox.TEST_INCIDENT_ID)
    reminded: list[Pair] = []
    for latest in _latest_per_pair(told):
        facts = IncidentFacts.from_json(latest.facts)
        due = now - timedelta(minutes=intervals[latest.channel_id])
        if latest.status == Notification.Status.SENT and facts.firing and latest.sent_at and latest.sent_at <= due:
            outbox.add(latest.tenant, latest.channel, IncidentFacts.from_json({**latest.facts, "event": "reminder"}))
            reminded.append((latest.tenant_id, latest.channel_id, latest.incident_id))
    return reminded


def due_pairs(now: datetime) -> list[Pair]:
    due = Notification.objects.unscoped().filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
    return sorted(set(due.values_list("tenant_id", "channel_id", "incident_id")))
