"""The detection watermark (Series.analysed_until): the newest point analysed. It never
moves backwards, never passes the series' data (whatever end a run asks for), and the
watermarks left by the old rule heal."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from analytics.models import Series
from results.models import DetectionRun
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.results.fleet import STEP, fleet_now, ingest, make_fleet

pytestmark = pytest.mark.django_db(transaction=True)


def run(tenant, start=None, end=None) -> DetectionRun:
    run_id = run_tenant_detection(tenant.pk, start and start.isoformat(), end and end.isoformat(),
                                  trigger="backfill" if start else "periodic")
    with tenant_scope(tenant):
        finished = DetectionRun.objects.get(pk=run_id)
    assert finished.status == "succeeded", finished.error
    return finished


def watermarks(tenant) -> dict[tuple[str, str], tuple[datetime | None, datetime | None]]:
    with tenant_scope(tenant):
        return {(s.node.name, s.metric_name): (s.analysed_until, s.last_point_at)
                for s in Series.objects.select_related("node")}


def newer_points(end: datetime, minutes: int, **fleet) -> list[dict]:
    """The fleet's next ``minutes`` minutes after ``end`` (the same series)."""
    bodies, _ = make_fleet(end + timedelta(minutes=minutes), hours=1, **fleet)
    for body in bodies:
        for series in body["series"]:
            series["points"] = [p for p in series["points"] if p[0] >= end.timestamp()]
    return bodies


def test_an_older_backfill_does_not_move_the_watermark_back(api_a, tenant_a):
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=12)
    ingest(api_a, bodies)
    run(tenant_a, end=end)  # periodic: analyses up to the newest point
    after_periodic = watermarks(tenant_a)
    newest = end - timedelta(seconds=STEP)
    assert {w for w, _ in after_periodic.values()} == {newest}

    run(tenant_a, end - timedelta(hours=6), end - timedelta(hours=3))  # an older range, analysed again
    assert watermarks(tenant_a) == after_periodic
    again = run(tenant_a, end=end)  # nothing new: nothing re-analysed
    assert (again.points_analysed, again.series_skipped) == (0, 8)


def test_an_end_in_the_future_moves_no_watermark_past_the_data(api_a, tenant_a):
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=12)
    ingest(api_a, bodies)
    response = api_a.post("/api/v1/detect", {"start": (end - timedelta(hours=2)).isoformat(),
                                             "end": "2126-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 201  # finished in-process (eager tasks)
    with tenant_scope(tenant_a):
        far = DetectionRun.objects.get(pk=response.json()["id"])
    assert far.status == "succeeded", far.error
    assert far.range_end <= timezone.now()  # the run's range stops at the present
    assert far.points_analysed == 8 * 120
    for analysed_until, last_point_at in watermarks(tenant_a).values():
        assert analysed_until == last_point_at == end - timedelta(seconds=STEP)

    # Later periodic runs are not skipped: they analyse exactly the new points.
    assert ingest(api_a, newer_points(end, 5)) == 8 * 5
    later = run(tenant_a, end=end + timedelta(minutes=5))
    assert (later.points_analysed, later.series_skipped) == (8 * 5, 0)


def test_a_lagging_series_keeps_its_late_points_for_the_next_run(api_a, tenant_a):
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=12, nodes=2)
    lag = 30  # node-2's agent is 30 minutes behind
    for series in bodies[1]["series"]:
        series["points"] = series["points"][:-lag]
    ingest(api_a, bodies)
    first = run(tenant_a, end=end)
    assert first.points_analysed == 4 * 12 * 60 - 2 * lag
    assert watermarks(tenant_a)[("node-2", "cpu_usage")][0] == end - timedelta(seconds=STEP * (lag + 1))

    late, _ = make_fleet(end, hours=12, nodes=2)  # the same fleet: node-2's missing half hour arrives
    for series in late[1]["series"]:
        series["points"] = series["points"][-lag:]
    assert ingest(api_a, late[1:]) == 2 * lag
    second = run(tenant_a, end=end)
    assert (second.points_analysed, second.series_skipped) == (2 * lag, 2)
    assert {w for w, _ in watermarks(tenant_a).values()} == {end - timedelta(seconds=STEP)}


def test_old_watermarks_heal(api_a, tenant_a):
    """The migration: the old watermark was the end of the last range (exclusive)."""
    end = fleet_now()
    bodies, _ = make_fleet(end, hours=1, nodes=3)
    ingest(api_a, bodies)
    last = end - timedelta(seconds=STEP)
    old = {
        "node-1": datetime(2126, 1, 1, tzinfo=UTC),  # POST /detect with an end in 2126
        "node-2": end + timedelta(minutes=2),  # a range end after the newest point
        "node-3": last,  # the newest point itself was not analysed (the range excluded it)
    }
    with tenant_scope(tenant_a):
        for node, watermark in old.items():
            Series.objects.filter(node__name=node).update(analysed_until=watermark)
        empty = Series.objects.create(tenant=tenant_a, cluster_id=Series.objects.first().cluster_id,
                                      node=Series.objects.first().node, metric_name="disk", analysed_until=end)
    migration = importlib.import_module("analytics.migrations.0002_watermark_is_the_newest_point_analysed")
    migration.heal(apps, None)
    healed = watermarks(tenant_a)
    assert healed[("node-1", "cpu_usage")] == (None, last)  # re-analysed from the first-run look-back
    assert healed[("node-2", "cpu_usage")] == (last, last)
    assert healed[("node-3", "cpu_usage")] == (last - timedelta(microseconds=1), last)
    assert healed[("node-1", empty.metric_name)] == (None, None)
    for analysed_until, last_point_at in healed.values():
        assert analysed_until is None or analysed_until <= last_point_at


def test_the_answer_to_an_end_in_the_future_says_it_was_clamped(api_a, tenant_a):
    response = api_a.post("/api/v1/detect", {"end": "2126-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 201  # in-process tasks (the tests): the run has finished
    body = response.json()
    assert datetime.fromisoformat(body["range_end"]) <= timezone.now()
    assert any("2126-01-01" in warning and "clamped" in warning for warning in body["warnings"]), body["warnings"]
    with tenant_scope(tenant_a):
        stored = DetectionRun.objects.get(pk=body["id"])
    assert stored.range_end <= timezone.now() and stored.warnings == body["warnings"]


def test_a_start_in_the_future_is_refused(api_a):
    response = api_a.post("/api/v1/detect", {"start": "2126-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "start"
