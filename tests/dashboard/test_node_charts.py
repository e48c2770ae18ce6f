"""A node with many series: its page draws one page of charts (CHARTS_PER_PAGE), not
every series (issue 13: 20,000 charts made a 7.5 MB page)."""

from __future__ import annotations

import re

from results.views import CHARTS_PER_PAGE
from tests.console.conftest import points_body, post_batch
from tests.dashboard.test_pages import chart_data, node_id

METRICS = 2 * CHARTS_PER_PAGE + 12


def test_the_node_page_pages_its_charts(owner_client, api_a, tenant_a):
    body = {"series": [points_body(2, node="wide", metric=f"m{i:03d}")["series"][0] for i in range(METRICS)]}
    assert post_batch(api_a, body).status_code == 200
    url = f"/nodes/{node_id(tenant_a, 'wide')}"

    first = owner_client.get(url, {"range": "24h"})
    metrics = [c["metric"] for c in chart_data(first)["series"]]
    assert metrics == [f"m{i:03d}" for i in range(CHARTS_PER_PAGE)]
    assert first.content.decode().count('data-chart="series"') == CHARTS_PER_PAGE
    next_link = re.search(r'<a href="\?([^"]+)" rel="next">', first.content.decode()).group(1).split("&amp;")
    assert sorted(next_link) == ["page=2", "range=24h"]  # the pager keeps the range

    last = owner_client.get(url, {"range": "24h", "page": 3})
    assert [c["metric"] for c in chart_data(last)["series"]] == [f"m{i:03d}" for i in range(2 * CHARTS_PER_PAGE, METRICS)]
    assert owner_client.get(url, {"page": "junk"}).status_code == 200  # a bad page number shows the first


def test_another_tenants_node_pages_answer_404(outsider_client, api_a, tenant_a):
    assert post_batch(api_a, points_body(2, node="wide")).status_code == 200
    for page in ("1", "2", "junk"):
        assert outsider_client.get(f"/nodes/{node_id(tenant_a, 'wide')}", {"page": page}).status_code == 404
