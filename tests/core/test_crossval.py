"""Leave-one-category-out cross-validation: every choice of a fold is made without the
fold's files (small synthetic corpora in NAB layout whose scores are their values)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import MetricSeries
from analytics.core.engines.base import AnomalyDetectionEngine
from analytics.core.engines.parameters import Parameter
from analytics.core.engines.registry import engine_registry
from analytics.core.engines.scored import ScoredSeries
from analytics.core.evaluation.crossval import Candidate, choose, cross_validate
from analytics.core.evaluation.harness import cross_validate_engine, load_dataset, main
from analytics.core.evaluation.nab import NAB_PROFILES, normalised, sweep_thresholds


class ValueEngine(AnomalyDetectionEngine):
    """Scores are the series' values (or 1 - value with ``invert``): the test decides them."""

    name = "test-values"
    parameters = {"invert": Parameter(bool, False)}

    @property
    def history_points(self) -> int:
        return 0

    def score(self, series: MetricSeries, state: Any = None) -> tuple[ScoredSeries, Any]:
        x = np.asarray(series.values, dtype=np.float64)
        scores = 1.0 - x if self.params["invert"] else x.copy()
        return ScoredSeries(scores, x, np.ones(len(x)), scores >= 0.5), None


if ValueEngine.name not in engine_registry.names():
    engine_registry.register(ValueEngine)

ROWS = 200
WINDOW = (150, 170)  # rows; probation is the first 30 rows


def write_corpus(root: Path, files: dict[str, np.ndarray]) -> Path:
    """One window per file at rows WINDOW; scores = the values written."""
    windows = {}
    stamps = pd.date_range("2020-01-01", periods=ROWS, freq="5min").strftime("%Y-%m-%d %H:%M:%S")
    for name, values in files.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": stamps, "value": values}).to_csv(path, index=False)
        windows[name] = [[f"{stamps[WINDOW[0]]}.000000", f"{stamps[WINDOW[1]]}.000000"]]
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return root


def spike_file(in_window: float, false_alarm: float | None = None, baseline: float = 0.0) -> np.ndarray:
    values = np.full(ROWS, baseline)
    values[WINDOW[0]] = in_window
    if false_alarm is not None:
        values[100] = false_alarm  # before the window: full FP weight
    return values


def threshold_corpus(root: Path, c_window: float = 0.3) -> Path:
    """A's window scores 0.9, B's 0.6, C's ``c_window`` with one false alarm at 0.35 before
    it. On all files the best threshold catches C (0.3: +2 for 0.11); without C it is 0.6."""
    return write_corpus(root, {
        "catA/a.csv": spike_file(0.9),
        "catB/b.csv": spike_file(0.6),
        "catC/c.csv": spike_file(c_window, false_alarm=0.35),
    })


def test_fold_threshold_is_chosen_on_the_other_categories(tmp_path):
    report = cross_validate_engine(threshold_corpus(tmp_path / "nab"), "test-values")
    standard = report.results["standard"]
    by_fold = {f.category: f for f in standard.folds}
    assert standard.in_sample_choice.threshold == 0.3
    assert by_fold["catC"].choice.threshold == 0.6  # differs from in-sample: C's files were not used
    assert by_fold["catA"].choice.threshold == 0.3
    assert by_fold["catC"].result.tp_windows == 0 and by_fold["catC"].result.fp_events == 0
    assert standard.in_sample.tp_windows == 3

    # each fold's threshold is the sweep's optimum over exactly the other categories' files
    dataset = load_dataset(tmp_path / "nab")
    labels = {f.name: f.labels for f in dataset.files}
    for fold in standard.folds:
        training = [(report.candidates[0].scores[n], labels[n]) for n in labels if not n.startswith(fold.category)]
        assert fold.choice.threshold == sweep_thresholds(training, NAB_PROFILES["standard"]).best()[0]

    # pooled: held-out raw scores summed, normalised once over the whole corpus
    pooled = standard.pooled
    assert pooled.raw == pytest.approx(sum(f.result.raw for f in standard.folds))
    assert pooled.score == pytest.approx(normalised(pooled.raw, -3.0, 3.0))
    assert pooled.score < standard.in_sample.score


def test_changing_the_held_out_files_does_not_change_their_folds_choice(tmp_path):
    """Make C's window unreachable (score 0.05): C's own fold keeps its threshold (chosen
    on A and B), while the in-sample threshold and the other folds' move."""
    before = cross_validate_engine(threshold_corpus(tmp_path / "one"), "test-values").results["standard"]
    after = cross_validate_engine(threshold_corpus(tmp_path / "two", c_window=0.05), "test-values").results["standard"]
    fold = {f.category: f for f in before.folds}
    fold_after = {f.category: f for f in after.folds}
    assert fold_after["catC"].choice == fold["catC"].choice
    assert after.in_sample_choice.threshold != before.in_sample_choice.threshold
    assert fold_after["catA"].choice.threshold != fold["catA"].choice.threshold


