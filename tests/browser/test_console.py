"""The operators' console in a real browser: a staff user logs in, reads a tenant's
ingestion health and monthly statement (total = the metered usage priced by the plan)
and downloads the CSV; a tenant user cannot get into the admin."""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from analytics.models import TenantDailyCounter
from tenants import billing
from tenants.models import Plan, UsageDaily, UsageMonth
from tenants.scoping import tenant_scope
from tests.conftest import add_member, api_client_for
from tests.console.conftest import points_body, post_batch

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "admin_health.png"


@pytest.fixture
def seeded(tenant_a, key_a):
    Plan.objects.filter(pk=tenant_a.plan_id).update(
        monthly_price=Decimal("20.00"), included_points_per_month=100,
        overage_price_per_million_points=Decimal("50000"), included_active_series=2,
        overage_price_per_series=Decimal("1.5000"),
    )
    api = api_client_for(key_a)
    for node, metric, n in (("node-1", "cpu_usage", 60), ("node-1", "memory_used", 60), ("node-2", "cpu_usage", 37)):
        assert post_batch(api, points_body(n, node=node, metric=metric)).status_code == 200
    now = int(time.time())  # node-2 is live: three points in the last few minutes
    fresh = {"series": [{"cluster": "prod", "node": "node-2", "metric": "cpu_usage",
                         "points": [[now - 180, 1.0], [now - 120, 2.0], [now - 60, 3.0]]}]}
    assert post_batch(api, fresh).status_code == 200
    assert post_batch(api, {"points": [{"cluster": "prod", "node": "node-1", "metric": "cpu_usage",
                                        "timestamp": "yesterday", "value": 1.0}]}).status_code == 400
    get_user_model().objects.create_superuser(username="operator", password="pw-operator-1", email="ops@example.com")
    add_member(tenant_a, "tina", "owner")  # password pw-tina
    return tenant_a


def log_in(page, live_server, username, password):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def expected_total(tenant) -> Decimal:
    """Priced by hand from the usage rows and the plan (not through tenants.billing)."""
    plan = Plan.objects.get(pk=tenant.plan_id)
    month = billing.month_of(billing.today())
    with tenant_scope(tenant):
        points = sum(UsageDaily.objects.filter(day__gte=month).values_list("points_ingested", flat=True))
        active = UsageMonth.objects.get(month=month).active_series
    cent = Decimal("0.01")
    extra_points = max(0, points - plan.included_points_per_month)
    extra_series = max(0, active - plan.included_active_series)
    return (plan.monthly_price
            + (extra_points * plan.overage_price_per_million_points / Decimal(10**6)).quantize(cent, ROUND_HALF_UP)
            + (extra_series * plan.overage_price_per_series).quantize(cent, ROUND_HALF_UP))


def test_an_operator_reads_health_and_the_statement_and_downloads_the_csv(live_server, page, seeded):
    tenant = seeded
    with tenant_scope(tenant):
        counter = TenantDailyCounter.objects.get(day=billing.today())
    assert counter.points_accepted == 160

    log_in(page, live_server, "operator", "pw-operator-1")
    page.wait_for_selector("#site-name")
    page.goto(f"{live_server.url}/admin/tenants/tenant/")
    row = page.locator("#result_list tbody tr", has_text="acme")
    assert "160" in row.inner_text()
    row.get_by_role("link", name="health").click()

    page.wait_for_selector("#points-today")
    assert page.inner_text("#points-today") == str(counter.points_accepted)
    assert page.inner_text("#rejected-24h") == "1"
    assert page.inner_text("#stale-nodes") == "1 of 2"  # node-1's newest point is hours old
    assert "stale" in page.inner_text("#nodes tr[data-node=node-1]")
    assert "ok" in page.inner_text("#nodes tr[data-node=node-2]")
    assert page.locator("#nodes tbody tr").count() == 2
    assert "timestamp: not an RFC 3339 timestamp" in page.inner_text("#rejections")
    # The console's stylesheet applies (an inline <style> was blocked by the CSP): cards in a row, framed.
    card = page.locator(".console-card").first
    assert page.locator(".console-cards").evaluate("el => getComputedStyle(el).display") == "flex"
    assert card.evaluate("el => getComputedStyle(el).borderTopStyle") == "solid"
    assert page.locator("#stale-nodes").evaluate("el => getComputedStyle(el).fontWeight") == "600"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.get_by_role("link", name="Statement").first.click()
    page.wait_for_selector("#statement-total")
    total = expected_total(tenant)
    assert total == Decimal("24.50")  # 20 + (160 - 100) x 0.05 + (3 - 2) x 1.50
    assert page.inner_text("#statement-total") == str(total)

    with page.expect_download() as download_info:
        page.click("#statement-csv")
    download = download_info.value
    assert download.suggested_filename == f"statement-acme-{billing.today():%Y-%m}.csv"
    lines = Path(download.path()).read_text().splitlines()
    assert lines[0].startswith("tenant,month,item")
    assert lines[-1] == f"acme,{billing.today():%Y-%m},Total,,,,,,{total}"


def test_a_tenant_user_cannot_get_into_the_admin(live_server, page, seeded):
    log_in(page, live_server, "tina", "pw-tina")
    assert "staff account" in page.inner_text("body")  # the admin refuses non-staff logins
    page.goto(f"{live_server.url}/admin/tenants/tenant/")
    assert "/admin/login/" in page.url
    page.goto(f"{live_server.url}/admin/tenants/tenant/{seeded.pk}/statement.csv")
    assert "/admin/login/" in page.url
