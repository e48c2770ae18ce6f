"""Redis (broker and result backend, no persistence) killed and restarted in the middle of
a detection run on a real worker.

A restart loses the queued batch messages. The run's plan and progress live in
PostgreSQL (``results.runs``), so the janitor (``reap_stuck_runs``, every 5 minutes in
production) resumes the stuck run: its orchestrator re-sends the batches not done, and
the run succeeds, with exact totals (no batch analysed or counted twice) and the rows
of a clean rerun. The worker reconnects on its own (same process).
"""

from __future__ import annotations

import time

import pytest

from tests.faults.services import django_python, product_env, start_celery
from tests.polling import wait_for

pytestmark = pytest.mark.integration

FINISHED = ("succeeded", "failed", "cancelled")

SETUP = """
from tests.results.fleet import fleet_now, make_fleet
from analytics.ingestion import store_batch
from tenants.models import Plan, Tenant
plan = Plan.objects.create(slug="faults", name="Faults", hot_retention_days=7)
tenant = Tenant.objects.create(slug="acme", name="Acme", plan=plan)
end = fleet_now()
bodies, _ = make_fleet(end, hours=6, nodes={nodes})
for body in bodies:
    store_batch(tenant, body)
print("SETUP", tenant.pk, end.isoformat())
"""

REQUEST = """
from datetime import datetime, timedelta
from results.tasks import request_run
end = datetime.fromisoformat({end!r})
print("RUN", request_run({tenant}, "manual", end - timedelta(hours=6), end).pk)
"""

# The janitor as beat would run it FLEETWATCH_RUN_STALE_MINUTES (1) later: ``now`` is moved
# on instead of the test waiting a real minute. Resuming a live run is harmless (a copy of
# a batch does nothing), so when it runs does not matter.
JANITOR = """
from datetime import timedelta
from django.utils import timezone
from results.tasks import reap_stuck_runs
print("RESUMED", reap_stuck_runs(now=(timezone.now() + timedelta(minutes=1, seconds=1)).isoformat()))
"""

COUNTS = """SELECT status, series_total, series_done, series_skipped, points_analysed, windows_analysed, error
FROM results_detectionrun WHERE id = %s"""


def line(out: str, tag: str) -> list[str]:
    return next(x for x in out.splitlines() if x.startswith(tag + " ")).split()[1:]


def run_row(pg, db, run_id):
    return pg.query("SELECT status, series_done, series_total, heartbeat_at, error FROM results_detectionrun WHERE id = %s",
                    (run_id,), dbname=db)[0]


def natural_rows(pg, db, tenant):
    anomalies = pg.query("SELECT series_id, engine, window_start, window_end, score, label FROM results_anomaly"
                         " WHERE tenant_id = %s ORDER BY 1, 2, 3", (tenant,), dbname=db)
    scores = pg.query("SELECT level, subject, strategy, period_start, period_end, score FROM results_aggregatedscore"
                      " WHERE tenant_id = %s ORDER BY 1, 2, 3, 4", (tenant,), dbname=db)
    return anomalies, scores


def test_a_redis_restart_mid_run_is_survived(private_pg, fresh_database, private_redis, tmp_path):
    db = fresh_database.rsplit("/", 1)[1]
    env = product_env(fresh_database, private_redis.url(0), FLEETWATCH_DETECTION_BATCH_SIZE=1,
                      FLEETWATCH_RUN_STALE_MINUTES=1)
    tenant, end = line(django_python(env, SETUP.format(nodes=8)), "SETUP")
    tenant = int(tenant)
    worker = start_celery(env, tmp_path, "worker", "--concurrency", "1", "--pool", "prefork")
    wait_for(lambda: " ready." in worker.output(100_000), 60, "the worker to be ready")

    def request() -> int:
        return int(line(django_python(env, REQUEST.format(end=end, tenant=tenant)), "RUN")[0])

    def finished(run_id):
        row = run_row(private_pg, db, run_id)
        return row if row[0] in FINISHED else None

    run_id = request()
    wait_for(lambda: run_row(private_pg, db, run_id)[1] >= 2, 90, "the first batches of the run")
    private_redis.restart(kill=True)  # SIGKILL: everything queued or unacknowledged is gone
    restarted = time.monotonic()
    wait_for(lambda: worker.output(1_000_000).count("Connected to redis://") >= 2, 60,
             "the worker to reconnect to the new Redis")
    assert worker.alive(), worker.output()

    resumed = int(line(django_python(env, JANITOR), "RESUMED")[0])
    status, total, done, skipped, points, windows, error = wait_for(
        lambda: finished(run_id) and private_pg.query(COUNTS, (run_id,), dbname=db)[0], 120, "the run to finish")
    assert status == "succeeded", error + worker.output()
    assert (total, done, skipped, points) == (16, 16, 0, 16 * 6 * 60)
    assert worker.alive(), worker.output()
    after_fault = natural_rows(private_pg, db, tenant)
    assert after_fault[0] and len(after_fault[1]) == 4 * (8 + 1 + 1)  # nodes + cluster + tenant, per strategy
    print(f"\nrun {run_id}: succeeded after the Redis restart ({resumed} run resumed by the janitor), "
          f"recovered {time.monotonic() - restarted:.1f} s after the restart")

    # A clean rerun of the same range on the same (reconnected) worker: the same rows and counts.
    clean = request()
    assert wait_for(lambda: finished(clean), 120, "a clean rerun")[0] == "succeeded"
    assert natural_rows(private_pg, db, tenant) == after_fault
    assert private_pg.query(COUNTS, (clean,), dbname=db)[0][1:6] == (total, done, skipped, points, windows)
    usage = private_pg.query("SELECT sum(series_analysed), sum(detection_runs) FROM tenants_usagedaily WHERE tenant_id = %s",
                             (tenant,), dbname=db)[0]
    assert tuple(usage) == (32, 2)  # two runs of 16 series, each counted once
    duplicates = private_pg.query("SELECT count(*) - count(DISTINCT (series_id, engine, window_start)) FROM results_anomaly"
                                  " WHERE tenant_id = %s", (tenant,), dbname=db)[0][0]
    assert duplicates == 0
    assert worker.alive()
    worker.stop()
