"""The detection engines ("adtk", "vector") and the shared detect/explain machinery.

Synthetic data: one-minute points with a daily cosine profile and Gaussian noise, one
injected anomaly per series (spike, level shift, or a day whose daily shape changed).
"""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import AnomalyResult, AnomalyType, MetricSeries
from analytics.core.engines import VectorEngine, engine_registry
from analytics.core.engines.adtk_v1.engine import AdtkV1Engine as AdtkEngine
from analytics.core.engines.adtk_v1.state import AdtkFittedState
from analytics.core.engines.alarms import (
    AlarmRules,
    confirm_alarms,
    postprocess,
    suppress_following_points,
    suppress_repeats,
)

DAY = 1440
DAYS = 6
EPOCH = pd.Timestamp("2024-03-04", tz="UTC")
ENGINES = ("adtk", "vector")


def _profile(minute_of_day: np.ndarray, peak_hour: float) -> np.ndarray:
    return np.cos(2 * np.pi * (minute_of_day / 60 - peak_hour) / 24)


def _series(values: np.ndarray, index: pd.DatetimeIndex | None = None) -> MetricSeries:
    if index is None:
        index = EPOCH + pd.to_timedelta(np.arange(len(values)), unit="min")
    return MetricSeries("tenant-1", "cluster-1", "node-1", "cpu", index, values, {})


def make(kind: str, seed: int = 0) -> tuple[MetricSeries, slice]:
    """Six days; the anomaly (if any) on day 5 (index 4). Returns the series and where."""
    rng = np.random.default_rng(seed)
    n = DAYS * DAY
    minute = np.arange(n) % DAY
    values = 40 + 15 * _profile(minute, 14) + rng.normal(0, 1, n)
    at = 4 * DAY + 600  # 10:00 on day 5
    if kind == "clean":
        return _series(values), slice(0, 0)
    if kind == "spike":
        values[at:at + 2] += 12
        return _series(values), slice(at, at + 2)
    if kind == "level":
        values[at:] += 8
        return _series(values), slice(at, at + 30)
    if kind == "seasonal":  # day 5's peak moves by six hours; its mean does not change
        day = slice(4 * DAY, 5 * DAY)
        values[day] = 40 + 15 * _profile(minute[day], 20) + rng.normal(0, 1, DAY)
        return _series(values), day
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def scored_cases():
    """(engine, kind) -> (series, where, EngineOutput), computed once."""
    out = {}
    for name in ENGINES:
        for kind in ("clean", "spike", "level", "seasonal"):
            series, where = make(kind)
            out[name, kind] = (series, where, engine_registry.create(name).analyse(series))
    return out


# --- registry and parameters ------------------------------------------------------------


def test_registry_lookup():
    assert {"adtk", "vector"} <= set(engine_registry.names())
    assert engine_registry.get("adtk") is AdtkEngine
    assert isinstance(engine_registry.create("vector"), VectorEngine)
    with pytest.raises(ValueError, match="engine: unknown engine 'nope'"):
        engine_registry.get("nope")


def test_registering_a_different_class_under_a_taken_name_fails():
    class Impostor(AdtkEngine):
        name = "adtk"

    with pytest.raises(ValueError, match="already registered"):
        engine_registry.register(Impostor)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("adtk", {"bogus": 1}, "bogus: unknown parameter"),
        ("vector", {"bogus": 1}, "bogus: unknown parameter"),
        ("adtk", {"threshold": 1.5}, "threshold: must be <= 1.0"),
        ("adtk", {"threshold": "high"}, "threshold: must be float"),
        ("adtk", {"threshold": float("nan")}, "threshold: must be finite"),
        ("adtk", {"window": "soon"}, "window: not a duration"),
        ("adtk", {"window": "0s"}, "window: must be a positive duration"),
        ("adtk", {"suppress": "-5min"}, "suppress: not a non-negative duration"),
        ("adtk", {"seasonal": "maybe"}, "seasonal: must be one of"),
        ("adtk", {"seasonal_periods": "1d,never"}, "seasonal_periods: not a duration"),
        ("adtk", {"min_alarm_points": 0}, "min_alarm_points: must be >= 1"),
        ("adtk", {"gate_scores": 1}, "gate_scores: must be bool"),
        ("vector", {"seasonal_days": 2.5}, "seasonal_days: must be int"),
        ("vector", {"direction": "sideways"}, "direction: must be one of"),
    ],
)
def test_invalid_parameters_raise_naming_the_parameter(name, params, message):
    with pytest.raises(ValueError, match=message):
        engine_registry.create(name, **params)


def test_defaults_are_declared_and_ints_coerce_to_float():
    engine = engine_registry.create("adtk", threshold=1)
    assert engine.params["threshold"] == 1.0 and isinstance(engine.params["threshold"], float)
    assert engine.params["window"] == "5min"
    assert set(engine.params) == set(AdtkEngine.parameters)


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
    vector = VectorEngine()
    assert vector.history_points == 7 * DAY + 15
    assert vector.history_points_for_fit() == vector.history_points  # the base-class default


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
# --- ADTK equivalence -------------------------------------------------------------------


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


