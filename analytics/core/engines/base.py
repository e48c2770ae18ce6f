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
threshold           0.5       score at which a point counts as alarming (the calibrated
                              alarm level of every engine, see calibration.py)
min_alarm_points    1         k: alarm points needed within ``confirm_window`` (1 = off)
confirm_window      "5min"    trailing duration in which the k points are counted
suppress            "10min"   after an alarm episode ends, a new one starting sooner is
                              a repeat and dropped ("0s" = off)
merge_gap           "2h"      alarm episodes separated by less than this are reported as
                              one episode (and classified as one: a day whose daily
                              shape changed alarms on and off, one-signed pieces at a
                              time; merged, the classifier sees the shape change)
gate_scores         False     if True, scores of points that are not alarms (not
                              confirmed or suppressed) are capped just below
                              ``threshold``, so thresholding the scores reproduces the
                              post-processed alarms
=================== ========= ===========================================================
"""

from __future__ import annotations

import dataclasses
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
        float, 0.5, "score at which a point alarms (0.5: the calibrated alarm level, see calibration.py)", minimum=1e-6, maximum=1.0
    ),
    "min_alarm_points": Parameter(
        int, 1, "k: alarm points needed within confirm_window before alarming (1 = off)", minimum=1, maximum=1000
    ),
    "confirm_window": duration_parameter("5min", "trailing duration in which min_alarm_points are counted"),
    "suppress": duration_parameter(
        "10min", "an alarm episode starting sooner than this after the previous one ended is dropped",
        positive=False,
    ),
    "merge_gap": duration_parameter(
        "2h", "alarm episodes separated by less than this are merged into one (and classified as one)",
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
    are the points flagged after post-processing (suppressed repeats removed);
    ``confirmed`` the points that passed the threshold and the k-of-n rule before
    suppression (detect() folds those repeats into the open episode).
    ``seasonal_component`` is the pure seasonal-profile part of ``expected`` (zeros or
    None without seasonality). ``components`` optionally holds per-component deviations
    in sigmas (engine specific, for diagnostics).
    """

    scores: np.ndarray
    expected: np.ndarray
    scale: np.ndarray
    alarms: np.ndarray
    seasonal_expected: np.ndarray | None = None
    components: dict[str, np.ndarray] = field(default_factory=dict)
    seasonal_component: np.ndarray | None = None
    confirmed: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class EngineOutput:
    """What :meth:`AnomalyDetectionEngine.analyse` returns: results, state to keep, scores."""

    results: list[AnomalyResult]
    state: Any
    scored: ScoredSeries
    start_index: int  # first analysed point


def confirm_alarms(
    scores: np.ndarray,
    timestamps_ns: np.ndarray,
    *,
    threshold: float,
    min_alarm_points: int = 1,
    confirm_window_ns: int = 0,
) -> np.ndarray:
    """Points with ``score >= threshold`` and at least ``min_alarm_points`` such points
    among those with timestamps in ``(t - confirm_window, t]``. Causal."""
    raw = np.asarray(scores, dtype=np.float64) >= threshold
    if min_alarm_points <= 1 or not raw.any():
        return raw
    counts = np.cumsum(raw)
    left = np.searchsorted(timestamps_ns, timestamps_ns - confirm_window_ns, side="right")
    before = np.where(left > 0, counts[np.maximum(left - 1, 0)], 0)
    return raw & ((counts - before) >= min_alarm_points)


def suppress_repeats(confirmed: np.ndarray, timestamps_ns: np.ndarray, suppress_ns: int) -> np.ndarray:
    """Episodes are maximal runs of confirmed points; an episode starting less than
    ``suppress`` after the last point of the previously *reported* episode is a repeat
    and dropped. Returns the points of the reported episodes. Causal."""
    confirmed = np.asarray(confirmed, dtype=bool)
    if suppress_ns <= 0 or not confirmed.any():
        return confirmed.copy()
    alarms = np.zeros_like(confirmed)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], confirmed.astype(np.int8), [0]])))
    last_end_ns: int | None = None
    for begin, end in zip(edges[0::2], edges[1::2], strict=True):  # [begin, end)
        if last_end_ns is not None and int(timestamps_ns[begin]) - last_end_ns < suppress_ns:
            continue
        alarms[begin:end] = True
        last_end_ns = int(timestamps_ns[end - 1])
    return alarms


