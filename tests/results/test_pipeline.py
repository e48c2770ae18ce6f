"""The detection pipeline in-process (eager Celery): results, idempotency, incrementality."""

from datetime import timedelta

import pytest

from results.models import AggregatedScore, Anomaly, DetectionRun
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = pytest.mark.django_db(transaction=True)


def rows(model, tenant, fields):
    with tenant_scope(tenant):
        return sorted(model.objects.values_list(*fields))


@pytest.fixture
def fleet(api_a, tenant_a):
    end = fleet_now()
    bodies, truth = make_fleet(end)
    ingest(api_a, bodies)
    return end, truth


def run_detection(tenant, start, end) -> DetectionRun:
    run_id = run_tenant_detection(tenant.pk, start.isoformat(), end.isoformat(), trigger="backfill")
    with tenant_scope(tenant):
        return DetectionRun.objects.get(pk=run_id)


def test_a_run_finds_the_injected_spike_and_ranks_its_node_first(fleet, tenant_a, api_a):
    end, truth = fleet
    run = run_detection(tenant_a, end - timedelta(hours=6), end)
    assert run.status == "succeeded", run.error
    assert run.series_total == 8 and run.series_done == 8
    assert run.anomalies_found >= 1

    anomalies = api_a.get("/api/v1/anomalies", {"ordering": "-score"}).json()["results"]
    top = anomalies[0]
    assert (top["node"], top["metric_name"], top["label"]) == (truth["node"], truth["metric"], "spike")
    assert top["window_start"] <= truth["time"].isoformat().replace("+00:00", "Z") < top["window_end"]
    assert "cpu_usage" in top["text"] and truth["node"] in top["text"]

    ranking = api_a.get("/api/v1/rankings", {"level": "node", "strategy": "max", "top": 3}).json()
    assert ranking[0]["node"] == truth["node"] and ranking[0]["rank"] == 1
    assert ranking[0]["driver"]["metric_name"] == "cpu_usage"
    assert ranking[0]["score"] >= 0.5 > ranking[1]["score"]


def test_the_same_range_twice_gives_the_same_rows(fleet, tenant_a):
    end, _ = fleet
    start = end - timedelta(hours=6)
    run_detection(tenant_a, start, end)
    anomaly_fields = ("series_id", "engine", "window_start", "window_end", "score", "first_score", "label", "text")
    score_fields = ("level", "subject", "strategy", "score", "period_start", "period_end", "num_anomalies_detected")
    first = rows(Anomaly, tenant_a, anomaly_fields), rows(AggregatedScore, tenant_a, score_fields)
    assert first[0] and first[1]
    run_detection(tenant_a, start, end)
    assert (rows(Anomaly, tenant_a, anomaly_fields), rows(AggregatedScore, tenant_a, score_fields)) == first


def test_periodic_runs_are_incremental(api_a, tenant_a):
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=12)
    ingest(api_a, bodies)
    first = run_detection(tenant_a, end - timedelta(hours=2), end)
    assert first.points_analysed == 8 * 120
    newer_end = end + timedelta(minutes=5)
    newer, _ = make_fleet(newer_end, hours=12)
    for body in newer:  # only the five new minutes of every series
        for series in body["series"]:
            series["points"] = [p for p in series["points"] if p[0] >= end.timestamp()]
    assert ingest(api_a, newer) == 8 * 5
    run_id = run_tenant_detection(tenant_a.pk, end=newer_end.isoformat())  # periodic: from each watermark
    with tenant_scope(tenant_a):
        second = DetectionRun.objects.get(pk=run_id)
    assert second.status == "succeeded", second.error
    assert second.trigger == "periodic"
    assert second.points_analysed == 8 * 5
    with tenant_scope(tenant_a):
        assert set(DetectionRun.objects.values_list("range_end", flat=True)) == {end, newer_end}


def test_a_series_already_analysed_is_skipped(fleet, tenant_a):
    end, _ = fleet
    run_detection(tenant_a, end - timedelta(hours=1), end)
    run_id = run_tenant_detection(tenant_a.pk, end=end.isoformat())
    with tenant_scope(tenant_a):
        run = DetectionRun.objects.get(pk=run_id)
    assert run.status == "succeeded" and run.series_skipped == 8 and run.points_analysed == 0
