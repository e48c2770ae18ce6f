"""WEIGHTED at every level: metric, node and cluster weights, checked where they are
entered (API, admin) and never failing a run."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from results.models import AggregatedScore, DetectionRun
from results.tasks import run_tenant_detection
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tests.results.fleet import fleet_now, ingest, make_fleet, series_body

EMPTY = {"metric_weights": {}, "node_weights": {}, "cluster_weights": {}}


@pytest.mark.django_db
def test_the_api_reads_and_updates_the_weights_of_the_callers_tenant(api_a, api_b, tenant_a, tenant_b):
    assert api_a.get("/api/v1/weights").json() == EMPTY
    response = api_a.patch("/api/v1/weights", {"node_weights": {"prod/node-1": 3, "prod/node-2": 0.5},
                                               "cluster_weights": {"prod": 2}}, format="json")
    assert response.status_code == 200
    expected = {"metric_weights": {}, "node_weights": {"prod/node-1": 3.0, "prod/node-2": 0.5}, "cluster_weights": {"prod": 2.0}}
    assert response.json() == expected == api_a.get("/api/v1/weights").json()
    assert api_a.patch("/api/v1/weights", {"metric_weights": {"cpu_usage": 2}}, format="json").json() == {
        **expected, "metric_weights": {"cpu_usage": 2.0}}  # a field left out is kept
    assert api_b.get("/api/v1/weights").json() == EMPTY  # another tenant's own


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"node_weights": {"prod/node-1": -1}}, "node_weights", "the weight of 'prod/node-1' must be a number above 0"),
    ({"node_weights": {"node-1": 2}}, "node_weights", "'node-1' is not a node: write \"cluster/node\""),
    ({"metric_weights": {"cpu": True}}, "metric_weights", "the weight of 'cpu' must be a number above 0"),
    ({"metric_weights": {"cpu": "2"}}, "metric_weights", "the weight of 'cpu' must be a number above 0"),
    ({"cluster_weights": {"prod": 0}}, "cluster_weights", "the weight of 'prod' must be a number above 0"),
    ({"cluster_weights": {"pr od": 1}}, "cluster_weights", "'pr od': letters, digits"),
    ({"cluster_weights": [1, 2]}, "cluster_weights", "must be an object of name to weight, got list"),
    ({"metric_weights": {"cpu": 1e300}}, "metric_weights", "at most 1e+06"),
])
def test_invalid_weights_answer_400_naming_the_field_and_store_nothing(api_a, tenant_a, body, field, reason):
    response = api_a.patch("/api/v1/weights", {"metric_weights": {"cpu_usage": 2}, **body}, format="json")
    assert response.status_code == 400
    (detail,) = response.json()["error"]["details"]
    assert detail["field"] == field and reason in detail["reason"] and detail["reason"].startswith(f"{field}: ")
    tenant_a.refresh_from_db()
    assert (tenant_a.metric_weights, tenant_a.node_weights, tenant_a.cluster_weights) == ({}, {}, {})  # nothing half-stored


@pytest.mark.django_db
def test_the_admin_form_checks_the_weights_naming_the_field(client, tenant_a):
    client.force_login(get_user_model().objects.create_superuser(username="operator", password="pw", email="o@x.io"))
    form = {"slug": tenant_a.slug, "name": tenant_a.name, "plan": tenant_a.plan_id, "is_active": "on",
            "created_at_0": "2026-01-01", "created_at_1": "00:00:00", "metric_weights": "{}", "cluster_weights": "{}",
            "incident_window_minutes": 15, "incident_quiet_minutes": 30}
    url = f"/admin/tenants/tenant/{tenant_a.pk}/change/"
    bad = client.post(url, {**form, "node_weights": '{"prod/node-1": -2}'})
    assert bad.status_code == 200
    assert bad.context["adminform"].form.errors == {
        "node_weights": ["node_weights: the weight of 'prod/node-1' must be a number above 0 and at most 1e+06, got -2"]}
    good = client.post(url, {**form, "node_weights": '{"prod/node-1": 2}'})
    assert good.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.node_weights == {"prod/node-1": 2}


def uneven_fleet(end):
    """Two clusters: prod (node-1..3, two metrics each) and edge (one node, one metric)."""
    bodies, _ = make_fleet(end, hours=6, nodes=3)
    start = int(end.timestamp()) - 6 * 3600
    values = [50.0 + (i % 7) for i in range(6 * 60)]
    values[-30] = 99.0
    bodies.append({"series": [series_body("edge", "gw-1", "latency_ms", start, values, "ms")]})
    return bodies


def scores(tenant, run_id, strategy):
    with tenant_scope(tenant):
        rows = AggregatedScore.objects.filter(run_id=run_id, strategy=strategy).select_related("cluster", "node")
        return {(r.level, r.node.name if r.node else r.cluster.name if r.cluster else "tenant"): r for r in rows}


def weighted_mean(pairs):
    pairs = list(pairs)
    return math.fsum(w * s for w, s in pairs) / math.fsum(w for w, _ in pairs)


def detect(tenant, end) -> DetectionRun:
    run_id = run_tenant_detection(tenant.pk, (end - timedelta(hours=2)).isoformat(), end.isoformat(), trigger="backfill")
    with tenant_scope(tenant):
        return DetectionRun.objects.get(pk=run_id)


@pytest.mark.django_db(transaction=True)
def test_a_run_weighs_nodes_and_clusters_by_their_weights_times_their_metrics(api_a, tenant_a):
    end = fleet_now()
    ingest(api_a, uneven_fleet(end))
    Tenant.objects.filter(pk=tenant_a.pk).update(node_weights={"prod/node-2": 4.0}, cluster_weights={"edge": 3.0})
    run = detect(tenant_a, end)
    assert run.status == "succeeded" and run.warnings == [], run.error
    weighted = scores(tenant_a, run.pk, "weighted")
    nodes = {name: weighted[("node", name)] for name in ("node-1", "node-2", "node-3")}
    prod = weighted_mean([(4.0 if name == "node-2" else 1.0) * 2, n.score] for name, n in nodes.items())
    assert weighted[("cluster", "prod")].score == pytest.approx(prod, rel=1e-12)
    edge = weighted[("cluster", "edge")].score
    assert edge == weighted[("node", "gw-1")].score
    assert weighted[("tenant", "tenant")].score == pytest.approx(weighted_mean([(1.0 * 6, prod), (3.0 * 1, edge)]), rel=1e-12)
    mean = scores(tenant_a, run.pk, "mean")
    assert mean[("tenant", "tenant")].score == pytest.approx((mean[("cluster", "prod")].score + edge) / 2, rel=1e-12)
    assert weighted[("tenant", "tenant")].score != pytest.approx(mean[("tenant", "tenant")].score)


@pytest.mark.django_db(transaction=True)
def test_invalid_stored_weights_give_equal_weights_and_a_warning_never_a_failed_run(api_a, tenant_a):
    end = fleet_now()
    ingest(api_a, uneven_fleet(end))
    # Written around the checks (e.g. straight into the database): a run must still succeed.
    Tenant.objects.filter(pk=tenant_a.pk).update(metric_weights={"cpu_usage": -1}, node_weights={"prod/node-2": 4.0},
                                                 cluster_weights="edge=3")
    run = detect(tenant_a, end)
    assert run.status == "succeeded", run.error
    assert run.warnings == [
        "metric_weights: the weight of 'cpu_usage' must be a number above 0 and at most 1e+06, got -1; "
        "equal weights were used for that level (fix the tenant's weights)",
        "cluster_weights: must be an object of name to weight, got str; equal weights were used for that level "
        "(fix the tenant's weights)",
    ]
    assert api_a.get(f"/api/v1/runs/{run.pk}").json()["warnings"] == run.warnings
    weighted, mean = scores(tenant_a, run.pk, "weighted"), scores(tenant_a, run.pk, "mean")
    for name in ("node-1", "node-2", "node-3", "gw-1"):  # equal metric weights: WEIGHTED nodes are MEAN nodes
        assert weighted[("node", name)].score == pytest.approx(mean[("node", name)].score, rel=1e-12)
    prod = weighted_mean([(4.0 if name == "node-2" else 1.0) * 2, weighted[("node", name)].score]
                         for name in ("node-1", "node-2", "node-3"))
    assert weighted[("cluster", "prod")].score == pytest.approx(prod, rel=1e-12)  # the valid level is still used
    edge = weighted[("cluster", "edge")].score
    assert weighted[("tenant", "tenant")].score == pytest.approx(weighted_mean([(6, prod), (1, edge)]), rel=1e-12)
