"""The moved-day clue (analytics/core/classification.py) and the classifier using it.

Synthetic one-minute series over five days: a daily cosine (the profile the engine
would have fitted, handed over as ``seasonal_profile``), slow correlated noise, and one
anomaly. The episode handed over is what the default engine tends to report: a short
fragment (10 minutes) where a long deviation first stands out (6 sigmas), or at its end.
"""

from __future__ import annotations

import collections
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.core.classification import moved_days
from analytics.core.contracts import AnomalyType, MetricSeries
from analytics.core.explain import ExplanationClassifier, WindowContext

DAY = 1440
EPOCH = pd.Timestamp("2024-03-04", tz="UTC")
FRAGMENT = 10  # minutes: the episode handed to the classifier


def _series(values: np.ndarray) -> MetricSeries:
    index = EPOCH + pd.to_timedelta(np.arange(len(values)), unit="min")
    return MetricSeries("tenant-1", "cluster-1", 7, "network_in", index, values, {"unit": "B", "node": "node-7"})


def _day_curve(minutes: np.ndarray, peak_hour: float, amplitude: float) -> np.ndarray:
    return amplitude * np.cos(2 * np.pi * (minutes % DAY / 60 - peak_hour) / 24)


def _case(kind: str, rng: np.random.Generator, *, at_end: bool = False) -> tuple[WindowContext, np.ndarray]:
    """(context of a fragment of a ``kind`` anomaly, the injected change)."""
    minutes = np.arange(5 * DAY)
    level, amplitude, peak = rng.uniform(40, 60), rng.uniform(8, 15), rng.uniform(10, 18)
    noise = np.convolve(rng.normal(0, 1, minutes.size), np.ones(30) / np.sqrt(30), mode="same")  # slow noise
    profile = _day_curve(minutes, peak, amplitude)
    values = level + profile + noise
    at = int(rng.integers(2 * DAY + 120, 3 * DAY))
    if kind == "seasonal":  # the day's peak moves by 6-12 h for a day, its mean does not
        length = DAY
        moved = _day_curve(minutes, peak + rng.choice([-1, 1]) * rng.uniform(6, 12), amplitude)
        change = np.where((minutes >= at) & (minutes < at + length), moved - profile, 0.0)
    elif kind == "level_shift":  # a step for 1-12 h
        length = int(rng.integers(60, 12 * 60))
        change = np.where((minutes >= at) & (minutes < at + length), rng.choice([-1, 1]) * rng.uniform(6, 10), 0.0)
    else:  # a ramp over 2-12 h, then back
        length = int(rng.integers(120, 12 * 60))
        ramp = rng.choice([-1, 1]) * rng.uniform(6, 12) * (minutes - at + 1) / length
        change = np.where((minutes >= at) & (minutes < at + length), ramp, 0.0)
    values = values + change
    # the engine reports the deviation where it first stands out, or where it ends
    start = at + length - FRAGMENT if at_end else int(np.flatnonzero(np.abs(change) >= 6)[0])
    # the engine's frozen expectation: the profile plus the level before the episode
    expected = level + profile
    scale = np.full(minutes.size, 1.0)
    return WindowContext(_series(values), start, start + FRAGMENT, expected, scale, np.full(minutes.size, 0.9),
                         seasonal_expected=expected, seasonal_profile=profile), change


def test_a_moved_day_is_found_with_its_shift():
    rng = np.random.default_rng(3)
    minutes = np.arange(5 * DAY)
    profile = _day_curve(minutes, 14, 10)
    values = 50 + profile + rng.normal(0, 0.5, minutes.size)
    day = slice(3 * DAY, 4 * DAY)
    values[day] = 50 + _day_curve(minutes[day], 22, 10)[:] + rng.normal(0, 0.5, DAY)  # 8 h later
    found = moved_days(_series(values), profile, day.start, day.start + FRAGMENT, period=timedelta(days=1),
                       max_shift=timedelta(hours=12))
    starting_with = next(day for day in found if day.period == "starting")
    assert abs(starting_with.shift - timedelta(hours=8)) <= timedelta(minutes=20)
    assert starting_with.fit_ratio < 0.2 and starting_with.usual_ratio < 1.5
    level = values.copy()
    level[day] = 50 + profile[day] + 8 + rng.normal(0, 0.5, DAY)  # the same day, one level up
    for clue in moved_days(_series(level), profile, day.start, day.start + FRAGMENT, period=timedelta(days=1),
                           max_shift=timedelta(hours=12)):
        assert clue.fit_ratio > 0.75 or clue.usual_ratio > 1.5, clue


