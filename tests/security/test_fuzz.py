"""Fuzzing: the API against its own OpenAPI schema (schemathesis), and the ingestion
parser against any JSON-able input (Hypothesis).

API: every operation of the schema drf-spectacular generates is called through WSGI as
tenant A (seeded: a fleet, a detection run, anomalies, scores), with schema-valid
(positive) and schema-violating (negative) data. Every response must be a documented
status code with a body and headers matching the schema, and never a 5xx. Path ids are
mapped to tenant A's real objects two times in three, so detail endpoints answer rows,
not just 404s.

Parser: ``parse_batch`` on any input returns a consistent ParsedBatch (arrays of one
length, finite values, timestamps within the limits, at most ``max_points``) or raises
BatchRejected naming fields; never another exception.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from analytics.ingest import (
    NAME_RE,
    NS,
    BatchRejected,
    Limits,
    ParsedBatch,
    _Parser,
    parse_batch,
)
from analytics.models import Series
from config.wsgi import application
from results.models import Anomaly, DetectionRun
from tenants.scoping import tenant_scope
from tests.dashboard.seed import seed

POSITIVE_EXAMPLES = int(os.environ.get("FLEETWATCH_FUZZ_EXAMPLES", "30"))
NEGATIVE_EXAMPLES = max(1, POSITIVE_EXAMPLES // 2)
CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_schema_conformance, response_headers_conformance,
]
ID_KINDS = {"runs": "run", "anomalies": "anomaly", "series": "series"}

# Protobuf bodies (OTLP, Prometheus remote write) go out as the raw bytes generated.
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")

API_SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
SCHEMA = schemathesis.openapi.from_dict(json.loads(json.dumps(API_SCHEMA, default=str)))
SCHEMA.app = application
OPERATIONS = sorted((method.upper(), path) for path, ops in API_SCHEMA["paths"].items() for method in ops)
CASES: Counter = Counter()  # (mode, "METHOD path") -> cases sent, for docs/security.md


@pytest.fixture
def wsgi_connections():
    """The WSGI calls share the test's connection and transaction, as the test client
    does: Django must not close it at request start and end."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(api_a, tenant_a) -> dict[str, int]:
    """Tenant A's dashboard fleet, detected: real runs, anomalies, scores and series."""
    seed(api_a, tenant_a)
    with tenant_scope(tenant_a):
        ids = {
            "run": DetectionRun.objects.order_by("pk").values_list("pk", flat=True).first(),
            "anomaly": Anomaly.objects.order_by("-score").values_list("pk", flat=True).first(),
            "series": Series.objects.order_by("pk").values_list("pk", flat=True).first(),
        }
    assert all(ids.values()), ids
    return ids


