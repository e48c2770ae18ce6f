"""The default engine ("adtk", analytics/core/engines/adtk_v2): its streamed statistics,
state, the two views, and scores that track the evidence."""

from __future__ import annotations

import dataclasses
import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import MetricSeries
from analytics.core.engines import AdtkEngine
from analytics.core.engines.adtk_v2 import blocks, likelihood
from analytics.core.engines.adtk_v2.seasonal import SlotTable, references, slots_per_day
from analytics.core.engines.adtk_v2.state import FittedState, StreamState
from analytics.core.engines.alarms import AlarmCarry
from analytics.core.engines.calibration import MEAN_ABS_TO_SIGMA
from tests.core.test_engines import DAY, EPOCH, _profile, _series

STEP_NS = 60 * 10**9


def _tail(series: MetricSeries, lo: int, end: int) -> MetricSeries:
    return MetricSeries(series.tenant_id, series.cluster_id, series.node_id, series.metric_name,
                        series.timestamps[lo:end], series.values[lo:end])


def seasonal_series(days: int, step_minutes: int = 1, seed: int = 11) -> MetricSeries:
    rng = np.random.default_rng(seed)
    n = days * DAY // step_minutes
    index = EPOCH + pd.to_timedelta(np.arange(n) * step_minutes, unit="min")
    minute = (np.arange(n) * step_minutes) % DAY
    return _series(1e4 + 15 * _profile(minute, 14) + rng.normal(0, 1, n), index)


# --- building blocks ----------------------------------------------------------------------


