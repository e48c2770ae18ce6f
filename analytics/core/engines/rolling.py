"""Small causal rolling helpers shared by the engines."""

from __future__ import annotations

from collections.abc import Callable

import bottleneck as bn
import numpy as np

_LARGEST = float(np.finfo(np.float64).max)


def shift(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` delayed by k points (NaN-padded)."""
    out = np.full_like(a, np.nan, dtype=np.float64)
    if k < len(a):
        out[k:] = a[: len(a) - k]
    return out


def past_median(y: np.ndarray, w: int) -> np.ndarray:
    """median(y[t-w .. t-1]) (NaN until w past points exist)."""
    return shift(bn.move_median(y, w), 1) if w <= len(y) else np.full_like(y, np.nan, dtype=np.float64)


def clamped(f: Callable[..., np.ndarray], a: np.ndarray, w: int, min_count: int) -> np.ndarray:
    """bottleneck moving function with the window clamped to the data (same values)."""
    if len(a) == 0:
        return np.zeros(0)
    w = max(1, min(int(w), len(a)))
    return f(a, w, min_count=max(1, min(int(min_count), w)))


def nan_to_zero(a: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(a, nan=0.0)`` of a float array (NaN to 0, infinities to the largest
    finite values) in three ufunc calls: ``nan_to_num``'s own overhead was a tenth of an
    incremental call, where it runs on arrays of a few points."""
    out = np.where(np.isnan(a), 0.0, a)
    np.minimum(out, _LARGEST, out=out)
    np.maximum(out, -_LARGEST, out=out)
    return out
