"""Fixtures of the metric store's tests: two tenants on plans with different retention,
series helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection, transaction

from tenants.models import Plan, Tenant

DAY = timedelta(days=1)
D0 = datetime(2026, 1, 10, tzinfo=UTC)  # a fixed, closed day: tests never depend on today


@pytest.fixture
def clean_partitions(request):
    """Drop daily partitions left by earlier tests (PostgreSQL), so each test starts
    with DEFAULT only."""
    if connection.vendor == "postgresql":
        from analytics.store.partitions import daily_partitions

        with transaction.atomic(), connection.cursor() as cur:
            for name in daily_partitions().values():
                cur.execute(f"DROP TABLE {name}")


@pytest.fixture
def plans(db):
    short = Plan.objects.create(slug="short", name="Short", hot_retention_days=2, cold_retention_days=30)
    long = Plan.objects.create(slug="long", name="Long", hot_retention_days=7, cold_retention_days=90)
    return short, long


@pytest.fixture
def tenant_x(plans):
    return Tenant.objects.create(slug="store-x", name="X", plan=plans[1])


@pytest.fixture
def tenant_y(plans):
    return Tenant.objects.create(slug="store-y", name="Y", plan=plans[0])


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def minute_grid(start: datetime, minutes: int, step_s: int = 60) -> np.ndarray:
    return ns(start) + np.arange(minutes, dtype=np.int64) * step_s * 1_000_000_000


def write(tenant, keys, start: datetime, minutes: int, *, seed: int = 0, step_s: int = 60, values=None):
    """Write one point per step per key; returns (ResolvedSeries, {series_id: (ts_ns, values)})."""
    from analytics.store.write import resolve_series, write_points

    rng = np.random.default_rng(seed)
    with transaction.atomic():
        ids, _ = resolve_series(tenant.pk, keys)
        ts = minute_grid(start, minutes, step_s)
        written = {}
        all_s, all_t, all_v = [], [], []
        for key in keys:
            sid = ids[key]
            v = rng.normal(50, 10, len(ts)).round(2) if values is None else np.asarray(values, dtype=np.float64)
            written[sid] = (ts, v)
            all_s.append(np.full(len(ts), sid, dtype=np.int64))
            all_t.append(ts)
            all_v.append(v)
        write_points(tenant.pk, np.concatenate(all_s), np.concatenate(all_t), np.concatenate(all_v))
    return ids, written


def snapshot(tenant, series_ids, start: datetime, end: datetime) -> dict[int, list[tuple[int, float]]]:
    """Every (ts ns, value) per series as the read path returns them."""
    from analytics.store.read import get_metric_series_batch

    out = {}
    for s in get_metric_series_batch(tenant.pk, list(series_ids), start, end):
        out[s.metadata["series_id"]] = list(zip(s.timestamps.asi8.tolist(), s.values.tolist(), strict=True))
    return out
