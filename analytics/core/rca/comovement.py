"""Which of the moved series moved together: lagged correlation of their deviations.

Each series' deviation over the window (robust sigmas, clipped at ``clip_sigma`` so one
huge spike does not decide alone) is centred and scaled to unit length; the
correlation of two series at lag ``l`` is then one dot product. The best correlation
over lags ``-max_lag .. max_lag`` (largest in absolute value: a metric falling while
another rises moves with it too) and its lag are kept for every pair. Series of one
cluster whose best correlation reaches ``min_correlation`` are linked, and the linked
components are the groups. Series of different clusters are never linked: a cluster
is the unit incidents and hints are about, and two clusters' simultaneous steps
correlate without having anything to do with each other.

The work is O(series² x window x lags); callers bound the series (``max_series``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CoMovementSettings:
    max_lag_seconds: int = 45 * 60
    min_correlation: float = 0.6
    clip_sigma: float = 10.0
    floor_sigma: float = 3.0  # deviations up to this count as noise: only excursions beyond it correlate
    max_series: int = 200  # moved series compared pairwise; the earliest onsets are kept

    def __post_init__(self) -> None:
        if not isinstance(self.max_lag_seconds, int) or self.max_lag_seconds < 0:
            raise ValueError(f"max_lag_seconds: must be a non-negative integer, got {self.max_lag_seconds!r}")
        if not 0 < self.min_correlation <= 1:
            raise ValueError(f"min_correlation: must be in (0, 1], got {self.min_correlation!r}")
        if not self.clip_sigma > 0:
            raise ValueError(f"clip_sigma: must be positive, got {self.clip_sigma!r}")
        if not isinstance(self.max_series, int) or self.max_series < 1:
            raise ValueError(f"max_series: must be a positive integer, got {self.max_series!r}")


@dataclass(frozen=True)
class LaggedCorrelation:
    """``corr[i, j]``: the best correlation of series i and j over the lags; ``lag[i, j]``:
    the cells by which j follows i at that correlation (negative: j leads)."""

    corr: np.ndarray
    lag: np.ndarray


def lagged_correlation(z: np.ndarray, max_lag: int, clip_sigma: float, floor_sigma: float) -> LaggedCorrelation:
    y = np.nan_to_num(z, nan=0.0)
    y = np.sign(y) * np.clip(np.abs(y) - floor_sigma, 0.0, clip_sigma)
    y = y - y.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(y, axis=1, keepdims=True)
    y = y / np.where(norm > 0, norm, 1.0)
    n, cells = y.shape
    best = np.zeros((n, n))
    best_lag = np.zeros((n, n), dtype=np.int64)
    for lag in range(min(max_lag, max(0, cells - 1)) + 1):
        ahead = y[:, : cells - lag] @ y[:, lag:].T  # [i, j]: j's deviation lag cells after i's
        for candidate, signed_lag in ((ahead, lag), (ahead.T, -lag)):
            better = np.abs(candidate) > np.abs(best)
            best = np.where(better, candidate, best)
            best_lag = np.where(better, signed_lag, best_lag)
    return LaggedCorrelation(best, best_lag)


def link_groups(corr: np.ndarray, clusters: Sequence[Hashable], min_correlation: float) -> list[list[int]]:
    """Connected components of the pairs of one cluster with |corr| >= min_correlation,
    each as ascending row indices, in the order of their first row."""
    n = len(clusters)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(np.abs(corr) >= min_correlation, k=1)), strict=True):
        if clusters[int(i)] == clusters[int(j)]:
            parent[root(int(j))] = root(int(i))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])
