"""The pipeline through real Celery workers on Redis and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from results.models import AggregatedScore, Anomaly, DetectionRun
from results.schedules import detection_entry_name
from tenants.scoping import tenant_scope
from tests.polling import wait_for
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def run_of(tenant, run_id) -> DetectionRun:
    with tenant_scope(tenant):
        return DetectionRun.objects.get(pk=run_id)


def finished(tenant, run_id):
    run = run_of(tenant, run_id)
    return run if run.status in DetectionRun.FINISHED else None


def test_ingest_detect_and_read_back_through_a_real_worker(real_celery, api_a, tenant_a):
    worker = real_celery()
    end = fleet_now()
    bodies, truth = make_fleet(end)
    ingest(api_a, bodies)
    response = api_a.post("/api/v1/detect", {"start": (end - timedelta(hours=6)).isoformat(), "end": end.isoformat()}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    run = wait_for(lambda: finished(tenant_a, response.json()["id"]), 120, "the run to finish")
    assert run.status == "succeeded", run.error + worker.output()[-3000:]
    assert api_a.get(f"/api/v1/runs/{run.pk}").json()["series_done"] == 8

    top = api_a.get("/api/v1/anomalies", {"ordering": "-score"}).json()["results"][0]
    assert (top["node"], top["metric_name"], top["label"]) == (truth["node"], "cpu_usage", "spike")
    ranking = api_a.get("/api/v1/rankings", {"level": "node", "strategy": "max"}).json()
    assert ranking[0]["node"] == truth["node"]
    assert ranking[0]["driver"]["metric_name"] == "cpu_usage"


def natural_rows(tenant):
    with tenant_scope(tenant):
        anomalies = sorted(Anomaly.objects.values_list("series_id", "engine", "window_start", "window_end", "score", "label"))
        scores = sorted(AggregatedScore.objects.values_list("level", "subject", "strategy", "period_start", "period_end", "score"))
    return anomalies, scores


def test_a_worker_killed_mid_run_is_replaced_and_nothing_is_duplicated(real_celery, api_a, tenant_a):
    env = {"FLEETWATCH_DETECTION_BATCH_SIZE": 1, "CELERY_VISIBILITY_TIMEOUT": 5}
    first = real_celery("worker", "--concurrency", "1", **env)
    end = fleet_now()
    bodies, _ = make_fleet(end, nodes=6)
    ingest(api_a, bodies)
    start = end - timedelta(hours=6)
    run_id = api_a.post("/api/v1/detect", {"start": start.isoformat(), "end": end.isoformat()}, format="json").json()["id"]
    wait_for(lambda: run_of(tenant_a, run_id).series_done >= 2, 120, "the first batches to finish")
    first.kill()
    assert run_of(tenant_a, run_id).status == "running"
    assert run_of(tenant_a, run_id).series_done < 12
    second = real_celery("worker", "--concurrency", "1", **env)
    run = wait_for(lambda: finished(tenant_a, run_id), 180, "the run to finish on the new worker")
    assert run.status == "succeeded", run.error + second.output()[-3000:]
    assert run.series_total == 12
    assert "detect_batch" in second.output()  # the redelivered batch ran on the new worker
    after_kill = natural_rows(tenant_a)
    assert after_kill[0] and len(after_kill[1]) == 4 * (6 + 1 + 1)  # nodes + cluster + tenant, per strategy

    # A clean rerun of the same range leaves exactly the same rows.
    rerun = api_a.post("/api/v1/detect", {"start": start.isoformat(), "end": end.isoformat()}, format="json").json()["id"]
    assert wait_for(lambda: finished(tenant_a, rerun), 180, "the rerun").status == "succeeded"
    assert natural_rows(tenant_a) == after_kill


def test_beat_fires_runs_and_the_next_run_is_incremental(real_celery, api_a, tenant_a):
    env = {"FLEETWATCH_DETECTION_WINDOW_SECONDS": 1}
    real_celery("worker", **env)
    now = datetime.now(UTC).replace(microsecond=0)
    bodies, _ = make_fleet(now - timedelta(minutes=3), hours=6)
    ingest(api_a, bodies)
    entry = PeriodicTask.objects.get(name=detection_entry_name(tenant_a))
    entry.interval = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    entry.expire_seconds = 2
    entry.save()
    real_celery("beat", "--max-interval", "1", **env)

    def periodic_runs():
        with tenant_scope(tenant_a):
            return list(DetectionRun.objects.filter(trigger="periodic", status="succeeded").order_by("pk"))

    first = wait_for(lambda: next((r for r in periodic_runs() if r.points_analysed), None), 120, "a periodic run")
    assert first.points_analysed == 8 * 6 * 60
    t0 = first.range_end.timestamp()  # three points each, just after what the first run saw
    newer = [{"series": [{**series, "points": [[t0 + k / 4, series["points"][-1][1]] for k in (1, 2, 3)]}
                         for series in body["series"]]} for body in bodies]
    new_points = ingest(api_a, newer)
    assert new_points == 8 * 3
    later = wait_for(
        lambda: next((r for r in periodic_runs() if r.pk > first.pk and r.points_analysed), None), 120, "the next run"
    )
    assert later.points_analysed == new_points
