"""Labelled anomalies as labelled windows, in the layout the evaluation harness reads
(``labels/combined_windows.json``: file name -> list of [start, end]): one "file" per
series, named "<cluster>/<node>/<metric>.csv"; a window per "real problem" label. The
reviewed windows (every label) come alongside: a backtest scores only inside them."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from results.models import Feedback

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # naive UTC, as NAB's label files write it


def series_file(cluster: str, node: str, metric: str) -> str:
    return f"{cluster}/{node}/{metric}.csv"


def _window(f: Feedback) -> list[str]:
    """[start, end]: NAB's windows are closed, an anomaly's [start, end) half-open."""
    return [f.window_start.strftime(TIME_FORMAT), (f.window_end - timedelta(microseconds=1)).strftime(TIME_FORMAT)]


def _merged(windows: list[list[str]]) -> list[list[str]]:
    """Overlapping windows (labels on two engines' anomalies) as one: the harness
    refuses overlapping windows."""
    out: list[list[str]] = []
    for start, end in sorted(windows):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def labelled_windows(tenant_id: int, series_ids: list[int] | None = None) -> dict:
    """{"windows": combined_windows.json content, "reviewed": the same for every label,
    "series": file name -> series id}."""
    rows = Feedback.objects.for_tenant(tenant_id).select_related("series__cluster", "series__node")
    if series_ids is not None:
        rows = rows.filter(series_id__in=series_ids)
    windows: dict[str, list[list[str]]] = defaultdict(list)
    reviewed: dict[str, list[list[str]]] = defaultdict(list)
    names: dict[str, int] = {}
    for f in rows.order_by("series_id", "window_start"):
        name = series_file(f.series.cluster.name, f.series.node.name, f.metric_name)
        names[name] = f.series_id
        windows.setdefault(name, [])
        reviewed[name].append(_window(f))
        if f.verdict == Feedback.Verdict.REAL:
            windows[name].append(_window(f))
    return {"windows": {k: _merged(v) for k, v in windows.items()},
            "reviewed": {k: _merged(v) for k, v in reviewed.items()}, "series": names}
