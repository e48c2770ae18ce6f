"""Run every benchmark, each in its own process with a time bound, and write docs/benchmarks.md.

    .venv/bin/python bench/run.py --quick      # small sizes, a smoke run (~6 min)
    .venv/bin/python bench/run.py              # full sizes (~20 min on 2 shared cores)
    .venv/bin/python bench/run.py --only ingest,api --no-doc

Benchmarks: bench_ingest, bench_pipeline, bench_api, bench_scaling (each
``main(argv) -> dict``, run as ``python bench/<name>.py [--quick] --json-out FILE``), the
existing bench_read.py (its own database, created and dropped here) and
bench_engines.py (their printed figures are parsed), the NAB cross-validation
(``python -m analytics.core.evaluation.harness --data ../shared/datasets/nab --cv category
--json``) and
the fleet-level quality on simulated fleets (``python manage.py evaluate --simulated
--json``, the acceptance seeds 101-105; one seed with ``--quick``), bench_rca (root-cause
hints for one 50-node cluster), bench_incidents (building incidents after each periodic
run of a day) and bench_notifications (1,000 webhook notifications through a real worker).
Logs and JSON go to var/bench/<timestamp>/. A benchmark that fails or runs out of time
is reported as such and the rest still run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c

# the shared data sets sit next to the checkout (../shared), or next to the worktrees' folder (../../shared)
NAB_DIR = next((p for p in (c.ROOT.parent / "shared" / "datasets" / "nab", c.ROOT.parent.parent / "shared" / "datasets"
                            / "nab") if p.is_dir()), c.ROOT.parent / "shared" / "datasets" / "nab").resolve()
DOC = c.ROOT / "docs" / "benchmarks.md"


def benchmarks(quick: bool, db_url: str) -> list[dict]:
    q = ["--quick"] if quick else []
    py = [os.path.relpath(c.PYTHON, c.ROOT)]
    return [
        {"name": "ingest", "cmd": [*py, "bench/bench_ingest.py", *q], "json": True, "timeout": 600},
        {"name": "pipeline", "cmd": [*py, "bench/bench_pipeline.py", *q], "json": True, "timeout": 1200},
        {"name": "api", "cmd": [*py, "bench/bench_api.py", *q], "json": True, "timeout": 400},
        {"name": "scaling", "cmd": [*py, "bench/bench_scaling.py", *q], "json": True, "timeout": 1200},
        {"name": "read", "cmd": [*py, "bench/bench_read.py", "--series", "200" if quick else "1000", "--days", "1",
                                 "--compare", "5" if quick else "30"],
         "json": False, "timeout": 600, "env": {"DATABASE_URL": db_url}},
        {"name": "engines", "cmd": [*py, "bench/bench_engines.py", *q], "json": False, "timeout": 600},
        {"name": "nab", "cmd": [*py, "-m", "analytics.core.evaluation.harness", "--data", os.path.relpath(NAB_DIR, c.ROOT),
                                "--cv", "category", "--params", '{"gate_scores": true}', "--jobs", "2", "--json",
                                *(["--files", "real*/*"] if quick else [])],
         "json": "stdout", "timeout": 900},
        {"name": "quality", "cmd": [*py, "manage.py", "evaluate", "--simulated", "--json",
                                    *(["--seeds", "101"] if quick else [])],
         "json": "stdout", "timeout": 900},
        {"name": "rca", "cmd": [*py, "bench/bench_rca.py", *q], "json": True, "timeout": 300},
        {"name": "notifications", "cmd": [*py, "bench/bench_notifications.py", *q], "json": True, "timeout": 600},
        {"name": "incidents", "cmd": [*py, "bench/bench_incidents.py", *q], "json": True, "timeout": 1200},
    ]


def run_one(b: dict, out_dir: Path) -> dict:
    log = out_dir / f"{b['name']}.log"
    cmd = list(b["cmd"])
    json_path = out_dir / f"{b['name']}.json"
    if b["json"] is True:
        cmd += ["--json-out", str(json_path)]
    env = {**os.environ, **b.get("env", {})}
    load0 = c.loadavg()
    t = time.perf_counter()
    print(f"== {b['name']}: {' '.join(b['cmd'])} (time bound {b['timeout']} s; load {load0})", flush=True)
    status = "ok"
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, cwd=c.ROOT, env=env, stdout=subprocess.PIPE, stderr=handle, text=True,
                                start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=b["timeout"])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            stdout, _ = proc.communicate()
            status = "timed out"
    (out_dir / f"{b['name']}.out").write_text(stdout or "")
    if status == "ok" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode}, see {log.relative_to(c.ROOT)})"
    seconds = time.perf_counter() - t
    data: dict = {}
    if status == "ok":
        try:
            if b["json"] is True:
                data = json.loads(json_path.read_text())
            elif b["json"] == "stdout":
                data = json.loads(stdout)
            else:
                data = {"stdout": stdout}
        except (OSError, ValueError) as exc:
            status = f"unparsable output: {exc}"
    if b["json"] != "stdout":
        print(stdout, end="" if stdout.endswith("\n") else "\n", flush=True)
    print(f"   {b['name']}: {status} in {seconds:.0f} s; load {c.loadavg()}", flush=True)
    return {"name": b["name"], "command": " ".join(b["cmd"]), "status": status, "seconds": round(seconds, 1),
            "load_before": load0, "load_after": c.loadavg(), "data": data}


# --------------------------------------------------------------------------- parsing of the existing scripts

def parse_read(stdout: str) -> dict:
    out = {}
    for label, key in (("HOT ", "hot"), ("COLD", "cold")):
        m = re.search(rf"{label} read: ([\d,]+) points/s", stdout)
        if m:
            out[f"{key}_read_points_per_s"] = int(m.group(1).replace(",", ""))
    m = re.search(r"write_points: ([\d,]+) points/s", stdout)
    if m:
        out["write_points_per_s"] = int(m.group(1).replace(",", ""))
    m = re.search(r"compaction: .*\(([\d,]+) points/s\)", stdout)
    if m:
        out["compaction_points_per_s"] = int(m.group(1).replace(",", ""))
    m = re.search(r"HOT  size: ([\d.]+) bytes/point", stdout)
    if m:
        out["hot_bytes_per_point"] = float(m.group(1))
    m = re.search(r"COLD size: ([\d.]+) bytes/point", stdout)
    if m:
        out["cold_bytes_per_point"] = float(m.group(1))
    return out


def parse_engines(stdout: str) -> list[tuple[str, str]]:
    """(workload, figure) rows from bench_engines.py: rates per CPU second (and wall), state sizes."""
    rows = []
    for line in stdout.splitlines():
        m = re.match(r"(\S+)\s+(.+?):\s+([\d.]+) series/s per CPU second(?: \(\s*([\d.]+) ms\)\s+wall\s+([\d.]+)/s\s+n=(\d+))?",
                     line)
        if m:
            figure = f"{float(m.group(3)):,.1f} series/s per CPU second"
            if m.group(4):
                figure += f" ({m.group(4)} ms; wall {float(m.group(5)):,.1f}/s, n={m.group(6)})"
            rows.append((f"{m.group(1)} {m.group(2).strip()}", figure))
            continue
        m = re.match(r"(\S+)\s+stored state: ([\d.]+) KB of JSON", line)
        if m:
            rows.append((f"{m.group(1)} stored state", f"{m.group(2)} KB of JSON"))
    return rows


# --------------------------------------------------------------------------- the document

def yes(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**missed**")


def write_doc(results: dict[str, dict], quick: bool, started: str, total_s: float, path: Path) -> None:
    m = c.machine()
    r = {k: v["data"] for k, v in results.items()}
    L: list[str] = []
    add = L.append
    add("# Benchmarks")
    add("")
    add(f"Generated by `bench/run.py{' --quick' if quick else ''}` on {started} (UTC) in {total_s / 60:.1f} min. "
        "Every figure comes from that one run; re-run the command to refresh this page.")
    add("")
    add("## Machine")
    add("")
    add(f"- {m['nproc']} CPUs: {m['cpu']}; {m['mem_gib']} GiB memory; Python {m['python']}; PostgreSQL 15, Redis, "
        "all on loopback.")
    loads = "; ".join(f"{k} {v['load_before']} -> {v['load_after']}" for k, v in results.items())
    add(f"- Load average (1, 5, 15 min) before -> after "
        f"each benchmark: {loads}. A load above 2 on 2 cores means the benchmark got less than the whole machine: "
        "wall-clock figures are pessimistic and noisy. Scripts report best-of or median runs where they repeat, and "
        "the pipeline also per CPU-second of the worker.")
    add("")
    add("## Targets")
    add("")
    add("| target | measured | result |")
    add("| --- | --- | --- |")
    ing, pipe = r.get("ingest", {}), r.get("pipeline", {})
    if ing:
        add(f"| ingestion API >= 40 % of raw COPY | API {ing['api_points_per_s']:,} points/s vs copy_raw "
            f"{ing['raw_copy_write_row_points_per_s']:,} = {ing['ratio']:.0%} (vs numpy COPY "
            f"{ing['raw_copy_numpy_points_per_s']:,}: {ing['ratio_vs_numpy_copy']:.0%}) | {yes(ing['met'])} |")
    else:
        add(f"| ingestion API >= 40 % of raw COPY | {results.get('ingest', {}).get('status', 'not run')} | n/a |")
    fd = pipe.get("full_day")
    if fd:
        add(f"| detection pipeline >= 50 % of bare engine (per core) | pipeline {fd['pipeline_series_per_s']:,} series/s "
            f"with {fd['concurrency']} worker processes = {fd['pipeline_series_per_s_per_process']:,} per process vs bare "
            f"{fd['bare_series_per_s']:,} = {fd['ratio_per_core']:.0%} (per worker CPU-second: {fd['ratio_per_cpu_s']:.0%}) "
            f"| {yes(fd['met'])} |")
    else:
        add(f"| detection pipeline >= 50 % of bare engine | {results.get('pipeline', {}).get('status', 'not run')} | n/a |")
    inc = pipe.get("incremental")
    if inc:
        add(f"| periodic incremental run over {inc['series']:,} series < 60 s | {inc['wall_s']:.1f} s | {yes(inc['met'])} |")
    else:
        add(f"| periodic incremental run < 60 s | {results.get('pipeline', {}).get('status', 'not run')} | n/a |")
    rca = r.get("rca")
    if rca:
        add(f"| root-cause hint, {rca['series']} series x {rca['window_hours']:g} h < 1 s | CPU median "
            f"{rca['cpu_s_median'] * 1000:.0f} ms (every series moving: {rca['worst_cpu_s_median'] * 1000:.0f} ms) "
            f"| {yes(rca['met'])} |")
    else:
        add(f"| root-cause hint < 1 s | {results.get('rca', {}).get('status', 'not run')} | n/a |")
    notes = r.get("notifications")
    if notes:
        add(f"| {notes['notifications']:,} webhook notifications, 2 worker processes < 30 s | {notes['wall_s']:.1f} s "
            f"({notes['per_s']:,.0f}/s) | {yes(notes['met'])} |")
    else:
        add(f"| 1,000 webhook notifications < 30 s | {results.get('notifications', {}).get('status', 'not run')} | n/a |")
    incidents = r.get("incidents")
    if incidents and incidents.get("detection_seconds"):
        detection = inc["wall_s"] if inc else incidents["detection_seconds"]  # this run's periodic run, if measured
        share = incidents["build_max_s"] / detection
        add(f"| building incidents adds <= 10 % to the periodic run over 10,000 series | slowest build of "
            f"{incidents['runs']} runs {incidents['build_max_s'] * 1000:.0f} ms vs {detection:.1f} s = {share:.2%} "
            f"| {yes(share <= 0.10)} |")
    else:
        add(f"| building incidents adds <= 10 % | {results.get('incidents', {}).get('status', 'not run')} | n/a |")
    add("")

    add("## Commands and figures")
    add("")
    for name, res in results.items():
        add(f"### {name}")
        add("")
        add(f"`{res['command']}` -- {res['status']}, {res['seconds']:.0f} s, load {res['load_before']} -> {res['load_after']}")
        add("")
        if res["status"] == "ok" and res["data"]:
            L.extend(SECTIONS[name](res["data"]))
    path.write_text("\n".join(L) + "\n")


def _ingest_section(d: dict) -> list[str]:
    L: list[str] = []
    add = L.append
    add(f"{d['series']:,} series x {d['points_per_series']:,} points = {d['points']:,} points, bodies of "
        f"{d['batch']:,} points (compact form), gunicorn {d['gunicorn_workers']} sync workers, one client "
        "connection (gunicorn's sync workers close it after each response, so each request reconnects on "
        "loopback). Raw COPY: the same rows into the same table under other series ids, interleaved batch by "
        "batch with the API.")
    add("")
    add("| path | points/s | ratio API / path |")
    add("| --- | ---: | ---: |")
    add(f"| HTTP API | {d['api_points_per_s']:,} | |")
    add(f"| copy_raw (write_row, baseline) | {d['raw_copy_write_row_points_per_s']:,} | {d['ratio']:.0%} |")
    add(f"| copy_raw (numpy payload) | {d['raw_copy_numpy_points_per_s']:,} | {d['ratio_vs_numpy_copy']:.0%} |")
    add("")
    p = d["profile"]
    add(f"Server side in-process, median over {p['batches']} fresh bodies, ms per {d['batch']:,}-point body "
        f"(HTTP round trip median {d['api_median_ms_per_body']} ms):")
    add("")
    add("| " + " | ".join(p["stages_ms"]) + " |")
    add("|" + " ---: |" * len(p["stages_ms"]))
    add("| " + " | ".join(str(v) for v in p["stages_ms"].values()) + " |")
    add("")
    if "write_points_outside_scope_ms" in p:
        add(f"The same request in-process through Django's whole stack (test client: middleware, API-key auth, "
            f"throttling, DRF, the view; no gunicorn), one request under cProfile (which inflates it): "
            f"{p.get('django_request_ms')} ms. `write_points` of one "
            f"body outside any tenant scope (the direct-COPY path; inside a tenant scope, as the API runs, "
            f"row-level security refuses COPY and the batch goes by `INSERT ... SELECT unnest(...)`): "
            f"{p['write_points_outside_scope_ms']} ms vs {p['stages_ms'].get('write_points')} ms in scope.")
        add("")
    return L


def _pipeline_section(d: dict) -> list[str]:
    L: list[str] = []
    add = L.append
    fd, inc = d.get("full_day"), d.get("incremental")
    if fd:
        add(f"Part 1: {fd['series']:,} series x 1 day ({fd['points']:,} points, simulated fleet with anomalies), "
            f"engine `{fd['engine']}`, worker concurrency {fd['concurrency']}, detection batch size "
            f"{d.get('batch_size')}.")
        add("")
        add("| path | series/s | note |")
        add("| --- | ---: | --- |")
        add(f"| bare `engine.analyse`, 1 process | {fd['bare_series_per_s']:,} | "
            f"{fd['bare_series_per_cpu_s']:,} series per CPU-second |")
        add(f"| pipeline through the worker (wall) | {fd['pipeline_series_per_s']:,} | best of "
            f"{len(fd['runs'])} runs: " + ", ".join(f"{x['wall_s']:.1f} s" for x in fd["runs"]) + " |")
        add(f"| pipeline per worker process | {fd['pipeline_series_per_s_per_process']:,} | wall / concurrency |")
        add(f"| pipeline per worker CPU-second | {fd['pipeline_series_per_worker_cpu_s']} | CPU of the worker's "
            "process group (excludes PostgreSQL) |")
        add("")
        best = min(fd["runs"], key=lambda x: x["wall_s"])
        add(f"Best run: worker CPU {best['worker_cpu_s']:.1f} s, sum of batch times {best['detect_seconds_sum']:.1f} s "
            f"(over {fd['concurrency']} processes), {best['anomalies']} anomalies stored; the in-process fetch of "
            f"the same {fd['series']:,} series takes {fd['fetch_in_process_s']} s.")
        add("")
    if inc:
        add(f"Part 2: {inc['series']:,} series, {inc['history_points']:,} points of history each "
            f"({inc['seeded_points']:,} points), {inc['templates']} distinct template series whose fitted "
            f"states come from one prior incremental run through the worker "
            f"({inc['prior_run_templates']['wall_s']:.1f} s) and are cloned to the series repeating them "
            f"({inc['fitted_states']:,} states, {inc['state_mib']} MiB). Periodic run over 5 new minutes: "
            f"**{inc['wall_s']:.1f} s** end to end (worker CPU {inc['timed_run']['worker_cpu_s']:.1f} s, "
            f"batch time sum {inc['timed_run']['detect_seconds_sum']:.1f} s, "
            f"{inc['timed_run']['anomalies']} anomalies).")
        add("")
        pr = inc.get("profile") or {}
        if pr:
            add(f"In-process profile of one batch ({pr['series']} series), ms per series: "
                + ", ".join(f"{k} {v}" for k, v in pr["ms_per_series"].items())
                + f"; state JSON {pr['state_json_kib_per_series']} KiB per series.")
            add("")
    add(f"Worker peak RSS (largest process): {d.get('worker_peak_rss_mib')} MiB.")
    add("")
    return L


def _api_section(d: dict) -> list[str]:
    L: list[str] = []
    add = L.append
    add(f"{d['nodes']} nodes, {d['anomalies']:,} anomalies; load from {d['connections']} separate client "
        f"processes (one connection each, closed loop) for {d['duration_s']:.0f} s per endpoint; gunicorn "
        f"{d['gunicorn_workers']} sync workers.")
    add("")
    add("| endpoint | requests/s | p50 ms | p99 ms | max ms | errors | load |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for ep, e in d["endpoints"].items():
        add(f"| GET /api/v1/{ep} | {e['requests_per_s']:,} | {e['p50_ms']} | {e['p99_ms']} | {e['max_ms']} | "
            f"{e['errors']} | {e['load']} |")
    add("")
    for e in (d.get("in_process") or {}).values():
        add(f"In-process (test client, one request at a time, no gunicorn) `GET {e['path']}`: median "
            f"{e['median_ms']} ms, {e['queries']} SQL statements through Django's cursor ({e['sql_ms']} ms), "
            f"{e['bytes']:,} bytes.")
        add("")
    return L


def _scaling_section(d: dict) -> list[str]:
    L: list[str] = []
    add = L.append
    add("Each row is its own child process; peak RSS is that process's `ru_maxrss` (before the step: after "
        "imports and data generation). Ingestion: parse_batch + resolve_series + write_points in-process, "
        "bodies of 10,000 points made of whole series.")
    add("")
    add("| step | series | points/series | seconds | series/s | us/series | us/point | peak RSS MiB | RSS before MiB |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in d["rows"]:
        add(f"| {row['kind']} | {row['series']:,} | {row['points_per_series']:,} | {row['seconds']} | "
            f"{row['series_per_s']:,} | {row['us_per_series']:,} | {row['us_per_point']} | {row['peak_rss_mib']:,} | "
            f"{row['rss_before_mib']:,} |")
    add("")
    return L


def _read_section(d: dict) -> list[str]:
    L: list[str] = []
    add = L.append
    rd = parse_read(d["stdout"])
    add("| figure | value |")
    add("| --- | ---: |")
    for k, v in rd.items():
        add(f"| {k} | {v:,} |")
    add("")
    add("```")
    add(d["stdout"].strip())
    add("```")
    add("")
    return L


def _engines_section(d: dict) -> list[str]:
    L: list[str] = []
    add = L.append
    add("| workload | throughput (one process) |")
    add("| --- | --- |")
    for k, v in parse_engines(d["stdout"]):
        add(f"| {k} | {v} |")
    add("")
    return L


def _nab_section(d: dict) -> list[str]:
    L: list[str] = []
    add = L.append
    add(f"Engine `{d.get('engine')}` ({json.dumps(d.get('candidates'))}), leave-one-category-out cross-validation "
        f"(docs/evaluation.md), engine {d.get('engine_seconds')} s.")
    add("")
    add("| profile | CV score | in-sample | CV TP windows | FN | FP events | FP events per file | precision | recall |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for prof, p in (d.get("profiles") or {}).items():
        cv, ins = p["pooled"], p["in_sample"]
        add(f"| {prof} | {cv['score']} | {ins['score']} | {cv['tp_windows']} | {cv['fn_windows']} | {cv['fp_events']} | "
            f"{cv['fp_events_per_file']} | {cv['precision']} | {cv['recall']} |")
    add("")
    return L


def _quality_section(d: dict) -> list[str]:
    L: list[str] = []
    add = L.append
    p = d["pooled"]
    add(f"Engine `{d['engine']}` params {json.dumps(d['params'])}, seeds {d['seeds']}, fleet per seed: "
        f"{d['fleet']}; definitions in docs/evaluation.md (Simulated fleet).")
    add("")
    add("| events | detections | precision | recall | false alarms per series-day | median delay s | "
        "Spearman severity~score |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    add(f"| {p['events']} | {p['detections']} | {p['precision']} | {p['recall']} | "
        f"{p['false_alarms_per_series_day']} | {p['median_delay_seconds']} | {p['spearman_severity_score']} |")
    add("")
    add("| true type | " + " | ".join(next(iter(p["confusion"].values()))) + " | type accuracy |")
    add("| --- |" + " ---: |" * (len(next(iter(p["confusion"].values()))) + 1))
    for t, row in p["confusion"].items():
        add(f"| {t} | " + " | ".join(str(v) for v in row.values()) + f" | {p['by_type'][t]['type_accuracy']} |")
    add("")
    return L


def _rca_section(d: dict) -> list[str]:
    return [
        f"One cluster of {d['series']} series (50 nodes x 6 metrics, simulated with propagating incidents), "
        f"{d['points']:,} one-minute points: a {d['window_hours']:g} h window plus {d['baseline_hours']:g} h of "
        f"baseline. `analyse_window` alone, {d['repeats']} runs, one thread: CPU median "
        f"**{d['cpu_s_median'] * 1000:.1f} ms** (best {d['cpu_s_best'] * 1000:.1f}), wall median "
        f"{d['wall_s_median'] * 1000:.1f} ms; {d['moved']} series moved, {d['groups']} groups, true origin found: "
        f"{d['origin_found']}. Worst case, every series steps up in the window ({d['worst_moved']} compared "
        f"pairwise, the cap): CPU median {d['worst_cpu_s_median'] * 1000:.1f} ms.",
        "",
    ]


def _notifications_section(d: dict) -> list[str]:
    return [
        f"{d['notifications']:,} webhook notifications ({d['notifications'] // 4} incidents x opened, updated, acknowledged, "
        f"resolved) written to the outbox in one transaction ({d['outbox_write_s']:.1f} s), then delivered by one real "
        f"Celery worker with {d['worker_concurrency']} processes to a local receiver, in order per incident, each "
        f"attempt logged: all sent **{d['wall_s']:.1f} s** after the commit ({d['per_s']:,.0f}/s); the receiver saw "
        f"{d['received_unique_keys']:,} distinct idempotency keys.",
        "",
    ]


def _incidents_section(d: dict) -> list[str]:
    return [
        f"{d['series']:,} series (5 metrics a node, 100 nodes a cluster), {d['runs']} periodic runs replayed (every "
        f"5 min), a cluster event every hour (10 nodes x 2 metrics) and lone anomalies: {d['anomaly_rows']:,} anomaly "
        f"rows, {d['incidents']} incidents. `build_incidents` per run (grouping, refresh, auto-resolve, \"no data\"): "
        f"median **{d['build_median_s'] * 1000:.0f} ms**, p95 {d['build_p95_s'] * 1000:.0f} ms, slowest "
        f"{d['build_max_s'] * 1000:.0f} ms; against the periodic detection run over 10,000 series "
        f"({d['detection_seconds']} s): + {d.get('share_p95', 0):.2%} (p95), + {d.get('share_max', 0):.2%} (slowest).",
        "",
    ]


SECTIONS = {
    "ingest": _ingest_section,
    "pipeline": _pipeline_section,
    "api": _api_section,
    "scaling": _scaling_section,
    "read": _read_section,
    "engines": _engines_section,
    "nab": _nab_section,
    "quality": _quality_section,
    "rca": _rca_section,
    "notifications": _notifications_section,
    "incidents": _incidents_section,
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere")
    parser.add_argument("--only", help="comma-separated names: ingest,pipeline,api,scaling,read,engines,nab,quality,rca,incidents,"
                        "notifications")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--doc", default=str(DOC))
    parser.add_argument("--from-summary", help="only re-render the document from a run's summary.json (var/bench/<run>/)")
    args = parser.parse_args(argv)
    if args.from_summary:
        path = Path(args.from_summary)
        meta = json.loads((path.parent / "meta.json").read_text())
        write_doc(json.loads(path.read_text()), meta["quick"], meta["started"], meta["total_s"], Path(args.doc))
        print(f"wrote {args.doc} from {path}")
        return {}

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    out_dir = c.LOG_DIR / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    read_db = f"bench_read_{os.getpid()}"
    c._admin_execute(f'DROP DATABASE IF EXISTS "{read_db}" WITH (FORCE)')
    c._admin_execute(f'CREATE DATABASE "{read_db}"')
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    only = set(args.only.split(",")) if args.only else None
    try:
        for b in benchmarks(args.quick, f"{c.PG_URL}/{read_db}"):
            if only and b["name"] not in only:
                continue
            results[b["name"]] = run_one(b, out_dir)
    finally:
        c._admin_execute(f'DROP DATABASE IF EXISTS "{read_db}" WITH (FORCE)')
    total = time.perf_counter() - t0
    (out_dir / "summary.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / "meta.json").write_text(json.dumps({"quick": args.quick, "started": started, "total_s": total}))
    if not args.no_doc:
        write_doc(results, args.quick, started, total, Path(args.doc))
        print(f"wrote {args.doc}")
    print(f"all done in {total / 60:.1f} min; logs in {out_dir.relative_to(c.ROOT)}")
    return results


if __name__ == "__main__":
    main()
