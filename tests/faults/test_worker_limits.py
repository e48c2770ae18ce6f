"""A detection batch that overruns its soft time limit fails the run with a readable
reason, on a real worker; it is never left running, and nothing of the batch is kept.

(A worker killed mid-task is covered by tests/integration/test_worker_pipeline.py.)
The limit is FLEETWATCH_DETECTION_TASK_SOFT_TIME_LIMIT (seconds); 1 s here. What makes
the batch overrun is a lock the test holds on the points table (a stalled database),
not the machine's speed: a fresh worker's batch of 16 series can finish in under 1 s.
"""

from __future__ import annotations

import signal

import psycopg
import pytest

from tenants.scoping import tenant_scope
from tests.faults.services import django_python, product_env, start_celery
from tests.faults.test_redis_restart import FINISHED, REQUEST, SETUP, line, run_row
from tests.polling import wait_for

pytestmark = pytest.mark.integration


def test_a_batch_over_its_soft_time_limit_fails_the_run_with_a_reason(private_pg, fresh_database, private_redis, tmp_path):
    db = fresh_database.rsplit("/", 1)[1]
    env = product_env(fresh_database, private_redis.url(0), FLEETWATCH_DETECTION_TASK_SOFT_TIME_LIMIT=1,
                      FLEETWATCH_DETECTION_BATCH_SIZE=250)
    tenant, end = line(django_python(env, SETUP.format(nodes=8)), "SETUP")
    worker = start_celery(env, tmp_path, "worker", "--concurrency", "1", "--pool", "prefork")
    wait_for(lambda: " ready." in worker.output(100_000), 60, "the worker to be ready")
    with psycopg.connect(fresh_database) as stall:  # the batch's read of the points waits on this lock
        stall.execute("LOCK TABLE analytics_point IN ACCESS EXCLUSIVE MODE")
        run_id = int(line(django_python(env, REQUEST.format(end=end, tenant=int(tenant))), "RUN")[0])
        status, done, total, _, error = wait_for(
            lambda: (row := run_row(private_pg, db, run_id))[0] in FINISHED and row, 90, "the run to finish")
        stall.rollback()
    assert status == "failed", (status, error, worker.output())
    assert "exceeded the time limit of 1 s" in error and "FLEETWATCH_DETECTION_TASK_SOFT_TIME_LIMIT" in error, (
        error, worker.output(1_000_000)[-4000:])
    assert (done, total) == (0, 16)
    stored = private_pg.query("SELECT count(*) FROM results_anomaly WHERE tenant_id = %s", (int(tenant),), dbname=db)[0][0]
    assert stored == 0  # the batch's transaction was rolled back
    assert "SoftTimeLimitExceeded" in worker.output(1_000_000)
    assert worker.alive()
    print(f"\nrun {run_id}: {status}: {error}")
    worker.stop()


def running_run(tenant, series_ids):
    """A running run with one planned batch of these series."""
    from results.models import DetectionBatch, DetectionRun

    with tenant_scope(tenant):
        run = DetectionRun.objects.create(tenant=tenant, trigger="manual", status=DetectionRun.Status.RUNNING)
        DetectionBatch.objects.create(tenant=tenant, run=run, first_series_id=series_ids[0], series_ids=series_ids)
    return run


@pytest.mark.django_db(transaction=True)
def test_a_soft_time_limit_striking_mid_query_still_fails_the_run_with_its_reason(tenant_a, monkeypatch):
    """Where the limit strikes is up to timing: during a query, psycopg leaves the
    connection busy, and the handler's own update must not trip over it (it did: the run
    then failed with no reason). The limit is raised by a timer, as Celery's is."""
    from celery.exceptions import SoftTimeLimitExceeded
    from django.db import connection

    from results import tasks
    from results.models import DetectionRun

    run = running_run(tenant_a, [1, 2, 3])

    def slow_query(tenant_id, run, series_ids):
        signal.setitimer(signal.ITIMER_REAL, 0.3)  # strikes during the query
        with connection.cursor() as cur:
            cur.execute("SELECT pg_sleep(10)")

    def strike(signum, frame):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tasks, "detect_series_batch", slow_query)
    previous = signal.signal(signal.SIGALRM, strike)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            tasks.detect_batch(tenant_a.pk, run.pk, [1, 2, 3])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    with tenant_scope(tenant_a):
        run.refresh_from_db()
    assert run.status == DetectionRun.Status.FAILED
    assert "a detection batch of 3 series exceeded the time limit" in run.error, run.error


@pytest.mark.django_db(transaction=True)
def test_a_soft_time_limit_wrapped_by_an_import_still_fails_the_run_with_its_reason(tenant_a, monkeypatch):
    """Seen here: the limit struck while a worker first imported ADTK (and matplotlib),
    and Python turned it into a RuntimeError raised from it."""
    from celery.exceptions import SoftTimeLimitExceeded

    from results import tasks
    from results.models import DetectionRun

    run = running_run(tenant_a, [1, 2])

    def importing(tenant_id, run, series_ids):
        raise RuntimeError("Error calling __set_name__ on 'deprecate_privatize_attribute'") from SoftTimeLimitExceeded()

    monkeypatch.setattr(tasks, "detect_series_batch", importing)
    with pytest.raises(RuntimeError):
        tasks.detect_batch(tenant_a.pk, run.pk, [1, 2])
    with tenant_scope(tenant_a):
        run.refresh_from_db()
    assert run.status == DetectionRun.Status.FAILED
    assert "a detection batch of 2 series exceeded the time limit" in run.error, run.error
