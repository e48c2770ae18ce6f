"""A transient database error in a detection batch (here a real lock timeout, raised by
psycopg on the raw read path) makes the batch retry, and the run then succeeds with
exact totals: the failed attempt rolled back and counted nothing. (In-process, with
Celery's own retry machinery: the retry decision is the task options'.)"""

from datetime import timedelta

import psycopg
import pytest

from config.celery import app
from config.pg import raw_connection
from results import detection
from results.models import DetectionRun
from results.tasks import run_tenant_detection
from tenants.models import UsageDaily
from tenants.scoping import tenant_scope
from tests.integration.processes import database_url
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_lock_timeout_on_the_raw_read_is_retried_and_the_run_succeeds(api_a, tenant_a, monkeypatch):
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=6)
    ingest(api_a, bodies)
    read = detection.get_metric_series_batch
    failures: list[BaseException] = []

    def first_read_times_out(*args, **kwargs):
        if failures:
            return read(*args, **kwargs)
        with psycopg.connect(database_url()) as holder:  # another session holds the points table
            holder.execute("LOCK TABLE analytics_point IN ACCESS EXCLUSIVE MODE")
            with raw_connection().cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '50ms'")
            try:
                return read(*args, **kwargs)
            except psycopg.errors.LockNotAvailable as exc:
                failures.append(exc)
                raise
            # leaving the block ends the holder's transaction: the retry finds no lock

    monkeypatch.setattr(detection, "get_metric_series_batch", first_read_times_out)
    # In-process tasks retry as a worker's do only when errors are not re-raised at once.
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
    run_id = run_tenant_detection(tenant_a.pk, (end - timedelta(hours=2)).isoformat(), end.isoformat())
    with tenant_scope(tenant_a):
        run = DetectionRun.objects.get(pk=run_id)
        usage = UsageDaily.objects.get()
    assert [type(f) for f in failures] == [psycopg.errors.LockNotAvailable]
    assert run.status == "succeeded", run.error
    assert (run.series_done, run.series_skipped, run.points_analysed) == (8, 0, 8 * 120)
    assert (usage.series_analysed, usage.detection_runs) == (8, 1)
