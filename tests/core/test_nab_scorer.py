"""The NAB scorer on hand-made cases (no Django, no data files)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.core.evaluation.nab import (
    MAX_TP,
    NAB_PROFILES,
    CostProfile,
    label_rows,
    label_rows_from_ranges,
    normalised,
    probationary_length,
    profiles_from_mapping,
    scaled_sigmoid,
    score_corpus,
    score_file,
    sweep_thresholds,
    window_rows,
)

STANDARD = NAB_PROFILES["standard"]

# 200 rows: probation = 30 rows; windows on rows 100..119 and 160..179
N = 200
WINDOWS = [(100, 119), (160, 179)]


def labels():
    return label_rows_from_ranges(N, WINDOWS)


def scores_at(*rows: int, value: float = 1.0, n: int = N) -> np.ndarray:
    scores = np.zeros(n)
    scores[list(rows)] = value
    return scores


def corpus(scores):
    return {"f.csv": (scores, labels())}


def test_scaled_sigmoid_matches_nab():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0
    assert scaled_sigmoid(10.0) == -1.0
    assert scaled_sigmoid(2.0) == pytest.approx(2 / (1 + math.exp(10)) - 1)
    np.testing.assert_allclose(scaled_sigmoid(np.array([-1.0, 0.0, 5.0])), [MAX_TP, 0.0, -1.0])


def test_probationary_length():
    assert probationary_length(200) == 30
    assert probationary_length(1624) == 243
    assert probationary_length(5000) == 750
    assert probationary_length(22695) == 750
    assert probationary_length(0) == 0


def test_perfect_detector_scores_100_and_null_0():
    perfect = score_corpus(corpus(scores_at(100, 160)), STANDARD, 0.5)
    assert perfect.raw == pytest.approx(2.0)
    assert perfect.score == pytest.approx(100.0)
    assert (perfect.tp_windows, perfect.fn_windows, perfect.fp_events) == (2, 0, 0)
    null = score_corpus(corpus(np.zeros(N)), STANDARD, 0.5)
    assert null.raw == -2.0
    assert null.score == 0.0
    assert null.recall == 0.0
    for profile in NAB_PROFILES.values():
        assert score_corpus(corpus(scores_at(100, 160)), profile, 0.5).score == pytest.approx(100.0)
        assert score_corpus(corpus(np.zeros(N)), profile, 0.5).score == pytest.approx(0.0)


def test_detection_on_first_row_earns_exactly_the_tp_weight():
    profile = CostProfile("x", tp_weight=2.5, fp_weight=0.1, fn_weight=1.0)
    result = score_file(scores_at(100), labels(), profile, 0.5)
    assert result.window_parts[0] == pytest.approx(2.5)
    assert result.window_parts[1] == -1.0


def test_later_detection_in_window_earns_less():
    early = score_file(scores_at(101), labels(), STANDARD, 0.5).window_parts[0]
    middle = score_file(scores_at(110), labels(), STANDARD, 0.5).window_parts[0]
    late = score_file(scores_at(119), labels(), STANDARD, 0.5).window_parts[0]
    assert 1.0 > early > middle > late > 0.0
    # NAB: y = -(R - i + 1) / W; the window's last row is y = -1/W
    assert late == pytest.approx(scaled_sigmoid(-1 / 20) / MAX_TP)
    assert middle == pytest.approx(scaled_sigmoid(-10 / 20) / MAX_TP)


def test_only_the_earliest_detection_in_a_window_counts():
    one = score_file(scores_at(105), labels(), STANDARD, 0.5)
    many = score_file(scores_at(105, 106, 110, 119), labels(), STANDARD, 0.5)
    assert many.raw == pytest.approx(one.raw)
    assert many.fp_detections == 0


def test_fp_right_after_a_window_costs_less_than_far_after():
    base = score_file(np.zeros(N), labels(), STANDARD, 0.5).raw
    near = score_file(scores_at(121), labels(), STANDARD, 0.5).raw - base
    far = score_file(scores_at(150), labels(), STANDARD, 0.5).raw - base
    assert -STANDARD.fp_weight <= far < near < 0
    # y = (i - R_prev) / (W_prev - 1)
    assert near == pytest.approx(STANDARD.fp_weight * scaled_sigmoid(2 / 19))
    # more than 3 window lengths after: the full FP weight
    later = label_rows_from_ranges(400, [(100, 119)])
    cost = score_file(scores_at(119 + 58, n=400), later, STANDARD, 0.5).raw + 1.0
    assert cost == pytest.approx(-STANDARD.fp_weight)


def test_fp_before_the_first_window_costs_the_full_weight():
    base = score_file(np.zeros(N), labels(), STANDARD, 0.5).raw
    cost = score_file(scores_at(50), labels(), STANDARD, 0.5).raw - base
    assert cost == pytest.approx(-STANDARD.fp_weight)
    run = score_file(scores_at(50, 51, 52, 70), labels(), STANDARD, 0.5)
    assert run.raw - base == pytest.approx(-4 * STANDARD.fp_weight)  # every detection counts
    assert (run.fp_detections, run.fp_events) == (4, 2)


def test_probationary_detections_are_ignored():
    base = score_file(np.zeros(N), labels(), STANDARD, 0.5)
    early = score_file(scores_at(0, 10, 29), labels(), STANDARD, 0.5)
    assert early.raw == base.raw
    assert early.detections == 0
    assert score_file(scores_at(30), labels(), STANDARD, 0.5).detections == 1
    # a window inside the probationary period is not scored at all
    lab = label_rows_from_ranges(N, [(5, 20), (100, 119)])
    assert lab.scored_windows == [1]
    assert score_file(scores_at(5, 100), lab, STANDARD, 0.5).window_parts == (1.0,)


def test_threshold_is_inclusive():
    assert score_file(scores_at(100, value=0.7), labels(), STANDARD, 0.7).tp_windows == 1
    assert score_file(scores_at(100, value=0.7), labels(), STANDARD, 0.70001).tp_windows == 0


def test_sweep_picks_the_best_threshold_on_a_hand_case():
    # 0.9: a hit early in window 1; 0.8: a lone FP; 0.6: a hit early in window 2;
    # 0.4: four FPs far from windows. Best: 0.6 (two hits, one FP).
    scores = np.zeros(N)
    scores[102] = 0.9
    scores[60] = 0.8
    scores[161] = 0.6
    scores[[40, 45, 50, 55]] = 0.4
    files = corpus(scores)
    sweep = sweep_thresholds(files.values(), STANDARD)
    assert list(sweep.thresholds) == [np.inf, 0.9, 0.8, 0.6, 0.4, 0.0]
    for threshold, raw in zip(sweep.thresholds, sweep.raw, strict=True):
        assert raw == pytest.approx(score_corpus(files, STANDARD, threshold).raw)
    best, raw = sweep.best()
    assert best == 0.6
    hit1 = scaled_sigmoid(-18 / 20) / MAX_TP
    hit2 = scaled_sigmoid(-19 / 20) / MAX_TP
    assert raw == pytest.approx(hit1 + hit2 - 0.11)


def test_sweep_equals_direct_scoring_on_random_data():
    rng = np.random.default_rng(7)
    files = {}
    for k in range(4):
        n = int(rng.integers(150, 300))
        files[f"f{k}"] = (np.round(rng.random(n), 2), label_rows_from_ranges(n, [(60, 80), (120, 140)]))
    for profile in NAB_PROFILES.values():
        sweep = sweep_thresholds(files.values(), profile)
        for threshold, raw in zip(sweep.thresholds, sweep.raw, strict=True):
            assert raw == pytest.approx(score_corpus(files, profile, threshold).raw)
        best_t, best_raw = sweep.best()
        assert best_raw == max(sweep.raw)


def test_window_level_precision_recall_f1():
    result = score_corpus(corpus(scores_at(105, 50, 51, 130)), STANDARD, 0.5)
    assert (result.tp_windows, result.fn_windows, result.fp_events, result.fp_detections) == (1, 1, 2, 3)
    assert result.precision == pytest.approx(1 / 3)
    assert result.recall == pytest.approx(1 / 2)
    assert result.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))


def test_windows_map_to_rows_in_file_order_with_repeats_and_steps_back():
    ts = pd.to_datetime(
        ["2020-01-01 00:00", "2020-01-01 00:05", "2020-01-01 00:05", "2020-01-01 00:10",
         "2020-01-01 00:05", "2020-01-01 00:15", "2020-01-01 00:20"]
    )
    assert window_rows(ts, [("2020-01-01 00:05", "2020-01-01 00:10")]) == [(1, 3)]
    assert window_rows(ts, [("2020-01-01 00:12", "2020-01-01 00:20")]) == [(5, 6)]
    # a label end between samples: the last row before the first later one
    assert window_rows(ts, [("2020-01-01 00:00", "2020-01-01 00:07")]) == [(0, 2)]
    with pytest.raises(ValueError, match="covers no row"):
        window_rows(ts, [("2020-01-01 00:16", "2020-01-01 00:19")])
    lab = label_rows(ts, [("2020-01-01 00:05", "2020-01-01 00:10")], probation=0)
    assert list(lab.window_id) == [-1, 0, 0, 0, -1, -1, -1]


def test_normalisation_and_profiles():
    assert normalised(-2.0, -2.0, 2.0) == 0.0
    assert normalised(2.0, -2.0, 2.0) == 100.0
    assert normalised(0.0, 0.0, 0.0) == 0.0
    profiles = profiles_from_mapping(
        {"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}}}
    )
    assert profiles["standard"] == STANDARD
    with pytest.raises(ValueError, match="CostMatrix"):
        profiles_from_mapping({"x": {}})
