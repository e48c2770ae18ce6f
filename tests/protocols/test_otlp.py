"""POST /api/v1/otlp/v1/metrics: the OTLP translation, the endpoint, and the real OTel SDK exporter."""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.test import override_settings
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from analytics.ingest import NS
from analytics.models import Series
from analytics.protocols import ProtocolError, otlp, series_name
from tenants.names import NAME_MAX_LENGTH
from tests.conftest import api_client_for
from tests.protocols.conftest import now_ns, point_count, read_series, series_ids, series_of, stored_points

URL = "/api/v1/otlp/v1/metrics"
PROTOBUF = "application/x-protobuf"


# --- building requests -------------------------------------------------------------


def kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value])))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def number_point(value, ts_ns: int, attributes: dict | None = None, flags: int = 0) -> metrics_pb2.NumberDataPoint:
    point = metrics_pb2.NumberDataPoint(time_unix_nano=ts_ns, flags=flags, attributes=[kv(k, v) for k, v in (attributes or {}).items()])
    if isinstance(value, int):
        point.as_int = value
    elif value is not None:
        point.as_double = value
    return point


def gauge(name: str, *points, unit: str = "") -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, unit=unit, gauge=metrics_pb2.Gauge(data_points=list(points)))


def counter(name: str, *points, unit: str = "") -> metrics_pb2.Metric:
    return metrics_pb2.Metric(
        name=name, unit=unit,
        sum=metrics_pb2.Sum(data_points=list(points), is_monotonic=True,
                            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE),
    )


def export_request(resource: dict, *metrics: metrics_pb2.Metric) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(kv(k, v) for k, v in resource.items())
    rm.scope_metrics.add().metrics.extend(metrics)
    return request


RESOURCE = {"fleetwatch.cluster": "prod", "fleetwatch.node": "node-1", "service.name": "api"}


