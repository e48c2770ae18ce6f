"""``/api/v1/incidents``: list (filters, open first), detail, actions, roles, isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from results.incidents.build import build_incidents
from results.models import Incident
from tenants.models import ApiKey
from tests.conftest import api_client_for
from tests.incidents.seed import T0, analysed_until, anomaly

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_incidents(tenant_a):
    """cluster-1: node-01 and node-02 (open); cluster-2: node-09 (resolved)."""
    anomaly(tenant_a, "cluster-1", "node-01", "cpu", start_min=300, minutes=10)
    anomaly(tenant_a, "cluster-1", "node-02", "latency", start_min=302, minutes=10)
    anomaly(tenant_a, "cluster-2", "node-09", "disk_io", start_min=0, minutes=10)
    analysed_until(tenant_a, 100)
    build_incidents(tenant_a.pk, T0, T0 + timedelta(hours=5))
    analysed_until(tenant_a, 330)
    build_incidents(tenant_a.pk, T0, T0 + timedelta(hours=6))
    return {i.cluster.name: i for i in Incident.objects.for_tenant(tenant_a).select_related("cluster")}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [i["id"] for i in response.json()["results"]]


def test_list_puts_open_incidents_first_and_filters(api_a, two_incidents):
    open_, resolved = two_incidents["cluster-1"], two_incidents["cluster-2"]
    assert (open_.state, resolved.state) == ("open", "resolved")
    assert ids(api_a.get("/api/v1/incidents")) == [open_.pk, resolved.pk]
    assert ids(api_a.get("/api/v1/incidents", {"state": "resolved"})) == [resolved.pk]
    assert ids(api_a.get("/api/v1/incidents", {"cluster": "cluster-1"})) == [open_.pk]
    assert ids(api_a.get("/api/v1/incidents", {"node": "node-02"})) == [open_.pk]
    assert ids(api_a.get("/api/v1/incidents", {"node": "node-03"})) == []
    late = (T0 + timedelta(hours=4)).isoformat()
    assert ids(api_a.get("/api/v1/incidents", {"from": late})) == [open_.pk]
    assert ids(api_a.get("/api/v1/incidents", {"to": late})) == [resolved.pk]
    bad = api_a.get("/api/v1/incidents", {"state": "sleeping"})
    assert bad.status_code == 400 and "state" in bad.content.decode()


def test_detail_has_members_and_timeline(api_a, two_incidents):
    body = api_a.get(f"/api/v1/incidents/{two_incidents['cluster-1'].pk}").json()
    assert body["nodes"] == ["node-01", "node-02"] and body["metrics"] == ["cpu", "latency"]
    assert [(m["node"], m["metric_name"]) for m in body["members"]] == [("node-01", "cpu"), ("node-02", "latency")]
    assert [e["event"] for e in body["timeline"]] == ["opened"]
    assert body["summary"].startswith("cluster-1: 2 nodes")


def test_acknowledge_resolve_reopen_through_the_api(api_a, two_incidents):
    url = f"/api/v1/incidents/{two_incidents['cluster-1'].pk}"
    acked = api_a.post(f"{url}/acknowledge")
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"].startswith("api key fw_")
    again = api_a.post(f"{url}/acknowledge")
    assert again.status_code == 409 and again.json()["error"]["details"][0]["field"] == "state"
    assert api_a.post(f"{url}/resolve").json()["state"] == "resolved"
    reopened = api_a.post(f"{url}/reopen").json()
    assert reopened["state"] == "open" and reopened["acknowledged_by"] == "" and reopened["reopened_count"] == 1
    assert [e["event"] for e in reopened["timeline"]] == ["opened", "acknowledged", "resolved", "reopened"]


def test_a_read_only_key_reads_but_cannot_acknowledge_or_change_anything(tenant_a, two_incidents):
    key = ApiKey.issue(tenant_a, "dashboards", role=ApiKey.Role.READ_ONLY)[1]
    api = api_client_for(key)
    incident = two_incidents["cluster-1"]
    assert api.get(f"/api/v1/incidents/{incident.pk}").status_code == 200
    refused = api.post(f"/api/v1/incidents/{incident.pk}/acknowledge")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "read_only_key"
    incident.refresh_from_db()
    assert incident.state == "open" and incident.acknowledged_at is None
    assert api.patch("/api/v1/weights", {"metric_weights": {"cpu": 2}}, format="json").status_code == 403
    assert api.post("/api/v1/detect", {}, format="json").status_code == 403
    tenant_a.refresh_from_db()
    assert tenant_a.metric_weights == {}


def test_tenant_b_can_neither_see_nor_act_on_a_incidents(api_b, two_incidents):
    incident = two_incidents["cluster-1"]
    assert api_b.get("/api/v1/incidents").json()["count"] == 0
    for method, suffix in (("get", ""), ("post", "/acknowledge"), ("post", "/resolve"), ("post", "/reopen"), ("get", "/origin")):
        response = getattr(api_b, method)(f"/api/v1/incidents/{incident.pk}{suffix}")
        assert response.status_code == 404, (method, suffix)
    incident.refresh_from_db()
    assert incident.state == "open" and incident.acknowledged_at is None


def test_existing_keys_are_read_write_by_default(tenant_a):
    api_key, _ = ApiKey.issue(tenant_a, "old")
    assert api_key.role == ApiKey.Role.READ_WRITE


def test_the_origin_is_stored_with_the_incident_and_recomputed_when_it_changes(api_a, tenant_a, two_incidents):
    incident = two_incidents["cluster-1"]
    body = api_a.get(f"/api/v1/incidents/{incident.pk}/origin").json()
    assert body["incident"] == incident.pk and body["origin"] is None
    assert body["text"] == "No points in this window to analyse."  # seeded rows: no points behind them
    incident.refresh_from_db()
    stored_key = incident.origin_key
    assert incident.origin == body and stored_key
    anomaly(tenant_a, "cluster-1", "node-03", "cpu", start_min=305, score=0.99)
    build_incidents(tenant_a.pk, T0, T0 + timedelta(hours=6))
    api_a.get(f"/api/v1/incidents/{incident.pk}/origin")
    incident.refresh_from_db()
    assert incident.origin_key != stored_key
