"""Silences hold back exactly the incidents they match, only between start and end, and
what they held back is sent when they end if the incident still fires; rules pick the
incidents and channels; a tenant with no rule gets its plan's default."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from results.notifications import matching, upkeep
from results.notifications.models import AlertRule, Channel, Notification, Silence
from tenants.scoping import all_tenants, tenant_scope
from tests.notifications.fixtures import STARTED, channel, facts, notifications, record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
PENDING, SILENCED, SUPPRESSED = Notification.Status.PENDING, Notification.Status.SILENCED, Notification.Status.SUPPRESSED


def silence(tenant, matchers, starts, ends) -> Silence:
    with tenant_scope(tenant):
        return Silence.objects.create(tenant=tenant, matchers=matchers, starts_at=starts, ends_at=ends)


def status_of(tenant, incident_id) -> list[str]:
    return [n.status for n in notifications(tenant, incident_id=incident_id)]


def test_a_silence_holds_back_exactly_the_matching_incidents(tenant_a):
    now = timezone.now()
    channel(tenant_a, url="http://127.0.0.1:9/hook")
    silence(tenant_a, {"cluster": "prod-*", "node": "db-*"}, now - timedelta(hours=1), now + timedelta(hours=1))
    silence(tenant_a, {"node": "web-*"}, now + timedelta(hours=1), now + timedelta(hours=2))  # not yet
    silence(tenant_a, {"cluster": "staging"}, now - timedelta(hours=2), now - timedelta(hours=1))  # over
    record(tenant_a, facts(1, cluster="prod-eu", node="db-1"))
    record(tenant_a, facts(2, cluster="prod-eu", node="web-1"))
    record(tenant_a, facts(3, cluster="staging", node="db-1"))
    record(tenant_a, facts(4, cluster="prod-us", node="db-7", metric="memory_used"))
    assert [status_of(tenant_a, i) for i in (1, 2, 3, 4)] == [[SILENCED], [PENDING], [PENDING], [SILENCED]]


def test_a_silence_applies_from_its_start_until_its_end_exclusive():
    start = STARTED
    held = Silence(matchers={"severity": "crit*"}, starts_at=start, ends_at=start + timedelta(hours=1))
    incident = facts()
    assert not matching.silence_matches(held, incident, start - timedelta(microseconds=1))
    assert matching.silence_matches(held, incident, start)
    assert matching.silence_matches(held, incident, start + timedelta(minutes=59, seconds=59))
    assert not matching.silence_matches(held, incident, start + timedelta(hours=1))
    assert not matching.silence_matches(held, facts(severity="warning"), start)


def test_when_a_silence_ends_a_still_open_incident_is_notified_and_a_resolved_one_is_not(tenant_a):
    now = timezone.now()
    channel(tenant_a, url="http://127.0.0.1:9/hook")
    held = silence(tenant_a, {"cluster": "prod"}, now - timedelta(minutes=5), now + timedelta(minutes=5))
    record(tenant_a, facts(1))
    record(tenant_a, facts(1, "updated"))
    record(tenant_a, facts(2))
    record(tenant_a, facts(2, "resolved", resolved=True))
    with all_tenants("test"):
        assert upkeep.release_ended_silences(now) == []  # still on
        released = upkeep.release_ended_silences(held.ends_at)
    assert [(t, i) for t, _, i in released] == [(tenant_a.pk, 1)]
    assert status_of(tenant_a, 1) == [SUPPRESSED, PENDING]  # the latest news goes out, once
    assert status_of(tenant_a, 2) == [SUPPRESSED, SUPPRESSED]
    with all_tenants("test"):
        assert upkeep.release_ended_silences(held.ends_at + timedelta(minutes=1)) == []


def test_rules_pick_incidents_and_channels(tenant_a):
    with tenant_scope(tenant_a):
        db_pages = Channel.objects.create(tenant=tenant_a, name="db", kind="webhook", url="http://127.0.0.1:9/db")
        everything = Channel.objects.create(tenant=tenant_a, name="all", kind="webhook", url="http://127.0.0.1:9/all")
        Channel.objects.create(tenant=tenant_a, name="unused", kind="webhook", url="http://127.0.0.1:9/unused")
        strict = AlertRule.objects.create(tenant=tenant_a, name="db", min_peak_score=0.9, min_duration_seconds=600,
                                          clusters=["prod*"], nodes=["db-*"], metrics=["cpu_*"])
        strict.channels.add(db_pages)
        AlertRule.objects.create(tenant=tenant_a, name="all", min_peak_score=0.5).channels.add(everything)
    assert {n.channel.name for n in record(tenant_a, facts(1, node="db-1"))} == {"db", "all"}  # started long ago
    assert {n.channel.name for n in record(tenant_a, facts(2, node="web-1"))} == {"all"}
    assert {n.channel.name for n in record(tenant_a, facts(3, node="db-1", metric="disk_io"))} == {"all"}
    assert {n.channel.name for n in record(tenant_a, facts(4, node="db-1", score=0.6))} == {"all"}
    assert record(tenant_a, facts(5, score=0.4)) == []


def test_min_duration_counts_from_the_incidents_start():
    rule = AlertRule(min_peak_score=0, min_duration_seconds=600, clusters=[], nodes=[], metrics=[])
    assert not matching.rule_matches(rule, facts(), STARTED + timedelta(minutes=9))
    assert matching.rule_matches(rule, facts(), STARTED + timedelta(minutes=10))


def test_a_resolve_reaches_the_channels_told_before_even_if_no_rule_matches_now(tenant_a):
    made = channel(tenant_a, url="http://127.0.0.1:9/hook")
    record(tenant_a, facts(1))
    with tenant_scope(tenant_a):
        AlertRule.objects.update(min_peak_score=0.99)
    assert [n.channel for n in record(tenant_a, facts(1, "resolved", resolved=True))] == [made]


def test_a_new_tenant_is_notified_by_its_plans_default_rule(tenant_a, owner):
    get_user_model().objects.filter(pk=owner.pk).update(email="owner@example.com")
    assert record(tenant_a, facts(1, score=tenant_a.plan.default_alert_min_score - 0.01)) == []
    sent = record(tenant_a, facts(2, score=0.99))
    assert [(n.channel.kind, n.channel.recipients) for n in sent] == [("email", ["owner@example.com"])]


def one_open_and_one_resolved_incident_told(tenant):
    """Incident 1 open, incident 2 opened then resolved, every notification sent: when."""
    record(tenant, facts(1))
    record(tenant, facts(2))
    record(tenant, facts(2, "resolved", resolved=True))
    sent_at = timezone.now()
    with tenant_scope(tenant):
        Notification.objects.update(status=Notification.Status.SENT, sent_at=sent_at)
    return sent_at


def test_an_open_incident_is_reminded_after_the_rules_interval_and_a_resolved_one_is_not(tenant_a):
    made = channel(tenant_a, url="http://127.0.0.1:9/hook")
    with tenant_scope(tenant_a):
        AlertRule.objects.update(renotify_minutes=60)
    sent_at = one_open_and_one_resolved_incident_told(tenant_a)
    with all_tenants("test"):
        assert upkeep.remind_while_open(sent_at + timedelta(minutes=59)) == []
        assert upkeep.remind_while_open(sent_at + timedelta(minutes=60)) == [(tenant_a.pk, made.pk, 1)]
        assert upkeep.remind_while_open(sent_at + timedelta(minutes=61)) == []  # the reminder is not sent yet
    assert [n.event for n in notifications(tenant_a, incident_id=1)] == ["opened", "reminder"]


def test_a_firing_alert_is_posted_to_alertmanager_again_before_it_forgets_it(tenant_a, settings):
    settings.FLEETWATCH_ALERTMANAGER_REPOST_SECONDS = 120
    made = channel(tenant_a, "alertmanager", url="http://127.0.0.1:9")
    sent_at = one_open_and_one_resolved_incident_told(tenant_a)
    with all_tenants("test"):
        assert upkeep.repost_firing_alerts(sent_at + timedelta(seconds=119)) == []
        assert upkeep.repost_firing_alerts(sent_at + timedelta(seconds=121)) == [(tenant_a.pk, made.pk, 1)]
    assert [n.event for n in notifications(tenant_a, incident_id=1)] == ["opened", "repost"]
    assert [n.event for n in notifications(tenant_a, incident_id=2)] == ["opened", "resolved"]
