"""Retention per plan: cold chunks and roll-ups older than ``cold_retention_days`` go.

Hot points are never deleted uncompacted: anything older than the shortest hot
retention is compacted first (normally a no-op, as the periodic compaction runs well
inside it), and the chunks it makes are then subject to the same cold retention.
A chunk goes when its whole day is older than the cut-off (midnight of now minus the
plan's days); roll-up buckets go when they start before the cut-off.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from analytics.models import Chunk, Rollup, Series
from analytics.store.compaction import compact
from tenants.models import Tenant

log = logging.getLogger(__name__)
ID_BATCH = 5_000


def _midnight(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def cold_cutoff(now: datetime, cold_retention_days: int) -> datetime:
    return _midnight(now) - timedelta(days=cold_retention_days)


def apply_retention_for_tenant(tenant_id: int, cold_retention_days: int, now: datetime) -> dict[str, int]:
    cutoff = cold_cutoff(now, cold_retention_days)
    ids = list(Series.objects.for_tenant(tenant_id).order_by("id").values_list("id", flat=True))
    chunks = rollups = 0
    for i in range(0, len(ids), ID_BATCH):  # the indexes lead with (tenant, series): keep series in the query
        batch = ids[i:i + ID_BATCH]
        chunks += Chunk.objects.for_tenant(tenant_id).filter(series_id__in=batch, period_start__lt=cutoff).delete()[0]
        rollups += (
            Rollup.objects.for_tenant(tenant_id)
            .filter(series_id__in=batch, resolution__in=[r.value for r in Rollup.Resolution], bucket_start__lt=cutoff)
            .delete()[0]
        )
    return {"chunks": chunks, "rollups": rollups}


def apply_retention(now: datetime | None = None, tenant_id: int | None = None) -> dict[int, dict[str, int]]:
    """Apply every tenant's plan (or one tenant's); returns {tenant_id: rows deleted}."""
    now = now or datetime.now(UTC)
    rows = Tenant.objects.select_related("plan").order_by("pk")
    if tenant_id is not None:
        rows = rows.filter(pk=tenant_id)
    tenants = list(rows)
    if not tenants:
        return {}
    shortest_hot = min(t.plan.hot_retention_days for t in tenants)
    compact(before=_midnight(now) - timedelta(days=shortest_hot))
    deleted = {t.pk: apply_retention_for_tenant(t.pk, t.plan.cold_retention_days, now) for t in tenants}
    total = {k: sum(d[k] for d in deleted.values()) for k in ("chunks", "rollups")}
    if any(total.values()):
        log.info("retention deleted %s", total)
    return deleted
