"""Two identical series (one to label, one control) with mild bumps on day 1 and day 2
and a bump of twice the deviation late on day 2, aligned to midnight UTC two days ago."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from tests.results.fleet import series_body

MILD = 6.0  # sigma 1 noise; the big bump is 2 x MILD
DURATION = 5
DAY1_BUMPS = (900, 1100, 1300)  # minutes from the start
DAY2_BUMPS = (1600, 1800, 2000, 2200, 2400)
BIG_BUMP = 2650


def history_start() -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=2)


def bumped_values(seed: int = 1) -> np.ndarray:
    values = 50 + np.random.default_rng(seed).normal(0, 1, 2 * 24 * 60)
    for at in (*DAY1_BUMPS, *DAY2_BUMPS):
        values[at:at + DURATION] += MILD
    values[BIG_BUMP:BIG_BUMP + DURATION] += 2 * MILD
    return values


def bodies(start: datetime, nodes: tuple[str, ...] = ("labelled", "control")) -> list[dict]:
    values = bumped_values()
    return [{"series": [series_body("prod", node, "cpu", int(start.timestamp()), values)]} for node in nodes]


def at_minute(start: datetime, minute: int) -> datetime:
    return start + timedelta(minutes=minute)
