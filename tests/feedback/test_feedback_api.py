"""Labels through the API: set, change, remove, each in the audit trail with who and
when; exported as labelled windows the evaluation harness reads; and tenant B can
neither label, read, change, remove nor undo anything of tenant A's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.core.evaluation.nab import window_rows
from results.models import Adjustment, Anomaly, AuditEntry, Feedback, Incident, IncidentMember
from results.tasks import run_tenant_detection
from tenants.models import ApiKey
from tenants.scoping import tenant_scope
from tests.conftest import api_client_for
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def a_anomaly(api_a, tenant_a) -> Anomaly:
    end = fleet_now()
    ingest(api_a, make_fleet(end, hours=6)[0])
    run_tenant_detection(tenant_a.pk, (end - timedelta(hours=3)).isoformat(), end.isoformat(), trigger="backfill")
    with tenant_scope(tenant_a):
        return Anomaly.objects.select_related("cluster", "node").order_by("-score").first()


def test_label_change_remove_with_audit_and_export(api_a, tenant_a, key_a, a_anomaly):
    url = f"/api/v1/anomalies/{a_anomaly.pk}/feedback"
    assert api_a.get(url).status_code == 404  # no label yet
    bad = api_a.post(url, {"verdict": "maybe"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "verdict"
    first = api_a.post(url, {"verdict": "real", "comment": "disk filled up"}, format="json")
    assert first.status_code == 201
    label = first.json()["feedback"]
    assert (label["verdict"], label["comment"], label["anomaly"]) == ("real", "disk filled up", a_anomaly.pk)
    assert label["by"] == f"api key fw_{key_a[3:11]}"
    changed = api_a.patch(f"/api/v1/feedback/{label['id']}", {"verdict": "expected"}, format="json")
    assert changed.status_code == 200 and changed.json()["feedback"]["verdict"] == "expected"
    assert changed.json()["feedback"]["comment"] == "disk filled up"
    assert api_a.get(url).json()["verdict"] == "expected"
    assert api_a.post(url, {"verdict": "real"}, format="json").status_code == 200  # changeable by POST too

    export = api_a.get("/api/v1/feedback/export").json()
    name = f"{a_anomaly.cluster.name}/{a_anomaly.node.name}/{a_anomaly.metric_name}.csv"
    assert export["series"] == {name: a_anomaly.series_id}
    [[start, end]] = export["windows"][name]
    assert export["reviewed"][name] == [[start, end]]
    minutes = [a_anomaly.window_start + timedelta(minutes=i) for i in range(-2, 8)]
    # the harness's own window mapping: the points of the anomaly's half-open window, no more
    [(left, right)] = window_rows([m.replace(tzinfo=None) for m in minutes], [(start, end)])
    inside = [m for m in minutes if a_anomaly.window_start <= m < a_anomaly.window_end]
    assert (minutes[left], minutes[right]) == (inside[0], inside[-1])

    assert api_a.delete(f"/api/v1/feedback/{label['id']}").status_code == 204
    assert api_a.get(url).status_code == 404
    trail = api_a.get("/api/v1/audit").json()["results"]
    assert [e["action"] for e in reversed(trail)] == ["feedback_set", "feedback_changed", "feedback_changed",
                                                      "feedback_removed"]
    assert trail[2]["detail"]["previous"] == {"verdict": "real", "comment": "disk filled up"}
    assert all(e["by"] == label["by"] and e["subject"] == f"anomaly:{a_anomaly.pk}" for e in trail)


def test_b_cannot_label_read_change_remove_or_undo_a_s_feedback(api_a, api_b, tenant_a, a_anomaly):
    made = api_a.post(f"/api/v1/anomalies/{a_anomaly.pk}/feedback", {"verdict": "false_alarm"}, format="json").json()
    with tenant_scope(tenant_a):
        adjustment = Adjustment.objects.create(tenant=tenant_a, kind=Adjustment.Kind.THRESHOLD, series_id=a_anomaly.series_id,
                                               node_id=a_anomaly.node_id, threshold=0.7, reason="test")
    feedback_id = made["feedback"]["id"]
    missing = api_b.get("/api/v1/feedback/987654321")
    assert missing.status_code == 404
    attempts = [
        api_b.post(f"/api/v1/anomalies/{a_anomaly.pk}/feedback", {"verdict": "real"}, format="json"),
        api_b.get(f"/api/v1/anomalies/{a_anomaly.pk}/feedback"),
        api_b.get(f"/api/v1/feedback/{feedback_id}"),
        api_b.patch(f"/api/v1/feedback/{feedback_id}", {"verdict": "real"}, format="json"),
        api_b.delete(f"/api/v1/feedback/{feedback_id}"),
        api_b.get(f"/api/v1/adjustments/{adjustment.pk}"),
        api_b.post(f"/api/v1/adjustments/{adjustment.pk}/undo"),
        api_b.post(f"/api/v1/adjustments/{adjustment.pk}/confirm"),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert all(r.json() == missing.json() for r in attempts)
    for url in ("/api/v1/feedback", "/api/v1/adjustments", "/api/v1/audit"):
        assert api_b.get(url).json()["count"] == 0, url
    assert api_b.get("/api/v1/feedback/export").json() == {"windows": {}, "reviewed": {}, "series": {}}
    with tenant_scope(tenant_a):
        row = Feedback.objects.get(pk=feedback_id)
        assert (row.verdict, row.by) == ("false_alarm", made["feedback"]["by"])
        adjustment.refresh_from_db()
        assert adjustment.undone_at is None and adjustment.expires_at is None
        assert list(AuditEntry.objects.values_list("action", flat=True)) == ["feedback_set"]


def test_labelling_an_incident_labels_its_members_and_read_only_keys_only_read(api_a, tenant_a, owner, a_anomaly):
    with tenant_scope(tenant_a):  # the run grouped its anomalies into incidents
        incident = Incident.objects.get(pk=IncidentMember.objects.get(anomaly=a_anomaly).incident_id)
        members = list(Anomaly.objects.filter(pk__in=IncidentMember.objects.filter(incident=incident).values("anomaly_id")))
    labelled = api_a.post(f"/api/v1/incidents/{incident.pk}/feedback", {"verdict": "expected", "comment": "deploy"},
                          format="json")
    assert labelled.status_code == 200
    assert sorted(item["feedback"]["anomaly"] for item in labelled.json()) == sorted(a.pk for a in members)
    listed = api_a.get(f"/api/v1/incidents/{incident.pk}/feedback").json()
    assert {(f["anomaly"], f["verdict"], f["comment"]) for f in listed} == {(a.pk, "expected", "deploy") for a in members}

    reader = api_client_for(ApiKey.issue(tenant_a, "dashboards", created_by=owner, role=ApiKey.Role.READ_ONLY)[1])
    assert reader.get(f"/api/v1/anomalies/{a_anomaly.pk}/feedback").json()["verdict"] == "expected"
    assert reader.get("/api/v1/audit").json()["count"] == len(members)
    with tenant_scope(tenant_a):
        adjustment = Adjustment.objects.create(tenant=tenant_a, kind=Adjustment.Kind.THRESHOLD, series_id=a_anomaly.series_id,
                                               node_id=a_anomaly.node_id, threshold=0.7, reason="test")
    refused = [reader.post(f"/api/v1/anomalies/{a_anomaly.pk}/feedback", {"verdict": "real"}, format="json"),
               reader.post(f"/api/v1/incidents/{incident.pk}/feedback", {"verdict": "real"}, format="json"),
               reader.patch(f"/api/v1/feedback/{listed[0]['id']}", {"verdict": "real"}, format="json"),
               reader.delete(f"/api/v1/feedback/{listed[0]['id']}"),
               reader.post(f"/api/v1/adjustments/{adjustment.pk}/undo")]
    assert [r.status_code for r in refused] == [403] * len(refused)
    with tenant_scope(tenant_a):
        assert set(Feedback.objects.values_list("verdict", flat=True)) == {"expected"}
        assert Adjustment.objects.get(pk=adjustment.pk).undone_at is None
