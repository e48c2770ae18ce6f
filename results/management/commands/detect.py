"""Backfill detection over any range: ``manage.py detect --tenant SLUG --from ... --to ...``."""

import time
from datetime import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from results import runs
from results.models import DetectionRun
from results.tasks import detect_batch, finalize_run, run_tenant_detection
from tenants.models import Tenant
from tenants.scoping import tenant_scope


def aware(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option}: not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise CommandError(f"{option}: give a UTC offset, e.g. {value}+00:00")
    return moment


def skipped(run: DetectionRun) -> str:
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(run.skipped_reasons.items()))
    return f"; skipped: {reasons}" if reasons else ""


class Command(BaseCommand):
    help = "Run detection for one tenant over a range (default: incremental, from each series' watermark)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--from", dest="start", help="ISO 8601 start with offset")
        parser.add_argument("--to", dest="end", help="ISO 8601 end with offset (default: now)")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--background", action="store_true",
                            help="queue the run and return: for the workers, or without a broker for the serving "
                                 "process's embedded scheduler (manage.py serve)")

    def handle(self, *args, tenant, start, end, no_progress, background, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"--tenant: no tenant {tenant!r}")
        start_at = aware(start, "--from") if start else None
        end_at = aware(end, "--to") if end else timezone.now()
        if start_at and start_at >= end_at:
            raise CommandError("--to: must be after --from")
        trigger = DetectionRun.Trigger.BACKFILL if start_at else DetectionRun.Trigger.MANUAL
        with tenant_scope(tenant_obj):
            run = DetectionRun.objects.create(tenant=tenant_obj, trigger=trigger, range_start=start_at, range_end=end_at)
            if background:
                if not settings.CELERY_TASK_ALWAYS_EAGER:
                    run_tenant_detection.delay(tenant_obj.pk, run_id=run.pk)
                self.stdout.write(f"run {run.pk} queued")
                return
            if settings.CELERY_TASK_ALWAYS_EAGER:
                self.run_here(tenant_obj.pk, run.pk, no_progress)
            else:
                self.run_on_workers(tenant_obj.pk, run.pk, no_progress)
            run.refresh_from_db()
        self.stdout.write(
            f"run {run.pk} {run.status}: {run.series_done} series, {run.points_analysed} points, "
            f"{run.anomalies_found} anomalies{skipped(run)}{'; ' + run.error if run.error else ''}"
        )
        if run.status != DetectionRun.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}")

    def run_here(self, tenant_id: int, run_id: int, no_progress: bool) -> None:
        """No broker: the batches run in this process, one after another."""
        batches = runs.prepare(tenant_id, run_id)
        if batches is None:
            return
        if not batches:
            finalize_run(tenant_id=tenant_id, run_id=run_id)
        with tqdm(total=sum(map(len, batches)), unit="series", disable=no_progress) as bar:
            for batch in batches:
                detect_batch(tenant_id, run_id, batch)  # the last one's commit runs the aggregation
                bar.update(len(batch))

    def run_on_workers(self, tenant_id: int, run_id: int, no_progress: bool) -> None:
        """With a broker: hand the run to the workers and follow its progress."""
        run_tenant_detection.delay(tenant_id, run_id=run_id)
        with tqdm(unit="series", disable=no_progress) as bar:
            while True:
                run = runs.runs(tenant_id).get(pk=run_id)
                bar.total = run.series_total or None
                bar.update(run.series_done + run.series_skipped - bar.n)
                if run.status in DetectionRun.FINISHED:
                    return
                time.sleep(0.5)  # polling a progress bar, not synchronising a test
