""""Expected" labels on one node at the same time of day on two days become a recurring
daily exception: anomalies inside it are not stored; outside it, or on another node,
they are; undone, it no longer applies."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from analytics.core.contracts import AnomalyResult, AnomalyType
from analytics.models import Series
from results.feedback import rules
from results.feedback.effective import SettingsResolver, apply_exceptions
from results.models import Adjustment, Feedback
from tenants.scoping import tenant_scope
from tests.console.conftest import points_body, post_batch

pytestmark = pytest.mark.django_db
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def expected(tenant, series, start: datetime, minutes: int = 30) -> Feedback:
    return Feedback.objects.for_tenant(tenant).create(
        tenant=tenant, series=series, node_id=series.node_id, metric_name=series.metric_name, score=0.7,
        window_start=start, window_end=start + timedelta(minutes=minutes), verdict=Feedback.Verdict.EXPECTED, by="t")


def result(series, start: datetime, minutes: int = 10) -> AnomalyResult:
    return AnomalyResult(series.tenant_id, series.cluster_id, series.node_id, series.metric_name, start,
                         start + timedelta(minutes=minutes), 0.9, AnomalyType.SPIKE)


def test_expected_labels_make_a_daily_exception_until_undone(api_a, tenant_a):
    assert post_batch(api_a, points_body(3, node="batch-1")).status_code == 200
    assert post_batch(api_a, points_body(3, node="web-1")).status_code == 200
    with tenant_scope(tenant_a):
        batch, web = Series.objects.get(node__name="batch-1"), Series.objects.get(node__name="web-1")
        first = expected(tenant_a, batch, DAY.replace(hour=2))
        assert rules.after_label(tenant_a.pk, first, "t", DAY) is None  # one day is no pattern
        second = expected(tenant_a, batch, DAY.replace(hour=2, minute=5) + timedelta(days=1))
        made = rules.after_label(tenant_a.pk, second, "t", DAY + timedelta(days=1))
        assert (made.kind, made.node_id, made.metric_name) == ("exception", batch.node_id, batch.metric_name)
        assert (made.daily_start, made.daily_end) == (time(2, 0), time(2, 35))
        assert made.reason.startswith("every day 02:00-02:35 UTC on this node is expected")
        assert sorted(made.feedback_ids) == sorted([first.pk, second.pk])

        later = DAY + timedelta(days=5)
        inside, outside = later.replace(hour=2, minute=10), later.replace(hour=3)
        config = SettingsResolver(tenant_a.pk, now=later).for_series(batch)
        kept = apply_exceptions([result(batch, inside), result(batch, outside)], config.exceptions)
        assert [r.is_anomaly for r in kept] == [False, True]
        other = SettingsResolver(tenant_a.pk, now=later).for_series(web)
        assert apply_exceptions([result(web, inside)], other.exceptions)[0].is_anomaly  # another node

        rules.undo(tenant_a.pk, Adjustment.objects.get(pk=made.pk), "owner", later)
        after = SettingsResolver(tenant_a.pk, now=later).for_series(batch)
        assert after.exceptions == [] and apply_exceptions([result(batch, inside)], after.exceptions)[0].is_anomaly