# --- causality and incremental runs ------------------------------------------------------


@pytest.mark.parametrize("name", ENGINES)
def test_scores_are_causal_full_run(name):
    series, _ = make("spike", seed=5)
    engine = engine_registry.create(name)
    full = engine.score(series)[0].scores
    for cut in (3 * DAY + 17, 4 * DAY + 601):
        prefix = engine.score(series.slice(end=series.timestamps[cut]))[0].scores
        np.testing.assert_array_equal(prefix, full[:cut])


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


def test_postprocess_carry_equals_one_call():
    engine = AdtkEngine(min_alarm_points=2, confirm_window="3min", suppress="20min")
    rng = np.random.default_rng(1)
    scores = np.where(rng.random(600) < 0.05, 0.9, 0.1)
    ts = _ns(np.arange(600))
    whole = engine.postprocess(scores, ts, suppress_points=7)
    carry: dict = {}
    parts = []
    for a in range(0, 600, 13):
        *out, carry = engine.postprocess(scores[a:a + 13], ts[a:a + 13], suppress_points=7, carry=carry)
        parts.append(out)
    for i in range(3):
        np.testing.assert_array_equal(np.concatenate([p[i] for p in parts]), whole[i])


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


# --- detection quality -------------------------------------------------------------------


@pytest.mark.parametrize("name", ENGINES)
def test_clean_series_scores_low(scored_cases, name):
    series, _, out = scored_cases[name, "clean"]
    after_warmup = out.scored.scores[3 * DAY:]
    assert (after_warmup >= 0.5).mean() < 0.005, "false-alarm rate per point"
    anomalies = [r for r in out.results if r.is_anomaly and r.window_start >= series.timestamps[3 * DAY]]
    assert len(anomalies) <= 3, [(r.window_start, r.anomaly_score) for r in anomalies]


@pytest.mark.parametrize("name", ENGINES)
@pytest.mark.parametrize(("kind", "label"), [("spike", AnomalyType.SPIKE), ("level", AnomalyType.TREND)])
def test_injected_anomaly_is_found_and_labelled(scored_cases, name, kind, label):
    series, where, out = scored_cases[name, kind]
    assert out.scored.scores[where].max() >= 0.5
    t = series.timestamps[where.start]
    hits = [r for r in out.results if r.is_anomaly and r.window_start <= t < r.window_end]
    assert len(hits) == 1
    assert hits[0].anomaly_label is label, hits[0].explanation
    assert hits[0].anomaly_score >= 0.5
    assert hits[0].explanation is not None and hits[0].explanation.text


@pytest.mark.parametrize("name", ENGINES)
def test_seasonal_break_is_found_and_explained_as_seasonal(scored_cases, name):
    series, day, out = scored_cases[name, "seasonal"]
    assert out.scored.scores[day].max() >= 0.5
    assert any(r.is_anomaly and series.timestamps[day.start] <= r.window_start < series.timestamps[day.stop - 1]
               for r in out.results)
    # the changed day as one window: the classifier sees a shape change, not a level change
    result = AnomalyResult(
        "tenant-1", "cluster-1", "node-1", "cpu",
        series.timestamps[day.start].to_pydatetime(), series.timestamps[day.stop].to_pydatetime(), 0.9,
    )
    explanation = engine_registry.create(name).explain(result, series)
    assert explanation.anomaly_type is AnomalyType.SEASONAL
    assert "daily pattern" in explanation.text


def test_adtk_detect_labels_part_of_a_moved_peak_seasonal(scored_cases):
    """detect() reports a day whose peak moved as one SEASONAL episode: its anomalous
    blocks do not teach the seasonal baseline (``seasonal_hold``), so it alarms most of
    the day, and the on-and-off alarms (episodes closer than ``merge_gap``) merge into one
    episode, which the classifier reads as SEASONAL."""
    series, day, out = scored_cases["adtk", "seasonal"]
    labels = {r.anomaly_label for r in out.results
              if r.is_anomaly and series.timestamps[day.start] <= r.window_start < series.timestamps[day.stop - 1]}
    assert AnomalyType.SEASONAL in labels


# --- detect(): the shape of the results --------------------------------------------------


@pytest.mark.parametrize("name", ENGINES)
def test_detect_partitions_the_analysed_range(scored_cases, name):
    series, _, _ = scored_cases[name, "level"]
    since = series.timestamps[4 * DAY + 3].to_pydatetime()  # not window-aligned
    results = engine_registry.create(name).detect(series, since=since)
    assert results and results[0].window_start <= since
    assert all(a.window_end == b.window_start for a, b in zip(results, results[1:], strict=False))
    assert all(r.window_start < r.window_end for r in results)
    assert results[-1].window_end > series.timestamps[-1]
    assert all(not (a.is_anomaly and b.is_anomaly) for a, b in zip(results, results[1:], strict=False))
    analysed = series.timestamps[4 * DAY + 3:]
    for r in results:  # window score = highest point score inside
        inside = (analysed >= r.window_start) & (analysed < r.window_end)
        assert inside.any()
    assert any(not r.is_anomaly and r.anomaly_score > 0 for r in results)


