"""The demo fleets: which tenants the demo has, and topping their data up to now through
the ingestion service (``store_batch``), as the demo command does once and its live
simulator does every minute while the demo serves."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from analytics.ingestion import store_batch
from analytics.models import Series
from analytics.simulator.fleet import Fleet, generate
from analytics.simulator.sender import SendReport, send_history
from analytics.simulator.spec import DAY, FleetSpec
from tenants.models import Tenant

STEP = 60  # seconds between the simulated points
WEEK = 7 * DAY


@dataclass(frozen=True)
class DemoTenant:
    name: str
    login: str
    clusters: int
    nodes_per_cluster: int
    seed: int


DEMO_TENANTS = {
    "demo": DemoTenant("Demo Corp", "demo", 2, 4, 1),
    "globex": DemoTenant("Globex (a second tenant, to show isolation)", "globex", 1, 2, 2),
}


@dataclass(frozen=True)
class TopUp:
    """What the store lacks of a tenant's simulated fleet: its points in [t0, t1)."""

    fleet: Fleet
    t0: float
    t1: float

    @property
    def points(self) -> int:
        i0, i1 = self.fleet.index_range(self.t0, self.t1)
        return max(0, i1 - i0) * len(self.fleet)


def plan_top_up(tenant: Tenant, history_days: float = 7.0, *, now: float | None = None) -> TopUp:
    """Up to ``now``: the last ``history_days`` when the tenant has no series yet, else
    the points after its newest stored one. The fleet starts on a week boundary, so every
    plan regenerates the same values for the same times (a point sent twice keeps its value)."""
    spec = DEMO_TENANTS[tenant.slug]
    now = math.floor((time.time() if now is None else now) / STEP) * STEP
    anchor = (now - history_days * DAY) // WEEK * WEEK - WEEK
    fleet = generate(FleetSpec(
        clusters_per_tenant=spec.clusters, nodes_per_cluster=spec.nodes_per_cluster, seed=spec.seed, step_seconds=STEP,
        start=datetime.fromtimestamp(anchor, UTC), days=(now - anchor) / DAY + 1, tenant_prefix=tenant.slug,
    ))
    newest = Series.objects.for_tenant(tenant).order_by("-last_point_at").values_list("last_point_at", flat=True).first()
    return TopUp(fleet, newest.timestamp() + STEP if newest else now - history_days * DAY, now + STEP)


def top_up(tenant: Tenant, history_days: float = 7.0, *, now: float | None = None, plan: TopUp | None = None,
           progress: Callable[[int], Any] | None = None) -> SendReport:
    """Send the tenant's missing simulated points (``plan``, by default ``plan_top_up``)
    through the ingestion service."""
    plan = plan or plan_top_up(tenant, history_days, now=now)
    return send_history(plan.fleet, lambda body: store_batch(tenant, body), t0=plan.t0, t1=plan.t1, progress=progress)


def live_tick(now: float | None = None) -> int:
    """One tick of the demo's live simulator: top every demo tenant up to ``now``; the
    number of points stored."""
    return sum(top_up(tenant, now=now).accepted for tenant in Tenant.objects.filter(slug__in=DEMO_TENANTS).order_by("pk"))
