"""Say what kind of anomaly a window holds, in numbers and in a sentence.

The engines score points; ``ExplanationClassifier`` reads the shape of the deviation
around the flagged window and names it (``AnomalyType``); ``ExplanationTemplateRegistry``
turns the numbers into the sentence users read. ``explain_window`` does both.

How the classifier decides, in order (every threshold is a constructor parameter):

1. NORMAL if no point of the window deviates by ``min_sigma`` robust sigmas.
2. SPIKE if the deviation is short-lived: its longest same-direction run, followed
   up to ``spike_max_duration`` beyond the window's edges, lasts at most
   ``spike_max_duration``. A level shift caught by a short window runs on past it, so
   it is not a spike; at the very end of the data a deviation cannot be proven
   sustained yet, and is a spike until the next run sees more.
3. Otherwise the deviation is sustained. Compare its *level* (the mean deviation from
   the seasonal profile over the window) with its *shape* (the spread of that
   deviation). A level shift or a ramp moves the whole window one way, so the level
   dominates: TREND. A changed daily shape (the peak moved, the pattern inverted)
   pushes points both above and below the profile while the level stays where it was:
   SEASONAL. Without a seasonal profile there is no shape to compare with, so a
   sustained deviation is a TREND.

The level is measured over the flagged window rather than over a fixed longer span:
a short level shift averaged into a whole day would look normal and be misread as
seasonal. Level and shape are measured in the metric's own units, so the ratio does
not depend on how well the engine estimated its scale.
"""

from __future__ import annotations

import dataclasses
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from analytics.core.contracts import AnomalyExplanation, AnomalyType, Direction, MetricSeries


@dataclass(frozen=True, eq=False)
class WindowContext:
    """What an engine hands the classifier: the series, the flagged window
    ``series[start_index:end_index]`` and the engine's per-point arrays (all the
    series' length): causal ``expected`` value, robust sigma ``scale`` (> 0),
    calibrated ``scores`` in [0, 1], and the seasonal-profile expectation if the
    engine has one."""

    series: MetricSeries
    start_index: int
    end_index: int
    expected: np.ndarray
    scale: np.ndarray
    scores: np.ndarray
    seasonal_expected: np.ndarray | None = None

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
        for name in ("expected", "scale", "scores", "seasonal_expected"):
            value = getattr(self, name)
            if value is None and name == "seasonal_expected":
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


def _sampling_step(series: MetricSeries) -> timedelta:
    """The series' typical spacing: the median gap, robust to the odd missing point."""
    if len(series) < 2:
        return timedelta(0)
    return pd.Timedelta(int(np.median(np.diff(series.timestamps.asi8))), unit="ns").to_pytimedelta()


