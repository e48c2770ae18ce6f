"""The ``adtk`` engine class: parameters, state handling, and the scoring pipeline
(components -> two views -> combined score -> alarms); see the package docstring."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from analytics.core.contracts import MetricSeries
from analytics.core.engines import calibration
from analytics.core.engines.adtk_v1.transforms import check_scales, parse_scales
from analytics.core.engines.adtk_v2 import components, likelihood
from analytics.core.engines.adtk_v2.explanations import Explained, ProfileFitter
from analytics.core.engines.adtk_v2.seasonal import SlotTable, slots_per_day
from analytics.core.engines.adtk_v2.state import FittedState, LagStream, StreamState
from analytics.core.engines.base import NOMINAL_STEP_SECONDS, AnomalyDetectionEngine
from analytics.core.engines.parameters import COMMON_PARAMETERS, Parameter, duration_parameter
from analytics.core.engines.profiles import check_periods, infer_step_seconds, parse_periods
from analytics.core.engines.registry import register_engine
from analytics.core.engines.rolling import nan_to_zero
from analytics.core.engines.scored import ScoredSeries
from analytics.core.timestamps import as_ns

STEP_POINTS = 200  # the sampling step is the median spacing of a stream's first points
FIVE_MINUTES = 300.0
RARITY_DAYS = 2.0  # the rarity window holds at least this many days of points
WEEK_SECONDS = 7 * 86_400.0  # the seasonal slot table holds one week: no reference beyond it
NOISE_SLOPE = (0.75, 1.5)  # log noise against log level: about 1 for multiplicative noise (0.5: counts)
NOISE_CORRELATION = 0.5
_NOT_COMPONENTS = ("scores", "alarms", "confirmed", "evidence", "scale", "magnitude")  # ScoredSeries fields, not components

# parameters the explanation profiles depend on (the rest changes the streamed statistics)
_PROFILE_PARAMS = ("seasonal", "seasonal_periods", "seasonal_min_acf", "seasonal_min_cycles", "seasonal_smoothing",
                   "fit_window", "spike_window", "seasonal_level_window")
_STREAM_PARAMS = ("log_values", "baseline_points", "block_points", "scales", "spike_points", "range_floor",
                  "level_noise_cap", "seasonal_periods", "seasonal_cycles", "likelihood_window", "likelihood_short",
                  "warmup_points", "spike_gain", "z_half", "direct_error", "rarity_window", "rarity_half", "rarity_prior_tail",
                  "minute_alarm_odds", "suppress_points")


@register_engine
class AdtkEngine(AnomalyDetectionEngine):
    """The product's default engine: an alarm needs a point both surprising for its
    series and rare in its recent history."""

    name: ClassVar[str] = "adtk"
    parameters: ClassVar[Mapping[str, Parameter]] = {
        **COMMON_PARAMETERS,
        # components
        "log_values": Parameter(str, "auto", "auto: a series whose first day is positive, with noise in "
                                "proportion to its level, is scored on log(x) from then on (request rates, "
                                "latencies, throughputs: on x a day-long scale is too small at the daily peak and "
                                "a dip smaller than a rise); off: always on x", choices=("auto", "off")),
        "baseline_points": Parameter(int, 1000, "H: points of recent history the baselines summarise (at least "
                                     "a day of points)",
                                     minimum=20, maximum=100_000),
        "block_points": Parameter(int, 10, "baselines are refreshed every this many points", minimum=1,
                                  maximum=10_000),
        "scales": Parameter(str, "1,5,20", "averaging lengths in points of the level and seasonal deviations",
                            check=check_scales),
        "spike_points": Parameter(int, 5, "a point is compared with the median of this many points before it",
                                  minimum=1, maximum=1000),
        "range_floor": Parameter(float, 0.01, "scales are at least this fraction of the recent range",
                                 minimum=0.0, maximum=1.0),
        "level_noise_cap": Parameter(float, 6.0, "level deviations are measured against at most this many "
                                     "local noise scales (the spike's; 0 = off)", minimum=0.0, maximum=1000.0),
        "seasonal_periods": Parameter(str, "1d,7d", "seasonal lags (and explanation profile periods)",
                                      check=check_periods),
        "seasonal_cycles": Parameter(int, 1, "per seasonal period, besides the value one period back, a second "
                                     "reference: the median of the values 1 to this many periods back (within a "
                                     "week; 1 = none), so an anomaly or excursion one period ago echoes less",
                                     minimum=1, maximum=7),
        # the two views
        "likelihood_window": Parameter(int, 10_000, "points of past surprise the surprise view summarises",
                                       minimum=500, maximum=1_000_000),
        "likelihood_short": Parameter(int, 5, "points averaged into the recent surprise", minimum=1, maximum=100),
        "warmup_points": Parameter(int, 200, "points before the surprise view speaks", minimum=10,
                                   maximum=1_000_000),
        "spike_gain": Parameter(float, 0.6, "weight of the one-point path of a single extreme point (0 = off)",
                                minimum=0.0, maximum=10.0),
        "direct_error": Parameter(bool, False, "surprise in standard deviations of the recent means themselves "
                                  "(right for autocorrelated data) instead of sigma / sqrt(likelihood_short)"),
        "z_half": Parameter(float, 3.8, "surprise (standard errors) at which the surprise view's odds are 1",
                            minimum=0.1, maximum=100.0),
        "rarity_window": Parameter(int, 2000, "points in which the rarity view counts larger values (at least two "
                                   "days of points)",
                                   minimum=100, maximum=1_000_000),
        "rarity_half": Parameter(float, 2.25, "rarity (-log10 p, corrected) at which the rarity view's odds are 1",
                                 minimum=0.1, maximum=100.0),
        "rarity_prior_tail": Parameter(float, 1.0, "prior scale of the rarity view's tail, in that of an exponential "
                                       "distribution through the 98 % quantile u (1: p = 0.02 ** (x / u)); it "
                                       "stands in for the values a young series lacks beyond u",
                                       minimum=0.01, maximum=100.0),
        "minute_alarm_odds": Parameter(float, 1.5, "evidence odds at the alarm level at one-minute sampling (1 at "
                                       "five minutes and coarser)", minimum=0.1, maximum=100.0),
        # alarms
        "suppress_points": Parameter(int, 100, "points after an alarm's first point that start no new alarm "
                                     "(their scores are set to 0)", minimum=0, maximum=1_000_000),
        # explanations
        "seasonal": Parameter(str, "auto", "explanation profiles: auto (periods whose autocorrelation passes "
                              "seasonal_min_acf), on, off", choices=("auto", "on", "off")),
        "seasonal_min_cycles": Parameter(int, 2, "periods of data before a profile is fitted", minimum=2,
                                         maximum=100),
        "seasonal_min_acf": Parameter(float, 0.3, "autocorrelation at the period lag needed in auto mode",
                                      minimum=-1.0, maximum=1.0),
        "seasonal_smoothing": duration_parameter("15min", "circular moving average over a fitted profile",
                                                 positive=False),
        "spike_window": duration_parameter("15min", "explanations: expectation = median of this much past data"),
        "seasonal_level_window": duration_parameter("2h", "explanations: long baseline of deseasonalised data"),
        "fit_window": duration_parameter("14d", "past data a profile fit uses"),
        "refit_age": duration_parameter("1d", "profiles older than this (in data time) are refitted"),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._profiles = ProfileFitter(self.params)
        self._settings: dict[float, components.ComponentSettings] = {}
        self._views: dict[float, likelihood.ViewSettings] = {}

    def validate_params(self) -> None:
        if self.params["baseline_points"] < 2 * self.params["block_points"]:
            raise ValueError("baseline_points: must hold at least two blocks of block_points")

    # --- sizes ---------------------------------------------------------------------------

    @property
    def history_points(self) -> int:
        """Context an incremental call (with a state) needs, at one-minute sampling: what
        the explanations look back over; the scores need none."""
        return self._profiles.look_back(NOMINAL_STEP_SECONDS)

    def history_points_for_fit(self) -> int:
        """Context a call without a state wants, at one-minute sampling: the longest
        window the statistics summarise (a week of seasonal references, the surprise
        view's window) and the profiles' ``fit_window``."""
        longest = max(p.total_seconds() for p in parse_periods(self.params["seasonal_periods"]))
        points = [longest / NOMINAL_STEP_SECONDS, self.params["likelihood_window"],
                  self.duration("fit_window").total_seconds() / NOMINAL_STEP_SECONDS]
        return int(math.ceil(max(points)))

    def _component_settings(self, step_seconds: float) -> components.ComponentSettings:
        if step_seconds not in self._settings:
            self._settings[step_seconds] = self._settings_for(step_seconds)
        return self._settings[step_seconds]

    def _view_settings(self, step_seconds: float) -> likelihood.ViewSettings:
        if step_seconds not in self._views:
            # at least RARITY_DAYS of points: a daily event has recurred before it is called rare
            window = max(self.params["rarity_window"], int(round(RARITY_DAYS * 86_400.0 / step_seconds)))
            self._views[step_seconds] = likelihood.ViewSettings(
                short=self.params["likelihood_short"],
                likelihood_blocks=max(1, self.params["likelihood_window"] // likelihood.LIKELIHOOD_BLOCK),
                warmup_points=self.params["warmup_points"],
                spike_gain=self.params["spike_gain"],
                direct_error=self.params["direct_error"],
                rarity_blocks=max(1, window // likelihood.REFRESH),
                rarity_prior_tail=self.params["rarity_prior_tail"],
            )
        return self._views[step_seconds]

    def _settings_for(self, step_seconds: float) -> components.ComponentSettings:
        per_day = slots_per_day(step_seconds)
        slot_seconds = 86_400.0 / per_day
        # per period: the value one period back, and the median of the values 1 to
        # seasonal_cycles periods back that the week's slot table holds (with 2 cycles: 1d, the
        # mean of 1d and 2d, 7d); the seasonal deviation is the smallest over them
        lags: dict[str, tuple[int, ...]] = {}
        for p in parse_periods(self.params["seasonal_periods"]):
            back = [k * p.total_seconds() for k in range(1, self.params["seasonal_cycles"] + 1)]
            group = tuple(max(1, int(round(s / slot_seconds))) for s in back if s == back[0] or s <= WEEK_SECONDS)
            lags[f"{int(back[0])}s"] = group[:1]
            if len(group) > 1:
                lags[f"{int(back[0])}s-median{len(group)}"] = group
        baseline = max(self.params["baseline_points"], int(round(86_400.0 / step_seconds)))  # at least a day
        return components.ComponentSettings(
            block=self.params["block_points"],
            keep=max(2, baseline // self.params["block_points"]),
            scales=tuple(parse_scales(self.params["scales"])),
            spike_points=self.params["spike_points"],
            range_floor=self.params["range_floor"],
            noise_cap=self.params["level_noise_cap"],
            lags=lags,
        )

    def alarm_odds(self, step_seconds: float) -> float:
        """The evidence odds at the alarm level: 1 at five-minute and coarser steps,
        ``minute_alarm_odds`` at one minute, geometrically between (finer sampling gives
        more points per day, each needing more evidence for as few false alarms a day)."""
        if step_seconds >= FIVE_MINUTES:
            return 1.0
        octaves = math.log(FIVE_MINUTES / step_seconds) / math.log(FIVE_MINUTES / 60.0)
        return float(self.params["minute_alarm_odds"] ** octaves)

    def _fingerprint(self) -> dict[str, Any]:
        return {k: self.params[k] for k in (*_STREAM_PARAMS, *_PROFILE_PARAMS)}

    # --- streaming -------------------------------------------------------------------------

    def new_stream(self, ts: np.ndarray) -> StreamState:
        step = infer_step_seconds(ts[:STEP_POINTS])
        cfg = self._component_settings(step)
        tail = cfg.tail
        return StreamState(
            step_seconds=step,
            slots=SlotTable.empty(slots_per_day(step)),
            lags={k: LagStream(np.zeros((0, 6)), np.zeros(0), np.full(tail, np.nan)) for k in cfg.lags},
            tail_x=np.full(tail, np.nan),
            tail_level=np.full((tail, 2), np.nan),
            tail_u=np.full(self.params["likelihood_short"] - 1, np.nan),
            deciding=self.params["log_values"] == "auto",
        )

    def _advance(self, st: StreamState, ts: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
        """Score new points and advance ``st``: the per-point arrays of the pipeline. While
        the scale is undecided, the first day of points is scored on x and kept; at its end
        the scale is decided (:func:`log_floor`) and, for a log scale, the statistics are
        rebuilt from the kept points' logs (their scores stand: causal, and one call over
        all points equals chained calls)."""
        if not st.deciding:
            return self._score(st, ts, x)
        decide = max(STEP_POINTS, int(round(86_400.0 / st.step_seconds)))
        k = min(len(x), decide - len(st.young_x))
        if st.young_start_ns is None:
            st.young_start_ns = int(ts[0])
        st.young_x = np.concatenate([st.young_x, x[:k]])
        st.young_ns = np.concatenate([st.young_ns, (ts[:k] - st.young_start_ns).astype(np.float64)])
        if len(st.young_x) < decide:
            return self._score(st, ts, x)
        head = self._score(st, ts[:k], x[:k])
        self._decide(st)
        if k == len(x):
            return head
        rest = self._score(st, ts[k:], x[k:])
        return {name: np.concatenate([head[name], rest[name]]) for name in head}

    def _decide(self, st: StreamState) -> None:
        """Decide the scale from the kept first day and drop it; for a log scale, replace
        the statistics (not the alarm carry) by those of the kept points' logs."""
        floor = log_floor(st.young_x, self.params["block_points"])
        assert st.young_start_ns is not None  # set with the first kept point
        young_ts = st.young_start_ns + st.young_ns.astype(np.int64)
        young_x = st.young_x
        st.deciding, st.young_start_ns, st.young_x, st.young_ns = False, None, np.zeros(0), np.zeros(0)
        if floor <= 0:
            return
        rebuilt = self.new_stream(young_ts)
        rebuilt.deciding, rebuilt.log_floor = False, floor
        self._statistics(rebuilt, young_ts, young_x)
        rebuilt.alarm = st.alarm
        for f in dataclasses.fields(StreamState):
            setattr(st, f.name, getattr(rebuilt, f.name))

    def _statistics(self, st: StreamState, ts: np.ndarray, x: np.ndarray) -> tuple[
            components.Components, np.ndarray, np.ndarray, np.ndarray, bool]:
        """Advance the statistics of ``st`` over new points: the components, the largest level
        or seasonal deviation, the two views, and whether ``x`` was scored on a log scale."""
        cfg = self._component_settings(st.step_seconds)
        logged = st.log_floor > 0
        comps = components.advance(st, ts, _on_scale(x, st.log_floor), cfg, relative_floor=not logged)
        # one row per component: the level and seasonal deviations at every scale, the spike
        stacked = np.array([*(comps.level[m] for m in cfg.scales), *(comps.seasonal[m] for m in cfg.scales),
                            comps.spike])
        deviation = nan_to_zero(stacked[:-1]).max(axis=0)  # the largest level or seasonal deviation
        views = self._view_settings(st.step_seconds)
        z = likelihood.surprise(st, deviation, comps.spike, views)
        rarity = likelihood.rarity(st, stacked, views)
        st.points += len(x)
        if len(x):
            st.cursor_ns = int(ts[-1])
        return comps, deviation, z, rarity, logged

    def _score(self, st: StreamState, ts: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
        """Score new points and advance ``st`` (statistics and alarm carry)."""
        cfg = self._component_settings(st.step_seconds)
        comps, deviation, z, rarity, logged = self._statistics(st, ts, x)
        evidence = calibration.combined_score(z, rarity, self.params["z_half"], self.params["rarity_half"],
                                              self.alarm_odds(st.step_seconds))
        scores, alarms, confirmed, st.alarm = self.postprocess(
            evidence, ts, suppress_points=self.params["suppress_points"], carry=st.alarm)
        largest = np.fmax(deviation, nan_to_zero(comps.spike))
        if logged:
            # deviations of log(x) are already ratios; the noise is quoted in x's units at the
            # geometric mean of the value and the level expected at that time of day (one period
            # back, the day-long median before one exists), so that a rise and a fall by the same
            # factor are as many of these sigmas, as on the log scale
            level = np.where(np.isnan(comps.seasonal_reference), comps.median, comps.seasonal_reference)
            magnitude, scale = largest, comps.local_scale * np.exp(0.5 * (_on_scale(x, st.log_floor) + level))
        else:
            magnitude, scale = calibration.ratio_sigmas(largest, x, comps.median), comps.local_scale
        out = {"scores": scores, "alarms": alarms, "confirmed": confirmed, "evidence": evidence, "surprise": z,
               "rarity": rarity, "deviation": deviation, "scale": scale, "spike": comps.spike,
               "magnitude": magnitude}
        for m in cfg.scales:
            out[f"level{m}"], out[f"seasonal{m}"] = comps.level[m], comps.seasonal[m]
        return out

    # --- the engine interface ----------------------------------------------------------------

    def score(self, series: MetricSeries, state: Any = None) -> tuple[ScoredSeries, Any]:
        """Causal scores. Without a state (or with one made by other parameters): the
        statistics are streamed from the series' first point and the explanation
        profiles fitted on the past as production would; the state returned holds the
        statistics at the series' end. With a state: the points after its cursor are
        scored by advancing a copy of its statistics; points at or before the cursor
        are context (score 0, no alarm)."""
        if state is not None and not isinstance(state, FittedState):
            raise ValueError(f"state: must be a FittedState, got {type(state).__name__}")
        ts = as_ns(series.timestamps)
        x = np.asarray(series.values, dtype=np.float64)
        n = len(x)
        if state is not None and state.params == self._fingerprint():
            stream = state.stream.copy()
            first = 0 if stream.cursor_ns is None else int(np.searchsorted(ts, stream.cursor_ns, side="right"))
            profiles, data_end = state.seasonal, state.data_end
            explained = self._profiles.arrays(ts, x, profiles, stream.step_seconds)
        else:
            stream = self.new_stream(ts)
            first = 0
            explained, profiles = self._profiles.walk(ts, x, stream.step_seconds)
            data_end = _end_time(ts)
        # A call holding nothing after the state's cursor is all context: there is nothing to
        # advance (the streaming windows need at least one new point).
        arrays = self._advance(stream, ts[first:], x[first:]) if first < n else self._nothing_new(stream)
        return self._scored(n, first, arrays, explained), FittedState(self._fingerprint(), stream, data_end, profiles)

    def _nothing_new(self, st: StreamState) -> dict[str, np.ndarray]:
        """The per-point arrays of ``_advance`` for zero new points."""
        empty = np.zeros(0)
        names = ["scores", "evidence", "surprise", "rarity", "deviation", "scale", "spike", "magnitude"]
        for m in self._component_settings(st.step_seconds).scales:
            names += [f"level{m}", f"seasonal{m}"]
        arrays = {name: empty for name in names}
        arrays["alarms"] = arrays["confirmed"] = np.zeros(0, dtype=bool)
        return arrays

    @staticmethod
    def _scored(n: int, first: int, arrays: dict[str, np.ndarray], explained: Explained) -> ScoredSeries:
        def full(name: str, fill: float = 0.0, dtype: type = np.float64) -> np.ndarray:
            out: np.ndarray = np.full(n, fill, dtype=dtype)
            out[first:] = arrays[name]
            return out

        return ScoredSeries(
            scores=full("scores"),
            expected=explained.expected,
            scale=full("scale", np.nan),
            alarms=full("alarms", False, bool),
            seasonal_expected=explained.seasonal_expected,
            components={k: full(k, np.nan) for k in arrays if k not in _NOT_COMPONENTS},
            seasonal_component=explained.seasonal,
            confirmed=full("confirmed", False, bool),
            evidence=full("evidence"),
            magnitude=full("magnitude"),
        )

    def fit(self, series: MetricSeries, *, end_index: int | None = None) -> FittedState:
        """The state after streaming the points before ``end_index`` (all by default)."""
        end = len(series) if end_index is None else int(end_index)
        _, state = self.score(series.slice(end=series.timestamps[end]) if end < len(series) else series)
        assert isinstance(state, FittedState)
        return state

    def load_state(self, data: Any) -> FittedState | None:
        if data is None or isinstance(data, FittedState):
            return data
        try:
            return FittedState.from_dict(data)
        except (KeyError, TypeError, ValueError):
            return None  # unreadable or another version: rebuilt from history

    def needs_refit(self, state: FittedState | None, now: datetime) -> bool:
        if state is None:
            return True
        return state.params != self._fingerprint() or state.profile_age(now) > self.duration("refit_age")

    def refresh_state(self, series: MetricSeries, state: Any, since_index: int) -> Any:
        """A state made with other parameters is rebuilt from the points before
        ``since_index``; stale profiles are refitted on them when the call holds enough
        of them (otherwise the old profiles stay: the scores do not depend on them)."""
        if state is None or since_index <= 0 or since_index > len(series):
            return state
        now = series.timestamps[min(since_index, len(series) - 1)].to_pydatetime()
        if not self.needs_refit(state, now):
            return state
        if state.params != self._fingerprint():
            return self.fit(series, end_index=since_index)
        ts = as_ns(series.timestamps)
        profiles = self._profiles.fit(ts, np.asarray(series.values, dtype=np.float64), since_index,
                                      state.stream.step_seconds)
        if not profiles:
            return state
        return FittedState(state.params, state.stream, _end_time(ts[:since_index]), profiles)


def _on_scale(x: np.ndarray, floor: float) -> np.ndarray:
    """The values as a stream scores them: ``log(max(x, floor))`` (NaN kept) if ``floor`` > 0."""
    if floor <= 0:
        return x
    with np.errstate(invalid="ignore"):
        return np.log(np.where(np.isnan(x), np.nan, np.fmax(x, floor)))


def log_floor(first: np.ndarray, block: int) -> float:
    """How a stream's values are scored, from its first day ``first``: 0 (as they are)
    unless they are all positive and their noise grows in proportion to their level
    (multiplicative noise, as request rates', latencies' and throughputs'): over blocks of
    ``block`` points, the log of the mean absolute deviation rises with the log of the
    median with a slope in ``NOISE_SLOPE`` and a correlation of at least
    ``NOISE_CORRELATION``. Then the values are scored as ``log(max(x, floor))``: a value at
    or below ``RATIO_FLOOR`` of the first day's median (zero, negative) counts as a fall to it."""
    first = first[np.isfinite(first)]
    m = len(first) // block
    if m < 4 or first.min() <= 0:
        return 0.0
    grid = first[:m * block].reshape(m, block)
    median = np.median(grid, axis=1)
    spread = np.mean(np.abs(grid - median[:, None]), axis=1)
    noisy = spread > 0
    if noisy.sum() < 4:
        return 0.0
    level, noise = np.log(median[noisy]), np.log(spread[noisy])
    if np.ptp(level) <= 0 or np.ptp(noise) <= 0:
        return 0.0
    slope = np.cov(level, noise)[0, 1] / np.var(level, ddof=1)
    if not (NOISE_SLOPE[0] <= slope <= NOISE_SLOPE[1] and np.corrcoef(level, noise)[0, 1] >= NOISE_CORRELATION):
        return 0.0
    return float(calibration.RATIO_FLOOR * np.median(first))


def _end_time(ts: np.ndarray) -> datetime | None:
    return pd.Timestamp(int(ts[-1]), tz="UTC").floor("us").to_pydatetime() if len(ts) else None
