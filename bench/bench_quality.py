"""Detection quality on the simulator's ground truth, per anomaly type (a script, not a test).

    .venv/bin/python bench/bench_quality.py            # 3 clusters x 4 nodes x 6 metrics x 7 days
    .venv/bin/python bench/bench_quality.py --quick    # 1 cluster x 2 nodes x 6 metrics x 4 days

Generates a fleet with analytics/simulator/ (default seed 0, anomaly_rate 0.1 per
series per day, cluster incidents 0.15 per cluster per day, nothing in the first 2 clean
days), runs the default engine's ``detect()`` over each whole series (no state: the
causal walk with its own fits), and matches detected anomalous episodes (results whose
label is not NORMAL) to the ground-truth spans by overlap in time (a detection
[window_start, window_end) matches a truth span [start, end] when they intersect):

- recall per truth type: share of truth anomalies of that type overlapped by >= 1 detection;
- precision overall: share of detections overlapping >= 1 truth span;
- type accuracy: share of matched detections whose label equals the truth type (of the
  truth span it overlaps most).
No database.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as c


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=4, help="per cluster")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.quick:
        args.clusters, args.nodes, args.days = 1, 2, 4.0

    from analytics.core.engines.defaults import DEFAULT_ENGINE, DEFAULT_PARAMS
    from analytics.core.engines.registry import engine_registry
    from analytics.simulator.fleet import generate
    from analytics.simulator.spec import ANOMALY_TYPES, FleetSpec

    engine = engine_registry.create(DEFAULT_ENGINE, **DEFAULT_PARAMS)
    spec = FleetSpec(clusters_per_tenant=args.clusters, nodes_per_cluster=args.nodes, days=args.days, seed=args.seed,
                     start=datetime(2026, 1, 5, tzinfo=UTC))
    fleet = generate(spec)
    step = timedelta(seconds=spec.step_seconds)
    truth_found = {t: [0, 0] for t in ANOMALY_TYPES}  # type: [found, total]
    detections = matched = label_ok = 0
    confusion: dict[str, dict[str, int]] = {}
    t0 = time.perf_counter()
    for series in fleet.iter_series():
        truth = fleet.anomalies_for(series.key)
        results = [r for r in engine.detect(series.to_metric_series()) if r.is_anomaly]
        spans = [(a.start, a.end + step, a.type) for a in truth]  # inclusive end -> half-open
        hit = [False] * len(spans)
        for r in results:
            detections += 1
            best, best_overlap = None, timedelta(0)
            for i, (s, e, _) in enumerate(spans):
                overlap = min(e, r.window_end) - max(s, r.window_start)
                if overlap > timedelta(0):
                    hit[i] = True
                    if overlap > best_overlap:
                        best, best_overlap = i, overlap
            if best is not None:
                matched += 1
                truth_type, label = spans[best][2], r.anomaly_label.value
                label_ok += label == truth_type
                confusion.setdefault(truth_type, {}).setdefault(label, 0)
                confusion[truth_type][label] += 1
        for (_, _, kind), h in zip(spans, hit, strict=True):
            truth_found[kind][1] += 1
            truth_found[kind][0] += h
    seconds = time.perf_counter() - t0
    recall = {t: round(f / n, 3) if n else None for t, (f, n) in truth_found.items()}
    total_found = sum(f for f, _ in truth_found.values())
    total_truth = sum(n for _, n in truth_found.values())
    result = {
        "benchmark": "quality", "engine": engine.name, "series": len(fleet), "days": args.days,
        "fleet": f"{args.clusters} clusters x {args.nodes} nodes x {len(spec.metrics)} metrics x {args.days:g} days",
        "truth": {t: n for t, (_, n) in truth_found.items()}, "recall": recall,
        "recall_overall": round(total_found / total_truth, 3) if total_truth else None,
        "detections": detections, "precision": round(matched / detections, 3) if detections else None,
        "type_accuracy": round(label_ok / matched, 3) if matched else None, "confusion_truth_to_label": confusion,
        "seconds": round(seconds, 1), "load": c.loadavg(),
    }
    print(f"{result['fleet']} ({len(fleet)} series), engine {engine.name!r}, {seconds:.1f} s; load {result['load']}")
    for t in ANOMALY_TYPES:
        f, n = truth_found[t]
        print(f"  recall {t:<9} {f:>4}/{n:<4} = {recall[t]}")
    print(f"  recall overall {result['recall_overall']}; precision {result['precision']} ({matched}/{detections} "
          f"detections overlap a truth span); type accuracy {result['type_accuracy']} ({label_ok}/{matched})")
    print(f"  truth type -> detected label: {confusion}")
    return c.emit(result, args.json_out)


if __name__ == "__main__":
    main()