def t0() -> int:
    """A whole second a minute ago, in nanoseconds."""
    return (now_ns() // NS - 60) * NS


def as_dt(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns // 1000 / 1_000_000, UTC)


# --- translation, no database ----------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "cluster", "node"),
    [
        ({"fleetwatch.cluster": "c1", "k8s.cluster.name": "k1", "fleetwatch.node": "n1", "host.name": "h1"}, "c1", "n1"),
        ({"k8s.cluster.name": "k1", "host.name": "h1", "k8s.node.name": "kn", "service.instance.id": "i1"}, "k1", "h1"),
        ({"k8s.node.name": "kn", "service.instance.id": "i1"}, "default", "kn"),
        ({"service.instance.id": "i-1/a b"}, "default", "i-1_a_b"),
        ({"fleetwatch.cluster": "", "fleetwatch.node": "", "host.name": "h1"}, "default", "h1"),
        ({"service.name": "x"}, "default", None),
    ],
)
def test_resource_attributes_pick_cluster_and_node_in_order(resource, cluster, node):
    translation = otlp.translate(export_request(resource, gauge("cpu", number_point(1.5, t0()))))
    assert list(translation.series) == [(cluster, node, "cpu")]
    item = translation.payload()["series"][0]
    assert item.get("cluster") == cluster and item.get("node") == node


def test_gauges_and_sums_become_points_with_unit_and_attribute_suffixes():
    t = t0()
    request = export_request(
        RESOURCE,
        gauge("system.cpu.utilization", number_point(0.25, t, {"cpu": 0, "state": "idle"}),
              number_point(0.5, t, {"state": "user", "cpu": 0}), unit="1"),
        counter("http.requests", number_point(7, t, {"route": "/a/b", "ok": True, "ratio": 0.5, "tags": ["x"]}), unit="{request}"),
        gauge("temp", number_point(21.0, t + NS // 2), unit="Cel"),
    )
    payload = otlp.translate(request).payload()
    assert payload == {"series": [
        {"cluster": "prod", "node": "node-1", "metric": "system.cpu.utilization.cpu:0.state:idle", "unit": "1",
         "points": [[t // NS, 0.25]]},
        {"cluster": "prod", "node": "node-1", "metric": "system.cpu.utilization.cpu:0.state:user", "unit": "1", "points": [[t // NS, 0.5]]},
        # arrays are left out of the name; "/" is not an allowed character
        {"cluster": "prod", "node": "node-1", "metric": "http.requests.ok:true.ratio:0.5.route:_a_b", "unit": "{request}",
         "points": [[t // NS, 7.0]]},
        {"cluster": "prod", "node": "node-1", "metric": "temp", "unit": "Cel", "points": [[t / NS + 0.5, 21.0]]},
    ]}


def test_histograms_summaries_unrecorded_and_non_finite_points_are_skipped_and_counted():
    t = t0()
    histogram = metrics_pb2.Metric(name="latency", histogram=metrics_pb2.Histogram(
        data_points=[metrics_pb2.HistogramDataPoint(time_unix_nano=t, count=2, sum=3.0, bucket_counts=[1, 1], explicit_bounds=[1.0])] * 2))
    summary = metrics_pb2.Metric(name="q", summary=metrics_pb2.Summary(data_points=[metrics_pb2.SummaryDataPoint(time_unix_nano=t)]))
    request = export_request(
        RESOURCE, histogram, summary,
        gauge("g", number_point(1.0, t), number_point(2.0, t + NS, flags=1), number_point(math.nan, t + 2 * NS),
              number_point(math.inf, t + 3 * NS), number_point(None, t + 4 * NS)),
    )
    translation = otlp.translate(request)
    assert translation.skipped == 2 + 1 + 4
    assert translation.payload()["series"] == [{"cluster": "prod", "node": "node-1", "metric": "g", "points": [[t // NS, 1.0]]}]


def test_same_series_and_timestamp_twice_in_one_request_last_value_wins():
    t = t0()
    request = export_request(RESOURCE, gauge("g", number_point(1.0, t), number_point(2.0, t + NS), number_point(3.0, t)))
    assert otlp.translate(request).payload()["series"][0]["points"] == [[t // NS + 1, 2.0], [t // NS, 3.0]]


def test_long_names_are_bounded_by_a_stable_hash_and_distinct():
    a = series_name("m", [("k", "a" * 200)])
    b = series_name("m", [("k", "a" * 199 + "b")])
    assert len(a) == len(b) == NAME_MAX_LENGTH and a != b
    assert a == series_name("m", [("k", "a" * 200)])
    assert series_name("x" * 200, [("k", "v")]) == "x" * 200  # too long on its own: the parser says so


def test_json_encoding_is_decoded_like_protobuf():
    t = t0()
    body = json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "fleetwatch.cluster", "value": {"stringValue": "prod"}},
                                    {"key": "host.name", "value": {"stringValue": "node-1"}}]},
        "scopeMetrics": [{"metrics": [
            {"name": "mem", "unit": "By", "gauge": {"dataPoints": [{"timeUnixNano": str(t), "asInt": "1024"}]}},
            {"name": "reqs", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                     "dataPoints": [{"timeUnixNano": t, "asDouble": 3.5,
                                                     "attributes": [{"key": "code", "value": {"intValue": "200"}}]}]}},
        ]}],
    }], "someFutureField": 1}).encode()
    decoded = otlp.decode(body, otlp.JSON)
    assert decoded == export_request(
        {"fleetwatch.cluster": "prod", "host.name": "node-1"},
        gauge("mem", number_point(1024, t), unit="By"),
        counter("reqs", number_point(3.5, t, {"code": 200})),
    )
    assert [s["metric"] for s in otlp.translate(decoded).payload()["series"]] == ["mem", "reqs.code:200"]


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "field", "status"),
    [
        (b"\xff\xff\xff", PROTOBUF, "", "body", 400),
        (b"\x0a\x05abc", PROTOBUF, "", "body", 400),
        (b"{not json", otlp.JSON, "", "body", 400),
        (b'{"resourceMetrics": 3}', otlp.JSON, "", "body", 400),
        (b"not gzip", PROTOBUF, "gzip", "body", 400),
        (gzip.compress(b"\0" * 5000), PROTOBUF, "gzip", "body", 413),
        (b"", PROTOBUF, "br", "Content-Encoding", 400),
    ],
)
def test_undecodable_bodies_raise_protocol_errors(body, content_type, encoding, field, status):
    with pytest.raises(ProtocolError) as error:
        otlp.decode(body, content_type, encoding, limit=4096)
    assert error.value.rejected.status == status
    assert error.value.rejected.problems[0].field == field


# --- the endpoint, through the test client ---------------------------------------


def post(client, body: bytes, content_type: str = PROTOBUF, **headers):
    return client.generic("POST", URL, body, content_type=content_type, **headers)


def sdk_request_body(resource: dict, record) -> bytes:
    """What the SDK's OTLP exporter would send: InMemoryMetricReader + its encoder."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create(resource), metric_readers=[reader])
    record(provider.get_meter("fleetwatch.tests"))
    data = reader.get_metrics_data()
    provider.shutdown()
    return encode_metrics(data).SerializeToString()


@pytest.mark.django_db
def test_protobuf_export_is_stored_and_answered_with_an_empty_response(api_a, tenant_a):
    def record(meter):
        meter.create_gauge("node.cpu", unit="%").set(41.5)
        meter.create_counter("net.bytes", unit="By").add(1200, {"direction": "rx"})

    response = post(api_a, sdk_request_body({"fleetwatch.cluster": "prod", "host.name": "node-1"}, record))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PROTOBUF
    assert ExportMetricsServiceResponse.FromString(response.content) == ExportMetricsServiceResponse()
    assert series_of(tenant_a) == {("prod", "node-1", "node.cpu"): "%", ("prod", "node-1", "net.bytes.direction:rx"): "By"}
    assert {(m, v) for _, _, m, _, v in stored_points(tenant_a)} == {("node.cpu", 41.5), ("net.bytes.direction:rx", 1200.0)}


@pytest.mark.django_db
def test_json_export_is_stored_and_answered_with_empty_json(api_a, tenant_a):
    t = t0()
    body = json_format.MessageToJson(export_request(RESOURCE, gauge("load1", number_point(0.75, t)))).encode()
    response = post(api_a, body, otlp.JSON)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == otlp.JSON and response.json() == {}
    assert stored_points(tenant_a) == {("prod", "node-1", "load1", as_dt(t), 0.75)}


@pytest.mark.django_db
def test_gzip_body_is_accepted(api_a, tenant_a):
    body = gzip.compress(export_request(RESOURCE, gauge("g", number_point(1.0, t0()))).SerializeToString())
    assert post(api_a, body, HTTP_CONTENT_ENCODING="gzip").status_code == 200
    assert point_count(tenant_a) == 1


@pytest.mark.django_db
def test_resending_the_same_request_stores_no_duplicates(api_a, tenant_a):
    t = t0()
    body = export_request(RESOURCE, gauge("g", number_point(1.0, t), number_point(2.0, t + NS))).SerializeToString()
    for _ in range(3):
        assert post(api_a, body).status_code == 200
    assert point_count(tenant_a) == 2
    changed = export_request(RESOURCE, gauge("g", number_point(5.0, t))).SerializeToString()
    assert post(api_a, changed).status_code == 200
    assert stored_points(tenant_a) == {("prod", "node-1", "g", as_dt(t), 5.0), ("prod", "node-1", "g", as_dt(t + NS), 2.0)}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad_metric", "field", "reason"),
    [
        (gauge("_private", number_point(1.0, 0)), "resourceMetrics[0].scopeMetrics[0].metrics[1].metric",
         "starting with a letter or digit"),
        (gauge("x" * 129, number_point(1.0, 0)), "resourceMetrics[0].scopeMetrics[0].metrics[1].metric", "longer than 128"),
        (gauge("old", number_point(1.0, 10**18)), "resourceMetrics[0].scopeMetrics[0].metrics[1].gauge.dataPoints[0].timestamp",
         "older than the hot retention"),
        (gauge("future", number_point(1.0, now_ns() + 3600 * NS)),
         "resourceMetrics[0].scopeMetrics[0].metrics[1].gauge.dataPoints[0].timestamp", "too far in the future"),
        (gauge("unit", number_point(1.0, 0), unit="u" * 40), "resourceMetrics[0].scopeMetrics[0].metrics[1].unit", "printable string"),
    ],
)
def test_an_invalid_point_rejects_the_whole_request_naming_the_field(api_a, tenant_a, bad_metric, field, reason):
    if bad_metric.gauge.data_points[0].time_unix_nano == 0:
        bad_metric.gauge.data_points[0].time_unix_nano = t0()
    body = export_request(RESOURCE, gauge("fine", number_point(1.0, t0())), bad_metric).SerializeToString()
    response = post(api_a, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_batch"
    assert any(d["field"] == field and reason in d["reason"] for d in error["details"]), error
    assert field in error["message"]
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
def test_missing_node_attributes_is_a_400_naming_node(api_a, tenant_a):
    body = export_request({"service.name": "x"}, gauge("g", number_point(1.0, t0()))).SerializeToString()
    response = post(api_a, body)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "resourceMetrics[0].scopeMetrics[0].metrics[0].node"


@pytest.mark.django_db
def test_malformed_protobuf_is_a_400_in_our_error_format(api_a, tenant_a):
    response = post(api_a, b"\xff\xff\xff\xff")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_batch" and error["details"][0]["field"] == "body"
    assert "protobuf" in error["message"]
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
def test_only_histograms_is_ok_and_stores_nothing(api_a, tenant_a):
    histogram = metrics_pb2.Metric(name="latency", histogram=metrics_pb2.Histogram(
        data_points=[metrics_pb2.HistogramDataPoint(time_unix_nano=t0(), count=1)]))
    assert post(api_a, export_request(RESOURCE, histogram).SerializeToString()).status_code == 200
    assert post(api_a, b"").status_code == 200  # an empty ExportMetricsServiceRequest
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Bearer fw_nosuchkey", "Basic dXNlcjpwdw=="])
def test_missing_or_wrong_key_is_a_401(tenant_a, key_a, authorization):
    from rest_framework.test import APIClient

    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = post(client, export_request(RESOURCE, gauge("g", number_point(1.0, t0()))).SerializeToString(), **headers)
    assert response.status_code == 401
    assert "error" in response.json()
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
def test_other_content_types_are_a_415(api_a):
    response = post(api_a, b"x", "text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.django_db
def test_accept_protobuf_still_gets_a_json_error(api_a):
    response = post(api_a, b"\xff", HTTP_ACCEPT=PROTOBUF)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "body"


@pytest.mark.django_db
def test_body_over_the_limit_is_a_413(api_a, tenant_a):
    body = export_request(RESOURCE, *[gauge(f"g{i}", number_point(1.0, t0())) for i in range(50)]).SerializeToString()
    with override_settings(FLEETWATCH_MAX_BODY_BYTES=len(body) - 1):
        response = post(api_a, body)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
        assert post(api_a, gzip.compress(body), HTTP_CONTENT_ENCODING="gzip").status_code == 413  # inflated size counts
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
def test_too_many_points_is_a_413(api_a, tenant_a):
    t = t0()
    body = export_request(RESOURCE, gauge("g", *[number_point(1.0, t + i * NS) for i in range(11)])).SerializeToString()
    with override_settings(FLEETWATCH_MAX_BATCH_POINTS=10):
        response = post(api_a, body)
    assert response.status_code == 413
    assert point_count(tenant_a) == 0


@pytest.mark.django_db
def test_tenants_are_isolated(api_a, api_b, tenant_a, tenant_b):
    t = t0()
    assert post(api_a, export_request(RESOURCE, gauge("g", number_point(1.0, t))).SerializeToString()).status_code == 200
    assert post(api_b, export_request(RESOURCE, gauge("g", number_point(9.0, t))).SerializeToString()).status_code == 200
    assert stored_points(tenant_a) == {("prod", "node-1", "g", as_dt(t), 1.0)}
    assert stored_points(tenant_b) == {("prod", "node-1", "g", as_dt(t), 9.0)}


# --- the real OpenTelemetry SDK exporter over HTTP ----------------------------------


def sdk_provider(live_server, key: str, resource: dict, statuses: list[int]) -> MeterProvider:
    """A MeterProvider exporting with the real OTLP/HTTP exporter; ``statuses`` collects the answers."""
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: statuses.append(response.status_code))
    exporter = OTLPMetricExporter(
        endpoint=f"{live_server.url}{URL}", headers={"Authorization": f"Bearer {key}"}, timeout=10, session=session
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)  # only exports when told
    return MeterProvider(resource=Resource.create(resource), metric_readers=[reader])


@pytest.mark.django_db(transaction=True)
def test_the_sdk_exporter_delivers_gauges_and_counters_to_the_callers_tenant(live_server, tenant_a, tenant_b, key_a, key_b):
    resource = {"fleetwatch.cluster": "edge", "fleetwatch.node": "edge-7", "service.name": "agent"}
    statuses: list[int] = []
    provider = sdk_provider(live_server, key_a, resource, statuses)
    meter = provider.get_meter("fleetwatch.tests")
    meter.create_gauge("node.memory.used", unit="By").set(8.5e9)
    requests_total = meter.create_counter("agent.requests", unit="{request}")
    requests_total.add(3, {"route": "/health"})
    requests_total.add(2, {"route": "/health"})
    try:
        assert provider.force_flush(timeout_millis=10_000)
        assert statuses == [200]
        first = stored_points(tenant_a)
        assert {(c, n, m, v) for c, n, m, _, v in first} == {
            ("edge", "edge-7", "node.memory.used", 8.5e9),
            ("edge", "edge-7", "agent.requests.route:_health", 5.0),  # cumulative sum
        }
        assert series_of(tenant_a)[("edge", "edge-7", "node.memory.used")] == "By"
    finally:
        provider.shutdown()  # exports once more: the same values at a new collection time
    assert statuses == [200, 200]
    # The second export carries the same values with a new collection timestamp: two
    # points per series, nothing duplicated or changed (re-sending one body is covered below).
    after = stored_points(tenant_a)
    assert first <= after and len(after) == 2 * len(first) == 4
    assert {(c, n, m, v) for c, n, m, _, v in after} == {(c, n, m, v) for c, n, m, _, v in first}
    assert point_count(tenant_b) == 0
    ids = series_ids(tenant_a, "edge", "edge-7", "node.memory.used")
    window = (datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=1))
    assert [v for _, v in read_series(tenant_a, ids, "node.memory.used", *window)] == [8.5e9, 8.5e9]
    with pytest.raises(Series.DoesNotExist):  # tenant B cannot read it, even knowing the ids
        read_series(tenant_b, ids, "node.memory.used", *window)

    # Another tenant's key: its own data, and none of it lands in (or touches) tenant A.
    other_statuses: list[int] = []
    other = sdk_provider(live_server, key_b, resource, other_statuses)
    other.get_meter("x").create_gauge("node.memory.used", unit="By").set(1.0)
    other.force_flush(timeout_millis=10_000)
    other.shutdown()
    assert other_statuses == [200, 200]
    assert stored_points(tenant_a) == after
    assert {(m, v) for _, _, m, _, v in stored_points(tenant_b)} == {("node.memory.used", 1.0)}


@pytest.mark.django_db(transaction=True)
def test_the_sdk_exporter_resending_a_body_is_idempotent_and_a_wrong_key_stores_nothing(live_server, tenant_a, key_a):
    def record(meter):
        meter.create_gauge("g", unit="1").set(0.5)

    body = sdk_request_body({"fleetwatch.cluster": "c", "host.name": "h"}, record)
    client = api_client_for(key_a)
    for _ in range(2):
        assert post(client, body).status_code == 200
    assert point_count(tenant_a) == 1

    statuses: list[int] = []
    wrong = sdk_provider(live_server, "fw_wrongkey.nothing", {"host.name": "h"}, statuses)
    wrong.get_meter("x").create_gauge("g").set(1.0)
    wrong.force_flush(timeout_millis=10_000)
    wrong.shutdown()
    assert statuses == [401, 401]  # not retried: one request per export
    assert point_count(tenant_a) == 1


def test_openapi_schema_documents_both_endpoints():
    from django.urls import path
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    from analytics.protocols.views import OtlpMetricsView, PrometheusWriteView

    generator = SchemaGenerator(patterns=[
        path("api/v1/otlp/v1/metrics", OtlpMetricsView.as_view()),
        path("api/v1/prometheus/write", PrometheusWriteView.as_view()),
    ])
    schema = generator.get_schema(request=None, public=True)
    validate_schema(schema)
    otlp_op = schema["paths"]["/api/v1/otlp/v1/metrics"]["post"]
    assert set(otlp_op["requestBody"]["content"]) == {PROTOBUF, otlp.JSON}
    assert otlp_op["requestBody"]["content"][PROTOBUF]["schema"] == {"type": "string", "format": "binary"}
    assert {"200", "400", "401", "413", "415", "429"} <= set(otlp_op["responses"])
    prom_op = schema["paths"]["/api/v1/prometheus/write"]["post"]
    assert set(prom_op["requestBody"]["content"]) == {PROTOBUF}
    assert {"200", "400", "401", "413", "415", "429"} <= set(prom_op["responses"])
    assert prom_op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")