def suppress_following_points(
    confirmed: np.ndarray, points: int, previous_start: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Point-counted suppression from the alarm's first point: a confirmed point starts
    an alarm unless it lies within ``points`` points after the previous alarm start; the
    ``points`` points after every alarm start are suppressed (whatever they score).
    ``previous_start``: index of the last alarm start before this array (negative, e.g.
    -3 = three points before its first point), for incremental calls.
    Returns (alarm starts, suppressed points). Causal; counted in points, not time.
    """
    confirmed = np.asarray(confirmed, dtype=bool)
    starts = np.zeros_like(confirmed)
    suppressed = np.zeros_like(confirmed)
    if points <= 0:
        return confirmed.copy(), suppressed
    n = len(confirmed)
    last = -points - 1 if previous_start is None else int(previous_start)
    suppressed[0:max(0, min(last + points + 1, n))] = True
    for i in np.flatnonzero(confirmed):
        if i - last > points:
            starts[i] = True
            last = int(i)
            suppressed[i + 1:min(i + points + 1, n)] = True
    return starts, suppressed


def last_start(starts: np.ndarray, previous_start: int | None) -> int | None:
    """Index of the last alarm start in ``starts`` (or ``previous_start``), relative to
    the array's first point; carry ``result - len(starts)`` to the next call."""
    idx = np.flatnonzero(starts)
    return int(idx[-1]) if idx.size else previous_start


def postprocess_alarms(
    scores: np.ndarray,
    timestamps_ns: np.ndarray,
    *,
    threshold: float,
    min_alarm_points: int = 1,
    confirm_window_ns: int = 0,
    suppress_ns: int = 0,
) -> np.ndarray:
    """:func:`confirm_alarms` then :func:`suppress_repeats`: the alarm points."""
    confirmed = confirm_alarms(
        scores, timestamps_ns, threshold=threshold,
        min_alarm_points=min_alarm_points, confirm_window_ns=confirm_window_ns,
    )
    return suppress_repeats(confirmed, timestamps_ns, suppress_ns)


def epoch_windows(timestamps_ns: np.ndarray, window_ns: int) -> np.ndarray:
    """Epoch-aligned window number of each timestamp: ``floor(t / window)``."""
    return np.floor_divide(timestamps_ns, window_ns)


def _window_bounds(timestamps_ns: np.ndarray, window: pd.Timedelta) -> np.ndarray:
    """[start, end) index slices of the epoch-aligned windows holding points (the trailing
    partial window included), via the shared TimeBasedWindowExtractor."""
    from analytics.core.windows import TimeBasedWindowExtractor

    extractor = TimeBasedWindowExtractor(window.to_pytimedelta(), window.to_pytimedelta(), partial="keep")
    return extractor.bounds(timestamps_ns)


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


def episode_context(series: MetricSeries, start: int, end: int, scored: ScoredSeries) -> Any:
    """The WindowContext of points ``[start, end)``.

    From ``start`` on, the expectations are *frozen* at what the engine expected just
    before the episode (its level at ``start`` plus the seasonal profile at each point):
    the baseline must not learn the anomaly it is explaining, or a level shift would look
    like a spike that came back.
    """
    from analytics.core.explain import WindowContext

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
    )


