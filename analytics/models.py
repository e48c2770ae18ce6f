"""The metric store: series, hot points, cold chunks, roll-ups and ingestion counters.

Every table is tenant-owned (``TenantOwned``) and every index starts with the tenant.
The code that reads and writes these tables lives in ``analytics.store``; on PostgreSQL
the hot ``Point`` table is partitioned by day (see migration 0001 and
``analytics.store.partitions``), on SQLite it is a plain table with the same columns.

Tables with many rows (points, roll-ups) have no database-level foreign keys: a
foreign-key check per inserted row would cost more than the insert itself, and only the
store's write and compaction paths insert into them, always for series of the tenant.
Django still cascades deletes of a series or a tenant to them.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwned


def _tenant_fk(*, db_constraint: bool = True) -> models.ForeignKey:
    # The composite indexes below all start with the tenant, so the single-column index
    # Django would add for the foreign key is redundant.
    return models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=db_constraint
    )


class Series(TenantOwned):
    """One metric of one node: the unit of storage, detection and reading."""

    tenant = _tenant_fk()
    cluster = models.ForeignKey("tenants.Cluster", on_delete=models.CASCADE, related_name="series", db_index=False)
    node = models.ForeignKey("tenants.Node", on_delete=models.CASCADE, related_name="series", db_index=False)
    metric_name = models.CharField(max_length=128)
    unit = models.CharField(max_length=32, blank=True, default="")
    labels = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_point_at = models.DateTimeField(null=True, blank=True, help_text="Newest point written (write path).")
    analysed_until = models.DateTimeField(
        null=True, blank=True, help_text="Detection watermark: the newest point analysed (never past the newest point)."
    )

    class Meta:
        verbose_name_plural = "series"
        constraints = [models.UniqueConstraint(fields=["tenant", "node", "metric_name"], name="series_tenant_node_metric")]
        indexes = [models.Index(fields=["tenant", "cluster", "node"], name="series_tenant_cluster_node")]

    def __str__(self) -> str:
        return f"{self.metric_name} on node {self.node_id}"


class Point(TenantOwned):
    """A hot raw point. PostgreSQL: partitioned by range of ``ts``, one partition a day
    plus a DEFAULT partition; primary key (tenant_id, series_id, ts); no foreign keys."""

    pk = models.CompositePrimaryKey("tenant", "series", "ts")
    tenant = _tenant_fk(db_constraint=False)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    ts = models.DateTimeField()
    value = models.FloatField()


class Chunk(TenantOwned):
    """One series' points of one UTC day, encoded (see ``analytics.store.codec``)."""

    tenant = _tenant_fk()
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+", db_index=False)
    period_start = models.DateTimeField(help_text="UTC midnight; the chunk covers [period_start, +1 day).")
    count = models.IntegerField()
    first_ts = models.DateTimeField()
    last_ts = models.DateTimeField()
    min = models.FloatField()
    max = models.FloatField()
    sum = models.FloatField()
    ts_data = models.BinaryField()
    value_data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "series", "period_start"], name="chunk_tenant_series_period")]


class Rollup(TenantOwned):
    """Aggregates of a series over a 5-minute or 1-hour bucket of compacted (cold) days.

    The primary key is the natural key (no surrogate id: it would cost a second index
    on the store's second-largest table)."""

    class Resolution(models.IntegerChoices):
        FIVE_MINUTES = 300, "5m"
        ONE_HOUR = 3600, "1h"

    pk = models.CompositePrimaryKey("tenant", "series", "resolution", "bucket_start")
    tenant = _tenant_fk(db_constraint=False)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    resolution = models.IntegerField(choices=Resolution.choices, help_text="Bucket width in seconds.")
    bucket_start = models.DateTimeField()
    min = models.FloatField()
    max = models.FloatField()
    sum = models.FloatField()
    count = models.IntegerField()

    @property
    def mean(self) -> float:
        return self.sum / self.count


class TenantDailyCounter(TenantOwned):
    """Ingestion per tenant per UTC day (billing, admin console). One upsert per batch."""

    tenant = _tenant_fk()
    day = models.DateField()
    points_accepted = models.BigIntegerField(default=0)
    points_rejected = models.BigIntegerField(default=0)
    rejected_by_reason = models.JSONField(default=dict, blank=True)
    batches = models.BigIntegerField(default=0, help_text="Batches accepted.")
    rejected_batches = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="tenantcounter_tenant_day")]


class NodeDailyCounter(TenantOwned):
    """Ingestion per node per UTC day; ``last_point_at`` drives stale-node detection."""

    tenant = _tenant_fk()
    node = models.ForeignKey("tenants.Node", on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    points_accepted = models.BigIntegerField(default=0)
    last_point_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "node", "day"], name="nodecounter_tenant_node_day")]
        indexes = [models.Index(fields=["tenant", "day"], name="nodecounter_tenant_day")]
