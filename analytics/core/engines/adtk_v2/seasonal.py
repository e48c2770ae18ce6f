"""Seasonal references: what the metric did one day and one week ago at this time.

A week is cut into ``W = 7 * slots_per_day`` slots (epoch-aligned, one per sampling step,
at most one per five minutes); the table keeps, per slot, the mean of its values at its
last *visit* (a run of consecutive points falling in the slot). The reference of a point
at a lag of ``L`` slots is the last completed visit of the slot ``L`` before its own. On
regular data with one point per slot this is the value exactly one day (one week) of
points before; on jittered or gappy data it stays aligned in time.

:func:`references` handles any number of new points with numpy and returns the table to
carry, so the references do not depend on how the points are split into calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_NS = 86_400 * 10**9
WEEK_NS = 7 * DAY_NS
MIN_SLOT_SECONDS = 300.0


def slots_per_day(step_seconds: float) -> int:
    """One slot per sampling step, at most one per five minutes."""
    return max(1, int(round(86_400.0 / max(step_seconds, MIN_SLOT_SECONDS))))


@dataclass
class SlotTable:
    """Mean value of each slot's last completed visit (NaN: not seen), and the visit in
    progress (``open_slot`` -1 when none)."""

    per_day: int
    values: np.ndarray
    open_slot: int = -1
    open_sum: float = 0.0
    open_count: int = 0

    @classmethod
    def empty(cls, per_day: int) -> SlotTable:
        return cls(per_day=per_day, values=np.full(7 * per_day, np.nan))

    @property
    def week(self) -> int:
        return 7 * self.per_day

    def slot_of(self, timestamps_ns: np.ndarray) -> np.ndarray:
        phase = np.mod(np.asarray(timestamps_ns, dtype=np.int64), WEEK_NS)
        return (phase * self.per_day // DAY_NS).astype(np.int64)

    def copy(self) -> SlotTable:
        return SlotTable(self.per_day, self.values.copy(), self.open_slot, self.open_sum, self.open_count)


def references(table: SlotTable, timestamps_ns: np.ndarray, values: np.ndarray,
               lags: list[int]) -> tuple[list[np.ndarray], SlotTable]:
    """For each lag (in slots), the reference of every new point; and the updated table."""
    n = len(values)
    out = table.copy()
    if n == 0:
        return [np.zeros(0) for _ in lags], out
    slots = out.slot_of(timestamps_ns)
    starts = np.flatnonzero(np.concatenate([[True], slots[1:] != slots[:-1]]))
    visit_slot = slots[starts]
    visit_sum = np.add.reduceat(values, starts)
    points_per_visit = np.diff(np.append(starts, n))
    visit_count = points_per_visit.astype(np.float64)
    if out.open_slot == int(visit_slot[0]):
        visit_sum[0] += out.open_sum
        visit_count[0] += out.open_count
    elif out.open_slot >= 0 and out.open_count:
        out.values[out.open_slot] = out.open_sum / out.open_count  # the open visit ended before these points
    visit_mean = visit_sum / visit_count
    visits = len(starts)
    visit_of_point = np.repeat(np.arange(visits), points_per_visit)
    # the last earlier visit of a slot: order visits by (slot, index), search each query
    keys = np.sort(visit_slot * (visits + 1) + np.arange(visits))
    refs = []
    for lag in lags:
        target = np.mod(visit_slot - lag, out.week)
        query = target * (visits + 1) + np.arange(visits)
        pos = np.searchsorted(keys, query, side="left") - 1
        found = (pos >= 0) & (keys[np.maximum(pos, 0)] // (visits + 1) == target)
        earlier = visit_mean[keys[np.maximum(pos, 0)] % (visits + 1)]
        ref = np.where(found, earlier, out.values[target])
        refs.append(ref[visit_of_point])
    # completed visits (all but the last) update the table, the last one stays open
    done_slots = visit_slot[:-1][::-1]
    if done_slots.size:
        unique, first = np.unique(done_slots, return_index=True)
        out.values[unique] = visit_mean[:-1][::-1][first]
    out.open_slot = int(visit_slot[-1])
    out.open_sum = float(visit_sum[-1])
    out.open_count = int(visit_count[-1])
    return refs, out
