"""A fleet written to files: its ground truth as JSON, or the whole fleet in the layout of
the Numenta Anomaly Benchmark (NAB) with labelled windows, for the evaluation harness.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from analytics.simulator.fleet import Fleet
from analytics.simulator.spec import HOUR, METRIC_MODELS, Anomaly, SeriesKey, spec_dict

#: NAB windows: the exact span widened on each side by max(NAB_MIN_MARGIN_SECONDS,
#: NAB_MARGIN_FRACTION * span duration), clipped to the series and merged when two touch.
NAB_MIN_MARGIN_SECONDS = HOUR
NAB_MARGIN_FRACTION = 0.5
NAB_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
NAB_WINDOW_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def nab_dir(fleet: Fleet, key: SeriesKey) -> str:
    """Directory under data/: the cluster, prefixed by the tenant when the fleet has several."""
    return key.cluster if fleet.spec.tenants == 1 else f"{key.tenant}__{key.cluster}"


def nab_relpath(fleet: Fleet, key: SeriesKey) -> str:
    return f"{nab_dir(fleet, key)}/{key.node}__{key.metric}.csv"


def nab_margin_seconds(anomaly: Anomaly, step_seconds: int = 1) -> int:
    """max(1 h, half the span's duration), rounded up to whole steps."""
    duration = (anomaly.end - anomaly.start).total_seconds()
    margin = max(NAB_MIN_MARGIN_SECONDS, NAB_MARGIN_FRACTION * duration)
    return int(math.ceil(margin / step_seconds) * step_seconds)


def nab_windows(fleet: Fleet, anomalies: Iterable[Anomaly]) -> list[tuple[datetime, datetime]]:
    """NAB windows of one series: each span widened by :func:`nab_margin_seconds`, clipped, merged."""
    first, last = fleet.when(0), fleet.when(fleet.n_points - 1)
    spans = sorted(
        (max(first, a.start - timedelta(seconds=nab_margin_seconds(a, fleet.step))),
         min(last, a.end + timedelta(seconds=nab_margin_seconds(a, fleet.step))))
        for a in anomalies
    )
    merged: list[list[datetime]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def write_nab(fleet: Fleet, out_dir: str | os.PathLike, *, progress: Callable[[int], Any] | None = None) -> Path:
    """Write the fleet in NAB layout::

        out_dir/data/<cluster>/<node>__<metric>.csv   timestamp,value ("YYYY-MM-DD HH:MM:SS", UTC)
        out_dir/labels/combined_windows.json          {"<relpath>": [[start, end], ...]} (widened windows)
        out_dir/labels/ground_truth.json              {"<relpath>": [{type, kind, start, end, window, ...}]}

    ground_truth.json keeps the exact spans and their types (NAB has none) plus the
    window each belongs to; ``progress`` is called with the points written per file.
    """
    root = Path(out_dir)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    windows: dict[str, list[list[str]]] = {}
    truth: dict[str, list[dict[str, Any]]] = {}
    stamps = None
    for series in fleet.iter_series():
        rel = nab_relpath(fleet, series.key)
        path = root / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if stamps is None:
            stamps = np.array([datetime.fromtimestamp(int(t), UTC).strftime(NAB_TIME_FORMAT) for t in series.timestamps])
        decimals = METRIC_MODELS[series.key.metric].decimals
        fmt = f"{{:.{decimals}f}}"
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("timestamp,value\n")
            handle.writelines(f"{ts},{fmt.format(v)}\n" for ts, v in zip(stamps, series.values, strict=True))
        anomalies = fleet.anomalies_for(series.key)
        file_windows = nab_windows(fleet, anomalies)
        windows[rel] = [[s.strftime(NAB_WINDOW_FORMAT), e.strftime(NAB_WINDOW_FORMAT)] for s, e in file_windows]
        entries = []
        for a in anomalies:
            window = next(w for w in file_windows if w[0] <= a.start and a.end <= w[1])
            entries.append({
                "type": a.type, "kind": a.kind,
                "start": a.start.strftime(NAB_WINDOW_FORMAT), "end": a.end.strftime(NAB_WINDOW_FORMAT),
                "window": [window[0].strftime(NAB_WINDOW_FORMAT), window[1].strftime(NAB_WINDOW_FORMAT)],
                "tenant": a.tenant, "cluster": a.cluster, "node": a.node, "metric": a.metric,
                "magnitude": a.magnitude, "incident": a.incident,
            })
        truth[rel] = entries
        if progress:
            progress(len(series))
    with open(root / "labels" / "combined_windows.json", "w", encoding="utf-8") as handle:
        json.dump(windows, handle, indent=4, sort_keys=True)
    meta = {"spec": spec_dict(fleet.spec), "window_margin": {"min_seconds": NAB_MIN_MARGIN_SECONDS,
                                                              "fraction_of_duration": NAB_MARGIN_FRACTION}}
    with open(root / "labels" / "ground_truth.json", "w", encoding="utf-8") as handle:
        json.dump({"_meta": meta, "files": truth}, handle, indent=2, sort_keys=True)
    return root


def write_truth(fleet: Fleet, path: str | os.PathLike) -> None:
    """Ground truth as JSON: {"spec": ..., "anomalies": [{tenant, cluster, node, metric, type, kind, start, end, ...}]},
    plus "propagations" (each incident's origin and order) when the fleet propagates its incidents."""
    truth: dict[str, Any] = {"spec": spec_dict(fleet.spec), "anomalies": [a.as_dict() for a in fleet.ground_truth]}
    if fleet.spec.propagation:
        truth["propagations"] = [p.as_dict() for p in fleet.propagations]
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(truth, handle, indent=2)
