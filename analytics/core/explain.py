"""Say what kind of anomaly a window holds, in numbers and in a sentence.

The engines score points; ``ExplanationClassifier`` reads the shape of the deviation
around the flagged window and names it (``AnomalyType``); ``ExplanationTemplateRegistry``
turns the numbers into the sentence users read. ``explain_window`` does both.

How the classifier decides, in order (every threshold is a constructor parameter):

1. NORMAL if no point of the window deviates by ``min_sigma`` robust sigmas from the
   engine's expectation (or from its time-of-day expectation, when that deviation is
   larger: a day whose shape changed can look level against a short-term baseline),
   unless the moved-day clue (step 3) explains the window: SEASONAL. A moved day keeps
   its values within the day's usual range, so its windows need not hold an outstanding
   point (the engine alarms on them for their shape).
2. SPIKE if the deviation is short-lived: its longest same-direction run beyond
   ``extent_sigma``, followed up to ``spike_max_duration`` past the window's edges,
   lasts at most ``spike_max_duration``; or the peak stands ``spike_prominence`` times
   above everything else around it and stays beyond half its height for at most
   ``spike_max_duration`` (a 30-sigma spike followed by an hour of slightly wrong
   baseline is still a spike). At the very end of the data a deviation cannot be
   proven sustained yet, and is a spike until the next run sees more. A short deviation
   no larger than the range of the engine's seasonal profile over the period before it may
   be a fragment of a moved day (the engine reports a moved day mostly as such
   fragments): it is a spike only if the moved-day clue (step 3) does not explain it.
   Beyond that range moving the day cannot explain it: a spike.
3. Otherwise the deviation is sustained: a changed daily shape (SEASONAL: the daily
   peak moved, the pattern inverted) or a level shift or ramp (TREND). With the
   engine's fitted seasonal profile (``WindowContext.seasonal_profile``), the moved-day
   clue of :mod:`analytics.core.classification` decides: SEASONAL when, over the period
   ending with the episode or the one starting with it, the profile moved by at least
   ``min_day_shift`` fits with a residual below ``moved_day_fit`` times the unmoved
   profile's and below ``usual_misfit`` times what the unmoved profile leaves over the
   period before (it fits about as well as the usual day normally does); otherwise
   TREND. The period starting with the episode counts only when the data reach its
   end. The day before the period ending with the episode counts too (the day after a
   moved day alarms against it: its echo) when the period ending with the episode fits
   the unmoved profile within ``usual_misfit`` times what the moved one leaves on that
   day before (today is a usual day). Without a profile (or a period of data before the episode), the *usual
   curve* is what the series did over the same hours one ``period`` earlier (a
   15-minute running median). Three clues (:class:`ShapeEvidence`), each with a
   physical meaning, decide in this order:

   - **the day moved in time**: the usual curve shifted by 1 h to ``max_shift``
     either way fits the episode better than at the same time of day (both allowed a
     level and a steady drift of their own): ``fit_ratio`` of the residuals below
     ``max_shift_fit`` makes it SEASONAL;
   - **a steady drift**: a drift explains at least ``max_seasonal_drift`` of the gap
     to the usual curve (R²): a ramp, TREND;
   - **a step**: the largest change between consecutive 5-sample means around the
     episode reaches ``max_seasonal_step`` robust sigmas: a level shift, TREND;
   - otherwise the gap came gradually and does not drift one way: SEASONAL.
4. Without a seasonal profile from the engine there is no usual shape to speak of: a
   sustained deviation is a TREND. With less than ``period + max_shift`` of history
   before the episode (an incremental run holds a few hours), the level rule decides:
   the mean deviation from the seasonal profile against its spread; a level shift or a
   ramp moves the whole window one way (TREND at ``level_ratio`` and above), a changed
   shape pushes points both ways (SEASONAL).

The thresholds were chosen on the simulator's seeds 1-20 (never on the acceptance seeds
101-105), keeping the textbook cases of tests/core/test_explain.py at 90 % or more;
docs/evaluation.md (Simulated fleet) has the search and the figures.
"""

from __future__ import annotations

