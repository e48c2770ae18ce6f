"""Engine parameters: declaration, validation, durations, and the parameters every engine has.

Unknown or invalid values raise ``ValueError`` naming the parameter.

=================== ========= ===========================================================
common parameter    default   meaning
=================== ========= ===========================================================
window              "5min"    detection window length (epoch-aligned)
threshold           0.5       score at which a point counts as alarming (the calibrated
                              alarm level of every engine, see calibration.py)
min_alarm_points    1         k: alarm points needed within ``confirm_window`` (1 = off)
confirm_window      "5min"    trailing duration in which the k points are counted
suppress            "10min"   after an alarm episode ends, a new one starting sooner is
                              a repeat and dropped ("0s" = off)
merge_gap           "2h"      alarm episodes separated by less than this are reported as
                              one episode (and classified as one: a day whose daily
                              shape changed alarms on and off, one-signed pieces at a
                              time; merged, the classifier sees the shape change)
gate_scores         False     if True, points that are not alarms (below the threshold,
                              not confirmed, or suppressed) score 0, so the scores rank
                              the alarms only and thresholding them at ``threshold``
                              reproduces the alarms
=================== ========= ===========================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd


def parse_duration(value: Any) -> pd.Timedelta:
    """A positive-or-zero duration from a string ("5min", "1h", "1d") or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    try:
        td = pd.Timedelta(seconds=float(value)) if isinstance(value, int | float) else pd.Timedelta(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a duration: {value!r}") from None
    if pd.isna(td) or td < pd.Timedelta(0):
        raise ValueError(f"not a non-negative duration: {value!r}")
    return td


def _check_duration(value: Any) -> None:
    parse_duration(value)


def _check_positive_duration(value: Any) -> None:
    if parse_duration(value) <= pd.Timedelta(0):
        raise ValueError(f"must be a positive duration, got {value!r}")


@dataclass(frozen=True)
class Parameter:
    """One declared engine parameter: its type, default and bounds.

    ``check`` is an optional callable that raises ``ValueError`` for invalid values
    (e.g. :func:`parse_duration` for duration strings); its message is prefixed with the
    parameter name.
    """

    type: type
    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], None] | None = None

    def coerce(self, name: str, value: Any) -> Any:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        valid = isinstance(value, self.type) and (self.type is bool or not isinstance(value, bool))
        if not valid:
            raise ValueError(f"{name}: must be {self.type.__name__}, got {value!r}")
        if self.type is float and not math.isfinite(value):
            raise ValueError(f"{name}: must be finite, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name}: must be one of {list(self.choices)}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{name}: must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{name}: must be <= {self.maximum}, got {value!r}")
        if self.check is not None:
            try:
                self.check(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return value


def duration_parameter(default: str, help: str, *, positive: bool = True) -> Parameter:
    return Parameter(str, default, help, check=_check_positive_duration if positive else _check_duration)


COMMON_PARAMETERS: Mapping[str, Parameter] = {
    "window": duration_parameter("5min", "detection window length; windows are aligned to the UTC epoch"),
    "threshold": Parameter(
        float, 0.5, "score at which a point alarms (0.5: the calibrated alarm level, see calibration.py)",
        minimum=1e-6, maximum=1.0,
    ),
    "min_alarm_points": Parameter(
        int, 1, "k: alarm points needed within confirm_window before alarming (1 = off)", minimum=1, maximum=1000
    ),
    "confirm_window": duration_parameter("5min", "trailing duration in which min_alarm_points are counted"),
    "suppress": duration_parameter(
        "10min", "an alarm episode starting sooner than this after the previous one ended is dropped",
        positive=False,
    ),
    "merge_gap": duration_parameter(
        "2h", "alarm episodes separated by less than this are merged into one (and classified as one)",
        positive=False,
    ),
    "gate_scores": Parameter(
        bool, False, "points that are not alarms score 0 (the scores then rank the alarms only)"
    ),
}
