"""Read benchmark of the metric store: hot rows vs cold chunks, speed and size.

Loads N series x D days of one-minute points through the write path (time-major
batches of 10,000 points, as agents send them), reads them all into numpy with the
batch read (``get_metric_series_batch``) from HOT, compacts, reads again from COLD,
and prints points/s and bytes per stored point (pg_total_relation_size). Uses the
PostgreSQL database given by DATABASE_URL (migrated if needed); creates its own tenant
and removes its data afterwards.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fw_bench python bench/bench_read.py --series 1000 --days 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="reads per tier (median reported)")
    parser.add_argument("--batch", type=int, default=10_000, help="points per write batch")
    parser.add_argument("--day", default="2026-01-10", help="first UTC day of the data (a closed day)")
    parser.add_argument("--compare", type=int, default=30, help="batches also written by raw COPY, for comparison")
    parser.add_argument("--keep", action="store_true", help="leave the data in place")
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.db import connection, transaction

    from analytics.store.compaction import compact
    from analytics.store.partitions import daily_partitions, ensure_partitions
    from analytics.store.read import get_metric_series_batch
    from analytics.store.write import resolve_series, write_points
    from bench.raw_copy import copy_raw
    from tenants.models import Plan, Tenant

    if connection.vendor != "postgresql":
        sys.exit("bench_read: needs PostgreSQL (set DATABASE_URL=postgres://...)")
    call_command("migrate", verbosity=0)

    first = datetime.fromisoformat(args.day).replace(tzinfo=UTC)
    end = first + timedelta(days=args.days)
    minutes = args.days * 1440
    points = args.series * minutes
    print(f"{args.series} series x {args.days} day(s) of one-minute points = {points:,} points")

    plan, _ = Plan.objects.get_or_create(slug="bench", defaults={"name": "Bench", "cold_retention_days": 3650})
    tenant = Tenant.objects.create(slug=f"bench-{uuid.uuid4().hex[:8]}", name="Bench", plan=plan)
    created_partitions = set(ensure_partitions(days_ahead=args.days, days_behind=1, now=first))

    def relation_bytes(names: list[str]) -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT coalesce(sum(pg_total_relation_size(r::regclass)), 0) FROM unnest(%s::text[]) AS r", [names])
            return int(cur.fetchone()[0])

    def hot_tables() -> list[str]:
        days = {f"analytics_point_p{(first + timedelta(days=d)):%Y%m%d}" for d in range(args.days)}
        return sorted(days & set(daily_partitions().values()))

    try:
        keys = [("bench", f"node-{i // 10:04d}", f"metric_{i % 10}") for i in range(args.series)]
        with transaction.atomic():
            ids, _ = resolve_series(tenant.pk, keys)
            raw_ids = {
                method: resolve_series(tenant.pk, [(f"raw-{method}", n, m) for _, n, m in keys])[0].ids
                for method in ("numpy", "write_row")
            }
        series = ids.ids
        rng = np.random.default_rng(42)
        base = np.cumsum(rng.normal(0, 1, (args.series, minutes)), axis=1).round(3) + 100  # random walks
        t0_ns = int(first.timestamp()) * 10**9
        per_batch = max(1, args.batch // args.series)  # minutes per batch: all series, time-major
        write_times = []
        raw_times: dict[str, list[float]] = {"numpy": [], "write_row": []}
        hot_before = relation_bytes(hot_tables())
        for batch, m in enumerate(range(0, minutes, per_batch)):
            span = min(per_batch, minutes - m)
            s = np.tile(series, span)
            ts = t0_ns + np.repeat(np.arange(m, m + span, dtype=np.int64), args.series) * 60 * 10**9
            v = base[:, m:m + span].T.reshape(-1)
            started = time.perf_counter()
            with transaction.atomic():
                write_points(tenant.pk, s, ts, v)
            write_times.append((time.perf_counter() - started, len(s)))
            if batch < args.compare:  # the same rows, by raw COPY, into the day before (interleaved: same load)
                for method, raw_series in raw_ids.items():
                    started = time.perf_counter()
                    copy_raw(tenant.pk, np.tile(raw_series, span), ts - 86_400 * 10**9, v, method=method)
                    raw_times[method].append((time.perf_counter() - started) / len(s) * 10_000)
        total_write = sum(t for t, _ in write_times)
        per10k = statistics.median(t / n * 10_000 for t, n in write_times)
        print(f"write_points: {points / total_write:,.0f} points/s; median {per10k * 1000:.1f} ms per 10,000 points")
        if args.compare:
            same = statistics.median(t / n * 10_000 for t, n in write_times[: args.compare])
            for method, times in raw_times.items():
                raw = statistics.median(times)
                print(f"  raw COPY ({method}): median {raw * 1000:.1f} ms per 10,000 points ({10_000 / raw:,.0f} rows/s); "
                      f"write_points over the same batches {same * 1000:.1f} ms = {raw / same:.0%} of its speed")
        with connection.cursor() as cur:
            cur.execute("ANALYZE analytics_point")
            cur.execute("ANALYZE analytics_series")

        def read(label: str) -> float:
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                got = get_metric_series_batch(tenant.pk, series.tolist(), first, end)
                times.append(time.perf_counter() - started)
                assert sum(len(x) for x in got) == points, "read back a different number of points"
            best, median = min(times), statistics.median(times)
            print(f"{label} read: {points / median:,.0f} points/s (median {median:.3f} s, best {best:.3f} s)")
            return median

        read("HOT ")
        hot_bytes = relation_bytes(hot_tables()) - hot_before
        print(f"HOT  size: {hot_bytes / points:.1f} bytes/point ({hot_bytes / 2**20:.1f} MiB)")

        chunk_before = relation_bytes(["analytics_chunk"])
        rollup_before = relation_bytes(["analytics_rollup"])
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cur:  # the raw-COPY comparison rows are not part of the test
            cur.execute("DELETE FROM analytics_point WHERE tenant_id = %s AND ts >= %s AND ts < %s",
                        [tenant.pk, first - timedelta(days=1), first])
        stats = compact(end)
        elapsed = time.perf_counter() - started
        print(f"compaction: {stats.points:,} points, {stats.chunks:,} chunks, {stats.rollups:,} roll-ups in {elapsed:.2f} s "
              f"({stats.points / elapsed:,.0f} points/s)")
        with connection.cursor() as cur:
            cur.execute("ANALYZE analytics_chunk")
        read("COLD")
        chunk_bytes = relation_bytes(["analytics_chunk"]) - chunk_before
        rollup_bytes = relation_bytes(["analytics_rollup"]) - rollup_before
        print(f"COLD size: {chunk_bytes / points:.1f} bytes/point in chunks ({chunk_bytes / 2**20:.1f} MiB); "
              f"roll-ups {rollup_bytes / points:.1f} bytes/raw point ({rollup_bytes / 2**20:.1f} MiB)")
    finally:
        if not args.keep:
            with transaction.atomic(), connection.cursor() as cur:
                for table in ("analytics_point", "analytics_chunk", "analytics_rollup", "analytics_nodedailycounter",
                              "analytics_tenantdailycounter"):
                    cur.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [tenant.pk])
                for name in daily_partitions().values():
                    if name in created_partitions:
                        cur.execute(f"DROP TABLE IF EXISTS {name}")
            tenant.delete()


if __name__ == "__main__":
    main()