class ExplanationClassifier:
    """Labels a ``WindowContext`` SPIKE, TREND, SEASONAL or NORMAL (see the module doc).

    - ``min_sigma`` (4.0): a window is anomalous only if a point deviates this many
      robust sigmas. 4 rather than 3 because a long window of pure noise crosses 3σ
      too often (once per ~370 Gaussian points).
    - ``extent_sigma`` (2.0): a point counts as part of the deviation from here on.
    - ``spike_max_duration`` (15 min): the longest a deviation may last (its run of
      points times the median sampling step) and still be a spike.
    - ``level_ratio`` (0.5): a sustained deviation is a TREND when its mean exceeds
      this fraction of its spread, else SEASONAL. A ramp from 0 scores ~1.7, a level
      shift far more, a changed daily shape over a day ~0.
    """

    def __init__(
        self,
        *,
        min_sigma: float = 4.0,
        extent_sigma: float = 2.0,
        spike_max_duration: timedelta = timedelta(minutes=15),
        level_ratio: float = 0.5,
    ) -> None:
        for name, value in (("min_sigma", min_sigma), ("extent_sigma", extent_sigma), ("level_ratio", level_ratio)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        if extent_sigma > min_sigma:
            raise ValueError("extent_sigma: must not exceed min_sigma")
        if not isinstance(spike_max_duration, timedelta) or spike_max_duration <= timedelta(0):
            raise ValueError(f"spike_max_duration: must be a positive timedelta, got {spike_max_duration!r}")
        self.min_sigma = float(min_sigma)
        self.extent_sigma = float(extent_sigma)
        self.spike_max_duration = spike_max_duration
        self.level_ratio = float(level_ratio)

    def classify(self, ctx: WindowContext) -> AnomalyExplanation:
        series, window = ctx.series, ctx.window
        z = (series.values - ctx.expected) / ctx.scale
        peak = ctx.start_index + int(np.argmax(np.abs(z[window])))
        strength = float(ctx.scores[window].max())

        if abs(z[peak]) < self.min_sigma:
            return self._explain(ctx, AnomalyType.NORMAL, peak, z, 1.0 - strength)

        step = _sampling_step(series)
        duration = step * self._deviation_run(ctx, z, step)
        short = 1.0 - duration / self.spike_max_duration  # >= 0 when short enough for a spike
        if short >= 0:
            return self._explain(ctx, AnomalyType.SPIKE, peak, z, strength * (0.5 + 0.5 * short))

        if ctx.seasonal_expected is None:  # nothing to tell a trend from a changed shape: hedge
            return self._explain(ctx, AnomalyType.TREND, peak, z, 0.5 * strength)
        deviation = series.values[window] - ctx.seasonal_expected[window]
        spread = float(deviation.std())
        ratio = abs(float(deviation.mean())) / spread if spread > 0 else math.inf
        margin = min(abs(ratio - self.level_ratio) / self.level_ratio, 1.0)
        confidence = strength * (0.5 + 0.5 * margin)
        if ratio >= self.level_ratio:
            return self._explain(ctx, AnomalyType.TREND, peak, z, confidence)
        zs = (series.values - ctx.seasonal_expected) / ctx.scale
        seasonal_peak = ctx.start_index + int(np.argmax(np.abs(zs[window])))
        return self._explain(ctx, AnomalyType.SEASONAL, seasonal_peak, zs, confidence, ctx.seasonal_expected)

    def _deviation_run(self, ctx: WindowContext, z: np.ndarray, step: timedelta) -> int:
        """Points in the longest same-direction deviation that touches the window.

        The run may extend up to ``spike_max_duration`` past either edge, so a level
        shift caught by a short window still shows as long. A median of three
        neighbours first removes lone noise points (which would otherwise chain into
        long runs) and lone gaps in a real deviation.
        """
        reach = int(self.spike_max_duration / step) + 1 if step else 1
        lo, hi = max(ctx.start_index - reach, 0), min(ctx.end_index + reach, len(z))
        segment = z[lo:hi]
        if segment.size >= 3:
            smoothed = np.median(np.stack([segment[:-2], segment[1:-1], segment[2:]]), axis=0)
            segment = np.r_[segment[0], smoothed, segment[-1]]
        window = slice(ctx.start_index - lo, ctx.end_index - lo)
        longest = 0
        for sign in (1.0, -1.0):
            edges = np.diff(np.r_[0, (sign * segment >= self.extent_sigma).astype(np.int8), 0])
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            touching = (starts < window.stop) & (ends > window.start)
            if touching.any():
                longest = max(longest, int((ends - starts)[touching].max()))
        return longest

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


def format_value(value: float, unit: str = "") -> str:
    """A number as people read it in that unit: 97.3%, 250 ms, 1.2 s, 1.5 GiB, 0.042."""
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("bytes", "B"):
        size, prefixes = abs(value), ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
        power = 0
        while size >= 1024 and power < len(prefixes) - 1:
            size /= 1024
            power += 1
        sign = "-" if value < 0 else ""
        return f"{sign}{size:.0f} B" if power == 0 else f"{sign}{size:.1f} {prefixes[power]}"
    if unit == "ms" and abs(value) >= 1000:
        return f"{_format_number(value / 1000)} s"
    number = _format_number(value)
    return f"{number} {unit}" if unit else number


def _format_number(value: float) -> str:
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 1 or size == 0:
        return f"{value:.1f}"
    return f"{value:.2g}"


def format_duration(delta: timedelta) -> str:
    """45 s, 3 min, 2 h, 1.5 h, 3 d."""
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600, 1):g} h"
    return f"{round(seconds / 86400, 1):g} d"


def _format_time(moment: datetime) -> str:
    moment = pd.Timestamp(moment).tz_convert("UTC")
    return f"{moment:%H:%M:%S} UTC" if moment.second else f"{moment:%H:%M} UTC"


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
            "sigma": f"{explanation.deviation_sigma:+.1f}σ",
            "percent": "n/a" if percent is None else f"{percent:+.0f}%",
            "direction": explanation.direction.value,
            "verb": _VERBS[explanation.anomaly_type, explanation.direction],
            "start": _format_time(explanation.start),
            "end": _format_time(explanation.end),
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
