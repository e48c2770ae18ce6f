"""A small fleet with one injected anomaly, sent through the real ingestion endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np

STEP = 60
END_TIME_OF_DAY = 8 * 3600
"""The daily cycle is drawn as if every fleet ended at 08:00 UTC, so what detection sees
does not depend on the time of day the tests run (it did: node-3's bumps in the
dashboard fleet were found at some hours and not at others)."""


def fleet_now() -> datetime:
    """A minute boundary comfortably in the past, so every window is complete."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=10)


def series_body(cluster: str, node: str, metric: str, start: int, values: np.ndarray, unit: str = "") -> dict:
    return {
        "cluster": cluster, "node": node, "metric": metric, "unit": unit,
        "points": [[start + i * STEP, round(float(v), 4)] for i, v in enumerate(values)],
    }


def baseline(rng: np.random.Generator, n: int, level: float, amplitude: float, noise: float) -> np.ndarray:
    t = END_TIME_OF_DAY + (np.arange(n) - n) * STEP
    return level + amplitude * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, noise, n)


def make_fleet(end: datetime, hours: int = 24, nodes: int = 4, seed: int = 7, spike_node: str = "node-2",
               spike_minutes_before_end: int = 90) -> tuple[list[dict], dict]:
    """cpu_usage and memory_used for ``nodes`` nodes over ``hours``; node ``spike_node``
    gets a cpu spike ``spike_minutes_before_end`` before the end. Returns (bodies, truth)."""
    rng = np.random.default_rng(seed)
    n = hours * 60
    start = int(end.timestamp()) - n * STEP
    bodies = []
    truth = {}
    for i in range(nodes):
        node = f"node-{i + 1}"
        cpu = baseline(rng, n, 40 + 3 * i, 10, 1.0)
        mem = baseline(rng, n, 60, 5, 0.5)
        if node == spike_node:
            at = n - spike_minutes_before_end
            cpu[at:at + 3] += 45
            truth = {"node": node, "metric": "cpu_usage", "time": datetime.fromtimestamp(start + at * STEP, UTC)}
        bodies.append({"series": [series_body("prod", node, "cpu_usage", start, cpu, "%"),
                                  series_body("prod", node, "memory_used", start, mem, "%")]})
    return bodies, truth


def ingest(client, bodies: list[dict]) -> int:
    accepted = 0
    for body in bodies:
        response = client.generic("POST", "/api/v1/metrics", json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.content
        accepted += response.json()["accepted"]
    return accepted
