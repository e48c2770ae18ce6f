"""Read API latency under concurrent load: GET /api/v1/rankings and /api/v1/anomalies (a script, not a test).

    .venv/bin/python bench/bench_api.py            # 300 nodes, 6,000 anomalies, 4 connections, 20 s per endpoint
    .venv/bin/python bench/bench_api.py --quick    # 5 s per endpoint

Creates database bench_api_<pid> (dropped unless --keep) with one tenant's results:
``--nodes`` nodes in ``--clusters`` clusters, 6 series each, ``--anomalies`` stored
anomalies (with explanations), and aggregated scores (node, cluster, tenant levels x 4
strategies) for ``--periods`` detection periods. Starts gunicorn (2 sync workers,
DJANGO_DEBUG=false) on loopback. The load comes from SEPARATE processes
(multiprocessing, spawn): ``--connections`` client processes, each with one http.client
connection sending requests back to back (closed loop), for ``--duration`` seconds per
endpoint after a 2 s warm-up, at most ``--max-requests`` each. Queries rotate over a few
realistic parameter sets. Reports requests/s, p50, p99, max and errors (non-200 or
connection failures). The load generator shares the 2 cores with the server and
PostgreSQL: figures are for this whole loop on one machine.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c

QUERIES = {
    "rankings": ["/api/v1/rankings", "/api/v1/rankings?level=node&strategy=weighted&top=50",
                 "/api/v1/rankings?level=cluster&strategy=p95", "/api/v1/rankings?strategy=mean&top=20"],
    "anomalies": ["/api/v1/anomalies", "/api/v1/anomalies?label=spike&min_score=0.8",
                  "/api/v1/anomalies?node={node}", "/api/v1/anomalies?offset=500&limit=50",
                  "/api/v1/anomalies?metric=cpu_usage&ordering=-score"],
}


def load_client(args: tuple) -> dict:
    """One connection, requests back to back until the deadline (or max_requests)."""
    port, key, paths, warmup_until, deadline, max_requests, seed = args
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, errors, statuses, sent = [], 0, {}, 0
    while sent < max_requests:
        now = time.time()
        if now >= deadline:
            break
        path = rng.choice(paths)
        t = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status = 0
        elapsed = time.perf_counter() - t
        if now < warmup_until:
            continue
        sent += 1
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            errors += 1
        latencies.append(elapsed)
    conn.close()
    return {"latencies": latencies, "errors": errors, "statuses": statuses}


def seed_results(tenant, clusters: int, nodes: int, anomalies: int, periods: int) -> list[str]:
    """Series, anomalies and aggregated scores for one tenant; returns the node names."""
    from analytics.core.contracts import AggregationStrategy
    from analytics.store.write import resolve_series
    from results.models import AggregatedScore, Anomaly, DetectionRun
    from tenants.models import Node

    metrics = ["cpu_usage", "memory_used", "disk_io", "network_in", "network_out", "latency_ms"]
    keys = [(f"cluster-{i % clusters:02d}", f"node-{i:04d}", m) for i in range(nodes) for m in metrics]
    resolved, _ = resolve_series(tenant.pk, keys)
    series = {k: resolved[k] for k in keys}
    node_ids = dict(Node.objects.unscoped().filter(tenant=tenant).values_list("name", "id"))
    from tenants.models import Cluster

    cluster_ids = dict(Cluster.objects.unscoped().filter(tenant=tenant).values_list("name", "id"))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    run = DetectionRun.objects.unscoped().create(tenant=tenant, trigger="periodic", status="succeeded",
                                                  range_end=now, finished_at=now)
    rng = random.Random(5)
    rows = []
    for _ in range(anomalies):
        cl, node, metric = keys[rng.randrange(len(keys))]
        start = now - timedelta(minutes=5 * rng.randrange(7 * 288))
        label = rng.choice(["spike", "spike", "trend", "seasonal"])
        score = round(rng.uniform(0.5, 1.0), 3)
        text = (f"{metric} on {node} was {rng.uniform(20, 300):.0f}% above the expected "
                f"{rng.uniform(10, 80):.1f} for 5 minutes ({label}).")
        rows.append(Anomaly(tenant=tenant, series_id=series[(cl, node, metric)], cluster_id=cluster_ids[cl],
                            node_id=node_ids[node], metric_name=metric, run=run, engine="adtk", window_start=start,
                            window_end=start + timedelta(minutes=5), score=score, first_score=score, label=label,
                            magnitude=0.4, text=text,
                            explanation={"anomaly_type": label, "direction": "up", "deviation_percent": 42.0,
                                         "observed": 71.2, "expected": 50.1, "sigma": 3.2, "text": text}))
    Anomaly.objects.unscoped().bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    scores = []
    for p in range(periods):
        end = now - timedelta(minutes=5 * p)
        start = end - timedelta(minutes=5)
        for strategy in AggregationStrategy:
            scores.append(AggregatedScore(tenant=tenant, run=run, level="tenant", subject="tenant",
                                          strategy=strategy.value, score=rng.random(), num_metrics_analyzed=len(keys),
                                          num_anomalies_detected=rng.randrange(50), period_start=start, period_end=end))
            for cid in cluster_ids.values():
                scores.append(AggregatedScore(tenant=tenant, run=run, level="cluster", subject=f"cluster:{cid}",
                                              cluster_id=cid, strategy=strategy.value, score=rng.random(),
                                              num_metrics_analyzed=len(keys) // clusters,
                                              num_anomalies_detected=rng.randrange(20), period_start=start,
                                              period_end=end, driver={"node": "node-0001", "metric": "cpu_usage"}))
            for i in range(nodes):
                name = f"node-{i:04d}"
                scores.append(AggregatedScore(tenant=tenant, run=run, level="node", subject=f"node:{node_ids[name]}",
                                              cluster_id=cluster_ids[f"cluster-{i % clusters:02d}"],
                                              node_id=node_ids[name], strategy=strategy.value, score=rng.random(),
                                              num_metrics_analyzed=6, num_anomalies_detected=rng.randrange(5),
                                              period_start=start, period_end=end,
                                              driver={"metric": "cpu_usage", "score": 0.9}))
    AggregatedScore.objects.unscoped().bulk_create(scores, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return [f"node-{i:04d}" for i in range(nodes)]


def measure(port: int, key: str, paths: list[str], connections: int, duration: float, max_requests: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    start = time.time() + 1.0  # processes start
    warmup_until = start + 2.0
    deadline = warmup_until + duration
    with ctx.Pool(connections) as pool:
        parts = pool.map(load_client, [(port, key, paths, warmup_until, deadline, max_requests, i)
                                       for i in range(connections)])
    lat = sorted(x for p in parts for x in p["latencies"])
    errors = sum(p["errors"] for p in parts)
    statuses: dict = {}
    for p in parts:
        for s, n in p["statuses"].items():
            statuses[s] = statuses.get(s, 0) + n
    measured = max(1e-9, min(duration, time.time() - warmup_until))
    return {"requests": len(lat), "requests_per_s": round(len(lat) / measured, 1),
            "p50_ms": round(c.percentile(lat, 50) * 1000, 1), "p99_ms": round(c.percentile(lat, 99) * 1000, 1),
            "max_ms": round(lat[-1] * 1000, 1) if lat else None, "errors": errors,
            "statuses": {str(k): v for k, v in statuses.items()}}


def profile_endpoints(key: str, paths: dict[str, str], repeat: int = 15) -> dict:
    """In-process, no gunicorn: per endpoint the median of ``repeat`` requests through the
    test client, its SQL queries (count, time) and a cProfile of one request."""
    import cProfile
    import io
    import pstats

    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    out = {}
    for name, path in paths.items():
        client.get(path, **auth)  # warm
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            response = client.get(path, **auth)
            times.append(time.perf_counter() - t)
        captured: list[tuple[float, str]] = []

        def timer(execute, sql, params, many, context, captured=captured):
            t0 = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                captured.append((time.perf_counter() - t0, str(sql)))

        with connection.execute_wrapper(timer):
            client.get(path, **auth)
        profiler = cProfile.Profile()
        profiler.enable()
        client.get(path, **auth)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(r"work/main/(?!\.venv)", 18)
        sql = sorted(((t, q[:160]) for t, q in captured), reverse=True)
        out[name] = {"path": path, "status": response.status_code, "median_ms": round(c.median(times) * 1000, 1),
                     "queries": len(sql), "sql_ms": round(sum(t for t, _ in sql) * 1000, 1),
                     "slowest_sql": [f"{t * 1000:.1f} ms: {q}" for t, q in sql[:4]],
                     "bytes": len(response.content), "cprofile_project_cumulative": text.getvalue()}
        print(f"in-process GET {path}: median {out[name]['median_ms']} ms, {len(sql)} SQL statements through "
              f"Django's cursor ({out[name]['sql_ms']} ms), {len(response.content):,} bytes")
        for line in out[name]["slowest_sql"]:
            print(f"    {line}")
        print("\n".join(line[:200] for line in text.getvalue().splitlines()[4:30]))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per endpoint")
    parser.add_argument("--clusters", type=int, default=6)
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--anomalies", type=int, default=6000)
    parser.add_argument("--periods", type=int, default=12, help="aggregated periods (5 min each)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per endpoint")
    parser.add_argument("--max-requests", type=int, default=50_000, help="per connection and endpoint")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 5.0

    url = c.setup_django("api")
    from tenants.models import ApiKey

    result: dict = {"benchmark": "api", "machine": c.machine(), "load_before": c.loadavg()}
    server = None
    try:
        tenant = c.make_tenant("bench-api")
        _, key = ApiKey.issue(tenant, "bench")
        t = time.perf_counter()
        nodes = seed_results(tenant, args.clusters, args.nodes, args.anomalies, args.periods)
        print(f"seeded {args.nodes} nodes, {args.nodes * 6} series, {args.anomalies} anomalies, "
              f"{args.periods} periods of scores in {time.perf_counter() - t:.1f} s")
        server = c.Server(workers=args.workers)
        result.update({"nodes": args.nodes, "anomalies": args.anomalies, "connections": args.connections,
                       "duration_s": args.duration, "gunicorn_workers": args.workers, "endpoints": {}})
        for endpoint, paths in QUERIES.items():
            paths = [p.format(node=random.Random(1).choice(nodes)) for p in paths]
            r = measure(server.port, key, paths, args.connections, args.duration, args.max_requests)
            r["load"] = c.loadavg()
            result["endpoints"][endpoint] = r
            print(f"GET /api/v1/{endpoint}: {r['requests_per_s']:,.0f} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                  f"max {r['max_ms']} ms, errors {r['errors']} ({r['requests']} requests, {args.connections} "
                  f"connections, {args.duration:.0f} s); load {r['load']}")
        result["in_process"] = profile_endpoints(key, {"rankings": QUERIES["rankings"][0],
                                                       "anomalies": QUERIES["anomalies"][0]})
    finally:
        if server:
            server.stop()
        if not args.keep:
            c.drop_database(url)
    return c.emit(result, args.json_out)


if __name__ == "__main__":
    main()
