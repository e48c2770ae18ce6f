"""A backtest reproduces the evaluation harness's NAB score on the same engine, data,
fixed threshold, probationary period and windows; applying one changes the engine the
next scheduled run uses, and the audit names the backtest; two compare side by side."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.core.evaluation.harness import evaluate
from analytics.core.evaluation.nab import window_rows
from analytics.models import Series
from results.models import Anomaly, AuditEntry, DetectionRun, EngineSetting
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.backtests.history import NODES, ingest_history, label_every_bump, values_of
from tests.feedback.history import history_start
from tests.results.fleet import ingest, series_body

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]
THRESHOLD = 0.5


@pytest.fixture
def history(api_a, tenant_a):
    start = history_start()
    ingest_history(api_a, start)
    with tenant_scope(tenant_a):
        label_every_bump(tenant_a, start)
    return start, start + timedelta(days=2)


def backtest(api, start, end, **config) -> dict:
    created = api.post("/api/v1/backtests", {**config, "start": start.isoformat(), "end": end.isoformat()}, format="json")
    assert created.status_code == 202, created.content
    done = api.get(f"/api/v1/backtests/{created.json()['id']}").json()
    assert (done["status"], done["parts_done"], done["parts_total"]) == ("succeeded", 1, 1), done
    return done


def write_nab_layout(root, start, windows: dict) -> None:
    """The same data as NAB files, with the exported labelled windows."""
    stamps = pd.date_range(start.replace(tzinfo=None), periods=2 * 24 * 60, freq="1min")
    for node in NODES:
        path = root / "data" / "prod" / node / "cpu.csv"
        path.parent.mkdir(parents=True)
        pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": values_of(node)}).to_csv(path, index=False)
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))


def test_a_backtest_reproduces_the_harness_nab_score(api_a, tenant_a, history, tmp_path):
    start, end = history
    report = backtest(api_a, start, end, engine="adtk", params={"threshold": THRESHOLD})["report"]
    export = api_a.get("/api/v1/feedback/export").json()
    write_nab_layout(tmp_path, start, export["windows"])
    harness = evaluate(tmp_path, "adtk", {"threshold": THRESHOLD}, threshold=THRESHOLD)

    # precondition: no detection outside the reviewed windows, where the backtest ignores them
    for name, scores in harness.scores.items():
        stamps = pd.date_range(start.replace(tzinfo=None), periods=len(scores), freq="1min")
        reviewed = np.zeros(len(scores), dtype=bool)
        for left, right in window_rows(stamps, export["reviewed"][name]):
            reviewed[left:right + 1] = True
        assert not ((scores >= THRESHOLD) & ~reviewed).any(), name

    assert report["series"] == 3 and report["labelled_windows"] == 3
    assert harness.results["standard"].tp_windows > 0 and harness.results["standard"].fp_events > 0  # not trivial
    for profile, result in harness.results.items():
        assert report["nab"][profile]["score"] == round(result.score, 3), profile
        assert (report["nab"][profile]["tp_windows"], report["nab"][profile]["fp_events"]) == \
            (result.tp_windows, result.fp_events)
    assert report["reviewed_alarms"] == report["alarms"] > 0
    assert 0 < report["precision"] <= 1
    assert report["alarms_per_series_per_day"] == round(report["alarms"] / (3 * 2), 4)


def test_apply_changes_the_next_scheduled_run_and_the_audit_names_the_backtest(api_a, tenant_a, history):
    start, end = history
    current = backtest(api_a, start, end, current_settings=True)
    tuned = backtest(api_a, start, end, engine="vector", params={"threshold": 0.3})
    compared = api_a.get("/api/v1/backtests/compare", {"a": current["id"], "b": tuned["id"]}).json()
    assert compared["difference"]["same_series_and_range"] is True
    assert compared["difference"]["alarms_per_series_per_day"] == round(
        tuned["report"]["alarms_per_series_per_day"] - current["report"]["alarms_per_series_per_day"], 4)
    assert tuned["report"]["current_settings"]["alarms"] == current["report"]["alarms"]

    refused = api_a.post(f"/api/v1/backtests/{current['id']}/apply")
    assert refused.status_code == 400 and refused.json()["error"]["details"][0]["field"] == "backtest"
    applied = api_a.post(f"/api/v1/backtests/{tuned['id']}/apply")
    assert applied.status_code == 200
    with tenant_scope(tenant_a):
        setting = EngineSetting.objects.get()
        assert (setting.engine, setting.params, setting.applied_from_id) == ("vector", {"threshold": 0.3}, tuned["id"])
        [entry] = AuditEntry.objects.filter(action="backtest_applied")
        assert entry.subject == f"backtest:{tuned['id']}" and entry.detail["backtest"] == tuned["id"]
        assert entry.by == setting.applied_by == applied.json()["backtest"]["applied_by"]

    run_id = run_tenant_detection(tenant_a.pk)  # what the beat schedule sends
    with tenant_scope(tenant_a):
        assert DetectionRun.objects.get(pk=run_id).status == "succeeded"
        engines = set(Anomaly.objects.filter(run_id=run_id).values_list("engine", flat=True))
        assert engines == {"vector"}


def test_bad_backtest_requests_name_the_field(api_a, history):
    start, end = history
    for body, field in [
        ({"engine": "nope"}, "engine"), ({"engine": "adtk", "params": {"threshold": 7}}, "params"),
        ({}, "engine"), ({"current_settings": True, "series": [987654321]}, "series"),
        ({"current_settings": True, "end": start.isoformat()}, "end"),
    ]:
        response = api_a.post("/api/v1/backtests", {"start": start.isoformat(), "end": end.isoformat(), **body},
                              format="json")
        assert response.status_code == 400, body
        assert response.json()["error"]["details"][0]["field"] == field, (body, response.json())


def test_a_backtest_never_reads_another_tenant_s_series(api_a, api_b, tenant_a, history):
    start, end = history
    with tenant_scope(tenant_a):
        theirs = list(Series.objects.values_list("pk", flat=True))
    refused = api_b.post("/api/v1/backtests", {"current_settings": True, "series": theirs[:1], "start": start.isoformat(),
                                               "end": end.isoformat()}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["details"][0]["field"] == "series"
    ingest(api_b, [{"series": [series_body("prod", "n1", "cpu", int(start.timestamp()), values_of("n1"))]}])
    mine = backtest(api_b, start, end, engine="adtk", params={})
    assert mine["series_total"] == 1 and mine["report"]["series"] == 1
    assert mine["report"]["labelled_windows"] == 0  # A's labels are A's
    assert api_b.get("/api/v1/backtests").json()["count"] == 1
