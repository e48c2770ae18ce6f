"""The janitor: a run with no progress for FLEETWATCH_RUN_STALE_MINUTES is resumed (its
orchestrator enqueued again, which re-sends the batches not done); one that made no
progress since its resume is failed; nothing else is touched."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics.models import Series
from results import runs
from results.models import DetectionRun
from results.tasks import reap_stuck_runs
from tenants.models import UsageDaily
from tenants.scoping import tenant_scope
from tests.results.fleet import fleet_now, ingest, make_fleet

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LIMIT = timedelta(minutes=30)


def ago(delta: timedelta) -> datetime:
    return NOW - delta


@pytest.fixture
def stale_limit(settings):
    settings.FLEETWATCH_RUN_STALE_MINUTES = 30


def make_run(tenant, status, *, heartbeat=None, created=None, resumed=None) -> DetectionRun:
    with tenant_scope(tenant):
        return DetectionRun.objects.create(tenant=tenant, trigger="periodic", status=status, heartbeat_at=heartbeat,
                                           created_at=created or ago(2 * LIMIT), resumed_at=resumed)


def state(run) -> tuple:
    run = DetectionRun.objects.unscoped().get(pk=run.pk)
    return run.status, run.heartbeat_at, run.resumed_at, run.finished_at, run.error


@pytest.mark.django_db
def test_stale_runs_are_resumed_once_and_failed_when_a_resume_did_not_help(tenant_a, tenant_b, stale_limit):
    second = timedelta(seconds=1)
    stale = make_run(tenant_a, "running", heartbeat=ago(LIMIT + second))
    live = make_run(tenant_a, "running", heartbeat=ago(LIMIT - second))
    at_the_limit = make_run(tenant_a, "running", heartbeat=ago(LIMIT))  # not yet: stale means older than the limit
    never_started = make_run(tenant_a, "queued", created=ago(LIMIT + second))
    just_queued = make_run(tenant_a, "queued", created=ago(LIMIT - second))
    hopeless = make_run(tenant_a, "running", heartbeat=ago(LIMIT + second), resumed=ago(LIMIT + second))
    stalled_again = make_run(tenant_a, "running", heartbeat=ago(LIMIT + second), resumed=ago(3 * LIMIT))
    finished = [make_run(tenant_a, status, heartbeat=ago(3 * LIMIT)) for status in DetectionRun.FINISHED]
    other_tenant = make_run(tenant_b, "running", heartbeat=ago(LIMIT + second))
    untouched = {run.pk: state(run) for run in [live, at_the_limit, just_queued, *finished]}

    resumed = runs.reap_stuck_runs(now=NOW)

    assert sorted(resumed) == sorted([(tenant_a.pk, stale.pk), (tenant_a.pk, never_started.pk),
                                      (tenant_a.pk, stalled_again.pk), (tenant_b.pk, other_tenant.pk)])
    for run in (stale, never_started, stalled_again, other_tenant):
        assert state(run)[:4] == (run.status, NOW, NOW, None)  # the clock restarts; still active
    status, _, _, finished_at, error = state(hopeless)
    assert (status, finished_at) == ("failed", NOW)
    assert error == ("no progress for 30 minutes, even after it was resumed (worker lost or stuck); "
                     "failed by the janitor")
    assert {run.pk: state(run) for run in [live, at_the_limit, just_queued, *finished]} == untouched

    # One limit later: the resumed runs made no progress and are failed; the ones that
    # were live then have gone stale since, and get their one resume.
    later = runs.reap_stuck_runs(now=NOW + LIMIT + second)
    assert sorted(later) == sorted((tenant_a.pk, run.pk) for run in (live, at_the_limit, just_queued))
    for run in (stale, never_started, stalled_again, other_tenant):
        assert state(run)[0] == "failed"


@pytest.mark.django_db(transaction=True)
def test_the_janitor_task_resumes_a_run_whose_batches_were_lost(api_a, tenant_a, settings):
    """The run was planned, but its batch messages never arrived (e.g. lost with the
    broker): the janitor's task enqueues its orchestrator again, which sends the batches
    not done, and the run succeeds with exact totals."""
    settings.FLEETWATCH_RUN_STALE_MINUTES = 30
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=6, nodes=2)
    ingest(api_a, bodies)
    with tenant_scope(tenant_a):
        run = DetectionRun.objects.create(tenant=tenant_a, trigger="backfill", range_start=end - timedelta(hours=2),
                                          range_end=end)
        series_ids = sorted(Series.objects.values_list("pk", flat=True))
    assert runs.prepare(tenant_a.pk, run.pk) == [series_ids]  # planned (one batch); nothing sent

    assert reap_stuck_runs(now=(datetime.now(UTC) + LIMIT + timedelta(seconds=1)).isoformat()) == 1

    with tenant_scope(tenant_a):
        run.refresh_from_db()
        usage = UsageDaily.objects.get()
    assert run.status == "succeeded", run.error
    assert (run.series_total, run.series_done, run.series_skipped, run.points_analysed) == (4, 4, 0, 4 * 120)
    assert (usage.series_analysed, usage.detection_runs) == (4, 1)
