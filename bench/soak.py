"""Soak: the whole stack under a steady ingestion load for a bounded time.

    .venv/bin/python bench/soak.py --duration 180 --rate 2000 --clients 4 --readers 1

On loopback it starts its own PostgreSQL and Redis (throw-away, in /tmp; see
tests/faults/services.py) unless --database-url / --broker-url name existing ones (then
it creates and drops its own database there), then gunicorn (2 workers), a Celery
worker (queue ``celery``), a maintenance worker and beat, with the tenant's periodic
detection every minute (``--detection-window 60`` makes each of those runs analyse the
last minute's new data). ``--clients`` processes ingest ``--rate`` points/s in total, one
batch per second each, paced on a fixed schedule (a late batch is sent at once, never
skipped); ``--readers`` processes poll the node ranking. At the end it reports points
sent, accepted and stored (which must be equal), errors, p50/p99 latencies, the
detection queue length over time and each periodic run's lag (finished_at - range_end).
One JSON line goes to --json if given. Rate limits are lifted for the tenant.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.services import (
    PrivatePostgres,
    PrivateRedis,
    get_json,
    make_tenant,
    manage,
    post_json,
    product_env,
    start_celery,
    start_gunicorn,
    wait_for,
)


def pct(values: list[float], q: float) -> float:
    """Nearest rank: the value at rank ceil(q/100 * n) of the sorted values."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[max(0, math.ceil(q * len(values) / 100) - 1)]


def client(index: int, base_url: str, key: str, rate: float, series: int, duration: float, start_at: float, out) -> None:
    """One batch a second: ``series`` series of this client, rate/series points each."""
    per_series = max(1, round(rate / series))
    sent = accepted = errors = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    tick = 0
    while time.time() < start_at:
        time.sleep(0.01)
    t_end = start_at + duration
    while True:
        due = start_at + tick
        if due >= t_end:
            break
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)  # pacing, not synchronisation
        t0 = int(due)
        body = {"series": [{"cluster": f"c{index}", "node": f"n{index}-{s // 4}", "metric": f"m{s % 4}",
                            "points": [[t0 + k / per_series, float((tick + k + s) % 97)] for k in range(per_series)]}
                           for s in range(series)]}
        begin = time.perf_counter()
        status, answer, _ = post_json(base_url, "/api/v1/metrics", body, key, timeout=60)
        latencies.append(time.perf_counter() - begin)
        statuses[status] = statuses.get(status, 0) + 1
        sent += series * per_series
        if status == 200:
            accepted += answer["accepted"]
        else:
            errors += 1
        tick += 1
    out.put({"kind": "client", "sent": sent, "accepted": accepted, "errors": errors, "latencies": latencies,
             "statuses": statuses, "late": max(0.0, time.time() - t_end)})


def reader(base_url: str, key: str, duration: float, start_at: float, out) -> None:
    latencies: list[float] = []
    errors = 0
    while time.time() < start_at:
        time.sleep(0.01)
    while time.time() < start_at + duration:
        begin = time.perf_counter()
        status, _ = get_json(base_url, "/api/v1/rankings?level=node&strategy=max", key)
        latencies.append(time.perf_counter() - begin)
        errors += status != 200
        time.sleep(0.5)
    out.put({"kind": "reader", "latencies": latencies, "errors": errors})


