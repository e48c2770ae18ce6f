"""Ingestion through the HTTP API vs raw COPY into the same table (a script, not a test).

    .venv/bin/python bench/bench_ingest.py            # 1,000 series x 1,000 points = 1,000,000 points
    .venv/bin/python bench/bench_ingest.py --quick    # 200 series x 100 points

Creates database bench_ingest_<pid> (dropped at the end unless --keep), a tenant and an
API key; starts gunicorn (``config.wsgi``, 2 sync workers, DJANGO_DEBUG=false) on a
free loopback port. The client (this process, one http.client connection, requests one
after another) POSTs pre-encoded bodies of ``--batch`` points in the compact form,
time-major (every series' next minutes per body, as agents send). After each API batch
the same rows (same timestamps and values, a second set of series ids) are written by
``copy_raw`` (bench/raw_copy.py: psycopg ``write_row`` per row) and by ``copy_raw(...,
method="numpy")`` into the same partitioned table, interleaved so all three see the
same machine load and table size. Prints points/s and the ratio (target: API >= 40 %
of raw COPY).

Then profiles the server side in-process: ``store_batch``'s stages (JSON decode,
parse_batch, arrays, resolve_series, write_points, meter_points) on fresh 10k batches
(median of --profile-batches), and a cProfile of one ``store_batch`` call.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c

TARGET_RATIO = 0.40


def build_bodies(keys, t0_s: int, minutes: int, batch: int, rng) -> tuple[list[bytes], list[tuple], int]:
    """Bodies (JSON bytes) and, per body, (key_index, ts_ns, values) arrays for COPY."""
    import numpy as np

    n = len(keys)
    per_batch = max(1, batch // n)
    walk = (np.cumsum(rng.normal(0, 1, (n, minutes)), axis=1) + 100).round(3)
    bodies, arrays = [], []
    for m in range(0, minutes, per_batch):
        span = min(per_batch, minutes - m)
        ts = [t0_s + 60 * (m + k) for k in range(span)]
        entries = []
        for i, (cl, node, metric) in enumerate(keys):
            vals = walk[i, m:m + span].tolist()
            entries.append({"cluster": cl, "node": node, "metric": metric, "unit": "%",
                            "points": [[t, v] for t, v in zip(ts, vals, strict=True)]})
        bodies.append(json.dumps({"series": entries}, separators=(",", ":")).encode())
        key_index = np.repeat(np.arange(n, dtype=np.int64), span)
        ts_ns = np.tile(np.asarray(ts, dtype=np.int64) * 10**9, n)
        arrays.append((key_index, ts_ns, walk[:, m:m + span].reshape(-1)))
    return bodies, arrays, n * minutes


def write_outside_scope(tenant, body: bytes) -> float:
    """write_points of one body outside any tenant scope (the direct-COPY path a login
    that bypasses row-level security takes; inside a tenant scope the policies refuse
    COPY and the batch goes by INSERT). Series resolved first, not timed."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from analytics.ingest import decode_json, parse_batch
    from analytics.ingestion import limits as ingestion_limits
    from analytics.store.write import resolve_series, write_points

    batch = parse_batch(decode_json(body, settings.FLEETWATCH_MAX_JSON_DEPTH), ingestion_limits(tenant, timezone.now()))
    key_index, ts_ns, values = batch.arrays()
    with transaction.atomic():
        ids, _ = resolve_series(tenant.pk, batch.keys, batch.units)
        t = time.perf_counter()
        write_points(tenant.pk, ids[key_index], ts_ns, values)
        return time.perf_counter() - t


