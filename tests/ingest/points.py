"""What the store holds for a tenant, read through the scoped ORM."""

from analytics.models import Point


def stored_points(tenant) -> set[tuple]:
    rows = Point.objects.for_tenant(tenant).values_list(
        "series__cluster__name", "series__node__name", "series__metric_name", "ts", "value"
    )
    return {(c, n, m, int(ts.timestamp()), v) for c, n, m, ts, v in rows}


def point_count(tenant) -> int:
    return Point.objects.for_tenant(tenant).count()
