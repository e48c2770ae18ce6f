"""The operators' console: pages render for staff, stay closed to tenant users; engine
settings are validated by the engine; runs re-run and cancel; health and statements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from analytics.models import NodeDailyCounter, Series
from results.models import Anomaly, DetectionRun, EngineSetting, Incident
from results.schedules import detection_entry_name
from tenants import billing
from tenants.models import UsageDaily
from tenants.scoping import tenant_scope
from tests.console.conftest import points_body, post_batch

pytestmark = pytest.mark.django_db


def point_1() -> dict:
    return {"cluster": "prod", "node": "node-1", "metric": "cpu_usage",
            "timestamp": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()}


@pytest.fixture
def seeded(api_a, tenant_a, tenant_b):
    """Tenant A: 30 points on node-1, 5 on node-2 (one stale), a refused batch; a run."""
    assert post_batch(api_a, points_body(30, node="node-1")).status_code == 200
    assert post_batch(api_a, points_body(5, node="node-2", metric="mem")).status_code == 200
    assert post_batch(api_a, {"points": [{**point_1(), "value": "high"}]}).status_code == 400  # 1 point refused
    fresh = datetime.now(UTC) - timedelta(minutes=2)
    with tenant_scope(tenant_a):  # node-1 sent a point 2 minutes ago; node-2's newest is hours old
        node_1 = Series.objects.get(node__name="node-1").node_id
        NodeDailyCounter.objects.filter(node_id=node_1).update(last_point_at=fresh)
    return tenant_a


def test_every_console_page_renders_for_staff(staff_client, seeded, tenant_a, plan):
    with tenant_scope(tenant_a):
        series = Series.objects.first()
        run = DetectionRun.objects.create(tenant=tenant_a, trigger="manual", status="succeeded")
        anomaly = Anomaly.objects.create(
            tenant=tenant_a, series=series, cluster_id=series.cluster_id, node_id=series.node_id,
            metric_name=series.metric_name, run=run, engine="adtk", window_start=datetime.now(UTC),
            window_end=datetime.now(UTC), score=0.9, first_score=0.9, label="spike")
        setting = EngineSetting.objects.create(tenant=tenant_a, metric_name="", engine="adtk", params={})
        incident = Incident.objects.create(tenant=tenant_a, cluster_id=series.cluster_id, started_at=datetime.now(UTC),
                                           summary="prod/node-1, cpu_usage up")
    from django_celery_beat.models import PeriodicTask

    entry = PeriodicTask.objects.get(name=detection_entry_name(tenant_a))
    urls = [
        "/admin/", "/admin/tenants/", "/admin/results/", "/admin/analytics/",
        "/admin/tenants/tenant/", f"/admin/tenants/tenant/{tenant_a.pk}/change/",
        f"/admin/tenants/tenant/{tenant_a.pk}/health/", f"/admin/tenants/tenant/{tenant_a.pk}/statement/",
        f"/admin/tenants/tenant/{tenant_a.pk}/statement.csv",
        "/admin/tenants/plan/", f"/admin/tenants/plan/{plan.pk}/change/",
        "/admin/tenants/cluster/", "/admin/tenants/node/", "/admin/tenants/membership/", "/admin/tenants/apikey/",
        "/admin/tenants/usagedaily/", "/admin/tenants/usagemonth/",
        "/admin/analytics/series/", f"/admin/analytics/series/{series.pk}/change/",
        "/admin/results/detectionrun/", f"/admin/results/detectionrun/{run.pk}/change/",
        "/admin/results/anomaly/", f"/admin/results/anomaly/{anomaly.pk}/change/",
        "/admin/results/enginesetting/", "/admin/results/enginesetting/add/",
        f"/admin/results/enginesetting/{setting.pk}/change/",
        "/admin/django_celery_beat/periodictask/", f"/admin/django_celery_beat/periodictask/{entry.pk}/change/",
        "/admin/tenants/tenant/?q=acme", "/admin/results/detectionrun/?status=succeeded",
        "/admin/results/incident/", f"/admin/results/incident/?tenant__id__exact={tenant_a.pk}",
        f"/admin/results/incident/{incident.pk}/change/",
    ]
    for url in urls:
        response = staff_client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    change = staff_client.get(f"/admin/tenants/tenant/{tenant_a.pk}/change/").content.decode()
    assert f"/admin/tenants/tenant/{tenant_a.pk}/health/" in change and f"/admin/tenants/tenant/{tenant_a.pk}/statement/" in change
    assert staff_client.get("/admin/tenants/tenant/999999/health/").status_code == 404
    assert staff_client.get(f"/admin/tenants/tenant/{tenant_a.pk}/statement/?month=soon").status_code == 404


def test_read_only_models_cannot_be_added_or_changed(staff_client, seeded, tenant_a):
    with tenant_scope(tenant_a):
        series = Series.objects.first()
    assert staff_client.get("/admin/analytics/series/add/").status_code == 403
    page = staff_client.get(f"/admin/analytics/series/{series.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert staff_client.post(f"/admin/analytics/series/{series.pk}/delete/", {"post": "yes"}).status_code == 403


def test_cluster_and_node_names_cannot_be_changed(staff_client, seeded, tenant_a, tenant_b):
    """Agents address series by these names (ingestion remembers ids by them)."""
    from tenants.models import Cluster, Node

    node = Node.objects.unscoped().get(tenant=tenant_a, name="node-1")
    other = Cluster.objects.unscoped().create(tenant=tenant_a, name="edge")
    form = staff_client.get(f"/admin/tenants/node/{node.pk}/change/").content.decode()
    assert 'name="name"' not in form and 'name="cluster"' not in form and 'name="tenant"' not in form
    staff_client.post(f"/admin/tenants/node/{node.pk}/change/", {"name": "renamed", "cluster": other.pk, "tenant": tenant_b.pk})
    staff_client.post(f"/admin/tenants/cluster/{node.cluster_id}/change/", {"name": "renamed", "tenant": tenant_b.pk})
    node.refresh_from_db()
    assert (node.name, node.cluster_id, node.tenant_id, node.cluster.name) == ("node-1", node.cluster_id, tenant_a.pk, "prod")
    assert 'name="name"' in staff_client.get("/admin/tenants/cluster/add/").content.decode()  # named when created


@pytest.mark.parametrize("path", ["/admin/", "/admin/tenants/tenant/", "/admin/results/detectionrun/"])
def test_tenant_users_cannot_open_the_admin(client, owner, tenant_a, path):
    client.force_login(owner)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_tenant_users_cannot_open_console_pages(client, owner, tenant_a):
    client.force_login(owner)
    for path in (f"/admin/tenants/tenant/{tenant_a.pk}/health/", f"/admin/tenants/tenant/{tenant_a.pk}/statement.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path


def test_ingestion_health_shows_counters_nodes_and_rejections(staff_client, seeded, tenant_a, tenant_b):
    listing = staff_client.get("/admin/tenants/tenant/")
    rows = {t.slug: t.health for t in listing.context["cl"].result_list}
    now = datetime.now(UTC)
    assert rows["acme"].points_today == 35 and rows["acme"].points_24h == 35
    assert (rows["acme"].nodes_stale, rows["acme"].nodes_total) == (1, 2)
    assert rows["acme"].rejected_today == 1 and rows["acme"].rejected_by_reason == {"value: must be a number": 1}
    assert rows["globex"].points_today == 0 and rows["globex"].nodes_total == 0
    assert abs((now - rows["acme"].last_point_at).total_seconds() - 120) < 60

    page = staff_client.get(f"/admin/tenants/tenant/{tenant_a.pk}/health/")
    detail = page.context["detail"]
    nodes = {n.node.name: n for n in detail.nodes}
    assert nodes["node-2"].stale and not nodes["node-1"].stale
    assert (nodes["node-1"].points_today, nodes["node-2"].points_today) == (30, 5)
    assert detail.rejected_by_reason_week == {"value: must be a number": 1}
    html = page.content.decode()
    assert '<div class="value" id="points-today">35</div>' in html
    assert "1 of 2" in html and "stale" in html


def test_the_24h_estimate_prorates_yesterday():
    from analytics.health import last_24h

    assert last_24h(100, 240, datetime(2026, 3, 2, 6, 0, tzinfo=UTC)) == 100 + 180
    assert last_24h(100, 240, datetime(2026, 3, 2, 0, 0, tzinfo=UTC)) == 340


def test_the_statement_page_and_csv_show_the_metered_usage(staff_client, seeded, tenant_a, plan):
    plan.included_points_per_month = 10
    plan.overage_price_per_million_points = 100_000  # 0.10 per extra point
    plan.monthly_price = 5
    plan.save()
    page = staff_client.get(f"/admin/tenants/tenant/{tenant_a.pk}/statement/")
    st = page.context["statement"]
    assert st.points == 35 and st.active_series == 2
    assert str(st.total) == "7.50"  # 5 + (35 - 10) x 0.10
    assert '<td class="num" id="statement-total">7.50</td>' in page.content.decode()
    csv_response = staff_client.get(f"/admin/tenants/tenant/{tenant_a.pk}/statement.csv")
    assert csv_response["Content-Type"].startswith("text/csv")
    assert "attachment" in csv_response["Content-Disposition"]
    assert csv_response.content.decode().splitlines()[-1] == f"acme,{billing.today():%Y-%m},Total,,,,,,7.50"


def engine_form(tenant, **fields):
    return {"tenant": tenant.pk, "metric_name": "cpu_usage", "engine": "adtk", "params": "{}", **fields}


def test_engine_settings_are_validated_by_creating_the_engine(staff_client, tenant_a):
    bad = staff_client.post("/admin/results/enginesetting/add/", engine_form(tenant_a, params='{"bogus": 1}'))
    assert bad.status_code == 200
    assert "bogus: unknown parameter for engine" in bad.content.decode()
    wrong_type = staff_client.post("/admin/results/enginesetting/add/", engine_form(tenant_a, params='{"window": -1}'))
    assert "window: must be str" in wrong_type.content.decode()
    not_object = staff_client.post("/admin/results/enginesetting/add/", engine_form(tenant_a, params="[1]"))
    assert "must be a JSON object" in not_object.content.decode()
    unknown = staff_client.post("/admin/results/enginesetting/add/", engine_form(tenant_a, engine="magic"))
    assert "Select a valid choice" in unknown.content.decode()
    good = staff_client.post("/admin/results/enginesetting/add/", engine_form(tenant_a, engine="vector"))
    assert good.status_code == 302
    with tenant_scope(tenant_a):
        assert list(EngineSetting.objects.values_list("metric_name", "engine", "params")) == [("cpu_usage", "vector", {})]


def changelist_action(client, action, ids):
    return client.post("/admin/results/detectionrun/", {"action": action, "_selected_action": [str(i) for i in ids]})


def test_runs_can_be_re_run_over_the_same_range(staff_client, tenant_a, api_a, django_capture_on_commit_callbacks):
    assert post_batch(api_a, points_body(120)).status_code == 200
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=9)
    start = end - timedelta(hours=2)
    with tenant_scope(tenant_a):
        old = DetectionRun.objects.create(tenant=tenant_a, trigger="manual", status="failed", range_start=start,
                                          range_end=end, error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        response = changelist_action(staff_client, "rerun", [old.pk])
    assert response.status_code == 302
    with tenant_scope(tenant_a):
        new = DetectionRun.objects.exclude(pk=old.pk).get()
        old.refresh_from_db()
    assert (new.range_start, new.range_end, new.trigger) == (start, end, "manual")
    assert new.status == "succeeded", new.error  # ran in-process through the Celery task
    assert new.series_total == 1
    assert old.status == "failed"
    with tenant_scope(tenant_a):
        assert UsageDaily.objects.get().detection_runs == 1


def test_cancel_stops_queued_and_running_runs_only(staff_client, tenant_a, tenant_b):
    with tenant_scope(tenant_a):
        queued = DetectionRun.objects.create(tenant=tenant_a, trigger="manual")
        running = DetectionRun.objects.create(tenant=tenant_a, trigger="periodic", status="running")
        done = DetectionRun.objects.create(tenant=tenant_a, trigger="periodic", status="succeeded")
    with tenant_scope(tenant_b):
        other = DetectionRun.objects.create(tenant=tenant_b, trigger="manual")
    response = changelist_action(staff_client, "cancel", [queued.pk, running.pk, done.pk])
    assert response.status_code == 302
    statuses = dict(DetectionRun.objects.unscoped().values_list("pk", "status"))
    assert statuses == {queued.pk: "cancelled", running.pk: "cancelled", done.pk: "succeeded", other.pk: "queued"}

    # A batch of a cancelled run does nothing (the tasks check the status).
    from results.tasks import detect_batch

    with tenant_scope(tenant_a):
        assert detect_batch.run(tenant_a.pk, running.pk, [1, 2]) == []


def test_staff_without_the_change_permission_see_runs_but_no_actions(client, tenant_a):
    from django.contrib.auth.models import Permission

    viewer = get_user_model().objects.create_user(username="viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_detectionrun"))
    client.force_login(viewer)
    response = client.get("/admin/results/detectionrun/")
    assert response.status_code == 200
    assert 'value="cancel"' not in response.content.decode()
