"""The ingestion endpoint: one batch, validated whole, stored in one transaction (the
work is the ingestion service's, ``analytics.ingestion``; this is the HTTP side)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from analytics import ingestion
from analytics.ingest import decode_json
from config.errors import ApiError
from config.schema import error_responses
from tenants.api import TenantAPIView


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Points stored (re-sent points overwrite).")
    new_series = serializers.IntegerField(help_text="Series seen for the first time.")


class PointSerializer(serializers.Serializer):
    cluster = serializers.CharField(max_length=128)
    node = serializers.CharField(max_length=128)
    metric = serializers.CharField(max_length=128)
    timestamp = serializers.CharField(help_text="RFC 3339 with offset, or epoch seconds (number).")
    value = serializers.FloatField()
    unit = serializers.CharField(required=False, max_length=32)


class SeriesPointsSerializer(serializers.Serializer):
    cluster = serializers.CharField(max_length=128)
    node = serializers.CharField(max_length=128)
    metric = serializers.CharField(max_length=128)
    unit = serializers.CharField(required=False, max_length=32)
    points = serializers.ListField(
        child=serializers.ListField(min_length=2, max_length=2), help_text="[[timestamp, value], ...]"
    )


class IngestBatchSerializer(serializers.Serializer):
    points = PointSerializer(many=True, required=False)
    series = SeriesPointsSerializer(many=True, required=False)


class IngestView(TenantAPIView):
    """Base of the ingestion endpoints: the raw body (its size is checked before it is
    read), the per-tenant ``ingest`` rate limit, and refused batches counted and answered
    by the ingestion service."""

    parser_classes: list = []
    throttle_scope = "ingest"

    def handle_exception(self, exc):
        if isinstance(exc, ingestion.Refusal):  # still inside the tenant's scope: the counters are the tenant's rows
            exc = ingestion.rejection(self.tenant.pk, exc)
        return super().handle_exception(exc)


class MetricsIngestView(IngestView):
    @extend_schema(
        operation_id="ingest_metrics",
        request={"application/json": IngestBatchSerializer},
        responses={200: IngestResultSerializer, **error_responses(400, 401, 413, 415, 429)},
        examples=[
            OpenApiExample(
                "compact",
                value={"series": [{"cluster": "prod", "node": "node-1", "metric": "cpu_usage", "unit": "%",
                                   "points": [[1764237600, 41.5], [1764237660, 42.0]]}]},
                request_only=True,
            )
        ],
        description="Ingest a batch of points. The whole batch is validated first; any invalid point "
        "rejects the batch with a list of {index, field, reason} and nothing is stored.",
    )
    def post(self, request):
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip()
        if content_type != "application/json":
            raise ApiError(415, "unsupported_media_type", f"Content-Type: expected application/json, got {content_type or 'none'!r}")
        return Response(ingestion.store_batch(self.tenant, decode_json(ingestion.read_body(request), settings.FLEETWATCH_MAX_JSON_DEPTH)))
