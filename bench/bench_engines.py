"""Engine throughput: series scored per second per core (a script, not a test).

    .venv/bin/python bench/bench_engines.py            # full sizes
    .venv/bin/python bench/bench_engines.py --quick    # small sizes, a smoke run
    taskset -c 0 .venv/bin/python bench/bench_engines.py   # pinned to one core

Workloads (one-minute data, a daily profile plus noise), for the default engine "adtk"
and the previous one, "adtk_v1":
1. full run without a state over one day (what a first run or a run over a range does);
2. incremental: ``analyse`` of the newest 5 minutes with ``history_points`` of context
   and a fitted state (what a periodic detection task does per series), with the state
   as an object, and with the state loaded from JSON and dumped again (as stored);
3. the vectorised engine's ``score_batch`` over a [1,000 x 1,440] batch.
Rates are per CPU second of this thread (``time.thread_time``), which a shared, loaded
machine does not distort; wall-clock rates are printed beside them. Single-threaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analytics.core.contracts import MetricSeries  # noqa: E402
from analytics.core.engines import VectorEngine, engine_registry  # noqa: E402

DAY = 1440
EPOCH = pd.Timestamp("2024-03-04", tz="UTC")


def make_values(rng: np.random.Generator, n_series: int, n_points: int) -> np.ndarray:
    minute = np.arange(n_points) % DAY
    level = rng.uniform(20, 60, (n_series, 1))
    amp = rng.uniform(2, 15, (n_series, 1))
    return level + amp * np.cos(2 * np.pi * (minute / 60 - 14) / 24) + rng.normal(0, 1, (n_series, n_points))


def series_of(values: np.ndarray, index: pd.DatetimeIndex, i: int) -> MetricSeries:
    return MetricSeries("t", "c", f"n{i}", "cpu", index, values)


def timed(n: int, work: Callable[[int], object]) -> str:
    c0, t0 = time.thread_time(), time.perf_counter()
    for i in range(n):
        work(i)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
    return f"{n / cpu:9.1f} series/s per CPU second ({1000 * cpu / n:6.3f} ms)   wall {n / wall:9.1f}/s   n={n}"


def bench_engine(name: str, rng: np.random.Generator, n_full: int, n_inc: int) -> None:
    engine = engine_registry.create(name)
    index = EPOCH + pd.to_timedelta(np.arange(DAY), unit="min")
    values = make_values(rng, n_full, DAY)
    engine.score(series_of(values[0], index, 0))  # warm imports
    print(f"{name:8s} full run, 1 day without a state:      ", timed(n_full, lambda i: engine.score(
        series_of(values[i], index, i))))
    n_hist = 3 * DAY
    index3 = EPOCH + pd.to_timedelta(np.arange(n_hist + 5), unit="min")
    values3 = make_values(rng, 20, n_hist + 5)
    states = [engine.fit(series_of(values3[i], index3, i), end_index=n_hist) for i in range(20)]
    ctx = engine.history_points + 5
    tails = [series_of(values3[i % 20, -ctx:], index3[-ctx:], i) for i in range(n_inc)]
    since = index3[-5].to_pydatetime()
    print(f"{name:8s} incremental, 5 new points, state object:", timed(n_inc, lambda i: engine.analyse(
        tails[i], since=since, state=states[i % 20])))
    stored = [json.dumps(engine.dump_state(s)) for s in states]

    def from_json(i: int) -> None:
        out = engine.analyse(tails[i], since=since, state=engine.load_state(json.loads(stored[i % 20])))
        json.dumps(engine.dump_state(out.state))

    print(f"{name:8s} incremental, state from and to JSON:  ", timed(n_inc, from_json))
    print(f"{name:8s} stored state: {np.mean([len(s) for s in stored]) / 1000:.1f} KB of JSON")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n_full, n_inc, batch = (5, 100, 100) if args.quick else (60, 2000, 1000)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"cpus available to this process: {affinity}; one process, single-threaded")
    for name in ("adtk", "adtk_v1"):
        bench_engine(name, rng, n_full, n_inc)

    vector = VectorEngine()
    index = EPOCH + pd.to_timedelta(np.arange(DAY), unit="min")
    big = make_values(rng, batch, DAY)
    vector.score_batch(big[:10], index)
    cpu = []
    for _ in range(5):
        c0 = time.thread_time()
        vector.score_batch(big, index)
        cpu.append(time.thread_time() - c0)
    print(f"vector   score_batch [{batch} x {DAY}], best of 5:  {batch / min(cpu):9.1f} series/s per CPU second")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
