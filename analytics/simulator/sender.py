"""Sending a fleet to Fleetwatch: ingestion bodies, history and live (simulated-clock)
sending, and an HTTP sender for ``POST /api/v1/metrics`` (stdlib only).
"""

from __future__ import annotations

import http.client
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from analytics.simulator.fleet import Fleet
from analytics.simulator.spec import DAY, METRIC_MODELS

Batch = dict[str, list[dict[str, Any]]]
Sender = Callable[[Batch], dict[str, Any]]


def _json_number(value: float, decimals: int) -> float | int:
    return int(value) if decimals == 0 else float(value)


def batches(fleet: Fleet, i0: int = 0, i1: int | None = None, *, tenant: str | None = None,
            batch_points: int = 10_000, chunk_points: int | None = None) -> Iterator[Batch]:
    """Ingestion bodies (compact "series" form, epoch-second timestamps) for [i0, i1).

    Time-major: the range is cut into chunks of ``chunk_points`` per series (default one
    day) and each chunk of every series is sent before the next, so the oldest points
    go first (the server refuses points older than the hot retention). Each body holds
    at most ``batch_points`` points.
    """
    i1 = fleet.n_points if i1 is None else i1
    if batch_points < 1:
        raise ValueError("batch_points: must be positive")
    chunk = chunk_points or max(1, DAY // fleet.step)
    entries: list[dict[str, Any]] = []
    size = 0
    for c0 in range(i0, i1, chunk):
        c1 = min(i1, c0 + chunk)
        for series in fleet.iter_series(c0, c1, tenant=tenant):
            decimals = METRIC_MODELS[series.key.metric].decimals
            pairs = [[int(t), _json_number(v, decimals)] for t, v in zip(series.timestamps.tolist(), series.values.tolist(), strict=True)]
            while pairs:
                room = batch_points - size
                part, pairs = pairs[:room], pairs[room:]
                entries.append({"cluster": series.key.cluster, "node": series.key.node, "metric": series.key.metric,
                                "unit": series.unit, "points": part})
                size += len(part)
                if size >= batch_points:
                    yield {"series": entries}
                    entries, size = [], 0
    if entries:
        yield {"series": entries}


def batch_size(batch: Batch) -> int:
    return sum(len(s["points"]) for s in batch.get("series", [])) + len(batch.get("points", []))


@dataclass
class SendReport:
    batches: int = 0
    points: int = 0
    accepted: int = 0
    new_series: int = 0

    def add(self, batch: Batch, answer: dict[str, Any]) -> None:
        self.batches += 1
        self.points += batch_size(batch)
        self.accepted += int(answer.get("accepted", 0))
        self.new_series += int(answer.get("new_series", 0))


def _single_tenant(fleet: Fleet, tenant: str | None) -> str:
    if tenant is None:
        if fleet.spec.tenants != 1:
            raise ValueError("tenant: required when the fleet has several tenants (an API key is one tenant)")
        return fleet.tenants[0]
    if tenant not in fleet.tenants:
        raise ValueError(f"tenant: {tenant!r} is not in the fleet")
    return tenant


def send_history(fleet: Fleet, sender: Sender, *, tenant: str | None = None, t0: float | None = None,
                 t1: float | None = None, batch_points: int = 10_000,
                 progress: Callable[[int], Any] | None = None) -> SendReport:
    """Send the points of one tenant with timestamps in [t0, t1) (default: the whole fleet).

    ``sender`` takes one batch body (a dict) and returns the decoded answer
    (``{"accepted": N, "new_series": M}``); it raises to stop. ``progress`` is called
    with the point count of each batch sent.
    """
    tenant = _single_tenant(fleet, tenant)
    i0, i1 = fleet.index_range(fleet.spec.start_epoch if t0 is None else t0, math.inf if t1 is None else t1)
    report = SendReport()
    for batch in batches(fleet, i0, i1, tenant=tenant, batch_points=batch_points):
        answer = sender(batch)
        report.add(batch, answer)
        if progress:
            progress(batch_size(batch))
    return report


def send_live(fleet: Fleet, sender: Sender, *, sim_start: float, duration: float, speed: float = 1.0,
              tenant: str | None = None, tick_seconds: float = 1.0, batch_points: int = 10_000,
              clock: Callable[[], float] | None = None, sleep: Callable[[float], Any] | None = None,
              progress: Callable[[int], Any] | None = None) -> SendReport:
    """Send points as simulated time passes: ``speed`` simulated seconds per wall-clock second.

    Simulated time starts at ``sim_start`` (epoch seconds) and runs for ``duration``
    wall-clock seconds, i.e. over [sim_start, sim_start + duration * speed). Every
    tick (``tick_seconds`` of wall clock) sends the points that became due: those
    whose timestamp is at or before the current simulated time. With ``speed == 1``
    and ``sim_start`` = now, each point is sent as its timestamp arrives.
    """
    clock = clock or time.time
    sleep = sleep or time.sleep
    tenant = _single_tenant(fleet, tenant)
    if speed <= 0 or duration < 0:
        raise ValueError("speed: must be positive; duration: must not be negative")
    report = SendReport()
    sim_end = sim_start + duration * speed
    next_index, last_index = fleet.index_range(sim_start, sim_end)  # points to send: [next_index, last_index)
    wall0 = clock()
    while next_index < last_index:
        sim_now = sim_start + (clock() - wall0) * speed
        due = min(last_index, max(0, math.floor((sim_now - fleet.spec.start_epoch) / fleet.step) + 1))
        if due > next_index:
            for batch in batches(fleet, next_index, due, tenant=tenant, batch_points=batch_points):
                report.add(batch, sender(batch))
                if progress:
                    progress(batch_size(batch))
            next_index = due
        if next_index < last_index:
            sleep(tick_seconds)
    return report


class IngestError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        self.status, self.body = status, body
        super().__init__(f"HTTP {status}: {body}")


class HttpSender:
    """POST batches to /api/v1/metrics over one persistent HTTP(S) connection (stdlib only).

    429 and 503 (and dropped connections) are retried ``retries`` times with
    exponential backoff, honouring ``Retry-After``; any other non-2xx answer raises
    :class:`IngestError` carrying the body.
    """

    def __init__(self, url: str, api_key: str, *, path: str = "/api/v1/metrics", retries: int = 5,
                 backoff: float = 0.5, timeout: float = 120.0, sleep: Callable[[float], Any] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: expected http(s)://host[:port], got {url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.path = parts.path.rstrip("/") + path
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                        "Accept": "application/json", "Connection": "keep-alive"}
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._sleep = sleep
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __call__(self, batch: Batch) -> dict[str, Any]:
        sleep = self._sleep or time.sleep
        body = json.dumps(batch, separators=(",", ":")).encode()
        for attempt in range(self.retries + 1):
            delay = self.backoff * 2**attempt
            try:
                conn = self._connection()
                conn.request("POST", self.path, body=body, headers=self.headers)
                response = conn.getresponse()
                status, text = response.status, response.read().decode("utf-8", "replace")
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
            except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                self.close()
                if attempt == self.retries:
                    raise IngestError(0, f"connection failed: {exc}") from None
                sleep(delay)
                continue
            if 200 <= status < 300:
                return json.loads(text)
            if status in (429, 503) and attempt < self.retries:
                retry_after = response.getheader("Retry-After")
                try:
                    delay = max(delay, float(retry_after)) if retry_after else delay
                except ValueError:
                    pass
                sleep(delay)
                continue
            raise IngestError(status, text)
        raise AssertionError("unreachable")
