"""Scaling curve: time and peak memory of detection and ingestion at 1k, 10k, 100k series (a script, not a test).

    .venv/bin/python bench/bench_scaling.py            # 1k, 10k, 100k series
    .venv/bin/python bench/bench_scaling.py --quick    # 1k, 10k series, smaller default-engine sweep

Every measurement runs in its own child process, so the peak memory reported
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that child, and its value before the
measured step) belongs to that step alone. Sizes (one-minute points):

- detection, vectorised engine ("vector", ``score_batch`` over a [series x points]
  matrix): 60 points (one hour) at every size, so the curve isolates the series count;
  and one day (1,440 points) at 1k and 10k. Best of ``--repeat`` runs.
- detection, default engine (analytics/core/engines/defaults.py), ``analyse`` per series,
  one day (1,440 points), at the sizes in ``--default-sizes`` (1k: 10k takes minutes).
- ingestion, write path in-process: ``parse_batch`` + ``resolve_series`` +
  ``write_points`` per 10,000-point body (bodies of whole series, 60 points = one hour
  per series, as analytics/simulator/sender.py batches them); the first body of a series
  creates it. Database bench_scaling_ingest_<pid>, dropped after each size. Body
  construction (Python dicts) is not timed.

Prints seconds, series/s, microseconds per series and per point, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c

HERE = Path(__file__).resolve()


# --------------------------------------------------------------------------- children

def child_vector(n: int, points: int, repeat: int) -> dict:
    import numpy as np
    import pandas as pd

    from analytics.core.engines import engine_registry
    from bench.bench_engines import EPOCH, make_values

    rng = np.random.default_rng(0)
    values = np.empty((n, points))
    for a in range(0, n, 5000):  # make_values builds temporaries of its block
        values[a:a + 5000] = make_values(rng, min(5000, n - a), points)
    index = EPOCH + pd.to_timedelta(np.arange(points), unit="min")
    engine = engine_registry.create("vector")
    engine.score_batch(values[:10], index)
    before = c.max_rss_mib()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        engine.score_batch(values, index)
        times.append(time.perf_counter() - t)
    return {"seconds": min(times), "median_s": c.median(times), "rss_before_mib": before, "peak_rss_mib": c.max_rss_mib(),
            "data_mib": values.nbytes / 2**20}


def child_default(n: int, points: int) -> dict:
    import numpy as np
    import pandas as pd

    from analytics.core.contracts import MetricSeries
    from analytics.core.engines.defaults import DEFAULT_ENGINE, DEFAULT_PARAMS
    from analytics.core.engines.registry import engine_registry
    from bench.bench_engines import EPOCH, make_values

    engine = engine_registry.create(DEFAULT_ENGINE, **DEFAULT_PARAMS)
    rng = np.random.default_rng(1)
    index = EPOCH + pd.to_timedelta(np.arange(points), unit="min")
    values = make_values(rng, n, points)
    engine.analyse(MetricSeries("t", "c", "n", "cpu", index, values[0]))
    before = c.max_rss_mib()
    t = time.perf_counter()
    anomalies = 0
    for i in range(n):
        out = engine.analyse(MetricSeries("t", "c", f"n{i}", "cpu", index, values[i]))
        anomalies += sum(r.is_anomaly for r in out.results)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "rss_before_mib": before, "peak_rss_mib": c.max_rss_mib(), "engine": engine.name,
            "anomalies": anomalies}


def child_ingest(n: int, points: int, batch: int) -> dict:
    url = c.setup_django("scaling_ingest")
    try:
        import numpy as np
        from django.db import transaction
        from django.utils import timezone

        from analytics.ingest import parse_batch
        from analytics.ingestion import limits as ingestion_limits
        from analytics.store.write import resolve_series, write_points

        tenant = c.make_tenant("bench-scaling")
        now_s = int(time.time()) // 60 * 60
        t0_s = now_s - 60 * (points + 5)
        c.ensure_days(t0_s, now_s)
        ts = [t0_s + 60 * k for k in range(points)]
        rng = np.random.default_rng(3)
        per_body = max(1, batch // points)
        before = c.max_rss_mib()
        timings: dict = {}
        limits = ingestion_limits(tenant, timezone.now())
        for a in range(0, n, per_body):
            b = min(n, a + per_body)
            vals = (rng.normal(50, 5, (b - a, points))).round(2).tolist()
            payload = {"series": [{"cluster": f"cluster-{k // 1000:03d}", "node": f"node-{k // 6:06d}",
                                   "metric": f"metric_{k % 6}", "unit": "%",
                                   "points": [[t, v] for t, v in zip(ts, vals[k - a], strict=True)]}
                                  for k in range(a, b)]}
            with c.stage(timings, "parse_batch"):
                parsed = parse_batch(payload, limits)
                key_index, ts_ns, values = parsed.arrays()
            with transaction.atomic():
                with c.stage(timings, "resolve_series"):
                    ids, _ = resolve_series(tenant.pk, parsed.keys, parsed.units)
                with c.stage(timings, "write_points"):
                    write_points(tenant.pk, ids[key_index], ts_ns, values)
        return {"seconds": sum(timings.values()), "stages_s": {k: round(v, 2) for k, v in timings.items()},
                "rss_before_mib": before, "peak_rss_mib": c.max_rss_mib()}
    finally:
        c.drop_database(url)


def run_child(kind: str, n: int, points: int, extra: list[str], timeout: float) -> dict:
    cmd = [c.PYTHON, str(HERE), "--child", kind, "--n", str(n), "--child-points", str(points), *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=c.ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} n={n}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update({"kind": kind, "series": n, "points_per_series": points, "child_wall_s": round(time.perf_counter() - t, 1),
                "load": c.loadavg()})
    s = out["seconds"]
    out["series_per_s"] = round(n / s, 1)
    out["us_per_series"] = round(s / n * 1e6, 1)
    out["us_per_point"] = round(s / (n * points) * 1e6, 3)
    for k in ("peak_rss_mib", "rss_before_mib", "data_mib"):
        if k in out:
            out[k] = round(out[k], 1)
    out["seconds"] = round(s, 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1k and 10k; default engine at 200 series")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--default-sizes", default="1000", help="sizes for the default engine (one day per series)")
    parser.add_argument("--ingest-points", type=int, default=60, help="points per series in the ingestion sweep")
    parser.add_argument("--repeat", type=int, default=3, help="vector runs per size (best reported)")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child")
    parser.add_argument("--json-out")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-points", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        if args.child == "vector":
            out = child_vector(args.n, args.child_points, args.repeat)
        elif args.child == "default":
            out = child_default(args.n, args.child_points)
        else:
            out = child_ingest(args.n, args.child_points, args.batch)
        print(json.dumps(out))
        return out

    if args.quick:
        args.sizes, args.default_sizes = "1000,10000", "200"
    sizes = [int(x) for x in args.sizes.split(",") if x]
    default_sizes = [int(x) for x in args.default_sizes.split(",") if x]
    result: dict = {"benchmark": "scaling", "machine": c.machine(), "load_before": c.loadavg(), "rows": []}

    def show(r: dict) -> None:
        print(f"{r['kind']:<8} {r['series']:>7} series x {r['points_per_series']:>5} pts: {r['seconds']:8.2f} s "
              f"{r['series_per_s']:>10,.0f} series/s {r['us_per_series']:>9,.1f} us/series {r['us_per_point']:>7.3f} us/pt "
              f"peak RSS {r['peak_rss_mib']:>7,.0f} MiB (before step {r['rss_before_mib']:,.0f}); load {r['load']}",
              flush=True)
        result["rows"].append(r)

    rep = ["--repeat", str(args.repeat)]
    for n in sizes:
        show(run_child("vector", n, 60, rep, args.timeout))
    for n in sizes:
        if n <= 10_000:
            show(run_child("vector", n, 1440, rep, args.timeout))
    for n in default_sizes:
        show(run_child("default", n, 1440, [], args.timeout))
    for n in sizes:
        show(run_child("ingest", n, args.ingest_points, ["--batch", str(args.batch)], args.timeout))
    result["load_after"] = c.loadavg()
    return c.emit(result, args.json_out)


if __name__ == "__main__":
    main()
