"""Detection on Celery: an orchestrator fans out a run's batches; the batch that commits
last enqueues the aggregation (``results.runs``: the plan and the counting live in the
database, not in a broker-side chord counter).

Tasks take ids, run inside the tenant's scope, and every write is an upsert on a
natural key or guarded by the batch's "done" mark, so acks_late redelivery after a lost
worker repeats no row and counts nothing twice.
"""

from __future__ import annotations

import inspect
import time
from datetime import datetime
from typing import Any

from celery import Task, group, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from config.errors import DATABASE_TRANSIENT_ERRORS
from results import runs
from results.detection import aggregate_run, detect_series_batch, run_period_start
from results.incidents.build import build_incidents
from results.models import DetectionRun
from tenants.scoping import tenant_scope

TRANSIENT = (*DATABASE_TRANSIENT_ERRORS, ConnectionError, TimeoutError)  # retried with backoff
BATCH_SOFT_LIMIT = settings.FLEETWATCH_DETECTION_TASK_SOFT_TIME_LIMIT


class TenantTask(Task):
    """Runs the body inside the scope of the tenant its ``tenant_id`` parameter names,
    found by name wherever the argument comes (positional, keyword, after a chord's
    results), never by position, and refused unless it is an integer."""

    def __call__(self, *args, **kwargs):
        with tenant_scope(tenant_id_argument(self, args, kwargs)):
            return super().__call__(*args, **kwargs)


def tenant_id_argument(task: Task, args: tuple, kwargs: dict) -> int:
    """The value bound to the task's ``tenant_id`` parameter."""
    try:
        bound = inspect.signature(task.run).bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{task.name}: {exc}") from None
    tenant_id = bound.arguments.get("tenant_id")
    if type(tenant_id) is not int:  # not a bool, a string or a Tenant either
        raise TypeError(f"{task.name}: tenant_id must be an integer, got {tenant_id!r}")
    return tenant_id


