"""The plan's hard_limit_series at ingestion: a batch that would create series beyond it
answers 429 naming the limit, stores nothing, is counted in ingestion health, and two
concurrent batches cannot both slip past it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from analytics.health import tenant_detail
from analytics.models import Series, TenantDailyCounter
from analytics.store import series_ids
from tenants.models import Plan
from tests.conftest import api_client_for
from tests.console.conftest import points_body, post_batch
from tests.ingest.points import point_count

pytestmark = pytest.mark.django_db(transaction=True)


def series_body(*nodes: str, points: int = 3) -> dict:
    return {"series": [s for node in nodes for s in points_body(points, node=node)["series"]]}


def series_count(tenant) -> int:
    return Series.objects.for_tenant(tenant).count()


def test_a_batch_creating_series_beyond_the_limit_is_refused_whole_and_counted(api_a, tenant_a, plan):
    Plan.objects.filter(pk=plan.pk).update(hard_limit_series=3)
    assert post_batch(api_a, series_body("n1", "n2")).status_code == 200
    stored = point_count(tenant_a)

    response = post_batch(api_a, series_body("n1", "n3", "n4"))  # one existing, two new: 4 > 3
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "series_limit_exceeded"
    assert "hard_limit_series is 3" in error["message"] and "Nothing of the batch was stored" in error["message"]
    assert (series_count(tenant_a), point_count(tenant_a)) == (2, stored)
    counter = TenantDailyCounter.objects.for_tenant(tenant_a).get()
    assert counter.rejected_by_reason["series limit"] == 9 and counter.rejected_batches == 1
    assert tenant_detail(tenant_a).rejected_by_reason_week["series limit"] == 9

    # up to the limit exactly, and existing series always
    assert post_batch(api_a, series_body("n1", "n3")).status_code == 200
    assert post_batch(api_a, series_body("n1", "n2", "n3", points=5)).status_code == 200
    assert series_count(tenant_a) == 3


def test_no_limit_means_no_limit(api_a, tenant_a):
    assert post_batch(api_a, series_body(*(f"n{i}" for i in range(30)), points=1)).status_code == 200
    assert series_count(tenant_a) == 30


@pytest.mark.postgres  # SQLite serialises writers: there is no race to test
def test_two_concurrent_batches_cannot_both_create_series_past_the_limit(tenant_a, plan, key_a, monkeypatch):
    """Both look their series up together (a barrier holds them after the lookup, before
    the lock), each finds two unknown: exactly one batch may create them."""
    Plan.objects.filter(pk=plan.pk).update(hard_limit_series=3)
    barrier = threading.Barrier(2, timeout=30)
    original = series_ids.series_id_cache.lookup

    def lookup_then_wait(tenant_id, keys):
        found = original(tenant_id, keys)
        barrier.wait()
        return found

    monkeypatch.setattr(series_ids.series_id_cache, "lookup", lookup_then_wait)
    statuses: list[int] = []

    def send(nodes: tuple[str, str]) -> None:
        try:
            statuses.append(post_batch(api_client_for(key_a), series_body(*nodes)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(nodes,)) for nodes in (("a1", "a2"), ("b1", "b2"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200, 429]
    assert series_count(tenant_a) == 2 and point_count(tenant_a) == 6
