"""The protocol endpoints: OTLP/HTTP metrics and Prometheus remote write 1.0.

Both decode their message, translate it into the JSON endpoint's batch payload and hand
it to the ingestion service (``analytics.ingestion``): the same API-key auth and tenant
scope, validation, atomicity, idempotency, quotas, body-size limit, rate limit and error
format as ``POST /api/v1/metrics``.
Errors are our JSON error body; OTLP and Prometheus clients only read the status
(both retry 429 and 5xx; Prometheus drops a batch answered with another 4xx).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from analytics import ingestion
from analytics.ingest import BatchRejected
from analytics.protocols import ProtocolError, Translation, otlp, prometheus
from analytics.views import IngestResultSerializer, IngestView
from config.errors import ApiError
from config.schema import ErrorEnvelopeSerializer, error_responses

logger = logging.getLogger(__name__)


def _header(request, name: str) -> str:
    return request.META.get(name, "").split(";")[0].strip().lower()


class ProtocolIngestView(IngestView):
    """Shared flow: read the body (size limit), decode, translate, store."""

    def perform_content_negotiation(self, request, force=False):
        # Protocol clients may send Accept: application/x-protobuf; our (JSON) error
        # bodies are answered regardless, as the status is all these clients read.
        return super().perform_content_negotiation(request, force=True)

    def ingest(self, decode) -> tuple[Translation, dict[str, int]]:
        """``decode(body) -> Translation``; stores it all or nothing. A refused message
        raises what the base view answers (its problems named by protocol field)."""
        try:
            translation = decode(ingestion.read_body(self.request))
        except ProtocolError as error:
            raise error.rejected from None
        if translation.point_count == 0:  # metadata only, or every point skipped
            return translation, {"accepted": 0, "new_series": 0}
        try:
            result = ingestion.store_batch(self.tenant, translation.payload())
        except BatchRejected as rejected:
            raise translation.relabel(rejected) from None
        if translation.skipped:
            logger.debug("%s: skipped %d points (tenant %s)", type(self).__name__, translation.skipped, self.tenant.pk)
        return translation, result


class RemoteWriteResultSerializer(IngestResultSerializer):
    skipped = serializers.IntegerField(help_text="Samples skipped: staleness markers and other NaN/infinite values.")


_BODY_415 = OpenApiResponse(ErrorEnvelopeSerializer, description="Unsupported Content-Type.")


class OtlpMetricsView(ProtocolIngestView):
    @extend_schema(
        operation_id="ingest_otlp_metrics",
        tags=["ingestion protocols"],
        request={otlp.PROTOBUF: OpenApiTypes.BINARY, otlp.JSON: OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter("Content-Encoding", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                             enum=["gzip", "identity"], description="Optional gzip compression of the body."),
        ],
        responses={
            (200, otlp.PROTOBUF): OpenApiResponse(OpenApiTypes.BINARY, description="An empty ExportMetricsServiceResponse."),
            (200, otlp.JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="`{}`: an empty ExportMetricsServiceResponse."),
            **error_responses(400, 401, 413),
            415: _BODY_415,
            **error_responses(429),
        },
        description=(
            "OpenTelemetry OTLP/HTTP metrics export (`ExportMetricsServiceRequest`), as protobuf or the OTLP JSON "
            "encoding, optionally gzip-compressed. Point an OTLP exporter at this URL (it ends in `/v1/metrics`) with "
            "`Authorization: Bearer <api key>`.\n\n"
            "Mapping: cluster = resource attribute `fleetwatch.cluster`, else `k8s.cluster.name`, else `default`; "
            "node = `fleetwatch.node`, else `host.name`, else `k8s.node.name`, else `service.instance.id`; "
            "metric = the OTLP metric name with characters outside `[A-Za-z0-9_.:-]` replaced by `_`, followed by the "
            "data point attributes as `.key:value` sorted by key (names over 128 characters end in a hash); "
            "unit = the metric's unit. Gauges and sums (int and double) are stored, cumulative sums as cumulative "
            "values; histograms, exponential histograms, summaries, points without a recorded value and non-finite "
            "values are skipped. The request is validated whole like `POST /api/v1/metrics`: any invalid point "
            "rejects it (400, nothing stored); re-sent points overwrite."
        ),
    )
    def post(self, request):
        content_type = _header(request, "CONTENT_TYPE")
        if content_type not in otlp.CONTENT_TYPES:
            raise ApiError(415, "unsupported_media_type",
                           f"Content-Type: expected application/x-protobuf or application/json, got {content_type or 'none'!r}")
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "")
        limit = settings.FLEETWATCH_MAX_BODY_BYTES
        self.ingest(lambda body: otlp.translate(otlp.decode(body, content_type, encoding, limit, settings.FLEETWATCH_MAX_JSON_DEPTH)))
        return HttpResponse(otlp.success_body(content_type), content_type=content_type)


class PrometheusWriteView(ProtocolIngestView):
    @extend_schema(
        operation_id="ingest_prometheus_remote_write",
        tags=["ingestion protocols"],
        request={prometheus.CONTENT_TYPE: OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("Content-Encoding", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                             enum=["snappy"], description="Snappy block format."),
            OpenApiParameter("X-Prometheus-Remote-Write-Version", OpenApiTypes.STR, OpenApiParameter.HEADER,
                             required=False, description="`0.1.0` (remote write 1.0)."),
        ],
        responses={
            200: RemoteWriteResultSerializer,
            **error_responses(400, 401, 413),
            415: _BODY_415,
            **error_responses(429),
        },
        description=(
            "Prometheus remote write 1.0: a snappy-compressed (block format) protobuf `WriteRequest`. In "
            "prometheus.yml: `remote_write: [{url: <this URL>, authorization: {credentials: <api key>}}]`.\n\n"
            "Mapping: cluster = label `fleetwatch_cluster`, else `cluster`, else `default`; node = "
            "`fleetwatch_node`, else `instance`, else `job`; metric = `__name__` (characters outside "
            "`[A-Za-z0-9_.:-]` replaced by `_`) followed by the other labels as `.label:value` sorted by label, "
            "leaving out the cluster/node labels, `job`, `instance` and `__*` (e.g. "
            "`node_cpu_seconds_total.cpu:0.mode:idle`; names over 128 characters end in a hash); timestamps are "
            "milliseconds. Staleness markers and other NaN/infinite samples are skipped. Metadata-only requests "
            "store nothing and answer 200. The request is validated whole like `POST /api/v1/metrics`: any "
            "invalid point rejects it (400, which Prometheus does not retry); re-sent points overwrite."
        ),
    )
    def post(self, request):
        content_type = _header(request, "CONTENT_TYPE")
        if content_type != prometheus.CONTENT_TYPE:
            raise ApiError(415, "unsupported_media_type",
                           f"Content-Type: expected application/x-protobuf, got {content_type or 'none'!r}")
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "")
        limit = settings.FLEETWATCH_MAX_BODY_BYTES
        translation, result = self.ingest(lambda body: prometheus.translate(prometheus.decode(body, encoding, limit)))
        return Response({**result, "skipped": translation.skipped})