TASK_OPTIONS: dict[str, Any] = {
    "base": TenantTask,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@shared_task(**TASK_OPTIONS)
def run_tenant_detection(tenant_id: int, start: str | None = None, end: str | None = None, run_id: int | None = None,
                         trigger: str = DetectionRun.Trigger.PERIODIC) -> int | None:
    """Detect anomalies of every series of a tenant over [start, end) (default: from each
    series' watermark to now) and aggregate. Returns the run id. Given a run id it
    (re)sends that run's batches not done yet: redelivered, or resumed by the janitor."""
    if run_id is None:
        if runs.runs(tenant_id).filter(status=DetectionRun.Status.RUNNING).exists():
            return None  # the previous periodic run is still going; its watermark covers us
        run_id = DetectionRun.objects.for_tenant(tenant_id).create(
            tenant_id=tenant_id, trigger=trigger, range_start=_parse(start), range_end=_parse(end)
        ).pk
    batches = runs.prepare(tenant_id, run_id)
    if batches is None:
        return run_id  # already finished: a redelivered message
    if not batches:  # nothing (left) to analyse
        finalize_run.delay(tenant_id=tenant_id, run_id=run_id)
        return run_id
    failed = fail_run.si(tenant_id, run_id)
    group(detect_batch.s(tenant_id, run_id, ids).on_error(failed) for ids in batches).delay()
    return run_id


def request_run(tenant_id: int, trigger: str, start: datetime | None = None, end: datetime | None = None) -> DetectionRun:
    """Create a queued run and enqueue its task once the row is committed."""
    with transaction.atomic():
        run = DetectionRun.objects.for_tenant(tenant_id).create(
            tenant_id=tenant_id, trigger=trigger, range_start=start, range_end=end
        )
        transaction.on_commit(lambda: run_tenant_detection.delay(tenant_id, run_id=run.pk))
    return run


@shared_task(**TASK_OPTIONS, soft_time_limit=BATCH_SOFT_LIMIT, time_limit=BATCH_SOFT_LIMIT + 60)
def detect_batch(tenant_id: int, run_id: int, series_ids: list[int]) -> list[dict]:
    """Fetch, detect, classify, explain and store one batch of series (a batch of the
    run's plan, named by its series); return each series' worst window, which the batch's
    record keeps for the aggregation."""
    try:
        return _detect_batch(tenant_id, run_id, series_ids)
    except Exception as exc:
        if not _struck_by_soft_limit(exc):
            raise
        # Too slow: a retry would be too. Fail the run and say why.
        runs.finish(tenant_id, run_id, DetectionRun.Status.FAILED, error=(
            f"a detection batch of {len(series_ids)} series exceeded the time limit of {BATCH_SOFT_LIMIT} s "
            "(FLEETWATCH_DETECTION_TASK_SOFT_TIME_LIMIT); its results were rolled back. Raise the limit or "
            "lower FLEETWATCH_DETECTION_BATCH_SIZE."))
        raise


def _struck_by_soft_limit(exc: BaseException | None) -> bool:
    """The soft time limit, raised wherever the task was: itself, or the cause of what it
    became (during an import, Python wraps it in a RuntimeError, e.g. from __set_name__)."""
    while exc is not None:
        if isinstance(exc, SoftTimeLimitExceeded):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _detect_batch(tenant_id: int, run_id: int, series_ids: list[int]) -> list[dict]:
    run = runs.runs(tenant_id).get(pk=run_id)
    if run.status != DetectionRun.Status.RUNNING:
        return []  # cancelled or already finished
    started = time.perf_counter()
    # One transaction: results, progress, usage and the batch's "done" commit together.
    with transaction.atomic():
        batch = runs.take_batch(tenant_id, run_id, series_ids)
        if batch.finished_at is not None:
            return batch.summaries  # delivered again: done and counted already
        outcome = detect_series_batch(tenant_id, run, series_ids)
        last = runs.finish_batch(tenant_id, batch, outcome.summaries, skipped=outcome.skipped, points=outcome.points,
                                 windows=outcome.windows, seconds=time.perf_counter() - started)
    if last:  # committed: the aggregation sees every batch (lost before this, the janitor sends it)
        finalize_run.delay(tenant_id=tenant_id, run_id=run_id)
    return outcome.summaries


@shared_task(**TASK_OPTIONS)
def finalize_run(tenant_id: int, run_id: int) -> None:
    """After the run's last batch: aggregate metric -> node -> cluster -> tenant, rank,
    persist; then build incidents (``results.incidents.build``)."""
    run = runs.runs(tenant_id).get(pk=run_id)
    if run.status != DetectionRun.Status.RUNNING:
        return  # finished already (a copy of this task), failed or cancelled
    summaries = runs.summaries(tenant_id, run_id)
    anomalies = aggregate_run(tenant_id, run, summaries)
    # incidents over the run's period; a run up to the present also looks for silent nodes
    build_incidents(tenant_id, run_period_start(run, summaries), run.range_end,
                    now=run.range_end if run.range_start is None else None)
    runs.finish(tenant_id, run_id, DetectionRun.Status.SUCCEEDED, anomalies_found=anomalies)


@shared_task(base=TenantTask)
def fail_run(tenant_id: int, run_id: int, *args) -> None:
    """Error callback of the chord: the run failed; say why."""
    error = next((str(a) for a in args if isinstance(a, BaseException)), "a detection batch failed")
    runs.finish(tenant_id, run_id, DetectionRun.Status.FAILED, error=error)


@shared_task
def reap_stuck_runs(now: str | None = None) -> int:
    """The janitor (every 5 minutes): resume stuck runs, fail those a resume did not help
    (``runs.reap_stuck_runs``). ``now``: ISO 8601, for tests moving the clock on."""
    resumed = runs.reap_stuck_runs(_parse(now))
    for tenant_id, run_id in resumed:
        run_tenant_detection.delay(tenant_id, run_id=run_id)
    return len(resumed)
