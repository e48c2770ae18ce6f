"""A backtest over a simulated fleet's stored history through real Celery workers (a
script, not a test).

Creates its own database (bench/_common.py), seeds ``--series`` series x ``--days`` days
of one-minute points (the simulator's fleet, raw COPY into the hot store), labels the
simulated anomalies of every tenth series as "real problem", starts one real worker
with ``--concurrency`` processes and times ``POST /api/v1/backtests``'s task from the
request to the stored report (engine: the product default, its own parameters).
Target (issue 18): 1,000 series x 7 days in under 2 minutes with 2 workers.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c
from bench.bench_pipeline import analyze_tables, group_cpu_seconds, seed_fleet

TARGET_S = 120.0


def label_truth(tenant, fleet) -> int:
    """"Real problem" labels on the simulated anomalies of every tenth series."""
    from analytics.models import Series
    from results.models import Feedback

    series = {(s.cluster.name, s.node.name, s.metric_name): s for s in
              Series.objects.for_tenant(tenant).select_related("cluster", "node")}
    keys = sorted(series)[::10]
    chosen = set(keys)
    rows = [Feedback(tenant=tenant, series=series[k], node_id=series[k].node_id, metric_name=k[2], score=0.9,
                     verdict=Feedback.Verdict.REAL, window_start=a.start, window_end=a.end + timedelta(minutes=1),
                     by="bench")
            for a in fleet.ground_truth if (k := (a.cluster, a.node, a.metric)) in chosen]
    Feedback.objects.for_tenant(tenant).bulk_create(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)

    url = c.setup_django("backtests", broker=True)
    from analytics.simulator.fleet import generate
    from analytics.simulator.spec import DEFAULT_METRICS, FleetSpec
    from config.celery import app
    from results.backtests import runner
    from results.backtests.tasks import run_backtest
    from results.models import Backtest
    from tenants.scoping import tenant_scope

    result: dict = {"benchmark": "backtests", "machine": c.machine(), "load_before": c.loadavg(),
                    "series": args.series, "days": args.days, "concurrency": args.concurrency}
    metrics = DEFAULT_METRICS[:5]
    nodes = math.ceil(args.series / len(metrics))
    clusters = max(1, nodes // 50)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    fleet = generate(FleetSpec(clusters_per_tenant=clusters, nodes_per_cluster=math.ceil(nodes / clusters),
                               metrics=metrics, start=start, days=args.days, clean_days=1, anomaly_rate=1.0, seed=18))
    tenant = c.make_tenant("bench-backtests")
    c.ensure_days(int(start.timestamp()), int((start + timedelta(days=args.days)).timestamp()))
    t = time.perf_counter()
    ids, points = seed_fleet(tenant.pk, fleet, 0, fleet.n_points)
    analyze_tables()
    with tenant_scope(tenant):
        labels = label_truth(tenant, fleet)
    print(f"{len(ids)} series x {args.days} days ({points:,} points, {labels} labelled anomalies) seeded in "
          f"{time.perf_counter() - t:.1f} s")
    app.control.purge()
    worker = c.Worker(concurrency=args.concurrency)
    try:
        worker.wait_ready(app)
        cpu0 = group_cpu_seconds(worker.process.pid)
        t0 = time.perf_counter()
        with tenant_scope(tenant):
            backtest = runner.create(tenant.pk, engine="adtk", params={}, current_settings=False, series_ids=ids,
                                     start=start, end=start + timedelta(days=args.days), by="bench")
        run_backtest.delay(tenant_id=tenant.pk, backtest_id=backtest.pk)
        deadline = time.monotonic() + args.timeout
        while True:
            backtest = Backtest.objects.unscoped().get(pk=backtest.pk)
            if backtest.status in (Backtest.Status.SUCCEEDED, Backtest.Status.FAILED):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"backtest not finished after {args.timeout:.0f} s ({backtest.parts_done} parts)")
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        if backtest.status != Backtest.Status.SUCCEEDED:
            raise RuntimeError(f"backtest failed: {backtest.error}")
        report = backtest.report
        result.update({"points": points, "wall_s": round(wall, 1), "worker_cpu_s": round(group_cpu_seconds(worker.process.pid) - cpu0, 1),
                       "series_per_s": round(len(ids) / wall, 1), "points_per_s": round(points / wall),
                       "nab_standard": report["nab"]["standard"]["score"], "alarms": report["alarms"],
                       "load_after": c.loadavg(), "worker_peak_rss_mib": round(worker.children_max_rss_mib(), 1)})
        verdict = "meets" if wall < TARGET_S else "misses"
        print(f"backtest of {len(ids)} series x {args.days} days ({points:,} points), {args.concurrency} worker processes: "
              f"{wall:.1f} s wall ({verdict} the {TARGET_S:.0f} s target), worker CPU {result['worker_cpu_s']} s, "
              f"{result['series_per_s']} series/s; NAB standard {result['nab_standard']}, {report['alarms']} alarms; "
              f"load {result['load_before']} -> {result['load_after']}")
    finally:
        worker.stop()
        app.control.purge()
        if not args.keep:
            c.drop_database(url)
    return c.emit(result, args.json_out)


if __name__ == "__main__":
    main()
