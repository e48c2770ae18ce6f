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
    """A 2-D float array, each column as :func:`pack_float32` (its own offset, so a
    column of medians near 1e4 and one of counts keep their precision)."""
    a = np.asarray(values, dtype=np.float64)
    return {"rows": int(a.shape[0]), "columns": [pack_float32(a[:, j]) for j in range(a.shape[1])]}


def unpack_columns(data: Mapping[str, Any]) -> np.ndarray:
    columns = [unpack_float32(c) for c in data["columns"]]
    if not columns:
        return np.zeros((int(data["rows"]), 0))
    return np.column_stack(columns).reshape(int(data["rows"]), len(columns))
