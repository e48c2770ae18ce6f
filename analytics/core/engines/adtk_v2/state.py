"""What the engine keeps between runs: the streamed statistics and the explanation fit.

Plain dataclasses, JSON-able (``to_dict`` / ``from_dict``) and picklable. Long buffers
(the seasonal slot table) are stored as float32 around their median, everything else as
exact float64, so chained incremental runs through JSON reproduce one full run to the
float32 rounding of the seasonal references.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from analytics.core.engines.adtk_v2.blocks import (
    DEVIATION_COLUMNS,
    LEVEL_COLUMNS,
    MEAN_COLUMNS,
    empty_rows,
    keep_columns,
    restore_columns,
)
from analytics.core.engines.adtk_v2.seasonal import SlotTable
from analytics.core.engines.alarms import AlarmCarry
from analytics.core.engines.profiles import SeasonalComponent, seasonal_offset
from analytics.core.engines.statepack import optional_int, pack_bundle, unpack_bundle

STATE_VERSION = 2  # 2: the arrays in one bundle (statepack.pack_bundle)
LIKELIHOOD_COLUMNS = 7  # sum u, sum u^2, sum us, sum us^2, count, sum and sum of squares of the k-point means


@dataclass
class LagStream:
    """One seasonal lag: the block ring of its seasonal difference and the tail of its
    absolute deviations (for the m-point means)."""

    rows: np.ndarray
    open_values: np.ndarray
    tail_dev: np.ndarray

    def copy(self) -> LagStream:
        return LagStream(self.rows.copy(), self.open_values.copy(), self.tail_dev.copy())


@dataclass
class StreamState:
    """The scoring statistics as of the last scored point (``cursor_ns``).

    - ``level_rows`` / ``level_open``: block summaries of the values (:mod:`.blocks`);
      ``spike_rows`` / ``spike_open`` the same of the spike residuals;
    - ``log_floor``: decided from the stream's first day (> 0: its values are scored on a
      log scale, ``engine.log_floor``); while ``deciding``, the first day's values and
      times (``young_x``, ``young_ns`` after ``young_start_ns``) are kept;
    - ``slots`` (:mod:`.seasonal`) and one :class:`LagStream` per seasonal lag;
    - ``tail_x``, ``tail_level`` (median and scale in force): the last points the
      m-point means and the spike residual need;
    - ``likelihood_rows`` (per likelihood block: sum u, sum u^2, sum us, sum us^2,
      count), ``likelihood_open``, the refreshed ``likelihood_stats`` (mean and std of
      u and of us) and ``tail_u``;
    - ``rarity_tops``: per rarity component and block, its largest values (NaN padded),
      and ``rarity_open`` those of the open block; ``rarity_counts`` and
      ``rarity_open_counts`` how many defined values they summarise;
    - ``alarm``: what alarm post-processing carries to the next call.
    """

    step_seconds: float
    slots: SlotTable
    lags: dict[str, LagStream]
    log_floor: float = 0.0  # > 0: the values are scored as log(max(x, log_floor)); 0: as they are
    deciding: bool = False  # the first day is kept (young_*) until the scale is decided
    young_start_ns: int | None = None
    young_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    young_ns: np.ndarray = field(default_factory=lambda: np.zeros(0))  # after young_start_ns
    points: int = 0
    cursor_ns: int | None = None
    level_rows: np.ndarray = field(default_factory=empty_rows)
    level_open: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spike_rows: np.ndarray = field(default_factory=empty_rows)
    spike_open: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail_level: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    likelihood_rows: np.ndarray = field(default_factory=lambda: np.zeros((0, LIKELIHOOD_COLUMNS)))
    likelihood_open: np.ndarray = field(default_factory=lambda: np.zeros(LIKELIHOOD_COLUMNS))
    likelihood_stats: np.ndarray = field(default_factory=lambda: np.full(6, np.nan))
    tail_u: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rarity_tops: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    rarity_open: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    rarity_counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    rarity_open_counts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    alarm: AlarmCarry = field(default_factory=AlarmCarry)

    # large arrays as float32 columns around their medians (with the seasonal slots, the
    # rarity reference and the lags' rows), the rest exact
    _COLUMNS: ClassVar[dict[str, tuple[int, ...]]] = {"level_rows": LEVEL_COLUMNS, "spike_rows": MEAN_COLUMNS}
    _EXACT: ClassVar[tuple[str, ...]] = ("young_x", "young_ns", "level_open", "spike_open", "tail_x", "tail_level",
                                         "likelihood_rows", "likelihood_open", "likelihood_stats", "tail_u",
                                         "rarity_open", "rarity_counts", "rarity_open_counts")
    _ARRAYS: ClassVar[tuple[str, ...]] = ("young_x", "young_ns", "level_rows", "level_open", "spike_rows", "spike_open",
                                          "tail_x", "tail_level", "likelihood_rows", "likelihood_open",
                                          "likelihood_stats", "tail_u", "rarity_tops", "rarity_open", "rarity_counts",
                                          "rarity_open_counts")

    def copy(self) -> StreamState:
        out = StreamState(**{f.name: getattr(self, f.name) for f in fields(self)})
        for name in self._ARRAYS:
            setattr(out, name, np.array(getattr(self, name), dtype=np.float64, copy=True))
        out.slots = self.slots.copy()
        out.lags = {k: v.copy() for k, v in self.lags.items()}
        out.alarm = dataclasses.replace(self.alarm, recent_hits_ns=list(self.alarm.recent_hits_ns))
        return out

    def to_dict(self) -> dict[str, Any]:
        lags = sorted(self.lags)
        exact = [getattr(self, name) for name in self._EXACT]
        exact += [a for k in lags for a in (self.lags[k].open_values, self.lags[k].tail_dev)]
        approx = [keep_columns(getattr(self, name), columns) for name, columns in self._COLUMNS.items()]
        approx += [self.slots.values, self.rarity_tops.ravel()]
        approx += [keep_columns(self.lags[k].rows, DEVIATION_COLUMNS) for k in lags]
        return {
            "step_seconds": self.step_seconds,
            "log_floor": self.log_floor,
            "deciding": self.deciding,
            "young_start_ns": self.young_start_ns,
            "points": self.points,
            "cursor_ns": self.cursor_ns,
            "slots": {"per_day": self.slots.per_day, "open_slot": self.slots.open_slot,
                      "open_sum": self.slots.open_sum, "open_count": self.slots.open_count},
            "lags": lags,
            "rarity_shape": list(self.rarity_tops.shape),
            "arrays": pack_bundle(exact, approx),
            "alarm": _alarm_dict(self.alarm),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamState:
        slots = data["slots"]
        lags = [str(k) for k in data["lags"]]
        exact, approx = unpack_bundle(data["arrays"])
        if len(exact) != len(cls._EXACT) + 2 * len(lags) or len(approx) != len(cls._COLUMNS) + 2 + len(lags):
            raise ValueError("arrays: not this state's layout")
        columns = list(cls._COLUMNS.items())
        state = cls(
            step_seconds=float(data["step_seconds"]),
            slots=SlotTable(int(slots["per_day"]), approx[len(columns)], int(slots["open_slot"]),
                            float(slots["open_sum"]), int(slots["open_count"])),
            lags={k: LagStream(restore_columns(approx[len(columns) + 2 + i], DEVIATION_COLUMNS),
                               exact[len(cls._EXACT) + 2 * i], exact[len(cls._EXACT) + 2 * i + 1])
                  for i, k in enumerate(lags)},
            log_floor=float(data["log_floor"]),
            deciding=bool(data["deciding"]),
            young_start_ns=optional_int(data.get("young_start_ns")),
            points=int(data["points"]),
            cursor_ns=optional_int(data.get("cursor_ns")),
            rarity_tops=approx[len(columns) + 1].reshape(tuple(int(s) for s in data["rarity_shape"])),
            alarm=_alarm_carry(data["alarm"]),
        )
        for name, value in zip(cls._EXACT, exact, strict=False):
            setattr(state, name, value)
        for (name, kept), value in zip(columns, approx, strict=False):
            setattr(state, name, restore_columns(value, kept))
        return state


def _alarm_dict(carry: AlarmCarry) -> dict[str, Any]:
    """``dataclasses.asdict(carry)`` without its recursive deep copy (about 10 us of the
    170 us of storing a state in bench/bench_engines.py)."""
    return {"previous_start": carry.previous_start, "last_alarm_end_ns": carry.last_alarm_end_ns,
            "open": carry.open, "recent_hits_ns": list(carry.recent_hits_ns)}


def _alarm_carry(data: Mapping[str, Any]) -> AlarmCarry:
    return AlarmCarry(optional_int(data.get("previous_start")), optional_int(data.get("last_alarm_end_ns")),
                      bool(data.get("open", False)), [int(v) for v in data.get("recent_hits_ns", [])])


@dataclass
class FittedState:
    """The engine's state for one series: the streamed statistics (``stream``) and the
    seasonal profiles explanations quote (fitted on the data up to ``data_end``, refitted
    when older than ``refit_age``). ``params`` fingerprints the configuration: a state
    made with other parameters is rebuilt."""

    params: dict[str, Any]
    stream: StreamState
    data_end: datetime | None = None
    seasonal: list[SeasonalComponent] = field(default_factory=list)
    version: int = STATE_VERSION

    def seasonal_offset(self, timestamps_ns: np.ndarray) -> np.ndarray:
        return seasonal_offset(self.seasonal, timestamps_ns)

    def profile_age(self, now: datetime) -> pd.Timedelta:
        """Data time since the end of the data the profiles were fitted on."""
        if self.data_end is None:
            return pd.Timedelta.max
        return pd.Timestamp(now) - pd.Timestamp(self.data_end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "params": dict(self.params),
            "stream": self.stream.to_dict(),
            "data_end": None if self.data_end is None else self.data_end.isoformat(),
            "seasonal": [c.to_dict() for c in self.seasonal],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedState:
        if int(data.get("version", 0)) != STATE_VERSION:
            raise ValueError(f"version: unsupported state version {data.get('version')!r}")
        end = data.get("data_end")
        return cls(
            params=dict(data["params"]),
            stream=StreamState.from_dict(data["stream"]),
            data_end=None if end is None else datetime.fromisoformat(end),
            seasonal=[SeasonalComponent.from_dict(c) for c in data.get("seasonal", [])],
        )

