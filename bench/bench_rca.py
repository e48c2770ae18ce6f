"""Root-cause hint computation: one 50-node cluster x 6 metrics x a 6-hour window (plus the
2 hours of baseline before it), one-minute points (a script, not a test).

    .venv/bin/python bench/bench_rca.py            # target: < 1 s per hint
    .venv/bin/python bench/bench_rca.py --quick    # fewer repeats
    .venv/bin/python bench/bench_rca.py --json-out FILE

The cluster comes from the simulator with propagating incidents (``FleetSpec.propagation``);
the window is cut around its first incident as ``evaluate --simulated --rca`` cuts it.
Timed: ``analyse_window`` alone (the series are built before), CPU and wall, median and
best of the repeats; then a worst case where every series steps up in the window.
The process runs single-threaded numpy (OPENBLAS/OMP threads = 1).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402

from analytics.core.rca.analysis import analyse_window  # noqa: E402
from analytics.core.rca.comovement import CoMovementSettings  # noqa: E402
from analytics.core.rca.hint import RootCauseHint  # noqa: E402
from analytics.simulator.fleet import generate  # noqa: E402
from analytics.simulator.rca import window_of  # noqa: E402
from analytics.simulator.spec import FleetSpec  # noqa: E402
from bench import _common as c  # noqa: E402

NODES = 50
TARGET_SECONDS = 1.0


def timed(series: list, start, end, repeats: int) -> tuple[list[float], list[float], RootCauseHint]:
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        hint = analyse_window(series, start, end)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return cpu, wall, hint


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 20")
    parser.add_argument("--json-out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 20

    fleet = generate(FleetSpec(clusters_per_tenant=1, nodes_per_cluster=NODES, days=4, seed=7, propagation=True,
                               incident_rate=1.0))
    incident = fleet.propagations[0]
    base, start, end = window_of(fleet, incident)
    series = [fleet.series(key, base, end).to_metric_series() for key in fleet.keys()]
    points = sum(len(s) for s in series)
    cpu, wall, hint = timed(series, fleet.when(start), fleet.when(end), repeats)
    # worst case: every series steps up somewhere in the window, so the pairwise
    # co-movement matrix is as large as it gets (CoMovementSettings.max_series)
    stepped = [replace(s, values=s.values * np.where(np.arange(len(s)) >= (start - base) + 7 * i % 300, 3.0, 1.0))
               for i, s in enumerate(series)]
    worst_cpu, _, worst = timed(stepped, fleet.when(start), fleet.when(end), max(3, repeats // 4))
    found = hint.candidates[0].moved if hint.candidates else None
    result = {
        "series": len(series), "points": points, "window_hours": (end - start) * fleet.step / 3600,
        "baseline_hours": (start - base) * fleet.step / 3600, "repeats": repeats,
        "cpu_s_median": round(statistics.median(cpu), 4), "cpu_s_best": round(min(cpu), 4),
        "wall_s_median": round(statistics.median(wall), 4), "wall_s_best": round(min(wall), 4),
        "moved": len(hint.moved), "groups": len(hint.groups), "text": hint.text,
        "origin_found": found is not None and (found.key[2], found.metric) == (incident.origin.node, incident.origin.metric),
        "worst_moved": len(worst.moved), "worst_cpu_s_median": round(statistics.median(worst_cpu), 4),
        "target_s": TARGET_SECONDS, "load": c.loadavg(),
    }
    result["met"] = max(result["cpu_s_median"], result["worst_cpu_s_median"]) < TARGET_SECONDS
    print(f"{len(series)} series ({NODES} nodes x 6 metrics), {points:,} points: {result['window_hours']:g} h window "
          f"+ {result['baseline_hours']:g} h baseline; {len(hint.moved)} series moved, {len(hint.groups)} groups")
    print(f"analyse_window: CPU median {result['cpu_s_median'] * 1000:.1f} ms (best {result['cpu_s_best'] * 1000:.1f}), "
          f"wall median {result['wall_s_median'] * 1000:.1f} ms (best {result['wall_s_best'] * 1000:.1f}) over {repeats} "
          f"runs; target < {TARGET_SECONDS:g} s: {'met' if result['met'] else 'MISSED'}; load {result['load']}")
    print(f"hint: {hint.text} (true origin: {incident.origin.node} {incident.origin.metric})")
    print(f"worst case, every series steps up: {len(worst.moved)} series moved (compared pairwise: at most "
          f"{CoMovementSettings().max_series}); CPU median {result['worst_cpu_s_median'] * 1000:.1f} ms")
    if args.json_out:
        with open(args.json_out, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