def search_corpus(root: Path) -> Path:
    """Baseline 0.5 everywhere. A (two files) and B (one): the window holds a 1.0, which
    ``invert=False`` catches. C (two files): a 0.0, which only ``invert=True`` catches."""
    return write_corpus(root, {
        "catA/a1.csv": spike_file(1.0, baseline=0.5),
        "catA/a2.csv": spike_file(1.0, baseline=0.5),
        "catB/b.csv": spike_file(1.0, baseline=0.5),
        "catC/c1.csv": spike_file(0.0, baseline=0.5),
        "catC/c2.csv": spike_file(0.0, baseline=0.5),
    })


def test_searched_parameter_is_chosen_per_fold_on_the_other_categories(tmp_path):
    report = cross_validate_engine(search_corpus(tmp_path / "nab"), "test-values", search={"invert": [False, True]})
    assert [c.params for c in report.candidates] == [{"invert": False}, {"invert": True}]
    standard = report.results["standard"]
    chosen = {f.category: report.candidates[f.choice.candidate].params["invert"] for f in standard.folds}
    # fold A trains on B (1 window for False) + C (2 windows for True): True, which misses A
    assert chosen == {"catA": True, "catB": False, "catC": False}
    assert report.candidates[standard.in_sample_choice.candidate].params == {"invert": False}
    by_fold = {f.category: f.result for f in standard.folds}
    assert by_fold["catA"].tp_windows == 0 and by_fold["catC"].tp_windows == 0 and by_fold["catB"].tp_windows == 1
    assert standard.in_sample.tp_windows == 3
    # the same selection through the pure function
    dataset = load_dataset(tmp_path / "nab")
    labels = {f.name: f.labels for f in dataset.files}
    training = [n for n in labels if not n.startswith("catA/")]
    assert choose(report.candidates, training, labels, NAB_PROFILES["standard"]).candidate == 1


def test_a_category_without_windows_counts_its_false_alarms_in_the_pool(tmp_path):
    root = write_corpus(tmp_path / "nab", {"catA/a.csv": spike_file(0.9), "catB/b.csv": spike_file(0.6)})
    quiet = root / "data" / "quiet" / "q.csv"
    quiet.parent.mkdir()
    values = np.zeros(ROWS)
    values[[60, 61, 120]] = 0.95  # two false-alarm episodes, three rows
    pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=ROWS, freq="5min"), "value": values}).to_csv(
        quiet, index=False)
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    (root / "labels" / "combined_windows.json").write_text(json.dumps({**windows, "quiet/q.csv": []}))
    standard = cross_validate_engine(root, "test-values").results["standard"]
    fold = next(f for f in standard.folds if f.category == "quiet")
    assert fold.normalised is None
    assert fold.result.fp_events == 2 and fold.result.fp_detections == 3
    assert fold.result.raw == pytest.approx(-0.33)
    assert standard.pooled.fp_events >= 2


def test_fixed_threshold_is_applied_in_every_fold(tmp_path):
    report = cross_validate_engine(threshold_corpus(tmp_path / "nab"), "test-values", threshold=0.5)
    assert {f.choice.threshold for cv in report.results.values() for f in cv.folds} == {0.5}


def test_cross_validate_needs_two_categories(tmp_path):
    labels = load_dataset(write_corpus(tmp_path / "nab", {"catA/a.csv": spike_file(0.9)})).files[0].labels
    with pytest.raises(ValueError, match="at least two categories"):
        cross_validate([Candidate({}, {"catA/a.csv": np.zeros(ROWS)})], {"catA/a.csv": labels}, NAB_PROFILES)


def test_cli_prints_folds_pooled_and_in_sample(tmp_path, capsys):
    root = search_corpus(tmp_path / "nab")
    assert main(["--data", str(root), "--engine", "test-values", "--cv", "category",
                 "--search", '{"invert": [false, true]}']) == 0
    text = capsys.readouterr().out
    for expected in ("catA", "catB", "catC", "pooled (CV)", "in-sample", "reward_low_FP_rate", "invert=True"):
        assert expected in text
    assert main(["--data", str(root), "--engine", "test-values", "--cv", "category", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["category"] for f in report["profiles"]["standard"]["folds"]] == ["catA", "catB", "catC"]
    assert main(["--data", str(root), "--engine", "test-values", "--search", '{"invert": [true]}']) == 2
    assert "only with --cv" in capsys.readouterr().err
    assert main(["--data", str(root), "--engine", "test-values", "--cv", "category", "--search", '{"invert": 1}']) == 2
    assert "non-empty list" in capsys.readouterr().err


def test_the_django_command_runs_the_cross_validation(tmp_path, capsys):
    """``python manage.py evaluate --data DIR --cv category`` as typed."""
    from django.core.management import execute_from_command_line

    root = threshold_corpus(tmp_path / "nab")
    execute_from_command_line(["manage.py", "evaluate", "--data", str(root), "--engine", "test-values",
                               "--cv", "category", "--json"])
    report = json.loads(capsys.readouterr().out)
    standard = report["profiles"]["standard"]
    assert [f["threshold"] for f in standard["folds"]] == [0.3, 0.3, 0.6]
    assert standard["in_sample"]["threshold"] == 0.3
