"""What the pages must let people read, in a real browser: a chart's y-axis labels whole
(a 100 MB/s series labels "100.00 M", not "00.00 M")."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tenants.models import Node
from tests.browser.test_dashboard import log_in

pytestmark = pytest.mark.django_db(transaction=True)

# In the page: each y-axis label's width as the canvas draws it, against the room the axis leaves it.
LABELS_AND_ROOM = """el => {
  const u = el.uplot, axis = u.axes[1];
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = axis.font[0];
  const widths = axis._values.map(v => ctx.measureText(v).width / uPlot.pxRatio);
  return {labels: axis._values, widest: Math.max(...widths), room: axis._size - axis.ticks.size - axis.gap};
}"""


def test_the_y_axis_labels_of_a_large_series_are_not_clipped(live_server, page, api_a, tenant_a, owner):
    now = int(time.time()) // 60 * 60
    points = [[now - 60 * (120 - i), 1.0e8 + 2.0e7 * (i % 7)] for i in range(118)]
    body = {"series": [{"cluster": "prod", "node": "node-9", "metric": "network_in", "unit": "bytes/s", "points": points}]}
    assert api_a.post("/api/v1/metrics", body, format="json").status_code == 200
    node = Node.objects.for_tenant(tenant_a).get(name="node-9")

    log_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/nodes/{node.pk}")
    chart = page.locator(".chart[data-metric=network_in]")
    expect(chart).to_have_attribute("data-drawn", "true")
    axis = chart.evaluate(LABELS_AND_ROOM)
    assert any(label.endswith(" M") and len(label) >= 8 for label in axis["labels"]), axis  # e.g. "100.00 M"
    assert axis["widest"] <= axis["room"], axis
