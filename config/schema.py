"""OpenAPI pieces shared by every endpoint: the one error format and its responses."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    index = serializers.IntegerField(allow_null=True, required=False)
    field = serializers.CharField()
    reason = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = ErrorDetailSerializer(many=True)


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorSerializer()


_DESCRIPTIONS = {
    400: "Invalid request: details name each field and reason.",
    401: "Missing, invalid or revoked API key.",
    404: "Not found (also for another tenant's objects).",
    413: "Body or batch too large.",
    415: "Content-Type must be application/json.",
    429: "Quota or rate limit exceeded.",
    503: "Storage temporarily unavailable; retry.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorEnvelopeSerializer, description=_DESCRIPTIONS[code]) for code in codes}
