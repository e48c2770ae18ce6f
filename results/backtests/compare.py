"""Two backtests side by side: b minus a, for the figures both reports have."""

from __future__ import annotations

from results.models import Backtest


def _minus(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 4)


def difference(a: Backtest, b: Backtest) -> dict:
    ra, rb = a.report or {}, b.report or {}
    profiles = sorted(set(ra.get("nab", {})) & set(rb.get("nab", {})))
    return {
        "nab_score": {p: _minus(rb["nab"][p]["score"], ra["nab"][p]["score"]) for p in profiles},
        "precision": _minus(rb.get("precision"), ra.get("precision")),
        "alarms_per_series_per_day": _minus(rb.get("alarms_per_series_per_day"), ra.get("alarms_per_series_per_day")),
        "same_series_and_range": (a.series_ids, a.range_start, a.range_end) == (b.series_ids, b.range_start, b.range_end),
    }
