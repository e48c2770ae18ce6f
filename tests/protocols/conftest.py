"""Helpers for the protocol endpoint tests: what the store holds, per tenant."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

from analytics.models import Point, Series


def stored_points(tenant) -> set[tuple[str, str, str, datetime, float]]:
    """{(cluster, node, metric, ts, value)} of the tenant's hot points."""
    rows = Point.objects.for_tenant(tenant).values_list(
        "series__cluster__name", "series__node__name", "series__metric_name", "ts", "value"
    )
    return {(c, n, m, ts.astimezone(UTC), v) for c, n, m, ts, v in rows}


def point_count(tenant) -> int:
    return Point.objects.for_tenant(tenant).count()


def series_of(tenant) -> dict[tuple[str, str, str], str]:
    """{(cluster, node, metric): unit} of the tenant's series."""
    rows = Series.objects.for_tenant(tenant).values_list("cluster__name", "node__name", "metric_name", "unit")
    return {(c, n, m): u for c, n, m, u in rows}


def series_ids(tenant, cluster: str, node: str, metric: str) -> tuple[int, int]:
    """(cluster_id, node_id) of one of the tenant's series."""
    row = Series.objects.for_tenant(tenant).filter(cluster__name=cluster, node__name=node, metric_name=metric)
    return row.values_list("cluster_id", "node_id").get()


def read_series(tenant, ids: tuple[int, int], metric: str, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """Through the store's read path: [(ts, value)] of a series (ids from ``series_ids``)."""
    from analytics.store.read import get_metric_series

    series = get_metric_series(tenant.pk, ids[0], ids[1], metric, start, end)
    return [(ts.to_pydatetime(), float(v)) for ts, v in zip(series.timestamps, series.values, strict=True)]



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def now_ns() -> int:
    return time.time_ns()
