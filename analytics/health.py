"""Ingestion health, read from the ingestion counters only (``TenantDailyCounter``,
``NodeDailyCounter``): never a count over points. The operators' console shows it
(``analytics.admin``), and the tenant dashboard its stale nodes (``results.views``).

The counters are per UTC day, so "the last 24 hours" is today's count plus yesterday's
pro rata to the part of yesterday still inside the window (exact when yesterday's
traffic was even; shown with "≈"). A node's last point is the newest point timestamp its
counters recorded; a node is stale (``is_stale``, the one definition) when that is more
than ``STALE_AFTER`` ago, or when it has sent nothing in ``LOOKBACK_DAYS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Max

from analytics.core.formatting import format_duration
from analytics.models import NodeDailyCounter, TenantDailyCounter
from tenants.models import Node, Tenant

STALE_AFTER = timedelta(minutes=15)
LOOKBACK_DAYS = 30


def _now() -> datetime:
    return datetime.now(UTC)


def is_stale(last_point_at: datetime | None, now: datetime) -> bool:
    """A node is stale when its newest point is more than ``STALE_AFTER`` old, or it has
    none (in ``LOOKBACK_DAYS``)."""
    return last_point_at is None or now - last_point_at > STALE_AFTER


def last_24h(today_count: int, yesterday_count: int, now: datetime) -> int:
    """Today's count plus the share of yesterday's still inside the last 24 hours."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    share = 1 - (now - midnight) / timedelta(days=1)
    return today_count + round(yesterday_count * share)


@dataclass
class NodeHealth:
    node: Node
    last_point_at: datetime | None
    points_today: int
    points_yesterday: int
    now: datetime

    @property
    def age(self) -> timedelta | None:
        return self.now - self.last_point_at if self.last_point_at else None

    @property
    def stale(self) -> bool:
        return is_stale(self.last_point_at, self.now)

    @property
    def age_text(self) -> str:
        age = self.age
        if age is None:
            return f"no points in {LOOKBACK_DAYS} days"
        return format_duration(max(age, timedelta(0)))


@dataclass
class TenantHealth:
    tenant_id: int
    now: datetime
    points_today: int = 0
    points_yesterday: int = 0
    rejected_today: int = 0
    rejected_yesterday: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # today and yesterday
    nodes_total: int = 0
    nodes_stale: int = 0
    last_point_at: datetime | None = None

    @property
    def points_24h(self) -> int:
        return last_24h(self.points_today, self.points_yesterday, self.now)

    @property
    def rejected_24h(self) -> int:
        return last_24h(self.rejected_today, self.rejected_yesterday, self.now)


def _days(now: datetime) -> tuple[date, date]:
    today = now.date()
    return today, today - timedelta(days=1)


def overview(tenant_ids: Iterable[int], now: datetime | None = None) -> dict[int, TenantHealth]:
    """Health of many tenants (a changelist page) in four queries, whatever their number."""
    now = now or _now()
    today, yesterday = _days(now)
    ids = list(tenant_ids)
    result = {tid: TenantHealth(tid, now) for tid in ids}
    if not ids:
        return result
    counters = TenantDailyCounter.objects.unscoped().filter(tenant_id__in=ids, day__gte=yesterday).values_list(
        "tenant_id", "day", "points_accepted", "points_rejected", "rejected_by_reason"
    )
    for tid, day, accepted, rejected, reasons in counters:
        health = result[tid]
        if day == today:
            health.points_today, health.rejected_today = accepted, rejected
        elif day == yesterday:
            health.points_yesterday, health.rejected_yesterday = accepted, rejected
        for reason, count in (reasons or {}).items():
            health.rejected_by_reason[reason] = health.rejected_by_reason.get(reason, 0) + int(count)
    # A point that keeps its node fresh (newer than STALE_AFTER) arrived at most
    # FLEETWATCH_MAX_FUTURE_SECONDS before its timestamp, so it is counted in today's or
    # yesterday's row.
    last = (
        NodeDailyCounter.objects.unscoped().filter(tenant_id__in=ids, day__gte=yesterday)
        .values("tenant_id", "node_id").annotate(last=Max("last_point_at"))
    )
    fresh: dict[int, int] = {}
    for row in last:
        health = result[row["tenant_id"]]
        if row["last"] and (health.last_point_at is None or row["last"] > health.last_point_at):
            health.last_point_at = row["last"]
        if not is_stale(row["last"], now):
            fresh[row["tenant_id"]] = fresh.get(row["tenant_id"], 0) + 1
    for tid, total in Node.objects.unscoped().filter(tenant_id__in=ids).values("tenant_id").annotate(
        n=Count("id")
    ).values_list("tenant_id", "n"):
        result[tid].nodes_total = total
        result[tid].nodes_stale = total - fresh.get(tid, 0)
    missing_last = [tid for tid, h in result.items() if h.last_point_at is None and h.nodes_total]
    if missing_last:  # silent for more than a day: look further back
        for tid, newest in NodeDailyCounter.objects.unscoped().filter(
            tenant_id__in=missing_last, day__gte=today - timedelta(days=LOOKBACK_DAYS)
        ).values("tenant_id").annotate(last=Max("last_point_at")).values_list("tenant_id", "last"):
            result[tid].last_point_at = newest
    return result


