"""Engine throughput: series scored per second per core (a script, not a test).

    .venv/bin/python bench/bench_engines.py            # full sizes
    .venv/bin/python bench/bench_engines.py --quick    # small sizes, a smoke run
    taskset -c 0 .venv/bin/python bench/bench_engines.py   # pinned to one core

Workloads (one-minute data, a daily profile plus noise):
1. ADTK engine, full run without a state (causal walk with its fits) over one day;
2. ADTK engine, incremental: ``analyse`` of the newest 5 minutes with ``history_points``
   of context and a fitted state (what a periodic detection task does per series);
3. vectorised engine, ``score_batch`` over a [1,000 x 1,440] batch.
The process runs single-threaded numpy; the figures are per core. Timings on a shared
machine are noisy: the vector batch reports the best and the median of five runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analytics.core.contracts import MetricSeries  # noqa: E402
from analytics.core.engines import AdtkV1Engine as AdtkEngine  # noqa: E402
from analytics.core.engines import VectorEngine  # noqa: E402

DAY = 1440
EPOCH = pd.Timestamp("2024-03-04", tz="UTC")


def make_values(rng: np.random.Generator, n_series: int, n_points: int) -> np.ndarray:
    minute = np.arange(n_points) % DAY
    level = rng.uniform(20, 60, (n_series, 1))
    amp = rng.uniform(2, 15, (n_series, 1))
    return level + amp * np.cos(2 * np.pi * (minute / 60 - 14) / 24) + rng.normal(0, 1, (n_series, n_points))


def series_of(values: np.ndarray, index: pd.DatetimeIndex, i: int) -> MetricSeries:
    return MetricSeries("t", "c", f"n{i}", "cpu", index, values)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:10.1f} series/s   ({1000 * seconds / n:.3f} ms/series, n={n})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n_full, n_inc, batch = (5, 100, 100) if args.quick else (40, 2000, 1000)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"cpus available to this process: {affinity}; one process, single-threaded")

    engine = AdtkEngine()
    # 1. ADTK full run, one day
    index = EPOCH + pd.to_timedelta(np.arange(DAY), unit="min")
    values = make_values(rng, n_full, DAY)
    engine.score(series_of(values[0], index, 0))  # warm imports
    t0 = time.perf_counter()
    for i in range(n_full):
        engine.score(series_of(values[i], index, i))
    print("adtk full run (1 day, causal walk + fits):   ", rate(n_full, time.perf_counter() - t0))

    # 2. ADTK incremental: state fitted on 3 days, then analyse the newest 5 minutes
    n_hist = 3 * DAY
    index3 = EPOCH + pd.to_timedelta(np.arange(n_hist + 5), unit="min")
    values3 = make_values(rng, 20, n_hist + 5)
    states = [engine.fit(series_of(values3[i], index3, i), end_index=n_hist) for i in range(20)]
    ctx = engine.history_points + 5
    tails = [series_of(values3[i % 20, -ctx:], index3[-ctx:], i) for i in range(n_inc)]
    since = index3[-5].to_pydatetime()
    t0 = time.perf_counter()
    for i, tail in enumerate(tails):
        engine.analyse(tail, since=since, state=states[i % 20])
    elapsed = time.perf_counter() - t0
    print(f"adtk incremental (newest 5 min, {ctx} points): ", rate(n_inc, elapsed))
    # the same, series built from arrays inside the loop (as a task reading rows would)
    t0 = time.perf_counter()
    for i in range(n_inc):
        tail = series_of(values3[i % 20, -ctx:], index3[-ctx:], i)
        engine.analyse(tail, since=since, state=states[i % 20])
    print("  ... including MetricSeries construction:    ", rate(n_inc, time.perf_counter() - t0))

    # 3. vectorised batch
    vector = VectorEngine()
    big = make_values(rng, batch, DAY)
    vector.score_batch(big[:10], index)
    times, cpu = [], []
    for _ in range(5):
        c0, t0 = time.thread_time(), time.perf_counter()
        vector.score_batch(big, index)
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    print(f"vector score_batch [{batch} x {DAY}], best of 5:", rate(batch, min(times)))
    print("                                 median of 5:", rate(batch, float(np.median(times))))
    # CPU time of this thread: excludes time spent waiting for a core on a loaded machine
    print("                       CPU time, best of 5:", rate(batch, min(cpu)))
    big7 = make_values(rng, batch // 10, 8 * DAY)
    index7 = EPOCH + pd.to_timedelta(np.arange(8 * DAY), unit="min")
    t0 = time.perf_counter()
    vector.score_batch(big7, index7)
    print(f"vector score_batch [{batch // 10} x {8 * DAY}] (seasonal):", rate(batch // 10, time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
