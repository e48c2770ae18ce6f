"""Baseline statistics refreshed from block summaries, advanced over new points at once.

Points are cut into blocks of ``B`` consecutive points (by their position in the stream).
When a block completes, its finite values are summarised in a row (median, sum of absolute
deviations from the median in force, count, min, max, sum); the statistics *in force* for
every point of a block are those of the last ``K`` rows closed before the block began:
the median of their medians, the mean absolute deviation (summed deviations / count),
the range (min of minima, max of maxima) and the mean. A block without a finite value
adds no row.

:func:`advance` computes the in-force statistics of any number of new points with numpy
(no loop over points) and returns the ring to carry, so advancing in pieces gives the
same numbers as advancing once.
"""

from __future__ import annotations

from dataclasses import dataclass

import bottleneck as bn
import numpy as np

from analytics.core.engines.rolling import clamped

MEDIAN, SUM_ABS_DEV, COUNT, MINIMUM, MAXIMUM, TOTAL = range(6)
ROW_WIDTH = 6


@dataclass
class InForce:
    """Per-point statistics in force (NaN where the rows hold fewer than ``min_count`` values)."""

    median: np.ndarray
    mean_abs_dev: np.ndarray
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray


LEVEL_COLUMNS = (MEDIAN, SUM_ABS_DEV, COUNT, MINIMUM, MAXIMUM)
DEVIATION_COLUMNS = (MEDIAN, SUM_ABS_DEV, COUNT)
MEAN_COLUMNS = (COUNT, TOTAL)


def empty_rows() -> np.ndarray:
    return np.zeros((0, ROW_WIDTH))


def keep_columns(rows: np.ndarray, columns: tuple[int, ...]) -> np.ndarray:
    """The columns of ``rows`` a family uses (what its state stores)."""
    return rows[:, list(columns)]


def restore_columns(kept: np.ndarray, columns: tuple[int, ...]) -> np.ndarray:
    """Rows from stored columns; the others (unused by the family) are 0."""
    rows = np.zeros((kept.shape[0], ROW_WIDTH))
    rows[:, list(columns)] = kept
    return rows


def advance(
    rows: np.ndarray, open_values: np.ndarray, values: np.ndarray, position: int, block: int, keep: int,
    min_count: int,
) -> tuple[InForce, np.ndarray, np.ndarray]:
    """Statistics in force at each of ``values`` (new points from stream position
    ``position``), and the (rows, open block's values) to carry. ``rows`` are the last
    ``keep`` rows closed before, ``open_values`` the values (NaN kept) of the block open
    at ``position``."""
    pending = np.concatenate([open_values, values])  # starts at a block boundary
    complete = len(pending) // block
    old = len(rows)
    # the rows, the closed blocks holding a value and their block numbers; an incremental
    # call of a few points mostly closes none, and skips the work of closing them
    all_rows, grid, row_blocks = rows, np.zeros((0, block)), np.zeros(0, dtype=np.int64)
    if complete:
        grid = pending[:complete * block].reshape(complete, block)
        counts = np.isfinite(grid).sum(axis=1)
        has = counts > 0
        grid = grid[has]
        new_rows = np.zeros((len(grid), ROW_WIDTH))
        new_rows[:, MEDIAN] = bn.nanmedian(grid, axis=1)
        new_rows[:, COUNT] = counts[has]
        new_rows[:, MINIMUM] = bn.nanmin(grid, axis=1)
        new_rows[:, MAXIMUM] = bn.nanmax(grid, axis=1)
        new_rows[:, TOTAL] = bn.nansum(grid, axis=1)
        all_rows = np.vstack([rows, new_rows])
        row_blocks = (position - len(open_values)) // block + np.flatnonzero(has)
    # the median in force after each row closes, then each new row's deviations from
    # the median in force when it closed (or from its own median for the first row)
    medians_after = clamped(bn.move_median, all_rows[:, MEDIAN], keep, 1)
    if len(grid):
        idx = old + np.arange(len(grid))
        reference = np.where(idx >= 1, medians_after[np.maximum(idx - 1, 0)], all_rows[idx, MEDIAN])
        all_rows[idx, SUM_ABS_DEV] = bn.nansum(np.abs(grid - reference[:, None]), axis=1)
    # for each new point: how many rows were closed before its block began
    block_of = (position + np.arange(len(values))) // block
    closed_before = old + np.searchsorted(row_blocks, block_of, side="left")
    stats = _in_force(all_rows, medians_after, closed_before, keep, min_count)
    return stats, all_rows[-keep:].copy(), pending[complete * block:].copy()


def _in_force(rows: np.ndarray, medians_after: np.ndarray, closed_before: np.ndarray, keep: int,
              min_count: int) -> InForce:
    """The statistics in force per point, computed once per distinct number of closed rows
    (``closed_before`` is non-decreasing: one or two values in an incremental call) and
    expanded to the points with one indexing: the per-call cost of numpy, not the number
    of points, is what an incremental call pays."""
    n = len(closed_before)
    if not len(rows) or not n:
        nan = np.full(n, np.nan)
        return InForce(nan, nan.copy(), nan.copy(), nan.copy(), nan.copy())
    first = int(closed_before[0])
    end = np.arange(first, int(closed_before[-1]) + 1)  # rows [end - keep, end)
    cum = np.zeros((len(rows) + 1, ROW_WIDTH))
    np.cumsum(rows, axis=0, out=cum[1:])
    window = cum[end] - cum[np.maximum(end - keep, 0)]
    count = window[:, COUNT]
    last = np.maximum(end - 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = np.array([
            medians_after[last],
            window[:, SUM_ABS_DEV] / count,
            clamped(bn.move_min, rows[:, MINIMUM], keep, 1)[last],
            clamped(bn.move_max, rows[:, MAXIMUM], keep, 1)[last],
            window[:, TOTAL] / count,
        ])
    table[:, (end < 1) | ~(count >= min_count)] = np.nan
    median, mean_abs_dev, low, high, mean = table[:, closed_before - first]
    return InForce(median=median, mean_abs_dev=mean_abs_dev, low=low, high=high, mean=mean)
