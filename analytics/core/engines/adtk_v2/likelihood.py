"""Two per-series views of how unusual a point is, each a likelihood of its own.

**Surprise** (HTM's anomaly likelihood): ``u = log1p(d)`` with ``d`` the largest level
or seasonal deviation; ``z = (mean of u over the last k points - mu) / (sigma /
sqrt(k))`` with ``mu``, ``sigma`` the mean and standard deviation of ``u`` over the last
``likelihood_window`` points (sums kept per block of ``LIKELIHOOD_BLOCK`` points,
refreshed every ``REFRESH`` points). A single extreme point is not diluted by the k-point
mean: the spike residual has its own one-point path, ``z = max(z, spike_gain * z_spike)``.
``z`` is 0 during the first ``warmup_points`` points. (Like HTM's, this standard error
assumes independent points; ``direct_error`` uses the spread of the k-point means
themselves instead.)

**Rarity** (an empirical tail probability): for each component (the level and seasonal
deviations at every scale, the spike), ``p`` = the share of the last ``rarity_window``
points whose value was at least as large, with an exponential tail beyond the
``RARITY_QUANTILE`` quantile ``u`` (a value above everything seen still gets a smaller
``p`` the further it lies). The tail's scale is the mean excess over ``u`` of
``RARITY_MIN_TAIL`` values beyond it; a young series (fewer than 750 defined values at
2 %) has fewer, and the missing ones are taken at a prior scale, ``rarity_prior_tail``
times that of an exponential distribution through the quantile (``u / ln 50``; alone it
gives ``p = 0.02 ** (x / u)``). So a value many times ``u`` is rare however young the
series (a 40-sigma spike after 6 h of one-minute history, or in a few hundred hourly
points), and one just past two or three large values is not (a scale fitted to those
alone would call it extremely rare). In units of ``u``, the prior holds for every
component and metric alike; the data take over as values beyond ``u`` accumulate.
The reference keeps the ``RARITY_TOP`` largest values of each
``REFRESH``-point block, which is all the tail needs. ``S = max over components of
-log10 p - log10(number of components)`` (Bonferroni). A recurring event (a nightly batch
job's spike) is not rare, however surprising its size.

The two views are combined by :mod:`.calibration`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analytics.core.engines.adtk_v2.components import trailing_mean
from analytics.core.engines.adtk_v2.state import StreamState
from analytics.core.engines.rolling import nan_to_zero

REFRESH = 50  # points between refreshes of both views' reference statistics
LIKELIHOOD_BLOCK = 500  # points per block of the surprise view's sums
RARITY_TOP = 3  # largest values kept per refresh block
RARITY_QUANTILE = 0.98  # above it the rarity view extrapolates an exponential tail
RARITY_MIN_TAIL = 15  # values beyond the quantile a tail's scale rests on (missing ones: the prior's)
MIN_RARITY_POINTS = 100  # reference points needed before the rarity view speaks


@dataclass(frozen=True)
class ViewSettings:
    short: int
    likelihood_blocks: int
    warmup_points: int
    spike_gain: float
    direct_error: bool
    rarity_blocks: int
    rarity_prior_tail: float


def surprise(st: StreamState, d: np.ndarray, spike: np.ndarray, cfg: ViewSettings) -> np.ndarray:
    """The surprise view's z of each new point; advances ``st``'s likelihood sums."""
    n = len(d)
    g0 = st.points
    u = np.log1p(np.fmax(nan_to_zero(np.asarray(d, dtype=np.float64)), 0.0))
    us = np.log1p(np.fmax(nan_to_zero(np.asarray(spike, dtype=np.float64)), 0.0))
    ext_u = np.concatenate([st.tail_u, u])
    short = trailing_mean(ext_u, cfg.short, n)
    if cfg.short > 1:
        st.tail_u = ext_u[-(cfg.short - 1):]
    stats = np.empty((n, 6))
    i = 0
    while i < n:
        j = min(n, i + REFRESH - (g0 + i) % REFRESH)
        stats[i:j] = st.likelihood_stats
        seg, sseg, mseg = u[i:j], us[i:j], short[i:j]
        st.likelihood_open = st.likelihood_open + np.array(
            [seg.sum(), (seg * seg).sum(), sseg.sum(), (sseg * sseg).sum(), float(j - i), mseg.sum(),
             (mseg * mseg).sum()])
        if (g0 + j) % REFRESH == 0:
            _refresh_likelihood(st, (g0 + j) % LIKELIHOOD_BLOCK == 0, cfg)
        i = j
    mu, sigma, smu, ssigma, _, short_sigma = stats.T
    error = short_sigma if cfg.direct_error else sigma / math.sqrt(cfg.short)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (short - mu) / np.fmax(error, 1e-6)
        if cfg.spike_gain > 0:
            z = np.fmax(z, cfg.spike_gain * (us - smu) / np.fmax(ssigma, 1e-6))
    z = nan_to_zero(z)
    z[g0 + np.arange(n) < cfg.warmup_points] = 0.0
    return np.asarray(z, dtype=np.float64)


def _refresh_likelihood(st: StreamState, close: bool, cfg: ViewSettings) -> None:
    if close:
        st.likelihood_rows = np.vstack([st.likelihood_rows, st.likelihood_open])[-cfg.likelihood_blocks:]
        st.likelihood_open = np.zeros_like(st.likelihood_open)
    total = st.likelihood_rows.sum(axis=0) + st.likelihood_open
    count = total[4]
    if count >= 2:
        mean, smean, mmean = total[0] / count, total[2] / count, total[5] / count
        st.likelihood_stats = np.array([
            mean, math.sqrt(max(total[1] / count - mean * mean, 0.0)),
            smean, math.sqrt(max(total[3] / count - smean * smean, 0.0)),
            mmean, math.sqrt(max(total[6] / count - mmean * mmean, 0.0)),
        ])


def rarity(st: StreamState, components: np.ndarray, cfg: ViewSettings) -> np.ndarray:
    """The rarity view's S of each new point (``components``: one row per component, NaN
    where a component is not defined yet); advances ``st``'s reference of largest values
    and of how many values each block had."""
    c, n = components.shape
    if st.rarity_tops.shape[:1] != (c,):
        st.rarity_tops = np.zeros((c, 0, RARITY_TOP))
        st.rarity_open = np.full((c, RARITY_TOP), np.nan)
        st.rarity_counts = np.zeros((c, 0))
        st.rarity_open_counts = np.zeros(c)
    g0 = st.points
    out = np.zeros(n)
    i = 0
    while i < n:
        j = min(n, i + REFRESH - (g0 + i) % REFRESH)
        seg = components[:, i:j]
        out[i:j] = _rarity_of(st.rarity_tops, st.rarity_counts.sum(axis=1), seg, cfg)
        merged = np.concatenate([st.rarity_open, seg], axis=1)
        top = -np.sort(-np.where(np.isnan(merged), -np.inf, merged), axis=1)[:, :RARITY_TOP]
        st.rarity_open = np.where(np.isinf(top), np.nan, top)
        st.rarity_open_counts = st.rarity_open_counts + np.isfinite(seg).sum(axis=1)
        if (g0 + j) % REFRESH == 0:
            st.rarity_tops = np.concatenate([st.rarity_tops, st.rarity_open[:, None, :]], axis=1)[:, -cfg.rarity_blocks:]
            st.rarity_counts = np.concatenate([st.rarity_counts, st.rarity_open_counts[:, None]],
                                              axis=1)[:, -cfg.rarity_blocks:]
            st.rarity_open = np.full((c, RARITY_TOP), np.nan)
            st.rarity_open_counts = np.zeros(c)
        i = j
    return np.fmax(out - math.log10(c), 0.0)


def _rarity_of(tops: np.ndarray, counts: np.ndarray, seg: np.ndarray, cfg: ViewSettings) -> np.ndarray:
    """max over components of -log10 p for the points of one refresh block; ``counts``:
    the values each component's reference summarises (a component with fewer than
    ``MIN_RARITY_POINTS`` says nothing, nor does an undefined value)."""
    c = tops.shape[0]
    m = counts[:, None]
    ref = np.sort(tops.reshape(c, -1), axis=1)  # NaN (unfilled) sort last
    r = np.isfinite(ref).sum(axis=1)  # kept values per component
    with np.errstate(invalid="ignore"):
        count = (ref[:, None, :] >= seg[:, :, None]).sum(axis=2)  # kept values >= each point
    p = (count + 1.0) / (m + 1.0)
    kq = np.round((1.0 - RARITY_QUANTILE) * counts).astype(np.int64)  # reference values above the quantile
    fit = (kq >= 1) & (kq < r)
    if fit.any():
        rows = np.arange(c)
        u = ref[rows, np.clip(r - kq - 1, 0, ref.shape[1] - 1)]
        position = np.arange(ref.shape[1])[None, :]
        above = (position >= (r - kq)[:, None]) & (position < r[:, None])
        # the tail scale: the mean excess of RARITY_MIN_TAIL values beyond the quantile, the
        # missing ones (a young series has fewer) taken at the prior's scale, that of an
        # exponential distribution through the quantile (p = (1 - q) ** (x / u)) times
        # rarity_prior_tail: a few values just past u do not make a point past them extremely
        # rare, and a point many times u is rare however young the series
        excess = np.where(above, ref - u[:, None], 0.0).sum(axis=1)
        missing = np.fmax(RARITY_MIN_TAIL - kq, 0)
        prior = cfg.rarity_prior_tail * u / -math.log(1.0 - RARITY_QUANTILE)
        beta = (excess + missing * prior) / (kq + missing)
        share = (kq / np.maximum(counts, 1))[:, None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            tail = share * np.exp(np.fmax(-(seg - u[:, None]) / beta[:, None], -700.0))
        # no scale at all (every value beyond the quantile equals it): nothing is extrapolated
        p = np.where((fit & (beta > 0))[:, None] & (seg > u[:, None]), np.minimum(p, tail), p)
    p = np.where(count >= r[:, None], np.maximum(p, (r[:, None] + 1.0) / (m + 1.0)), p)
    p = np.where((m >= MIN_RARITY_POINTS) & np.isfinite(seg), p, 1.0)
    return np.asarray((-np.log10(np.maximum(p, 1e-300))).max(axis=0), dtype=np.float64)
