"""One error format for the whole API, and the answers of a database that cannot serve.

    {"error": {"code": "...", "message": "...", "details": [{"field", "reason", "index"?}]}}

A statement cancelled by the web statement timeout, or a database out of reach, answers
503 with ``Retry-After`` (JSON under /api/, plain text elsewhere), from the API's
exception handler, ``handler500`` and ``config.security``'s timeout middleware alike.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import psycopg
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback


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


logger = logging.getLogger(__name__)

# What a 503 asks clients to wait, whichever way the database failed them.
RETRY_AFTER_SECONDS = 5
TIMEOUT_MESSAGE = "The query took too long and was cancelled; narrow the range or retry later."
DATABASE_UNAVAILABLE_MESSAGE = (
    "The database is unavailable ({cause}); the request was not completed. Retry after Retry-After seconds: "
    "re-sent points overwrite stored ones, so a retry never duplicates."
)


def is_statement_timeout(exc: BaseException | None) -> bool:
    """A statement cancelled by statement_timeout (SQLSTATE 57014, query_canceled):
    ``FLEETWATCH_WEB_STATEMENT_TIMEOUT_MS`` fired (``config.security``)."""
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) == "57014" or "statement timeout" in str(exc)


# The database's transient failures, as Django raises them and as psycopg does on the raw
# paths (COPY, detection reads): connection lost or refused, lock timeout, deadlock,
# serialization failure, cancelled statement. Worth a retry; no data error is among them.
DATABASE_TRANSIENT_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


def database_unavailable(exc: BaseException | None) -> bool:
    """The database refused or dropped the connection (Django's or psycopg's own error,
    the latter from the raw COPY path)."""
    return isinstance(exc, DATABASE_TRANSIENT_ERRORS)


def database_unavailable_body(exc: BaseException) -> dict[str, Any]:
    """The answer's body; also drops this process's database connections, because an
    error raised by psycopg directly (the raw COPY and row-level-security paths) does not
    mark Django's connection as failed, and a persistent connection (CONN_MAX_AGE) would
    otherwise answer "the connection is closed" to every later request."""
    logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - already broken; it is gone either way
            conn.connection = None
    return error_body("database_unavailable", DATABASE_UNAVAILABLE_MESSAGE.format(cause=type(exc).__name__))


def unavailable_body(exc: BaseException | None) -> dict[str, Any] | None:
    """The 503 body for what the database did to a request (a statement cancelled by the
    timeout, or the database out of reach); None for any other error."""
    if is_statement_timeout(exc):
        return error_body("statement_timeout", TIMEOUT_MESSAGE)
    if exc is not None and database_unavailable(exc):
        return database_unavailable_body(exc)
    return None


def unavailable_response(request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
    """A 503 outside DRF, with Retry-After: the JSON body under /api/, its message as
    plain text elsewhere."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        response = HttpResponse(body["error"]["message"], status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database that cannot serve answers 503 with Retry-After, wherever it
    failed (a middleware, authentication, the view, metering); anything else is a 500:
    the API's JSON error under /api/, templates/500.html elsewhere. Never a traceback
    (the error is logged)."""
    body = unavailable_body(sys.exc_info()[1])
    if body is not None:
        return unavailable_response(request, body)
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal error; it has been logged."), status=500)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400 (e.g. a Host header not in ALLOWED_HOSTS): JSON under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return defaults.bad_request(request, exception)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApiError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    body = unavailable_body(exc)
    if body is not None:
        set_rollback()
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
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
