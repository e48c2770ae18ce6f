"""Storage maintenance tasks (route them to a queue of their own, e.g. "maintenance").

All idempotent and safe to overlap (compaction serialises per day in the database);
they take ids and plain values, never model instances.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from celery import shared_task
from django.db import InterfaceError, OperationalError

from analytics.store.compaction import compact
from analytics.store.partitions import ensure_partitions
from analytics.store.retention import apply_retention

# The store also talks to psycopg directly: its lock timeouts and deadlocks are not wrapped by Django.
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError, psycopg.OperationalError)
RETRY: dict[str, Any] = {"autoretry_for": TRANSIENT, "retry_backoff": True, "retry_backoff_max": 600, "max_retries": 5, "acks_late": True}


@shared_task(name="analytics.store.ensure_partitions", **RETRY)
def ensure_partitions_task(days_ahead: int = 3) -> list[str]:
    """Create the coming days' partitions of the hot table. Hourly."""
    return ensure_partitions(days_ahead=days_ahead)


@shared_task(name="analytics.store.compact_closed_periods", **RETRY)
def compact_closed_periods(before: str | None = None) -> dict:
    """Compact closed days (before midnight of now minus the grace). Hourly."""
    return compact(datetime.fromisoformat(before) if before else None).as_dict()


@shared_task(name="analytics.store.apply_retention", **RETRY)
def apply_retention_task(tenant_id: int | None = None) -> dict:
    """Delete cold data beyond each plan's retention (one tenant, or all). Daily."""
    return {str(k): v for k, v in apply_retention(tenant_id=tenant_id).items()}
