"""The ingestion service: one batch of points for one tenant, stored all or nothing.

Every way in goes through here: ``POST /api/v1/metrics`` (``analytics.views``), the
OTLP and Prometheus remote-write endpoints (``analytics.protocols.views``) and the demo
command.

- ``read_body(request)``: the raw body, refusing an oversized one before reading it;
- ``store_batch(tenant, payload)``: validates the decoded batch whole against the
  tenant's limits (``analytics.ingest``), checks the plan's quota
  (``tenants.quotas``), then in one transaction resolves series names to ids, writes
  the points and meters them (``analytics.store.write``, ``tenants.billing``). The
  tenant id is resolved once for the batch;
- ``rejection(tenant_id, refused)``: the one place a refused batch becomes an answer:
  its points are counted by reason (the ingestion-health counters) and the 4xx built.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from analytics.ingest import (
    BODY_TOO_LARGE,
    NS,
    BatchRejected,
    Limits,
    ParsedBatch,
    Problem,
    parse_batch,
)
from analytics.store import counters
from analytics.store.write import UnknownSeries, resolve_series, write_points
from config.errors import ApiError
from tenants import billing, quotas
from tenants.billing import QuotaExceeded
from tenants.models import Tenant
from tenants.quotas import SeriesLimitExceeded

Refusal = BatchRejected | QuotaExceeded | SeriesLimitExceeded


def limits(tenant: Tenant, now: datetime) -> Limits:
    """The batch size and the timestamps the tenant may send now (hot retention, clock skew)."""
    now_ns = int(now.timestamp()) * NS
    return Limits(
        max_points=settings.FLEETWATCH_MAX_BATCH_POINTS,
        min_ts_ns=now_ns - tenant.plan.hot_retention_days * 86_400 * NS,
        max_ts_ns=now_ns + settings.FLEETWATCH_MAX_FUTURE_SECONDS * NS,
    )


def read_body(request: HttpRequest) -> bytes:
    """The raw body, refusing oversized ones (413) before reading them."""
    limit = settings.FLEETWATCH_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        too_large = Problem(None, "body", f"{length} bytes exceed the limit of {limit}", BODY_TOO_LARGE)
        raise BatchRejected([too_large], status=413, code="body_too_large")
    body = request.body
    if len(body) > limit:
        too_large = Problem(None, "body", f"larger than the limit of {limit} bytes", BODY_TOO_LARGE)
        raise BatchRejected([too_large], status=413, code="body_too_large")
    return body


def store_batch(tenant: Tenant, payload: object) -> dict[str, int]:
    """Validate and store a decoded batch for ``tenant``, all or nothing; returns
    ``{"accepted", "new_series"}``. Raises ``BatchRejected`` (invalid) or
    ``QuotaExceeded`` (over the plan's hard limit) with nothing stored; ``rejection``
    counts and answers either."""
    batch = parse_batch(payload, limits(tenant, timezone.now()))
    quotas.precheck(tenant, len(batch))
    max_series = tenant.plan.hard_limit_series
    try:
        try:
            return _store(tenant.pk, batch, max_series)
        except UnknownSeries:  # an id this process remembered went stale (its series was deleted): resolve afresh
            return _store(tenant.pk, batch, max_series)
    except SeriesLimitExceeded as refused:
        refused.points = len(batch)  # what the rejected counters count
        raise


def _store(tenant_id: int, batch: ParsedBatch, max_series: int | None) -> dict[str, int]:
    key_index, ts_ns, values = batch.arrays()
    with transaction.atomic():
        resolved, new_series = resolve_series(tenant_id, batch.keys, batch.units, max_series)
        series_ids = resolved[key_index]
        accepted = write_points(tenant_id, series_ids, ts_ns, values)
        billing.meter_points(tenant_id, len(batch), series_ids)  # usage, and the exact quota check (rolls back)
    return {"accepted": accepted, "new_series": new_series}


def rejection(tenant_id: int, refused: Refusal) -> ApiError:
    """Count a refused batch's points by reason for today and build its answer (400, 413
    or 429, in the API's error format)."""
    if isinstance(refused, QuotaExceeded):
        counters.add_rejected(tenant_id, {quotas.QUOTA_REASON: refused.points})
        return ApiError(
            429, "quota_exceeded", f"Monthly point quota exceeded: {refused.reason}. Nothing of the batch was stored.",
            details=[{"field": "points", "reason": refused.reason}],
        )
    if isinstance(refused, SeriesLimitExceeded):
        counters.add_rejected(tenant_id, {quotas.SERIES_LIMIT_REASON: refused.points})
        return ApiError(
            429, "series_limit_exceeded", f"Series limit reached: {refused.reason}. Nothing of the batch was stored.",
            details=[{"field": "series", "reason": refused.reason}],
        )
    counters.add_rejected(tenant_id, refused.reason_counts())
    return ApiError(refused.status, refused.code, str(refused), [p.as_dict() for p in refused.problems])