def profile_request(key: str, body: bytes) -> dict:
    """One POST through Django's whole stack in-process (middleware, auth, throttling, DRF,
    the view) with the test client: what the server does besides store_batch, without gunicorn."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.get("/api/v1/rankings", HTTP_AUTHORIZATION=f"Bearer {key}")  # warm: URL conf, middleware, imports
    client.post("/api/v1/metrics", data=b"{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    response = client.post("/api/v1/metrics", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")
    profiler.disable()
    seconds = time.perf_counter() - t0
    if response.status_code != 200:
        raise RuntimeError(f"in-process POST: {response.status_code} {response.content[:300]!r}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    return {"django_request_ms": round(seconds * 1000, 1), "cprofile_top_cumulative": out.getvalue()}


def profile_store_batch(tenant, bodies: list[bytes]) -> dict:
    """Stage timings of store_batch (as analytics.ingestion does it) per body, and a cProfile of one."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from analytics.ingest import decode_json, parse_batch
    from analytics.ingestion import limits as ingestion_limits
    from analytics.ingestion import store_batch
    from analytics.store.write import resolve_series, write_points
    from tenants import billing, quotas
    from tenants.scoping import tenant_scope

    stages: list[dict] = []
    with tenant_scope(tenant.pk):
        for body in bodies[:-1]:
            t: dict = {}
            with c.stage(t, "json_decode"):
                payload = decode_json(body, settings.FLEETWATCH_MAX_JSON_DEPTH)
            with c.stage(t, "parse_batch"):
                batch = parse_batch(payload, ingestion_limits(tenant, timezone.now()))
            with c.stage(t, "arrays"):
                key_index, ts_ns, values = batch.arrays()
            quotas.precheck(tenant, len(batch))
            with transaction.atomic():
                with c.stage(t, "resolve_series"):
                    series_ids, _ = resolve_series(tenant.pk, batch.keys, batch.units)
                with c.stage(t, "write_points"):
                    write_points(tenant.pk, series_ids[key_index], ts_ns, values)
                with c.stage(t, "meter_points"):
                    billing.meter_points(tenant.pk, len(batch), series_ids[key_index])
            t["total"] = sum(t.values())
            t["points"] = len(batch)
            stages.append(t)
        profiler = cProfile.Profile()
        payload = decode_json(bodies[-1], settings.FLEETWATCH_MAX_JSON_DEPTH)
        t0 = time.perf_counter()
        profiler.enable()
        store_batch(tenant, payload)
        profiler.disable()
        one = time.perf_counter() - t0
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"work/main/(?!\.venv)", 22)
    names = [k for k in stages[0] if k != "points"] if stages else []
    med = {k: c.median([s[k] for s in stages]) for k in names}
    return {"stages_ms": {k: round(v * 1000, 1) for k, v in med.items()}, "batches": len(stages),
            "store_batch_cprofile_ms": round(one * 1000, 1), "cprofile_top_tottime": out.getvalue()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (200 series x 100 points)")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1000, help="points per series (one a minute)")
    parser.add_argument("--batch", type=int, default=10_000, help="points per request body")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--profile-batches", type=int, default=4, help="fresh bodies profiled in-process")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--json-out", help="write the result dict here as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.points, args.profile_batches = 200, 100, 3

    url = c.setup_django("ingest")
    import numpy as np

    from analytics.store.write import resolve_series
    from bench.raw_copy import copy_raw
    from tenants.models import ApiKey

    server = None
    result: dict = {"benchmark": "ingest", "machine": c.machine(), "load_before": c.loadavg()}
    try:
        tenant = c.make_tenant("bench-ingest")
        _, key = ApiKey.issue(tenant, "bench")
        keys = [("api", f"node-{i // 10:04d}", f"metric_{i % 10}") for i in range(args.series)]
        per_batch = max(1, args.batch // args.series)
        prof_minutes = per_batch * (args.profile_batches + 2)
        now_s = int(time.time()) // 60 * 60
        t0_s = now_s - 60 * (args.points + prof_minutes + 10)
        c.ensure_days(t0_s, now_s)
        rng = np.random.default_rng(7)
        bodies, arrays, total_points = build_bodies(keys, t0_s, args.points, args.batch, rng)
        prof_bodies, _, _ = build_bodies(keys, t0_s + 60 * args.points, prof_minutes, args.batch, rng)
        raw_ids = {m: resolve_series(tenant.pk, [(f"raw-{m}", n, me) for _, n, me in keys])[0].ids
                   for m in ("write_row", "numpy")}
        body_mib = sum(len(b) for b in bodies) / 2**20
        print(f"{args.series} series x {args.points} points = {total_points:,} points in {len(bodies)} bodies "
              f"({body_mib:.1f} MiB JSON); load {c.loadavg()}")

        server = c.Server(workers=args.workers)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        api_lat, raw_t = [], {"write_row": [], "numpy": []}
        for i, body in enumerate(bodies):
            t = time.perf_counter()
            conn.request("POST", "/api/v1/metrics", body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
            api_lat.append(time.perf_counter() - t)
            if resp.status != 200:
                raise RuntimeError(f"batch {i}: HTTP {resp.status} {text[:500]!r}")
            key_index, ts_ns, values = arrays[i]
            for method, ids in raw_ids.items():
                t = time.perf_counter()
                copy_raw(tenant.pk, ids[key_index], ts_ns, values, method=method)
                raw_t[method].append(time.perf_counter() - t)
        conn.close()
        api_rate = total_points / sum(api_lat)
        raw_rate = {m: total_points / sum(v) for m, v in raw_t.items()}
        ratio = api_rate / raw_rate["write_row"]
        load_after = c.loadavg()
        print(f"API (HTTP, {args.workers} gunicorn workers, 1 client): {api_rate:,.0f} points/s "
              f"(median {c.median(api_lat) * 1000:.0f} ms per {args.batch:,}-point body)")
        for m, r in raw_rate.items():
            print(f"raw COPY copy_raw(method={m!r}): {r:,.0f} points/s (median {c.median(raw_t[m]) * 1000:.0f} ms per body)")
        print(f"ratio API / raw COPY (write_row): {ratio:.0%} (target >= {TARGET_RATIO:.0%}: "
              f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}); vs numpy COPY {api_rate / raw_rate['numpy']:.0%}; "
              f"load {load_after}")

        prof = profile_store_batch(tenant, prof_bodies[:-2])
        prof["write_points_outside_scope_ms"] = round(write_outside_scope(tenant, prof_bodies[-2]) * 1000, 1)
        prof.update(profile_request(key, prof_bodies[-1]))
        st = prof["stages_ms"]
        api_ms = c.median(api_lat) * 1000
        print(f"in-process store_batch stages, median of {prof['batches']} fresh {args.batch:,}-point bodies (ms): "
              + ", ".join(f"{k} {v}" for k, v in st.items()))
        print(f"  write_points of one body outside any tenant scope (direct COPY, no row-level security path): "
              f"{prof['write_points_outside_scope_ms']} ms (inside the scope, median above: {st.get('write_points')} ms)")
        print(f"  HTTP round trip median {api_ms:.0f} ms; one POST through Django in-process (test client, "
              f"no gunicorn, under cProfile) {prof['django_request_ms']} ms; store_batch stages {st.get('total', 0)} ms")
        print("cProfile of one store_batch call (top by own time):")
        print("\n".join(prof["cprofile_top_tottime"].splitlines()[:70]))
        print("cProfile of one POST through Django in-process (top by cumulative time):")
        print("\n".join(prof["cprofile_top_cumulative"].splitlines()[:45]))
        result.update({
            "series": args.series, "points_per_series": args.points, "points": total_points, "batch": args.batch,
            "bodies": len(bodies), "gunicorn_workers": args.workers,
            "api_points_per_s": round(api_rate), "api_median_ms_per_body": round(api_ms, 1),
            "raw_copy_write_row_points_per_s": round(raw_rate["write_row"]),
            "raw_copy_numpy_points_per_s": round(raw_rate["numpy"]),
            "ratio": round(ratio, 3), "ratio_vs_numpy_copy": round(api_rate / raw_rate["numpy"], 3),
            "target": f">= {TARGET_RATIO:.0%} of raw COPY", "met": ratio >= TARGET_RATIO,
            "profile": prof, "load_after": load_after,
        })
    finally:
        if server:
            server.stop()
        if not args.keep:
            c.drop_database(url)
    return c.emit(result, args.json_out)


if __name__ == "__main__":
    main()
