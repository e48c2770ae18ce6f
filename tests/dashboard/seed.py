"""Seed data for the dashboard tests: a small fleet sent through the ingestion API,
then detection run in-process.

Built on tests/results/fleet.py's fleet (cpu spike on node-2), plus node-3 with two
moderate spikes (cpu and memory): MAX ranks node-2 (one very anomalous metric) above
node-3, MEAN ranks node-3 (two moderately anomalous metrics) above node-2.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from results.tasks import run_tenant_detection
from tests.results.fleet import fleet_now, ingest, make_fleet

DETECTION_HOURS = 6


def make_dashboard_fleet(end: datetime, hours: int = 24) -> list[dict]:
    bodies, _ = make_fleet(end, hours=hours, nodes=4)
    n = hours * 60
    at = n - 150  # two and a half hours before the end, away from node-2's spike
    for body in bodies:
        for series in body["series"]:
            if series["node"] != "node-3":
                continue
            bump = 35.0 if series["metric"] == "cpu_usage" else 10.0
            for i in range(at, at + 3):
                ts, value = series["points"][i]
                series["points"][i] = [ts, round(value + bump, 4)]
    return bodies


def seed(api_client, tenant, end: datetime | None = None, hours: int = 24) -> datetime:
    """Ingest the fleet through the API and detect over the last hours; returns end."""
    end = end or fleet_now()
    ingest(api_client, make_dashboard_fleet(end, hours))
    run_tenant_detection(tenant.pk, (end - timedelta(hours=DETECTION_HOURS)).isoformat(), end.isoformat(), trigger="backfill")
    return end

