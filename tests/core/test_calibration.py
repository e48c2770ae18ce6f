"""The shared calibration: sigma -> score mapping and robust past scales."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.core.engines import calibration
from analytics.core.engines.calibration import (
    EPISODE_Z_HALF,
    Z_HALF,
    episode_score,
    ratio_sigmas,
    score_to_sigma,
    sigma_to_score,
)


def test_half_score_is_exactly_the_documented_sigma_level():
    assert Z_HALF == 4.0
    assert sigma_to_score(Z_HALF) == pytest.approx(0.5, abs=1e-15)
    assert sigma_to_score(-Z_HALF) == pytest.approx(0.5, abs=1e-15)
    assert sigma_to_score(3.9) < 0.5 < sigma_to_score(4.1)


def test_documented_reference_points():
    assert sigma_to_score(2.0) == pytest.approx(0.2)
    assert sigma_to_score(3.0) == pytest.approx(0.36)
    assert sigma_to_score(8.0) == pytest.approx(0.8)


def test_bounded_monotone_and_symmetric():
    z = np.linspace(0, 1000, 100_001)
    s = sigma_to_score(z)
    assert s[0] == 0.0
    assert ((s >= 0) & (s < 1)).all()
    assert (np.diff(s) > 0).all()
    np.testing.assert_array_equal(sigma_to_score(-z), s)


def test_nan_is_zero_and_infinity_is_one():
    np.testing.assert_array_equal(sigma_to_score(np.array([np.nan, np.inf, -np.inf])), [0.0, 1.0, 1.0])


def test_inverse():
    s = np.linspace(0, 0.999, 50)
    np.testing.assert_allclose(sigma_to_score(score_to_sigma(s)), s, atol=1e-12)


def test_robust_location_scale_is_consistent_and_robust():
    rng = np.random.default_rng(0)
    x = rng.normal(10, 2, 20_000)
    center, sigma = calibration.robust_location_scale(x)
    assert center == pytest.approx(10, abs=0.05)
    assert sigma == pytest.approx(2, rel=0.05)
    x[:1000] = 1e6  # 5% gross outliers barely move it
    _, sigma_out = calibration.robust_location_scale(x)
    assert sigma_out == pytest.approx(2, rel=0.15)


def test_zero_mad_falls_back_to_mean_absolute_deviation():
    x = np.zeros(100)
    x[:10] = 1.0
    center, sigma = calibration.robust_location_scale(x)
    assert center == 0.0
    assert sigma == pytest.approx(calibration.MEAN_ABS_TO_SIGMA * 0.1)


def test_causal_scale_uses_only_the_past():
    rng = np.random.default_rng(1)
    r = rng.normal(0, 3, 2000)
    scale = calibration.causal_mean_abs_scale(r, 500, 50)
    assert np.isnan(scale[:50]).all() and np.isfinite(scale[50:]).all()
    assert scale[1999] == pytest.approx(3, rel=0.1)
    changed = r.copy()
    changed[1500] = 1e9  # the point itself and later points do not change its scale
    np.testing.assert_array_equal(calibration.causal_mean_abs_scale(changed, 500, 50)[:1501], scale[:1501])


def test_floor():
    np.testing.assert_array_equal(calibration.floor_scale(np.array([0.0, 5.0, np.nan]), 100.0), [0.1, 5.0, 0.1])
    assert calibration.floor_scale(0.0, 0.0) == calibration.DEFAULT_ABSOLUTE_FLOOR


# --- the per-series likelihood mapping (adtk engine) ---------------------------------------

from analytics.core.engines.calibration import (  # noqa: E402
    LIKELIHOOD_Z_HALF,
    likelihood_to_score,
    score_to_likelihood,
)


def test_likelihood_half_score_is_exactly_the_documented_level():
    assert likelihood_to_score(LIKELIHOOD_Z_HALF) == pytest.approx(0.5, abs=1e-15)
    assert likelihood_to_score(LIKELIHOOD_Z_HALF * 0.98) < 0.5 < likelihood_to_score(LIKELIHOOD_Z_HALF * 1.02)


def test_likelihood_reference_points_and_shape():
    assert likelihood_to_score(LIKELIHOOD_Z_HALF * 3) == pytest.approx(0.75)
    z = np.linspace(0, 1000, 100_001)
    s = likelihood_to_score(z)
    assert s[0] == 0.0 and ((s >= 0) & (s < 1)).all() and (np.diff(s) > 0).all()
    # less surprise than usual is not an anomaly: negative z scores 0
    np.testing.assert_array_equal(likelihood_to_score(np.array([-5.0, -0.1, np.nan, np.inf])), [0, 0, 0, 1])


def test_likelihood_inverse():
    s = np.linspace(0, 0.999, 50)
    np.testing.assert_allclose(likelihood_to_score(score_to_likelihood(s)), s, atol=1e-12)


def test_episode_score_grows_with_evidence_and_magnitude_and_does_not_saturate():
    evidences = [0.5, 0.6, 0.8, 0.9, 0.99]
    magnitudes = [4.0, 8.0, 16.0, 35.0, 100.0]
    grid = np.array([[episode_score(e, m) for m in magnitudes] for e in evidences])
    assert (np.diff(grid, axis=0) > 0).all() and (np.diff(grid, axis=1) > 0).all()
    assert grid.max() < 0.999  # still room above the largest
    assert episode_score(0.7, EPISODE_Z_HALF) == pytest.approx(0.7 ** 0.5 / (0.7 ** 0.5 + 0.3 ** 0.5))
    assert episode_score(1.0, 0.0) == 1.0 and episode_score(0.8, float("inf")) == 1.0
    assert episode_score(float("nan"), 10.0) == 0.0 and episode_score(0.8, float("nan")) == 0.0


def test_episode_score_levels_mean_what_the_docstring_says():
    """0.5: the alarm-level evidence with 8 sigmas, or evidence 0.8 with 4; 0.9: 72 sigmas
    at the alarm level, 36 at evidence 0.8, about 16.5 at evidence 0.95."""
    assert episode_score(0.5, 8.0) == pytest.approx(0.5) and episode_score(0.8, 4.0) == pytest.approx(0.5)
    assert episode_score(0.5, 72.0) == pytest.approx(0.9) and episode_score(0.8, 36.0) == pytest.approx(0.9)
    assert episode_score(0.95, 16.5) == pytest.approx(0.9, abs=1e-3)


def test_ratio_sigmas_count_a_doubling_and_a_halving_alike():
    """Baseline 100, noise 10: a doubling is 10 linear sigmas, a halving 5; as ratios both
    are log(2) / 0.1 = 6.93 sigmas. Small changes stay linear; a larger rise is still larger."""
    up, down = ratio_sigmas(np.array([10.0, 5.0]), np.array([200.0, 50.0]), np.array([100.0, 100.0]))
    assert up == pytest.approx(10 * np.log(2)) and down == pytest.approx(up)
    assert ratio_sigmas(0.1, 101.0, 100.0) == pytest.approx(0.1, rel=0.01)
    rises = ratio_sigmas(np.arange(1.0, 200.0), 100.0 + 10 * np.arange(1.0, 200.0), 100.0)
    assert (np.diff(rises) > 0).all()


def test_ratio_sigmas_stay_linear_without_a_positive_baseline_and_floor_a_fall_to_zero():
    sigmas = np.array([3.0, 3.0, 3.0, 3.0])
    same = ratio_sigmas(sigmas, np.array([-7.0, 5.0, np.nan, 2.0]), np.array([-4.0, 0.0, 8.0, np.nan]))
    np.testing.assert_array_equal(same, sigmas)
    to_zero, below = ratio_sigmas(np.array([10.0, 12.0]), np.array([0.0, -20.0]), np.array([100.0, 100.0]))
    assert to_zero == pytest.approx(10 * np.log(100) / 0.99) and below / 12 == pytest.approx(to_zero / 10)
