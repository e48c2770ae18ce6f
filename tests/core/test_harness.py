"""The evaluation harness end to end on a tiny data set in NAB layout (tmp_path)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import MetricSeries
from analytics.core.engines.base import AnomalyDetectionEngine
from analytics.core.engines.parameters import Parameter
from analytics.core.engines.registry import engine_registry
from analytics.core.engines.scored import ScoredSeries
from analytics.core.evaluation.harness import evaluate, load_dataset, main, monotonic_utc, to_series


class RollingZEngine(AnomalyDetectionEngine):
    """A tiny causal engine for the tests: |z| of each point against the previous
    ``window`` points, squashed to [0, 1]."""

    name = "test-rolling-z"
    parameters = {"window": Parameter(int, 30, minimum=2)}

    @property
    def history_points(self) -> int:
        return self.params["window"]

    def score(self, series: MetricSeries, state: Any = None) -> tuple[ScoredSeries, Any]:
        values = pd.Series(series.values)
        past = values.shift(1).rolling(self.params["window"], min_periods=5)
        mean, std = past.mean(), past.std()
        z = ((values - mean).abs() / (std + 1e-9)).fillna(0.0).to_numpy()
        scores = 1.0 - np.exp(-z / 5.0)
        return ScoredSeries(scores, mean.fillna(0).to_numpy(), std.fillna(0).to_numpy(), scores > 0.9), None

    def detect(self, series, *, since=None, state=None):  # pragma: no cover - not used by the harness
        raise NotImplementedError

    def explain(self, result, series):  # pragma: no cover - not used by the harness
        raise NotImplementedError


if RollingZEngine.name not in engine_registry.names():
    engine_registry.register(RollingZEngine)

SPIKE_A = 250
SPIKE_B = 180


def write_dataset(root, *, repeat_in_b: bool = True) -> None:
    """Two files, 300 and 240 rows, one window each, a spike inside each window.
    File b repeats one timestamp (rows 99 and 100) and steps back once (row 150)."""
    rng = np.random.default_rng(0)
    (root / "data" / "catA").mkdir(parents=True)
    (root / "data" / "catB").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "config").mkdir()

    ts_a = pd.date_range("2020-01-01", periods=300, freq="5min")
    values_a = 10 + rng.normal(0, 0.5, 300)
    values_a[SPIKE_A] += 20
    pd.DataFrame({"timestamp": ts_a.strftime("%Y-%m-%d %H:%M:%S"), "value": values_a}).to_csv(
        root / "data" / "catA" / "a.csv", index=False
    )

    ts_b = list(pd.date_range("2021-06-01", periods=240, freq="h"))
    if repeat_in_b:
        ts_b[100] = ts_b[99]  # a repeated timestamp
        ts_b[150] = ts_b[148]  # a step back in time
    values_b = 5 + rng.normal(0, 0.2, 240)
    values_b[SPIKE_B] -= 8
    pd.DataFrame({"timestamp": [t.strftime("%Y-%m-%d %H:%M:%S") for t in ts_b], "value": values_b}).to_csv(
        root / "data" / "catB" / "b.csv", index=False
    )

    windows = {
        "catA/a.csv": [[str(ts_a[240]) + ".000000", str(ts_a[270]) + ".000000"]],
        "catB/b.csv": [[str(ts_b[170]) + ".000000", str(ts_b[200]) + ".000000"]],
    }
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    profiles = {
        name: {"CostMatrix": {"tpWeight": 1.0, "fnWeight": fn, "fpWeight": fp, "tnWeight": 1.0}}
        for name, fp, fn in [("standard", 0.11, 1.0), ("reward_low_FP_rate", 0.22, 1.0), ("reward_low_FN_rate", 0.11, 2.0)]
    }
    (root / "config" / "profiles.json").write_text(json.dumps(profiles))


@pytest.fixture
def dataset_dir(tmp_path):
    root = tmp_path / "nab"
    write_dataset(root)
    return root


def test_load_dataset_keeps_rows_in_file_order(dataset_dir):
    dataset = load_dataset(dataset_dir)
    assert [f.name for f in dataset.files] == ["catA/a.csv", "catB/b.csv"]
    b = dataset.files[1]
    assert len(b) == 240
    assert b.timestamps[100] == b.timestamps[99]
    assert b.timestamps[150] < b.timestamps[149]
    assert b.labels.windows == ((170, 200),)
    assert b.labels.probation == 36
    assert set(dataset.profiles) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}


def test_engine_sees_a_valid_series_with_one_point_per_row(dataset_dir):
    b = load_dataset(dataset_dir, files="catB/*").files[0]
    series = to_series(b)
    assert len(series) == len(b)
    assert (np.diff(series.timestamps.asi8) > 0).all()
    assert str(series.timestamps.tz) == "UTC"
    np.testing.assert_array_equal(series.values, b.values)
    original = b.timestamps.asi8
    nudged = series.timestamps.asi8
    ascending = np.r_[True, np.diff(original) > 0]
    # rows that already ascend (and are not overtaken by an earlier nudge) are unchanged
    assert (nudged[:100] == original[:100]).all()
    assert nudged[100] == original[99] + 1
    assert nudged[150] == original[149] + 1
    assert (nudged[ascending][151:] == original[ascending][151:]).all()


def test_monotonic_utc():
    ts = pd.DatetimeIndex(pd.to_datetime(["2020-01-01 00:00", "2020-01-01 00:00", "2020-01-01 00:00", "2020-01-01 00:01"]))
    fixed = monotonic_utc(ts)
    assert list(fixed.asi8 - ts.asi8) == [0, 1, 2, 0]


def test_evaluate_end_to_end(dataset_dir, tmp_path):
    out = tmp_path / "out"
    report = evaluate(dataset_dir, RollingZEngine(), results_dir=out)
    assert report.rows == 540 and report.windows == 2
    standard = report.results["standard"]
    assert standard.tp_windows == 2
    assert standard.score > 90  # the spikes are caught near the label, few or no FPs
    assert set(report.results) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    for result in report.results.values():
        assert 0 <= result.precision <= 1 and 0 <= result.recall <= 1

    # results CSVs: same relative paths, the file's own timestamps, rows in file order
    for name, rows in [("catA/a.csv", 300), ("catB/b.csv", 240)]:
        written = pd.read_csv(out / name, dtype={"timestamp": str})
        source = pd.read_csv(dataset_dir / "data" / name, dtype={"timestamp": str})
        assert list(written.columns) == ["timestamp", "anomaly_score"]
        assert len(written) == rows
        assert list(written["timestamp"]) == list(source["timestamp"])
        np.testing.assert_allclose(written["anomaly_score"], report.scores[name])
    b = pd.read_csv(out / "catB" / "b.csv", dtype={"timestamp": str})
    assert b["timestamp"][99] == b["timestamp"][100]  # the duplicate is preserved
    assert b["timestamp"][150] == b["timestamp"][148]  # so is the step back
    assert b["anomaly_score"].idxmax() == SPIKE_B
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profiles"]["standard"]["tp_windows"] == 2


def test_scores_are_the_engines_row_for_row(dataset_dir):
    dataset = load_dataset(dataset_dir)
    report = evaluate(dataset, RollingZEngine())
    for nab_file in dataset.files:
        expected, _ = RollingZEngine().score(to_series(nab_file))
        np.testing.assert_array_equal(report.scores[nab_file.name], expected.scores)


def test_fixed_threshold_and_parallel_jobs(dataset_dir):
    optimised = evaluate(dataset_dir, "test-rolling-z", {"window": 20}, jobs=2)
    fixed = evaluate(dataset_dir, "test-rolling-z", {"window": 20}, threshold=0.0)
    assert fixed.results["standard"].threshold == 0.0
    assert fixed.results["standard"].score < optimised.results["standard"].score
    sequential = evaluate(dataset_dir, "test-rolling-z", {"window": 20})
    for name in optimised.scores:
        np.testing.assert_array_equal(optimised.scores[name], sequential.scores[name])


def test_main_cli(dataset_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main([
        "--data", str(dataset_dir), "--engine", "test-rolling-z", "--params", '{"window": 25}',
        "--results-dir", str(out), "--files", "catA/*",
    ])
    assert code == 0
    text = capsys.readouterr().out
    assert "standard" in text and "reward_low_FN_rate" in text and "test-rolling-z" in text
    assert (out / "catA" / "a.csv").is_file()
    assert not (out / "catB").exists()

    assert main(["--data", str(dataset_dir), "--engine", "test-rolling-z", "--threshold", "0.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profiles"]["standard"]["threshold"] == 0.5
    assert report["params"] == {}


def test_main_reports_errors(dataset_dir, capsys):
    assert main(["--data", str(dataset_dir), "--engine", "no-such-engine"]) == 2
    assert "unknown engine" in capsys.readouterr().err
    assert main(["--data", str(dataset_dir), "--engine", "test-rolling-z", "--params", "[1]"]) == 2
    assert main(["--data", str(dataset_dir), "--engine", "test-rolling-z", "--params", '{"bogus": 1}']) == 2
    assert main(["--data", str(dataset_dir / "missing")]) == 2
    assert main(["--data", str(dataset_dir), "--engine", "test-rolling-z", "--files", "nothing/*"]) == 2


def test_unlabelled_file_is_an_error(dataset_dir):
    (dataset_dir / "data" / "catA" / "extra.csv").write_text("timestamp,value\n2020-01-01 00:00:00,1\n")
    with pytest.raises(ValueError, match="extra.csv has no entry"):
        load_dataset(dataset_dir)
