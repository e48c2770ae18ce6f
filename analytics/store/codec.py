"""Chunk encoding: a day of one series' points in two small byte strings.

Timestamps (int64 microseconds since the Unix epoch, strictly ascending) are delta
encoded then zlib-compressed: a regular one-minute series of 1,440 points shrinks to a
few dozen bytes. Values (float64) are stored whichever way is smaller: raw little-endian
(random noise does not compress), or byte-shuffled (all first bytes, then all second
bytes, ...) and zlib-compressed, which wins for real metrics whose values share
exponents and have few significant digits. The first byte of each string names its
format, so new codecs can be added without rewriting old chunks.

Decoding is numpy only (``np.frombuffer``), no per-point Python.
"""

from __future__ import annotations

import zlib

import numpy as np

TS_DELTA_ZLIB = 1
VALUES_RAW = 0
VALUES_SHUFFLE_ZLIB = 1
ZLIB_LEVEL = 6


def encode_timestamps(ts_us: np.ndarray) -> bytes:
    ts = np.asarray(ts_us, dtype=np.int64)
    deltas = np.empty_like(ts)
    if len(ts):
        deltas[0] = ts[0]
        np.subtract(ts[1:], ts[:-1], out=deltas[1:])
    return bytes([TS_DELTA_ZLIB]) + zlib.compress(deltas.astype("<i8", copy=False).tobytes(), ZLIB_LEVEL)


def decode_timestamps(data: bytes | memoryview) -> np.ndarray:
    data = bytes(data)
    if not data or data[0] != TS_DELTA_ZLIB:
        raise ValueError(f"chunk timestamps: unknown format {data[:1]!r}")
    deltas = np.frombuffer(zlib.decompress(data[1:]), dtype="<i8")
    return np.cumsum(deltas, dtype=np.int64)


def encode_values(values: np.ndarray) -> bytes:
    raw = np.asarray(values, dtype="<f8").tobytes()
    if len(raw) >= 64:
        shuffled = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 8).T.tobytes()
        packed = zlib.compress(shuffled, ZLIB_LEVEL)
        if len(packed) < len(raw) * 0.9:
            return bytes([VALUES_SHUFFLE_ZLIB]) + packed
    return bytes([VALUES_RAW]) + raw


def decode_values(data: bytes | memoryview) -> np.ndarray:
    view = memoryview(data)
    if not len(view):
        raise ValueError("chunk values: empty")
    kind = view[0]
    if kind == VALUES_RAW:
        return np.frombuffer(view, dtype="<f8", offset=1).astype(np.float64, copy=False)
    if kind == VALUES_SHUFFLE_ZLIB:
        shuffled = np.frombuffer(zlib.decompress(view[1:]), dtype=np.uint8)
        return np.ascontiguousarray(shuffled.reshape(8, -1).T).view("<f8").reshape(-1).astype(np.float64, copy=False)
    raise ValueError(f"chunk values: unknown format {kind}")
