"""The pipeline through real Celery workers on Redis and PostgreSQL."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.celery import app
from results.models import AggregatedScore, Anomaly, DetectionRun
from results.schedules import detection_entry_name
from tenants.models import UsageDaily
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


def run_counts(run: DetectionRun) -> tuple:
    return (run.series_total, run.series_done, run.series_skipped, run.points_analysed, run.windows_analysed,
            run.anomalies_found)


def usage(tenant) -> tuple[int, int]:
    with tenant_scope(tenant):
        day = UsageDaily.objects.get()
    return day.series_analysed, day.detection_runs


def unacked_older_than(seconds: float) -> bool:
    """A message delivered to a worker, unacknowledged for longer than ``seconds``."""
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        delivered = channel.client.zrange(channel.unacked_index_key, 0, -1, withscores=True)
    return any(time.time() - at > seconds for _, at in delivered)


def test_a_worker_lost_after_a_batch_committed_counts_nothing_twice(real_celery, api_a, tenant_a, tmp_path):
    """The worker is SIGKILLed right after a batch committed, before the acknowledgement
    (tests/integration/lose_worker_after_commit.py): the batch is delivered again to a new
    worker, which must return the committed batch's summaries without analysing or
    counting it a second time. Progress and usage totals are exact, and the rows equal a
    clean rerun's."""
    marker = tmp_path / "lost-after-task"
    env = {"FLEETWATCH_DETECTION_BATCH_SIZE": 1, "CELERY_VISIBILITY_TIMEOUT": 5, "FLEETWATCH_TEST_LOSE_WORKER_MARKER": marker}
    lose = ("-I", "tests.integration.lose_worker_after_commit")
    first = real_celery("worker", "--concurrency", "1", *lose, **env)
    end = fleet_now()
    bodies, _ = make_fleet(end, nodes=6)
    ingest(api_a, bodies)
    start = end - timedelta(hours=6)
    run_id = api_a.post("/api/v1/detect", {"start": start.isoformat(), "end": end.isoformat()}, format="json").json()["id"]
    wait_for(lambda: marker.exists() and first.process.poll() is not None, 120, "the worker to be lost after a commit")
    lost_task = marker.read_text()
    assert run_of(tenant_a, run_id).status == "running"
    assert run_of(tenant_a, run_id).series_done == 1  # the lost batch's work is committed
    # Once its visibility timeout has passed, the new worker takes the lost message back at
    # start-up, at the head of the queue: it is delivered again while the run is running.
    wait_for(lambda: unacked_older_than(env["CELERY_VISIBILITY_TIMEOUT"]), 60, "the lost message to be redeliverable")
    second = real_celery("worker", "--concurrency", "1", *lose, **env)
    run = wait_for(lambda: finished(tenant_a, run_id), 180, "the run to finish on the new worker")
    assert run.status == "succeeded", run.error + second.output()[-3000:]
    assert lost_task in second.output()  # the lost batch was delivered again, to the new worker
    assert run_counts(run)[:4] == (12, 12, 0, 12 * 6 * 60)
    assert usage(tenant_a) == (12, 1)
    after_loss = natural_rows(tenant_a)
    assert after_loss[0] and len(after_loss[1]) == 4 * (6 + 1 + 1)  # nodes + cluster + tenant, per strategy

    # A clean rerun of the same range leaves exactly the same rows and counts the same.
    rerun = api_a.post("/api/v1/detect", {"start": start.isoformat(), "end": end.isoformat()}, format="json").json()["id"]
    clean = wait_for(lambda: finished(tenant_a, rerun), 180, "the rerun")
    assert clean.status == "succeeded"
    assert natural_rows(tenant_a) == after_loss
    assert run_counts(clean) == run_counts(run)
    assert usage(tenant_a) == (24, 2)


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
    # One batch, so one transaction: a run fired by beat meanwhile sees all of it or none.
    newer = {"series": [{**series, "points": [[t0 + k / 4, series["points"][-1][1]] for k in (1, 2, 3)]}
                        for body in bodies for series in body["series"]]}
    new_points = ingest(api_a, [newer])
    assert new_points == 8 * 3
    later = wait_for(
        lambda: next((r for r in periodic_runs() if r.pk > first.pk and r.points_analysed), None), 120, "the next run"
    )
    assert later.points_analysed == new_points
