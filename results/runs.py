"""Detection runs: claim one, record its progress, finish it (asking for one, which
enqueues its task, is ``results.tasks.request_run``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from analytics.models import Series
from results.models import DetectionRun
from tenants import billing

Status = DetectionRun.Status


def runs(tenant_id: int):
    return DetectionRun.objects.for_tenant(tenant_id)


def claim(tenant_id: int, run_id: int) -> bool:
    """Mark the run running; False if it already finished (a redelivered task)."""
    now = timezone.now()
    claimed = runs(tenant_id).filter(pk=run_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now
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
    """Claim the run, fix its end (at most the present), and split the tenant's series into batches; None if
    the run already finished (a redelivered task)."""
    if not claim(tenant_id, run_id):
        return None
    run = runs(tenant_id).get(pk=run_id)
    present = window_floor(timezone.now())
    # Fixed once, so a redelivered orchestrator covers the same range; never past the
    # present (no data there: an end in 2126 must not reach into the future).
    if run.range_end is None or run.range_end > present:
        runs(tenant_id).filter(pk=run_id).update(range_end=present)
    ids = list(Series.objects.for_tenant(tenant_id).order_by("pk").values_list("pk", flat=True))
    runs(tenant_id).filter(pk=run_id).update(series_total=len(ids))
    size = settings.FLEETWATCH_DETECTION_BATCH_SIZE
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def record_progress(tenant_id: int, run_id: int, *, series: int, skipped: int, points: int, windows: int, seconds: float) -> None:
    runs(tenant_id).filter(pk=run_id).update(
        series_done=F("series_done") + series,
        series_skipped=F("series_skipped") + skipped,
        points_analysed=F("points_analysed") + points,
        windows_analysed=F("windows_analysed") + windows,
        detect_seconds=F("detect_seconds") + seconds,
        heartbeat_at=timezone.now(),
    )


def finish(tenant_id: int, run_id: int, status: str, *, error: str = "", **fields) -> None:
    finished = runs(tenant_id).filter(pk=run_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=status, error=error[:2000], finished_at=timezone.now(), **fields
    )
    if finished:  # usage: once per run, at its transition
        billing.meter_run_finished(tenant_id, status)


def reap_stuck_runs(now: datetime | None = None) -> int:
    """Fail runs that have made no progress for FLEETWATCH_RUN_STALE_MINUTES (system task)."""
    now = now or timezone.now()
    limit = timedelta(minutes=settings.FLEETWATCH_RUN_STALE_MINUTES)
    stale = DetectionRun.objects.unscoped().filter(status__in=[Status.QUEUED, Status.RUNNING])
    stale = stale.filter(heartbeat_at__lt=now - limit) | stale.filter(heartbeat_at=None, created_at__lt=now - limit)
    return stale.update(
        status=Status.FAILED,
        finished_at=now,
        error=f"no progress for {settings.FLEETWATCH_RUN_STALE_MINUTES} minutes (worker lost or stuck); cleared by the janitor",
    )
