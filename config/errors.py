"""One error format for the whole API:

    {"error": {"code": "...", "message": "...", "details": [{"field", "reason", "index"?}]}}
"""

from __future__ import annotations

import logging
import sys
from typing import Any

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

DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_MESSAGE = (
    "The database is unavailable ({cause}); the request was not completed. Retry after Retry-After seconds: "
    "re-sent points overwrite stored ones, so a retry never duplicates."
)


def database_unavailable(exc: BaseException | None) -> bool:
    """The database refused or dropped the connection (Django's or psycopg's own error,
    the latter from the raw COPY path). Statement timeouts are answered before this."""
    from django.db import InterfaceError, OperationalError

    try:
        import psycopg

        raw: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError)
    except ImportError:  # pragma: no cover - SQLite-only installs
        raw = ()
    return isinstance(exc, (OperationalError, InterfaceError, *raw))


def database_unavailable_body(exc: BaseException) -> dict[str, Any]:
    """The answer's body; also drops this process's database connections, because an
    error raised by psycopg directly (the raw COPY and row-level-security paths) does not
    mark Django's connection as failed, and a persistent connection (CONN_MAX_AGE) would
    otherwise answer "the connection is closed" to every later request."""
    from django.db import connections

    logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - already broken; it is gone either way
            conn.connection = None
    return error_body("database_unavailable", DATABASE_UNAVAILABLE_MESSAGE.format(cause=type(exc).__name__))


def server_error(request):
    """handler500: a database that cannot be reached answers 503 with Retry-After (JSON
    under /api/), wherever it failed (a middleware, authentication, the view, metering);
    anything else is Django's plain 500 page."""
    from django.http import HttpResponse, JsonResponse
    from django.views import defaults

    exc = sys.exc_info()[1]
    if not database_unavailable(exc):
        return defaults.server_error(request)
    body = database_unavailable_body(exc)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        response = HttpResponse(body["error"]["message"], status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApiError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if getattr(exc, "retry_after", None):
            response["Retry-After"] = str(exc.retry_after)
        return response
    from config.security import (
        RETRY_AFTER_SECONDS,
        TIMEOUT_MESSAGE,
        is_statement_timeout,
    )

    if is_statement_timeout(exc):  # FLEETWATCH_WEB_STATEMENT_TIMEOUT_MS fired
        set_rollback()
        return Response(error_body("statement_timeout", TIMEOUT_MESSAGE), status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if database_unavailable(exc):  # PostgreSQL down or restarting
        set_rollback()
        return Response(database_unavailable_body(exc), status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
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