def llen(port: int, queue: str = "celery") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(f"*2\r\n$4\r\nLLEN\r\n${len(queue)}\r\n{queue}\r\n".encode())
        reply = s.recv(64)
    return int(reply[1:].split(b"\r\n")[0])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (default 180)")
    parser.add_argument("--rate", type=float, default=1000.0, help="points/s in total")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--series", type=int, default=50, help="series per client")
    parser.add_argument("--readers", type=int, default=1)
    parser.add_argument("--detection-window", type=int, default=300,
                        help="FLEETWATCH_DETECTION_WINDOW_SECONDS (default 300); 60 lets each minute's run analyse new data")
    parser.add_argument("--database-url", help="an existing PostgreSQL server (postgres://user@host:port); default: a private one")
    parser.add_argument("--broker-url", help="an existing Redis (redis://host:port/db); default: a private one")
    parser.add_argument("--json", help="append the result as one JSON line to this file")
    args = parser.parse_args(argv)

    log_dir = Path(tempfile.mkdtemp(prefix="fleetwatch-soak-"))
    pg = redis = None
    services = []
    dbname = f"soak_{os.getpid()}"
    try:
        if args.database_url:
            import psycopg

            server = args.database_url.rstrip("/")
            with psycopg.connect(server + "/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}"')
            database_url = f"{server}/{dbname}"
        else:
            pg = PrivatePostgres(fsync=True, name="soak")
            pg.start()
            database_url = pg.create_database(dbname)
        if args.broker_url:
            broker_url = args.broker_url
            redis_port = int(broker_url.split(":")[2].split("/")[0])
        else:
            redis = PrivateRedis()
            redis.start()
            broker_url, redis_port = redis.url(0), redis.port
        env = product_env(database_url, broker_url, DJANGO_DEBUG="false", DJANGO_SECRET_KEY="soak-" + "k" * 50,
                          FLEETWATCH_INGEST_RATE="100000000/min", FLEETWATCH_API_RATE="100000000/min",
                          FLEETWATCH_DETECTION_WINDOW_SECONDS=args.detection_window)
        manage(env, "migrate", "--noinput")
        _, key = make_tenant(env, "soak", interval_minutes=1)
        web, base_url = start_gunicorn(env, log_dir, workers=2)
        services.append(web)
        worker = start_celery(env, log_dir, "worker", "--concurrency", "2", "--queues", "celery")
        maintenance = start_celery(env, log_dir, "worker", "--concurrency", "1", "--queues", "maintenance")
        services += [worker, maintenance]
        wait_for(lambda: " ready." in worker.output(100_000), 90, "the worker")
        beat = start_celery(env, log_dir, "beat", "--max-interval", "5")
        services.append(beat)

        out: mp.Queue = mp.Queue()
        start_at = time.time() + 2
        procs = [mp.Process(target=client, args=(i, base_url, key, args.rate / args.clients, args.series,
                                                  args.duration, start_at, out)) for i in range(args.clients)]
        procs += [mp.Process(target=reader, args=(base_url, key, args.duration, start_at, out)) for _ in range(args.readers)]
        for p in procs:
            p.start()
        queue_lengths = []
        load_start = os.getloadavg()
        while time.time() < start_at + args.duration:
            queue_lengths.append((round(time.time() - start_at), llen(redis_port)))
            time.sleep(5)
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        load_end = os.getloadavg()

        # Let the last periodic run finish (bounded), then read the figures.
        import psycopg

        def runs():
            with psycopg.connect(database_url) as conn:
                return conn.execute(
                    "SELECT id, status, range_end, started_at, finished_at, series_done, points_analysed, created_at"
                    " FROM results_detectionrun WHERE trigger = 'periodic' ORDER BY id").fetchall()

        wait_for(lambda: all(r[1] not in ("queued", "running") for r in runs()), 120, "the last periodic run")
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT count(*) FROM analytics_point").fetchone()[0]
        clients = [r for r in results if r["kind"] == "client"]
        readers = [r for r in results if r["kind"] == "reader"]
        ingest_lat = [x for r in clients for x in r["latencies"]]
        read_lat = [x for r in readers for x in r["latencies"]]
        run_rows = runs()
        # Per finished periodic run: (id, status, wait s (created -> started), run s (started ->
        # finished), behind s (range_end -> finished; range_end is floored to the detection
        # window, so this includes up to one window), series, points).
        lags = [(r[0], r[1], round((r[3] - r[7]).total_seconds(), 1), round((r[4] - r[3]).total_seconds(), 1),
                 round((r[4] - r[2]).total_seconds(), 1), r[5], r[6]) for r in run_rows if r[4] and r[2] and r[3]]
        statuses: dict[str, int] = {}
        for r in clients:
            for k, v in r["statuses"].items():
                statuses[str(k)] = statuses.get(str(k), 0) + v
        report = {
            "duration_s": args.duration, "rate": args.rate, "detection_window_s": args.detection_window,
            "clients": args.clients, "series": args.clients * args.series,
            "points_sent": sum(r["sent"] for r in clients), "points_accepted": sum(r["accepted"] for r in clients),
            "points_stored": stored, "ingest_errors": sum(r["errors"] for r in clients), "statuses": statuses,
            "ingest_requests": len(ingest_lat),
            "ingest_p50_ms": round(pct(ingest_lat, 50) * 1000, 1), "ingest_p99_ms": round(pct(ingest_lat, 99) * 1000, 1),
            "rankings_requests": len(read_lat), "rankings_errors": sum(r["errors"] for r in readers),
            "rankings_p50_ms": round(pct(read_lat, 50) * 1000, 1), "rankings_p99_ms": round(pct(read_lat, 99) * 1000, 1),
            "client_late_s": round(max((r["late"] for r in clients), default=0.0), 2),
            "queue_length": queue_lengths, "periodic_runs": lags,
            "run_s": [lag[3] for lag in lags], "wait_s": [lag[2] for lag in lags],
            "load_start": [round(x, 2) for x in load_start], "load_end": [round(x, 2) for x in load_end],
        }
        print(json.dumps(report, indent=1, default=str))
        print(f"\nrate {args.rate:.0f}/s: sent {report['points_sent']}, stored {stored}"
              f" ({'equal' if stored == report['points_sent'] else 'DIFFERENT'}), errors {report['ingest_errors']},"
              f" ingest p50/p99 {report['ingest_p50_ms']}/{report['ingest_p99_ms']} ms,"
              f" rankings p50/p99 {report['rankings_p50_ms']}/{report['rankings_p99_ms']} ms,"
              f" periodic runs: wait {report['wait_s']} s, run {report['run_s']} s,"
              f" queue max {max((n for _, n in queue_lengths), default=0)}, load {load_end[0]:.2f}")
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(report, default=str) + "\n")
        return report
    finally:
        for service in reversed(services):
            service.stop()
        if pg is not None:
            pg.destroy()
        elif args.database_url:
            import psycopg

            with psycopg.connect(args.database_url.rstrip("/") + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if redis is not None:
            redis.destroy()


if __name__ == "__main__":
    main()
