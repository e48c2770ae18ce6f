"""Ingestion counters: per tenant per UTC day and per node per UTC day.

Kept by one upsert per tenant and one per batch's nodes (never a count over points), in
the writer's transaction. The tenant's row is hot (every batch of the tenant updates
it), so the write path upserts it last, just before the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import numpy as np
from django.db import connection, transaction
from psycopg.types.json import Jsonb

from analytics.models import TenantDailyCounter
from config.pg import (
    ArrayParam,
    is_postgresql,
    raw_connection,
    server_cursor,
    us_to_datetime,
)


def today() -> date:
    return datetime.now(UTC).date()


def add_accepted(
    tenant_id: int,
    points: int,
    node_ids: np.ndarray,
    node_points: np.ndarray,
    node_last_us: np.ndarray,
    *,
    batches: int = 1,
    day: date | None = None,
) -> None:
    """Count ``points`` accepted (and ``batches``) for the tenant, and per node (arrays:
    node ids, points, newest point in microseconds since the epoch)."""
    day = day or today()
    order = np.argsort(node_ids, kind="stable")  # one lock order for every writer
    nodes, counts, lasts = (np.asarray(a, dtype=np.int64)[order] for a in (node_ids, node_points, node_last_us))
    if is_postgresql():
        with server_cursor() as cur:
            if len(nodes):
                cur.execute(
                    """
                    INSERT INTO analytics_nodedailycounter (tenant_id, node_id, day, points_accepted, last_point_at)
                    SELECT %s, u.node_id, %s, u.n, u.last FROM unnest(%s, %s, %s) AS u(node_id, n, last)
                    ON CONFLICT (tenant_id, node_id, day) DO UPDATE SET
                        points_accepted = analytics_nodedailycounter.points_accepted + EXCLUDED.points_accepted,
                        last_point_at = GREATEST(analytics_nodedailycounter.last_point_at, EXCLUDED.last_point_at)
                    """,
                    (tenant_id, day, ArrayParam("int8", nodes), ArrayParam("int8", counts), ArrayParam("timestamptz", lasts)),
                )
            cur.execute(
                """
                INSERT INTO analytics_tenantdailycounter
                    (tenant_id, day, points_accepted, points_rejected, rejected_by_reason, batches, rejected_batches)
                VALUES (%s, %s, %s, 0, '{}'::jsonb, %s, 0)
                ON CONFLICT (tenant_id, day) DO UPDATE SET
                    points_accepted = analytics_tenantdailycounter.points_accepted + EXCLUDED.points_accepted,
                    batches = analytics_tenantdailycounter.batches + EXCLUDED.batches
                """,
                (tenant_id, day, points, batches),
            )
        return
    ops = connection.ops
    with transaction.atomic(), connection.cursor() as cur:
        if len(nodes):
            cur.executemany(
                """
                INSERT INTO analytics_nodedailycounter (tenant_id, node_id, day, points_accepted, last_point_at)
                VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (tenant_id, node_id, day) DO UPDATE SET
                    points_accepted = analytics_nodedailycounter.points_accepted + excluded.points_accepted,
                    last_point_at = max(coalesce(analytics_nodedailycounter.last_point_at, excluded.last_point_at),
                                        excluded.last_point_at)
                """,
                [
                    (tenant_id, node, ops.adapt_datefield_value(day), n, ops.adapt_datetimefield_value(us_to_datetime(last)))
                    for node, n, last in zip(nodes.tolist(), counts.tolist(), lasts.tolist(), strict=True)
                ],
            )
        cur.execute(
            """
            INSERT INTO analytics_tenantdailycounter
                (tenant_id, day, points_accepted, points_rejected, rejected_by_reason, batches, rejected_batches)
            VALUES (%s, %s, %s, 0, '{}', %s, 0)
            ON CONFLICT (tenant_id, day) DO UPDATE SET
                points_accepted = analytics_tenantdailycounter.points_accepted + excluded.points_accepted,
                batches = analytics_tenantdailycounter.batches + excluded.batches
            """,
            (tenant_id, ops.adapt_datefield_value(day), points, batches),
        )


def add_rejected(tenant_id: int, reasons: Mapping[str, int], *, batches: int = 1, day: date | None = None) -> None:
    """Count rejected points by reason (and rejected ``batches``) for the tenant."""
    day = day or today()
    reasons = {str(k): int(v) for k, v in reasons.items() if int(v)}
    total = sum(reasons.values())
    if is_postgresql():
        with raw_connection().cursor() as cur:
            cur.execute(
                """
                INSERT INTO analytics_tenantdailycounter AS c
                    (tenant_id, day, points_accepted, points_rejected, rejected_by_reason, batches, rejected_batches)
                VALUES (%s, %s, 0, %s, %s, 0, %s)
                ON CONFLICT (tenant_id, day) DO UPDATE SET
                    points_rejected = c.points_rejected + EXCLUDED.points_rejected,
                    rejected_batches = c.rejected_batches + EXCLUDED.rejected_batches,
                    rejected_by_reason = (
                        SELECT coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
                        FROM (
                            SELECT key, sum(value::bigint) AS total
                            FROM (
                                SELECT * FROM jsonb_each_text(c.rejected_by_reason)
                                UNION ALL SELECT * FROM jsonb_each_text(EXCLUDED.rejected_by_reason)
                            ) AS e
                            GROUP BY key
                        ) AS t
                    )
                """,
                (tenant_id, day, total, Jsonb(reasons), batches),
            )
        return
    with transaction.atomic():  # SQLite serialises writers: read-modify-write is safe
        row, _ = TenantDailyCounter.objects.for_tenant(tenant_id).get_or_create(tenant_id=tenant_id, day=day)
        merged = dict(row.rejected_by_reason or {})
        for reason, count in reasons.items():
            merged[reason] = merged.get(reason, 0) + count
        row.rejected_by_reason = merged
        row.points_rejected += total
        row.rejected_batches += batches
        row.save(update_fields=["rejected_by_reason", "points_rejected", "rejected_batches"])
