"""The vectorised engine's fast kernels (vector_engine.py): min/max median networks on
flattened batches, the median-of-medians local level, and their row independence.
Detection quality and batch/single equality live in test_engines.py."""

from __future__ import annotations

import bottleneck as bn
import numpy as np
import pandas as pd
import pytest

from analytics.core.engines import VectorEngine, calibration
from analytics.core.engines.vector_engine import _causal_level, _rolling_median, _sigma_to_score

EPOCH = pd.Timestamp("2024-03-04", tz="UTC")


def _noisy(shape, seed=0):
    rng = np.random.default_rng(seed)
    y = np.round(rng.normal(size=shape), 1)  # ties included
    y[3, 40] = np.nan
    y[7, -1] = np.nan
    y[8, 0] = np.nan
    return y


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_rolling_median_networks_equal_bottleneck(k):
    y = _noisy((20, 300))
    med, _ = _rolling_median(y, k)
    np.testing.assert_array_equal(med[:, k - 1:], bn.move_median(y, k, axis=1)[:, k - 1:])


@pytest.mark.parametrize("w", [1, 2, 3, 4, 9, 14, 15, 21, 300, 301])
def test_causal_level_is_the_median_of_the_thirds_or_the_exact_median(w):
    y = _noisy((12, 300), seed=1)
    expected = np.full_like(y, np.nan)
    for t in range(w, y.shape[1]):
        window = y[:, t - w:t]
        if w % 3 == 0:
            k = w // 3
            thirds = [np.median(window[:, i * k:(i + 1) * k], axis=1) for i in range(3)]
            expected[:, t] = np.median(np.stack(thirds), axis=0)
        else:
            expected[:, t] = np.median(window, axis=1)
    np.testing.assert_array_equal(_causal_level(y, w), expected)


def test_level_ignores_outliers_in_one_third_and_follows_a_shift():
    y = np.zeros((1, 40))
    y[0, 20:25] = 100.0  # five in a row: at most one third of any window has a majority of them
    level = _causal_level(y, 15)
    assert np.all(level[0, 15:] == 0.0)
    y = np.zeros((1, 40))
    y[0, 20:] = 1.0  # a level shift: followed once two thirds have moved
    level = _causal_level(y, 15)
    assert level[0, 27] == 0.0 and level[0, 28] == 1.0  # as the exact median of 15


def test_sigma_to_score_matches_calibration():
    z = np.concatenate([np.random.default_rng(2).standard_cauchy(10_000) * 10, [0, 4, -4, np.inf, -np.inf, np.nan]])
    np.testing.assert_array_equal(_sigma_to_score(z), calibration.sigma_to_score(z))


def test_rows_are_independent_and_layout_does_not_matter():
    """The kernels shift flattened arrays across row ends: no value may leak between rows."""
    n = 1440
    index = EPOCH + pd.to_timedelta(np.arange(n), unit="min")
    rng = np.random.default_rng(3)
    scale = np.array([[1], [1e6], [1e-6], [5], [1], [1]])
    offset = np.array([[0], [1e9], [0], [-50], [0], [0]])
    batch = rng.normal(size=(6, n)) * scale + offset
    batch[0, -3:] = 1e12  # huge values at the end of a row, just before the next row starts
    batch[4, :20] = np.nan
    batch[5, 100:130] = np.nan
    engine = VectorEngine()
    scores = engine.score_batch(batch, index)
    for i in range(len(batch)):
        np.testing.assert_array_equal(engine.score_batch(batch[i:i + 1], index)[0], scores[i])
    np.testing.assert_array_equal(engine.score_batch(np.asfortranarray(batch), index), scores)
    np.testing.assert_array_equal(engine.score_batch(batch[::-1], index), scores[::-1])
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()


def test_prefix_scores_equal_full_run_scores_in_a_batch():
    n = 1440
    index = EPOCH + pd.to_timedelta(np.arange(n), unit="min")
    rng = np.random.default_rng(4)
    batch = 30 + rng.normal(size=(5, n))
    batch[2, 700] += 20
    batch[3, 300:] += 8
    engine = VectorEngine()
    full = engine.score_batch(batch, index)
    for cut in (16, 40, 361, 701, 1000):
        np.testing.assert_array_equal(engine.score_batch(batch[:, :cut], index[:cut]), full[:, :cut])


def test_a_series_shorter_than_the_scale_window_scores():
    index = EPOCH + pd.to_timedelta(np.arange(100), unit="min")
    x = 10 + np.random.default_rng(5).normal(size=(2, 100))
    x[1, 80] += 30
    scores = VectorEngine().score_batch(x, index)
    assert (scores[:, :45] == 0).all()  # 15 points of level, then 30 residuals
    assert scores[1, 80] >= 0.5 and (scores[0] < 0.5).all()


@pytest.mark.parametrize(("m", "n"), [(0, 1440), (0, 0), (2, 0), (1, 1), (2, 15)])
def test_degenerate_shapes(m, n):
    index = EPOCH + pd.to_timedelta(np.arange(n), unit="min")
    scores = VectorEngine().score_batch(np.ones((m, n)), index)
    assert scores.shape == (m, n) and (scores == 0).all()
