"""Per-tenant API rate limits.

A fixed-window counter per (scope, tenant, window) in Django's cache: Redis when it is
configured (so every web process and machine counts together; ``cache.incr`` is
atomic there), local memory otherwise. Two scopes: ``ingest`` (the ingestion
endpoints, whose base view sets ``throttle_scope``) and ``api`` (everything else:
reads, detection requests). Over the limit:
429 in the API's JSON error format with ``Retry-After`` (seconds to the next window).

If the cache is unreachable the request is let through and a warning logged: losing
rate limiting for a while is better than losing the API.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from config.env import parse_rate

logger = logging.getLogger(__name__)

def throttle_key(scope: str, tenant_id: int, window: int) -> str:
    return f"throttle:{scope}:{tenant_id}:{window}"


def view_scope(view) -> str:
    """``ingest`` for the ingestion endpoints (their base view says so), ``api`` for the rest."""
    return getattr(view, "throttle_scope", None) or "api"


class TenantRateThrottle(BaseThrottle):
    """Counts requests per tenant (from the API key), whichever key or process serves them."""

    wait_seconds = 1

    def allow_request(self, request, view) -> bool:
        tenant = getattr(request.user, "tenant", None)
        if tenant is None:
            return True
        scope = view_scope(view)
        limit, period = parse_rate(settings.FLEETWATCH_API_RATES[scope])
        now = time.time()
        window = int(now // period)
        self.wait_seconds = max(1, math.ceil((window + 1) * period - now))
        key = throttle_key(scope, tenant.pk, window)
        cache = caches["default"]
        try:
            cache.add(key, 0, timeout=period + 1)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 0, timeout=period + 1)
                count = cache.incr(key)
        except Exception:
            logger.warning("rate limit not enforced: cache unavailable", exc_info=True)
            return True
        if count > limit:
            logger.info("rate limited: tenant %s scope %s (%d/%s)", tenant.pk, scope, limit, period)
            return False
        return True

    def wait(self) -> float:
        return self.wait_seconds
