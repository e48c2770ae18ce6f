"""Compaction: closed days of hot points become one chunk per series and day, plus roll-ups.

For each UTC day before ``before`` that still has hot points, in one transaction:
1. serialise with any other compactor of that day (advisory lock);
2. take the day's points: on PostgreSQL from its daily partition, locked EXCLUSIVE (so
   ingestion waits rather than writes into it, and readers still read), or, for a day
   with no partition, with ``DELETE ... RETURNING`` from the DEFAULT partition (what is
   deleted is exactly what is compacted; a point inserted concurrently stays hot for
   the next run);
3. merge them into the series' existing chunk of that day, if any (late points; the
   hot value wins on equal timestamps);
4. upsert the chunks, and replace the day's 5-minute and 1-hour roll-ups of the affected
   series (recomputed from the day's complete points);
5. empty the partition (TRUNCATE).
Emptied partitions are dropped afterwards, each in a short transaction with a lock
timeout. Idempotent: a rerun finds nothing to do, and a failure rolls the whole day back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from psycopg import sql

from analytics.models import Chunk, Point, Rollup
from analytics.store.codec import (
    decode_timestamps,
    decode_values,
    encode_timestamps,
    encode_values,
)
from analytics.store.partitions import (
    COMPACTION_LOCK,
    DEFAULT,
    daily_partitions,
    drop_partition_if_empty,
    partition_name,
)
from analytics.store.read import merge_points
from analytics.store.rollups import WIDTHS_S, RollupRows, compute_rollups
from config.pg import (
    US_PER_DAY,
    build_copy_payload,
    datetime_to_us,
    fetch_series_arrays,
    is_postgresql,
    raw_connection,
    us_to_datetime,
)

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=2)  # late points within this after midnight still go to the partition


@dataclass
class CompactionStats:
    days: list[str] = field(default_factory=list)
    points: int = 0
    chunks: int = 0
    rollups: int = 0
    partitions_dropped: int = 0

    def as_dict(self) -> dict:
        return {"days": self.days, "points": self.points, "chunks": self.chunks, "rollups": self.rollups,
                "partitions_dropped": self.partitions_dropped}


def default_before(now: datetime | None = None) -> datetime:
    grace = getattr(settings, "FLEETWATCH_COMPACTION_GRACE", DEFAULT_GRACE)
    moment = (now or datetime.now(UTC)) - grace
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _days_with_hot_points(before: datetime) -> tuple[list[date], set[date]]:
    """(days before ``before`` with hot points, those of them that have a partition)."""
    if is_postgresql():
        partitions = {d for d in daily_partitions() if _day_start(d) + timedelta(days=1) <= before}
        with connection.cursor() as cur:
            cur.execute(f"SELECT DISTINCT date_trunc('day', ts, 'UTC') FROM {DEFAULT} WHERE ts < %s", [before])
            loose = {row[0].astimezone(UTC).date() for row in cur.fetchall()}
        return sorted(partitions | loose), partitions
    days = Point.objects.unscoped().filter(ts__lt=before).datetimes("ts", "day", tzinfo=UTC)
    return sorted({d.date() for d in days}), set()


def compact(before: datetime | None = None, *, now: datetime | None = None) -> CompactionStats:
    """Compact every whole UTC day ending at or before ``before`` (rounded down to
    midnight; default: midnight of (now - grace), the grace being
    ``settings.FLEETWATCH_COMPACTION_GRACE``, 2 hours unless set)."""
    before = before or default_before(now)
    if before.tzinfo is None or before.utcoffset() is None:
        raise ValueError("before: must be timezone-aware")
    before = before.astimezone(UTC)
    before = datetime(before.year, before.month, before.day, tzinfo=UTC)
    stats = CompactionStats()
    days, partitioned = _days_with_hot_points(before)
    for day in days:
        n_points, n_chunks, n_rollups = compact_day(day, partitioned=day in partitioned)
        stats.days.append(day.isoformat())
        stats.points += n_points
        stats.chunks += n_chunks
        stats.rollups += n_rollups
        if day in partitioned and drop_partition_if_empty(day):
            stats.partitions_dropped += 1
    if days:
        log.info("compaction: %s", stats.as_dict())
    return stats


def _take_points_postgresql(cur, day: date, partitioned: bool) -> list[np.ndarray]:
    lo, hi = _day_start(day), _day_start(day) + timedelta(days=1)
    source = None
    if partitioned:
        name = partition_name(day)
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
        if cur.fetchone()[0]:
            cur.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(name)))
            source = sql.SQL("SELECT tenant_id, series_id, ts, value FROM {}").format(sql.Identifier(name))
    if source is None:
        source = sql.SQL("DELETE FROM {} WHERE ts >= {} AND ts < {} RETURNING tenant_id, series_id, ts, value").format(
            sql.Identifier(DEFAULT), sql.Literal(lo), sql.Literal(hi)
        )
    rows = fetch_series_arrays(cur, source)
    if not rows:
        return [np.empty(0, dtype=np.int64)] * 3 + [np.empty(0, dtype=np.float64)]
    lengths = [len(t) for _, _, t, _ in rows]
    return [
        np.repeat(np.array([r[0] for r in rows], dtype=np.int64), lengths),
        np.repeat(np.array([r[1] for r in rows], dtype=np.int64), lengths),
        np.concatenate([r[2] for r in rows]),
        np.concatenate([r[3] for r in rows]),
    ]


def _take_points_sqlite(day: date) -> list[np.ndarray]:
    lo, hi = _day_start(day), _day_start(day) + timedelta(days=1)
    rows = Point.objects.unscoped().filter(ts__gte=lo, ts__lt=hi)
    data = list(rows.values_list("tenant_id", "series_id", "ts", "value"))
    rows.delete()
    n = len(data)
    return [
        np.fromiter((r[0] for r in data), dtype=np.int64, count=n),
        np.fromiter((r[1] for r in data), dtype=np.int64, count=n),
        np.fromiter((datetime_to_us(r[2]) for r in data), dtype=np.int64, count=n),
        np.fromiter((r[3] for r in data), dtype=np.float64, count=n),
    ]


def _existing_chunks(day: date, tenant_of: dict[int, int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    by_tenant: dict[int, list[int]] = {}
    for series_id, tenant_id in tenant_of.items():
        by_tenant.setdefault(tenant_id, []).append(series_id)
    out = {}
    for tenant_id, ids in by_tenant.items():
        rows = Chunk.objects.for_tenant(tenant_id).filter(series_id__in=ids, period_start=_day_start(day))
        for series_id, ts_data, value_data in rows.values_list("series_id", "ts_data", "value_data"):
            out[series_id] = (decode_timestamps(ts_data), decode_values(value_data))
    return out


def compact_day(day: date, *, partitioned: bool = False) -> tuple[int, int, int]:
    """Compact one UTC day's hot points; returns (points, chunks, roll-up rows) written."""
    day_us = datetime_to_us(_day_start(day))
    with transaction.atomic():
        if is_postgresql():
            cur = raw_connection().cursor()
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (COMPACTION_LOCK, day.toordinal()))
            cur.execute("SET LOCAL lock_timeout = '60s'")
            tenants, series, ts, values = _take_points_postgresql(cur, day, partitioned)
        else:
            cur = None
            tenants, series, ts, values = _take_points_sqlite(day)
        if not len(series):
            return 0, 0, 0
        order = np.lexsort((ts, series))
        tenants, series, ts, values = tenants[order], series[order], ts[order], values[order]
        bounds = np.flatnonzero(series[1:] != series[:-1]) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [len(series)]))
        tenant_of = {int(series[a]): int(tenants[a]) for a in starts.tolist()}
        existing = _existing_chunks(day, tenant_of)
        if existing:  # late points: rebuild the affected series from chunk + hot
            parts = []
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                sid = int(series[a])
                t, v = (ts[a:b], values[a:b])
                if sid in existing:
                    t, v = merge_points(existing[sid], (t, v))
                parts.append((np.full(len(t), tenant_of[sid], dtype=np.int64), np.full(len(t), sid, dtype=np.int64), t, v))
            tenants, series, ts, values = (np.concatenate(column) for column in zip(*parts, strict=True))
            bounds = np.flatnonzero(series[1:] != series[:-1]) + 1
            starts = np.concatenate(([0], bounds))
            ends = np.concatenate((bounds, [len(series)]))
        chunks = [
            _chunk_row(tenant_of[int(series[a])], int(series[a]), day_us, ts[a:b], values[a:b])
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
        rollups = compute_rollups(tenants, series, ts, values)
        if cur is not None:
            _upsert_chunks_postgresql(cur, chunks)
            _upsert_rollups_postgresql(cur, rollups, day_us)
            if partitioned:
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (partition_name(day),))
                if cur.fetchone()[0]:
                    cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(partition_name(day))))
            cur.close()
        else:
            _upsert_sqlite(chunks, rollups)
        return int(len(order)), len(chunks), len(rollups)


