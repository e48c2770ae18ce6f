"""Prometheus remote write 1.0: decode a snappy-compressed WriteRequest and map it to a batch payload.

The body is a protobuf ``prometheus.WriteRequest`` compressed with snappy's *block*
format (not the framed/stream format), sent with ``Content-Encoding: snappy`` and
``Content-Type: application/x-protobuf``.

Mapping
    cluster  label ``fleetwatch_cluster``, else ``cluster``, else "default"
             (tip: set it once as an ``external_labels`` entry in prometheus.yml)
    node     label ``fleetwatch_node``, else ``instance``, else ``job`` (none: 400)
    metric   ``__name__``, plus every other label as ``.label:value`` sorted by label
             name, e.g. ``node_cpu_seconds_total.cpu:0.mode:idle``; left out of the name:
             ``__name__``, the cluster and node labels above, ``job`` and ``instance``
             (identity of the target, always present), and labels starting with ``__``
    time     the sample's timestamp, milliseconds since the epoch
    unit     none (remote write 1.0 samples carry no unit)

Staleness markers (the special NaN Prometheus writes when a series disappears), other
NaNs and infinities are skipped and counted, never a reason to reject the request. A
request with metadata only (no series) or whose samples are all skipped stores nothing
and succeeds. Native histograms and exemplars are not decoded.
"""

from __future__ import annotations

import struct

import cramjam
from google.protobuf.message import DecodeError

from analytics.ingest import BODY_TOO_LARGE
from analytics.protocols import ProtocolError, Translation, sanitise, series_name
from analytics.protocols.proto.remote_write_pb2 import WriteRequest

CONTENT_TYPE = "application/x-protobuf"
CLUSTER_LABELS = ("fleetwatch_cluster", "cluster")
NODE_LABELS = ("fleetwatch_node", "instance", "job")
IDENTITY_LABELS = frozenset({"__name__", *CLUSTER_LABELS, *NODE_LABELS})
DEFAULT_CLUSTER = "default"
STALE_NAN_BITS = 0x7FF0000000000002  # prometheus/model/value.StaleNaN
MS = 1_000_000  # nanoseconds per millisecond


def is_stale_marker(value: float) -> bool:
    return struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


def decompress(body: bytes, limit: int) -> bytes:
    """Snappy block decompression, refusing (413) a body that expands beyond ``limit``."""
    try:
        size = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError:
        raise ProtocolError("body", "malformed snappy (block format expected)", counted_as="malformed snappy") from None
    if size > limit:
        raise ProtocolError("body", f"decompresses to {size} bytes, beyond the limit of {limit}", counted_as=BODY_TOO_LARGE,
                            status=413, code="body_too_large")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError:
        raise ProtocolError("body", "malformed snappy (block format expected)", counted_as="malformed snappy") from None


def decode(body: bytes, content_encoding: str, limit: int) -> WriteRequest:
    if content_encoding.strip().lower() != "snappy":
        raise ProtocolError("Content-Encoding", f"expected 'snappy', got {content_encoding or 'none'!r}", counted_as="unsupported")
    message = WriteRequest()
    try:
        message.ParseFromString(decompress(body, limit))
    except DecodeError as exc:
        raise ProtocolError("body", f"malformed protobuf WriteRequest: {exc}", counted_as="malformed protobuf") from None
    return message


def _first(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if labels.get(name):
            return sanitise(labels[name])
    return None


def translate(request: WriteRequest) -> Translation:
    out = Translation()
    for i, series in enumerate(request.timeseries):
        labels = {label.name: label.value for label in series.labels}
        origin = f"timeseries[{i}]"
        cluster = _first(labels, CLUSTER_LABELS) or DEFAULT_CLUSTER
        node = _first(labels, NODE_LABELS)
        extra = [(k, v) for k, v in labels.items() if k not in IDENTITY_LABELS and not k.startswith("__")]
        metric = series_name(labels.get("__name__", ""), extra)
        for j, sample in enumerate(series.samples):
            # NaN (staleness markers included) and infinities are skipped by Translation.add
            out.add(cluster, node, metric, "", sample.timestamp * MS, sample.value, origin, f"{origin}.samples[{j}]")
    return out
