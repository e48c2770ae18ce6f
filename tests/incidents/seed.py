"""Anomaly rows seeded directly (independent of detection recall)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analytics.models import Series
from results.models import Anomaly
from tenants.models import Cluster, Node, Tenant

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def series(tenant: Tenant, cluster: str, node: str, metric: str) -> Series:
    c, _ = Cluster.objects.unscoped().get_or_create(tenant=tenant, name=cluster)
    n, _ = Node.objects.unscoped().get_or_create(tenant=tenant, cluster=c, name=node)
    s, _ = Series.objects.unscoped().get_or_create(tenant=tenant, cluster=c, node=n, metric_name=metric)
    return s


def anomaly(tenant: Tenant, cluster: str, node: str, metric: str, start_min: int, minutes: int = 10,
            score: float = 0.9, direction: str = "up") -> Anomaly:
    s = series(tenant, cluster, node, metric)
    start = T0 + timedelta(minutes=start_min)
    return Anomaly.objects.unscoped().create(
        tenant=tenant, series=s, cluster_id=s.cluster_id, node_id=s.node_id, metric_name=metric, engine="adtk",
        window_start=start, window_end=start + timedelta(minutes=minutes), score=score, first_score=score,
        label="spike", explanation={"direction": direction},
    )


def analysed_until(tenant: Tenant, minutes: int) -> None:
    """Every series analysed up to T0 + minutes (what a detection run's watermark says)."""
    Series.objects.unscoped().filter(tenant=tenant).update(analysed_until=T0 + timedelta(minutes=minutes))
