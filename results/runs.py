"""Detection runs: claim one, plan its batches, record their progress, finish it, and the
janitor (asking for a run, which enqueues its task, is ``results.tasks.request_run``).

A run's batches are planned once, in the database (``DetectionBatch``), and each batch
commits its results, its progress and usage counts and its own "done" mark in one
transaction; the batch that commits last triggers the aggregation. So any message may
be delivered twice (a worker lost before its acknowledgement, an orchestrator
redelivered, a run resumed by the janitor) without a series being analysed or counted
twice, and a run does not depend on a broker-side counter to finish.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.models import Series
from results.models import DetectionBatch, DetectionRun
from tenants import billing

Status = DetectionRun.Status


def runs(tenant_id: int):
    return DetectionRun.objects.for_tenant(tenant_id)


def batches(tenant_id: int, run_id: int):
    return DetectionBatch.objects.for_tenant(tenant_id).filter(run_id=run_id)


def claim(tenant_id: int, run_id: int) -> bool:
    """Mark the run running; False if it already finished (a redelivered task)."""
    now = timezone.now()
    claimed = runs(tenant_id).filter(pk=run_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.RUNNING, started_at=Coalesce(F("started_at"), now), heartbeat_at=now
    )
    return claimed == 1


def window_floor(moment: datetime) -> datetime:
    """Round down to the detection window, so runs only see complete windows."""
    step = settings.FLEETWATCH_DETECTION_WINDOW_SECONDS
    return datetime.fromtimestamp(int(moment.timestamp()) // step * step, tz=moment.tzinfo)


def window_ceil(moment: datetime) -> datetime:
    floor = window_floor(moment)
    return floor if floor == moment else floor + timedelta(seconds=settings.FLEETWATCH_DETECTION_WINDOW_SECONDS)


def prepare(tenant_id: int, run_id: int) -> list[list[int]] | None:
    """Claim the run; fix its end (at most the present) and its batches, once (a
    redelivered orchestrator or a resumed run finds the same plan); return the batches
    not done yet (each a list of series ids), or None if the run already finished."""
    if not claim(tenant_id, run_id):
        return None
    with transaction.atomic():
        run = runs(tenant_id).select_for_update().get(pk=run_id)
        present = window_floor(timezone.now())
        # never past the present: there is no data there (an end in 2126 must not reach the future)
        if run.range_end is None or run.range_end > present:
            run.range_end = present
            run.save(update_fields=["range_end"])
        planned = batches(tenant_id, run_id)
        if not planned.exists():
            ids = list(Series.objects.for_tenant(tenant_id).order_by("pk").values_list("pk", flat=True))
            size = settings.FLEETWATCH_DETECTION_BATCH_SIZE
            DetectionBatch.objects.for_tenant(tenant_id).bulk_create([
                DetectionBatch(tenant_id=tenant_id, run_id=run_id, first_series_id=ids[i], series_ids=ids[i:i + size])
                for i in range(0, len(ids), size)
            ])
            run.series_total = len(ids)
            run.save(update_fields=["series_total"])
        return list(planned.filter(finished_at=None).order_by("first_series_id").values_list("series_ids", flat=True))


def take_batch(tenant_id: int, run_id: int, series_ids: list[int]) -> DetectionBatch:
    """The batch's record, locked until the caller's transaction ends: a copy of the batch
    delivered again waits here for the first to commit, then finds it done."""
    return batches(tenant_id, run_id).select_for_update().get(first_series_id=series_ids[0])


def finish_batch(tenant_id: int, batch: DetectionBatch, summaries: list[dict], *, skipped: Mapping[str, int], points: int,
                 windows: int, seconds: float) -> bool:
    """In the batch's transaction: record its progress (with the series it skipped, by
    reason) and usage and mark it done with its series' summaries. True if it was the
    run's last batch. The run's row is locked first, so batches finishing together
    decide this one at a time."""
    run = runs(tenant_id).select_for_update().only("skipped_reasons").get(pk=batch.run_id)
    reasons = Counter(run.skipped_reasons) + Counter(skipped)
    analysed = len(batch.series_ids) - sum(skipped.values())
    runs(tenant_id).filter(pk=batch.run_id).update(
        series_done=F("series_done") + analysed,
        series_skipped=F("series_skipped") + sum(skipped.values()),
        skipped_reasons=dict(reasons),
        points_analysed=F("points_analysed") + points,
        windows_analysed=F("windows_analysed") + windows,
        detect_seconds=F("detect_seconds") + seconds,
        heartbeat_at=timezone.now(),
    )
    billing.meter_analysis(tenant_id, analysed)  # usage: series analysed
    batch.summaries, batch.finished_at = summaries, timezone.now()
    batch.save(update_fields=["summaries", "finished_at"])
    return not batches(tenant_id, batch.run_id).filter(finished_at=None).exists()


def summaries(tenant_id: int, run_id: int) -> list[dict]:
    """Every series' summary of the run, from its done batches."""
    done = batches(tenant_id, run_id).exclude(finished_at=None).order_by("first_series_id")
    return [summary for batch in done.values_list("summaries", flat=True) for summary in batch]


def finish(tenant_id: int, run_id: int, status: str, *, error: str = "", **fields) -> None:
    finished = runs(tenant_id).filter(pk=run_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=status, error=error[:2000], finished_at=timezone.now(), **fields
    )
    if finished:  # usage: once per run, at its transition
        billing.meter_run_finished(tenant_id, status)


def reap_stuck_runs(now: datetime | None = None) -> list[tuple[int, int]]:
    """The janitor (a system task): runs with no progress for FLEETWATCH_RUN_STALE_MINUTES.

    A stuck run is resumed: returned as (tenant id, run id) for the caller to enqueue its
    orchestrator again, which re-sends the batches not done (their messages may have
    been lost, e.g. with the broker's memory; a copy of one still queued does nothing),
    and its clock restarts. A run that made no progress since it was resumed is failed."""
    now = now or timezone.now()
    minutes = settings.FLEETWATCH_RUN_STALE_MINUTES
    before = now - timedelta(minutes=minutes)
    active = DetectionRun.objects.unscoped().filter(status__in=[Status.QUEUED, Status.RUNNING])
    stale = active.filter(Q(heartbeat_at__lt=before) | Q(heartbeat_at=None, created_at__lt=before))
    stale.filter(resumed_at__isnull=False, heartbeat_at__lte=F("resumed_at")).update(
        status=Status.FAILED,
        finished_at=now,
        error=f"no progress for {minutes} minutes, even after it was resumed (worker lost or stuck); failed by the janitor",
    )
    resumed = list(stale.values_list("tenant_id", "pk"))  # the rest: still queued or running
    DetectionRun.objects.unscoped().filter(pk__in=[pk for _, pk in resumed]).update(resumed_at=now, heartbeat_at=now)
    return resumed
