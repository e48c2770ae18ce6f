"""One series replayed causally through an engine and scored against its labels.

The engine scores the series as the evaluation harness has it score a file
(``AnomalyDetectionEngine.analyse`` from the first point, no state carried in), so
the per-point scores are the harness's. NAB scoring (``analytics.core.evaluation.nab``)
uses the engine's fixed threshold and NAB's probationary period and window mapping,
over the labelled ranges only: scores outside every reviewed window (any label) are
not detections, so unreviewed time counts neither as normal nor as anomalous. The
"real problem" labels are the NAB windows. Alarms are the anomaly episodes the engine
reports (what a run would store); precision is over the reviewed ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.core.contracts import MetricSeries
from analytics.core.engines.base import AnomalyDetectionEngine
from analytics.core.evaluation.nab import NAB_PROFILES, label_rows, score_file, window_rows

Window = tuple[str, str]


def covering(timestamps: pd.DatetimeIndex, windows: Sequence[Window]) -> list[Window]:
    """The windows that hold at least one of the timestamps (others are outside the range)."""
    out = []
    for start, end in windows:
        lo = int(timestamps.searchsorted(pd.Timestamp(start, tz="UTC"), side="left"))
        if lo < len(timestamps) and timestamps[lo] <= pd.Timestamp(end, tz="UTC"):
            out.append((start, end))
    return out


def reviewed_mask(timestamps: pd.DatetimeIndex, reviewed: Sequence[Window]) -> np.ndarray:
    mask = np.zeros(len(timestamps), dtype=bool)
    for left, right in window_rows(timestamps, reviewed):
        mask[left:right + 1] = True
    return mask


def _overlaps(start: pd.Timestamp, end: pd.Timestamp, windows: Sequence[Window]) -> bool:
    return any(start <= pd.Timestamp(e, tz="UTC") and pd.Timestamp(s, tz="UTC") < end for s, e in windows)


def replay_series(series: MetricSeries, engine: AnomalyDetectionEngine, windows: Sequence[Window],
                  reviewed: Sequence[Window]) -> dict:
    """The series' part of a backtest report (sums: parts and series add up)."""
    ts = series.timestamps
    output = engine.analyse(series)
    scores = np.asarray(output.scored.scores, dtype=np.float64)
    real, seen = covering(ts, windows), covering(ts, reviewed)
    labels = label_rows(ts, real)
    scored = np.where(reviewed_mask(ts, seen), scores, np.nan)
    threshold = float(engine.params["threshold"])
    nab = {}
    for name, profile in NAB_PROFILES.items():
        result = score_file(scored, labels, profile, threshold)
        nab[name] = {"raw": result.raw, "tp_windows": result.tp_windows, "fn_windows": result.fn_windows,
                     "fp_events": result.fp_events, "null": -profile.fn_weight * len(labels.scored_windows),
                     "perfect": profile.tp_weight * len(labels.windows)}
    alarms = [r for r in output.results if r.is_anomaly]
    in_review = [a for a in alarms if _overlaps(pd.Timestamp(a.window_start), pd.Timestamp(a.window_end), seen)]
    confirmed = [a for a in in_review if _overlaps(pd.Timestamp(a.window_start), pd.Timestamp(a.window_end), real)]
    return {"points": len(ts), "alarms": len(alarms), "reviewed_alarms": len(in_review),
            "true_alarms": len(confirmed), "windows": len(real), "nab": nab}
