"""Keyed random streams: every draw of the simulator comes from a stream named by what it
is for, so any part of a fleet can be regenerated alone and equals the fleet's copy.

Noise is drawn in fixed blocks of points (``_BLOCK``) from streams keyed by ``(seed,
entity, purpose, block)``; a time range of a noise series only draws the blocks it
touches.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import numpy as np

_BLOCK = 1024  # points per noise block
_NEG_OFFSET = 1 << 40  # keeps block indices (which may be negative) non-negative for SeedSequence


def _words(*parts: object) -> list[int]:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def keyed_rng(seed: int, *parts: object) -> np.random.Generator:
    """A random stream of its own for (seed, *parts): the same draws whatever else was drawn."""
    return np.random.default_rng(np.random.SeedSequence([seed, *_words(*parts)]))


@lru_cache(maxsize=64)
def _kernel(tau: float, step: int) -> np.ndarray:
    """Unit-variance exponential (AR(1)-like) smoothing kernel for time constant tau."""
    phi = math.exp(-step / tau) if tau > 0 else 0.0
    length = 1 if phi < 1e-3 else min(4096, int(math.ceil(math.log(1e-3) / math.log(phi))) + 1)
    k = phi ** np.arange(length)
    return k / np.sqrt((k**2).sum())


def smooth_noise(seed: int, entity: tuple, purpose: str, tau: float, step: int, i0: int, i1: int) -> np.ndarray:
    """Unit-variance correlated noise for point indices [i0, i1): same values whatever the range."""
    kernel = _kernel(tau, step)
    lo = i0 - len(kernel) + 1
    first, last = lo // _BLOCK, (i1 - 1) // _BLOCK
    blocks = [keyed_rng(seed, *entity, purpose, b + _NEG_OFFSET).standard_normal(_BLOCK) for b in range(first, last + 1)]
    white = np.concatenate(blocks)[lo - first * _BLOCK : i1 - first * _BLOCK]
    return np.convolve(white, kernel, mode="valid")