@dataclass
class TenantHealthDetail:
    summary: TenantHealth
    nodes: list[NodeHealth]
    days: list[dict]  # per UTC day, newest first: accepted, rejected, batches, rejected batches
    rejected_by_reason_week: dict[str, int]

    @property
    def stale_nodes(self) -> list[NodeHealth]:
        return [n for n in self.nodes if n.stale]


def last_points(tenant: Tenant | int, now: datetime) -> dict[int, datetime]:
    """Each node's newest point (in ``LOOKBACK_DAYS``) by node id: one query. A node
    missing here has sent nothing in that time."""
    return dict(
        NodeDailyCounter.objects.for_tenant(tenant).filter(day__gte=now.date() - timedelta(days=LOOKBACK_DAYS))
        .values("node_id").annotate(last=Max("last_point_at")).values_list("node_id", "last")
    )


def node_health(tenant: Tenant, now: datetime | None = None) -> list[NodeHealth]:
    """Every node of the tenant with its last point and today's and yesterday's counts,
    stale nodes first (then by cluster and node name): three queries."""
    now = now or _now()
    today, yesterday = _days(now)
    last = last_points(tenant, now)
    counts: dict[tuple[int, date], int] = {
        (node_id, day): count
        for node_id, day, count in NodeDailyCounter.objects.for_tenant(tenant).filter(day__gte=yesterday).values_list(
            "node_id", "day", "points_accepted"
        )
    }
    nodes = [
        NodeHealth(node, last.get(node.pk), counts.get((node.pk, today), 0), counts.get((node.pk, yesterday), 0), now)
        for node in Node.objects.for_tenant(tenant).select_related("cluster")
    ]
    nodes.sort(key=lambda n: (not n.stale, n.node.cluster.name, n.node.name))
    return nodes


def tenant_detail(tenant: Tenant, now: datetime | None = None, days: int = 7) -> TenantHealthDetail:
    """One tenant: every node's last point and age, the last ``days`` days' counters."""
    now = now or _now()
    today, _ = _days(now)
    summary = overview([tenant.pk], now)[tenant.pk]
    start = today - timedelta(days=days - 1)
    day_rows = list(
        TenantDailyCounter.objects.for_tenant(tenant).filter(day__gte=start).order_by("-day").values(
            "day", "points_accepted", "points_rejected", "batches", "rejected_batches", "rejected_by_reason"
        )
    )
    week: dict[str, int] = {}
    for row in day_rows:
        for reason, count in (row["rejected_by_reason"] or {}).items():
            week[reason] = week.get(reason, 0) + int(count)
    week = dict(sorted(week.items(), key=lambda kv: -kv[1]))
    return TenantHealthDetail(summary=summary, nodes=node_health(tenant, now), days=day_rows, rejected_by_reason_week=week)
