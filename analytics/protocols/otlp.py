"""OTLP/HTTP metrics: decode an ExportMetricsServiceRequest and map it to a batch payload.

Encodings: protobuf (``application/x-protobuf``) and the OTLP JSON encoding
(``application/json``), optionally ``Content-Encoding: gzip``.

Mapping
    cluster  resource attribute ``fleetwatch.cluster``, else ``k8s.cluster.name``, else "default"
    node     resource attribute ``fleetwatch.node``, else ``host.name``, else
             ``k8s.node.name``, else ``service.instance.id`` (none of them: 400, node required)
    metric   the OTLP metric name, plus the data point attributes as ``.key:value``
             sorted by key (see ``analytics.protocols``); attribute values that are
             arrays, maps or bytes are left out
    unit     the metric's unit (UCUM, e.g. ``By``, ``s``, ``1``)
    time     the data point's ``time_unix_nano`` (kept to the microsecond)
    value    ``as_double`` or ``as_int``, as stored: a cumulative sum stays cumulative

Gauges and sums (int and double points) are stored. Histograms, exponential histograms
and summaries are skipped, as are points flagged "no recorded value" and non-finite
values; they are counted in ``Translation.skipped``. Other resource attributes and the
instrumentation scope are ignored.
"""

from __future__ import annotations

import zlib

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import DataPointFlags

from analytics.ingest import BODY_TOO_LARGE
from analytics.protocols import ProtocolError, Translation, sanitise, series_name
from config.json_limits import JsonTooDeep, loads_bounded

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)

CLUSTER_ATTRIBUTES = ("fleetwatch.cluster", "k8s.cluster.name")
NODE_ATTRIBUTES = ("fleetwatch.node", "host.name", "k8s.node.name", "service.instance.id")
DEFAULT_CLUSTER = "default"
NO_RECORDED_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
SKIPPED_KINDS = ("histogram", "exponential_histogram", "summary")


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body, refusing (413) one that inflates beyond ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit)
        if inflater.unconsumed_tail:
            raise ProtocolError("body", f"inflates beyond the limit of {limit} bytes", counted_as=BODY_TOO_LARGE,
                                status=413, code="body_too_large")
        data += inflater.flush()
    except zlib.error as exc:
        raise ProtocolError("body", f"malformed gzip: {exc}", counted_as="malformed gzip") from None
    if not inflater.eof:
        raise ProtocolError("body", "malformed gzip: truncated", counted_as="malformed gzip")
    return data


def decode(body: bytes, content_type: str, content_encoding: str = "", limit: int | None = None,
           max_depth: int = 32) -> ExportMetricsServiceRequest:
    """The request message; ProtocolError (400, or 413 for a gzip bomb) if it cannot be read.
    The JSON encoding nests at most ``max_depth`` levels (attribute values can nest without end)."""
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = gunzip(body, limit if limit is not None else 16 * 1024 * 1024)
    elif encoding not in ("", "identity"):
        raise ProtocolError("Content-Encoding", f"unsupported: {content_encoding!r} (gzip or none)", counted_as="unsupported")
    message = ExportMetricsServiceRequest()
    if content_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise ProtocolError("body", f"malformed protobuf ExportMetricsServiceRequest: {exc}", counted_as="malformed protobuf") from None
    else:
        try:
            decoded = loads_bounded(body, max_depth)
            if not isinstance(decoded, dict):
                raise ValueError("an ExportMetricsServiceRequest is a JSON object")
            json_format.ParseDict(decoded, message, ignore_unknown_fields=True)
        except JsonTooDeep as exc:
            raise ProtocolError("body", str(exc), counted_as=str(exc)) from None
        except (json_format.ParseError, ValueError) as exc:
            raise ProtocolError("body", f"malformed OTLP JSON: {exc}", counted_as="malformed OTLP JSON") from None
    return message


def success_body(content_type: str) -> bytes:
    """An empty ExportMetricsServiceResponse in the request's encoding."""
    return ExportMetricsServiceResponse().SerializeToString() if content_type == PROTOBUF else b"{}"


def any_value_str(value: AnyValue) -> str | None:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    return None  # arrays, maps, bytes, empty


def _attributes(attributes: list[KeyValue]) -> dict[str, str]:
    out = {}
    for kv in attributes:
        text = any_value_str(kv.value)
        if text is not None:
            out[kv.key] = text
    return out


def _first(attributes: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if attributes.get(key):
            return sanitise(attributes[key])
    return None


def translate(request: ExportMetricsServiceRequest) -> Translation:
    out = Translation()
    for r, resource_metrics in enumerate(request.resource_metrics):
        resource = _attributes(resource_metrics.resource.attributes)
        cluster = _first(resource, CLUSTER_ATTRIBUTES) or DEFAULT_CLUSTER
        node = _first(resource, NODE_ATTRIBUTES)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            for m, metric in enumerate(scope_metrics.metrics):
                origin = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]"
                kind = metric.WhichOneof("data")
                if kind in SKIPPED_KINDS:
                    out.skipped += len(getattr(metric, kind).data_points)
                    continue
                if kind not in ("gauge", "sum"):
                    continue
                for k, point in enumerate(getattr(metric, kind).data_points):
                    which = point.WhichOneof("value")
                    if point.flags & NO_RECORDED_VALUE or which is None:
                        out.skipped += 1
                        continue
                    value = point.as_double if which == "as_double" else float(point.as_int)
                    name = series_name(metric.name, _attributes(point.attributes).items())
                    out.add(cluster, node, name, metric.unit, point.time_unix_nano, value,
                            origin, f"{origin}.{kind}.dataPoints[{k}]")
    return out
