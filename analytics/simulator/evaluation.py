"""Fleet-level detection quality on simulated fleets: ``python manage.py evaluate --simulated``.

For each seed: a fleet (``--clusters`` x ``--nodes`` x the six metrics x ``--days`` at
one-minute steps, topped up to ``--min-per-kind`` anomalies of every kind, see
``FleetSpec.min_anomalies_per_kind``); the engine's ``detect()`` over each whole series,
the first ``clean_days`` (2) serving as history only, as a first run that fetched history
would (results from there on); then the event-level figures of
:mod:`analytics.core.evaluation.events`, per seed and pooled over the seeds.

What is compared with what:

- an event is one labelled anomaly of the fleet on one series (a cluster incident
  hitting six series is six events); its true type is the simulator's
  ``KIND_TYPE``: spike and dip -> spike, trend (a ramp) and level_shift -> trend,
  seasonal_break -> seasonal;
- its match window is its anomalous samples plus, after them, the margin of its NAB
  window (``nab_margin_seconds``: max(1 h, half its duration));
- its severity is ``Fleet.severity``: the largest change it makes to the latent
  series, in sigmas of the clean series (the same unit for every kind);
- a detection is an ``AnomalyResult`` whose label is not NORMAL; its span is the
  result's ``[window_start, window_end)`` and its score ``anomaly_score``.

Acceptance seeds (the default) are 101-105: never tune on them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from analytics.core.engines.base import AnomalyDetectionEngine
from analytics.core.engines.defaults import DEFAULT_ENGINE, DEFAULT_PARAMS
from analytics.core.engines.registry import engine_registry
from analytics.core.evaluation.events import TYPES, Detection, Event, EventQuality, format_quality, score_events
from analytics.simulator.export import nab_margin_seconds
from analytics.simulator.fleet import Fleet, generate
from analytics.simulator.spec import DAY, FleetSpec, SeriesKey

ACCEPTANCE_SEEDS: tuple[int, ...] = (101, 102, 103, 104, 105)


@dataclass(frozen=True)
class FleetShape:
    """The size of every evaluated fleet (the seed varies)."""

    clusters: int = 4
    nodes: int = 5
    days: float = 7.0
    min_per_kind: int = 10

    def spec(self, seed: int) -> FleetSpec:
        return FleetSpec(clusters_per_tenant=self.clusters, nodes_per_cluster=self.nodes, days=self.days,
                         seed=seed, min_anomalies_per_kind=self.min_per_kind)

    def describe(self, metrics: int) -> str:
        return (f"{self.clusters} clusters x {self.nodes} nodes x {metrics} metrics x {self.days:g} days, "
                f">= {self.min_per_kind} anomalies of every kind")


def engine_config(engine: str | None, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(name, params): the product default (with its parameters unless ``params`` is given),
    or the named engine with its own defaults overridden by ``params``. Checked here."""
    if engine is None:
        name, chosen = DEFAULT_ENGINE, dict(DEFAULT_PARAMS if params is None else params)
    else:
        name, chosen = engine, dict(params or {})
    engine_registry.create(name, **chosen)  # fail fast on an unknown engine or a bad parameter
    return name, chosen


def series_id(seed: int, key: SeriesKey) -> str:
    return f"seed-{seed}/{key}"


def detect(engine: AnomalyDetectionEngine, fleet: Fleet, key: SeriesKey) -> list[Detection]:
    """The anomalous episodes ``engine.detect()`` reports on one series of the fleet, the
    clean history (``clean_days``) serving as context only."""
    spec = fleet.spec
    since = spec.start + timedelta(days=spec.clean_days)
    return [
        Detection(series_id(spec.seed, key), r.window_start, r.window_end, r.anomaly_label.value, r.anomaly_score)
        for r in engine.detect(fleet.series(key).to_metric_series(), since=since) if r.is_anomaly
    ]


def _detect_cluster(job: tuple[FleetSpec, str, str, str, dict[str, Any]]) -> tuple[list[Detection], float]:
    """The detections on every series of one cluster (a unit of work for one process) and its CPU time."""
    spec, tenant, cluster, engine_name, params = job
    started = time.process_time()
    fleet = generate(spec)
    engine = engine_registry.create(engine_name, **params)
    detections = [d for key in fleet.keys(tenant) if key.cluster == cluster for d in detect(engine, fleet, key)]
    return detections, time.process_time() - started


def ground_truth(spec: FleetSpec) -> tuple[list[Event], dict[str, float]]:
    """The fleet's events and the days evaluated on each of its series."""
    fleet = generate(spec)
    step = timedelta(seconds=spec.step_seconds)
    events = [
        Event(series_id(spec.seed, a.key), a.type, a.kind, a.start, a.end + step,
              a.end + step + timedelta(seconds=nab_margin_seconds(a, spec.step_seconds)), fleet.severity(a))
        for a in fleet.ground_truth
    ]
    days = (fleet.n_points * spec.step_seconds - spec.clean_days * DAY) / DAY
    return events, {series_id(spec.seed, key): days for key in fleet.keys()}


@dataclass
class SimulatedReport:
    engine: str
    params: dict[str, Any]
    seeds: list[int]
    fleet: str
    pooled: EventQuality
    per_seed: dict[int, EventQuality]
    engine_cpu_seconds: float
    wall_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "params": self.params, "seeds": self.seeds, "fleet": self.fleet,
            "engine_cpu_seconds": round(self.engine_cpu_seconds, 1), "wall_seconds": round(self.wall_seconds, 1),
            "pooled": self.pooled.to_dict(), "per_seed": {str(s): q.to_dict() for s, q in self.per_seed.items()},
        }


