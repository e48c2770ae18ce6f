"""Three false alarms marked on a series raise its alarm threshold: the next run of the
same data pattern stores fewer alarms on it than on an identical unlabelled series, a
bump of twice the deviation still alarms and its explanation says why; the adjustment
expires on time (injected clock) and undoing it restores the previous behaviour."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.models import Series
from results.feedback.effective import SettingsResolver
from results.models import Adjustment, Anomaly, AuditEntry, EngineSetting
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.feedback.history import BIG_BUMP, at_minute, bodies, history_start
from tests.results.fleet import ingest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def detect(tenant, start, end):
    run_tenant_detection(tenant.pk, start.isoformat(), end.isoformat(), trigger="backfill")


def anomalies(node: str, start, end) -> list[Anomaly]:
    return list(Anomaly.objects.filter(node__name=node, window_start__gte=start, window_start__lt=end).order_by("window_start"))


def test_three_false_alarms_raise_the_threshold_until_undone_or_expired(api_a, tenant_a):
    start = history_start()
    day1, day2, end = start + timedelta(hours=12), start + timedelta(days=1), start + timedelta(days=2)
    with tenant_scope(tenant_a):
        EngineSetting.objects.create(tenant=tenant_a, engine="vector", params={})
    ingest(api_a, bodies(start))
    detect(tenant_a, day1, day2)
    with tenant_scope(tenant_a):
        false_alarms = anomalies("labelled", day1, day2)
        assert len(false_alarms) == 3, [(a.window_start, a.score) for a in false_alarms]
    answers = [api_a.post(f"/api/v1/anomalies/{a.pk}/feedback", {"verdict": "false_alarm", "comment": "noise"}, format="json")
               for a in false_alarms]
    assert [r.status_code for r in answers] == [201, 201, 201]
    assert [r.json()["adjustment"] is None for r in answers] == [True, True, False]
    adjustment = answers[-1].json()["adjustment"]
    highest = max(a.score for a in false_alarms)
    assert adjustment["threshold"] == round(min(0.8, highest + 0.02), 2) > highest
    assert adjustment["reason"] == (f"threshold raised to {adjustment['threshold']:.2f} after 3 false alarms marked on "
                                    f"{answers[-1].json()['feedback']['updated_at'][:10]}")
    assert sorted(adjustment["feedback_ids"]) == sorted(r.json()["feedback"]["id"] for r in answers)

    detect(tenant_a, day2, end)
    with tenant_scope(tenant_a):
        labelled, control = anomalies("labelled", day2, end), anomalies("control", day2, end)
        assert len(labelled) < len(control), ([a.score for a in labelled], [a.score for a in control])
        big = at_minute(start, BIG_BUMP)
        [alarm] = [a for a in labelled if a.window_start <= big < a.window_end]
        assert alarm.score >= adjustment["threshold"]
        assert adjustment["reason"] in alarm.text
        assert alarm.explanation["adjustments"] == [{"adjustment": adjustment["id"], "kind": "threshold",
                                                     "reason": adjustment["reason"]}]
        assert all("adjustments" not in a.explanation for a in control)

        # expiry: 30 days unless confirmed (the clock is injected)
        row = Adjustment.objects.get(pk=adjustment["id"])
        series = Series.objects.get(node__name="labelled")
        before = SettingsResolver(tenant_a.pk, now=row.created_at + timedelta(days=30) - timedelta(seconds=1))
        after = SettingsResolver(tenant_a.pk, now=row.created_at + timedelta(days=30))
        assert before.for_series(series).params["threshold"] == adjustment["threshold"]
        assert "threshold" not in after.for_series(series).params

    undone = api_a.post(f"/api/v1/adjustments/{adjustment['id']}/undo")
    assert undone.status_code == 200 and undone.json()["active"] is False
    detect(tenant_a, day2, end)  # an explicit detect of the past range re-evaluates it
    with tenant_scope(tenant_a):
        restored = anomalies("labelled", day2, end)
        control = anomalies("control", day2, end)
        assert [(a.window_start, a.window_end, a.score) for a in restored] == \
            [(a.window_start, a.window_end, a.score) for a in control]
        actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
        assert actions == ["feedback_set"] * 3 + ["adjustment_made", "adjustment_undone"]
