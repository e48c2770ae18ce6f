"""Grouping and the lifecycle over anomaly rows seeded directly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.health import STALE_AFTER
from analytics.models import NodeDailyCounter
from results.incidents import lifecycle, signals
from results.incidents.build import build_incidents
from results.models import Incident, IncidentEvent, IncidentMember
from tests.incidents.seed import T0, analysed_until, anomaly

pytestmark = pytest.mark.django_db
END = T0 + timedelta(hours=3)


def build(tenant, end=END):
    build_incidents(tenant.pk, T0 - timedelta(hours=1), end)


def incidents(tenant):
    return list(Incident.objects.for_tenant(tenant).order_by("started_at"))


def members(incident):
    return set(IncidentMember.objects.for_tenant(incident.tenant_id).filter(incident=incident).values_list("anomaly_id", flat=True))


@pytest.fixture
def events():
    seen = []

    def receiver(sender, incident, event, actor, **kwargs):
        seen.append((incident.pk, event, actor))

    signals.incident_changed.connect(receiver, sender=Incident)
    yield seen
    signals.incident_changed.disconnect(receiver, sender=Incident)


def test_a_cluster_event_on_three_nodes_is_one_incident_with_all_three(tenant_a, events):
    rows = [anomaly(tenant_a, "cluster-2", f"node-0{i}", metric, start_min=35 + 3 * i)
            for i in (1, 2, 3) for metric in ("network_in", "network_out")]
    rows.append(anomaly(tenant_a, "cluster-2", "node-02", "latency", start_min=40, score=0.97))
    build(tenant_a)
    [incident] = incidents(tenant_a)
    assert members(incident) == {r.pk for r in rows}
    assert len(incident.node_ids) == 3 and incident.state == Incident.State.OPEN
    assert incident.peak_score == 0.97
    assert incident.metrics == ["network_in", "network_out", "latency"]
    assert incident.summary == "cluster-2: 3 nodes (node-01, -02, -03), network_in/out and latency up since 08:38 UTC"
    assert events == [(incident.pk, signals.OPENED, lifecycle.AUTO)]


def test_two_unrelated_anomalies_on_different_clusters_are_two_incidents(tenant_a):
    a = anomaly(tenant_a, "cluster-1", "node-01", "cpu", start_min=30)
    b = anomaly(tenant_a, "cluster-2", "node-01", "cpu", start_min=31)
    build(tenant_a)
    first, second = incidents(tenant_a)
    assert (members(first), members(second)) == ({a.pk}, {b.pk})


def test_overlapping_anomalies_on_one_node_are_one_incident(tenant_a):
    rows = [anomaly(tenant_a, "c", "n1", "cpu", start_min=0, minutes=30), anomaly(tenant_a, "c", "n1", "disk_io", 20)]
    build(tenant_a)
    [incident] = incidents(tenant_a)
    assert members(incident) == {r.pk for r in rows}
    assert incident.summary.startswith("c/n1, cpu and disk_io up since 08:00")


def test_anomalies_further_apart_than_the_grouping_window_are_two_incidents(tenant_a):
    tenant_a.incident_window_minutes = 10
    tenant_a.save()
    anomaly(tenant_a, "c", "n1", "cpu", start_min=0, minutes=5)
    anomaly(tenant_a, "c", "n2", "cpu", start_min=16, minutes=5)  # 11 min after the first ended
    build(tenant_a)
    assert len(incidents(tenant_a)) == 2


def test_rebuilding_changes_nothing_and_fires_nothing(tenant_a, events):
    anomaly(tenant_a, "c", "n1", "cpu", start_min=0)
    build(tenant_a)
    before = [(i.pk, i.updated_at) for i in incidents(tenant_a)]
    events.clear()
    build(tenant_a)
    assert [(i.pk, i.updated_at) for i in incidents(tenant_a)] == before
    assert events == []


def test_a_later_anomaly_extends_the_open_incident(tenant_a, events):
    anomaly(tenant_a, "c", "n1", "cpu", start_min=0)
    build(tenant_a)
    late = anomaly(tenant_a, "c", "n2", "cpu", start_min=20, score=0.99)
    build(tenant_a)
    [incident] = incidents(tenant_a)
    assert late.pk in members(incident) and incident.peak_score == 0.99
    assert incident.ended_at == T0 + timedelta(minutes=30)
    assert [e for _, e, _ in events] == [signals.OPENED, signals.UPDATED]


def test_auto_resolve_waits_for_the_quiet_period_to_be_analysed_on_every_node(tenant_a, events):
    anomaly(tenant_a, "c", "n1", "cpu", start_min=0, minutes=10)  # ends 08:10, quiet 30 min: 08:40
    analysed_until(tenant_a, 39)
    build(tenant_a)
    assert incidents(tenant_a)[0].state == Incident.State.OPEN
    analysed_until(tenant_a, 40)
    build(tenant_a)
    [incident] = incidents(tenant_a)
    assert incident.state == Incident.State.RESOLVED and incident.resolved_by_label == lifecycle.AUTO
    assert incident.resolved_at == T0 + timedelta(minutes=40)
    assert events[-1] == (incident.pk, signals.RESOLVED, lifecycle.AUTO)


def test_a_flare_up_within_the_quiet_period_reopens_instead_of_a_twin(tenant_a, events):
    anomaly(tenant_a, "c", "n1", "cpu", start_min=0, minutes=10)
    analysed_until(tenant_a, 40)
    build(tenant_a)
    again = anomaly(tenant_a, "c", "n1", "cpu", start_min=60)  # 20 min after the resolution, quiet is 30
    build(tenant_a)
    [incident] = incidents(tenant_a)
    assert incident.state == Incident.State.OPEN and incident.reopened_count == 1
    assert again.pk in members(incident)
    assert [e for _, e, _ in events][-2:] == [signals.RESOLVED, signals.REOPENED]


def test_a_flare_up_after_the_quiet_period_is_a_new_incident(tenant_a):
    anomaly(tenant_a, "c", "n1", "cpu", start_min=0, minutes=10)
    analysed_until(tenant_a, 40)
    build(tenant_a)
    anomaly(tenant_a, "c", "n1", "cpu", start_min=71)  # 31 min after the resolution
    build(tenant_a)
    assert [i.state for i in incidents(tenant_a)] == [Incident.State.RESOLVED, Incident.State.OPEN]


def test_hand_transitions_follow_the_lifecycle(tenant_a, owner, events):
    anomaly(tenant_a, "c", "n1", "cpu", start_min=0)
    build(tenant_a)
    [incident] = incidents(tenant_a)
    incident = lifecycle.acknowledge(incident, "alice", owner)
    assert (incident.state, incident.acknowledged_by, incident.acknowledged_by_label) == ("acknowledged", owner, "alice")
    with pytest.raises(lifecycle.TransitionError, match="only while open"):
        lifecycle.acknowledge(incident, "alice", owner)
    incident = lifecycle.resolve(incident, "alice")
    with pytest.raises(lifecycle.TransitionError, match="only while open or acknowledged"):
        lifecycle.resolve(incident, "alice")
    incident = lifecycle.reopen(incident, "alice")
    assert incident.state == "open" and incident.acknowledged_by is None
    assert [e for _, e, _ in events][1:] == [signals.ACKNOWLEDGED, signals.RESOLVED, signals.REOPENED]
    timeline = list(IncidentEvent.objects.for_tenant(tenant_a).filter(incident=incident).order_by("at", "pk")
                    .values_list("event", flat=True))
    assert timeline == [signals.OPENED, signals.ACKNOWLEDGED, signals.RESOLVED, signals.REOPENED]


def test_a_stale_node_opens_one_no_data_incident_which_resolves_when_it_reports_again(tenant_a, events):
    s = anomaly(tenant_a, "c", "n1", "cpu", start_min=0).series
    last = T0 + timedelta(minutes=10)
    counter = NodeDailyCounter.objects.unscoped().create(tenant=tenant_a, node_id=s.node_id, day=T0.date(), last_point_at=last)
    build_incidents(tenant_a.pk, T0, last + STALE_AFTER, now=last + STALE_AFTER)  # not stale yet: at the limit
    assert not Incident.objects.for_tenant(tenant_a).filter(kind="no_data").exists()
    later = last + STALE_AFTER + timedelta(minutes=1)
    for _ in range(2):  # a rebuild opens no twin
        build_incidents(tenant_a.pk, T0, later, now=later)
    [silent] = Incident.objects.for_tenant(tenant_a).filter(kind="no_data")
    assert (silent.node_id, silent.state, silent.started_at) == (s.node_id, "open", last)
    assert silent.summary == "c/n1: no data since 08:10 UTC"
    counter.last_point_at = later
    counter.save()
    build_incidents(tenant_a.pk, T0, later, now=later)
    silent.refresh_from_db()
    assert silent.state == "resolved" and silent.resolved_by_label == lifecycle.AUTO
    assert [e for pk, e, _ in events if pk == silent.pk] == [signals.OPENED, signals.RESOLVED]
