"""The write path's memory of series ids: used after commit only, checked on every write,
healed when an operator deletes a series it remembers."""

from datetime import UTC, datetime

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone

from analytics.ingestion import store_batch
from analytics.models import Point, Series
from analytics.store.series_ids import SeriesIdCache, series_id_cache
from analytics.store.write import UnknownSeries, resolve_series, write_points
from tenants.models import Node
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db

KEYS = [("prod", "n1", "cpu"), ("prod", "n1", "mem"), ("prod", "n2", "cpu")]


def body(value: float, minutes: int = 3) -> dict:
    start = int(timezone.now().timestamp()) // 60 * 60 - 600
    return {"series": [{"cluster": c, "node": n, "metric": m, "points": [[start + 60 * i, value] for i in range(minutes)]}
                       for c, n, m in KEYS]}


def test_ids_are_remembered_once_committed_and_then_cost_no_query(tenant_a, django_capture_on_commit_callbacks,
                                                                 django_assert_num_queries):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first, created = resolve_series(tenant_a.pk, KEYS)
    assert created == 3 and len(series_id_cache) == 3
    with django_assert_num_queries(0):
        again, created = resolve_series(tenant_a.pk, list(reversed(KEYS)))
    assert created == 0 and dict(again) == dict(first)


def test_a_rolled_back_creation_is_not_remembered(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        resolve_series(tenant_a.pk, KEYS)
        transaction.set_rollback(True)
    assert len(series_id_cache) == 0 and series_id_cache.lookup(tenant_a.pk, KEYS) == {}


def test_tenants_do_not_share_remembered_ids(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        a, _ = resolve_series(tenant_a.pk, KEYS)
        b, created = resolve_series(tenant_b.pk, KEYS)
    assert created == 3 and not set(a.values()) & set(b.values())
    assert set(Series.objects.for_tenant(tenant_b).values_list("id", flat=True)) == set(b.values())


def test_another_tenants_id_is_refused_and_the_memory_forgotten(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resolve_series(tenant_a.pk, KEYS)
        b, _ = resolve_series(tenant_b.pk, KEYS)
    with pytest.raises(UnknownSeries), transaction.atomic():
        write_points(tenant_a.pk, b.ids, np.full(3, 1_764_000_000 * 10**9), np.ones(3))
    assert series_id_cache.lookup(tenant_a.pk, KEYS) == {}
    assert not Point.objects.unscoped().exists()


def test_a_batch_naming_a_deleted_series_recreates_it_and_stores_every_point(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), tenant_scope(tenant_a):
        assert store_batch(tenant_a, body(1.0)) == {"accepted": 9, "new_series": 3}
    old = dict(series_id_cache.lookup(tenant_a.pk, KEYS))
    Node.objects.unscoped().filter(tenant=tenant_a, name="n1").delete()  # an operator, in the admin
    with django_capture_on_commit_callbacks(execute=True), tenant_scope(tenant_a):
        assert store_batch(tenant_a, body(2.0)) == {"accepted": 9, "new_series": 2}
        series = dict(Series.objects.for_tenant(tenant_a).values_list("id", "metric_name"))
        points = list(Point.objects.for_tenant(tenant_a).values_list("series_id", "value"))
    assert set(series) == set(series_id_cache.lookup(tenant_a.pk, KEYS).values())
    assert old[KEYS[0]] not in series and old[KEYS[2]] in series  # n1's series are new, n2's kept
    assert len(points) == 9 and {sid for sid, _ in points} == set(series)  # no point of a vanished series
    assert sorted(v for sid, v in points if sid == old[KEYS[2]]) == [2.0, 2.0, 2.0]


def test_the_memory_is_bounded():
    cache = SeriesIdCache(max_entries=4)
    cache._add(1, {("c", "n", f"m{i}"): i for i in range(3)})
    cache._add(2, {("c", "n", "m0"): 10})
    assert len(cache) == 4 and cache.lookup(2, [("c", "n", "m0")]) == {("c", "n", "m0"): 10}
    cache._add(2, {("c", "n", "m1"): 11})  # past the bound: start over
    assert len(cache) == 1 and cache.lookup(1, [("c", "n", "m0")]) == {}
    assert SeriesIdCache(max_entries=0).lookup(1, [("c", "n", "m0")]) == {}


def test_later_batches_write_through_the_remembered_ids(tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), tenant_scope(tenant_a):
        store_batch(tenant_a, body(1.0))
    remembered = series_id_cache.lookup(tenant_a.pk, KEYS)
    assert len(remembered) == 3
    with tenant_scope(tenant_a):
        later = body(5.0, minutes=4)
        assert store_batch(tenant_a, later) == {"accepted": 12, "new_series": 0}
        rows = Series.objects.for_tenant(tenant_a).values_list("node__name", "metric_name", "id", "last_point_at")
        newest = datetime.fromtimestamp(later["series"][0]["points"][-1][0], UTC)
        assert {("prod", n, m): sid for n, m, sid, _ in rows} == remembered
        assert {last for *_, last in rows} == {newest}  # last_point_at advanced through the remembered ids
