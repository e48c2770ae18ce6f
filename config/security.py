"""Web-only protections that Django has no setting for.

- ``ContentSecurityPolicyMiddleware``: a strict Content-Security-Policy on every
  response (Django 5.2 has no built-in CSP). Pages load scripts and styles from our own
  origin only. The API docs page (Swagger UI from the sidecar) is the one exception:
  its one inline init script (our own template, no user data) is allowed by its
  sha256 hash, and Swagger UI sets inline styles, so that page gets
  ``style-src 'unsafe-inline'``.
- ``LoginThrottleBackend``: django-axes' lockout for web logins (settings: ``AXES_*``).
- ``StatementTimeoutMiddleware``: PostgreSQL ``statement_timeout`` for the duration of
  a web request (``FLEETWATCH_WEB_STATEMENT_TIMEOUT_MS``), reset afterwards, so workers,
  beat and management commands are unaffected. A statement cancelled by it answers
  503 with ``Retry-After`` (the API's JSON error format under /api/, text elsewhere).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from config.errors import (
    TIMEOUT_MESSAGE,
    error_body,
    is_statement_timeout,
    unavailable_response,
)

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'{script}; style-src 'self'{style}; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = ("/api/docs/",)
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _inline_script_hashes(content: bytes) -> str:
    hashes = {base64.b64encode(hashlib.sha256(body).digest()).decode() for body in INLINE_SCRIPT.findall(content)}
    return "".join(f" 'sha256-{h}'" for h in sorted(hashes))


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" in response:
            return response
        if request.path in DOCS_PATHS and not response.streaming:
            policy = CSP.format(script=_inline_script_hashes(response.content), style=" 'unsafe-inline'")
        else:
            policy = CSP.format(script="", style="")
        response["Content-Security-Policy"] = policy
        return response


class StatementTimeoutMiddleware:
    """Sets and resets the timeout on the raw connection: two short round trips that are
    infrastructure, not the page's queries (the dashboard's query-count tests do not
    see them)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timeout_ms = settings.FLEETWATCH_WEB_STATEMENT_TIMEOUT_MS
        if not timeout_ms or connection.vendor != "postgresql":
            return self.get_response(request)
        connection.ensure_connection()
        connection.connection.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(timeout_ms)}ms"])
        try:
            return self.get_response(request)
        finally:
            self._reset()

    @staticmethod
    def _reset() -> None:
        raw = connection.connection
        if raw is None or raw.closed:
            return
        try:
            raw.execute("RESET statement_timeout")
        except Exception:  # e.g. an aborted transaction: rolled back or closed at request end
            logger.debug("could not reset statement_timeout", exc_info=True)

    def process_exception(self, request, exception):
        if is_statement_timeout(exception):
            logger.warning("statement timeout on %s %s", request.method, request.path)
            return unavailable_response(request, error_body("statement_timeout", TIMEOUT_MESSAGE))
        return None


class ApiNotFoundMiddleware:
    """An /api/ URL that matches no route (e.g. ``/api/v1/runs/1.5``) answers the API's
    JSON 404, not Django's HTML page: the same body as a missing object."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code == 404 and request.path.startswith("/api/")
                and getattr(request, "resolver_match", None) is None):
            return JsonResponse(error_body("not_found", "Not found."), status=404)
        return response


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for logins made through a web request (the dashboard's
    and the admin's forms). ``authenticate()`` without a request comes from code (a
    shell, the test client's ``login()``), not from a client: there is nothing to throttle,
    and axes would refuse it outright."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
