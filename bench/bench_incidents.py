"""Building incidents after each periodic detection run, over a day (a script, not a test).

    .venv/bin/python bench/bench_incidents.py            # 10,000 series, 288 periodic runs (a day, every 5 min)
    .venv/bin/python bench/bench_incidents.py --quick    # 2,000 series, 6 hours
    .venv/bin/python bench/bench_incidents.py --json-out FILE

Creates database bench_incidents_<pid> (dropped unless --keep). The tenant holds
``--series`` series (5 metrics a node, 100 nodes a cluster) and per-node ingestion
counters (what the "no data" check reads). Every hour a cluster event starts: 10 nodes
of one cluster, 2 metrics each, anomalous for 20 minutes, their onsets spread over 6
minutes; besides, 0.2 % of the series have a lone 5-minute anomaly each hour. Each
5-minute periodic run is replayed as the pipeline leaves it: the anomaly episodes it
found are written (new rows, or the rows of continuing episodes extended, as
``results.store`` does), every watermark moves to the run's end; then
``build_incidents`` (what ``finalize_run`` calls after aggregation: grouping, refresh,
auto-resolve, "no data") is timed. Writing the rows and moving the watermarks is the
detection's work and is not timed.

Compared with the periodic detection run over 10,000 series that bench_pipeline.py
measures (the figure recorded in docs/benchmarks.md, or ``--detection-seconds``):
target: building incidents adds at most 10 % to it (judged on the slowest build of
the day and on the 95th percentile).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c  # noqa: E402

TARGET_SHARE = 0.10
METRICS = ("cpu_usage", "memory_used", "disk_io", "network_in", "network_out")
NODES_PER_CLUSTER = 100
RUN = timedelta(minutes=5)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def recorded_detection_seconds() -> float | None:
    """The periodic run over 10,000 series as docs/benchmarks.md records it (bench_pipeline part 2)."""
    match = re.search(r"periodic incremental run over 10,000 series < 60 s \| ([\d.]+) s", DOCS.read_text())
    return float(match.group(1)) if match else None


def seed(tenant, n_series: int, day_start: datetime):
    from analytics.models import NodeDailyCounter, Series
    from tenants.models import Cluster, Node

    nodes = n_series // len(METRICS)
    clusters = [Cluster(tenant=tenant, name=f"cluster-{k:02d}") for k in range((nodes - 1) // NODES_PER_CLUSTER + 1)]
    Cluster.objects.for_tenant(tenant).bulk_create(clusters)
    node_rows = [Node(tenant=tenant, cluster=clusters[k // NODES_PER_CLUSTER], name=f"node-{k:05d}") for k in range(nodes)]
    Node.objects.for_tenant(tenant).bulk_create(node_rows, batch_size=2000)
    Series.objects.for_tenant(tenant).bulk_create(
        [Series(tenant=tenant, cluster_id=node.cluster_id, node=node, metric_name=m) for node in node_rows for m in METRICS],
        batch_size=5000)
    day_end = day_start + timedelta(days=1)
    NodeDailyCounter.objects.for_tenant(tenant).bulk_create(  # every node reports until the day's end
        [NodeDailyCounter(tenant=tenant, node=node, day=day_start.date(), points_accepted=1440 * len(METRICS),
                          last_point_at=day_end) for node in node_rows], batch_size=5000)
    series = {(s.node_id, s.metric_name): s for s in Series.objects.for_tenant(tenant)}
    return clusters, node_rows, series


def planned_anomalies(rng, clusters, node_rows, series, day_start: datetime, hours: int) -> list[dict]:
    """(series, start, end) of the day's anomalies: an hourly cluster event and lone ones."""
    by_cluster: dict[int, list] = {}
    for node in node_rows:
        by_cluster.setdefault(node.cluster_id, []).append(node)
    planned = []
    keys = list(series)
    for hour in range(hours):
        at = day_start + timedelta(hours=hour, minutes=int(rng.integers(5, 40)))
        cluster = clusters[hour % len(clusters)]
        metrics = rng.choice(METRICS, 2, replace=False)
        for node in rng.choice(by_cluster[cluster.pk], min(10, len(by_cluster[cluster.pk])), replace=False):
            onset = at + timedelta(minutes=int(rng.integers(0, 7)))
            for metric in metrics:
                planned.append({"series": series[(node.pk, str(metric))], "start": onset, "end": onset + timedelta(minutes=20)})
        for k in rng.choice(len(keys), max(1, len(keys) // 500), replace=False):
            start = day_start + timedelta(hours=hour, minutes=int(rng.integers(0, 55)))
            planned.append({"series": series[keys[k]], "start": start, "end": start + RUN})
    return planned


def replay_run(tenant, planned: list[dict], rows: dict, start: datetime, end: datetime) -> None:
    """What the detection writes in the run over [start, end): the episodes seen so far."""
    from analytics.models import Series
    from results.models import Anomaly

    new, grown = [], []
    for i, p in enumerate(planned):
        if p["start"] >= end or p["end"] <= start:
            continue
        seen_end = min(p["end"], end)
        s = p["series"]
        if i in rows:
            rows[i].window_end = seen_end
            grown.append(rows[i])
        else:
            rows[i] = Anomaly(tenant=tenant, series=s, cluster_id=s.cluster_id, node_id=s.node_id, metric_name=s.metric_name,
                              engine="adtk", window_start=p["start"], window_end=seen_end, score=0.9, first_score=0.9,
                              label="spike", explanation={"direction": "up"})
            new.append(rows[i])
    Anomaly.objects.for_tenant(tenant).bulk_create(new)
    Anomaly.objects.for_tenant(tenant).bulk_update(grown, ["window_end"])
    Series.objects.for_tenant(tenant).update(analysed_until=end - timedelta(minutes=1))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help="2,000 series, 6 hours")
    parser.add_argument("--detection-seconds", type=float, default=None,
                        help="the periodic detection run to compare with (default: docs/benchmarks.md's 10,000-series figure)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.hours = 2_000, 6
    url = c.setup_django("incidents")
    try:
        import numpy as np

        from results.incidents.build import build_incidents
        from results.models import Incident

        tenant = c.make_tenant("bench-incidents")
        day_start = datetime(2026, 2, 20, tzinfo=UTC)
        clusters, node_rows, series = seed(tenant, args.series, day_start)
        planned = planned_anomalies(np.random.default_rng(7), clusters, node_rows, series, day_start, args.hours)
        rows: dict = {}
        timings = []
        for k in range(args.hours * 12):
            start, end = day_start + k * RUN, day_start + (k + 1) * RUN
            replay_run(tenant, planned, rows, start, end)
            t = time.perf_counter()
            build_incidents(tenant.pk, start, end, now=end)
            timings.append(time.perf_counter() - t)
        incidents = Incident.objects.for_tenant(tenant)
        ordered = sorted(timings)
        result = {
            "series": args.series, "runs": len(timings), "anomaly_rows": len(rows),
            "incidents": incidents.count(), "open_at_end": incidents.filter(state__in=Incident.ACTIVE).count(),
            "build_median_s": round(c.median(ordered), 4), "build_p95_s": round(c.percentile(ordered, 95), 4),
            "build_max_s": round(ordered[-1], 4), "build_total_s": round(sum(timings), 2),
        }
        detection = args.detection_seconds or recorded_detection_seconds()
        result["detection_seconds"] = detection
        if detection:
            result["share_p95"] = round(result["build_p95_s"] / detection, 4)
            result["share_max"] = round(result["build_max_s"] / detection, 4)
            result["met"] = result["share_max"] <= TARGET_SHARE
        print(f"{args.series:,} series, {len(timings)} periodic runs over {args.hours} h, {len(rows):,} anomaly rows, "
              f"{result['incidents']} incidents ({result['open_at_end']} open at the end); load {c.loadavg()}")
        print(f"  build_incidents per run: median {result['build_median_s'] * 1000:.1f} ms, p95 "
              f"{result['build_p95_s'] * 1000:.1f} ms, max {result['build_max_s'] * 1000:.1f} ms")
        if detection:
            print(f"  vs the periodic detection run over 10,000 series ({detection:.1f} s): + {result['share_p95']:.2%} "
                  f"(p95), + {result['share_max']:.2%} (slowest build) (target <= {TARGET_SHARE:.0%}: "
                  f"{'met' if result['met'] else 'MISSED'})")
        return c.emit(result, args.json_out)
    finally:
        if not args.keep:
            c.drop_database(url)


if __name__ == "__main__":
    main()
