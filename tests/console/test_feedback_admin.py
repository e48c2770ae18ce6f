"""Operators: each tenant's false-alarm rate week by week above the labels; a backtest
over any tenant's data from the admin; engine settings at series level, checked to be
the tenant's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.models import Series
from results.models import Backtest, EngineSetting, Feedback
from tenants.scoping import tenant_scope
from tests.console.conftest import points_body, post_batch

pytestmark = pytest.mark.django_db(transaction=True)


def labels(tenant, series, verdicts):
    now = datetime.now(UTC)
    Feedback.objects.for_tenant(tenant).bulk_create([
        Feedback(tenant=tenant, series=series, node_id=series.node_id, metric_name=series.metric_name, score=0.7,
                 window_start=now, window_end=now, verdict=v, by="t") for v in verdicts])


def test_feedback_rates_backtests_and_series_settings(staff_client, api_a, api_b, tenant_a, tenant_b):
    assert post_batch(api_a, points_body(30, node="node-1")).status_code == 200
    assert post_batch(api_b, points_body(30, node="node-9")).status_code == 200
    with tenant_scope(tenant_a):
        series_a = Series.objects.get()
        labels(tenant_a, series_a, ["false_alarm", "false_alarm", "real", "expected"])
    with tenant_scope(tenant_b):
        series_b = Series.objects.get()
        labels(tenant_b, series_b, ["real"])
    page = staff_client.get("/admin/results/feedback/").content.decode()
    assert "False-alarm rate per tenant and week" in page
    assert "<td>acme</td><td>4</td><td>1</td><td>2</td><td>1</td><td>0.5</td>" in page
    assert "<td>globex</td><td>1</td><td>1</td><td>0</td><td>0</td><td>0.0</td>" in page

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    form = {"tenant": tenant_b.pk, "engine": "adtk", "params": "{}", "range_start_0": (now - timedelta(hours=2)).strftime("%Y-%m-%d"),
            "range_start_1": (now - timedelta(hours=2)).strftime("%H:%M:%S"), "range_end_0": now.strftime("%Y-%m-%d"),
            "range_end_1": now.strftime("%H:%M:%S")}
    bad = staff_client.post("/admin/results/backtest/add/", {**form, "engine": "magic"})
    assert bad.status_code == 200 and "unknown engine" in bad.content.decode()
    assert staff_client.post("/admin/results/backtest/add/", form).status_code == 302
    with tenant_scope(tenant_b):
        backtest = Backtest.objects.get()
        assert (backtest.series_ids, backtest.status, backtest.created_by) == ([series_b.pk], "succeeded", "admin:operator")
    assert staff_client.get("/admin/results/backtest/").status_code == 200

    setting = {"tenant": tenant_a.pk, "metric_name": "", "engine": "vector", "params": "{}"}
    theirs = staff_client.post("/admin/results/enginesetting/add/", {**setting, "series": series_b.pk})
    assert "must be one of the tenant&#x27;s series" in theirs.content.decode()
    assert staff_client.post("/admin/results/enginesetting/add/", {**setting, "series": series_a.pk}).status_code == 302
    with tenant_scope(tenant_a):
        assert list(EngineSetting.objects.values_list("series_id", "engine")) == [(series_a.pk, "vector")]
