"""The previous default engine, kept as "adtk_v1" for comparison: its streamed block
statistics, state, ADTK equivalence and explanation refits."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import AnomalyType, MetricSeries
from analytics.core.engines import AdtkV1Engine as AdtkEngine
from analytics.core.engines import VectorEngine
from analytics.core.engines.adtk_v1.state import AdtkFittedState
from tests.core.test_engines import DAY, EPOCH, _profile, _series, make


@pytest.fixture(scope="module")
def v1_cases():
    """kind -> (series, where, EngineOutput) of the v1 engine."""
    out = {}
    for kind in ("level", "seasonal"):
        series, where = make(kind)
        out[kind] = (series, where, AdtkEngine().analyse(series))
    return out


def test_vector_history_points_are_the_base_default():
    vector = VectorEngine()
    assert vector.history_points == 7 * DAY + 15
    assert vector.history_points_for_fit() == vector.history_points


def test_history_points_are_honest():
    adtk = AdtkEngine()
    # with a state the scores need no context (the state carries every statistic they use);
    # the context is what explanations look back over: seasonal_level_window (2 h) of points
    assert adtk.history_points == 120
    assert adtk.history_points_for(300.0) == 24
    # a call without a state streams from its first point: the warm-up (seasonal lag + the
    # seasonal difference's baseline blocks + the likelihood window + one block) and the
    # explanation profiles' fit_window (14 days)
    assert adtk.warmup_points_for(60.0) == 1440 + 1000 + 10000 + 50
    assert adtk.history_points_for_fit() == adtk.fit_history_points() == 14 * DAY
    assert AdtkEngine(fit_window="1d").history_points_for_fit() == 1440 + 1000 + 10000 + 50


def _tail(series: MetricSeries, lo: int, end: int) -> MetricSeries:
    return MetricSeries(series.tenant_id, series.cluster_id, series.node_id, series.metric_name,
                        series.timestamps[lo:end], series.values[lo:end])


def test_history_points_of_context_reproduce_a_full_run_with_less_they_do_not():
    """With a state advanced to the new points, the scores need no context at all; the
    explanations' expectations need ``history_points`` of it."""
    series, _ = make("level", seed=3)
    engine = AdtkEngine()
    state0 = engine.fit(series, end_index=4 * DAY)
    full = engine.score(series, state0)[0]
    end = 4 * DAY + 650
    state = engine.score(_tail(series, 0, end - 5), state0)[1]  # advanced to end - 5
    for context, equal in ((engine.history_points, True), (engine.history_points // 3, False)):
        got = engine.score(_tail(series, end - 5 - context, end), state)[0]
        np.testing.assert_allclose(got.scores[-5:], full.scores[end - 5:end], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got.components["deviation"][-5:], full.components["deviation"][end - 5:end],
                                   rtol=1e-9, atol=1e-12)
        same = np.allclose(got.seasonal_expected[-5:], full.seasonal_expected[end - 5:end], rtol=1e-9, atol=1e-12)
        assert same is equal


def test_state_is_compact():
    """The JSON state: one seasonal lag of float32 values (1,440 at one-minute data) plus a
    few hundred numbers of block summaries; the explanation profile comes on top."""
    series, _ = make("clean")
    engine = AdtkEngine()
    state = engine.fit(series, end_index=4 * DAY)
    stream = state.stream
    assert stream.lag == DAY and len(stream.lag_buffer) == DAY
    assert stream.numbers() <= DAY + 400
    assert len(json.dumps(stream.to_dict())) < 16_000


def test_hot_path_statistics_equal_adtk_transforms():
    """The numpy/bottleneck components equal the same definitions built from ADTK's
    transformers (DoubleRollingAggregate, RollingAggregate) and pandas."""
    from adtk.transformer import DoubleRollingAggregate, RollingAggregate

    from analytics.core.engines.adtk_v1.transforms import deviations, level_difference, rolling_baseline
    from analytics.core.engines.calibration import MEAN_ABS_TO_SIGMA

    series, _ = make("spike")
    n = 3 * DAY
    x = pd.Series(series.values[:n], index=series.timestamps[:n])
    h, lag = 200, DAY  # a shorter baseline keeps ADTK's pandas rolling fast
    engine = AdtkEngine(baseline_points=h)
    mc = engine.params["baseline_min_points"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)

        def roll(s, agg, min_periods=mc):
            return RollingAggregate(agg=agg, window=h, center=False, min_periods=min_periods).transform(s).to_numpy()

        med, mad, rng = rolling_baseline(x.to_numpy(), h, mc)
        np.testing.assert_allclose(med, roll(x, "median"), atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(mad, roll((x - roll(x, "median")).abs(), "mean"), atol=1e-9, equal_nan=True)
        np.testing.assert_allclose(rng, roll(x, "max", 10) - roll(x, "min", 10), atol=1e-12, equal_nan=True)
        level = np.zeros(n)
        for m in engine.scale_points():
            dra = DoubleRollingAggregate(
                agg=("median", "mean"), window=(h, m), center=False, min_periods=(mc, 1), diff="diff"
            ).transform(x).to_numpy()
            np.testing.assert_allclose(level_difference(x.to_numpy(), med, m), dra, atol=1e-9, equal_nan=True)
            base = pd.Series(roll(x, "median")).shift(m).to_numpy()
            scale = np.fmax.reduce([
                MEAN_ABS_TO_SIGMA * pd.Series(roll((x - roll(x, "median")).abs(), "mean")).shift(m).to_numpy(),
                1e-3 * np.abs(base) + 1e-9,
                0.01 * pd.Series(roll(x, "max", 10) - roll(x, "min", 10)).shift(m).to_numpy(),
            ])
            level = np.fmax(level, np.nan_to_num(np.abs(dra) / scale))
        sd = x.diff(lag)  # seasonal difference
        sd_med = roll(sd, "median")
        dev = (sd - pd.Series(sd_med, index=x.index).shift(1)).abs()
        s_scale = np.fmax(
            MEAN_ABS_TO_SIGMA * pd.Series(roll((sd - sd_med).abs(), "mean")).shift(1).to_numpy(),
            0.01 * pd.Series(roll(x, "max", 10) - roll(x, "min", 10)).shift(1).to_numpy(),
        )
        seasonal = np.zeros(n)
        for m in engine.scale_points():
            mean_dev = RollingAggregate(agg="mean", window=m, center=False, min_periods=1).transform(dev).to_numpy()
            seasonal = np.fmax(seasonal, np.nan_to_num(mean_dev / s_scale))
    comps = deviations(x.to_numpy(), lag, engine.params)
    np.testing.assert_allclose(np.nan_to_num(comps["level"]), level, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.nan_to_num(comps["seasonal"]), seasonal, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(comps["d"], np.fmax(level, seasonal), rtol=1e-9, atol=1e-9)


def test_scores_are_causal_with_a_state():
    series, _ = make("level", seed=6)
    engine = AdtkEngine()
    state = engine.fit(series, end_index=3 * DAY)
    full = engine.score(series, state)[0].scores
    prefix = engine.score(series.slice(end=series.timestamps[4 * DAY + 605]), state)[0].scores
    np.testing.assert_array_equal(prefix, full[: len(prefix)])


def test_incremental_scores_equal_a_full_run_with_the_same_state():
    """Scores of new points given a state equal a full run with the same state however
    the points are split into calls (to rounding of the likelihood block sums); the
    state given is not modified, the returned one has advanced."""
    series, _ = make("spike")
    engine = AdtkEngine()
    state = engine.fit(series, end_index=4 * DAY)
    cursor = state.stream.cursor_ns
    full, _ = engine.score(series, state)
    for lo, end in ((4 * DAY, 4 * DAY + 602), (4 * DAY, len(series))):
        inc, after = engine.score(_tail(series, lo - engine.history_points, end), state)
        assert state.stream.cursor_ns == cursor  # not mutated
        assert after.stream.cursor_ns == series.timestamps.asi8[end - 1]
        np.testing.assert_allclose(inc.scores[engine.history_points:], full.scores[lo:end], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("step_minutes", [1, 5])
def test_chained_incremental_runs_equal_the_stateless_full_run(step_minutes):
    """Production: a state fitted once, then every call gets ``history_points`` of context
    plus 5 new points and the state stored (JSON) by the previous call. The scores,
    alarms and streamed statistics equal one stateless full run over the series.
    Tolerance 1e-6 on scores: the stored state keeps the seasonal lag as float32 around its
    median (exactly equal in memory, see test_incremental_scores_equal_...)."""
    rng = np.random.default_rng(11)
    n = 6 * DAY // step_minutes
    index = EPOCH + pd.to_timedelta(np.arange(n) * step_minutes, unit="min")
    minute = (np.arange(n) * step_minutes) % DAY
    values = 1e4 + 15 * _profile(minute, 14) + rng.normal(0, 1, n)
    values[n - n // 5] += 25  # a spike and, later, a level shift
    values[n - n // 10:] += 8
    series = _series(values, index)
    engine = AdtkEngine()
    full, _ = engine.score(series)
    k = n // 2
    state = engine.fit(series, end_index=k)
    scores = []
    alarms = []
    for start in range(k, n, 5):
        end = min(start + 5, n)
        tail = _tail(series, start - engine.history_points_for(60.0 * step_minutes), end)
        out = engine.analyse(tail, since=series.timestamps[start].to_pydatetime(),
                             state=engine.load_state(json.loads(json.dumps(engine.dump_state(state)))))
        scores.append(out.scored.scores[start - end:])
        alarms.append(out.scored.alarms[start - end:])
        state = out.state
    np.testing.assert_allclose(np.concatenate(scores), full.scores[k:], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate(alarms), full.alarms[k:])
    assert full.alarms[k:].sum() >= 2


def test_state_is_json_and_pickle_able_and_reusable():
    series, _ = make("clean")
    engine = AdtkEngine()
    state = engine.fit(series, end_index=4 * DAY)
    assert [c.period_seconds for c in state.seasonal] == [86_400.0]
    assert state.step_seconds == 60.0
    assert state.seasonal_lag_points == DAY
    assert state.likelihood_ready
    assert state.likelihood_count == min(engine.params["likelihood_window"], 4 * DAY)
    assert state.stream.cursor_ns == series.timestamps.asi8[4 * DAY - 1]
    assert state.data_end == series.timestamps[4 * DAY - 1].to_pydatetime()
    restored = engine.load_state(json.loads(json.dumps(engine.dump_state(state))))
    assert isinstance(restored, AdtkFittedState)
    assert engine.load_state({"version": 999}) is None
    assert VectorEngine().dump_state(None) is None
    again = pickle.loads(pickle.dumps(state))
    base = engine.score(series, state)[0].scores
    # JSON keeps the seasonal lag as float32 around its median: equal to 1e-6
    np.testing.assert_allclose(engine.score(series, restored)[0].scores, base, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(engine.score(series, again)[0].scores, base)


def test_stale_state_is_refitted_on_points_before_since():
    series, _ = make("clean")
    engine = AdtkEngine(refit_age="6h")
    old = engine.fit(series, end_index=2 * DAY)
    since = series.timestamps[5 * DAY].to_pydatetime()
    assert engine.needs_refit(old, since)
    out = engine.analyse(series, since=since, state=old)
    assert out.state is not old
    assert out.state.data_end == series.timestamps[5 * DAY - 1].to_pydatetime()
    fresh = engine.fit(series, end_index=5 * DAY - 60)  # one hour old
    kept = engine.analyse(series, since=since, state=fresh).state
    assert kept.fit_time == fresh.fit_time and kept.data_end == fresh.data_end  # fresh enough: not refitted...
    assert kept.stream.cursor_ns == series.timestamps.asi8[-1]  # ...but its statistics advanced


def test_adtk_detect_labels_part_of_a_moved_peak_seasonal(v1_cases):
    """detect() reports a day whose peak moved as one SEASONAL episode: its anomalous
    blocks do not teach the seasonal baseline (``seasonal_hold``), so it alarms most of
    the day, and the on-and-off alarms (episodes closer than ``merge_gap``) merge into one
    episode, which the classifier reads as SEASONAL."""
    series, day, out = v1_cases["seasonal"]
    labels = {r.anomaly_label for r in out.results
              if r.is_anomaly and series.timestamps[day.start] <= r.window_start < series.timestamps[day.stop - 1]}
    assert AnomalyType.SEASONAL in labels


def test_adtk_suppression_zeroes_scores_but_keeps_a_level_shift_one_episode(v1_cases):
    series, where, out = v1_cases["level"]
    k = AdtkEngine().params["suppress_points"]
    scored = out.scored
    first = int(np.flatnonzero(scored.alarms[where.start:])[0]) + where.start
    assert first < where.start + 30
    assert (scored.scores[first + 1:first + k + 1] == 0).all()  # suppressed after the first point
    assert scored.confirmed[first + 1:first + k + 1].sum() > k // 2  # ...but still passing the threshold
    episode = [r for r in out.results if r.is_anomaly and r.window_start <= series.timestamps[first] < r.window_end]
    assert len(episode) == 1
    assert episode[0].window_end - episode[0].window_start > pd.Timedelta(minutes=k)
    assert episode[0].anomaly_label is AnomalyType.TREND
