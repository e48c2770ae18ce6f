"""The explanation classifier on simulated metrics, and the sentence templates.

The simulator: a noisy daily-seasonal baseline at one-minute resolution over five days,
with one injected anomaly. The expectation handed to the classifier is honest and
causal: the value at the same time yesterday (median of a quarter hour around it), and
a MAD scale over the previous day of residuals.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import AnomalyExplanation, AnomalyType, Direction, MetricSeries
from analytics.core.explain import (
    ExplanationClassifier,
    ExplanationTemplateRegistry,
    WindowContext,
    explain_window,
)
from analytics.core.formatting import format_value

DAY = 1440
DAYS = 5
EPOCH = pd.Timestamp("2024-03-04", tz="UTC")
CASES_PER_KIND = 60


def _profile(minute_of_day: np.ndarray, peak_hour: float) -> np.ndarray:
    return np.cos(2 * np.pi * (minute_of_day / 60 - peak_hour) / 24)


def _series(values: np.ndarray, unit: str = "%") -> MetricSeries:
    index = EPOCH + pd.to_timedelta(np.arange(len(values)), unit="min")
    return MetricSeries("tenant-1", "cluster-1", 42, "cpu_usage", index, values, {"unit": unit, "node": "node-042"})


def _context(values: np.ndarray, start: int, end: int, *, seasonal: bool = True) -> WindowContext:
    past = pd.Series(values)
    expected = past.shift(DAY).rolling(15, center=True, min_periods=1).median().bfill().to_numpy()
    residual = pd.Series(np.abs(values - expected))
    scale = 1.4826 * residual.rolling(DAY, min_periods=60).median().shift(1).bfill().to_numpy()
    z = np.abs(values - expected) / scale
    return WindowContext(
        _series(values), start, end, expected, scale, scores=1 - np.exp(-z / 3),
        seasonal_expected=expected if seasonal else None,
    )


def simulate(kind: str, rng: np.random.Generator) -> WindowContext:
    """One five-day series with a ``kind`` anomaly, and the window covering it."""
    minutes = np.arange(DAYS * DAY)
    level, amplitude, noise, peak = rng.uniform(30, 60), rng.uniform(8, 20), rng.uniform(0.8, 2.0), rng.uniform(10, 18)
    values = level + amplitude * _profile(minutes % DAY, peak) + rng.normal(0, noise, minutes.size)
    sign = rng.choice([-1.0, 1.0])
    at = int(rng.integers(2 * DAY, 4 * DAY))
    if kind == "spike":  # a few points up or down, then back
        width = int(rng.integers(1, 6))
        values[at:at + width] += sign * rng.uniform(6, 12) * noise
        return _context(values, at - int(rng.integers(0, 3)), at + width + int(rng.integers(0, 3)))
    if kind == "ramp":  # climbs over hours to a new plateau
        width = int(rng.integers(60, 240))
        delta = sign * rng.uniform(6, 15) * noise
        values[at:at + width] += np.linspace(0, delta, width)
        values[at + width:] += delta
        return _context(values, at, at + width)
    if kind == "level_shift":  # steps and stays; the window catches the first minutes to hours
        values[at:] += sign * rng.uniform(6, 15) * noise
        return _context(values, at, at + int(rng.integers(5, 180)))
    if kind == "seasonal":  # one day's shape changes (peak moves or inverts), its mean does not
        day = int(rng.integers(2, 4))
        minute = np.arange(DAY)
        if rng.random() < 0.5:
            shape = _profile(minute, peak + sign * rng.uniform(4, 9))
        else:
            shape = -_profile(minute, peak)
        values[day * DAY:(day + 1) * DAY] = level + amplitude * shape + rng.normal(0, noise, DAY)
        return _context(values, day * DAY, (day + 1) * DAY)
    if kind == "normal":
        return _context(values, at, at + int(rng.integers(5, 180)))
    raise AssertionError(kind)


EXPECTED_LABEL = {
    "spike": AnomalyType.SPIKE,
    "ramp": AnomalyType.TREND,
    "level_shift": AnomalyType.TREND,
    "seasonal": AnomalyType.SEASONAL,
    "normal": AnomalyType.NORMAL,
}


def test_classifier_labels_simulated_anomalies():
    classifier = ExplanationClassifier()
    accuracy, confusions = {}, {}
    for seed, (kind, label) in enumerate(EXPECTED_LABEL.items()):
        rng = np.random.default_rng(seed)
        got = collections.Counter(classifier.classify(simulate(kind, rng)).anomaly_type for _ in range(CASES_PER_KIND))
        accuracy[kind] = got[label] / CASES_PER_KIND
        confusions[kind] = {str(k): v for k, v in got.items()}
    report = ", ".join(f"{kind} {acc:.0%} {confusions[kind]}" for kind, acc in accuracy.items())
    assert min(accuracy.values()) >= 0.9, f"per-type accuracy: {report}"


def test_without_a_seasonal_profile_sustained_deviations_are_trends():
    rng = np.random.default_rng(7)
    classifier = ExplanationClassifier()
    for _ in range(10):
        ctx = simulate("seasonal", rng)
        ctx = WindowContext(ctx.series, ctx.start_index, ctx.end_index, ctx.expected, ctx.scale, ctx.scores)
        assert classifier.classify(ctx).anomaly_type is AnomalyType.TREND


def test_the_clues_measure_what_they_say():
    """A day whose peak moved: the usual curve moved by that much fits; a ramp drifts
    steadily; a level shift arrives in one step."""
    classifier = ExplanationClassifier()
    rng = np.random.default_rng(5)
    minutes = np.arange(DAYS * DAY)
    values = 40 + 15 * _profile(minutes % DAY, 14) + rng.normal(0, 1, minutes.size)
    day = slice(3 * DAY, 4 * DAY)
    moved = values.copy()
    moved[day] = 40 + 15 * _profile(minutes[day] % DAY, 20) + rng.normal(0, 1, DAY)  # 6 h later
    evidence = classifier.shape_evidence(_context(moved, day.start, day.stop))
    assert abs(evidence.shift - timedelta(hours=6)) <= timedelta(minutes=30)
    assert evidence.fit_ratio < 0.3

    at = 3 * DAY + 600
    ramp = values.copy()
    ramp[at:at + 180] += np.linspace(0, 12, 180)
    evidence = classifier.shape_evidence(_context(ramp, at, at + 180))
    assert evidence.drift > 0.8 and evidence.fit_ratio > 0.75

    shifted = values.copy()
    shifted[at:] += 10
    evidence = classifier.shape_evidence(_context(shifted, at, at + 120))
    assert evidence.step_sigma > 6 and evidence.drift < 0.7
    assert [classifier.classify(_context(v, at, at + w)).anomaly_type for v, w in ((ramp, 180), (shifted, 120))] == [
        AnomalyType.TREND, AnomalyType.TREND]
    assert classifier.classify(_context(moved, day.start, day.stop)).anomaly_type is AnomalyType.SEASONAL


@pytest.mark.parametrize(("height", "label"), [(40, AnomalyType.SPIKE), (5, AnomalyType.TREND)])
def test_a_prominent_spike_with_a_wrong_baseline_after_it_is_still_a_spike(height, label):
    """Three points far out, then an hour and a half of a baseline 3 sigma off: a 40-sigma
    peak stands out (a spike), a 5-sigma one does not (a sustained deviation)."""
    values = 40.0 + np.random.default_rng(2).normal(0, 1, 300)
    values[100:103] += height
    values[103:190] += 3
    ctx = WindowContext(_series(values), 95, 190, np.full(300, 40.0), np.ones(300), np.full(300, 0.9))
    assert ExplanationClassifier().classify(ctx).anomaly_type is label


def test_with_little_history_the_level_rule_decides():
    """An incremental run holds a few hours before its points: no usual day to compare
    with, so the level of the deviation against its spread decides."""
    rng = np.random.default_rng(9)
    ctx = simulate("seasonal", rng)
    start = ctx.start_index - DAY  # one day of history: less than period + max_shift
    short = WindowContext(
        _series(ctx.series.values[start:]), DAY, ctx.end_index - start, ctx.expected[start:], ctx.scale[start:],
        ctx.scores[start:], ctx.seasonal_expected[start:],
    )
    classifier = ExplanationClassifier()
    assert classifier.shape_evidence(short) is None and classifier.shape_evidence(ctx) is not None
    assert classifier.classify(short).anomaly_type is AnomalyType.SEASONAL  # a whole changed day: level ~0


def test_a_window_normal_against_the_short_baseline_is_judged_against_the_time_of_day():
    """The engine's short-term expectation can have followed a changed day; the
    deviation from the time-of-day expectation still counts."""
    values = 40.0 + np.random.default_rng(4).normal(0, 0.5, 200)
    values[100:160] += 10
    ctx = WindowContext(_series(values), 100, 160, values.copy(), np.ones(200), np.full(200, 0.8),
                        seasonal_expected=np.full(200, 40.0))
    explanation = ExplanationClassifier().classify(ctx)
    assert explanation.anomaly_type is not AnomalyType.NORMAL
    assert explanation.expected == 40.0 and explanation.deviation_sigma > 8


def test_explanation_numbers_describe_the_peak():
    values = np.full(120, 40.0) + np.random.default_rng(1).normal(0, 1, 120)
    values[60:63] = [70.0, 95.5, 80.0]
    ctx = WindowContext(
        _series(values), 58, 65, expected=np.full(120, 40.0), scale=np.full(120, 1.0),
        scores=np.where(np.arange(120) == 61, 0.99, 0.1),
    )
    explanation = ExplanationClassifier().classify(ctx)
    assert explanation.anomaly_type is AnomalyType.SPIKE
    assert explanation.observed == 95.5
    assert explanation.expected == 40.0
    assert explanation.deviation_sigma == pytest.approx(55.5)
    assert explanation.deviation_percent == pytest.approx(138.75)
    assert explanation.direction is Direction.UP
    assert explanation.start == EPOCH + timedelta(minutes=58)
    assert explanation.end == EPOCH + timedelta(minutes=65)
    assert 0.5 <= explanation.confidence <= 1.0
    assert (explanation.metric_name, explanation.node) == ("cpu_usage", "node-042")


def test_deviation_percent_is_none_when_expected_is_zero():
    values = np.zeros(30)
    values[10] = -5.0
    ctx = WindowContext(_series(values, unit=""), 10, 11, np.zeros(30), np.ones(30), np.full(30, 0.9))
    explanation = ExplanationClassifier().classify(ctx)
    assert explanation.deviation_percent is None
    assert explanation.direction is Direction.DOWN


def test_normal_window_is_normal_with_confidence_from_scores():
    values = 40.0 + np.random.default_rng(3).normal(0, 1, 100)
    ctx = WindowContext(_series(values), 10, 90, np.full(100, 40.0), np.ones(100) * 1.0, np.full(100, 0.2))
    explanation = ExplanationClassifier().classify(ctx)
    assert explanation.anomaly_type is AnomalyType.NORMAL
    assert explanation.confidence == pytest.approx(0.8)


def test_thresholds_are_parameters():
    values = np.full(60, 10.0)
    values[30] = 13.5  # 3.5 sigma: noise by default, a spike at min_sigma=3
    ctx = WindowContext(_series(values), 30, 31, np.full(60, 10.0), np.ones(60), np.full(60, 0.5))
    assert ExplanationClassifier().classify(ctx).anomaly_type is AnomalyType.NORMAL
    assert ExplanationClassifier(min_sigma=3).classify(ctx).anomaly_type is AnomalyType.SPIKE


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_sigma": 0}, "min_sigma"),
        ({"extent_sigma": -1}, "extent_sigma"),
        ({"extent_sigma": 5, "min_sigma": 4}, "extent_sigma"),
        ({"level_ratio": float("nan")}, "level_ratio"),
        ({"spike_max_duration": timedelta(0)}, "spike_max_duration"),
        ({"spike_prominence": 0}, "spike_prominence"),
        ({"max_shift_fit": -0.5}, "max_shift_fit"),
        ({"max_seasonal_step": float("inf")}, "max_seasonal_step"),
        ({"max_seasonal_drift": "high"}, "max_seasonal_drift"),
        ({"period": timedelta(hours=6), "max_shift": timedelta(hours=12)}, "max_shift"),
        ({"max_shift": timedelta(minutes=30)}, "max_shift"),
    ],
)
def test_classifier_rejects_bad_thresholds(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ExplanationClassifier(**kwargs)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start_index": 5, "end_index": 5}, "end_index"),
        ({"end_index": 11}, "end_index"),
        ({"start_index": 1.5}, "start_index"),
        ({"expected": np.zeros(9)}, "expected"),
        ({"scale": np.zeros(10)}, "scale"),
        ({"scores": np.full(10, 1.5)}, "scores"),
        ({"seasonal_expected": np.full(10, np.nan)}, "seasonal_expected"),
    ],
)
def test_window_context_validates(change, field):
    args = {
        "series": _series(np.arange(10.0)), "start_index": 2, "end_index": 4,
        "expected": np.zeros(10), "scale": np.ones(10), "scores": np.zeros(10),
    }
    with pytest.raises(ValueError, match=field):
        WindowContext(**(args | change))


def _explanation(anomaly_type=AnomalyType.SPIKE, **overrides) -> AnomalyExplanation:
    fields = {
        "anomaly_type": anomaly_type, "confidence": 0.9, "observed": 97.3, "expected": 41.0,
        "deviation_sigma": 5.2, "deviation_percent": 137.3, "direction": Direction.UP,
        "start": datetime(2024, 3, 4, 14, 5, tzinfo=UTC), "end": datetime(2024, 3, 4, 14, 8, tzinfo=UTC),
    }
    return AnomalyExplanation(**(fields | overrides))


def test_spike_sentence_carries_the_numbers():
    text = ExplanationTemplateRegistry().render(_explanation(), _series(np.zeros(3)))
    assert text == "cpu_usage on node-042 spiked to 97.3% (typical 41.0%, +5.2σ) at 2024-03-04 14:05 UTC for 3 min"


def test_a_sentence_caps_the_sigma_and_scales_the_unit_while_the_fields_stay_exact():
    explanation = _explanation(observed=123_456_789.0, expected=2_500_000.0, deviation_sigma=594.3)
    text = ExplanationTemplateRegistry().render(explanation, _series(np.zeros(3), unit="bytes/s"))
    assert text == ("cpu_usage on node-042 spiked to 123.5 MB/s (typical 2.5 MB/s, beyond +50σ) "
                    "at 2024-03-04 14:05 UTC for 3 min")
    assert (explanation.observed, explanation.deviation_sigma) == (123_456_789.0, 594.3)


def test_every_type_has_a_sentence_with_its_numbers():
    registry = ExplanationTemplateRegistry()
    series = _series(np.zeros(3), unit="ms")
    for anomaly_type in AnomalyType:
        explanation = _explanation(
            anomaly_type, observed=1250.0, expected=310.0, deviation_sigma=-6.04, direction=Direction.DOWN,
            end=datetime(2024, 3, 4, 16, 5, tzinfo=UTC),
        )
        text = registry.render(explanation, series)
        for piece in ("cpu_usage", "node-042", "1.2 s", "310 ms", "-6.0σ", "2024-03-04 14:05 UTC"):
            assert piece in text, (anomaly_type, text)
    trend = registry.render(_explanation(AnomalyType.TREND, end=datetime(2024, 3, 4, 16, 5, tzinfo=UTC)), series)
    assert "rose from a typical 41.0 ms to 97.3 ms" in trend and "over 2 h" in trend


def test_node_falls_back_to_node_id():
    series = MetricSeries("t", "c", 17, "mem", pd.DatetimeIndex([EPOCH]), [1.0])
    assert "mem on 17 spiked to 97.3 " in ExplanationTemplateRegistry().render(_explanation(), series)


def test_template_override_applies_to_its_type_only():
    registry = ExplanationTemplateRegistry()
    registry.register(AnomalyType.SPIKE, "{node}/{metric}: {observed} ({percent}, {confidence})")
    series = _series(np.zeros(3))
    assert registry.render(_explanation(), series) == "node-042/cpu_usage: 97.3% (+137%, 90%)"
    assert registry.render(_explanation(AnomalyType.TREND), series).startswith("cpu_usage on node-042 rose")
    assert ExplanationTemplateRegistry().render(_explanation(), series).startswith("cpu_usage on node-042 spiked")


def test_templates_can_be_given_at_construction_and_missing_percent_reads_na():
    registry = ExplanationTemplateRegistry({"spike": "{percent}"})
    assert registry.render(_explanation(deviation_percent=None), _series(np.zeros(3))) == "n/a"


@pytest.mark.parametrize(
    ("anomaly_type", "template", "message"),
    [
        ("spike", "{value}", "unknown field 'value'"),
        ("spike", "{metric", "not a valid format string"),
        ("spike", "", "non-empty"),
        ("glitch", "{metric}", "anomaly_type"),
    ],
)
def test_register_rejects_bad_templates(anomaly_type, template, message):
    with pytest.raises(ValueError, match=message):
        ExplanationTemplateRegistry().register(anomaly_type, template)


def test_explain_window_fills_the_text():
    ctx = simulate("spike", np.random.default_rng(11))
    explanation = explain_window(ctx)
    assert explanation.anomaly_type is AnomalyType.SPIKE
    assert explanation.text.startswith("cpu_usage on node-042 ")
    assert format_value(explanation.observed, "%") in explanation.text
    templates = ExplanationTemplateRegistry({AnomalyType.SPIKE: "custom {sigma}"})
    assert explain_window(ctx, ExplanationClassifier(), templates).text.startswith("custom ")
