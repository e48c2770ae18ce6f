"""Parse and validate an ingestion batch as a whole, before anything is written.

Two forms, which may be mixed in one body:

    {"points": [{"cluster": "c1", "node": "n1", "metric": "cpu", "timestamp": "2026-11-27T10:00:00Z",
                 "value": 41.5, "unit": "%"}, ...]}
    {"series": [{"cluster": "c1", "node": "n1", "metric": "cpu", "unit": "%",
                 "points": [[1764237600, 41.5], ...]}, ...]}

Timestamps are RFC 3339 strings with an offset or epoch seconds. Every problem is
reported as {index, field, reason}, where index counts points across the whole batch.
Plain Python + numpy: no Django, so the parser is testable and fuzzable on its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from config.json_limits import JsonTooDeep, loads_bounded
from tenants.names import NAME_MAX_LENGTH, NAME_RE, SeriesKey

BODY_TOO_LARGE = "larger than the body size limit"  # counted as this, whichever size was sent
UNIT_MAX_LENGTH = 32
MAX_REPORTED_ERRORS = 100
NS = 1_000_000_000

POINT_FIELDS = {"cluster", "node", "metric", "timestamp", "value", "unit"}
SERIES_FIELDS = {"cluster", "node", "metric", "unit", "points"}
TOP_FIELDS = {"points", "series"}
COUNTED_FIELDS = POINT_FIELDS | SERIES_FIELDS | TOP_FIELDS | {"body"}


@dataclass(frozen=True)
class Limits:
    max_points: int
    min_ts_ns: int  # oldest accepted timestamp (hot retention)
    max_ts_ns: int  # newest accepted timestamp (now + allowed clock skew)


@dataclass(frozen=True)
class Problem:
    index: int | None
    field: str
    reason: str
    # The reason in the operators' counters when ``reason`` quotes the request (a size,
    # a decoder's message, a header): a fixed phrase, so clients cannot mint counter keys.
    counted_as: str = ""

    def as_dict(self) -> dict:
        return {"index": self.index, "field": self.field, "reason": self.reason}


class BatchRejected(ValueError):
    """The batch is invalid; nothing of it may be stored."""

    def __init__(self, problems: list[Problem], total: int | None = None, *, status: int = 400, code: str = "invalid_batch"):
        self.problems = problems[:MAX_REPORTED_ERRORS]
        self.total = total if total is not None else len(problems)
        self.status = status
        self.code = code
        first = problems[0]
        where = f"point {first.index}: " if first.index is not None else ""
        more = f" (and {self.total - 1} more)" if self.total > 1 else ""
        super().__init__(f"{where}{first.field}: {first.reason}{more}")

    def reason_counts(self) -> dict[str, int]:
        """Rejected points by reason, for the ingestion-health counters."""
        counts: dict[str, int] = {}
        for problem in self.problems:
            # A bounded vocabulary: no client-chosen text (unknown field names, positions)
            # in the stored counters, which also could not hold e.g. a NUL character.
            name = re.sub(r"\[\d+\]", "", problem.field.rsplit(".", 1)[-1])
            key = f"{name if name in COUNTED_FIELDS else 'field'}: {problem.counted_as or problem.reason}"
            counts[key] = counts.get(key, 0) + 1
        return counts


@dataclass
class ParsedBatch:
    """The valid batch: series keys (and units), then its points in batch order as
    chunks of (key index, timestamp ns, value) arrays."""

    keys: list[SeriesKey] = field(default_factory=list)
    units: dict[SeriesKey, str] = field(default_factory=dict)
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(values) for _, _, values in self.chunks)

    def add_chunk(self, key_index, ts_ns, values) -> None:
        if len(values):
            self.chunks.append((
                np.asarray(key_index, dtype=np.int64), np.asarray(ts_ns, dtype=np.int64),
                np.asarray(values, dtype=np.float64),
            ))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.chunks:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
        key_index, ts_ns, values = (np.concatenate(parts) for parts in zip(*self.chunks, strict=True))
        return key_index, ts_ns, values


def decode_json(body: bytes, max_depth: int) -> object:
    """Decode a body: orjson (faster than json on large bodies), and
    the standard library for what orjson refuses. That decodes the NaN/Infinity literals
    some clients send to floats, so the validation can name the point and field instead
    of failing the whole body, and words the error of a malformed body. Nesting deeper
    than ``max_depth`` is refused (``config.json_limits``)."""
    try:
        return loads_bounded(body, max_depth, allow_nan=True)
    except JsonTooDeep as exc:
        raise BatchRejected([Problem(None, "body", str(exc))]) from None
    except ValueError as exc:
        raise BatchRejected([Problem(None, "body", f"malformed JSON: {exc}", "malformed JSON")]) from None


def name_problem(value: object) -> str | None:
    """Why ``value`` is not a valid cluster, node or metric name, or None."""
    if value is None:
        return "required"
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > NAME_MAX_LENGTH:
        return f"longer than {NAME_MAX_LENGTH} characters"
    if not NAME_RE.fullmatch(value):
        return "only letters, digits and _ . : - allowed, starting with a letter or digit"
    return None


def unit_is_valid(value: object) -> bool:
    return isinstance(value, str) and len(value) <= UNIT_MAX_LENGTH and value.isprintable()


class _Parser:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.batch = ParsedBatch()
        self.problems: list[Problem] = []
        self.key_ids: dict[SeriesKey, int] = {}
        self.index = 0
        self.pending: tuple[list[int], list[int], list[float]] = ([], [], [])  # per-point path, not yet chunked

    def problem(self, index: int | None, field: str, reason: str) -> None:
        self.problems.append(Problem(index, field, reason))

    def name(self, obj: dict, key: str, path: str, index: int | None) -> str | None:
        value = obj.get(key)
        reason = name_problem(value)
        if reason:
            self.problem(index, f"{path}.{key}", reason)
            return None
        return value

    def unit(self, obj: dict, path: str, index: int | None) -> str | None:
        value = obj.get("unit", "")
        if not unit_is_valid(value):
            self.problem(index, f"{path}.unit", f"must be a printable string of at most {UNIT_MAX_LENGTH} characters")
            return None
        return value

    def unknown(self, obj: dict, allowed: set[str], path: str, index: int | None) -> None:
        for key in obj.keys() - allowed:
            self.problem(index, f"{path}.{key}", "unknown field")

    def timestamp(self, raw: object, path: str, index: int) -> int | None:
        if isinstance(raw, bool) or raw is None:
            self.problem(index, path, "must be an RFC 3339 string with an offset or epoch seconds")
            return None
        if isinstance(raw, int):
            ts = raw * NS  # any size: out-of-range ints fail the limits below
        elif isinstance(raw, float):
            if not math.isfinite(raw):
                self.problem(index, path, "must be finite")
                return None
            # PostgreSQL keeps µs; past 1e15 s (where raw * 1e6 may overflow) whole seconds do
            ts = round(raw * 1_000_000) * 1000 if abs(raw) < 1e15 else int(raw) * NS
        elif isinstance(raw, str):
            try:
                parsed = datetime.fromisoformat(raw)
            except ValueError:
                self.problem(index, path, "not an RFC 3339 timestamp")
                return None
            if parsed.tzinfo is None or parsed.utcoffset() is None:
                self.problem(index, path, "has no UTC offset (naive timestamps are ambiguous)")
                return None
            try:
                ts = int(parsed.timestamp()) * NS + parsed.microsecond * 1000
            except OverflowError:  # e.g. year 1 with a positive offset
                self.problem(index, path, "out of range")
                return None
        else:
            self.problem(index, path, "must be an RFC 3339 string with an offset or epoch seconds")
            return None
        if ts > self.limits.max_ts_ns:
            self.problem(index, path, "too far in the future")
            return None
        if ts < self.limits.min_ts_ns:
            self.problem(index, path, "older than the hot retention period")
            return None
        return ts

    def value(self, raw: object, path: str, index: int) -> float | None:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.problem(index, path, "must be a number")
            return None
        try:
            value = float(raw)
        except OverflowError:  # an integer beyond the float range
            self.problem(index, path, "must be finite")
            return None
        if not math.isfinite(value):
            self.problem(index, path, "must be finite")
            return None
        return value

    def key_id(self, key: SeriesKey, unit: str | None) -> int:
        key_id = self.key_ids.get(key)
        if key_id is None:
            key_id = self.key_ids[key] = len(self.batch.keys)
            self.batch.keys.append(key)
        if unit:
            self.batch.units[key] = unit
        return key_id

    def add(self, key_id: int | None, ts: int | None, value: float | None) -> None:
        if key_id is not None and ts is not None and value is not None:
            key_index, ts_ns, values = self.pending
            key_index.append(key_id)
            ts_ns.append(ts)
            values.append(value)

    def flush(self) -> None:
        """Chunk the points added one by one, keeping the batch order."""
        self.batch.add_chunk(*self.pending)
        self.pending = ([], [], [])

    def numeric_series(self, series: list) -> bool:
        """The bulk case, checked and converted for the whole list at once: every entry
        a valid series object whose points are [number, number] pairs of epoch seconds
        and finite values within the limits. Adds the points and returns True;
        otherwise adds nothing and returns False, and the per-point path (the
        reference, which names each problem) takes the list."""
        entries = []
        for obj in series:
            if type(obj) is not dict or not obj.keys() <= SERIES_FIELDS:
                return False
            cluster, node, metric = obj.get("cluster"), obj.get("node"), obj.get("metric")
            points, unit = obj.get("points"), obj.get("unit", "")
            if type(points) is not list or not points:
                return False
            if type(cluster) is not str or type(node) is not str or type(metric) is not str or type(unit) is not str:
                return False
            entries.append(((cluster, node, metric), unit, points))
        # Names repeat across series (a node's metrics, a cluster's nodes): check each once.
        if any(map(name_problem, {part for key, _, _ in entries for part in key})):
            return False
        if not all(map(unit_is_valid, {unit for _, unit, _ in entries})):
            return False
        flat = [pair for _, _, points in entries for pair in points]
        if set(map(type, flat)) != {list} or set(map(len, flat)) != {2}:
            return False
        raw_ts, raw_values = zip(*flat, strict=True)
        number = {int, float}  # exact types: bool (an int subclass) is not a number here
        ts_types = set(map(type, raw_ts))
        if not ts_types <= number or not set(map(type, raw_values)) <= number:
            return False
        try:
            values = np.array(raw_values, dtype=np.float64)
            seconds = np.array(raw_ts, dtype=np.int64 if ts_types == {int} else np.float64)
        except OverflowError:  # an integer beyond int64 or the float range
            return False
        low, high = self.limits.min_ts_ns // NS, -(-self.limits.max_ts_ns // NS)
        if not (np.isfinite(values).all() and np.isfinite(seconds).all()
                and seconds.min() >= low - 1 and seconds.max() <= high + 1):
            return False
        if seconds.dtype == np.int64:
            ts_ns = seconds * NS
        else:  # as the per-point path: rounded to microseconds (exact in this range)
            ts_ns = np.round(seconds * 1_000_000).astype(np.int64) * 1000
        if ts_ns.min() < self.limits.min_ts_ns or ts_ns.max() > self.limits.max_ts_ns:
            return False
        key_ids = [self.key_id(key, unit) for key, unit, _ in entries]
        self.flush()
        self.batch.add_chunk(np.repeat(key_ids, [len(points) for _, _, points in entries]), ts_ns, values)
        self.index += len(flat)
        return True

    def series_key(self, obj: dict, path: str, index: int | None) -> tuple[SeriesKey | None, str | None]:
        cluster = self.name(obj, "cluster", path, index)
        node = self.name(obj, "node", path, index)
        metric = self.name(obj, "metric", path, index)
        unit = self.unit(obj, path, index)
        if cluster is None or node is None or metric is None:
            return None, unit
        return (cluster, node, metric), unit

    def point_objects(self, points: list) -> None:
        for position, obj in enumerate(points):
            path = f"points[{position}]"
            index = self.index
            self.index += 1
            if not isinstance(obj, dict):
                self.problem(index, path, "must be an object")
                continue
            self.unknown(obj, POINT_FIELDS, path, index)
            key, unit = self.series_key(obj, path, index)
            ts = self.timestamp(obj.get("timestamp"), f"{path}.timestamp", index) if "timestamp" in obj else None
            if "timestamp" not in obj:
                self.problem(index, f"{path}.timestamp", "required")
            value = self.value(obj.get("value"), f"{path}.value", index) if "value" in obj else None
            if "value" not in obj:
                self.problem(index, f"{path}.value", "required")
            self.add(self.key_id(key, unit) if key else None, ts, value)

    def series_objects(self, series: list) -> None:
        if series and self.numeric_series(series):
            return
        for position, obj in enumerate(series):
            path = f"series[{position}]"
            if not isinstance(obj, dict):
                self.problem(self.index, path, "must be an object")
                continue
            self.unknown(obj, SERIES_FIELDS, path, None)
            key, unit = self.series_key(obj, path, None)
            key_id = self.key_id(key, unit) if key else None
            points = obj.get("points")
            if not isinstance(points, list) or not points:
                self.problem(self.index, f"{path}.points", "required: a non-empty list of [timestamp, value] pairs")
                continue
            for offset, pair in enumerate(points):
                point_path = f"{path}.points[{offset}]"
                index = self.index
                self.index += 1
                if not isinstance(pair, list) or len(pair) != 2:
                    self.problem(index, point_path, "must be a [timestamp, value] pair")
                    continue
                ts = self.timestamp(pair[0], f"{point_path}.timestamp", index)
                value = self.value(pair[1], f"{point_path}.value", index)
                self.add(key_id, ts, value)


def parse_batch(payload: object, limits: Limits) -> ParsedBatch:
    """Validate the whole batch; raise BatchRejected listing every problem."""
    if not isinstance(payload, dict):
        raise BatchRejected([Problem(None, "body", "must be a JSON object with 'points' and/or 'series'")])
    parser = _Parser(limits)
    parser.unknown(payload, TOP_FIELDS, "body", None)
    points, series = payload.get("points", []), payload.get("series", [])
    for name, value in (("points", points), ("series", series)):
        if not isinstance(value, list):
            parser.problem(None, name, "must be a list")
    if parser.problems:
        raise BatchRejected(parser.problems)
    size = len(points) + sum(len(s["points"]) for s in series if isinstance(s, dict) and isinstance(s.get("points"), list))
    if size > limits.max_points:
        raise BatchRejected(
            [Problem(None, "points", f"{size} points exceed the limit of {limits.max_points} per batch",
                     "more points than a batch may hold")],
            status=413, code="batch_too_large",
        )
    parser.point_objects(points)
    parser.series_objects(series)
    parser.flush()
    if parser.problems:
        raise BatchRejected(parser.problems)
    if not len(parser.batch):
        raise BatchRejected([Problem(None, "points", "the batch is empty")])
    return parser.batch
