"""The tenant dashboard in a real browser (Debian's Chromium through Playwright).

Seeds tenant A through the ingestion API and runs detection in-process, logs in through
the login form, and walks overview -> ranking -> node. Every request the pages make must
go to the live server (no CDN). Screenshots go to docs/screenshots/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tenants.models import Node
from tests.dashboard.seed import seed

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def assert_all_local(urls: list[str], live_server) -> None:
    assert urls, "no request recorded"
    outside = [url for url in urls if not url.startswith(live_server.url)]
    assert not outside, outside


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/")


def ranking_on_page(page) -> list[str]:
    return page.locator("[data-testid=ranking] tbody tr").evaluate_all("rows => rows.map(r => r.dataset.node)")


def api_ranking(api, strategy: str) -> list[str]:
    return [row["node"] for row in api.get("/api/v1/rankings", {"level": "node", "strategy": strategy, "top": 25}).json()]


def test_a_tenant_user_walks_from_the_overview_to_the_worst_node(live_server, page, requests_made, api_a, tenant_a, owner):
    seed(api_a, tenant_a)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    log_in(page, live_server, "alice")

    # Overview: the seeded spike heads the latest anomalies, with its sentence.
    top = page.locator("[data-testid=latest-anomalies] li").first
    expect(top).to_have_attribute("data-node", "node-2")
    expect(top).to_have_attribute("data-metric", "cpu_usage")
    expect(top.locator(".sentence")).to_contain_text("cpu_usage on node-2 spiked")
    expect(page.locator("[data-testid=cluster-tiles] .tile")).to_have_count(1)
    expect(page.locator("[data-chart=sparkline]")).to_have_attribute("data-drawn", "true")
    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)

    # Ranking: the page gives the API's order for each strategy, and MAX and MEAN differ.
    by_max, by_mean = api_ranking(api_a, "max"), api_ranking(api_a, "mean")
    assert by_max[:2] == ["node-2", "node-3"] and by_mean[:2] == ["node-3", "node-2"]
    page.click("nav.mainnav >> text=Ranking")
    expect(page.locator("[data-testid=ranking]")).to_have_attribute("data-strategy", "max")
    assert ranking_on_page(page) == by_max
    page.click("[data-testid=strategy-switch] [data-strategy=mean]")
    expect(page.locator("[data-testid=ranking]")).to_have_attribute("data-strategy", "mean")
    assert ranking_on_page(page) == by_mean
    page.click("[data-testid=strategy-switch] [data-strategy=max]")
    expect(page.locator("[data-testid=ranking]")).to_have_attribute("data-strategy", "max")
    first_row = page.locator("[data-testid=ranking] tbody tr").first
    expect(first_row).to_have_attribute("data-node", "node-2")
    expect(first_row.locator(".sentence")).to_contain_text("spiked")
    page.screenshot(path=str(SCREENSHOTS / "ranking.png"), full_page=True)

    # Node page: one chart per metric, drawn, with the spike's window shaded.
    first_row.locator("a.row-link").click()
    expect(page.locator("h1")).to_contain_text("node-2")
    cpu = page.locator(".chart[data-metric=cpu_usage]")
    expect(cpu).to_have_attribute("data-drawn", "true")
    expect(page.locator(".chart[data-metric=memory_used]")).to_have_attribute("data-drawn", "true")
    assert cpu.locator("canvas").count() >= 1
    assert int(cpu.get_attribute("data-shaded-windows")) >= 1
    assert "spike" in cpu.get_attribute("data-shaded-labels").split()
    expect(page.locator("[data-testid=node-anomalies] li").first.locator(".sentence")).to_contain_text("cpu_usage on node-2 spiked")

    # Hovering shows the time and the value.
    box = cpu.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tooltip = cpu.locator(".chart-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("UTC")
    page.mouse.move(0, 0)
    page.screenshot(path=str(SCREENSHOTS / "node.png"), full_page=True)

    # The week view draws summaries (5-minute means) and still shades the window.
    page.click("nav[aria-label=Range] >> text=7d")
    expect(page.locator(".toolbar")).to_contain_text("5m resolution")
    expect(page.locator(".chart[data-metric=cpu_usage]")).to_have_attribute("data-drawn", "true")
    assert int(page.locator(".chart[data-metric=cpu_usage]").get_attribute("data-shaded-windows")) >= 1

    assert_all_local(requests_made, live_server)


def test_other_tenants_nodes_and_the_admin_are_closed(live_server, page, requests_made, api_a, tenant_a, owner, outsider):
    seed(api_a, tenant_a)
    node = Node.objects.for_tenant(tenant_a).get(name="node-2")

    log_in(page, live_server, "mallory")
    response = page.goto(f"{live_server.url}/nodes/{node.pk}")
    assert response.status == 404
    missing = page.goto(f"{live_server.url}/nodes/{node.pk + 10_000}")
    assert missing.status == 404
    page.goto(f"{live_server.url}/")
    expect(page.locator("[data-testid=tenant-name]")).to_have_text("Globex")
    expect(page.locator("body")).not_to_contain_text("node-2")

    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_url(f"{live_server.url}/admin/login/?next=/admin/")
    assert_all_local(requests_made, live_server)


def test_an_owner_creates_and_revokes_a_key_in_the_browser(live_server, page, requests_made, tenant_a, owner):
    log_in(page, live_server, "alice")
    page.click("nav.mainnav >> text=API keys")
    page.fill("input[name=name]", "browser")
    page.click("text=Create key")
    key = page.locator("[data-testid=plain-key]").inner_text()
    assert key.startswith("fw_")
    page.goto(f"{live_server.url}/api-keys")
    expect(page.locator("[data-testid=plain-key]")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text(key)
    row = page.locator("[data-testid=api-keys] tbody tr", has_text="browser")
    row.locator("text=Revoke").click()
    expect(page.locator(".messages")).to_contain_text("revoked")
    expect(page.locator("[data-testid=api-keys] tbody tr", has_text="browser")).to_contain_text("revoked")
    assert_all_local(requests_made, live_server)
