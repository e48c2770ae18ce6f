"""Every engine ("adtk", "adtk_v1", "vector") and the shared machinery: parameters,
alarms, detect/explain. Engine-specific behaviour: test_adtk_engine.py, test_adtk_v1.py.

Synthetic data: one-minute points with a daily cosine profile and Gaussian noise, one
injected anomaly per series (spike, level shift, or a day whose daily shape changed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import AnomalyResult, AnomalyType, MetricSeries
from analytics.core.engines import AdtkEngine, AdtkV1Engine, VectorEngine, engine_registry
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
ENGINES = ("adtk", "adtk_v1", "vector")


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
    assert {"adtk", "adtk_v1", "vector"} <= set(engine_registry.names())
    assert engine_registry.get("adtk") is AdtkEngine
    assert engine_registry.get("adtk_v1") is AdtkV1Engine
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
        ("adtk", {"scales": "1,x"}, "scales: must be comma-separated whole numbers"),
        ("adtk", {"baseline_points": 30, "block_points": 20}, "baseline_points: must hold at least two blocks"),
        ("adtk_v1", {"likelihood_block": 499}, "likelihood_block: must be a multiple of likelihood_refresh"),
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


# --- causality and incremental runs ------------------------------------------------------


@pytest.mark.parametrize("name", ENGINES)
def test_scores_are_causal_full_run(name):
    series, _ = make("spike", seed=5)
    engine = engine_registry.create(name)
    full = engine.score(series)[0].scores
    for cut in (3 * DAY + 17, 4 * DAY + 601):
        prefix = engine.score(series.slice(end=series.timestamps[cut]))[0].scores
        np.testing.assert_array_equal(prefix, full[:cut])


def test_postprocess_carry_equals_one_call():
    engine = engine_registry.create("adtk", min_alarm_points=2, confirm_window="3min", suppress="20min")
    rng = np.random.default_rng(1)
    scores = np.where(rng.random(600) < 0.05, 0.9, 0.1)
    ts = _ns(np.arange(600))
    whole = engine.postprocess(scores, ts, suppress_points=7)
    carry = None
    parts = []
    for a in range(0, 600, 13):
        *out, carry = engine.postprocess(scores[a:a + 13], ts[a:a + 13], suppress_points=7, carry=carry)
        parts.append(out)
    for i in range(3):
        np.testing.assert_array_equal(np.concatenate([p[i] for p in parts]), whole[i])


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


def test_suppression_drops_repeats_but_not_later_alarms():
    confirmed = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    ts = _ns(np.arange(12))
    np.testing.assert_array_equal(
        suppress_repeats(confirmed, ts, int(_ns(5))), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    )
    np.testing.assert_array_equal(postprocess(confirmed * 1.0, ts, AlarmRules(threshold=0.5))[1], confirmed)


@pytest.mark.parametrize("name", ENGINES)
def test_gate_scores_makes_the_scores_rank_the_alarms_only(name):
    series, _ = make("spike", seed=2)
    settings = {"min_alarm_points": 2, "confirm_window": "3min", "suppress": "1h", "threshold": 0.45}
    scored, _ = engine_registry.create(name, gate_scores=True, **settings).score(series)
    np.testing.assert_array_equal(scored.scores >= 0.45, scored.alarms)
    assert (scored.scores[~scored.alarms] == 0).all() and scored.alarms.any()
    raw, _ = engine_registry.create(name, **settings).score(series)
    np.testing.assert_array_equal(raw.alarms, scored.alarms)
    assert (raw.scores[~raw.alarms] > 0).any()


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
        assert state.stream.step_seconds == 300.0
    if name == "adtk_v1":
        assert state.step_seconds == 300.0


@pytest.mark.parametrize("name", ["adtk", "adtk_v1"])
def test_adtk_engines_handle_a_flat_series_and_a_short_one(name):
    flat = _series(np.full(500, 3.0))
    scored, _ = engine_registry.create(name).score(flat)
    assert (scored.scores == 0).all()
    short, _ = engine_registry.create(name).score(_series(np.arange(5.0)))
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
