"""Detection end to end through a real Celery worker vs the bare engine (a script, not a test).

    .venv/bin/python bench/bench_pipeline.py            # 1,000 series x 1 day; incremental over 10,000 series
    .venv/bin/python bench/bench_pipeline.py --quick    # 200 series x 1 day; incremental over 1,000 series

Creates database bench_pipeline_<pid> (dropped unless --keep), uses Redis db 13 as the
broker, and starts one real Celery worker subprocess (prefork, ``--concurrency``,
default 2) as tests/integration/processes.py does. The engine is whatever
analytics/core/engines/defaults.py names (plus EngineSetting: none here).

Part 1, full day: a simulated fleet (analytics/simulator/, with anomalies) of
``--series`` series x one day of one-minute points is written by ``copy_raw``; then
``run_tenant_detection(tenant, day_start, day_end)`` is queued and timed until the run
row says finished (fetch, detect, classify, explain, persist anomalies, aggregate at
every level and strategy). Compared with the bare engine: ``engine.analyse(series,
since=day_start)`` on the same series read back from the store, in this process
(single-threaded, one core). Reported: series/s wall for both, the pipeline also per
worker process (wall / concurrency) and per CPU-second of the worker processes (from
/proc, robust on a shared machine). Target: pipeline >= 50 % of the bare engine, judged
per core (pipeline series/s / concurrency vs bare series/s).

Part 2, incremental periodic run: ``--inc-series`` series seeded by ``copy_raw`` with
the engine's ``history_points`` (+ a few) of one-minute history. A first fit of the
default engine costs ~0.2 s per series, so fitting 10,000 states would take ~15 min on
2 cores: instead ``--templates`` (500) distinct simulated series, with the first-run
lookback (24 h) plus ``history_points`` of history, get one prior run through the
worker (their first: no watermark yet, so it analyses the lookback, fits and stores
each series' state; an incremental run reads only ``history_points``, too few to fit);
series k of the measured tenant holds template k % 500's values over the
``history_points`` the periodic run reads, gets that template's stored state (cloned
row) and the watermark the prior run left. Then 5 new minutes per series by
``copy_raw``, and the periodic run (``run_tenant_detection(tenant, None, end)``:
incremental from each watermark, with the stored states) is timed end to end through
the worker. Target: < 60 s. ``--templates 0`` runs the prior run over every series.
Before the timed run, one batch is profiled in-process stage by stage (no writes).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c

TARGET_RATIO = 0.50
TARGET_INCREMENTAL_S = 60.0


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process in the process group (the worker and its pool)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:  # field 5: pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def seed_fleet(tenant_id: int, fleet, i0: int, i1: int, chunk_series: int = 500) -> tuple[list[int], int]:
    """Write points [i0, i1) of every series of the fleet by copy_raw (numpy); return series ids in fleet order."""
    import numpy as np

    from analytics.store.write import resolve_series
    from bench.raw_copy import copy_raw

    keys = fleet.keys()
    resolved, _ = resolve_series(tenant_id, [(k.cluster, k.node, k.metric) for k in keys])
    ids = resolved.ids
    points = 0
    buf_s, buf_t, buf_v = [], [], []
    for n, series in enumerate(fleet.iter_series(i0, i1)):
        buf_s.append(np.full(len(series), ids[n], dtype=np.int64))
        buf_t.append(series.timestamps.astype(np.int64) * 10**9)
        buf_v.append(series.values)
        if len(buf_s) >= chunk_series:
            copy_raw(tenant_id, np.concatenate(buf_s), np.concatenate(buf_t), np.concatenate(buf_v), method="numpy")
            points += sum(len(x) for x in buf_s)
            buf_s, buf_t, buf_v = [], [], []
    if buf_s:
        copy_raw(tenant_id, np.concatenate(buf_s), np.concatenate(buf_t), np.concatenate(buf_v), method="numpy")
        points += sum(len(x) for x in buf_s)
    return ids.tolist(), points


def analyze_tables() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for table in ("analytics_point", "analytics_series"):
            cur.execute(f"ANALYZE {table}")


def run_and_wait(worker, tenant_id: int, start: datetime | None, end: datetime, trigger: str,
                 timeout: float) -> dict:
    """Queue run_tenant_detection, wait until the run row is finished; wall time and worker CPU."""
    from results.models import DetectionRun
    from results.tasks import run_tenant_detection

    cpu0 = group_cpu_seconds(worker.process.pid)
    t0 = time.perf_counter()
    async_result = run_tenant_detection.delay(tenant_id, start.isoformat() if start else None, end.isoformat(),
                                              trigger=trigger)
    run_id = async_result.get(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        run = DetectionRun.objects.unscoped().get(pk=run_id)
        if run.status in DetectionRun.FINISHED:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} not finished after {timeout:.0f} s (status {run.status})")
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    cpu = group_cpu_seconds(worker.process.pid) - cpu0
    if run.status != DetectionRun.Status.SUCCEEDED:
        raise RuntimeError(f"run {run_id} {run.status}: {run.error}")
    return {"run_id": run_id, "wall_s": wall, "worker_cpu_s": cpu, "series_done": run.series_done,
            "series_skipped": run.series_skipped, "points_analysed": run.points_analysed,
            "anomalies": run.anomalies_found, "detect_seconds_sum": run.detect_seconds,
            "run_duration_s": run.duration_seconds}


def part_full_day(worker, args, engine) -> dict:
    from analytics.simulator.fleet import generate
    from analytics.simulator.spec import DEFAULT_METRICS, FleetSpec
    from analytics.store.read import get_metric_series_batch

    metrics = DEFAULT_METRICS[:5]
    nodes = math.ceil(args.series / len(metrics))
    clusters = max(1, nodes // 50)
    day = datetime(2026, 3, 2, tzinfo=UTC)
    fleet = generate(FleetSpec(clusters_per_tenant=clusters, nodes_per_cluster=math.ceil(nodes / clusters),
                               metrics=metrics, start=day, days=1, clean_days=0.25, anomaly_rate=1.0, seed=11))
    tenant = c.make_tenant("bench-pipeline-day")
    c.ensure_days(int(day.timestamp()), int(day.timestamp()))
    t = time.perf_counter()
    ids, points = seed_fleet(tenant.pk, fleet, 0, fleet.n_points)
    analyze_tables()
    n = len(ids)
    print(f"part 1: {n} series x 1 day ({points:,} points, {len(fleet.ground_truth)} simulated anomalies) "
          f"seeded in {time.perf_counter() - t:.1f} s; engine {engine.name!r}")
    end = day + timedelta(days=1)

    # bare engine, in this process, on the same data read back from the store
    t = time.perf_counter()
    fetched = get_metric_series_batch(tenant.pk, ids, day - timedelta(seconds=engine.history_points * 60), end)
    fetch_s = time.perf_counter() - t
    bare_times, bare_cpu = [], []
    for _ in range(args.repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        for series in fetched:
            engine.analyse(series, since=day)
        bare_times.append(time.perf_counter() - t0)
        bare_cpu.append(time.process_time() - c0)
    bare_rate = n / min(bare_times)
    print(f"  bare engine.analyse, 1 process: {bare_rate:,.1f} series/s (best of {args.repeat}; median "
          f"{n / c.median(bare_times):,.1f}; CPU {n / min(bare_cpu):,.1f} series per CPU-s); "
          f"in-process fetch of the same series {fetch_s:.2f} s; load {c.loadavg()}")

    runs = []
    for i in range(args.repeat):
        r = run_and_wait(worker, tenant.pk, day, end, "manual", args.timeout)
        runs.append(r)
        print(f"  pipeline run {i + 1}: {r['wall_s']:.1f} s wall, {n / r['wall_s']:,.1f} series/s, worker CPU "
              f"{r['worker_cpu_s']:.1f} s, {r['anomalies']} anomalies, batch time sum {r['detect_seconds_sum']:.1f} s; "
              f"load {c.loadavg()}")
    best = min(runs, key=lambda r: r["wall_s"])
    pipe_rate = n / best["wall_s"]
    per_core = pipe_rate / args.concurrency
    ratio = per_core / bare_rate
    cpu_ratio = (n / best["worker_cpu_s"]) / (n / min(bare_cpu)) if best["worker_cpu_s"] else float("nan")
    print(f"  pipeline (worker concurrency {args.concurrency}): {pipe_rate:,.1f} series/s wall = {per_core:,.1f} per "
          f"worker process; ratio per core {ratio:.0%} (target >= {TARGET_RATIO:.0%}: "
          f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}); unnormalised {pipe_rate / bare_rate:.0%}; "
          f"per CPU-second {cpu_ratio:.0%}")
    profile = profile_full_day_batch(tenant.pk, ids[: args.profile_series], day, end)
    return {"profile": profile, "series": n, "points": points, "engine": engine.name, "concurrency": args.concurrency,
            "bare_series_per_s": round(bare_rate, 1), "bare_series_per_cpu_s": round(n / min(bare_cpu), 1),
            "fetch_in_process_s": round(fetch_s, 2),
            "pipeline_series_per_s": round(pipe_rate, 1), "pipeline_series_per_s_per_process": round(per_core, 1),
            "pipeline_series_per_worker_cpu_s": round(n / best["worker_cpu_s"], 1) if best["worker_cpu_s"] else None,
            "ratio_per_core": round(ratio, 3), "ratio_unnormalised": round(pipe_rate / bare_rate, 3),
            "ratio_per_cpu_s": round(cpu_ratio, 3), "runs": runs, "met": ratio >= TARGET_RATIO,
            "target": f">= {TARGET_RATIO:.0%} of bare engine (per core)"}


def profile_full_day_batch(tenant_id: int, series_ids: list[int], start: datetime, end: datetime) -> dict:
    """detect_series_batch of one batch in-process under cProfile (as the worker runs it, in the
    tenant's scope and a transaction, rolled back afterwards): where a batch's time goes."""
    import cProfile
    import io
    import pstats

    from django.db import transaction

    from results.detection import detect_series_batch
    from results.models import DetectionRun
    from tenants.scoping import tenant_scope

    run = DetectionRun.objects.unscoped().create(tenant_id=tenant_id, trigger="manual", status="running",
                                                 range_start=start, range_end=end)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    with tenant_scope(tenant_id):
        try:
            with transaction.atomic():
                profiler.enable()
                detect_series_batch(tenant_id, run, series_ids)
                profiler.disable()
                seconds = time.perf_counter() - t0
                raise _Rollback
        except _Rollback:
            pass
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(r"work/main/(?!\.venv)|psycopg/connection.py.*wait", 25)
    print(f"  in-process detect_series_batch of {len(series_ids)} series (cProfile on, rolled back): {seconds:.2f} s")
    print("\n".join(line[:170] for line in text.getvalue().splitlines()[6:40]))
    return {"series": len(series_ids), "seconds": round(seconds, 2), "cprofile_project_cumulative": text.getvalue()}


class _Rollback(Exception):
    pass


def part_incremental(worker, args, engine) -> dict:
    import numpy as np
    from django.conf import settings
    from django.db import connection

    from analytics.models import Series
    from analytics.simulator.fleet import generate
    from analytics.simulator.spec import DEFAULT_METRICS, FleetSpec
    from analytics.store.write import resolve_series
    from bench.raw_copy import copy_raw
    from results.models import EngineState

    metrics = DEFAULT_METRICS[:5]
    history = args.history or engine.history_points
    h = math.ceil((history + 5) / 5) * 5  # history points the periodic run reads, a multiple of the 5-minute window
    lookback = settings.FLEETWATCH_FIRST_RUN_LOOKBACK_HOURS * 60  # a series' first run analyses this much
    h0 = lookback + h  # template history: what a first run reads
    total = h0 + 5
    start = datetime(2026, 2, 20, tzinfo=UTC)
    t_hist_end = start + timedelta(minutes=h0)  # the first new point
    end = t_hist_end + timedelta(minutes=5)
    n = args.inc_series
    templates = n if args.templates <= 0 else min(n, math.ceil(args.templates / len(metrics)) * len(metrics))
    fleet = generate(FleetSpec(clusters_per_tenant=1, nodes_per_cluster=templates // len(metrics), metrics=metrics,
                               start=start, days=total / 1440, clean_days=0, anomaly_rate=0.5, seed=12))
    tpl_values = np.stack([s.values for s in fleet.iter_series(0, total)])  # [templates x total]
    times_ns = fleet.timestamps.astype(np.int64)[:total] * 10**9
    c.ensure_days(int(start.timestamp()), int(start.timestamp()) + total * 60)

    # 1. templates: their own tenant and the whole history; their first run (no watermark yet: it
    #    analyses the first-run lookback and fits and stores each series' state) through the worker
    tpl_tenant = c.make_tenant("bench-pipeline-tpl")
    tpl_ids, _ = seed_fleet(tpl_tenant.pk, fleet, 0, h0)
    analyze_tables()
    prior = run_and_wait(worker, tpl_tenant.pk, None, t_hist_end, "periodic", args.timeout)
    states = EngineState.objects.for_tenant(tpl_tenant.pk).count()
    print(f"part 2: prior run (the first: {lookback} minutes analysed per series) over {templates} template series x "
          f"{h0} points: {prior['wall_s']:.1f} s; {states} fitted states stored; load {c.loadavg()}")

    # 2. the measured tenant: series k holds template k % templates' values over the history the
    #    periodic run reads, the template's stored state and the watermark the prior run left
    tenant = c.make_tenant("bench-pipeline-inc")
    keys = [(f"cluster-{k // 1000:02d}", f"node-{k // len(metrics):05d}", metrics[k % len(metrics)]) for k in range(n)]
    ids = resolve_series(tenant.pk, keys)[0].ids
    tpl_of = np.arange(n) % templates
    t = time.perf_counter()
    chunk = max(1, 2_000_000 // h)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        copy_raw(tenant.pk, np.repeat(ids[a:b], h), np.tile(times_ns[h0 - h:h0], b - a),
                 tpl_values[tpl_of[a:b], h0 - h:h0].reshape(-1), method="numpy")
    analyze_tables()
    seed_s = time.perf_counter() - t
    Series.objects.for_tenant(tenant.pk).update(analysed_until=t_hist_end - timedelta(minutes=1))  # the newest point analysed
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO {EngineState._meta.db_table} (tenant_id, series_id, engine, state, fitted_at)
                SELECT %s, m.sid, e.engine, e.state, e.fitted_at
                FROM unnest(%s::bigint[], %s::bigint[]) AS m(sid, tid)
                JOIN {EngineState._meta.db_table} e ON e.tenant_id = %s AND e.series_id = m.tid""",
            [tenant.pk, ids.tolist(), [tpl_ids[i] for i in tpl_of.tolist()], tpl_tenant.pk])
    states = EngineState.objects.for_tenant(tenant.pk).count()
    with connection.cursor() as cur:
        cur.execute(f"SELECT coalesce(sum(pg_column_size(state)), 0) FROM {EngineState._meta.db_table} "
                    "WHERE tenant_id = %s", [tenant.pk])
        state_bytes = int(cur.fetchone()[0])
    print(f"  {n} series x {h} points ({n * h:,} points) seeded in {seed_s:.1f} s, watermarks set, {states} states "
          f"cloned from the templates ({state_bytes / 2**20:.0f} MiB stored); load {c.loadavg()}")

    # 3. five new minutes per series, then the periodic run, timed end to end
    copy_raw(tenant.pk, np.repeat(ids, 5), np.tile(times_ns[h0:total], n), tpl_values[tpl_of, h0:total].reshape(-1),
             method="numpy")
    profile = profile_incremental_batch(tenant.pk, ids[: args.profile_series].tolist(), end, engine)
    timed = run_and_wait(worker, tenant.pk, None, end, "periodic", args.timeout)
    met = timed["wall_s"] < TARGET_INCREMENTAL_S
    print(f"  periodic incremental run, {n} series x 5 new minutes: {timed['wall_s']:.1f} s end to end "
          f"({n / timed['wall_s']:,.0f} series/s; worker CPU {timed['worker_cpu_s']:.1f} s; batch time sum "
          f"{timed['detect_seconds_sum']:.1f} s; points analysed {timed['points_analysed']:,}) "
          f"(target < {TARGET_INCREMENTAL_S:.0f} s: {'met' if met else 'MISSED'}); load {c.loadavg()}")
    return {"series": n, "templates": templates, "history_points": h, "template_history_points": h0, "seeded_points": n * h,
            "seed_s": round(seed_s, 1), "prior_run_templates": prior, "fitted_states": states,
            "state_mib": round(state_bytes / 2**20, 1), "timed_run": timed, "wall_s": round(timed["wall_s"], 2),
            "met": met, "target": f"< {TARGET_INCREMENTAL_S:.0f} s", "profile": profile}


