"""While the demo serves: the simulator's minute tick sends fresh points through
ingestion, and the embedded scheduler (no broker, no beat) runs the due detections."""

import io
import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from analytics.demo import DEMO_TENANTS, STEP, live_tick, top_up
from analytics.health import is_stale
from analytics.models import Series
from results.embedded import run_due_detections, run_queued_runs
from results.models import DetectionRun
from results.schedules import detection_entry_name
from tenants.models import Plan, Tenant
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo_tenant(db) -> Tenant:
    plan = Plan.objects.create(slug="demo", name="Demo", hot_retention_days=8, detection_interval_minutes=5)
    return Tenant.objects.create(slug="demo", name="Demo Corp", plan=plan)


def nodes_newest_point(tenant: Tenant) -> dict[tuple[str, str], datetime]:
    with tenant_scope(tenant):
        newest: dict[tuple[str, str], datetime] = {}
        for cluster, node, last in Series.objects.values_list("cluster__name", "node__name", "last_point_at"):
            newest[cluster, node] = max(newest.get((cluster, node), last), last)
        return newest


def test_the_live_tick_sends_the_minutes_since_the_newest_point(demo_tenant):
    spec = DEMO_TENANTS["demo"]
    series = spec.clusters * spec.nodes_per_cluster * 6
    start = math.floor(time.time() / STEP) * STEP - 20 * 60  # the demo started 20 minutes ago
    top_up(demo_tenant, history_days=0.01, now=start)
    now = start + 16 * 60  # 16 minutes later: every node would be stale without the ticks
    assert all(is_stale(last, datetime.fromtimestamp(now, UTC)) for last in nodes_newest_point(demo_tenant).values())
    assert live_tick(now=now) == 16 * series  # the new minutes, once
    newest = nodes_newest_point(demo_tenant)
    assert len(newest) == spec.clusters * spec.nodes_per_cluster
    assert set(newest.values()) == {datetime.fromtimestamp(now, UTC)}
    assert live_tick(now=now) == 0  # nothing new within the same minute


def test_the_embedded_scheduler_runs_each_due_detection_once_per_interval(demo_tenant):
    top_up(demo_tenant, history_days=0.25)
    entry = PeriodicTask.objects.get(name=detection_entry_name(demo_tenant))
    now = timezone.now()
    [run_id] = run_due_detections(now)
    with tenant_scope(demo_tenant):
        run = DetectionRun.objects.get(pk=run_id)
    assert (run.status, run.trigger, run.series_done) == ("succeeded", "periodic", 48), run.error
    entry.refresh_from_db()
    assert entry.last_run_at == now
    assert run_due_detections(now + timedelta(minutes=4)) == []  # the plan's 5 minutes have not passed
    assert len(run_due_detections(now + timedelta(minutes=5))) == 1
    PeriodicTask.objects.filter(pk=entry.pk).update(enabled=False)
    assert run_due_detections(now + timedelta(minutes=20)) == []


def test_a_run_left_queued_without_a_broker_is_run_by_the_embedded_scheduler(demo_tenant, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the embedded default: no broker, no worker
    top_up(demo_tenant, history_days=0.25)
    start = (timezone.now() - timedelta(hours=3)).isoformat()
    out = io.StringIO()
    call_command("detect", "--tenant", "demo", "--from", start, "--background", stdout=out)
    with tenant_scope(demo_tenant):
        run = DetectionRun.objects.get()
    assert run.status == "queued" and f"run {run.pk} queued" in out.getvalue()
    assert run_queued_runs() == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.series_done) == ("succeeded", 48), run.error
    assert run_queued_runs() == []