def _chunk_row(tenant_id: int, series_id: int, day_us: int, t: np.ndarray, v: np.ndarray) -> tuple:
    return (
        tenant_id, series_id, day_us, len(t), int(t[0]), int(t[-1]),
        float(v.min()), float(v.max()), float(v.sum()), encode_timestamps(t), encode_values(v),
    )


CHUNK_COLUMNS = ("tenant_id", "series_id", "period_start", "count", "first_ts", "last_ts", "min", "max", "sum", "ts_data", "value_data")


def _upsert_chunks_postgresql(cur, chunks: list[tuple]) -> None:
    cur.execute(
        "CREATE TEMPORARY TABLE fw_chunk_stage (tenant_id bigint, series_id bigint, period_start timestamptz, count integer,"
        " first_ts timestamptz, last_ts timestamptz, min double precision, max double precision, sum double precision,"
        " ts_data bytea, value_data bytea) ON COMMIT DROP"
    )
    with cur.copy(f"COPY fw_chunk_stage ({', '.join(CHUNK_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "int8", "timestamptz", "int4", "timestamptz", "timestamptz", "float8", "float8", "float8",
                        "bytea", "bytea"])
        for row in chunks:
            tenant_id, series_id, day_us, count, first, last, lo, hi, total, ts_data, value_data = row
            copy.write_row((tenant_id, series_id, us_to_datetime(day_us), count, us_to_datetime(first), us_to_datetime(last),
                            lo, hi, total, ts_data, value_data))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in CHUNK_COLUMNS[3:])
    cur.execute(
        f"INSERT INTO analytics_chunk ({', '.join(CHUNK_COLUMNS)}) SELECT {', '.join(CHUNK_COLUMNS)} FROM fw_chunk_stage"
        f" ORDER BY tenant_id, series_id ON CONFLICT (tenant_id, series_id, period_start) DO UPDATE SET {updates}"
    )
    cur.execute("DROP TABLE fw_chunk_stage")  # the next day may be compacted in this same transaction


