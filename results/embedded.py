"""Beat without a broker. On the embedded default (no CELERY_BROKER_URL) no beat process
or worker runs, so the serving process runs the runs left queued for it
(``run_queued_runs``) and the schedule's due detection entries (``run_due_detections``)
itself, from a thread that calls its jobs every minute (``EmbeddedScheduler``). Tasks
then run in-process, one tenant after another."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from django.db import close_old_connections
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from results.models import DetectionRun
from results.schedules import DETECTION_TASK
from results.tasks import run_tenant_detection

log = logging.getLogger(__name__)


def _interval(entry: PeriodicTask) -> timedelta:
    return timedelta(**{entry.interval.period: entry.interval.every})


def due_detection_entries(now: datetime) -> list[PeriodicTask]:
    """Enabled detection entries whose interval has passed since they last ran (or never ran)."""
    entries = PeriodicTask.objects.filter(task=DETECTION_TASK, enabled=True, interval__isnull=False).select_related("interval")
    return [e for e in entries.order_by("pk") if e.last_run_at is None or e.last_run_at + _interval(e) <= now]


def run_due_detections(now: datetime | None = None) -> list[int]:
    """Run each due detection entry here, as beat would have sent it; the ids of the runs
    started (a tenant whose previous run is still going starts none)."""
    now = now or timezone.now()
    started = []
    for entry in due_detection_entries(now):
        PeriodicTask.objects.filter(pk=entry.pk).update(last_run_at=now, total_run_count=entry.total_run_count + 1)
        run_id = run_tenant_detection(*json.loads(entry.args or "[]"), **json.loads(entry.kwargs or "{}"))
        if run_id is not None:
            started.append(run_id)
    return started


def run_queued_runs() -> list[int]:
    """Run here, oldest first, every tenant's runs left queued for it (``detect --background``:
    without a broker nothing else would); the ids of the runs it ran."""
    queued = list(DetectionRun.objects.unscoped().filter(status=DetectionRun.Status.QUEUED)
                  .order_by("pk").values_list("tenant_id", "pk"))
    for tenant_id, run_id in queued:
        run_tenant_detection(tenant_id, run_id=run_id)
    return [run_id for _, run_id in queued]


class EmbeddedScheduler(threading.Thread):
    """Calls each job every ``every`` seconds until stopped; a failing job is logged and
    tried again at the next tick (the process keeps serving)."""

    def __init__(self, jobs: Sequence[Callable[[], object]], every: float = 60.0) -> None:
        super().__init__(name="fleetwatch-embedded-scheduler", daemon=True)
        self.jobs, self.every = list(jobs), every
        self.stopped = threading.Event()

    def tick(self) -> None:
        for job in self.jobs:
            try:
                job()
            except Exception:
                log.exception("embedded scheduler: %s failed", getattr(job, "__name__", job))
            finally:
                close_old_connections()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.tick()
            self.stopped.wait(self.every)

    def stop(self) -> None:
        self.stopped.set()
