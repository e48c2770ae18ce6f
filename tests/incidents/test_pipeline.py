"""Incidents through the real pipeline (eager Celery): the simulator's cluster incident
(seed 17: a disk_io spike on the three nodes of cluster-1, 21:00-21:07 into a day that
ends now), periodic runs up to chosen moments of the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.simulator.fleet import generate
from analytics.simulator.spec import DEFAULT_METRICS, FleetSpec
from results.models import DetectionRun, Incident, IncidentMember
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.results.fleet import ingest, series_body

pytestmark = pytest.mark.django_db(transaction=True)
INCIDENT = timedelta(hours=21)  # the truth's first onset, from the fleet's start


START_TIME_OF_DAY = timedelta(hours=2)


def day_start() -> datetime:
    """The latest 02:00 UTC at least a day ago that starts a Monday to Thursday: the
    simulated day always starts at the same time of day and stays clear of the simulator's
    weekend dip, so what detection sees does not depend on when the tests run (it did: the
    cluster incident stayed open at +60 min when they ran at some hours, or on a Sunday).
    At most four days back, within the hot retention period."""
    day_ago = datetime.now(UTC) - timedelta(days=1)
    start = day_ago.replace(hour=0, minute=0, second=0, microsecond=0) + START_TIME_OF_DAY
    while start > day_ago or start.weekday() > 3:
        start -= timedelta(days=1)
    return start


def send_fleet(api, start: datetime, *, flare_at: timedelta | None = None, silent: tuple[str, timedelta] | None = None):
    """Ingest the fleet; ``flare_at``: a cpu_usage spike on cluster-1/node-01 then;
    ``silent``: (node of cluster-1, offset) after which that node sends nothing."""
    fleet = generate(FleetSpec(clusters_per_tenant=2, nodes_per_cluster=3, metrics=DEFAULT_METRICS[:3], start=start,
                               days=1.0, clean_days=0.6, incident_rate=2.0, anomaly_rate=0.0, seed=17))
    truth = [a for a in fleet.ground_truth if a.incident]
    assert {(a.cluster, a.metric) for a in truth} == {("cluster-1", "disk_io")} and len(truth) == 3
    bodies = []
    for series in fleet.iter_series():
        key, values, t = series.key, series.values.copy(), series.timestamps
        if flare_at is not None and (key.cluster, key.node, key.metric) == ("cluster-1", "node-01", "cpu_usage"):
            at = int(flare_at.total_seconds() // 60)
            values[at:at + 3] += 8 * np.std(values[:600])
        if silent is not None and (key.cluster, key.node) == ("cluster-1", silent[0]):
            keep = t < start.timestamp() + silent[1].total_seconds()
            values, t = values[keep], t[keep]
        body = series_body(key.cluster, key.node, key.metric, int(t[0]), values)
        bodies.append({"series": [body]})
    ingest(api, bodies)
    return truth


def periodic(tenant, start: datetime, offset: timedelta) -> DetectionRun:
    run_id = run_tenant_detection(tenant.pk, end=(start + offset).isoformat())
    with tenant_scope(tenant):
        run = DetectionRun.objects.get(pk=run_id)
    assert run.status == "succeeded", run.error
    return run


def cluster_incidents(tenant, start: datetime) -> list[Incident]:
    """Anomaly incidents of cluster-1 around the simulated incident."""
    with tenant_scope(tenant):
        return list(Incident.objects.filter(kind="anomaly", cluster__name="cluster-1",
                                            started_at__gte=start + INCIDENT - timedelta(hours=1)).order_by("pk"))


def member_nodes(incident: Incident) -> set[str]:
    with tenant_scope(incident.tenant_id):
        return set(IncidentMember.objects.filter(incident=incident).values_list("anomaly__node__name", flat=True))


def test_the_cluster_incident_is_one_incident_extended_never_twinned_then_resolved_and_reopened(api_a, tenant_a):
    start = day_start()
    send_fleet(api_a, start, flare_at=INCIDENT + timedelta(minutes=65))
    periodic(tenant_a, start, INCIDENT + timedelta(minutes=4))
    first = cluster_incidents(tenant_a, start)
    assert len(first) == 1 and first[0].state == "open"

    periodic(tenant_a, start, INCIDENT + timedelta(minutes=30))  # the second periodic run extends it
    [incident] = cluster_incidents(tenant_a, start)
    assert incident.pk == first[0].pk
    assert member_nodes(incident) == {"node-01", "node-02", "node-03"}
    assert incident.metrics == ["disk_io"] and incident.summary.startswith("cluster-1: 3 nodes")

    # a re-run of the range (a backfill) yields no twins and changes nothing
    before = list(Incident.objects.for_tenant(tenant_a).order_by("pk").values_list("pk", "started_at", "ended_at", "state"))
    run_tenant_detection(tenant_a.pk, (start + INCIDENT - timedelta(hours=2)).isoformat(),
                         (start + INCIDENT + timedelta(minutes=30)).isoformat(), trigger="backfill")
    assert list(Incident.objects.for_tenant(tenant_a).order_by("pk").values_list(
        "pk", "started_at", "ended_at", "state")) == before

    periodic(tenant_a, start, INCIDENT + timedelta(minutes=45))  # its windows end at +25: not quiet for 30 min yet
    incident.refresh_from_db()
    assert incident.state == "open"
    periodic(tenant_a, start, INCIDENT + timedelta(minutes=60))  # quiet for 30 min on every node
    incident.refresh_from_db()
    assert incident.state == "resolved" and incident.resolved_by_label == "auto"
    assert incident.resolved_at == incident.ended_at + timedelta(minutes=30)

    periodic(tenant_a, start, INCIDENT + timedelta(minutes=90))  # the flare-up at +65 min, within the quiet period
    [again] = cluster_incidents(tenant_a, start)
    assert again.pk == incident.pk and again.state == "open" and again.reopened_count == 1


def test_a_silent_node_keeps_its_incident_open_and_opens_a_no_data_incident(api_a, tenant_a):
    start = day_start()
    send_fleet(api_a, start, silent=("node-03", INCIDENT + timedelta(minutes=20)))
    periodic(tenant_a, start, INCIDENT + timedelta(minutes=20))
    [incident] = cluster_incidents(tenant_a, start)
    assert "node-03" in member_nodes(incident)
    periodic(tenant_a, start, INCIDENT + timedelta(minutes=90))  # node-03 silent for 70 min
    incident.refresh_from_db()
    assert incident.state == "open", "no data is not recovery"
    with tenant_scope(tenant_a):
        silent = list(Incident.objects.filter(kind="no_data").values_list("node__name", "state", "started_at"))
    assert silent == [("node-03", "open", start + INCIDENT + timedelta(minutes=19))]
