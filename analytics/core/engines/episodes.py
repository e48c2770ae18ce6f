"""From scored points to results: episodes of alarm windows, explained, and the normal
stretches between them (what :meth:`AnomalyDetectionEngine.detect` returns).

The analysed range is cut into epoch-aligned windows of ``window``; consecutive windows
holding a confirmed point form one episode (gaps shorter than ``merge_gap`` or
``suppress`` are bridged), labelled and explained by the ExplanationClassifier; each
maximal stretch of windows between episodes becomes one NORMAL result. Results partition
the analysed range and are sorted by time.

Scores: an episode scores its highest evidence, weighed by its largest deviation in
sigmas when the engine reports them (:func:`calibration.episode_score`), and at least the
threshold, since its points passed it; a normal stretch its highest point score, kept
below the threshold, so no result under the threshold is an anomaly and no normal one is
above it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.core.contracts import AnomalyExplanation, AnomalyResult, AnomalyType, MetricSeries
from analytics.core.engines.calibration import episode_score
from analytics.core.engines.scored import ScoredSeries
from analytics.core.explain import ExplanationTemplateRegistry, WindowContext, explain_window
from analytics.core.timestamps import as_ns
from analytics.core.windows import TimeBasedWindowExtractor


@dataclass(frozen=True)
class EpisodeRules:
    """How windows become results: window length, the gap bridged inside an episode
    (nanoseconds) and the alarm threshold."""

    window: pd.Timedelta
    bridge_ns: int
    threshold: float


def window_bounds(timestamps_ns: np.ndarray, window: pd.Timedelta) -> np.ndarray:
    """[start, end) index slices of the epoch-aligned windows holding points (the trailing
    partial window included), via the shared TimeBasedWindowExtractor."""
    return _extractor(window).bounds(timestamps_ns)


@functools.lru_cache(maxsize=16)
def _extractor(window: pd.Timedelta) -> TimeBasedWindowExtractor:
    """One extractor per window length, reused: building it (pandas conversions of the
    durations) cost about 15 us of an incremental call, a tenth of its episode step."""
    return TimeBasedWindowExtractor(window.to_pytimedelta(), window.to_pytimedelta(), partial="keep")


def _finite_positive(scale: np.ndarray) -> np.ndarray:
    scale = np.asarray(scale, dtype=np.float64)
    ok = np.isfinite(scale) & (scale > 0)
    if ok.all():
        return scale
    fallback = float(np.median(scale[ok])) if ok.any() else 1.0
    return np.where(ok, scale, fallback)


def _finite_or(values: np.ndarray | None, fallback: np.ndarray) -> np.ndarray:
    if values is None:
        return fallback
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values), values, fallback)


def episode_context(series: MetricSeries, start: int, end: int, scored: ScoredSeries) -> WindowContext:
    """The WindowContext of points ``[start, end)``.

    From ``start`` on, the expectations are *frozen* at what the engine expected just
    before the episode (its level at ``start`` plus the seasonal profile at each point):
    the baseline must not learn the anomaly it is explaining, or a level shift would look
    like a spike that came back.
    """
    x = np.asarray(series.values, dtype=np.float64)
    expected = _finite_or(scored.expected, x).copy()
    offset = (
        np.zeros(len(x)) if scored.seasonal_component is None
        else _finite_or(scored.seasonal_component, np.zeros(len(x)))
    )
    expected[start:] = offset[start:] + (expected[start] - offset[start])
    seasonal_expected = None
    if scored.seasonal_expected is not None:
        seasonal_expected = _finite_or(scored.seasonal_expected, expected).copy()
        seasonal_expected[start:] = offset[start:] + (seasonal_expected[start] - offset[start])
    return WindowContext(
        series=series,
        start_index=start,
        end_index=end,
        expected=expected,
        scale=_finite_positive(scored.scale),
        scores=np.clip(np.nan_to_num(scored.scores, nan=0.0), 0.0, 1.0),
        seasonal_expected=seasonal_expected,
        seasonal_profile=None if scored.seasonal_component is None else offset,
    )


def explain_episode(series: MetricSeries, start: int, end: int, scored: ScoredSeries) -> AnomalyExplanation:
    """Classify and explain points ``[start, end)`` (classifier + templates of explain.py)."""
    return explain_window(episode_context(series, start, end, scored))


def _group_windows(win_active: np.ndarray, win_start_ns: np.ndarray, w_ns: int, bridge_ns: int) -> list[tuple[int, int, bool]]:
    """(first window, last window, anomalous) groups covering every window in order: an
    episode is a run of active windows, bridging gaps shorter than ``bridge_ns``."""
    episodes: list[list[int]] = []
    for k in np.flatnonzero(win_active):
        if episodes:
            gap = int(win_start_ns[k]) - (int(win_start_ns[episodes[-1][1]]) + w_ns)
            if gap <= 0 or gap < bridge_ns:
                episodes[-1][1] = int(k)
                continue
        episodes.append([int(k), int(k)])
    groups: list[tuple[int, int, bool]] = []
    cursor = 0
    for first, last in episodes:
        if first > cursor:
            groups.append((cursor, first - 1, False))
        groups.append((first, last, True))
        cursor = last + 1
    if cursor < len(win_active):
        groups.append((cursor, len(win_active) - 1, False))
    return groups


def _label(explanation: AnomalyExplanation, series: MetricSeries, single_window: bool) -> AnomalyExplanation:
    if explanation.anomaly_type is not AnomalyType.NORMAL:
        return explanation
    # the classifier found no 4-sigma point against the frozen baseline (a level or
    # volatility component alarmed): keep the engine's verdict; one window is a spike,
    # longer a trend
    label = AnomalyType.SPIKE if single_window else AnomalyType.TREND
    relabelled = dataclasses.replace(explanation, anomaly_type=label)
    return dataclasses.replace(relabelled, text=ExplanationTemplateRegistry().render(relabelled, series))


def _clipped(value: float, low: float, high: float) -> float:
    """``value`` clipped into [low, high], NaN as 0 (``np.clip(np.nan_to_num(value))`` of a
    scalar, without numpy's per-call overhead: it ran twice for every result)."""
    return min(max(0.0 if math.isnan(value) else value, low), high)


def episode_results(
    engine_name: str, series: MetricSeries, scored: ScoredSeries, start: int, rules: EpisodeRules
) -> list[AnomalyResult]:
    """The results of the points from ``start`` on (see the module docstring)."""
    if start >= len(series):
        return []
    w_ns = int(rules.window.value)
    ts = as_ns(series.timestamps)[start:]
    bounds = window_bounds(ts, rules.window)
    active = scored.confirmed if scored.confirmed is not None else scored.alarms
    active = np.asarray(active[start:], dtype=bool)
    win_start_ns = (ts[bounds[:, 0]] // w_ns) * w_ns
    win_active = np.logical_or.reduceat(active, bounds[:, 0]) if len(bounds) else np.zeros(0, bool)
    groups = _group_windows(win_active, win_start_ns, w_ns, rules.bridge_ns)
    evidence = scored.evidence if scored.evidence is not None else scored.scores
    below = float(np.nextafter(rules.threshold, 0.0))

    results: list[AnomalyResult] = []
    for i, (ga, gb, anomalous) in enumerate(groups):
        p0 = start + int(bounds[ga, 0])
        p1 = start + int(bounds[gb, 1])  # exclusive
        t0 = pd.Timestamp(int(win_start_ns[ga]), tz="UTC")
        end_ns = int(win_start_ns[groups[i + 1][0]]) if i + 1 < len(groups) else int(win_start_ns[gb]) + w_ns
        label = AnomalyType.NORMAL
        explanation = None
        magnitude = None
        if anomalous:
            score = float(np.max(evidence[p0:p1]))
            if scored.magnitude is not None:
                score = episode_score(score, float(np.nanmax(np.r_[scored.magnitude[p0:p1], 0.0])))
            score = _clipped(score, rules.threshold, 1.0)
            explanation = _label(explain_episode(series, p0, p1, scored), series, ga == gb)
            label = explanation.anomaly_type
            if explanation.deviation_percent is not None:
                magnitude = float(min(1.0, abs(explanation.deviation_percent) / 100.0))
        else:
            score = _clipped(float(np.max(scored.scores[p0:p1])), 0.0, below)
        results.append(
            AnomalyResult(
                tenant_id=series.tenant_id,
                cluster_id=series.cluster_id,
                node_id=series.node_id,
                metric_name=series.metric_name,
                window_start=t0.to_pydatetime(),
                window_end=pd.Timestamp(end_ns, tz="UTC").to_pydatetime(),
                anomaly_score=score,
                anomaly_label=label,
                magnitude=magnitude,
                explanation=explanation,
                engine=engine_name,
            )
        )
    return results
