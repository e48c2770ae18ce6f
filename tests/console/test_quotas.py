"""The plan's hard limit at ingestion: exact at the boundary, whole batches, counted,
read fresh (a plan changed in the admin applies at once), safe under concurrency."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from analytics.models import TenantDailyCounter
from tenants import billing, quotas
from tenants.models import Plan, UsageMonth
from tests.conftest import api_client_for
from tests.console.conftest import points_body, post_batch
from tests.ingest.points import point_count

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 10


def quota_rejections(tenant) -> tuple[int, int]:
    row = TenantDailyCounter.objects.for_tenant(tenant).get()
    return row.rejected_by_reason.get("quota", 0), row.rejected_batches


def month_points(tenant) -> int:
    return UsageMonth.objects.for_tenant(tenant).get().points_ingested


def plan_form(plan: Plan, **changes) -> dict:
    fields = ["slug", "name", "monthly_price", "included_points_per_month", "overage_price_per_million_points",
              "included_active_series", "overage_price_per_series", "hard_limit_points_per_month",
              "detection_interval_minutes", "hot_retention_days", "cold_retention_days"]
    data = {name: getattr(plan, name) for name in fields}
    data.update(changes)
    return {k: "" if v is None else str(v) for k, v in data.items()}


def test_the_boundary_is_exact_and_a_plan_change_in_the_admin_applies_at_once(api_a, tenant_a, plan, staff_client):
    Plan.objects.filter(pk=plan.pk).update(hard_limit_points_per_month=LIMIT)

    assert post_batch(api_a, points_body(LIMIT - 1)).status_code == 200
    assert point_count(tenant_a) == LIMIT - 1

    crossing = post_batch(api_a, points_body(2, offset=100))
    assert crossing.status_code == 429, crossing.content
    error = crossing.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert f"hard_limit_points_per_month is {LIMIT}" in error["message"]
    assert error["details"] == [{"field": "points", "reason": error["details"][0]["reason"]}]
    assert "hard_limit_points_per_month" in error["details"][0]["reason"]
    assert point_count(tenant_a) == LIMIT - 1  # nothing of the batch, not even its first point
    assert quota_rejections(tenant_a) == (2, 1)

    last = post_batch(api_a, points_body(1, offset=200))  # the last allowed point
    assert last.status_code == 200 and last.json()["accepted"] == 1
    assert point_count(tenant_a) == LIMIT and month_points(tenant_a) == LIMIT

    over = post_batch(api_a, points_body(1, offset=300))
    assert over.status_code == 429
    assert point_count(tenant_a) == LIMIT
    assert quota_rejections(tenant_a) == (3, 2)

    # The operator raises the limit in the admin; the very next batch goes through.
    plan.refresh_from_db()
    response = staff_client.post(f"/admin/tenants/plan/{plan.pk}/change/", plan_form(plan, hard_limit_points_per_month=LIMIT + 5))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert post_batch(api_a, points_body(5, offset=400)).status_code == 200
    assert point_count(tenant_a) == LIMIT + 5
    assert post_batch(api_a, points_body(1, offset=500)).status_code == 429

    # Removing the limit (empty) lifts it.
    plan.refresh_from_db()
    staff_client.post(f"/admin/tenants/plan/{plan.pk}/change/", plan_form(plan, hard_limit_points_per_month=None))
    assert post_batch(api_a, points_body(1, offset=600)).status_code == 200


def test_a_batch_larger_than_the_whole_limit_is_refused_on_an_empty_month(api_a, tenant_a, plan):
    Plan.objects.filter(pk=plan.pk).update(hard_limit_points_per_month=3)
    assert post_batch(api_a, points_body(4)).status_code == 429
    assert point_count(tenant_a) == 0
    assert not UsageMonth.objects.for_tenant(tenant_a).exists()
    assert post_batch(api_a, points_body(3)).status_code == 200


def test_the_limit_is_per_tenant(api_a, tenant_a, tenant_b, key_b, plan):
    Plan.objects.filter(pk=plan.pk).update(hard_limit_points_per_month=5)
    assert post_batch(api_a, points_body(5)).status_code == 200
    assert post_batch(api_a, points_body(1, offset=50)).status_code == 429
    api_b = api_client_for(key_b)
    assert post_batch(api_b, points_body(5)).status_code == 200  # B's month is its own


def test_the_authoritative_check_refuses_what_the_pre_check_let_through(tenant_a, plan):
    """meter_points alone (the in-transaction conditional upsert) enforces the limit."""
    from tenants.scoping import tenant_scope

    Plan.objects.filter(pk=plan.pk).update(hard_limit_points_per_month=LIMIT)
    with tenant_scope(tenant_a):
        billing.meter_points(tenant_a.pk, LIMIT - 1, [1])
        with pytest.raises(billing.QuotaExceeded) as exceeded:
            billing.meter_points(tenant_a.pk, 2, [1, 2])
        assert (exceeded.value.used, exceeded.value.limit) == (LIMIT - 1, LIMIT)
        billing.meter_points(tenant_a.pk, 1, [2])
        with pytest.raises(billing.QuotaExceeded):
            billing.meter_points(tenant_a.pk, 1, [3])
        assert month_points(tenant_a) == LIMIT


@pytest.mark.postgres  # SQLite serialises writers: there is no race to test
def test_two_concurrent_batches_cannot_both_slip_past_the_limit(api_a, tenant_a, plan, key_a, monkeypatch):
    """Both pass the unlocked pre-check together (a barrier holds them there), then race
    to the conditional upsert: exactly one is stored."""
    Plan.objects.filter(pk=plan.pk).update(hard_limit_points_per_month=LIMIT)
    barrier = threading.Barrier(2, timeout=30)
    original = quotas.check_points

    def check_then_wait(tenant_id, points):
        original(tenant_id, points)
        barrier.wait()

    monkeypatch.setattr(quotas, "check_points", check_then_wait)
    statuses: list[int] = []

    def send(offset: int) -> None:
        try:
            statuses.append(post_batch(api_client_for(key_a), points_body(6, offset=offset)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(offset,)) for offset in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200, 429]
    assert point_count(tenant_a) == 6
    assert month_points(tenant_a) == 6
    assert quota_rejections(tenant_a)[0] == 6


def test_the_protocol_endpoints_share_the_quota(api_a, tenant_a, plan):
    """OTLP goes through store_batch too: the same 429, counted the same way."""
    import json
    import time

    Plan.objects.filter(pk=plan.pk).update(hard_limit_points_per_month=2)
    t = (int(time.time()) - 600) * 10**9
    body = json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "fleetwatch.cluster", "value": {"stringValue": "prod"}},
                                    {"key": "host.name", "value": {"stringValue": "node-1"}}]},
        "scopeMetrics": [{"metrics": [{"name": "load1", "gauge": {"dataPoints": [
            {"timeUnixNano": str(t + i * 60 * 10**9), "asDouble": float(i)} for i in range(3)]}}]}],
    }]})
    response = api_a.generic("POST", "/api/v1/otlp/v1/metrics", body, content_type="application/json")
    assert response.status_code == 429
    assert "hard_limit_points_per_month is 2" in response.json()["error"]["message"]
    assert point_count(tenant_a) == 0
    assert quota_rejections(tenant_a) == (3, 1)
