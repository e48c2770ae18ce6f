"""Arrays in fitted states as compact JSON: float32 deviations from an offset (long
buffers) or exact float64 bytes (small arrays), base64; NaN kept."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import bottleneck as bn
import numpy as np

from analytics.core.engines.rolling import nan_to_zero


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


def pack_bundle(exact: list[np.ndarray], approx: list[np.ndarray]) -> dict[str, Any]:
    """Many arrays in two base64 buffers: ``exact`` ones as float64 bytes, ``approx`` ones
    (2-D: rows x columns; 1-D: one column) as float32 deviations from each column's median, as
    :func:`pack_columns` does. Two buffers instead of one per array: the per-array
    encoding calls were most of the cost of storing a state (for the same reason the
    column medians are cleaned of NaN in one call, not one per array)."""
    approx2d = [np.asarray(a, dtype=np.float64).reshape(-1, 1) if np.ndim(a) == 1 else np.asarray(a, dtype=np.float64)
                for a in approx]
    offsets = _column_medians(approx2d)
    f64 = np.concatenate([np.asarray(a).ravel() for a in exact] + offsets) if exact or offsets else np.zeros(0)
    f32 = np.concatenate([(a - o).ravel() for a, o in zip(approx2d, offsets, strict=True)]) if approx else np.zeros(0)
    return {"exact": [list(np.shape(a)) for a in exact], "approx": [list(np.shape(a)) for a in approx],
            "f64": pack_float64(f64), "f32": base64.b64encode(f32.astype("<f4").tobytes()).decode("ascii")}


def unpack_bundle(data: Mapping[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inverse of :func:`pack_bundle`: (exact arrays, approx arrays) in their shapes."""
    exact_shapes = [tuple(int(v) for v in s) for s in data["exact"]]
    approx_shapes = [tuple(int(v) for v in s) for s in data["approx"]]
    f64 = unpack_float64(data["f64"])
    f32 = np.frombuffer(base64.b64decode(data["f32"]), dtype="<f4").astype(np.float64)
    exact, i = [], 0
    for shape in exact_shapes:
        size = math.prod(shape)
        exact.append(f64[i:i + size].reshape(shape))
        i += size
    approx, j = [], 0
    for shape in approx_shapes:
        size = math.prod(shape)
        columns = math.prod(shape[1:]) if len(shape) > 1 else 1
        rows = f32[j:j + size].reshape(-1, columns) + f64[i:i + columns]
        approx.append(rows.reshape(shape))
        i, j = i + columns, j + size
    if i != len(f64) or j != len(f32):
        raise ValueError("packed bundle: length mismatch")
    return exact, approx


def _column_medians(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Each 2-D array's column medians, NaN (an empty or all-NaN column) as 0."""
    medians = nan_to_zero(np.concatenate([bn.nanmedian(a, axis=0) for a in arrays])) if arrays else np.zeros(0)
    out, i = [], 0
    for a in arrays:
        out.append(medians[i:i + a.shape[1]])
        i += a.shape[1]
    return out