ROLLUP_COLUMNS = ("tenant_id", "series_id", "resolution", "bucket_start", "min", "max", "sum", "count")


def _upsert_rollups_postgresql(cur, r: RollupRows, day_us: int) -> None:
    """Replace the day's roll-ups of the series compacted: they are recomputed from the
    day's complete points, so delete-then-COPY is exact, and about twice as fast as an
    upsert (the advisory lock keeps other compactors of the day out)."""
    if not len(r):
        return
    pairs = np.unique(np.stack([r.tenant_id, r.series_id], axis=1), axis=0)
    cur.execute(
        "DELETE FROM analytics_rollup AS r USING unnest(%s::bigint[], %s::bigint[]) AS u(tenant_id, series_id)"
        " WHERE r.tenant_id = u.tenant_id AND r.series_id = u.series_id AND r.resolution = ANY(%s::integer[])"
        " AND r.bucket_start >= %s AND r.bucket_start < %s",
        (pairs[:, 0].tolist(), pairs[:, 1].tolist(), list(WIDTHS_S), us_to_datetime(day_us), us_to_datetime(day_us + US_PER_DAY)),
    )
    payload = build_copy_payload(
        [("int8", r.tenant_id), ("int8", r.series_id), ("int4", r.resolution), ("timestamptz", r.bucket_start_us),
         ("float8", r.min), ("float8", r.max), ("float8", r.sum), ("int4", r.count)]
    )
    with cur.copy(f"COPY analytics_rollup ({', '.join(ROLLUP_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(payload)


def _upsert_sqlite(chunks: list[tuple], r: RollupRows) -> None:
    Chunk.objects.unscoped().bulk_create(
        [
            Chunk(tenant_id=t, series_id=s, period_start=us_to_datetime(d), count=n, first_ts=us_to_datetime(f),
                  last_ts=us_to_datetime(la), min=lo, max=hi, sum=total, ts_data=td, value_data=vd)
            for t, s, d, n, f, la, lo, hi, total, td, vd in chunks
        ],
        update_conflicts=True,
        unique_fields=["tenant", "series", "period_start"],
        update_fields=list(CHUNK_COLUMNS[3:]),
    )
    Rollup.objects.unscoped().bulk_create(
        [
            Rollup(tenant_id=t, series_id=s, resolution=res, bucket_start=us_to_datetime(b), min=lo, max=hi, sum=total, count=n)
            for t, s, res, b, lo, hi, total, n in zip(
                r.tenant_id.tolist(), r.series_id.tolist(), r.resolution.tolist(), r.bucket_start_us.tolist(),
                r.min.tolist(), r.max.tolist(), r.sum.tolist(), r.count.tolist(), strict=True,
            )
        ],
        update_conflicts=True,
        unique_fields=["tenant", "series", "resolution", "bucket_start"],
        update_fields=["min", "max", "sum", "count"],
    )
