"""One click on the anomalies page labels an anomaly (members and owners; a viewer gets
403); only owners undo an adjustment on the adjustments page."""

from __future__ import annotations

import pytest

from results.models import Adjustment, Anomaly, Feedback, Incident, IncidentMember
from tenants.models import Membership
from tenants.scoping import tenant_scope
from tests.conftest import add_member
from tests.dashboard.conftest import logged_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_click_labels_and_only_owners_undo(fleet, tenant_a, owner, member):
    viewer = add_member(tenant_a, "victor", Membership.Role.VIEWER)
    with tenant_scope(tenant_a):
        anomaly = Anomaly.objects.order_by("-score").first()
    page = logged_in(member).get("/anomalies")
    assert f'action="/anomalies/{anomaly.pk}/feedback"' in page.content.decode()
    assert 'action="/anomalies/' not in logged_in(viewer).get("/anomalies").content.decode()  # viewers read only

    clicked = logged_in(member).post(f"/anomalies/{anomaly.pk}/feedback", {"verdict": "false_alarm", "next": "/anomalies"})
    assert clicked.status_code == 302 and clicked["Location"] == "/anomalies"
    assert logged_in(viewer).post(f"/anomalies/{anomaly.pk}/feedback", {"verdict": "real"}).status_code == 403
    with tenant_scope(tenant_a):
        label = Feedback.objects.get(anomaly=anomaly)
        assert (label.verdict, label.by) == ("false_alarm", "bob")
        adjustment = Adjustment.objects.create(tenant=tenant_a, kind=Adjustment.Kind.THRESHOLD, series_id=anomaly.series_id,
                                               node_id=anomaly.node_id, threshold=0.7, reason="made for the test")
    assert 'aria-pressed="true"' in logged_in(member).get("/anomalies").content.decode()

    assert logged_in(member).post(f"/adjustments/{adjustment.pk}", {"action": "undo"}).status_code == 403
    assert "made for the test" in logged_in(owner).get("/adjustments").content.decode()
    assert logged_in(owner).post(f"/adjustments/{adjustment.pk}", {"action": "undo"}).status_code == 302
    with tenant_scope(tenant_a):
        adjustment.refresh_from_db()
        assert adjustment.undone_by == "alice" and adjustment.undone_at is not None


def test_one_click_on_an_incident_labels_its_members(fleet, tenant_a, member):
    with tenant_scope(tenant_a):  # the seeded run grouped its anomalies into incidents
        incident = Incident.objects.filter(pk__in=IncidentMember.objects.values("incident_id")).order_by("pk").first()
        members = list(Anomaly.objects.filter(pk__in=IncidentMember.objects.filter(incident=incident).values("anomaly_id")))
    client = logged_in(member)
    assert 'data-testid="incident-feedback"' in client.get(f"/incidents/{incident.pk}").content.decode()
    assert client.post(f"/incidents/{incident.pk}/feedback", {"verdict": "real"}).status_code == 302
    with tenant_scope(tenant_a):
        assert sorted(Feedback.objects.values_list("anomaly_id", "verdict")) == sorted((a.pk, "real") for a in members)
