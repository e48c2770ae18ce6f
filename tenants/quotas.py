"""Quota enforcement at ingestion: the plan's ``hard_limit_points_per_month``.

``store_batch`` wraps its transaction in ``points_quota(tenant_id, n)``:

1. on entry, a cheap unlocked pre-check (one query: the month's points and the plan's
   limit, read fresh on every batch, so a plan changed in the admin applies to the next
   batch): a batch that cannot fit is refused before anything is written. Skipped when
   the plan loaded with the request (the API key's tenant, read fresh per request) has
   no hard limit;
2. the authoritative check is ``tenants.billing.meter_points`` at the end of the
   transaction: one conditional upsert of the month row that adds the batch only if the
   total stays within the limit. Concurrent batches serialise on that row and each
   re-checks against the committed total, so two batches can never both slip past the
   limit; the loser raises ``QuotaExceeded`` and its transaction rolls back whole;
3. on exit, either refusal is counted (rejected counters, reason ``quota``, outside the
   rolled-back transaction) and answered 429 with a message naming the limit.

The boundary is exact: with limit L and L-1 used, a 1-point batch is accepted and a
2-point batch is refused whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from config.errors import ApiError
from tenants.billing import NO_LIMIT, QuotaExceeded, month_points_and_limit
from tenants.scoping import _tenant_id

QUOTA_REASON = "quota"


def quota_error(tenant_id: int, points: int, used: int, limit: int) -> ApiError:
    from analytics.store.write import record_rejection

    record_rejection(tenant_id, {QUOTA_REASON: points})
    room = max(0, limit - used)
    reason = (
        f"the plan's hard_limit_points_per_month is {limit}; {used} points were ingested this month, "
        f"so {room} more fit and this batch of {points} would exceed it"
    )
    error = ApiError(
        429, "quota_exceeded", f"Monthly point quota exceeded: {reason}. Nothing of the batch was stored.",
        details=[{"field": "points", "reason": reason}],
    )
    return error


def check_points(tenant_id: int, points: int) -> None:
    """Raise the 429 ``ApiError`` (counting the rejection) if ``points`` more do not fit."""
    used, limit = month_points_and_limit(tenant_id)
    if limit is not None and used + points > limit:
        raise quota_error(tenant_id, points, used, limit)


@contextmanager
def points_quota(tenant, points: int) -> Iterator[None]:
    """Pre-check on entry; turn a ``QuotaExceeded`` from the metering upsert into the 429."""
    tenant_id = _tenant_id(tenant)
    plan = getattr(tenant, "plan", None)  # as loaded with this request's API key
    if plan is None or plan.hard_limit_points_per_month is not None:  # an unlimited plan has nothing to pre-check
        check_points(tenant_id, points)
    try:
        yield
    except QuotaExceeded as exceeded:
        limit = exceeded.limit if exceeded.limit != NO_LIMIT else 0
        raise quota_error(tenant_id, exceeded.points, exceeded.used, limit) from None
