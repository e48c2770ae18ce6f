"""The engine interface every detector implements (ADTK-based or not).

An engine implements two things: :meth:`AnomalyDetectionEngine.score` (causal per-point
scores in [0, 1], calibrated by :mod:`analytics.core.engines.calibration`) and
:attr:`AnomalyDetectionEngine.history_points`. Everything else is shared and lives here:

- parameter declaration and validation (:class:`Parameter`; unknown or invalid values
  raise ``ValueError`` naming the parameter);
- alarm post-processing against noise (:func:`postprocess_alarms`): a point alarms when
  its score reaches ``threshold`` and at least ``min_alarm_points`` points reached it
  within the trailing ``confirm_window``; a new alarm episode starting less than
  ``suppress`` after the end of the previous reported episode is a repeat and dropped;
- :meth:`AnomalyDetectionEngine.detect`: epoch-aligned time windows of length
  ``window``; consecutive windows holding an alarm are merged into one result per
  episode, labelled and explained by the ExplanationClassifier; each maximal stretch of
  windows between episodes becomes one NORMAL result whose score is the highest point
  score inside it. Results partition the analysed range and are sorted by time;
- :meth:`AnomalyDetectionEngine.explain`: rebuilds the WindowContext of a result and
  calls the classifier and templates.

Common parameters (every engine has them; defaults in :data:`COMMON_PARAMETERS`):

=================== ========= ===========================================================
name                default   meaning
=================== ========= ===========================================================
window              "5min"    detection window length (epoch-aligned)
threshold           0.5       score at which a point counts as alarming (0.5 = 4 sigma)
min_alarm_points    1         k: alarm points needed within ``confirm_window`` (1 = off)
confirm_window      "5min"    trailing duration in which the k points are counted
suppress            "10min"   after an alarm episode ends, a new one starting sooner is
                              a repeat and dropped ("0s" = off)
gate_scores         False     if True, scores of points that are not alarms (not
                              confirmed or suppressed) are capped just below
                              ``threshold``, so thresholding the scores reproduces the
                              post-processed alarms
=================== ========= ===========================================================
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from analytics.core.contracts import (
    AnomalyExplanation,
    AnomalyResult,
    AnomalyType,
    Direction,
    MetricSeries,
)


def parse_duration(value: Any) -> pd.Timedelta:
    """A positive-or-zero duration from a string ("5min", "1h", "1d") or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    try:
        if isinstance(value, int | float):
            td = pd.Timedelta(seconds=float(value))
        else:
            td = pd.Timedelta(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a duration: {value!r}") from None
    if td is pd.NaT or td < pd.Timedelta(0):
        raise ValueError(f"not a non-negative duration: {value!r}")
    return td


def _check_duration(value: Any) -> None:
    parse_duration(value)


def _check_positive_duration(value: Any) -> None:
    if parse_duration(value) <= pd.Timedelta(0):
        raise ValueError(f"must be a positive duration, got {value!r}")


@dataclass(frozen=True)
class Parameter:
    """One declared engine parameter: its type, default and bounds.

    ``check`` is an optional callable that raises ``ValueError`` for invalid values
    (e.g. :func:`parse_duration` for duration strings); its message is prefixed with the
    parameter name.
    """

    type: type
    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], None] | None = None

    def coerce(self, name: str, value: Any) -> Any:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            raise ValueError(f"{name}: must be {self.type.__name__}, got {value!r}")
        if self.type is float and not math.isfinite(value):
            raise ValueError(f"{name}: must be finite, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name}: must be one of {list(self.choices)}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{name}: must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{name}: must be <= {self.maximum}, got {value!r}")
        if self.check is not None:
            try:
                self.check(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return value


def duration_parameter(default: str, help: str, *, positive: bool = True) -> Parameter:
    return Parameter(str, default, help, check=_check_positive_duration if positive else _check_duration)


COMMON_PARAMETERS: Mapping[str, Parameter] = {
    "window": duration_parameter("5min", "detection window length; windows are aligned to the UTC epoch"),
    "threshold": Parameter(
        float, 0.5, "score at which a point alarms (0.5 = 4 robust sigmas)", minimum=1e-6, maximum=1.0
    ),
    "min_alarm_points": Parameter(
        int, 1, "k: alarm points needed within confirm_window before alarming (1 = off)", minimum=1, maximum=1000
    ),
    "confirm_window": duration_parameter("5min", "trailing duration in which min_alarm_points are counted"),
    "suppress": duration_parameter(
        "10min", "an alarm episode starting sooner than this after the previous one ended is dropped",
        positive=False,
    ),
    "gate_scores": Parameter(
        bool, False, "cap scores of non-alarm points just below threshold (scores then agree with alarms)"
    ),
}


@dataclass
class ScoredSeries:
    """Per-point output of an engine over one series, all arrays the series' length.

    ``scores`` are causal (point t uses points up to t only, plus a state fitted on
    earlier data) and calibrated to [0, 1]; ``expected`` and ``scale`` are the
    engine's causal expectation and robust sigma, which explanations quote; ``alarms``
    are the points flagged after post-processing. ``components`` optionally holds the
    per-component deviations in sigmas (engine specific, for diagnostics).
    """

    scores: np.ndarray
    expected: np.ndarray
    scale: np.ndarray
    alarms: np.ndarray
    seasonal_expected: np.ndarray | None = None
    components: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class EngineOutput:
    """What :meth:`AnomalyDetectionEngine.analyse` returns: results, state to keep, scores."""

    results: list[AnomalyResult]
    state: Any
    scored: ScoredSeries
    start_index: int  # first analysed point


def postprocess_alarms(
    scores: np.ndarray,
    timestamps_ns: np.ndarray,
    *,
    threshold: float,
    min_alarm_points: int = 1,
    confirm_window_ns: int = 0,
    suppress_ns: int = 0,
) -> np.ndarray:
    """Causal alarm post-processing; returns a boolean array.

    1. raw: ``score >= threshold``;
    2. confirmed: raw, and at least ``min_alarm_points`` raw points among those with
       timestamps in ``(t - confirm_window, t]``;
    3. episodes are maximal runs of confirmed points; an episode starting less than
       ``suppress`` after the end (last point) of the previously *reported* episode is
       a repeat and dropped. The remaining episodes' points are the alarms.

    Every step looks only backwards, so alarms are causal.
    """
    scores = np.asarray(scores, dtype=np.float64)
    raw = scores >= threshold
    if not raw.any():
        return raw
    if min_alarm_points > 1:
        counts = np.cumsum(raw)
        left = np.searchsorted(timestamps_ns, timestamps_ns - confirm_window_ns, side="right")
        before = np.where(left > 0, counts[np.maximum(left - 1, 0)], 0)
        confirmed = raw & ((counts - before) >= min_alarm_points)
    else:
        confirmed = raw
    if suppress_ns <= 0 or not confirmed.any():
        return confirmed
    alarms = np.zeros_like(confirmed)
    padded = np.concatenate([[False], confirmed, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]  # [start, end)
    last_end_ns: int | None = None
    for start, end in zip(starts, ends, strict=True):
        if last_end_ns is not None and timestamps_ns[start] - last_end_ns < suppress_ns:
            continue
        alarms[start:end] = True
        last_end_ns = int(timestamps_ns[end - 1])
    return alarms


def epoch_windows(timestamps_ns: np.ndarray, window_ns: int) -> np.ndarray:
    """Epoch-aligned window number of each timestamp: ``floor(t / window)``."""
    return np.floor_divide(timestamps_ns, window_ns)


def _window_ids(series: MetricSeries, start: int, window: pd.Timedelta) -> np.ndarray:
    """Window ids of points ``start..`` using the shared extractor when it is available."""
    return epoch_windows(series.timestamps.asi8[start:], int(window.value))


def _explain_window(ctx: Any) -> AnomalyExplanation:
    from analytics.core import explain as explain_module

    return explain_module.explain_window(ctx)


def _window_context(
    series: MetricSeries, start: int, end: int, scored: ScoredSeries
) -> Any:
    from analytics.core.explain import WindowContext

    return WindowContext(
        series=series,
        start_index=start,
        end_index=end,
        expected=scored.expected,
        scale=scored.scale,
        scores=scored.scores,
        seasonal_expected=scored.seasonal_expected,
    )


class AnomalyDetectionEngine(ABC):
    """Subclasses declare ``name`` and ``parameters`` and implement ``score`` and
    ``history_points``. ``parameters`` should include :data:`COMMON_PARAMETERS`."""

    name: ClassVar[str]
    parameters: ClassVar[Mapping[str, Parameter]] = COMMON_PARAMETERS

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown parameter for engine {self.name!r}")
        self.params: dict[str, Any] = {
            name: spec.coerce(name, params[name]) if name in params else spec.default
            for name, spec in self.parameters.items()
        }
        self.validate_params()

    def validate_params(self) -> None:
        """Cross-parameter checks; raise ``ValueError`` naming the parameter."""

    def duration(self, name: str) -> pd.Timedelta:
        return parse_duration(self.params[name])

    # --- what engines implement -------------------------------------------------------

    @property
    @abstractmethod
    def history_points(self) -> int:
        """How many points before the first new point the engine needs as context
        (at the engine's nominal sampling step)."""

    @abstractmethod
    def score(self, series: MetricSeries, state: Any = None) -> tuple[ScoredSeries, Any]:
        """Score every point of ``series`` causally; return the scores and the fitted
        state to reuse on the next incremental call (None if the engine keeps none)."""

    def refresh_state(self, series: MetricSeries, state: Any, since_index: int) -> Any:
        """Hook for engines with fitted state: return the state to use when scoring
        points ``since_index..`` (e.g. refit a stale state on earlier points). The
        default keeps the state."""
        return state

    # --- shared machinery ---------------------------------------------------------------

    def postprocess(self, scores: np.ndarray, timestamps_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alarms from scores with the common parameters; returns (scores, alarms), scores
        gated if ``gate_scores``."""
        threshold = float(self.params["threshold"])
        alarms = postprocess_alarms(
            scores,
            timestamps_ns,
            threshold=threshold,
            min_alarm_points=int(self.params["min_alarm_points"]),
            confirm_window_ns=int(self.duration("confirm_window").value),
            suppress_ns=int(self.duration("suppress").value),
        )
        if self.params["gate_scores"]:
            cap = np.nextafter(threshold, 0.0)
            scores = np.where(alarms, scores, np.minimum(scores, cap))
        return scores, alarms

    def analyse(self, series: MetricSeries, *, since: datetime | None = None, state: Any = None) -> EngineOutput:
        """Score, window, classify and explain; return results plus the state to keep."""
        start = 0 if since is None else int(series.timestamps.searchsorted(pd.Timestamp(since), side="left"))
        state = self.refresh_state(series, state, start)
        scored, state = self.score(series, state)
        results = self._results(series, scored, start)
        return EngineOutput(results=results, state=state, scored=scored, start_index=start)

    def detect(self, series: MetricSeries, *, since: datetime | None = None, state: Any = None) -> list[AnomalyResult]:
        """Results partitioning the analysed range (points at or after ``since``): one
        per anomaly episode and one NORMAL result per stretch between episodes. Sorted,
        contiguous (each result ends where the next starts). Use :meth:`analyse` to also
        get the fitted state back."""
        return self.analyse(series, since=since, state=state).results

    def explain(
        self, result: AnomalyResult, series: MetricSeries, *, state: Any = None
    ) -> AnomalyExplanation:
        """The structured explanation of one result (rebuilt from the series)."""
        scored, _ = self.score(series, state)
        ts = series.timestamps
        start = int(ts.searchsorted(pd.Timestamp(result.window_start), side="left"))
        end = int(ts.searchsorted(pd.Timestamp(result.window_end), side="left"))
        if end <= start:
            raise ValueError("result: its window holds no point of the series")
        return _explain_window(_window_context(series, start, end, scored))

    def _results(self, series: MetricSeries, scored: ScoredSeries, start: int) -> list[AnomalyResult]:
        n = len(series)
        if start >= n:
            return []
        window = self.duration("window")
        w_ns = int(window.value)
        ids = _window_ids(series, start, window)
        # runs of equal window id -> windows; a window is anomalous if it holds an alarm
        alarms = np.asarray(scored.alarms[start:], dtype=bool)
        boundaries = np.flatnonzero(np.diff(ids)) + 1
        win_starts = np.concatenate([[0], boundaries])
        win_ends = np.concatenate([boundaries, [len(ids)]])
        win_anom = np.logical_or.reduceat(alarms, win_starts)
        # merge consecutive windows (by id adjacency or across empty windows) with the same
        # state into episodes; an anomalous run is broken by an empty window gap
        groups: list[tuple[int, int, bool]] = []  # [first window, last window] indices
        g0 = 0
        for k in range(1, len(win_starts)):
            same = win_anom[k] == win_anom[g0]
            if same and win_anom[k] and ids[win_starts[k]] != ids[win_starts[k - 1]] + 1:
                same = False
            if not same:
                groups.append((g0, k - 1, bool(win_anom[g0])))
                g0 = k
        groups.append((g0, len(win_starts) - 1, bool(win_anom[g0])))

        results: list[AnomalyResult] = []
        node = str(series.node_id)
        for i, (ga, gb, anomalous) in enumerate(groups):
            p0 = start + int(win_starts[ga])
            p1 = start + int(win_ends[gb])  # exclusive
            t0 = pd.Timestamp(int(ids[win_starts[ga]]) * w_ns, tz="UTC")
            if i + 1 < len(groups):
                nxt = groups[i + 1][0]
                t1 = pd.Timestamp(int(ids[win_starts[nxt]]) * w_ns, tz="UTC")
            else:
                t1 = pd.Timestamp((int(ids[win_starts[gb]]) + 1) * w_ns, tz="UTC")
            score = float(np.clip(np.max(scored.scores[p0:p1]), 0.0, 1.0))
            label = AnomalyType.NORMAL
            explanation = None
            magnitude = None
            if anomalous:
                explanation = _explain_window(_window_context(series, p0, p1, scored))
                label = explanation.anomaly_type
                if label is AnomalyType.NORMAL:  # classifier disagrees: keep the alarm, call it a spike
                    label = AnomalyType.SPIKE
                if explanation.deviation_percent is not None:
                    magnitude = float(min(1.0, abs(explanation.deviation_percent) / 100.0))
            results.append(
                AnomalyResult(
                    tenant_id=series.tenant_id,
                    cluster_id=series.cluster_id,
                    node_id=series.node_id,
                    metric_name=series.metric_name,
                    window_start=t0.to_pydatetime(),
                    window_end=t1.to_pydatetime(),
                    anomaly_score=score,
                    anomaly_label=label,
                    magnitude=magnitude,
                    explanation=explanation,
                    engine=self.name,
                )
            )
        del node
        return results


@dataclass
class EngineConfig:
    """A choice of engine and parameters: data, stored per tenant and metric."""

    engine: str
    params: dict[str, Any] = field(default_factory=dict)


__all__ = [
    "COMMON_PARAMETERS",
    "AnomalyDetectionEngine",
    "Direction",
    "EngineConfig",
    "EngineOutput",
    "Parameter",
    "ScoredSeries",
    "duration_parameter",
    "epoch_windows",
    "parse_duration",
    "postprocess_alarms",
]
