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
    403: "This API key is read-only (the operation changes something).",
    404: "Not found (also for another tenant's objects).",
    409: "The object's state does not allow the change.",
    413: "Body or batch too large.",
    415: "Content-Type must be application/json.",
    429: "Quota or rate limit exceeded (see Retry-After).",
    503: "Storage temporarily unavailable, or a query exceeded the statement timeout; retry (see Retry-After).",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorEnvelopeSerializer, description=_DESCRIPTIONS[code]) for code in codes}


# Answers any authenticated API operation may give, whatever the view: documented in one
# place by a drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS).
COMMON_ERRORS = (401, 429, 503)
MUTATING = ("post", "put", "patch", "delete")  # refused with 403 to a read-only API key (tenants.api.KeyRolePermission)
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}


def document_common_errors(result, generator, request, public):
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in (*COMMON_ERRORS, 403) if method in MUTATING else COMMON_ERRORS:
                responses.setdefault(str(code), {
                    "content": {"application/json": {"schema": envelope}},
                    "description": _DESCRIPTIONS[code],
                })
                if code in (429, 503):
                    responses[str(code)].setdefault("headers", dict(_RETRY_AFTER))
    return result
