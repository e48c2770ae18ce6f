"""Tenant B can neither trigger, read nor count tenant A's runs, anomalies, scores, series."""

from datetime import timedelta

import pytest

from analytics.models import Series
from results.models import Anomaly, DetectionRun
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def a_has_results(api_a, tenant_a):
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=6)
    ingest(api_a, bodies)
    run_tenant_detection(tenant_a.pk, (end - timedelta(hours=3)).isoformat(), end.isoformat(), trigger="backfill")
    with tenant_scope(tenant_a):
        return {
            "run": DetectionRun.objects.get().pk,
            "anomaly": Anomaly.objects.order_by("-score").first().pk,
            "series": Series.objects.order_by("pk").first().pk,
        }


def test_a_sees_its_own_objects(api_a, a_has_results):
    ids = a_has_results
    for url in [f"/api/v1/runs/{ids['run']}", f"/api/v1/anomalies/{ids['anomaly']}",
                f"/api/v1/anomalies/{ids['anomaly']}/explain", f"/api/v1/series/{ids['series']}",
                f"/api/v1/series/{ids['series']}/points"]:
        assert api_a.get(url).status_code == 200, url


def test_b_gets_404_for_every_object_of_a_exactly_like_a_missing_one(api_b, a_has_results):
    ids = a_has_results
    missing = api_b.get("/api/v1/runs/999999")
    for url in [f"/api/v1/runs/{ids['run']}", f"/api/v1/anomalies/{ids['anomaly']}",
                f"/api/v1/anomalies/{ids['anomaly']}/explain", f"/api/v1/series/{ids['series']}",
                f"/api/v1/series/{ids['series']}/points"]:
        response = api_b.get(url)
        assert response.status_code == 404, url
        assert response.json() == missing.json()


def test_b_lists_and_filters_are_empty(api_b, a_has_results):
    for url, params in [
        ("/api/v1/runs/", {}), ("/api/v1/anomalies", {}), ("/api/v1/anomalies", {"cluster": "prod"}),
        ("/api/v1/anomalies", {"node": "node-2", "min_score": 0}), ("/api/v1/scores", {}),
        ("/api/v1/scores", {"level": "tenant"}), ("/api/v1/series", {}), ("/api/v1/series", {"metric_name": "cpu_usage"}),
    ]:
        body = api_b.get(url, params).json()
        assert body["count"] == 0 and body["results"] == [], (url, params)
    assert api_b.get("/api/v1/rankings", {"level": "node"}).json() == []
    assert api_b.get("/api/v1/rankings", {"level": "cluster", "strategy": "p95"}).json() == []


def test_b_triggering_detection_runs_only_over_b(api_b, tenant_a, tenant_b, a_has_results):
    response = api_b.post("/api/v1/detect", {}, format="json")
    assert response.status_code == 201  # finished in-process (eager tasks)
    run_id = response.json()["id"]
    with tenant_scope(tenant_b):
        run = DetectionRun.objects.get(pk=run_id)
        assert run.series_total == 0
    with tenant_scope(tenant_a):
        assert not DetectionRun.objects.filter(pk=run_id).exists()
        assert DetectionRun.objects.count() == 1