def fuzz_operation(method: str, path: str, mode: GenerationMode, examples: int, key: str, ids: dict[str, int]) -> None:
    operation = SCHEMA[path][method]
    kind = ID_KINDS.get(path.split("/")[3])
    auth = {"Authorization": f"Bearer {key}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):
        path_id = case.path_parameters.get("id") if kind and isinstance(case.path_parameters, dict) else None
        if isinstance(path_id, int) and path_id % 3:
            case.path_parameters["id"] = ids[kind]
        CASES[(mode.value, f"{method} {path}")] += 1
        with transaction.atomic():  # each case on its own: a failed one cannot poison the next
            response = case.call(headers=auth)
            transaction.set_rollback(True)
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_operation_answers_as_documented(key_a, seeded, wsgi_connections, subtests):
    """One seeded fleet, every operation a subtest (seeding per operation costs ~10 s)."""
    for method, path in OPERATIONS:
        for mode, examples in ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
            with subtests.test(msg=f"{mode.value} {method} {path}"):
                fuzz_operation(method, path, mode, examples, key_a, seeded)
    assert all(CASES[("positive", f"{m} {p}")] > 0 for m, p in OPERATIONS), CASES


def test_zz_fuzz_figures():
    """Records the number of cases per operation (docs/security.md quotes them)."""
    if not CASES:
        pytest.skip("the fuzz tests did not run")
    figures = {"positive_per_operation_max": POSITIVE_EXAMPLES, "negative_per_operation_max": NEGATIVE_EXAMPLES,
               "operations": len(OPERATIONS), "total": sum(CASES.values()),
               "cases": {f"{mode} {op}": n for (mode, op), n in sorted(CASES.items())}}
    out = Path(os.environ.get("FLEETWATCH_VAR_DIR", Path(__file__).resolve().parents[2] / "var"))
    (out / "security-fuzz-figures.json").write_text(json.dumps(figures, indent=1))
    print(f"\nfuzzed {figures['total']} cases over {figures['operations']} operations")


# The ingestion parser ---------------------------------------------------------------

NOW_NS = int(datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()) * NS
LIMITS = Limits(max_points=50, min_ts_ns=NOW_NS - 7 * 86_400 * NS, max_ts_ns=NOW_NS + 300 * NS)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
names = st.sampled_from(["prod", "node-1", "cpu_usage", "a.b:c-d", "", " x", "ü", "-bad", "x" * 129]) | st.text(max_size=6)
numbers = (
    st.integers() | st.floats() | st.sampled_from([1e308, -1e308, 2**63, 10**400, -(10**400), float("nan")])
    | st.integers(min_value=(NOW_NS - 8 * 86_400 * NS) // NS, max_value=(NOW_NS + 600 * NS) // NS)
    | st.floats(min_value=(NOW_NS - 8 * 86_400 * NS) / NS, max_value=(NOW_NS + 600 * NS) / NS)
)
rfc3339 = st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()) | st.sampled_from(
    ["2026-11-27T10:00:00Z", "2026-11-27T10:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "soon"]
)
timestamps = numbers | rfc3339 | json_values
values = numbers | json_values
point = st.fixed_dictionaries(
    {"cluster": names, "node": names, "metric": names},
    optional={"timestamp": timestamps, "value": values, "unit": st.text(max_size=40) | json_values, "extra": json_values},
)
series = st.fixed_dictionaries(
    {"cluster": names, "node": names, "metric": names,
     "points": st.lists(st.lists(timestamps | values, min_size=0, max_size=3) | json_values, max_size=8) | json_values},
    optional={"unit": st.text(max_size=40) | json_values},
)
batches = st.fixed_dictionaries({}, optional={
    "points": st.lists(point, max_size=30) | json_values,
    "series": st.lists(series, max_size=6) | json_values,
    "other": json_values,
})


def check_parse(payload: object) -> None:
    try:
        batch = parse_batch(payload, LIMITS)
    except BatchRejected as rejected:
        assert rejected.problems and rejected.status in (400, 413)
        for problem in rejected.problems:
            assert isinstance(problem.field, str) and problem.field
            assert isinstance(problem.reason, str) and problem.reason
            assert problem.index is None or (isinstance(problem.index, int) and problem.index >= 0)
        assert str(rejected)
        return
    assert isinstance(batch, ParsedBatch)
    key_index, ts_ns, vals = batch.arrays()
    assert 0 < len(batch) <= LIMITS.max_points
    assert len(key_index) == len(ts_ns) == len(vals) == len(batch)
    assert ((key_index >= 0) & (key_index < len(batch.keys))).all()
    assert all(math.isfinite(v) for v in vals.tolist())
    assert ((ts_ns >= LIMITS.min_ts_ns) & (ts_ns <= LIMITS.max_ts_ns)).all()
    assert len(set(batch.keys)) == len(batch.keys)
    for key in batch.keys:
        assert all(isinstance(part, str) and NAME_RE.fullmatch(part) and len(part) <= 128 for part in key)
    assert set(batch.units) <= set(batch.keys)


@given(json_values)
@settings(max_examples=300, deadline=None, database=None)
def test_the_parser_accepts_or_rejects_any_json(payload):
    check_parse(payload)


@given(batches)
@settings(max_examples=500, deadline=None, database=None)
def test_the_parser_accepts_or_rejects_any_near_valid_batch(payload):
    check_parse(payload)


@given(batches)
@settings(max_examples=100, deadline=None, database=None)
def test_the_parser_survives_a_json_round_trip(payload):
    """What a client can send: the batch as it decodes from JSON text (NaN literals too)."""
    check_parse(json.loads(json.dumps(payload)))


# Mostly-valid compact series, so the bulk path is taken and sometimes falls back.
in_range_seconds = st.integers(min_value=-(-LIMITS.min_ts_ns // NS), max_value=LIMITS.max_ts_ns // NS)
numeric_value = st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
numeric_pair = st.tuples(
    in_range_seconds | st.builds(lambda s, ns: s + ns / NS, in_range_seconds, st.integers(0, NS - 1)), numeric_value
).map(list)
near_a_limit = st.builds(  # just inside or outside the oldest or newest accepted second
    lambda s, ns: s + ns / NS, st.sampled_from([LIMITS.min_ts_ns // NS, LIMITS.max_ts_ns // NS]), st.integers(-NS, NS)
) | st.sampled_from([LIMITS.min_ts_ns // NS - 1, LIMITS.min_ts_ns // NS, LIMITS.max_ts_ns // NS, LIMITS.max_ts_ns // NS + 1])
odd_point = st.lists(timestamps | values, max_size=3) | st.tuples(near_a_limit, numeric_value).map(list)
odd_field = st.tuples(st.sampled_from(["cluster", "node", "metric", "unit", "points", "extra"]), names | json_values)
clean_series = st.fixed_dictionaries(
    {"cluster": st.sampled_from(["prod", "edge"]), "node": st.sampled_from(["n1", "n2"]),
     "metric": st.sampled_from(["cpu", "mem"]), "points": st.lists(numeric_pair, min_size=1, max_size=12)},
    optional={"unit": st.sampled_from(["%", "bytes"])},
)


def spoil(series: list, odd_point, odd_field, at: int) -> list:
    """The series list with, maybe, one odd point inserted and one field replaced."""
    if odd_point is not None:
        points = series[at % len(series)]["points"]
        points.insert(at % (len(points) + 1), odd_point)
    if odd_field is not None:
        series[-at % len(series)][odd_field[0]] = odd_field[1]
    return series


numeric_series = st.builds(
    spoil, st.lists(clean_series, min_size=1, max_size=4), st.none() | odd_point, st.none() | odd_field, st.integers(0, 50)
)


def parse_outcome(payload: object):
    try:
        batch = parse_batch(payload, LIMITS)
    except BatchRejected as rejected:
        return "rejected", rejected.status, rejected.problems
    return "accepted", batch.keys, batch.units, [a.tolist() for a in batch.arrays()]


@given(numeric_series, st.lists(point, max_size=3))
@settings(max_examples=800, deadline=None, database=None)
def test_the_bulk_path_agrees_with_the_per_point_path(series_list, point_list):
    """``numeric_series`` converts the whole series list at once; the per-point path is the
    reference: same points in the same order, or the same problems."""
    payload = {"points": point_list, "series": series_list}
    fast = parse_outcome(payload)
    with patch.object(_Parser, "numeric_series", lambda self, series: False):
        reference = parse_outcome(payload)
    assert fast == reference


@pytest.mark.parametrize("raw", [1e303, -1e303, 10**400, "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_extreme_timestamps_are_rejected_not_crashing(raw):
    """Found by the fuzzing above: these raised OverflowError (a 500) before."""
    for body in ({"points": [{"cluster": "c", "node": "n", "metric": "m", "timestamp": raw, "value": 1.0}]},
                 {"series": [{"cluster": "c", "node": "n", "metric": "m", "points": [[raw, 1.0]]}]}):
        with pytest.raises(BatchRejected):
            parse_batch(body, LIMITS)


@pytest.mark.parametrize("raw", [10**400, -(10**400)])
def test_integers_beyond_the_float_range_are_rejected_as_values(raw):
    with pytest.raises(BatchRejected, match="must be finite"):
        parse_batch({"series": [{"cluster": "c", "node": "n", "metric": "m", "points": [[NOW_NS // NS, raw]]}]}, LIMITS)
