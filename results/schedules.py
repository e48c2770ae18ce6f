"""Beat schedules in django-celery-beat: one detection entry per tenant, kept in step
with the tenant and its plan, plus the system's maintenance entries."""

from __future__ import annotations

import json

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tenants.models import Tenant

DETECTION_TASK = "results.tasks.run_tenant_detection"

# name -> (task, every minutes): storage maintenance and the janitor.
SYSTEM_ENTRIES = {
    "storage: ensure partitions": ("analytics.store.ensure_partitions", 60),
    "storage: compact closed periods": ("analytics.store.compact_closed_periods", 60),
    "storage: apply retention": ("analytics.store.apply_retention", 24 * 60),
    "detection: reap stuck runs": ("results.tasks.reap_stuck_runs", 5),
    # Releases ended silences, re-posts firing alerts, re-sends what a lost message left due.
    "notifications: sweep the outbox": ("results.notifications.sweep", 1),
}


def _every(minutes: int) -> IntervalSchedule:
    return IntervalSchedule.objects.get_or_create(every=minutes, period=IntervalSchedule.MINUTES)[0]


def detection_entry_name(tenant: Tenant) -> str:
    return f"detect: tenant {tenant.pk}"


def sync_tenant_schedule(tenant: Tenant) -> PeriodicTask:
    """Create or update the tenant's entry. It expires after one interval, so a backlog
    that piled up while workers were down runs once, not once per missed tick."""
    minutes = tenant.plan.detection_interval_minutes
    entry, _ = PeriodicTask.objects.update_or_create(
        name=detection_entry_name(tenant),
        defaults={
            "task": DETECTION_TASK,
            "interval": _every(minutes),
            "args": json.dumps([tenant.pk]),
            "kwargs": "{}",
            "expire_seconds": minutes * 60,
            "enabled": tenant.is_active,
            "description": f"Periodic anomaly detection for {tenant.slug}, every {minutes} min (from its plan).",
            "queue": None,
        },
    )
    return entry


def sync_system_schedules() -> None:
    for name, (task, minutes) in SYSTEM_ENTRIES.items():
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": _every(minutes), "expire_seconds": minutes * 60}
        )
