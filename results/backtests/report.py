"""A backtest's report from its series' parts: NAB's normalised score per profile
(``100 (raw - null) / (perfect - null)`` over the summed parts, as the harness sums its
files), precision over the reviewed alarms, alarms per series per day, and the same
alarm volume under the tenant's current settings."""

from __future__ import annotations

from collections.abc import Iterable

from analytics.core.evaluation.nab import normalised

NAB_FIELDS = ("raw", "null", "perfect", "tp_windows", "fn_windows", "fp_events")


def combine(parts: Iterable[dict], days: float) -> dict:
    series = [s for part in parts for s in part.get("series", [])]
    total = {name: sum(s[name] for s in series) for name in ("points", "alarms", "reviewed_alarms", "true_alarms",
                                                              "windows", "current_alarms")}
    nab: dict[str, dict] = {}
    for s in series:
        for profile, numbers in s["nab"].items():
            into = nab.setdefault(profile, dict.fromkeys(NAB_FIELDS, 0.0))
            for name in NAB_FIELDS:
                into[name] += numbers[name]
    for numbers in nab.values():
        numbers["score"] = round(normalised(numbers["raw"], numbers["null"], numbers["perfect"]), 3)
        for name in ("tp_windows", "fn_windows", "fp_events"):
            numbers[name] = int(numbers[name])
    per_day = len(series) * days
    return {
        "series": len(series),
        "points": total["points"],
        "days": round(days, 4),
        "labelled_windows": total["windows"],
        "nab": nab,
        "alarms": total["alarms"],
        "alarms_per_series_per_day": round(total["alarms"] / per_day, 4) if per_day else 0.0,
        "reviewed_alarms": total["reviewed_alarms"],
        "precision": round(total["true_alarms"] / total["reviewed_alarms"], 4) if total["reviewed_alarms"] else None,
        "current_settings": {
            "alarms": total["current_alarms"],
            "alarms_per_series_per_day": round(total["current_alarms"] / per_day, 4) if per_day else 0.0,
            "alarm_change": total["alarms"] - total["current_alarms"],
        },
    }