def test_too_little_history_gives_no_clue():
    values = 50 + _day_curve(np.arange(DAY + 60), 14, 10)
    assert moved_days(_series(values), values - 50, DAY - 60, DAY - 50, period=timedelta(days=1),
                      max_shift=timedelta(hours=12)) == []


def test_a_period_the_data_end_cuts_short_gives_no_clue():
    """Six hours of data after the episode are no day: the period starting with the
    episode is judged only with a whole day of data after it."""
    minutes = np.arange(5 * DAY)
    values = 50 + _day_curve(minutes, 14, 10) + np.random.default_rng(4).normal(0, 0.5, minutes.size)
    start = 5 * DAY - 6 * 60

    def periods(values: np.ndarray) -> set[str]:
        return {day.period for day in moved_days(_series(values), values - 50, start, start + FRAGMENT,
                                                 period=timedelta(days=1), max_shift=timedelta(hours=12))}

    assert periods(values) == {"ending", "day before"}
    values = np.r_[values, 50 + _day_curve(np.arange(5 * DAY, 6 * DAY), 14, 10)]
    assert periods(values) == {"ending", "starting", "day before"}


@pytest.mark.parametrize("at_end", [False, True], ids=["onset", "end"])
def test_fragments_of_long_deviations_get_their_type(at_end):
    """A 10-minute fragment where a moved day, a level shift or a ramp first stands out
    (or at its end): at least 90 % of each labelled right."""
    classifier = ExplanationClassifier()
    expected = {"seasonal": AnomalyType.SEASONAL, "level_shift": AnomalyType.TREND, "ramp": AnomalyType.TREND}
    accuracy = {}
    for seed, (kind, label) in enumerate(expected.items()):
        rng = np.random.default_rng(100 + seed)
        got = collections.Counter(classifier.classify(_case(kind, rng, at_end=at_end)[0]).anomaly_type
                                  for _ in range(30))
        accuracy[kind] = (got[label] / 30, dict(got))
    assert min(share for share, _ in accuracy.values()) >= 0.9, accuracy


