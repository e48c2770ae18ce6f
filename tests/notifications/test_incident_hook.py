"""The incidents' lifecycle writes the outbox in the incident's own transaction."""

from datetime import timedelta

import pytest
from django.db import transaction

from results.incidents import lifecycle
from results.incidents.build import build_incidents
from results.models import Incident
from tests.incidents.seed import T0, anomaly
from tests.notifications.fixtures import channel, notifications

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def build(tenant):
    build_incidents(tenant.pk, T0 - timedelta(hours=1), T0 + timedelta(hours=3))


def test_each_lifecycle_step_writes_a_notification_with_the_incidents_facts(tenant_a):
    channel(tenant_a, url="http://127.0.0.1:9/hook")
    anomaly(tenant_a, "prod", "db-1", "cpu_usage", start_min=0, score=0.95)
    build(tenant_a)
    incident = Incident.objects.for_tenant(tenant_a).get()
    lifecycle.acknowledge(incident, "alice")
    lifecycle.resolve(incident, "alice")
    sent = notifications(tenant_a, incident_id=incident.pk)
    assert [n.event for n in sent] == ["opened", "acknowledged", "resolved"]
    opened = sent[0].facts
    assert (opened["cluster"], opened["node"], opened["severity"], opened["metrics"]) == ("prod", "db-1", "critical", ["cpu_usage"])
    assert opened["summary"] == incident.summary and opened["resolved_at"] is None
    assert sent[2].facts["resolved_at"] is not None


def test_a_rolled_back_incident_change_leaves_no_notification(tenant_a):
    channel(tenant_a, url="http://127.0.0.1:9/hook")
    anomaly(tenant_a, "prod", "db-1", "cpu_usage", start_min=0)
    build(tenant_a)
    incident = Incident.objects.for_tenant(tenant_a).get()
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.acknowledge(incident, "alice")
        raise RuntimeError("the change fails after the hook ran")
    assert [n.event for n in notifications(tenant_a, incident_id=incident.pk)] == ["opened"]
