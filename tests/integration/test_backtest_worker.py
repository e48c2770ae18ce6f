"""A backtest survives a worker SIGKILLed in the middle of a part: the part is delivered
again to a new worker and the report equals a clean backtest's of the same configuration."""

from __future__ import annotations

import pytest

from results.models import Backtest
from tenants.scoping import tenant_scope
from tests.backtests.history import ingest_history, label_every_bump
from tests.feedback.history import history_start
from tests.integration.test_worker_pipeline import unacked_older_than
from tests.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]


def finished(tenant, backtest_id):
    with tenant_scope(tenant):
        backtest = Backtest.objects.get(pk=backtest_id)
    return backtest if backtest.status in ("succeeded", "failed") else None


def test_a_backtest_survives_a_lost_worker_with_the_same_report(real_celery, api_a, tenant_a, tmp_path):
    start = history_start()
    ingest_history(api_a, start)
    with tenant_scope(tenant_a):
        label_every_bump(tenant_a, start)
    marker = tmp_path / "lost-in-part"
    env = {"CELERY_VISIBILITY_TIMEOUT": 5, "FLEETWATCH_TEST_LOSE_WORKER_MARKER": marker}
    lose = ("-I", "tests.integration.lose_worker_in_backtest")
    first = real_celery("worker", "--concurrency", "1", *lose, **env)
    body = {"engine": "adtk", "params": {}, "start": start.isoformat(), "end": (start.replace(hour=23)).isoformat()}
    lost_id = api_a.post("/api/v1/backtests", body, format="json").json()["id"]
    wait_for(lambda: marker.exists() and first.process.poll() is not None, 120, "the worker to be lost in a part")
    with tenant_scope(tenant_a):
        assert Backtest.objects.get(pk=lost_id).parts_done == 0  # nothing committed
    wait_for(lambda: unacked_older_than(env["CELERY_VISIBILITY_TIMEOUT"]), 60, "the lost message to be redeliverable")
    second = real_celery("worker", "--concurrency", "1", *lose, **env)
    survived = wait_for(lambda: finished(tenant_a, lost_id), 240, "the backtest to finish on the new worker")
    assert survived.status == "succeeded", survived.error + second.output()[-3000:]
    assert marker.read_text() in second.output()  # the lost part was delivered again

    clean_id = api_a.post("/api/v1/backtests", body, format="json").json()["id"]
    clean = wait_for(lambda: finished(tenant_a, clean_id), 240, "the clean backtest")
    assert clean.status == "succeeded"
    assert survived.report == clean.report and survived.report["series"] == 3
    assert (survived.parts_done, survived.series_done) == (clean.parts_done, clean.series_done) == (1, 3)
