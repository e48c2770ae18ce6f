"""The ingestion endpoint: one batch, validated whole, stored in one transaction."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from analytics.ingest import NS, BatchRejected, Limits, ParsedBatch, Problem, decode_json, parse_batch
from analytics.store.write import UnknownSeries, record_rejection, resolve_series, write_points
from config.errors import ApiError
from config.schema import error_responses
from tenants import billing, quotas
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


def ingestion_limits(tenant, now) -> Limits:
    now_ns = int(now.timestamp()) * NS
    return Limits(
        max_points=settings.FLEETWATCH_MAX_BATCH_POINTS,
        min_ts_ns=now_ns - tenant.plan.hot_retention_days * 86_400 * NS,
        max_ts_ns=now_ns + settings.FLEETWATCH_MAX_FUTURE_SECONDS * NS,
    )


def read_body(request) -> bytes:
    """The raw body, refusing oversized ones before reading them."""
    limit = settings.FLEETWATCH_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise BatchRejected([Problem(None, "body", f"{length} bytes exceed the limit of {limit}")], status=413, code="body_too_large")
    body = request.body
    if len(body) > limit:
        raise BatchRejected([Problem(None, "body", f"larger than the limit of {limit} bytes")], status=413, code="body_too_large")
    return body


def store_batch(tenant, payload: object) -> dict[str, int]:
    """Validate and store a decoded batch for ``tenant``; all or nothing."""
    batch = parse_batch(payload, ingestion_limits(tenant, timezone.now()))
    try:
        return _store(tenant, batch)
    except UnknownSeries:  # an id this process remembered went stale (its series was deleted): resolve afresh
        return _store(tenant, batch)


def _store(tenant, batch: ParsedBatch) -> dict[str, int]:
    key_index, ts_ns, values = batch.arrays()
    with quotas.points_quota(tenant, len(batch)), transaction.atomic():  # over the hard limit: 429, counted
        resolved, new_series = resolve_series(tenant.pk, batch.keys, batch.units)
        series_ids = resolved[key_index]
        accepted = write_points(tenant.pk, series_ids, ts_ns, values)
        billing.meter_points(tenant.pk, len(batch), series_ids)  # usage; the exact quota check
    return {"accepted": accepted, "new_series": new_series}


class MetricsIngestView(TenantAPIView):
    parser_classes: list = []  # the body is read raw, so its size is checked first

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
        try:
            result = store_batch(self.tenant, decode_json(read_body(request)))
        except BatchRejected as rejected:
            record_rejection(self.tenant.pk, rejected.reason_counts())
            raise ApiError(rejected.status, rejected.code, str(rejected), [p.as_dict() for p in rejected.problems]) from None
        return Response(result)
