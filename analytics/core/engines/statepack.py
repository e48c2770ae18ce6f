"""Arrays in fitted states as compact JSON: float32 deviations from an offset (long
buffers) or exact float64 bytes (small arrays), base64; NaN kept."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import bottleneck as bn
import numpy as np


def pack_float32(values: np.ndarray) -> dict[str, Any]:
    """A float array as float32 deviations from a float64 offset (their median), base64.
    The offset keeps float32 rounding relative to the series' variation, not to its
    magnitude (a counter near 1e9 that moves by 1 stays exact to ~1e-7 of the move)."""
    a = np.asarray(values, dtype=np.float64)
    offset = float(bn.nanmedian(a)) if a.size and np.isfinite(a).any() else 0.0
    raw = (a - offset).astype("<f4").tobytes()
    return {"n": int(a.size), "offset": offset, "f32": base64.b64encode(raw).decode("ascii")}


def unpack_float32(data: Mapping[str, Any]) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(data["f32"]), dtype="<f4").astype(np.float64)
    if a.size != int(data["n"]):
        raise ValueError("packed array: length mismatch")
    return a + float(data["offset"])


def pack_float64(values: Any) -> str:
    """A small float array as exact float64 bytes, base64."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def unpack_float64(values: str, columns: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack_float64`; ``columns`` reshapes to rows of that width."""
    a = np.frombuffer(base64.b64decode(values), dtype="<f8").astype(np.float64)
    return a.reshape(-1, columns) if columns is not None else a


def nan_to_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def none_to_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def pack_columns(values: np.ndarray) -> dict[str, Any]:
    """A 2-D float array as float32 deviations from each column's median, one base64
    buffer (a column of medians near 1e4 and one of counts both keep their precision)."""
    a = np.asarray(values, dtype=np.float64)
    offsets = np.zeros(a.shape[1])
    if a.size:
        with np.errstate(invalid="ignore"):
            offsets = np.nan_to_num(bn.nanmedian(a, axis=0))
    raw = (a - offsets).astype("<f4").tobytes()
    return {"shape": list(a.shape), "offsets": pack_float64(offsets), "f32": base64.b64encode(raw).decode("ascii")}


def unpack_columns(data: Mapping[str, Any]) -> np.ndarray:
    rows, columns = (int(v) for v in data["shape"])
    a = np.frombuffer(base64.b64decode(data["f32"]), dtype="<f4").astype(np.float64)
    if a.size != rows * columns:
        raise ValueError("packed columns: length mismatch")
    return np.asarray(a.reshape(rows, columns) + unpack_float64(data["offsets"]), dtype=np.float64)
