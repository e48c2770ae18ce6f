"""Score calibration shared by every engine: robust deviations and one sigma -> [0, 1] map.

Two steps turn a residual into a score, and every engine uses both, so a score of 0.5
means the same thing whichever engine produced it.

1. **Deviation in robust sigmas.** ``z = residual / scale`` where ``scale`` is a robust
   standard deviation estimated from PAST data only (never from the point being scored
   or anything after it):

   - ``1.4826 * median(|r - median(r)|)`` (the MAD, consistent with the standard
     deviation for Gaussian noise) when the past is summarised at fit time
     (:func:`robust_location_scale`);
   - ``1.2533 * mean(|r|)`` over a trailing window for rolling, vectorised use
     (:func:`causal_mean_abs_scale`; ``sqrt(pi/2)`` makes it consistent for Gaussian
     noise; residuals are centred by construction there);
   - when the MAD is zero (quantised or mostly constant data) the mean absolute
     deviation is used instead, and every scale is floored by :func:`floor_scale`
     (an absolute floor and a floor relative to the series' typical magnitude), so a
     flat series does not turn a rounding change into an infinite deviation.

2. **One mapping from |z| to a score** (:func:`sigma_to_score`)::

       score(z) = z**2 / (z**2 + Z_HALF**2)        with Z_HALF = 4.0

   Properties (tested in tests/core/test_calibration.py):

   - bounded: 0 <= score < 1, score(0) = 0; symmetric in the sign of z;
   - strictly increasing in |z|;
   - **score = 0.5 exactly when |z| = Z_HALF = 4 robust sigmas**; 0.2 at 2 sigma,
     0.36 at 3 sigma, 0.69 at 6 sigma, 0.8 at 8 sigma, 0.94 at 16 sigma;
   - invertible: :func:`score_to_sigma` gives ``|z| = Z_HALF * sqrt(s / (1 - s))``.

   Why this and not a Gaussian tail probability: tail probabilities saturate at
   three sigma (0.997), so every real deviation would score ~1 and the ranking of
   nodes and metrics by score would be lost; the rational map stays informative up
   to tens of sigmas. Four sigmas is a two-sided Gaussian tail of 6e-5 per point,
   about one false point per 11 days of one-minute data under pure Gaussian noise;
   real metrics have heavier tails, which is why engines add alarm post-processing.

For ``vector`` the default threshold 0.5 is therefore 4 robust sigmas.

3. **Per-series "anomaly likelihood" scores** (HTM's idea; the ``adtk_v1`` engine maps
   them directly, the ``adtk`` engine uses them as one of two views). A deviation in
   robust sigmas is not comparable across metrics: smooth, quantised or bursty series
   reach tens of "sigmas" on ordinary data, so each series is normalised by its own
   history of surprise: with ``d`` the point's largest component deviation and
   ``u = log1p(d)``, ``z = (mean(u over the last k points) - mu) / (sd / sqrt(k))`` with
   ``mu`` and ``sd`` over the series' past. :func:`likelihood_to_score` maps it as
   ``z / (z + LIKELIHOOD_Z_HALF)`` (0 for z <= 0; 0.5 at z = 3.8; invertible with
   :func:`score_to_likelihood`).

4. **Two views combined** (the ``adtk`` engine, :func:`combined_score`): the geometric
   mean of the surprise odds ``z / z_half`` and the rarity odds ``rarity / rarity_half``,
   relative to the alarm level, as ``r**2 / (1 + r**2)``: 0.5 at the alarm level, 0
   when either view sees nothing unusual, and growing without saturating.

5. **An episode's score** (:func:`episode_score`, for engines that report the size of
   each point's deviation): the odds of its highest evidence, square-rooted, times its
   largest deviation over ``EPISODE_Z_HALF`` sigmas. The evidence is a per-series
   likelihood (how unusual for this series), the deviation how large; an episode's score
   grows with both, so a 35-sigma bump outranks a 5-sigma one of similar evidence. The
   ``adtk`` engine measures a positive metric's deviation as a ratio to its baseline
   (:func:`ratio_sigmas`: a doubling and a halving are equally large).
   What the levels mean: **0.5** (odds 1) is an episode at the alarm level (evidence 0.5)
   deviating by 8 sigmas, or evidence 0.8 (odds 4) with 4 sigmas; **0.9** (odds 9) takes
   72 sigmas at the alarm level, 36 at evidence 0.8, 16.5 at evidence 0.95 (a one-minute
   50-sigma spike scores about 0.96). A lower score is stored as the threshold (the
   episode's points passed it). The map stays ``o / (1 + o)``: a flatter top (``o**k``,
   k < 1) or a log-scale magnitude did not rank simulated anomalies by size any better,
   and spread the demo's node scores no better (docs/evaluation.md, fifth round).

Every engine is calibrated so that 0.5 is its alarm level; docs/evaluation.md says what
that level means in false alarms on normal data.
"""

