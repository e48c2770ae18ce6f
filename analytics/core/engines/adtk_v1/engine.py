"""The v1 engine class: parameters, sizes, fitting and scoring (see the package docstring)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import numpy as np

from analytics.core.contracts import MetricSeries
from analytics.core.engines.adtk_v1.explanations import ExplanationFitter
from analytics.core.engines.adtk_v1.state import AdtkFittedState, StreamState
from analytics.core.engines.adtk_v1.streaming import StreamScorer
from analytics.core.engines.adtk_v1.transforms import check_scales
from analytics.core.engines.base import NOMINAL_STEP_SECONDS, AnomalyDetectionEngine
from analytics.core.engines.parameters import COMMON_PARAMETERS, Parameter, duration_parameter
from analytics.core.engines.profiles import check_periods
from analytics.core.engines.registry import register_engine
from analytics.core.engines.scored import ScoredSeries
from analytics.core.timestamps import as_ns

# parameters that change what a fit learns; a state fitted with other values is refitted
_FIT_PARAMS = (
    "seasonal", "seasonal_periods", "seasonal_min_acf", "seasonal_min_cycles", "seasonal_smoothing", "spike_window",
    "seasonal_level_window", "fit_window", "relative_scale_floor", "baseline_points", "baseline_min_points",
    "scales", "range_floor", "seasonal_lag", "seasonal_lag_cycles", "level_weight", "seasonal_weight", "direction",
    "likelihood_window", "likelihood_min_points", "likelihood_short", "spike_gain", "spike_points", "block_points",
    "likelihood_refresh", "seasonal_reference", "seasonal_hold", "likelihood_block", "min_fit_points",
)


def _attach(state: AdtkFittedState, stream: StreamState) -> None:
    """Attach streamed statistics (up to the state's cursor) to an explanation fit."""
    state.stream = stream
    state.seasonal_lag_points = stream.lag
    state.likelihood_mean, state.likelihood_std = stream.lik_mean, stream.lik_std
    state.likelihood_count = int(stream.ring_likelihood[:, 2].sum() + stream.lik_open[2])


@register_engine
class AdtkV1Engine(AnomalyDetectionEngine):
    """The previous default engine, kept for comparison."""

    name: ClassVar[str] = "adtk_v1"
    parameters: ClassVar[Mapping[str, Parameter]] = {
        **COMMON_PARAMETERS,
        # scoring components (windows in points)
        "baseline_points": Parameter(int, 1000, "H: points of past data the level baseline and scales use",
                                     minimum=10, maximum=100_000),
        "baseline_min_points": Parameter(int, 30, "points needed before a baseline exists", minimum=2,
                                         maximum=100_000),
        "scales": Parameter(str, "1,5,20", "averaging lengths in points of the level deviation, comma separated",
                            check=check_scales),
        "range_floor": Parameter(float, 0.01, "scale floor: this fraction of the baseline window's range",
                                 minimum=0.0, maximum=1.0),
        "relative_scale_floor": Parameter(float, 1e-3, "scale floor relative to the baseline median",
                                          minimum=0.0, maximum=1.0),
        "seasonal": Parameter(
            str, "auto", "auto/on: seasonal-difference component once seasonal_lag_cycles periods of data exist "
            "(auto fits explanation profiles whose autocorrelation passes, on fits all); off: no seasonality",
            choices=("auto", "on", "off"),
        ),
        "seasonal_lag": duration_parameter("1d", "lag of the seasonal-difference component (in points at the "
                                           "fitted step)"),
        "seasonal_lag_cycles": Parameter(int, 0, "periods of data before the seasonal difference is used "
                                         "(0: from the start; it exists once one period is seen)",
                                         minimum=0, maximum=100),
        "level_weight": Parameter(float, 1.0, "weight of the level component (0 = off)", minimum=0.0, maximum=10.0),
        "seasonal_weight": Parameter(float, 1.0, "weight of the seasonal-difference component",
                                     minimum=0.0, maximum=10.0),
        "direction": Parameter(str, "both", "which deviations count", choices=("both", "up", "down")),
        # per-series likelihood
        "likelihood_window": Parameter(int, 10000, "points of past surprise a fit summarises (mean, std)",
                                       minimum=10, maximum=1_000_000),
        "likelihood_min_points": Parameter(int, 200, "past points needed before scoring", minimum=2,
                                           maximum=1_000_000),
        "likelihood_short": Parameter(int, 5, "points averaged into the recent surprise", minimum=1, maximum=1000),
        "spike_points": Parameter(int, 5, "spike component: a point against the median of this many points before "
                                  "(0 = off; at most the largest scale - 1)", minimum=0, maximum=1000),
        "spike_gain": Parameter(float, 0.6, "one-point path: z = max(z, spike_gain * (log1p(spike) - its mean) / "
                                "its std) lets an extreme single point through the likelihood_short average "
                                "(0 = off)", minimum=0.0, maximum=10.0),
        "block_points": Parameter(int, 50, "the baseline statistics (medians, scales, range) are refreshed from "
                                  "per-block summaries every this many points", minimum=1, maximum=100_000),
        "seasonal_hold": Parameter(float, 5.0, "a block whose median seasonal deviation exceeds this many "
                                   "seasonal sigmas is left out of the seasonal baseline, for at most one period "
                                   "(0 = off)", minimum=0.0, maximum=1000.0),
        "seasonal_reference": Parameter(str, "points", "what the seasonal difference subtracts: time (the last value "
                                        "in the same step-wide slot of the period, aligned on gappy data) or "
                                        "points (the value seasonal_lag points earlier)", choices=("time", "points")),
        "likelihood_refresh": Parameter(int, 50, "the likelihood mean and std are refreshed every this many points "
                                        "(likelihood_block must be a multiple)", minimum=1, maximum=1_000_000),
        "likelihood_block": Parameter(int, 500, "points per block of the likelihood window's sums (a multiple of "
                                      "block_points)", minimum=1, maximum=1_000_000),
        "suppress_points": Parameter(int, 150, "points after an alarm's first point whose scores are suppressed "
                                     "(0 = off)", minimum=0, maximum=1_000_000),
        # explanations (seasonal profile, expectation, quoted sigma)
        "seasonal_periods": Parameter(str, "1d,7d", "candidate profile periods, comma separated",
                                      check=check_periods),
        "seasonal_min_cycles": Parameter(int, 2, "cycles of data needed before a profile is fitted",
                                         minimum=2, maximum=100),
        "seasonal_smoothing": duration_parameter(
            "15min", "circular moving average over the fitted profile (slot means of few cycles are noisy)",
            positive=False),
        "seasonal_min_acf": Parameter(float, 0.3, "autocorrelation at the period lag needed in auto mode",
                                      minimum=-1.0, maximum=1.0),
        "spike_window": duration_parameter("15min", "explanations: expectation = median of this much past data"),
        "seasonal_level_window": duration_parameter("2h", "explanations: long baseline of deseasonalised data"),
        # fitting
        "fit_window": duration_parameter("14d", "past data a profile fit uses (weekly seasonality needs 14d)"),
        "refit_age": duration_parameter("1d", "refit the explanation profiles when the state's fit is older than "
                                        "this (the scores do not depend on it: their statistics are streamed)"),
        "min_fit_points": Parameter(int, 200, "points before the first fit; earlier points score 0",
                                    minimum=10, maximum=1_000_000),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._stream = StreamScorer(self.params)
        self._explanations = ExplanationFitter(self.params)

    def validate_params(self) -> None:
        if self.params["likelihood_min_points"] > self.params["likelihood_window"]:
            raise ValueError("likelihood_min_points: must not exceed likelihood_window")
        if self.params["likelihood_block"] % self.params["likelihood_refresh"]:
            raise ValueError("likelihood_block: must be a multiple of likelihood_refresh")

    # --- sizes ---------------------------------------------------------------------------

    def scale_points(self) -> list[int]:
        return self._stream.scale_points()

    def history_points_for(self, step_seconds: float) -> int:
        """Context points an incremental call (with a state) needs at this sampling step:
        the explanations' look-back (``spike_window``, ``seasonal_level_window``). The
        scores need none: the state carries every statistic they use."""
        return self._explanations.explain_points(step_seconds)

    @property
    def history_points(self) -> int:
        """Context points an incremental call needs before the first new point, at
        one-minute sampling (use :meth:`history_points_for` for another step)."""
        return self.history_points_for(NOMINAL_STEP_SECONDS)

    def warmup_points_for(self, step_seconds: float) -> int:
        """Points a stateless run streams before its statistics hold full windows: the
        seasonal lag, the seasonal difference's baseline blocks, the likelihood window
        and a block of slack."""
        lag = 0
        if self.params["seasonal"] != "off" and self.params["seasonal_weight"] > 0:
            lag = self._stream.seasonal_lag_points_for(step_seconds)
        b = self.params["block_points"]
        return int(lag + self._stream.ring_size() * b
                   + self._stream.likelihood_ring_size() * self.params["likelihood_block"] + b)

    def fit_history_points(self, step_seconds: float = NOMINAL_STEP_SECONDS) -> int:
        """Points a fit (or a call without a state) wants: the score statistics' warm-up
        and ``fit_window`` for the explanation profiles."""
        by_time = int(self.duration("fit_window").total_seconds() / step_seconds)
        return max(int(self.params["min_fit_points"]), by_time, self.warmup_points_for(step_seconds))

    def history_points_for_fit(self) -> int:
        return self.fit_history_points(NOMINAL_STEP_SECONDS)

    def _fit_fingerprint(self) -> dict[str, Any]:
        return {k: self.params[k] for k in _FIT_PARAMS}

    # --- fitting and scoring ---------------------------------------------------------------

    def fit(self, series: MetricSeries, *, end_index: int | None = None) -> AdtkFittedState:
        """Fit on the points before ``end_index`` (all by default): explanation profiles
        on the last ``fit_window``, and the scoring statistics streamed over all of them
        (a stateless pass, as a full run makes)."""
        ts = as_ns(series.timestamps)
        x = np.asarray(series.values, dtype=np.float64)
        end = len(ts) if end_index is None else int(end_index)
        stream = self._stream.new_stream(ts[:end])
        if end:
            self._stream.advance(stream, ts[:end], x[:end])
        state = self._explanations.fit_upto(ts, x, end, self._fit_fingerprint())
        _attach(state, stream)
        return state

    def _usable_stream(self, state: AdtkFittedState) -> bool:
        st = state.stream
        tail = max(max(self.scale_points()) - 1, self.params["spike_points"])
        return (
            st is not None and state.params == self._fit_fingerprint()
            and len(st.tail_x) == tail and len(st.tail_u) == self.params["likelihood_short"] - 1
        )

    def score(self, series: MetricSeries, state: AdtkFittedState | None = None) -> tuple[ScoredSeries, Any]:
        """Causal scores. Without a state: a stateless pass over the whole series (the
        scoring statistics streamed from its first point; explanation profiles fitted
        as in the module docstring); returns the state at its end. With a state: the
        points after the state's cursor are scored by advancing a copy of its streamed
        statistics (returned in the new state); points at or before the cursor were
        scored by an earlier call and are context only (score 0, no alarm)."""
        ts = as_ns(series.timestamps)
        x = np.asarray(series.values, dtype=np.float64)
        if state is not None and not isinstance(state, AdtkFittedState):
            raise ValueError(f"state: must be an AdtkFittedState, got {type(state).__name__}")
        n = len(x)
        if n == 0:
            empty = np.zeros(0)
            return ScoredSeries(empty, empty, empty, np.zeros(0, dtype=bool)), state
        scores = np.zeros(n)
        alarms = np.zeros(n, dtype=bool)
        confirmed = np.zeros(n, dtype=bool)
        level, seasonal, d, z = (np.full(n, np.nan) for _ in range(4))
        if state is None or state.stream is None or not self._usable_stream(state):
            ex, final = self._explanations.walk(ts, x, self._fit_fingerprint())
            stream = self._stream.new_stream(ts)
            first = 0
        else:
            ex = self._explanations.with_state(ts, x, state)
            stream = state.stream.copy()
            first = 0 if stream.cursor_ns is None else int(np.searchsorted(ts, stream.cursor_ns, side="right"))
            final = state
        evidence = np.zeros(n)
        if first < n:
            out, scores[first:], alarms[first:], confirmed[first:] = self._stream.score_stream(
                stream, ts[first:], x[first:], self.alarm_rules())
            level[first:], seasonal[first:], d[first:], z[first:] = out["level"], out["seasonal"], out["d"], out["z"]
            evidence[first:] = out["evidence"]
        if final is not None:
            final = dataclasses.replace(final, scales=dict(final.scales), params=dict(final.params))
            _attach(final, stream)
        components = {"level": level, "deviation": d, "likelihood": z}
        if stream.lag > 0:
            components["seasonal"] = seasonal
        return (
            ScoredSeries(
                scores=scores,
                expected=ex["expected"],
                scale=ex["scale"],
                alarms=alarms,
                seasonal_expected=ex.get("seasonal_expected"),
                components=components,
                seasonal_component=ex.get("seasonal"),
                confirmed=confirmed,
                evidence=evidence,
            ),
            final,
        )

    def load_state(self, data: Any) -> AdtkFittedState | None:
        if data is None:
            return None
        if isinstance(data, AdtkFittedState):
            return data
        try:
            return AdtkFittedState.from_dict(data)
        except (KeyError, TypeError, ValueError):
            return None  # unreadable or old version: refit

    def needs_refit(self, state: AdtkFittedState | None, now: datetime) -> bool:
        if state is None:
            return True
        return state.params != self._fit_fingerprint() or state.is_stale(now, self.duration("refit_age"))

    def refresh_state(self, series: MetricSeries, state: Any, since_index: int) -> Any:
        """Refit a stale (or differently configured) state on the points before
        ``since_index`` when there are enough of them; otherwise keep it (a stale state
        still scores: its streamed statistics are current, only the explanation profiles
        age; the caller should load ``history_points_for_fit`` next time). A refit of the
        explanation profiles keeps the streamed statistics; a changed configuration
        restreams them from the series."""
        if state is None or since_index <= 0 or since_index > len(series):
            return state
        now = series.timestamps[min(since_index, len(series) - 1)].to_pydatetime()
        if not self.needs_refit(state, now):
            return state
        enough = min(state.n_points, self.fit_history_points(state.step_seconds))
        changed = state.params != self._fit_fingerprint() or state.stream is None
        if changed:
            if since_index >= self.params["min_fit_points"]:
                return self.fit(series, end_index=since_index)
            return state
        if since_index >= enough:
            ts = as_ns(series.timestamps)
            fresh = self._explanations.fit_upto(ts, np.asarray(series.values, dtype=np.float64), since_index,
                                                self._fit_fingerprint())
            _attach(fresh, state.stream)
            return fresh
        return state