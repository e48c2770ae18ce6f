"""Event-level quality figures (analytics/core/evaluation/events.py) on hand-checkable cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.core.evaluation.events import Detection, Event, format_quality, score_events, spearman

T0 = datetime(2026, 1, 7, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def event(series, type_, kind, start_h, end_h, grace_h, severity):
    return Event(series, type_, kind, at(start_h), at(end_h), at(end_h + grace_h), severity)


def detection(series, start_h, end_h, label, score):
    return Detection(series, at(start_h), at(end_h), label, score)


# three series: "a" holds a spike and a ramp, "b" a seasonal break, "c" nothing (2 days evaluated each)
EVENTS = [
    event("a", "spike", "spike", 10, 10 + 1 / 60, 1, 5.0),
    event("a", "trend", "trend", 12, 14, 1, 4.0),
    event("b", "seasonal", "seasonal_break", 30, 54, 12, 8.0),
]
DAYS = {"a": 2.0, "b": 2.0, "c": 2.0}
DETECTIONS = [
    detection("a", 10, 10 + 5 / 60, "spike", 0.9),  # the spike, at once
    detection("a", 12.5, 13, "seasonal", 0.7),  # the ramp, 30 min late, 30 min of overlap: its label
    detection("a", 14.5, 14 + 35 / 60, "trend", 0.6),  # the ramp again, in its grace hour
    detection("a", 20, 20 + 5 / 60, "spike", 0.8),  # nothing there: false
    detection("c", 5, 5.25, "spike", 0.55),  # clean series: false alarms
    detection("c", 40, 41, "trend", 0.6),
]


def test_known_matches_give_known_figures():
    q = score_events(EVENTS, DETECTIONS, DAYS)
    assert (q.events, q.matched_events, q.recall()) == (3, 2, pytest.approx(2 / 3))
    assert (q.detections, q.true_detections, q.precision) == (6, 3, 0.5)
    assert q.detections_per_matched_event == 1.5
    assert (q.clean_series, q.clean_series_days, q.clean_detections) == (1, 2.0, 2)
    assert q.false_alarms_per_series_day == 1.0
    assert q.median_delay_seconds() == 900.0
    assert (q.median_delay_seconds("trend"), q.median_delay_seconds("seasonal")) == (1800.0, None)
    assert q.confusion == {
        "spike": {"spike": 1, "trend": 0, "seasonal": 0, "normal": 0},
        "trend": {"spike": 0, "trend": 0, "seasonal": 1, "normal": 0},
        "seasonal": {"spike": 0, "trend": 0, "seasonal": 0, "normal": 1},
    }
    assert (q.accuracy("spike"), q.accuracy("trend"), q.accuracy("seasonal"), q.accuracy()) == (1.0, 0.0, None, 0.5)
    assert (q.recall("spike"), q.recall("seasonal"), q.recall(kind="trend")) == (1.0, 0.0, 1.0)
    assert list(q.confusion_by_kind) == ["spike", "trend", "seasonal_break"]  # grouped by type
    assert q.accuracy(kind="seasonal_break") is None and q.median_delay_seconds(kind="trend") == 1800.0
    # the score of an event is the best of its detections: the ramp's 0.7, not 0.6
    assert [(o.type, o.severity, o.score) for o in q.outcomes if o.matched] == [("spike", 5.0, 0.9), ("trend", 4.0, 0.7)]
    text = format_quality(q)
    assert "event precision  0.500 (3/6" in text and "7.00 per series-week" in text and "median delay     15.0 min" in text
    assert "      seasonal_break        0        0        0        1    0.000      n/a       n/a" in text


def test_spans_are_half_open_and_the_grace_period_counts():
    ev = [event("a", "trend", "level_shift", 12, 14, 1, 3.0)]
    ends_at_start = [detection("a", 11.5, 12, "trend", 0.9)]
    assert score_events(ev, ends_at_start, {"a": 1.0}).matched_events == 0
    after_grace = [detection("a", 15, 15.5, "trend", 0.9)]
    assert score_events(ev, after_grace, {"a": 1.0}).matched_events == 0
    in_grace = [detection("a", 14 + 59 / 60, 15.5, "trend", 0.9)]
    q = score_events(ev, in_grace, {"a": 1.0})
    assert q.matched_events == 1 and q.median_delay_seconds() == pytest.approx(2 * 3600 + 59 * 60)


def test_one_detection_over_two_events_matches_the_nearest_start_only():
    # one episode covering a dip and a spike half an hour apart detects the dip only
    ev = [event("a", "spike", "dip", 10, 10.05, 1, 6.0), event("a", "spike", "spike", 10.5, 10.55, 1, 4.0)]
    q = score_events(ev, [detection("a", 9.9, 11, "spike", 0.8)], {"a": 1.0})
    assert (q.detections, q.true_detections, q.matched_events) == (1, 1, 1)
    assert (q.recall(kind="dip"), q.recall(kind="spike")) == (1.0, 0.0)
    # nearer the spike's start, it detects the spike
    q = score_events(ev, [detection("a", 10.4, 11, "spike", 0.8)], {"a": 1.0})
    assert (q.recall(kind="dip"), q.recall(kind="spike")) == (0.0, 1.0)


def test_a_detection_of_another_event_in_the_grace_period_neither_detects_nor_labels():
    # a seasonal break (day 1) and a level shift starting in its 24 h grace period (day 2)
    ev = [event("a", "seasonal", "seasonal_break", 0, 24, 24, 6.0), event("a", "trend", "level_shift", 30, 40, 5, 3.0)]
    own = detection("a", 1, 1.5, "seasonal", 0.7)
    shift = detection("a", 30, 32, "trend", 0.9)  # longer than the break's own: it labelled the break
    q = score_events(ev, [own, shift], {"a": 3.0})
    assert q.confusion_by_kind["seasonal_break"]["seasonal"] == 1 and q.confusion_by_kind["level_shift"]["trend"] == 1
    assert [o.score for o in q.outcomes] == [0.7, 0.9]  # the shift's score is not the break's either
    # without a detection of its own the break is missed; the shift's detection stays true, once
    q = score_events(ev, [shift], {"a": 3.0})
    assert q.confusion_by_kind["seasonal_break"]["normal"] == 1 and q.recall(kind="level_shift") == 1.0
    assert (q.true_detections, q.precision) == (1, 1.0)
    # a spike inside the break's own samples is the spike's
    ev = [event("a", "seasonal", "seasonal_break", 0, 24, 24, 6.0), event("a", "spike", "spike", 5, 5.05, 1, 4.0)]
    q = score_events(ev, [own, detection("a", 5, 5.5, "spike", 0.9)], {"a": 3.0})
    assert q.confusion_by_kind["seasonal_break"]["seasonal"] == 1 and q.confusion_by_kind["spike"]["spike"] == 1


def test_the_label_comes_from_the_largest_overlap_then_the_earliest():
    ev = [event("a", "seasonal", "seasonal_break", 0, 24, 12, 6.0)]
    tie = [detection("a", 1, 2, "trend", 0.6), detection("a", 5, 6, "seasonal", 0.6)]
    assert score_events(ev, tie, {"a": 2.0}).confusion["seasonal"]["trend"] == 1
    longer = [detection("a", 1, 2, "trend", 0.6), detection("a", 5, 9, "seasonal", 0.6)]
    assert score_events(ev, longer, {"a": 2.0}).confusion["seasonal"]["seasonal"] == 1


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None  # too few pairs
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # constant
    q = score_events(
        [event("a", "spike", "spike", h, h + 0.1, 1, sev) for h, sev in ((1, 4.0), (5, 5.0), (9, 6.0))],
        [detection("a", h, h + 0.1, "spike", s) for h, s in ((1, 0.6), (5, 0.7), (9, 0.65))],
        {"a": 1.0},
    )
    assert q.spearman() == pytest.approx(0.5) and q.spearman("spike") == pytest.approx(0.5)
    assert q.spearman("trend") is None


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="type"):
        event("a", "level", "x", 1, 2, 1, 1.0)
    with pytest.raises(ValueError, match="label"):
        detection("a", 1, 2, "normal", 0.5)
    with pytest.raises(ValueError, match="end"):
        event("a", "spike", "spike", 2, 1, 1, 1.0)
    with pytest.raises(ValueError, match="detections: series 'x'"):
        score_events([], [detection("x", 1, 2, "spike", 0.5)], {"a": 1.0})
    with pytest.raises(ValueError, match="events: series 'x'"):
        score_events([event("x", "spike", "spike", 1, 2, 1, 1.0)], [], {"a": 1.0})
    with pytest.raises(ValueError, match="kind 'k'"):
        score_events([event("a", "spike", "k", 1, 2, 1, 1.0), event("a", "trend", "k", 5, 6, 1, 1.0)], [], {"a": 1.0})


def test_nothing_to_score_gives_no_ratios():
    q = score_events([], [], {"a": 1.0})
    assert q.precision is None and q.recall() is None and q.median_delay_seconds() is None
    assert q.false_alarms_per_series_day == 0.0
    assert "n/a" in format_quality(q)
