"""How numbers, units, moments and durations read in every sentence Fleetwatch writes
(explanations, root-cause hints, ranking moves, ingestion health): one home, so they read
the same everywhere. Sentences round; the exact values stay in the structured fields."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

SIGMA_CAP = 50.0  # beyond this a sentence says "beyond +50σ": more digits mean nothing to a reader

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")  # sizes: memory, disks
_DECIMAL_RATE = ("B/s", "KB/s", "MB/s", "GB/s", "TB/s")  # throughput, as network tools print it


def format_value(value: float, unit: str = "") -> str:
    """A number as people read it in its unit: 97.3%, 250 ms, 1.2 s, 1.5 GiB, 12.5 MB/s, 0.042."""
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("bytes", "B"):
        return _scaled(value, 1024, _BINARY)
    if unit in ("bytes/s", "B/s"):
        return _scaled(value, 1000, _DECIMAL_RATE)
    if unit == "ms" and abs(value) >= 1000:
        return f"{format_number(value / 1000)} s"
    number = format_number(value)
    return f"{number} {unit}" if unit else number


def _scaled(value: float, base: int, prefixes: tuple[str, ...]) -> str:
    size, power = abs(value), 0
    while size >= base and power < len(prefixes) - 1:
        size /= base
        power += 1
    sign = "-" if value < 0 else ""
    return f"{sign}{size:.0f} {prefixes[0]}" if power == 0 else f"{sign}{size:.1f} {prefixes[power]}"


def format_number(value: float) -> str:
    """12,345 / 250 / 41.5 / 0.042: digits where they matter."""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 1 or size == 0:
        return f"{value:.1f}"
    return f"{value:.2g}"


def format_sigma(sigma: float) -> str:
    """+4.3σ, -12σ, beyond +50σ (``SIGMA_CAP``): signed robust sigmas."""
    if abs(sigma) > SIGMA_CAP:
        return f"beyond {'+' if sigma > 0 else '-'}{SIGMA_CAP:.0f}σ"
    return f"{sigma:+.0f}σ" if abs(sigma) >= 10 else f"{sigma:+.1f}σ"


def format_duration(delta: timedelta) -> str:
    """45 s, 3 min, 2 h, 1.5 h, 3 d: rounded to what a reader compares."""
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600, 1):g} h"
    return f"{round(seconds / 86400, 1):g} d"


def format_lag(seconds: float) -> str:
    """12 min, 1 h 5 min, 40 s: a lead or lag between series, to the minute."""
    seconds = abs(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_moment(moment: datetime) -> str:
    """2026-11-27 06:50 UTC (seconds only when there are some)."""
    moment = pd.Timestamp(moment).tz_convert("UTC")
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment.second else f"{moment:%Y-%m-%d %H:%M} UTC"


def format_time(moment: datetime) -> str:
    """06:50 UTC: the time of day, where the date is said already."""
    moment = pd.Timestamp(moment).tz_convert("UTC")
    return f"{moment:%H:%M:%S} UTC" if moment.second else f"{moment:%H:%M} UTC"