def evaluate_simulated(seeds: Sequence[int] = ACCEPTANCE_SEEDS, engine: str | None = None,
                       params: Mapping[str, Any] | None = None, *, shape: FleetShape = FleetShape(),
                       jobs: int = 1) -> SimulatedReport:
    started = time.perf_counter()
    engine_name, chosen = engine_config(engine, params)
    specs = [shape.spec(seed) for seed in seeds]
    work = [(spec, tenant, cluster, engine_name, chosen) for spec in specs
            for tenant in generate(spec).tenants for cluster in generate(spec).clusters(tenant)]
    if jobs > 1 and len(work) > 1:
        # fork: the children inherit registered engines, including ones defined in tests
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            outputs = list(pool.map(_detect_cluster, work))
    else:
        outputs = [_detect_cluster(job) for job in work]
    detections: dict[int, list[Detection]] = {spec.seed: [] for spec in specs}
    for (spec, *_), (found, _cpu) in zip(work, outputs, strict=True):
        detections[spec.seed].extend(found)
    per_seed: dict[int, EventQuality] = {}
    all_events: list[Event] = []
    all_days: dict[str, float] = {}
    for spec in specs:
        events, days = ground_truth(spec)
        per_seed[spec.seed] = score_events(events, detections[spec.seed], days)
        all_events += events
        all_days |= days
    pooled = score_events(all_events, [d for ds in detections.values() for d in ds], all_days)
    return SimulatedReport(engine_name, chosen, list(seeds), shape.describe(len(specs[0].metrics)), pooled, per_seed,
                           sum(cpu for _, cpu in outputs), time.perf_counter() - started)


def format_report(report: SimulatedReport) -> str:
    def f(value: float | None, spec: str = ".3f") -> str:
        return "n/a" if value is None else format(value, spec)

    lines = [
        f"engine {report.engine!r} params {json.dumps(report.params)}; seeds {_format_seeds(report.seeds)}; "
        f"fleet per seed: {report.fleet}",
        f"engine CPU {report.engine_cpu_seconds:.0f} s, wall {report.wall_seconds:.0f} s",
        "",
        f"{'seed':>6} {'events':>7} {'detections':>11} {'precision':>10} {'recall':>7} {'FA/series-day':>14} "
        f"{'delay min':>10} {'spearman':>9}  type accuracy (spike/trend/seasonal)",
    ]
    for seed, q in report.per_seed.items():
        delay = q.median_delay_seconds()
        lines.append(
            f"{seed:>6} {q.events:>7} {q.detections:>11} {f(q.precision):>10} {f(q.recall()):>7} "
            f"{f(q.false_alarms_per_series_day, '.4f'):>14} {f(None if delay is None else delay / 60, '.1f'):>10} "
            f"{f(q.spearman()):>9}  " + " / ".join(f(q.accuracy(t), ".2f") for t in TYPES)
        )
    lines += ["", "pooled over the seeds: " + format_quality(report.pooled)]
    return "\n".join(lines)


def parse_seeds(text: str) -> list[int]:
    """"101-105", "1,2,7-9" -> seeds in the given order, without repeats."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi or lo)
            if first < 0 or last < first:
                raise ValueError
            seeds += [s for s in range(first, last + 1) if s not in seeds]
    except ValueError:
        raise ValueError(f"seeds: expected e.g. 101-105 or 1,2,7-9, got {text!r}") from None
    return seeds


def _format_seeds(seeds: Sequence[int]) -> str:
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate --simulated",
        description="Fleet-level event precision/recall, false alarms, delay, severity-score correlation and the "
                    "type confusion of an engine on simulated fleets (no database).",
    )
    parser.add_argument("--seeds", default="101-105", help="fleet seeds, e.g. 101-105 or 1,2,7-9 (default: the "
                        "acceptance seeds 101-105; tune on others)")
    parser.add_argument("--engine", help="registered engine name (default: the product default engine)")
    parser.add_argument("--params", help="engine parameters as a JSON object (default: the product defaults "
                        "for the default engine, the engine's own defaults otherwise)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: the CPU count)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    defaults = FleetShape()
    parser.add_argument("--clusters", type=int, default=defaults.clusters, help="clusters per fleet")
    parser.add_argument("--nodes", type=int, default=defaults.nodes, help="nodes per cluster")
    parser.add_argument("--days", type=float, default=defaults.days, help="days per fleet (the first 2 are history)")
    parser.add_argument("--min-per-kind", type=int, default=defaults.min_per_kind,
                        help="anomalies of every kind per fleet, at least")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = None
        if args.params is not None:
            try:
                params = json.loads(args.params)
            except json.JSONDecodeError as exc:
                raise ValueError(f"params: not valid JSON ({exc})") from None
            if not isinstance(params, dict):
                raise ValueError("params: must be a JSON object")
        if args.jobs < 1:
            raise ValueError("jobs: must be >= 1")
        shape = replace(FleetShape(), clusters=args.clusters, nodes=args.nodes, days=args.days,
                        min_per_kind=args.min_per_kind)
        shape.spec(0)  # fail fast on a bad fleet shape
        report = evaluate_simulated(parse_seeds(args.seeds), args.engine, params, shape=shape, jobs=args.jobs)
    except ValueError as exc:
        print(f"evaluate --simulated: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
