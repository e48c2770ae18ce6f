"""Switching the default engine: the previous engine's rows keep their name (migration),
the new engine fits once and keeps its state, no window is listed twice, and nothing
under the alarm threshold is stored or listed."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps

from results.detection import supersede_other_engines
from results.models import Anomaly, EngineSetting, EngineState
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = pytest.mark.django_db(transaction=True)

migration = import_module("results.migrations.0002_previous_engine_renamed_adtk_v1")


def periodic(tenant, end):
    run_tenant_detection(tenant.pk, end=end.isoformat())


def backfill(tenant, start, end):
    run_tenant_detection(tenant.pk, start.isoformat(), end.isoformat(), trigger="backfill")


def detect_with_the_previous_engine(api, tenant, fleet_hours, analysed_hours):
    """A fleet detected over its last ``analysed_hours`` by "adtk_v1"; returns its end."""
    end = fleet_now()
    ingest(api, make_fleet(end, hours=fleet_hours)[0])
    with tenant_scope(tenant):
        EngineSetting.objects.create(tenant=tenant, metric_name="", engine="adtk_v1")
    backfill(tenant, end - timedelta(hours=analysed_hours), end)
    return end


def five_more_minutes(api, tenant, previous_end):
    """Ingest the fleet's next five minutes and run a periodic detection; returns the new end."""
    end = previous_end + timedelta(minutes=5)
    ingest(api, [
        {"series": [dict(s, points=[p for p in s["points"] if p[0] >= previous_end.timestamp()])
                    for s in body["series"]]}
        for body in make_fleet(end, hours=24)[0]
    ])
    periodic(tenant, end)
    return end


def overlapping_pairs(anomalies):
    """Pairs of anomalies of one series whose windows overlap."""
    by_series = {}
    for a in anomalies:
        by_series.setdefault(a.series_id, []).append(a)
    pairs = []
    for rows in by_series.values():
        rows.sort(key=lambda a: a.window_start)
        pairs += [(a, b) for a, b in zip(rows, rows[1:], strict=False) if b.window_start < a.window_end]
    return pairs


def test_the_migration_renames_what_the_previous_engine_made(api_a, tenant_a):
    end = detect_with_the_previous_engine(api_a, tenant_a, 6, 3)
    with tenant_scope(tenant_a):
        assert Anomaly.objects.filter(engine="adtk_v1").exists()
        # as the rows were before the rename: made by the engine then called "adtk"
        Anomaly.objects.update(engine="adtk")
        series_id = Anomaly.objects.values_list("series_id", flat=True).first()
        EngineState.objects.create(tenant=tenant_a, series_id=series_id, engine="adtk", state={"version": 3},
                                   fitted_at=end)
        EngineSetting.objects.all().delete()
        tuned = EngineSetting.objects.create(tenant=tenant_a, metric_name="cpu_usage", engine="adtk",
                                             params={"spike_gain": 0.0})
        plain = EngineSetting.objects.create(tenant=tenant_a, metric_name="memory_used", engine="adtk")
    migration.forward(apps, None)
    with tenant_scope(tenant_a):
        assert set(Anomaly.objects.values_list("engine", flat=True)) == {"adtk_v1"}
        assert set(EngineState.objects.values_list("engine", flat=True)) == {"adtk_v1"}
        assert EngineSetting.objects.get(pk=tuned.pk).engine == "adtk_v1"  # its parameters are v1's
        assert EngineSetting.objects.get(pk=plain.pk).engine == "adtk"
    migration.backward(apps, None)
    with tenant_scope(tenant_a):
        assert set(Anomaly.objects.values_list("engine", flat=True)) == {"adtk"}


def test_switching_the_default_engine_neither_duplicates_windows_nor_loses_state(api_a, tenant_a):
    end = detect_with_the_previous_engine(api_a, tenant_a, 24, 3)
    start = end - timedelta(hours=3)
    with tenant_scope(tenant_a):
        assert Anomaly.objects.filter(engine="adtk_v1").exists()
        EngineSetting.objects.all().delete()  # the tenant now gets the default engine, "adtk"

    # the same range again: the current engine's verdict replaces the previous one's
    backfill(tenant_a, start, end)
    with tenant_scope(tenant_a):
        anomalies = list(Anomaly.objects.all())
        assert {a.engine for a in anomalies} == {"adtk"}
        assert not overlapping_pairs(anomalies)
        assert not EngineState.objects.filter(engine="adtk").exists()  # a range run keeps no state

    # periodic runs: the first fits once on the history it fetches and keeps its state
    newer = five_more_minutes(api_a, tenant_a, end)
    with tenant_scope(tenant_a):
        states = EngineState.objects.filter(engine="adtk")
        assert states.count() == 8
        cursor = {s.series_id: s.state["stream"]["cursor_ns"] for s in states}
        assert not overlapping_pairs(list(Anomaly.objects.all()))
    five_more_minutes(api_a, tenant_a, newer)
    with tenant_scope(tenant_a):
        moved = {s.series_id: s.state["stream"]["cursor_ns"] for s in EngineState.objects.filter(engine="adtk")}
    assert all(moved[k] > cursor[k] for k in cursor)  # the stored state advanced


def test_supersede_only_touches_other_engines_in_the_analysed_range(api_a, tenant_a):
    end = detect_with_the_previous_engine(api_a, tenant_a, 6, 4)
    with tenant_scope(tenant_a):
        rows = list(Anomaly.objects.all())
    assert rows
    series = rows[0].series_id
    cut = max(a.window_start for a in rows if a.series_id == series)
    deleted = supersede_other_engines(tenant_a.pk, {series: (cut, "adtk_v1")}, end)  # same engine: kept
    assert deleted == 0
    deleted = supersede_other_engines(tenant_a.pk, {series: (cut, "adtk")}, end)
    with tenant_scope(tenant_a):
        left = list(Anomaly.objects.all())
    assert deleted >= 1
    assert all(a.series_id != series or a.window_end <= cut for a in left)
    assert {a.pk for a in left if a.series_id != series} == {a.pk for a in rows if a.series_id != series}


def test_nothing_under_the_alarm_threshold_is_stored_or_listed(api_a, tenant_a):
    end = fleet_now()
    ingest(api_a, make_fleet(end, hours=24)[0])
    backfill(tenant_a, end - timedelta(hours=6), end)
    five_more_minutes(api_a, tenant_a, end)
    with tenant_scope(tenant_a):
        stored = list(Anomaly.objects.values_list("score", flat=True))
    listed = [a["score"] for a in api_a.get("/api/v1/anomalies", {"page_size": 500}).json()["results"]]
    assert stored and listed
    assert min(stored) >= 0.5 and min(listed) >= 0.5
