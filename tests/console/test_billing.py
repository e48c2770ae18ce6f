"""Metering equals what was ingested and analysed; statements add up to the cent."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from analytics.models import TenantDailyCounter
from results.models import DetectionRun
from results.tasks import run_tenant_detection
from tenants import billing
from tenants.models import Plan, UsageDaily, UsageMonth
from tenants.scoping import tenant_scope
from tests.console.conftest import points_body, post_batch
from tests.ingest.points import point_count
from tests.results.fleet import fleet_now, ingest, make_fleet


def usage_today(tenant) -> UsageDaily:
    return UsageDaily.objects.for_tenant(tenant).get(day=billing.today())


@pytest.mark.django_db(transaction=True)
def test_metering_equals_what_was_ingested_and_analysed(api_a, tenant_a, tenant_b, key_b):
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=6, nodes=2)  # 2 nodes x (cpu_usage, memory_used), a point a minute
    accepted = ingest(api_a, bodies)  # 2 requests
    assert accepted == 2 * 2 * 6 * 60
    resend = post_batch(api_a, bodies[0])  # a re-send: stored again (overwrites), metered again
    assert resend.status_code == 200
    invalid = post_batch(api_a, {"points": [{"cluster": "prod"}]})  # refused: a request, no points
    assert invalid.status_code == 400
    assert api_a.get("/api/v1/anomalies").status_code == 200
    assert post_batch(api_a.__class__(), points_body(1)).status_code == 401  # no key: no tenant, not metered

    run_id = run_tenant_detection(tenant_a.pk, (end - timedelta(hours=3)).isoformat(), end.isoformat(), trigger="backfill")
    with tenant_scope(tenant_a):
        run = DetectionRun.objects.get(pk=run_id)
    assert run.status == "succeeded", run.error
    assert run.series_done == 4

    with tenant_scope(tenant_a):
        usage = usage_today(tenant_a)
        counter = TenantDailyCounter.objects.get(day=billing.today())
        month = UsageMonth.objects.get()
    sent = accepted + 2 * 6 * 60
    assert usage.points_ingested == sent == counter.points_accepted
    assert point_count(tenant_a) == accepted  # the re-send overwrote
    assert usage.active_series == 4 and month.active_series == 4
    assert month.points_ingested == sent
    assert usage.series_analysed == 4
    assert usage.detection_runs == 1
    assert usage.api_requests == 2 + 1 + 1 + 1  # two batches, the re-send, the invalid batch, one read
    assert not UsageDaily.objects.for_tenant(tenant_b).exists()


@pytest.mark.django_db
def test_active_series_are_distinct_per_day_and_per_month(tenant_a):
    d1, d2, next_month_day = date(2026, 3, 30), date(2026, 3, 31), date(2026, 4, 1)
    with tenant_scope(tenant_a):
        billing.meter_points(tenant_a.pk, 3, [11, 12, 12], day=d1)
        billing.meter_points(tenant_a.pk, 2, [12, 11], day=d1)  # same series again: not new
        billing.meter_points(tenant_a.pk, 2, [12, 13], day=d2)
        billing.meter_points(tenant_a.pk, 1, [13], day=d2)
        billing.meter_points(tenant_a.pk, 1, [11], day=next_month_day)
        days = {u.day: (u.points_ingested, u.active_series) for u in UsageDaily.objects.all()}
        months = {m.month: (m.points_ingested, m.active_series) for m in UsageMonth.objects.all()}
    assert days == {d1: (5, 2), d2: (3, 2), next_month_day: (1, 1)}
    assert months == {date(2026, 3, 1): (8, 3), date(2026, 4, 1): (1, 1)}


@pytest.fixture
def priced_plan(plan) -> Plan:
    Plan.objects.filter(pk=plan.pk).update(
        monthly_price=Decimal("49.00"), included_points_per_month=1_000_000,
        overage_price_per_million_points=Decimal("0.5000"), included_active_series=100,
        overage_price_per_series=Decimal("0.0125"),
    )
    plan.refresh_from_db()
    return plan


def usage(tenant, month: date, daily_points: list[int], active_series: int) -> None:
    """Usage rows as metering leaves them: days of the month plus the month row."""
    for i, points in enumerate(daily_points):
        UsageDaily.objects.unscoped().create(tenant=tenant, day=month + timedelta(days=i), points_ingested=points)
    UsageMonth.objects.unscoped().create(tenant=tenant, month=month, points_ingested=sum(daily_points),
                                         active_series=active_series)


MARCH = date(2026, 3, 1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "daily_points, active, expected",
    [
        # No overage: exactly the included points and series.
        ([600_000, 400_000], 100, ["49.00", "0.00", "0.00", "49.00"]),
        # 2,500,001 extra points x 0.50 / 1e6 = 1.2500005 -> 1.25; 23 extra series x 0.0125 = 0.2875 -> 0.29.
        ([3_000_000, 500_001], 123, ["49.00", "1.25", "0.29", "50.54"]),
        # Half a cent rounds up (ROUND_HALF_UP; banker's rounding would give 0.50): 1,010,000 x 0.50 / 1e6 = 0.505.
        ([2_010_000], 99, ["49.00", "0.51", "0.00", "49.51"]),
        # 2 extra series x 0.0125 = 0.025 -> 0.03.
        ([10], 102, ["49.00", "0.00", "0.03", "49.03"]),
    ],
)
def test_statement_arithmetic(tenant_a, priced_plan, daily_points, active, expected):
    usage(tenant_a, MARCH, daily_points, active)
    UsageDaily.objects.unscoped().create(tenant=tenant_a, day=date(2026, 4, 1), points_ingested=9_999_999)  # not March
    with tenant_scope(tenant_a):
        st = billing.statement(tenant_a, date(2026, 3, 17))
    assert st.month == MARCH and st.points == sum(daily_points) and st.active_series == active
    assert [str(line.amount) for line in st.lines] + [str(st.total)] == expected
    assert all(isinstance(line.amount, Decimal) for line in st.lines)


@pytest.mark.django_db
def test_a_month_without_usage_costs_the_plan_price(tenant_a, priced_plan):
    with tenant_scope(tenant_a):
        st = billing.statement(tenant_a, MARCH)
    assert (st.points, st.active_series, st.total) == (0, 0, Decimal("49.00"))


@pytest.mark.django_db
def test_statement_csv(tenant_a, priced_plan):
    usage(tenant_a, MARCH, [3_000_000, 500_001], 123)
    with tenant_scope(tenant_a):
        csv_text = billing.statement_csv(billing.statement(tenant_a, MARCH))
    assert csv_text == (
        "tenant,month,item,quantity,included,billable,unit_price,unit,amount\n"
        "acme,2026-03,Plan Team (monthly price),,,,,,49.00\n"
        "acme,2026-03,Points ingested,3500001,1000000,2500001,0.5000,per million points,1.25\n"
        "acme,2026-03,Active series,123,100,23,0.0125,per series,0.29\n"
        "acme,2026-03,Total,,,,,,50.54\n"
    )
