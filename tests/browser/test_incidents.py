"""The incident pages in a real browser: the list (open first) and an incident with one
chart per affected metric (drawn, member windows shaded), its nodes, its origin hint, and
an owner reopening and acknowledging it. Screenshots: docs/screenshots/incidents.png,
incident.png."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from results.incidents.build import build_incidents
from results.models import Incident
from tenants.models import Node
from tenants.scoping import tenant_scope
from tests.browser.test_dashboard import SCREENSHOTS, assert_all_local, log_in
from tests.dashboard.seed import seed
from tests.incidents.seed import T0, anomaly

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_incidents_list_and_an_incident_page_with_its_charts(live_server, page, requests_made, api_a, tenant_a, owner):
    seed(api_a, tenant_a)  # node-2's cpu spike and node-3's bumps: incidents resolved once the backfill saw the quiet period
    anomaly(tenant_a, "edge", "edge-1", "latency_ms", start_min=0)  # an older one, never analysed past: open
    build_incidents(tenant_a.pk, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    with tenant_scope(tenant_a):
        spike = Incident.objects.get(node_ids__contains=[Node.objects.get(name="node-2").pk])
        bumps = Incident.objects.get(node_ids__contains=[Node.objects.get(name="node-3").pk])
    assert spike.state == bumps.state == "resolved" and spike.metrics == ["cpu_usage"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, live_server, "alice")

    # The overview lists the open incident before single anomalies.
    expect(page.locator("[data-testid=open-incidents] li")).to_have_count(1)
    page.click("nav.mainnav >> text=Incidents")
    rows = page.locator("[data-testid=incident-list] tbody tr")
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.state)") == ["open", "resolved", "resolved"]  # open first
    page.screenshot(path=str(SCREENSHOTS / "incidents.png"), full_page=True)

    page.click(f"td.sentence a[href='/incidents/{spike.pk}']")
    expect(page.locator("[data-testid=incident-summary]")).to_contain_text("prod/node-2, cpu_usage up since")
    expect(page.locator("[data-testid=incident-nodes] li")).to_have_text(["node-2"])
    chart = page.locator(".chart[data-metric=cpu_usage]")
    expect(chart).to_have_attribute("data-drawn", "true")
    assert chart.locator("canvas").count() >= 1
    assert int(chart.get_attribute("data-shaded-windows")) >= 1
    assert "spike" in chart.get_attribute("data-shaded-labels").split()
    expect(page.locator("[data-testid=incident-origin]")).not_to_be_empty()
    expect(page.locator("[data-testid=incident-members] tbody tr")).to_have_count(1)

    page.click("button[value=reopen]")
    expect(page.locator("[data-testid=incident-state]")).to_have_text("open")
    page.click("button[value=acknowledge]")
    expect(page.locator("[data-testid=incident-state]")).to_have_text("acknowledged")
    expect(page.locator("[data-testid=incident-ack]")).to_contain_text("Acknowledged by alice")
    expect(page.locator("[data-testid=incident-timeline] li")).to_have_count(4)  # opened, resolved, reopened, acknowledged
    page.screenshot(path=str(SCREENSHOTS / "incident.png"), full_page=True)
    assert_all_local(requests_made, live_server)
