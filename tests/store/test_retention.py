"""Retention per plan: exactly the old cold rows of each tenant go; hot points are compacted first."""

from datetime import timedelta

import pytest

from analytics.models import Chunk, Point, Rollup
from analytics.store.compaction import compact
from analytics.store.retention import apply_retention
from analytics.tasks import apply_retention_task
from tests.store.conftest import D0, DAY, snapshot, write

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_partitions")]

KEYS = [("prod", "n1", "cpu")]


def days_of(model, tenant, field):
    return sorted({getattr(r, field).date() for r in model.objects.for_tenant(tenant)})


def test_each_tenant_keeps_exactly_its_plans_cold_retention(tenant_x, tenant_y):
    # tenant_x: 90 days cold; tenant_y: 30 days cold. Data on days D0-100 .. D0 (every 10 days).
    days = [D0 - timedelta(days=d) for d in range(0, 101, 10)]
    for tenant in (tenant_x, tenant_y):
        for day in days:
            write(tenant, KEYS, day, 60)
    compact(D0 + DAY)
    now = D0 + timedelta(hours=12)
    deleted = apply_retention(now=now)
    cut_x, cut_y = (D0 - timedelta(days=90)).date(), (D0 - timedelta(days=30)).date()
    assert days_of(Chunk, tenant_x, "period_start") == [d.date() for d in days if d.date() >= cut_x][::-1]
    assert days_of(Chunk, tenant_y, "period_start") == [d.date() for d in days if d.date() >= cut_y][::-1]
    assert days_of(Rollup, tenant_x, "bucket_start") == days_of(Chunk, tenant_x, "period_start")
    assert days_of(Rollup, tenant_y, "bucket_start") == days_of(Chunk, tenant_y, "period_start")
    assert deleted[tenant_x.pk]["chunks"] == 1 and deleted[tenant_y.pk]["chunks"] == 7
    assert deleted[tenant_y.pk]["rollups"] == 7 * (12 + 1)  # 60 minutes: twelve 5-minute buckets and one hour
    assert apply_retention(now=now) == {tenant_x.pk: {"chunks": 0, "rollups": 0}, tenant_y.pk: {"chunks": 0, "rollups": 0}}


def test_hot_points_beyond_hot_retention_are_compacted_not_deleted(tenant_x):
    ids, _ = write(tenant_x, KEYS, D0 - timedelta(days=10), 1440)  # hot retention 7 days, cold 90
    before = snapshot(tenant_x, ids.values(), D0 - timedelta(days=11), D0)
    apply_retention(now=D0)
    assert Point.objects.for_tenant(tenant_x).count() == 0
    assert Chunk.objects.for_tenant(tenant_x).count() == 1
    assert snapshot(tenant_x, ids.values(), D0 - timedelta(days=11), D0) == before


def test_retention_of_one_tenant_leaves_the_others_alone(tenant_x, tenant_y):
    for tenant in (tenant_x, tenant_y):
        write(tenant, KEYS, D0 - timedelta(days=40), 60)
    compact(D0)
    apply_retention_task.delay(tenant_id=tenant_y.pk)  # eager without a broker
    assert Chunk.objects.for_tenant(tenant_y).count() == 0
    assert Chunk.objects.for_tenant(tenant_x).count() == 1