def explain_episode(series: MetricSeries, start: int, end: int, scored: ScoredSeries) -> AnomalyExplanation:
    """Classify and explain points ``[start, end)`` (classifier + templates of explain.py)."""
    from analytics.core.explain import explain_window

    return explain_window(episode_context(series, start, end, scored))


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

    def validate_params(self) -> None:  # noqa: B027 - a hook: engines override it, the default checks nothing
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

    def dump_state(self, state: Any) -> Any:
        """The state as JSON-able data for storage (None: nothing to keep)."""
        if state is None:
            return None
        to_dict = getattr(state, "to_dict", None)
        return to_dict() if callable(to_dict) else None

    def load_state(self, data: Any) -> Any:
        """Inverse of :meth:`dump_state`; engines with state override it. Data that no
        longer loads (e.g. an old version) gives None, so the engine simply refits."""
        return None

    def history_points_for_fit(self) -> int:
        """Context points a call WITHOUT a fitted state needs before the first new point
        (at the nominal step): what the engine fits or warms up on. ``history_points``
        is what an incremental call with a state needs; they are equal for engines whose
        state carries nothing the context could not rebuild (the default)."""
        return self.history_points

    # --- shared machinery ---------------------------------------------------------------

    def postprocess_carry(
        self, scores: np.ndarray, timestamps_ns: np.ndarray, *, suppress_points: int, carry: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """:meth:`postprocess` of new points continuing an earlier call: ``carry`` holds
        ``previous_start`` (index of the last alarm start relative to the first new
        point, or None), ``last_alarm_end_ns`` (last reported alarm point), ``open``
        (the previous call's last point was a reported alarm) and ``recent_hits_ns``
        (threshold crossings within ``confirm_window`` before, for the k-of-n rule).
        Returns (scores, alarms, confirmed, carry for the next call): the same as one
        :meth:`postprocess` call over all the points."""
        threshold = float(self.params["threshold"])
        k = int(self.params["min_alarm_points"])
        window_ns = int(self.duration("confirm_window").value)
        suppress_ns = int(self.duration("suppress").value)
        hits = [int(t) for t in carry.get("recent_hits_ns", [])]
        scores = np.asarray(scores, dtype=np.float64)
        n = len(scores)
        ts = np.asarray(timestamps_ns, dtype=np.int64)
        raw = scores >= threshold
        if k > 1 and hits:
            pre_ts = np.concatenate([np.asarray(hits, dtype=np.int64), ts])
            pre_scores = np.concatenate([np.ones(len(hits)), scores])
            confirmed = confirm_alarms(pre_scores, pre_ts, threshold=threshold, min_alarm_points=k,
                                       confirm_window_ns=window_ns)[len(hits):]
        else:
            confirmed = confirm_alarms(scores, ts, threshold=threshold, min_alarm_points=k,
                                       confirm_window_ns=window_ns)
        previous = carry.get("previous_start")
        starts = confirmed
        if suppress_points > 0:
            starts, suppressed = suppress_following_points(confirmed, suppress_points, previous)
            scores = np.where(suppressed, 0.0, scores)
        last_end = carry.get("last_alarm_end_ns")
        if last_end is not None and starts.any():
            # the earlier reported alarm as a prefix; a gap point unless it continues here
            pre = [True] if carry.get("open") else [True, False]
            pre_ts = [int(last_end)] if carry.get("open") else [int(last_end), int(last_end) + 1]
            alarms = suppress_repeats(np.concatenate([pre, starts]), np.concatenate([pre_ts, ts]),
                                      suppress_ns)[len(pre):]
        else:
            alarms = suppress_repeats(starts, ts, suppress_ns)
        if self.params["gate_scores"]:
            cap = np.nextafter(threshold, 0.0)
            scores = np.where(alarms, scores, np.minimum(scores, cap))
        new_hits: list[int] = []
        if k > 1 and n:
            new_hits = [t for t in hits + [int(t) for t in ts[raw]] if t > int(ts[-1]) - window_ns][-(k - 1):]
        nxt = None
        if suppress_points > 0:
            start = last_start(starts, previous)
            if start is not None and start - n >= -suppress_points - 1:
                nxt = start - n
        if alarms.any():
            last_end = int(ts[np.flatnonzero(alarms)[-1]])
        return scores, alarms, confirmed, {
            "previous_start": nxt, "last_alarm_end_ns": last_end, "recent_hits_ns": new_hits,
            "open": bool(alarms[-1]) if n else bool(carry.get("open")),
        }

    def postprocess(
        self, scores: np.ndarray, timestamps_ns: np.ndarray, *, suppress_points: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Post-process with the common parameters; returns (scores, alarms, confirmed),
        scores gated when ``gate_scores``.

        With ``suppress_points > 0`` (engines that count suppression in points, see
        :func:`suppress_following_points`) only the first point of an alarm alarms,
        and the scores of the ``suppress_points`` points after it are set to 0;
        ``confirmed`` keeps every point that passed the threshold, so detect() still
        folds a sustained anomaly into one episode.
        """
        threshold = float(self.params["threshold"])
        confirmed = confirm_alarms(
            scores,
            timestamps_ns,
            threshold=threshold,
            min_alarm_points=int(self.params["min_alarm_points"]),
            confirm_window_ns=int(self.duration("confirm_window").value),
        )
        starts = confirmed
        if suppress_points > 0:
            starts, suppressed = suppress_following_points(confirmed, suppress_points)
            scores = np.where(suppressed, 0.0, scores)
        alarms = suppress_repeats(starts, timestamps_ns, int(self.duration("suppress").value))
        if self.params["gate_scores"]:
            cap = np.nextafter(threshold, 0.0)
            scores = np.where(alarms, scores, np.minimum(scores, cap))
        return scores, alarms, confirmed

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
        contiguous (each result ends where the next starts; the first starts at the
        epoch-aligned window holding the first analysed point). Use :meth:`analyse` to
        also get the fitted state back."""
        return self.analyse(series, since=since, state=state).results

    def explain(
        self, result: AnomalyResult, series: MetricSeries, *, state: Any = None
    ) -> AnomalyExplanation:
        """The structured explanation of one result, rebuilt from the series (pass the
        state the result was detected with to reproduce it exactly)."""
        scored, _ = self.score(series, state)
        ts = series.timestamps
        start = int(ts.searchsorted(pd.Timestamp(result.window_start), side="left"))
        end = int(ts.searchsorted(pd.Timestamp(result.window_end), side="left"))
        if end <= start:
            raise ValueError("result: its window holds no point of the series")
        return explain_episode(series, start, end, scored)

    def _results(self, series: MetricSeries, scored: ScoredSeries, start: int) -> list[AnomalyResult]:
        n = len(series)
        if start >= n:
            return []
        window = self.duration("window")
        w_ns = int(window.value)
        bridge_ns = max(int(self.duration("suppress").value), int(self.duration("merge_gap").value))
        ts = series.timestamps.asi8[start:]
        bounds = _window_bounds(ts, window)
        active = scored.confirmed if scored.confirmed is not None else scored.alarms
        active = np.asarray(active[start:], dtype=bool)
        win_start_ns = (ts[bounds[:, 0]] // w_ns) * w_ns
        win_active = np.logical_or.reduceat(active, bounds[:, 0]) if len(bounds) else np.zeros(0, bool)

        # groups of windows: an episode is a run of active windows, bridging gaps shorter
        # than ``merge_gap`` or ``suppress`` (a repeat within it is folded in); normal
        # stretches between
        episodes: list[list[int]] = []  # [first window, last window]
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
        if cursor < len(bounds):
            groups.append((cursor, len(bounds) - 1, False))

        results: list[AnomalyResult] = []
        for i, (ga, gb, anomalous) in enumerate(groups):
            p0 = start + int(bounds[ga, 0])
            p1 = start + int(bounds[gb, 1])  # exclusive
            t0 = pd.Timestamp(int(win_start_ns[ga]), tz="UTC")
            if i + 1 < len(groups):
                t1 = pd.Timestamp(int(win_start_ns[groups[i + 1][0]]), tz="UTC")
            else:
                t1 = pd.Timestamp(int(win_start_ns[gb]) + w_ns, tz="UTC")
            score = float(np.clip(np.nan_to_num(np.max(scored.scores[p0:p1])), 0.0, 1.0))
            label = AnomalyType.NORMAL
            explanation = None
            magnitude = None
            if anomalous:
                explanation = explain_episode(series, p0, p1, scored)
                label = explanation.anomaly_type
                if label is AnomalyType.NORMAL:
                    # the classifier found no 4-sigma point against the frozen baseline
                    # (a level or volatility component alarmed): keep the engine's verdict;
                    # one window is a spike, longer a trend
                    label = AnomalyType.SPIKE if ga == gb else AnomalyType.TREND
                    explanation = dataclasses.replace(explanation, anomaly_type=label)
                    explanation = _rerender(explanation, series)
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
        return results


def _rerender(explanation: AnomalyExplanation, series: MetricSeries) -> AnomalyExplanation:
    from analytics.core.explain import ExplanationTemplateRegistry

    return dataclasses.replace(explanation, text=ExplanationTemplateRegistry().render(explanation, series))


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
    "confirm_alarms",
    "duration_parameter",
    "episode_context",
    "epoch_windows",
    "explain_episode",
    "last_start",
    "parse_duration",
    "postprocess_alarms",
    "suppress_following_points",
    "suppress_repeats",
]
