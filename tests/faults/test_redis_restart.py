"""Redis (broker and result backend, no persistence) killed and restarted in the middle of
a detection run on a real worker.

A restart loses the queue and the chord's counter, so the run cannot finish by itself:
the design answer is the janitor (``reap_stuck_runs`` fails a run with no progress) and
an idempotent re-run. The test asserts the worker reconnects on its own (same process,
new tasks run), the run is never left running, and the re-run's rows equal a clean
re-run's rows (natural keys, no duplicates).
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
# on instead of the test waiting a real minute.
JANITOR = """
from datetime import timedelta
from django.utils import timezone
from results.runs import reap_stuck_runs
print("REAPED", reap_stuck_runs(now=timezone.now() + timedelta(minutes=1, seconds=1)))
"""


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

    # Never stuck: the run either finishes, or stops making progress and the janitor fails it.
    last = {"row": None, "since": time.monotonic()}

    def finished_or_stalled():
        row = run_row(private_pg, db, run_id)
        if row[0] in FINISHED:
            return row
        if row[1:4] != last["row"]:
            last.update(row=row[1:4], since=time.monotonic())
        return "stalled" if time.monotonic() - last["since"] > 8 else None

    outcome = wait_for(finished_or_stalled, 120, "the run to finish or stall")
    if outcome == "stalled":
        assert int(line(django_python(env, JANITOR), "REAPED")[0]) == 1
        status, done, total, _, error = run_row(private_pg, db, run_id)
        assert status == "failed" and "cleared by the janitor" in error
        print(f"\nrun {run_id}: stuck at {done}/{total} series after the Redis restart; failed by the janitor")
    else:
        print(f"\nrun {run_id}: finished {outcome[0]} after the Redis restart")

    # The same worker process (reconnected, not restarted) runs the re-run to success.
    rerun = request()
    row = wait_for(lambda: finished(rerun), 120, "the re-run to finish")
    assert row[0] == "succeeded", row[4] + worker.output()
    assert row[1] == row[2] == 16
    after_fault = natural_rows(private_pg, db, tenant)
    assert after_fault[0] and len(after_fault[1]) == 4 * (8 + 1 + 1)  # nodes + cluster + tenant, per strategy

    clean = request()
    assert wait_for(lambda: finished(clean), 120, "a clean re-run")[0] == "succeeded"
    assert natural_rows(private_pg, db, tenant) == after_fault
    duplicates = private_pg.query("SELECT count(*) - count(DISTINCT (series_id, engine, window_start)) FROM results_anomaly"
                                  " WHERE tenant_id = %s", (tenant,), dbname=db)[0][0]
    assert duplicates == 0
    assert worker.alive()
    print(f"re-run after the fault: {len(after_fault[0])} anomalies, {len(after_fault[1])} scores; a clean re-run: the same rows;"
          f" recovered {time.monotonic() - restarted:.1f} s after the restart")
    worker.stop()