def test_without_the_profile_the_fragment_of_a_moved_day_is_not_judged_by_it():
    """The clue needs the engine's profile: without it, the usual-curve clues decide (and
    the fragment, 10 minutes of a moved day, is not recognisable by them)."""
    ctx, _ = _case("seasonal", np.random.default_rng(8))
    with_profile = ExplanationClassifier().classify(ctx).anomaly_type
    bare = WindowContext(ctx.series, ctx.start_index, ctx.end_index, ctx.expected, ctx.scale, ctx.scores,
                         seasonal_expected=ctx.seasonal_expected)
    assert with_profile is AnomalyType.SEASONAL
    assert ExplanationClassifier(moved_day_fit=0.01).classify(ctx).anomaly_type is AnomalyType.TREND  # clue off
    assert ExplanationClassifier().classify(bare).anomaly_type is not AnomalyType.NORMAL


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"moved_day_fit": 0}, "moved_day_fit"), ({"usual_misfit": float("nan")}, "usual_misfit"),
     ({"min_day_shift": timedelta(0)}, "min_day_shift"), ({"min_day_shift": timedelta(hours=13)}, "min_day_shift")],
)
def test_the_moved_day_thresholds_are_checked(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ExplanationClassifier(**kwargs)


def test_a_profile_of_the_wrong_length_is_rejected():
    ctx, _ = _case("ramp", np.random.default_rng(1))
    with pytest.raises(ValueError, match="seasonal_profile"):
        WindowContext(ctx.series, ctx.start_index, ctx.end_index, ctx.expected, ctx.scale, ctx.scores,
                      seasonal_profile=np.zeros(3))


def _moved_day(rng: np.random.Generator, days: int = 1) -> tuple[np.ndarray, np.ndarray, slice]:
    """(values, profile, the moved days, ending with day 3): their peak comes 8 h late."""
    minutes = np.arange(5 * DAY)
    profile = _day_curve(minutes, 14, 10)
    values = 50 + profile + rng.normal(0, 0.5, minutes.size)
    day = slice((4 - days) * DAY, 4 * DAY)
    values[day] = 50 + _day_curve(minutes[day], 22, 10) + rng.normal(0, 0.5, days * DAY)
    return values, profile, day


def _fragment(values: np.ndarray, profile: np.ndarray, start: int) -> WindowContext:
    n = len(values)
    return WindowContext(_series(values), start, start + FRAGMENT, 50 + profile, np.full(n, 1.0), np.full(n, 0.9),
                         seasonal_expected=50 + profile, seasonal_profile=profile)


def test_a_short_fragment_of_a_moved_day_is_seasonal_but_a_spike_beyond_the_days_range_is_a_spike():
    """A deviation lasting minutes is a spike unless moving the day explains it: within the
    range of the day's profile (20 here) and with the moved-day clue."""
    values, profile, day = _moved_day(np.random.default_rng(5), days=2)
    start = 3 * DAY + 18 * 60 - 5  # where the moved and the usual day cross: the bump alone stands out
    values[start + 5:start + 8] += 8  # a short bump inside the moved day, within the day's range
    fragment = ExplanationClassifier().classify(_fragment(values, profile, start))
    assert fragment.anomaly_type is AnomalyType.SEASONAL
    values[start + 5:start + 8] += 40  # the same bump beyond anything the day does
    assert ExplanationClassifier().classify(_fragment(values, profile, start)).anomaly_type is AnomalyType.SPIKE
    usual = 50 + profile + np.random.default_rng(6).normal(0, 0.5, len(profile))
    usual[start + 5:start + 8] += 8  # the same short bump on a usual day: a spike
    assert ExplanationClassifier().classify(_fragment(usual, profile, start)).anomaly_type is AnomalyType.SPIKE


def test_a_window_of_a_moved_day_with_no_outstanding_point_is_seasonal_not_normal():
    """Where the moved and the usual day cross no point stands out, yet the engine alarmed
    on the day; moving the day explains it: SEASONAL. The same window of a usual day is NORMAL."""
    values, profile, _ = _moved_day(np.random.default_rng(7), days=2)
    start = 3 * DAY + 18 * 60 - 5  # the moved and the usual day cross here
    ctx = _fragment(values, profile, start)
    assert np.abs(values[ctx.window] - ctx.expected[ctx.window]).max() < 4  # no 4-sigma point
    assert ExplanationClassifier().classify(ctx).anomaly_type is AnomalyType.SEASONAL
    usual = 50 + profile + np.random.default_rng(8).normal(0, 0.5, len(profile))
    assert ExplanationClassifier().classify(_fragment(usual, profile, start)).anomaly_type is AnomalyType.NORMAL


def test_the_day_after_a_moved_day_is_its_echo():
    """The engine compares each day with the day before, so the usual day after a moved one
    alarms too: with the period ending with the episode a usual day (it fits the usual
    profile about as well as the day before fits the moved one), the moved day before
    explains it. Without the moved day before, the same window is NORMAL."""
    values, profile, _ = _moved_day(np.random.default_rng(9), days=2)  # days 2-3 moved
    minutes = np.arange(5 * DAY, 6 * DAY)
    values = np.r_[values, 50 + _day_curve(minutes, 14, 10) + np.random.default_rng(10).normal(0, 0.5, DAY)]
    profile = np.r_[profile, _day_curve(minutes, 14, 10)]
    start = 5 * DAY + 60  # a day and an hour after the moved days
    assert ExplanationClassifier().classify(_fragment(values, profile, start)).anomaly_type is AnomalyType.SEASONAL
    usual = 50 + profile + np.random.default_rng(11).normal(0, 0.5, len(profile))
    assert ExplanationClassifier().classify(_fragment(usual, profile, start)).anomaly_type is AnomalyType.NORMAL