from __future__ import annotations

import math

import bottleneck as bn
import numpy as np

from analytics.core.engines.rolling import nan_to_zero

Z_HALF: float = 4.0
"""Deviation, in robust sigmas, that maps to a score of exactly 0.5."""

LIKELIHOOD_Z_HALF: float = 3.8
"""Likelihood z (standard errors above the series' usual surprise) that maps to 0.5 (``adtk_v1``)."""

MAD_TO_SIGMA: float = 1.482602218505602  # 1 / Phi^-1(3/4)
MEAN_ABS_TO_SIGMA: float = math.sqrt(math.pi / 2.0)  # 1.2533
IQR_TO_SIGMA: float = 1.0 / 1.3489795003921634  # 1 / (Phi^-1(3/4) - Phi^-1(1/4))

DEFAULT_ABSOLUTE_FLOOR: float = 1e-9
DEFAULT_RELATIVE_FLOOR: float = 1e-3


def sigma_to_score(z: np.ndarray | float, z_half: float = Z_HALF) -> np.ndarray:
    """Map a deviation in robust sigmas to [0, 1): ``z^2 / (z^2 + z_half^2)``.

    NaN (no deviation computable, e.g. during warm-up) maps to 0; +-inf maps to 1.
    """
    z = np.abs(np.asarray(z, dtype=np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        z2 = z * z
        out = z2 / (z2 + z_half * z_half)
    out = np.where(np.isinf(z), 1.0, out)
    return np.where(np.isnan(out), 0.0, out)


def score_to_sigma(score: np.ndarray | float, z_half: float = Z_HALF) -> np.ndarray:
    """Inverse of :func:`sigma_to_score` on [0, 1): the |z| that gives ``score``."""
    s = np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return z_half * np.sqrt(s / (1.0 - s))


def likelihood_to_score(z: np.ndarray | float, z_half: float = LIKELIHOOD_Z_HALF) -> np.ndarray:
    """Map a likelihood z to [0, 1]: ``z / (z + z_half)`` for z > 0, else 0.

    NaN maps to 0, +inf to 1.
    """
    z = np.asarray(z, dtype=np.float64)
    pos = np.where(np.isnan(z), 0.0, np.fmax(z, 0.0))
    with np.errstate(invalid="ignore", over="ignore"):
        out = pos / (pos + z_half)
    return np.where(np.isinf(pos), 1.0, out)


def score_to_likelihood(score: np.ndarray | float, z_half: float = LIKELIHOOD_Z_HALF) -> np.ndarray:
    """Inverse of :func:`likelihood_to_score` on [0, 1): the z that gives ``score``."""
    s = np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return z_half * s / (1.0 - s)


def floor_scale(
    scale: np.ndarray | float,
    typical_magnitude: np.ndarray | float = 0.0,
    *,
    relative_floor: float = DEFAULT_RELATIVE_FLOOR,
    absolute_floor: float = DEFAULT_ABSOLUTE_FLOOR,
) -> np.ndarray:
    """``max(scale, relative_floor * |typical_magnitude|, absolute_floor)``; NaN scale -> floor."""
    scale = np.asarray(scale, dtype=np.float64)
    floor = np.maximum(relative_floor * np.abs(np.asarray(typical_magnitude, dtype=np.float64)), absolute_floor)
    return np.asarray(np.fmax(scale, floor), dtype=np.float64)


def robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and robust sigma (MAD, falling back to mean absolute deviation) of past data.

    NaNs are ignored; an empty input gives (nan, nan).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    center = float(np.median(x))
    dev = np.abs(x - center)
    sigma = MAD_TO_SIGMA * float(np.median(dev))
    if sigma == 0.0:
        sigma = MEAN_ABS_TO_SIGMA * float(np.mean(dev))
    return center, sigma


def causal_mean_abs_scale(residuals: np.ndarray, window: int, min_count: int | None = None) -> np.ndarray:
    """Rolling robust sigma from the PAST ``window`` residuals (excluding the current one).

    ``1.2533 * mean(|r[t-window .. t-1]|)`` along the last axis; NaN until ``min_count``
    past residuals exist. Works on 1-D series or [n_series, n_points] batches.
    """
    r = np.abs(np.asarray(residuals, dtype=np.float64))
    window = max(1, int(window))
    if min_count is None:
        min_count = max(1, min(window, 10))
    min_count = min(min_count, window)
    rolled = bn.move_mean(r, window, min_count=min_count, axis=-1)
    out = np.full_like(rolled, np.nan)
    out[..., 1:] = rolled[..., :-1]
    return np.asarray(MEAN_ABS_TO_SIGMA * out, dtype=np.float64)


ODDS_EXPONENT: float = 2.0
"""``combined_score`` maps the evidence odds r to ``r**2 / (1 + r**2)``: the same
alarm level (r = 1 scores 0.5) with the scores of strong evidence spread apart."""


def combined_score(
    z: np.ndarray, rarity: np.ndarray, z_half: float, rarity_half: float, alarm_odds: float = 1.0
) -> np.ndarray:
    """The ``adtk`` engine's score from its two views (see adtk_v2.likelihood): with the
    odds ``z / z_half`` (surprise) and ``rarity / rarity_half`` (rarity), their geometric
    mean ``O``, and ``score = r**k / (1 + r**k)`` with ``r = O / alarm_odds`` and ``k`` =
    :data:`ODDS_EXPONENT`.

    - 0 when either view sees nothing unusual (z <= 0 or rarity 0): an alarm needs both;
    - 0.5 exactly when ``O = alarm_odds``;
    - strictly increasing in each view where the other is positive, and not saturated:
      ``O`` grows without bound with the rarity of a value beyond everything seen.
    """
    odds = np.fmax(nan_to_zero(np.asarray(z, dtype=np.float64)), 0.0) / z_half
    odds = odds * np.fmax(nan_to_zero(np.asarray(rarity, dtype=np.float64)), 0.0) / rarity_half
    powered = (odds / (alarm_odds * alarm_odds)) ** (ODDS_EXPONENT / 2.0)
    with np.errstate(invalid="ignore", over="ignore"):
        out = powered / (1.0 + powered)
    return np.where(np.isinf(powered), 1.0, out)


RATIO_FLOOR: float = 0.01
"""In :func:`ratio_sigmas` a value at or below this fraction of its baseline (zero, negative)
counts as a fall to it: a fall to 1 % is as large as a hundredfold rise."""


def ratio_sigmas(sigmas: np.ndarray, values: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Deviations of a positive metric measured as ratios: ``sigmas`` (a point's deviation
    in sigmas of its noise) times ``log(q) / (q - 1)`` with ``q = value / baseline``, i.e.
    ``log(q)`` in units of the noise's relative size. Throughput, latency and I/O vary by
    factors: a doubling and a halving are equally far, so a rise counts less and a fall
    more than in linear sigmas (a 50 % rise 0.81 times, a 50 % fall 1.39 times), and
    small relative changes (``q`` near 1) are unchanged. Where the baseline is not
    positive (or unknown) the deviation stays linear. On simulated fleets (tuning seeds
    1-20) this ranked episodes by injected severity with Spearman 0.697 instead of 0.606
    (docs/evaluation.md, fifth round — scores)."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.maximum(np.asarray(values, dtype=np.float64) / b, RATIO_FLOOR)  # NaN stays NaN: linear
        factor = np.log(q) / (q - 1.0)
    ok = (b > 0) & np.isfinite(factor)
    return np.where(ok, sigmas * np.where(ok, factor, 1.0), sigmas)


EPISODE_Z_HALF: float = 8.0
"""Deviation (sigmas) at which an episode at the alarm level (evidence 0.5) scores 0.5."""


def episode_score(evidence: float, magnitude: float, z_half: float = EPISODE_Z_HALF) -> float:
    """The score an alarm episode reports from its highest evidence score and its largest
    deviation in sigmas: odds ``sqrt(e / (1 - e)) * magnitude / z_half``, as ``o / (1 +
    o)``. Strictly increasing in both where the other is positive; 1 at evidence 1; the
    caller keeps it at the threshold or above (the episode's points passed it). Chosen on
    simulated fleets (tuning seeds 1-5, checked on 1-10): it ranks episodes by severity
    better than the evidence alone (docs/evaluation.md)."""
    e = min(max(0.0 if math.isnan(evidence) else evidence, 0.0), 1.0)
    m = max(0.0 if math.isnan(magnitude) else magnitude, 0.0)
    if e >= 1.0 or math.isinf(m):
        return 1.0
    odds = math.sqrt(e / (1.0 - e)) * m / z_half
    return odds / (1.0 + odds)