def test_block_statistics_follow_their_definition_and_do_not_depend_on_the_calls():
    rng = np.random.default_rng(1)
    x = rng.normal(size=700).cumsum()
    x[100:105] = np.nan  # a block of the seasonal difference may be missing values
    block, keep = 10, 20
    whole, rows, carried = blocks.advance(blocks.empty_rows(), np.zeros(0), x, 0, block, keep, 30)
    # in force during block 40: rows of blocks 20..39, from their finite values
    grid = x[:400].reshape(40, block)[20:]
    medians = np.nanmedian(grid, axis=1)
    at = 40 * block + 3
    assert whole.median[at] == pytest.approx(np.median(medians))
    assert whole.low[at] == np.nanmin(grid) and whole.high[at] == np.nanmax(grid)
    assert whole.mean[at] == pytest.approx(np.nanmean(grid))
    assert np.isnan(whole.median[:30]).all()  # fewer than 30 values before
    r, o, parts = blocks.empty_rows(), np.zeros(0), []
    for a in range(0, len(x), 7):
        stats, r, o = blocks.advance(r, o, x[a:a + 7], a, block, keep, 30)
        parts.append(stats.mean_abs_dev)
    np.testing.assert_allclose(np.concatenate(parts), whole.mean_abs_dev, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(r, rows)
    np.testing.assert_array_equal(o, carried)


def test_seasonal_references_are_the_value_a_day_and_a_week_before():
    rng = np.random.default_rng(0)
    step = 300 * 10**9
    ts = np.arange(3 * 2016) * step + 17 * step
    x = rng.normal(size=len(ts))
    (day, week), _ = references(SlotTable.empty(288), ts, x, [288, 2016])
    np.testing.assert_array_equal(day[288:], x[:-288])
    np.testing.assert_array_equal(week[2016:], x[:-2016])
    assert np.isnan(day[:288]).all()
    table, pieces = SlotTable.empty(288), []
    for a in range(0, len(x), 37):
        (piece,), table = references(table, ts[a:a + 37], x[a:a + 37], [288])
        pieces.append(piece)
    np.testing.assert_array_equal(np.concatenate(pieces), day)
    # one-minute data: five-minute slots, the reference is yesterday's slot mean
    ts1 = np.arange(2 * DAY) * STEP_NS
    x1 = rng.normal(size=len(ts1))
    (ref,), _ = references(SlotTable.empty(288), ts1, x1, [288])
    np.testing.assert_allclose(ref[DAY:], np.repeat(x1[:DAY].reshape(-1, 5).mean(axis=1), 5))


# --- incremental runs and the state --------------------------------------------------------


@pytest.mark.parametrize("step_minutes", [1, 5])
def test_chained_incremental_runs_equal_the_stateless_full_run(step_minutes):
    """A state from the first half, then calls of 7 new points with ``history_points`` of
    context and the state stored as JSON by the previous call: the scores equal one full
    run to the float32 rounding of the stored seasonal slots and block rows, the alarms
    exactly."""
    series = seasonal_series(9, step_minutes)
    values = series.values.copy()
    n = len(values)
    values[n - n // 5] += 25  # a spike and, later, a level shift
    values[n - n // 10:] += 8
    series = _series(values, series.timestamps)
    engine = AdtkEngine()
    full, _ = engine.score(series)
    k = n // 2
    state = engine.fit(series, end_index=k)
    scores, alarms = [], []
    for start in range(k, n, 7):
        end = min(start + 7, n)
        tail = _tail(series, start - engine.history_points, end)
        stored = engine.load_state(json.loads(json.dumps(engine.dump_state(state))))
        out = engine.analyse(tail, since=series.timestamps[start].to_pydatetime(), state=stored)
        scores.append(out.scored.scores[start - end:])
        alarms.append(out.scored.alarms[start - end:])
        state = out.state
    np.testing.assert_allclose(np.concatenate(scores), full.scores[k:], atol=5e-5)
    np.testing.assert_array_equal(np.concatenate(alarms), full.alarms[k:])
    assert full.alarms[k:].sum() >= 2


def test_incremental_scores_with_the_state_in_memory_equal_a_full_run():
    series = seasonal_series(5)
    engine = AdtkEngine()
    full, _ = engine.score(series)
    state = engine.fit(series, end_index=3 * DAY)
    cursor = state.stream.cursor_ns
    out, after = engine.score(_tail(series, 3 * DAY - 50, 4 * DAY), state)
    assert state.stream.cursor_ns == cursor  # the given state is not modified
    assert after.stream.cursor_ns == series.timestamps.asi8[4 * DAY - 1]
    np.testing.assert_array_equal(out.scores[:50], 0.0)  # context only
    np.testing.assert_allclose(out.scores[50:], full.scores[3 * DAY:4 * DAY], rtol=1e-7, atol=1e-12)


def test_a_call_with_nothing_after_the_states_cursor_is_all_context():
    """A periodic run can hand the engine only points it has already seen."""
    series = seasonal_series(4)
    engine = AdtkEngine()
    state = engine.fit(series, end_index=3 * DAY)
    seen = _tail(series, 3 * DAY - 30, 3 * DAY)
    output = engine.analyse(seen, state=state)
    assert not output.scored.scores.any() and not output.scored.alarms.any()
    assert output.state.stream.cursor_ns == state.stream.cursor_ns
    assert [r for r in output.results if r.is_anomaly] == []


def test_scores_are_causal():
    series = seasonal_series(4)
    values = series.values.copy()
    values[3 * DAY] += 40
    engine = AdtkEngine()
    full = engine.score(_series(values, series.timestamps))[0].scores
    prefix = engine.score(_series(values[:3 * DAY], series.timestamps[:3 * DAY]))[0].scores
    np.testing.assert_array_equal(prefix, full[:3 * DAY])


def test_state_is_compact_json_and_picklable():
    series = seasonal_series(15)
    engine = AdtkEngine()
    state = engine.fit(series)
    data = engine.dump_state(state)
    assert len(json.dumps(data)) < 48_000  # a week of five-minute slots, block rows, views, profile
    restored = engine.load_state(json.loads(json.dumps(data)))
    assert isinstance(restored, FittedState) and restored.seasonal
    assert pickle.loads(pickle.dumps(state)).stream.points == len(series)
    assert engine.load_state({"version": 999}) is None
    assert engine.load_state({"stream": "garbage", "version": 2}) is None
    assert engine.load_state({**data, "version": 1}) is None  # the layout before the bundle: rebuilt from history
    bundle = data["stream"]["arrays"]
    short = {**data, "stream": {**data["stream"], "arrays": {**bundle, "exact": bundle["exact"][:-1]}}}
    assert engine.load_state(short) is None  # a layout that does not fit is unreadable, not misread


def test_the_stored_alarm_carry_holds_every_field_of_it():
    carry = AlarmCarry(previous_start=-3, last_alarm_end_ns=123, open=True, recent_hits_ns=[100, 120])
    stream = StreamState(step_seconds=60.0, slots=SlotTable.empty(slots_per_day(60.0)), lags={}, alarm=carry)
    data = json.loads(json.dumps(stream.to_dict()))
    assert data["alarm"] == dataclasses.asdict(carry)  # a field added to AlarmCarry is stored too
    assert StreamState.from_dict(data).alarm == carry


def test_a_state_made_with_other_parameters_is_rebuilt_from_the_history():
    series = seasonal_series(4)
    old = AdtkEngine(baseline_points=500).fit(series, end_index=3 * DAY)
    engine = AdtkEngine()
    since = series.timestamps[3 * DAY].to_pydatetime()
    out = engine.analyse(series, since=since, state=old)
    assert out.state.params == engine.fit(series).params != old.params
    np.testing.assert_allclose(out.scored.scores[3 * DAY:], engine.score(series)[0].scores[3 * DAY:], atol=1e-12)


def test_stale_profiles_are_refitted_but_the_statistics_kept():
    series = seasonal_series(6)
    engine = AdtkEngine(refit_age="6h")
    state = engine.fit(series, end_index=3 * DAY)
    since_index = 5 * DAY
    fresh = engine.refresh_state(series, state, since_index)
    assert fresh.data_end == series.timestamps[since_index - 1].to_pydatetime()
    assert fresh.stream is state.stream and fresh.seasonal


# --- the two views ---------------------------------------------------------------------------


def test_a_recurring_spike_is_not_rare_but_the_same_spike_alone_is():
    """The same spike every 100 points (a batch job) stops alarming once it has recurred;
    on a series where it happens once, it alarms."""
    rng = np.random.default_rng(5)
    n = 3000
    quiet = 10 + rng.normal(0, 0.5, n)
    recurring = quiet.copy()
    recurring[150::100] += 12
    once = quiet.copy()
    once[2_850] += 12
    engine = AdtkEngine()
    repeated = engine.score(_series(recurring))[0].evidence
    single = engine.score(_series(once))[0].evidence
    assert single[2_850] >= 0.5 > repeated[2_850]
    assert repeated[2_450::100].max() < 0.5


def _rarity_of_last(component: np.ndarray) -> float:
    """The rarity view's S of a single component's last point, streamed from its first."""
    st = StreamState(step_seconds=60.0, slots=SlotTable.empty(slots_per_day(60.0)), lags={})
    return float(likelihood.rarity(st, component[None, :], AdtkEngine()._view_settings(60.0))[-1])


def test_a_young_reference_calls_an_enormous_value_rare_and_one_just_past_its_largest_not():
    """A component defined for only the last 300 of 2,000 points (a young series) has 6
    values beyond its 98 % quantile u, too few to fit a tail on: the prior (an exponential
    distribution through u) stands in for the missing ones. A value just past the largest
    seen is about as rare as the reference's own resolution (1 in 301); one of 100 sigmas
    is extremely rare, as with 2,000 defined values."""
    rng = np.random.default_rng(7)
    body = rng.normal(0, 1, 300)
    late = np.concatenate([np.full(1_700, np.nan), body, [body.max() + 0.01]])
    assert _rarity_of_last(late) < np.log10(301) + 0.1
    late[-1] = 100.0
    full = np.concatenate([rng.normal(0, 1, 2_000), [100.0]])
    assert _rarity_of_last(late) > 10 * np.log10(301)
    assert _rarity_of_last(full) > 10 * np.log10(2_001)


def test_the_rarity_window_holds_two_days_at_one_minute_sampling():
    """A spike that already happened five times 34-39 h earlier (beyond 2,000 one-minute
    points, within two days) is not rare; the same spike alone alarms."""
    series = seasonal_series(4, seed=3)
    at = 3 * DAY + 600

    def evidence(earlier: int) -> float:
        values = series.values.copy()
        values[at] += 12
        for k in range(earlier):
            values[at - 34 * 60 - 72 * k] += 12
        return float(AdtkEngine().score(_series(values, series.timestamps))[0].evidence[at])

    assert evidence(0) >= 0.5 > evidence(5)


def _young(points: int, step_minutes: int, seed: int) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """A young series: ``points`` of unit noise on a daily cycle of amplitude 5 (random phase)."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(points) * step_minutes
    values = 100 + 5 * np.sin(2 * np.pi * minutes / DAY + rng.uniform(0, 2 * np.pi)) + rng.normal(0, 1, points)
    return values, EPOCH + pd.to_timedelta(minutes, unit="min")


def _alarms(values: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
    return np.flatnonzero(AdtkEngine().score(_series(values, index))[0].alarms)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_spike_after_six_hours_of_one_minute_history_alarms_at_the_spike(seed):
    """360 one-minute points (far fewer than the 750 a fitted tail needs) then a 40-sigma
    spike: the rarity view calls it rare at once, so the alarm is at the spike, not some
    points later through the 5-point level (or never)."""
    values, index = _young(400, 1, seed)
    values[360] += 40
    assert _alarms(values, index).tolist() == [360]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_young_hourly_series_alarms_on_a_spike_or_shift_at_once_and_not_without_one(seed):
    """400 hourly points (under 17 days) with a daily cycle: a 15-sigma spike alarms at its
    point, an 8-sigma level shift within its first two points, and the same series without
    either does not alarm at all."""
    values, index = _young(424, 60, seed)
    assert _alarms(values, index).size == 0
    spiked = values.copy()
    spiked[400] += 15
    assert _alarms(spiked, index).tolist() == [400]
    shifted = values.copy()
    shifted[400:] += 8
    assert _alarms(shifted, index)[0] in (400, 401)


def test_scores_grow_with_the_size_and_length_of_a_deviation():
    """The same one-minute series with a 3, 6, 12 and 50 sigma spike: the spike's score
    grows by at least 0.05 per step and the 50 sigma one reaches 0.9, in its result too;
    a deviation twice as long scores no lower."""
    series = seasonal_series(4, seed=3)
    at = 3 * DAY + 600
    engine = AdtkEngine()

    def scored(delta: float, points: int = 1) -> tuple[float, float]:
        values = series.values.copy()
        values[at:at + points] += delta
        changed = _series(values, series.timestamps)
        point = float(engine.score(changed)[0].evidence[at:at + points].max())
        result = next(r.anomaly_score for r in engine.detect(changed)
                      if r.window_start <= series.timestamps[at] < r.window_end)
        return point, result

    spikes = [scored(k) for k in (3, 6, 12, 50)]
    points = [p for p, _ in spikes]
    assert all(b - a >= 0.05 for a, b in zip(points, points[1:], strict=False)), spikes
    assert points[0] < 0.5 and points[-1] >= 0.9 and spikes[-1][1] >= 0.9
    assert spikes[-1][1] - spikes[-2][1] >= 0.05  # the alarmed ones' results too
    lengths = [scored(6, d)[1] for d in (5, 10, 20, 40)]
    assert all(b >= a for a, b in zip(lengths, lengths[1:], strict=False)), lengths


def _day_of_history_with_a_bump(hours_of_day: int, bump: float) -> tuple[MetricSeries, int]:
    """24 h of one-minute data ending at ``hours_of_day`` (a daily sine of amplitude 10, unit
    noise) with a 3-point ``bump`` 150 minutes before the end: the dashboard fleet's node-3."""
    rng = np.random.default_rng(7)
    n = DAY
    index = EPOCH + pd.Timedelta(hours=hours_of_day) - pd.to_timedelta((n - np.arange(n)) * 60, unit="s")
    values = 40 + 10 * np.sin(2 * np.pi * (index.asi8 / 1e9) / 86_400) + rng.normal(0, 1, n)
    at = n - 150
    values[at:at + 3] += bump
    return _series(values, index), at


def _bump_result_score(hours_of_day: int, bump: float) -> float:
    """The score of the anomaly result holding the bump (0 if it is not one), analysing the
    last 6 hours as a first run over a day of history does."""
    series, at = _day_of_history_with_a_bump(hours_of_day, bump)
    since = series.timestamps[-6 * 60].to_pydatetime()
    return max((r.anomaly_score for r in AdtkEngine().detect(series, since=since)
                if r.is_anomaly and r.window_start <= series.timestamps[at] < r.window_end), default=0.0)


@pytest.mark.parametrize("hours_of_day", [0, 4, 8, 12, 16, 20])
def test_a_35_sigma_bump_on_a_daily_cycle_with_a_day_of_history_is_found_and_scores_high(hours_of_day):
    """35 sigmas of the noise over 3 points is found at every time of day and scores as a
    severe anomaly. (It scored 0.40-0.59 and was missed at 4 of these 6 times: the spike
    was defined from the range floor before its own scale existed, so the stream's first
    points were tens of "sigmas" and, kept in both views' references, made a real
    33-sigma spike look ordinary.)"""
    assert _bump_result_score(hours_of_day, 35.0) >= 0.85


def test_a_larger_bump_never_scores_lower():
    scores = [_bump_result_score(8, bump) for bump in (10.0, 20.0, 35.0, 60.0, 100.0)]
    assert all(b >= a for a, b in zip(scores, scores[1:], strict=False)), scores
    assert scores[-1] > scores[2]


def test_the_spike_is_undefined_until_its_own_scale_exists():
    """The range floor of the level's blocks is in force before the spike residuals' own
    scale: the spike must not be measured against it alone."""
    series, _ = _day_of_history_with_a_bump(8, 0.0)
    spike = AdtkEngine().score(series)[0].components["spike"]
    defined = np.flatnonzero(np.isfinite(spike))
    assert defined[0] >= 40  # 30 residuals (the first has none) in whole 10-point blocks
    assert np.nanmax(spike) < 8


def test_an_episode_continuing_into_the_next_call_keeps_a_score_above_the_threshold():
    """An incremental call that starts inside an alarm episode sees only suppressed
    points (score 0); its result for the episode still scores its evidence, never 0."""
    series = seasonal_series(5)
    values = series.values.copy()
    values[4 * DAY:] += 30
    series = _series(values, series.timestamps)
    engine = AdtkEngine()
    state = engine.fit(series, end_index=4 * DAY + 3)  # the shift began 3 points ago
    out = engine.analyse(_tail(series, 4 * DAY + 3 - engine.history_points, 4 * DAY + 40),
                         since=series.timestamps[4 * DAY + 3].to_pydatetime(), state=state)
    anomalies = [r for r in out.results if r.is_anomaly]
    assert anomalies and all(r.anomaly_score >= engine.params["threshold"] for r in anomalies)
    assert (out.scored.scores[engine.history_points:] == 0).all()  # suppressed
    assert all(r.anomaly_score < engine.params["threshold"] for r in out.results if not r.is_anomaly)


# --- ADTK -----------------------------------------------------------------------------------


def test_level_component_is_adtks_double_rolling_aggregate_with_one_point_blocks():
    """With ``block_points=1`` the statistics in force are exact rolling windows, and the
    one-point level deviation is ADTK's ``DoubleRollingAggregate(agg=("median",
    "mean"), window=(H, 1), diff="diff")`` over the robust scale of the same window."""
    from adtk.transformer import DoubleRollingAggregate, RollingAggregate

    rng = np.random.default_rng(2)
    n, h = 600, 100
    hourly = EPOCH + pd.to_timedelta(np.arange(n), unit="h")  # a day of points is less than H
    x = pd.Series(rng.normal(0, 1, n).cumsum() + 50, index=hourly)
    engine = AdtkEngine(baseline_points=h, block_points=1, scales="1", level_noise_cap=0.0)
    scored, state = engine.score(_series(x.to_numpy(), x.index))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        diff = DoubleRollingAggregate(agg=("median", "mean"), window=(h, 1), center=False, min_periods=(30, 1),
                                      diff="diff").transform(x).to_numpy()
        median = RollingAggregate(agg="median", window=h, center=False, min_periods=30).transform(x).to_numpy()
    # the scale of the same window: 1.2533 * mean |x - median in force| (in force: shifted by one)
    median_before = np.r_[np.nan, median[:-1]]
    deviation = np.abs(x.to_numpy() - median_before)
    rolled = pd.Series(np.r_[np.nan, deviation[:-1]]).rolling(h, min_periods=30).mean().to_numpy()
    span = (x.rolling(h, min_periods=30).max() - x.rolling(h, min_periods=30).min()).shift(1).to_numpy()
    scale = np.fmax(np.fmax(MEAN_ABS_TO_SIGMA * rolled, 0.01 * span), 1e-3 * np.abs(median_before) + 1e-9)
    expected = np.abs(diff) / scale
    got = scored.components["level1"]
    # ADTK's median needs 30 values: compare where no earlier deviation lacked one
    ok = np.isfinite(expected) & np.isfinite(got) & (np.arange(n) > h + 30)
    assert ok.sum() > 400
    np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-9)


def test_an_excursion_yesterday_echoes_less_today_but_one_today_counts():
    """An hour 20 sigmas high on day 3: on day 4 the one-day reference holds it, so the
    ordinary day 4 deviates from it (an echo); the median of the references 1-3 days back
    outvotes it, the mean of 1-2 days back halves it (the default, 1, keeps the echo). The same hour high on day
    5 deviates against every reference."""
    step_minutes = 5
    per_day = DAY // step_minutes
    series = seasonal_series(5, step_minutes)
    values = series.values.copy()
    for day in (2, 4):
        values[day * per_day + 100:day * per_day + 112] += 20
    series = _series(values, series.timestamps)
    echo, again = 3 * per_day + 106, 4 * per_day + 106

    def seasonal(**params: int) -> np.ndarray:
        scored, _ = AdtkEngine(**params).score(series)
        return scored.components["seasonal1"]

    one, two, three = seasonal(), seasonal(seasonal_cycles=2), seasonal(seasonal_cycles=3)
    assert one[echo] > 8 and three[echo] < 3
    assert two[echo] < 0.6 * one[echo]
    assert three[again] > 8 and two[again] > 5
    # the median reference is streamed like the others: a state plus the rest gives the same
    engine = AdtkEngine(seasonal_cycles=3)
    state = engine.fit(series, end_index=3 * per_day + 7)
    rest, _ = engine.score(series, state)
    np.testing.assert_allclose(rest.components["seasonal1"][3 * per_day + 7:], three[3 * per_day + 7:], rtol=1e-9)


# --- multiplicative noise --------------------------------------------------------------------


def _multiplicative(days: int, seed: int) -> MetricSeries:
    """exp() of a daily cycle (a factor e**2 from night to the noon peak) with 10 % noise:
    the noise grows with the level, as a request rate's or a latency's does."""
    rng = np.random.default_rng(seed)
    n = days * DAY
    index = EPOCH + pd.to_timedelta(np.arange(n), unit="min")
    hours = (np.arange(n) % DAY) / 60.0
    return _series(np.exp(2.0 + np.cos(2 * np.pi * (hours - 12) / 24) + 0.1 * rng.normal(size=n)), index)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_dip_at_night_in_multiplicative_noise_is_found_and_nothing_else_alarms(seed):
    """A 6-sigma dip (a factor e**-0.6 over 3 points) at 01:00, where the noise is smallest:
    scored on x against a day-long scale it was 1.5 "sigmas" (evidence 0.01-0.03, missed);
    on log(x) it alarms, and nothing else does after the first two days."""
    series = _multiplicative(4, seed)
    values = series.values.copy()
    at = 3 * DAY + 60
    values[at:at + 3] *= np.exp(-0.6)
    dipped = _series(values, series.timestamps)
    for mode, found in (("auto", True), ("off", False)):
        scored, state = AdtkEngine(log_values=mode).score(dipped)
        assert (state.stream.log_floor > 0) == (mode == "auto")
        alarms = np.flatnonzero(scored.alarms[2 * DAY:]) + 2 * DAY
        assert ((alarms >= at) & (alarms < at + 10)).any() == found, mode
        assert ((alarms < at) | (alarms >= at + 10)).sum() == 0, mode


def test_additive_noise_and_a_series_crossing_zero_stay_on_their_own_scale():
    assert AdtkEngine().fit(seasonal_series(2)).stream.log_floor == 0.0  # noise independent of the level
    values = _multiplicative(2, 0).values - 3.0  # the same shape, crossing zero
    assert AdtkEngine().fit(_series(values, seasonal_series(2).timestamps)).stream.log_floor == 0.0


def test_chained_calls_across_the_first_day_equal_one_call():
    """The scale is decided at the end of the first day from points the state kept, so
    calls ending before, at and after it, through JSON, give the full call's scores."""
    series = _multiplicative(3, 4)
    engine = AdtkEngine()
    full, _ = engine.score(series)
    state, parts = None, []
    for start, end in ((0, 300), (300, DAY - 7), (DAY - 7, DAY), (DAY, DAY + 500), (DAY + 500, 3 * DAY)):
        out, state = engine.score(_tail(series, 0, end), state)
        parts.append(out.scores[start:end])
        assert state.stream.deciding == (end < DAY)
        state = engine.load_state(json.loads(json.dumps(engine.dump_state(state))))
    assert state.stream.log_floor > 0
    np.testing.assert_allclose(np.concatenate(parts), full.scores, atol=5e-5)
