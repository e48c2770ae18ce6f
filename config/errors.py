"""One error format for the whole API:

    {"error": {"code": "...", "message": "...", "details": [{"field", "reason", "index"?}]}}
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApiError(exceptions.APIException):
    """An error with a code, a message and optional per-field details."""

    def __init__(self, status_code: int, code: str, message: str, details: list[dict[str, Any]] | None = None):
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or []
        super().__init__(message, code)


def _flatten(detail: Any, field: str = "") -> list[dict[str, Any]]:
    if isinstance(detail, dict):
        out: list[dict[str, Any]] = []
        for key, value in detail.items():
            out.extend(_flatten(value, f"{field}.{key}" if field else str(key)))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(_flatten(item, field))
        return out
    return [{"field": field or "non_field_errors", "reason": str(detail)}]


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApiError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if getattr(exc, "retry_after", None):
            response["Retry-After"] = str(exc.retry_after)
        return response
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        details = _flatten(exc.detail)
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        response.data = error_body("invalid", message, details)
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = error_body(str(code), str(exc.detail))
    if response.status_code == status.HTTP_404_NOT_FOUND:
        response.data = error_body("not_found", "Not found.")
    return response