import dataclasses
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from analytics.core.classification import moved_days
from analytics.core.contracts import AnomalyExplanation, AnomalyType, Direction, MetricSeries
from analytics.core.formatting import format_duration, format_moment, format_sigma, format_value
from analytics.core.timestamps import as_ns


@dataclass(frozen=True, eq=False)
class WindowContext:
    """What an engine hands the classifier: the series, the flagged window
    ``series[start_index:end_index]`` and the engine's per-point arrays (all the
    series' length): causal ``expected`` value, robust sigma ``scale`` (> 0),
    calibrated ``scores`` in [0, 1], the seasonal-profile expectation if the engine has
    one, and the engine's fitted seasonal profile itself (``seasonal_profile``: the pure
    time-of-day part, without the level) if it has one."""

    series: MetricSeries
    start_index: int
    end_index: int
    expected: np.ndarray
    scale: np.ndarray
    scores: np.ndarray
    seasonal_expected: np.ndarray | None = None
    seasonal_profile: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.series, MetricSeries):
            raise ValueError("series: must be a MetricSeries")
        n = len(self.series)
        for name in ("start_index", "end_index"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{name}: must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not 0 <= self.start_index < self.end_index <= n:
            raise ValueError(
                f"end_index: need 0 <= start_index < end_index <= {n}, got [{self.start_index}, {self.end_index})"
            )
        for name in ("expected", "scale", "scores", "seasonal_expected", "seasonal_profile"):
            value = getattr(self, name)
            if value is None and name in ("seasonal_expected", "seasonal_profile"):
                continue
            array = np.asarray(value, dtype=np.float64)
            if array.shape != (n,):
                raise ValueError(f"{name}: must have the series' length {n}, got shape {array.shape}")
            if not np.isfinite(array).all():
                raise ValueError(f"{name}: must be finite")
            object.__setattr__(self, name, array)
        if (self.scale <= 0).any():
            raise ValueError("scale: must be > 0 everywhere")
        if ((self.scores < 0) | (self.scores > 1)).any():
            raise ValueError("scores: must be in [0, 1]")

    @property
    def window(self) -> slice:
        return slice(self.start_index, self.end_index)


def node_label(series: MetricSeries) -> str:
    return str(series.metadata.get("node") or series.node_id)


def _runs(segment: np.ndarray, level: float, window: slice) -> list[tuple[int, int, float]]:
    """(start, end, sign) of the same-sign runs of ``|segment| >= level`` that touch ``window``."""
    out = []
    for sign in (1.0, -1.0):
        edges = np.diff(np.r_[0, (sign * segment >= level).astype(np.int8), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        out += [(int(a), int(b), sign) for a, b in zip(starts, ends, strict=True) if a < window.stop and b > window.start]
    return out


def _less_level_and_drift(gaps: np.ndarray, timestamps_ns: np.ndarray) -> np.ndarray:
    """Each row of ``gaps`` less its least-squares level and steady drift in time."""
    hours = (timestamps_ns - timestamps_ns[0]) / 3.6e12
    design = np.column_stack([np.ones(len(hours)), hours - hours.mean()])
    residual: np.ndarray = gaps - gaps @ np.linalg.pinv(design).T @ design.T
    return residual


def _sampling_step(series: MetricSeries) -> timedelta:
    """The series' typical spacing: the median gap, robust to the odd missing point."""
    if len(series) < 2:
        return timedelta(0)
    return pd.Timedelta(int(np.median(np.diff(as_ns(series.timestamps)))), unit="ns").to_pytimedelta()


@dataclass(frozen=True)
class ShapeEvidence:
    """How a sustained episode compares with the usual curve (module doc, step 3)."""

    shift: timedelta  # the time shift of the usual curve that fits best (positive: later than usual)
    fit_ratio: float  # its residual / the residual of the usual curve at the same time (both with level and drift)
    step_sigma: float  # the largest change between consecutive 5-sample means, in robust sigmas
    drift: float  # share of the gap to the usual curve that a steady drift explains (0..1)


_STEP_SAMPLES = 5  # the step clue compares means of this many consecutive samples
_SHIFT_GRID = timedelta(minutes=10)  # time shifts tried
_MIN_SHIFT = timedelta(hours=1)  # shorter shifts are the same curve, not a moved one
_USUAL_SMOOTHING = "15min"  # running median that makes the usual curve


class ExplanationClassifier:
    """Labels a ``WindowContext`` SPIKE, TREND, SEASONAL or NORMAL (see the module doc).

    - ``min_sigma`` (4.0): a window is anomalous only if a point deviates this many
      robust sigmas. 4 rather than 3 because a long window of pure noise crosses 3σ
      too often (once per ~370 Gaussian points).
    - ``extent_sigma`` (2.0): a point counts as part of the deviation from here on.
    - ``spike_max_duration`` (15 min): the longest a deviation may last (its run of
      points times the median sampling step) and still be a spike.
    - ``spike_prominence`` (3.0): how many times the peak must exceed the deviation
      around it (its 90th percentile) to be timed at half its height.
    - ``max_shift_fit`` (0.75), ``max_seasonal_drift`` (0.7), ``max_seasonal_step``
      (6.0 sigmas): the clues' thresholds against the usual curve (module doc, step 3).
    - ``moved_day_fit`` (0.75), ``usual_misfit`` (1.5), ``min_day_shift`` (3 h): the
      moved-day clue against the engine's profile (module doc, step 3).
    - ``period`` (1 day) and ``max_shift`` (12 h): what the usual curve is and how far
      it may have moved.
    - ``level_ratio`` (0.5): with less history than ``period + max_shift``, a sustained
      deviation is a TREND when its mean exceeds this fraction of its spread, else
      SEASONAL. A ramp from 0 scores ~1.7, a level shift far more, a changed daily
      shape over a day ~0.
    """

    def __init__(
        self,
        *,
        min_sigma: float = 4.0,
        extent_sigma: float = 2.0,
        spike_max_duration: timedelta = timedelta(minutes=15),
        spike_prominence: float = 3.0,
        max_seasonal_step: float = 6.0,
        max_seasonal_drift: float = 0.7,
        max_shift_fit: float = 0.75,
        period: timedelta = timedelta(days=1),
        max_shift: timedelta = timedelta(hours=12),
        level_ratio: float = 0.5,
        moved_day_fit: float = 0.75,
        usual_misfit: float = 1.5,
        min_day_shift: timedelta = timedelta(hours=3),
    ) -> None:
        for name, value in (("min_sigma", min_sigma), ("extent_sigma", extent_sigma), ("level_ratio", level_ratio),
                            ("max_seasonal_step", max_seasonal_step), ("max_seasonal_drift", max_seasonal_drift),
                            ("max_shift_fit", max_shift_fit), ("spike_prominence", spike_prominence),
                            ("moved_day_fit", moved_day_fit), ("usual_misfit", usual_misfit)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        if extent_sigma > min_sigma:
            raise ValueError("extent_sigma: must not exceed min_sigma")
        for name, span in (("spike_max_duration", spike_max_duration), ("period", period), ("max_shift", max_shift),
                           ("min_day_shift", min_day_shift)):
            if not isinstance(span, timedelta) or span <= timedelta(0):
                raise ValueError(f"{name}: must be a positive timedelta, got {span!r}")
        if not _MIN_SHIFT <= max_shift <= period:
            raise ValueError(f"max_shift: must be between {format_duration(_MIN_SHIFT)} and the period")
        if min_day_shift > max_shift:
            raise ValueError("min_day_shift: must not exceed max_shift")
        self.min_sigma = float(min_sigma)
        self.extent_sigma = float(extent_sigma)
        self.spike_max_duration = spike_max_duration
        self.spike_prominence = float(spike_prominence)
        self.max_seasonal_step = float(max_seasonal_step)
        self.max_seasonal_drift = float(max_seasonal_drift)
        self.max_shift_fit = float(max_shift_fit)
        self.period = period
        self.max_shift = max_shift
        self.level_ratio = float(level_ratio)
        self.moved_day_fit = float(moved_day_fit)
        self.usual_misfit = float(usual_misfit)
        self.min_day_shift = min_day_shift

    def classify(self, ctx: WindowContext) -> AnomalyExplanation:
        series, window = ctx.series, ctx.window
        # the deviation from the engine's expectation, or from its time-of-day expectation
        # when that one is larger (a day whose shape changed may look level against the first)
        expected = ctx.expected
        z = (series.values - expected) / ctx.scale
        if ctx.seasonal_expected is not None:
            zs = (series.values - ctx.seasonal_expected) / ctx.scale
            if np.abs(zs[window]).max() > np.abs(z[window]).max():
                expected, z = ctx.seasonal_expected, zs
        peak = ctx.start_index + int(np.argmax(np.abs(z[window])))
        strength = float(ctx.scores[window].max())

        if abs(z[peak]) < self.min_sigma:
            # a moved day keeps the day's values within their usual range: no point need
            # stand out, the shape does
            if ctx.seasonal_expected is not None:
                moved = self._moved_day_margin(ctx)
                if moved is not None and moved[0]:
                    return self._seasonal(ctx, ctx.seasonal_expected, strength * (0.5 + 0.5 * min(moved[1], 1.0)))
            return self._explain(ctx, AnomalyType.NORMAL, peak, z, 1.0 - strength, expected)

        short = self._spike_shortness(ctx, z, peak)
        # a short deviation within the day's own range may be a fragment of a moved day
        # (the moved-day clue decides); beyond that range moving the day cannot explain it
        fragment = short >= 0 and self._within_daily_range(ctx, peak, expected)
        moved = None
        if ctx.seasonal_expected is not None and (short < 0 or fragment):
            moved = self._moved_day_margin(ctx)
        if short >= 0 and not (moved is not None and moved[0]):
            return self._explain(ctx, AnomalyType.SPIKE, peak, z, strength * (0.5 + 0.5 * short), expected)

        if ctx.seasonal_expected is None:  # nothing to tell a trend from a changed shape: hedge
            return self._explain(ctx, AnomalyType.TREND, peak, z, 0.5 * strength, expected)
        if moved is not None:
            seasonal, margin = moved
        elif (evidence := self.shape_evidence(ctx)) is None:
            seasonal, margin = self._level_rule(ctx, ctx.seasonal_expected)
        else:
            seasonal, margin = self.weigh(evidence)
        confidence = strength * (0.5 + 0.5 * min(margin, 1.0))
        if not seasonal:
            return self._explain(ctx, AnomalyType.TREND, peak, z, confidence, expected)
        return self._seasonal(ctx, ctx.seasonal_expected, confidence)

    def _seasonal(self, ctx: WindowContext, seasonal_expected: np.ndarray, confidence: float) -> AnomalyExplanation:
        """The SEASONAL explanation, quoting the point furthest from the time-of-day expectation."""
        zs = (ctx.series.values - seasonal_expected) / ctx.scale
        seasonal_peak = ctx.start_index + int(np.argmax(np.abs(zs[ctx.window])))
        return self._explain(ctx, AnomalyType.SEASONAL, seasonal_peak, zs, confidence, seasonal_expected)

    def _within_daily_range(self, ctx: WindowContext, peak: int, expected: np.ndarray) -> bool:
        """Whether the peak's deviation is at most the range of the engine's seasonal profile
        over the period before the episode (what moving the day can change a value by)."""
        if ctx.seasonal_profile is None:
            return False
        ts = as_ns(ctx.series.timestamps)
        first = int(np.searchsorted(ts, ts[ctx.start_index] - pd.Timedelta(self.period).value))
        day = ctx.seasonal_profile[first:ctx.start_index]
        return day.size > 0 and abs(ctx.series.values[peak] - expected[peak]) <= float(day.max() - day.min())

    def _moved_day_margin(self, ctx: WindowContext) -> tuple[bool, float] | None:
        """(seasonal?, margin) from the moved-day clue; None without the engine's profile or
        a period of data before the episode."""
        if ctx.seasonal_profile is None:
            return None
        found = moved_days(ctx.series, ctx.seasonal_profile, ctx.start_index, ctx.end_index,
                           period=self.period, max_shift=self.max_shift)
        if not found:
            return None
        # the day before counts only when the period ending with the episode is a usual day
        # (the alarm is the moved day's echo in the engine's day-to-day comparison)
        ending = [day.unmoved for day in found if day.period == "ending"]
        usual_today = bool(ending) and all(ending[0] < self.usual_misfit * day.residual
                                           for day in found if day.period == "day before")
        margins = [min(1 - day.fit_ratio / self.moved_day_fit, 1 - day.usual_ratio / self.usual_misfit)
                   for day in found if abs(day.shift) >= self.min_day_shift and (usual_today or day.period != "day before")]
        best = max(margins, default=-1.0)
        return best > 0, abs(best)

    def weigh(self, evidence: ShapeEvidence) -> tuple[bool, float]:
        """(seasonal?, margin >= 0) from the clues, in order (module doc, step 3)."""
        shift_margin = 1 - evidence.fit_ratio / self.max_shift_fit
        if shift_margin > 0:  # the usual day, moved in time, fits
            return True, shift_margin
        if evidence.drift >= self.max_seasonal_drift:  # drifted steadily: a ramp
            return False, (evidence.drift - self.max_seasonal_drift) / (1 - self.max_seasonal_drift)
        if evidence.step_sigma >= self.max_seasonal_step:  # arrived in one step: a level shift
            return False, evidence.step_sigma / self.max_seasonal_step - 1
        return True, 1 - evidence.step_sigma / self.max_seasonal_step  # gradual, no steady drift

    def _level_rule(self, ctx: WindowContext, seasonal_expected: np.ndarray) -> tuple[bool, float]:
        """(seasonal?, margin) from the level of the deviation against its spread."""
        deviation = ctx.series.values[ctx.window] - seasonal_expected[ctx.window]
        spread = float(deviation.std())
        ratio = abs(float(deviation.mean())) / spread if spread > 0 else math.inf
        return ratio < self.level_ratio, abs(ratio - self.level_ratio) / self.level_ratio

    def shape_evidence(self, ctx: WindowContext) -> ShapeEvidence | None:
        """The clues of a changed daily shape; None with less than ``period + max_shift``
        of history before the window, or fewer than 3 points in it."""
        series = ctx.series
        ts = as_ns(series.timestamps)
        s, e = ctx.start_index, ctx.end_index
        period, max_shift = pd.Timedelta(self.period).value, pd.Timedelta(self.max_shift).value
        if e - s < 3 or ts[0] > ts[s] - period - max_shift:
            return None
        first = int(np.searchsorted(ts, ts[s] - period - max_shift - pd.Timedelta(_USUAL_SMOOTHING).value))
        history = pd.Series(series.values[first:s], index=series.timestamps[first:s])
        usual = history.rolling(_USUAL_SMOOTHING, center=True).median().to_numpy()
        past = ts[first:s]
        grid = pd.Timedelta(_SHIFT_GRID).value
        shifts = np.arange(-(max_shift // grid), max_shift // grid + 1) * grid  # positive: the curve came later
        targets = ts[s:e][None, :] - period - shifts[:, None]
        usable = targets.max(axis=1) < ts[s]  # the reference must lie before the episode
        moved = usable & (np.abs(shifts) >= pd.Timedelta(_MIN_SHIFT).value)
        if not moved.any():
            return None
        reference = usual[np.clip(np.searchsorted(past, targets, side="right") - 1, 0, len(past) - 1)]
        # the gap to each (shifted) usual curve, less its best level and steady drift
        gaps = series.values[s:e][None, :] - reference
        rms = np.sqrt(np.mean(np.square(_less_level_and_drift(gaps, ts[s:e])), axis=1))
        same = int(np.flatnonzero(shifts == 0)[0])
        best = int(np.argmin(np.where(moved, rms, np.inf)))
        spread = float(gaps[same].std())
        means = np.convolve(series.values[max(0, s - 2 * _STEP_SAMPLES):e + 2 * _STEP_SAMPLES],
                            np.full(_STEP_SAMPLES, 1.0 / _STEP_SAMPLES), mode="valid")
        steps = np.abs(means[_STEP_SAMPLES:] - means[:-_STEP_SAMPLES])
        return ShapeEvidence(
            shift=pd.Timedelta(int(shifts[best])).to_pytimedelta(),
            fit_ratio=float(rms[best] / rms[same]) if rms[same] > 0 else 1.0,
            step_sigma=float(steps.max(initial=0.0)) / float(np.median(ctx.scale[ctx.window])),
            drift=1.0 - float(rms[same]) ** 2 / spread**2 if spread > 0 else 0.0,
        )

    def _spike_shortness(self, ctx: WindowContext, z: np.ndarray, peak: int) -> float:
        """``1 - duration / spike_max_duration`` of the deviation as a spike (>= 0: a spike).

        Its duration is the longest same-direction run beyond ``extent_sigma`` that
        touches the window; or, when the peak stands ``spike_prominence`` times above
        everything else around it, the run around the peak beyond half its height.
        Runs may extend up to ``spike_max_duration`` past either edge, so a level shift
        caught by a short window still shows as long. A median of three neighbours
        first removes lone noise points (which would otherwise chain into long runs)
        and lone gaps in a real deviation.
        """
        step = _sampling_step(ctx.series)
        reach = int(self.spike_max_duration / step) + 1 if step else 1
        lo, hi = max(ctx.start_index - reach, 0), min(ctx.end_index + reach, len(z))
        segment = z[lo:hi]
        if segment.size >= 3:
            smoothed = np.median(np.stack([segment[:-2], segment[1:-1], segment[2:]]), axis=0)
            segment = np.r_[segment[0], smoothed, segment[-1]]
        window = slice(ctx.start_index - lo, ctx.end_index - lo)
        longest = max((end - start for start, end, _ in _runs(segment, self.extent_sigma, window)), default=0)
        duration = step * longest
        if duration > self.spike_max_duration:
            at = peak - lo
            height = max(self.extent_sigma, abs(z[peak]) / 2)
            around = [(start, end) for start, end, sign in _runs(segment, height, window)
                      if start <= at < end and sign == np.sign(z[peak])]
            start, end = around[0] if around else (at, at + 1)
            rest = np.abs(np.r_[z[lo:lo + start], z[lo + end:hi]])
            prominence = abs(z[peak]) / max(float(np.quantile(rest, 0.9)) if rest.size else 0.0, self.extent_sigma)
            if prominence >= self.spike_prominence:
                duration = step * (end - start)
        return 1.0 - duration / self.spike_max_duration

    def _explain(
        self,
        ctx: WindowContext,
        anomaly_type: AnomalyType,
        peak: int,
        z: np.ndarray,
        confidence: float,
        expected: np.ndarray | None = None,
    ) -> AnomalyExplanation:
        series = ctx.series
        observed = float(series.values[peak])
        typical = float((ctx.expected if expected is None else expected)[peak])
        timestamps = series.timestamps
        return AnomalyExplanation(
            anomaly_type=anomaly_type,
            confidence=float(np.clip(confidence, 0.0, 1.0)),
            observed=observed,
            expected=typical,
            deviation_sigma=float(z[peak]),
            deviation_percent=None if typical == 0 else 100.0 * (observed - typical) / abs(typical),
            direction=Direction.UP if observed >= typical else Direction.DOWN,
            start=timestamps[ctx.start_index].to_pydatetime(),
            end=(timestamps[ctx.end_index - 1] + _sampling_step(series)).to_pydatetime(),
            metric_name=series.metric_name,
            node=node_label(series),
        )


# ----------------------------------------------------------------------------- text

DEFAULT_TEMPLATES: Mapping[AnomalyType, str] = {
    AnomalyType.SPIKE: "{metric} on {node} {verb} {observed} (typical {expected}, {sigma}) at {start} for {duration}",
    AnomalyType.TREND: (
        "{metric} on {node} {verb} from a typical {expected} to {observed} ({sigma}) over {duration} from {start}"
    ),
    AnomalyType.SEASONAL: (
        "{metric} on {node} deviated from its usual daily pattern: {observed} vs {expected} expected "
        "at this time of day ({sigma}), over {duration} from {start}"
    ),
    AnomalyType.NORMAL: (
        "{metric} on {node} stayed within its normal range over {duration} from {start} "
        "(furthest point {observed} vs typical {expected}, {sigma})"
    ),
}

_VERBS: Mapping[tuple[AnomalyType, Direction], str] = {
    (AnomalyType.SPIKE, Direction.UP): "spiked to",
    (AnomalyType.SPIKE, Direction.DOWN): "dropped to",
    (AnomalyType.TREND, Direction.UP): "rose",
    (AnomalyType.TREND, Direction.DOWN): "fell",
    (AnomalyType.SEASONAL, Direction.UP): "ran above",
    (AnomalyType.SEASONAL, Direction.DOWN): "ran below",
    (AnomalyType.NORMAL, Direction.UP): "stayed within",
    (AnomalyType.NORMAL, Direction.DOWN): "stayed within",
}

TEMPLATE_FIELDS = (
    "metric", "node", "observed", "expected", "sigma", "percent", "direction", "verb",
    "start", "end", "date", "duration", "confidence",
)


class ExplanationTemplateRegistry:
    """One ``str.format`` template per ``AnomalyType``; ``register`` overrides one.

    Templates may use any of ``TEMPLATE_FIELDS``; an unknown field is rejected when
    the template is registered, not when a sentence is rendered at 3 a.m.
    """

    def __init__(self, templates: Mapping[AnomalyType, str] | None = None) -> None:
        self._templates: dict[AnomalyType, str] = dict(DEFAULT_TEMPLATES)
        for anomaly_type, template in (templates or {}).items():
            self.register(anomaly_type, template)

    def register(self, anomaly_type: AnomalyType | str, template: str) -> None:
        try:
            anomaly_type = AnomalyType(anomaly_type)
        except ValueError:
            raise ValueError(f"anomaly_type: must be one of {[t.value for t in AnomalyType]}") from None
        if not isinstance(template, str) or not template.strip():
            raise ValueError("template: must be a non-empty string")
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as exc:
            raise ValueError(f"template: not a valid format string ({exc})") from None
        unknown = sorted(used - set(TEMPLATE_FIELDS))
        if unknown:
            raise ValueError(f"template: unknown field {unknown[0]!r}; available: {list(TEMPLATE_FIELDS)}")
        self._templates[anomaly_type] = template

    def template(self, anomaly_type: AnomalyType | str) -> str:
        return self._templates[AnomalyType(anomaly_type)]

    def render(self, explanation: AnomalyExplanation, series: MetricSeries) -> str:
        unit = str(series.metadata.get("unit") or "")
        percent = explanation.deviation_percent
        fields = {
            "metric": series.metric_name,
            "node": node_label(series),
            "observed": format_value(explanation.observed, unit),
            "expected": format_value(explanation.expected, unit),
            "sigma": format_sigma(explanation.deviation_sigma),
            "percent": "n/a" if percent is None else f"{percent:+.0f}%",
            "direction": explanation.direction.value,
            "verb": _VERBS[explanation.anomaly_type, explanation.direction],
            "start": format_moment(explanation.start),
            "end": format_moment(explanation.end),
            "date": f"{pd.Timestamp(explanation.start).tz_convert('UTC'):%Y-%m-%d}",
            "duration": format_duration(explanation.end - explanation.start),
            "confidence": f"{explanation.confidence:.0%}",
        }
        return self.template(explanation.anomaly_type).format(**fields)


def explain_window(
    ctx: WindowContext,
    classifier: ExplanationClassifier | None = None,
    templates: ExplanationTemplateRegistry | None = None,
) -> AnomalyExplanation:
    """Classify the window and fill in the sentence."""
    explanation = (classifier or ExplanationClassifier()).classify(ctx)
    text = (templates or ExplanationTemplateRegistry()).render(explanation, ctx.series)
    return dataclasses.replace(explanation, text=text)