def profile_incremental_batch(tenant_id: int, series_ids: list[int], end: datetime, engine) -> dict:
    """Where an incremental batch's time goes, in-process, stage by stage (as detect_series_batch),
    on series that were already analysed up to ``end`` minus 5 minutes; nothing is written."""
    from analytics.models import Series
    from analytics.store.read import get_metric_series_batch
    from results.models import EngineState
    from tenants.scoping import tenant_scope

    if not series_ids:
        return {}
    t: dict = {}
    since = end - timedelta(minutes=5)
    with tenant_scope(tenant_id):
        with c.stage(t, "series_rows"):
            rows = list(Series.objects.for_tenant(tenant_id).filter(pk__in=series_ids))
        with c.stage(t, "fetch_history"):
            fetched = get_metric_series_batch(tenant_id, series_ids, since - timedelta(minutes=engine.history_points), end)
        with c.stage(t, "load_state_rows"):
            saved = {s.series_id: s.state for s in EngineState.objects.for_tenant(tenant_id).filter(series_id__in=series_ids)}
        with c.stage(t, "state_from_json"):
            loaded = {k: engine.load_state(v) for k, v in saved.items()}
        outputs = []
        with c.stage(t, "engine_analyse"):
            for data in fetched:
                outputs.append(engine.analyse(data, since=since, state=loaded.get(data.metadata["series_id"])))
        with c.stage(t, "state_to_json"):
            dumped = [engine.dump_state(o.state) for o in outputs]
        with c.stage(t, "json_encode_states"):
            import json

            size = sum(len(json.dumps(d)) for d in dumped)
    n = len(rows)
    out = {k: round(v / n * 1000, 3) for k, v in t.items()}
    print(f"  in-process profile of one incremental batch ({n} series), ms per series: "
          + ", ".join(f"{k} {v}" for k, v in out.items()) + f"; state JSON {size / n / 1024:.0f} KiB per series")
    return {"series": n, "ms_per_series": out, "state_json_kib_per_series": round(size / n / 1024, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 series; incremental over 1,000 series")
    parser.add_argument("--series", type=int, default=1000, help="part 1: series of one day")
    parser.add_argument("--inc-series", type=int, default=10_000, help="part 2: series of the periodic run (0: skip)")
    parser.add_argument("--history", type=int, default=0, help="part 2: history points (default: engine.history_points)")
    parser.add_argument("--templates", type=int, default=500,
                        help="part 2: distinct simulated series; series k repeats template k %% N with its fitted state "
                             "(0: every series distinct, the prior run over all of them)")
    parser.add_argument("--profile-series", type=int, default=250, help="part 2: series profiled in-process")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--repeat", type=int, default=2, help="part 1 repetitions (best reported)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for one run")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.inc_series, args.templates = 200, 1000, 100

    url = c.setup_django("pipeline", broker=True)
    from analytics.core.engines.defaults import DEFAULT_ENGINE, DEFAULT_PARAMS
    from analytics.core.engines.registry import engine_registry
    from config.celery import app

    engine = engine_registry.create(DEFAULT_ENGINE, **DEFAULT_PARAMS)
    from django.conf import settings

    result: dict = {"benchmark": "pipeline", "machine": c.machine(), "load_before": c.loadavg(),
                    "batch_size": settings.FLEETWATCH_DETECTION_BATCH_SIZE, "engine": engine.name}
    app.control.purge()
    worker = c.Worker(concurrency=args.concurrency)
    try:
        worker.wait_ready(app)
        result["full_day"] = part_full_day(worker, args, engine)
        if args.inc_series:
            result["incremental"] = part_incremental(worker, args, engine)
        result["worker_peak_rss_mib"] = round(worker.children_max_rss_mib(), 1)
        result["load_after"] = c.loadavg()
    finally:
        worker.stop()
        app.control.purge()
        if not args.keep:
            c.drop_database(url)
    return c.emit(result, args.json_out)


if __name__ == "__main__":
    main()
