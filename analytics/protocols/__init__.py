"""Standard ingestion protocols: OpenTelemetry OTLP/HTTP and Prometheus remote write 1.0.

Each protocol module decodes its message and translates it into the batch payload of
``analytics.ingest`` (the ``series`` form), which then goes through the very same
ingestion service as ``POST /api/v1/metrics`` (``analytics.ingestion``): same
validation, atomicity, idempotency, quotas and error format. The helpers here are shared by both translations.

Names
    Cluster, node and metric names are sanitised: every character outside
    ``[A-Za-z0-9_.:-]`` becomes ``_``. What is still invalid after that (empty, not
    starting with a letter or digit, longer than 128) is rejected by the shared parser
    with a 400 naming the protocol field.

Series labels / attributes
    Labels (Prometheus) and data point attributes (OTLP) that are not used for the
    cluster or the node become part of the metric name, sorted by key, each as
    ``.key:value`` (empty values left out)::

        node_cpu_seconds_total{cpu="0", mode="idle"} -> node_cpu_seconds_total.cpu:0.mode:idle

    so series that differ only by labels stay distinct. A name longer than 128
    characters this way is cut and ends with ``-`` and 10 hex digits of a hash of the
    whole name (deterministic, so re-sent points land in the same series).

Points
    Non-finite values (NaN, including Prometheus staleness markers, and infinities) are
    valid in both protocols but cannot be stored: they are skipped and counted, not
    rejected. Two points of one series at the same timestamp in one request: the last
    one wins (as when a point is re-sent).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from analytics.ingest import NS, BatchRejected, Problem
from tenants.names import NAME_CHARACTERS, NAME_MAX_LENGTH

_INVALID = re.compile(rf"[^{NAME_CHARACTERS}]")
_HASH_DIGITS = 10
_SERIES_FIELD = re.compile(r"^series\[(\d+)\](?:\.points\[(\d+)\])?(.*)$")


class ProtocolError(ValueError):
    """The message cannot be decoded at all (bad encoding, compression, protobuf).
    ``reason`` tells the client what the decoder said; ``counted_as`` is the fixed phrase
    the operators' counters keep instead (``Problem.counted_as``)."""

    def __init__(self, field: str, reason: str, *, counted_as: str, status: int = 400, code: str = "invalid_batch"):
        self.rejected = BatchRejected([Problem(None, field, reason, counted_as)], status=status, code=code)
        super().__init__(str(self.rejected))


def sanitise(name: str) -> str:
    """Replace every character outside [A-Za-z0-9_.:-] by '_'."""
    return _INVALID.sub("_", name)


def series_name(base: str, labels: Iterable[tuple[str, str]] = ()) -> str:
    """``base`` sanitised, then ``.key:value`` per label sorted by key, bounded in length."""
    name = sanitise(base)
    suffix = "".join(f".{sanitise(k)}:{sanitise(v)}" for k, v in sorted(labels) if v != "")
    if not suffix or len(name) > NAME_MAX_LENGTH:
        return name  # a base name that is too long on its own is a 400 from the parser
    full = name + suffix
    if len(full) <= NAME_MAX_LENGTH:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_DIGITS]
    return full[: NAME_MAX_LENGTH - _HASH_DIGITS - 1] + "-" + digest


def payload_timestamp(ts_ns: int) -> int | float:
    """Epoch seconds for the shared parser: an int when whole, else a float (µs kept)."""
    return ts_ns // NS if ts_ns % NS == 0 else ts_ns / NS


@dataclass
class _Series:
    origin: str
    unit: str
    points: dict[int, tuple[float, str]] = field(default_factory=dict)  # ts_ns -> (value, origin)


@dataclass
class Translation:
    """A protocol message as a batch payload, plus where each entry came from."""

    series: dict[tuple[str | None, str | None, str], _Series] = field(default_factory=dict)
    skipped: int = 0

    def add(self, cluster: str | None, node: str | None, metric: str, unit: str, ts_ns: int, value: float,
            origin: str, point_origin: str) -> None:
        if not math.isfinite(value):
            self.skipped += 1
            return
        entry = self.series.get((cluster, node, metric))
        if entry is None:
            entry = self.series[(cluster, node, metric)] = _Series(origin, unit)
        elif unit:
            entry.unit = unit
        entry.points.pop(ts_ns, None)  # last one wins, and keeps its place at the end
        entry.points[ts_ns] = (value, point_origin)

    @property
    def point_count(self) -> int:
        return sum(len(s.points) for s in self.series.values())

    def payload(self) -> dict:
        out = []
        for (cluster, node, metric), entry in self.series.items():
            item: dict = {"metric": metric, "points": [[payload_timestamp(ts), v] for ts, (v, _) in entry.points.items()]}
            if cluster is not None:
                item["cluster"] = cluster
            if node is not None:
                item["node"] = node
            if entry.unit:
                item["unit"] = entry.unit
            out.append(item)
        return {"series": out}

    def relabel(self, rejected: BatchRejected) -> BatchRejected:
        """The parser's problems with ``series[i].points[j]`` paths turned into protocol paths."""
        entries = list(self.series.values())
        problems = []
        for problem in rejected.problems:
            match = _SERIES_FIELD.match(problem.field)
            if match and int(match.group(1)) < len(entries):
                entry = entries[int(match.group(1))]
                where = entry.origin
                if match.group(2) is not None:
                    origins = [o for _, o in entry.points.values()]
                    j = int(match.group(2))
                    where = origins[j] if j < len(origins) else where
                problem = replace(problem, field=where + match.group(3))
            problems.append(problem)
        return BatchRejected(problems, rejected.total, status=rejected.status, code=rejected.code)