def test_detect_on_nothing_new_is_empty():
    series, _ = make("clean")
    assert AdtkEngine().detect(series, since=series.timestamps[-1] + pd.Timedelta("1min")) == []


# --- post-processing ---------------------------------------------------------------------


def _ns(minutes):
    return (np.asarray(minutes, dtype=np.int64) * 60 * 10**9)


def test_k_of_n_confirmation():
    scores = np.array([0.9, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.9])
    ts = _ns(np.arange(8))
    confirmed = confirm_alarms(scores, ts, threshold=0.5, min_alarm_points=2, confirm_window_ns=_ns(3))
    np.testing.assert_array_equal(confirmed, [0, 0, 1, 1, 0, 0, 0, 0])


def test_point_suppression_counts_points_from_the_alarms_first_point():
    confirmed = np.zeros(20, dtype=bool)
    confirmed[[2, 3, 4, 6, 7, 8, 12, 13]] = True
    starts, suppressed = suppress_following_points(confirmed, 4)
    np.testing.assert_array_equal(np.flatnonzero(starts), [2, 7, 12])  # 7 - 2 > 4, 12 - 7 > 4
    np.testing.assert_array_equal(np.flatnonzero(suppressed), [3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16])
    off, none = suppress_following_points(confirmed, 0)
    np.testing.assert_array_equal(off, confirmed)
    assert not none.any()


def test_adtk_suppression_zeroes_scores_but_keeps_a_level_shift_one_episode(scored_cases):
    series, where, out = scored_cases["adtk", "level"]
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


def test_suppression_drops_repeats_but_not_later_alarms():
    confirmed = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    ts = _ns(np.arange(12))
    np.testing.assert_array_equal(
        suppress_repeats(confirmed, ts, int(_ns(5))), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    )
    np.testing.assert_array_equal(postprocess(confirmed * 1.0, ts, AlarmRules(threshold=0.5))[1], confirmed)


def test_gate_scores_makes_thresholded_scores_agree_with_alarms():
    series, _ = make("spike", seed=2)
    engine = AdtkEngine(gate_scores=True, min_alarm_points=2, confirm_window="3min", suppress="1h")
    scored, _ = engine.score(series)
    np.testing.assert_array_equal(scored.scores >= 0.5, scored.alarms)
    raw, _ = AdtkEngine(min_alarm_points=2, confirm_window="3min", suppress="1h").score(series)
    assert (raw.scores >= 0.5).sum() > scored.alarms.sum()


# --- other sampling, batches ------------------------------------------------------------


@pytest.mark.parametrize("name", ENGINES)
def test_five_minute_irregular_series_like_nab(name):
    rng = np.random.default_rng(9)
    steps = np.full(4000, 300.0)
    steps[rng.choice(4000, 200, replace=False)] = rng.uniform(1, 2000, 200)  # jitter and gaps
    index = EPOCH + pd.to_timedelta(np.cumsum(steps), unit="s")
    t = index.asi8 / 1e9
    values = 10 + 3 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 0.3, 4000)
    values[3000] += 6
    scored, state = engine_registry.create(name).score(_series(values, index))
    assert scored.scores.shape == (4000,) and ((scored.scores >= 0) & (scored.scores <= 1)).all()
    assert scored.scores[3000] >= 0.5
    assert (scored.scores[1000:] >= 0.5).mean() < 0.01
    if name == "adtk":
        assert state.step_seconds == 300.0


def test_adtk_handles_a_flat_series_and_a_short_one():
    flat = _series(np.full(500, 3.0))
    scored, _ = AdtkEngine().score(flat)
    assert (scored.scores == 0).all()
    short, _ = AdtkEngine().score(_series(np.arange(5.0)))
    assert (short.scores == 0).all()


def test_vector_batch_equals_single_series_and_is_causal():
    rng = np.random.default_rng(4)
    n = 2 * DAY
    index = EPOCH + pd.to_timedelta(np.arange(n), unit="min")
    batch = 20 + 5 * _profile(np.arange(n) % DAY, 14)[None, :] + rng.normal(0, 1, (8, n))
    batch[3, 1500] += 15
    engine = VectorEngine()
    scores = engine.score_batch(batch, index)
    assert scores.shape == batch.shape
    assert scores[3, 1500] >= 0.5
    single = engine.score(_series(batch[3], index))[0].scores
    np.testing.assert_array_equal(single, scores[3])
    np.testing.assert_array_equal(engine.score_batch(batch[:, :1700], index[:1700]), scores[:, :1700])
    with pytest.raises(ValueError, match="values: must be 2-D"):
        engine.score_batch(batch[0], index)
    with pytest.raises(ValueError, match="timestamps: length"):
        engine.score_batch(batch, index[:10])
