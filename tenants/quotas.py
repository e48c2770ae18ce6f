"""Quota enforcement at ingestion: the plan's ``hard_limit_points_per_month`` and
``hard_limit_series``.

The ingestion service (``analytics.ingestion.store_batch``) checks a batch twice:

1. before its transaction, ``precheck``: a cheap unlocked read (one query: the month's
   points and the plan's limit, read fresh on every batch, so a plan changed in the
   admin applies to the next batch): a batch that cannot fit is refused before anything
   is written. Skipped when the plan loaded with the request (the API key's tenant, read
   fresh per request) has no hard limit;
2. the authoritative check is ``tenants.billing.meter_points`` at the end of the
   transaction: one conditional upsert of the month row that adds the batch only if the
   total stays within the limit. Concurrent batches serialise on that row and each
   re-checks against the committed total, so two batches can never both slip past the
   limit; the loser's transaction rolls back whole.

Either refusal raises ``QuotaExceeded``; the service counts it (rejected counters,
reason ``quota``, outside the rolled-back transaction) and answers 429 with a message
naming the limit.

The boundary is exact: with limit L and L-1 used, a 1-point batch is accepted and a
2-point batch is refused whole.

The series limit is checked where series are created (``analytics.store.write.resolve_series``),
inside the batch's transaction and only for a batch that names series the tenant does not
have yet: it locks the tenant's row, so such batches of one tenant take turns, counts the
tenant's series and raises ``SeriesLimitExceeded`` if the new ones would not fit; the
transaction rolls back whole. Batches that only name existing series never lock.
"""

from __future__ import annotations

from tenants.billing import QuotaExceeded, month_points_and_limit
from tenants.models import Tenant

QUOTA_REASON = "quota"  # the rejected-points counters' reason for a refused batch
SERIES_LIMIT_REASON = "series limit"  # ... and for one refused by hard_limit_series


class SeriesLimitExceeded(Exception):
    """A batch would create series beyond the plan's ``hard_limit_series``."""

    def __init__(self, new: int, existing: int, limit: int) -> None:
        self.new, self.existing, self.limit = new, existing, limit
        self.points = 0  # the refused batch's points, set by the ingestion service
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        return (
            f"the plan's hard_limit_series is {self.limit}; the tenant has {self.existing} series, "
            f"and this batch would create {self.new} more"
        )


def check_series(new: int, existing: int, limit: int | None) -> None:
    """Raise ``SeriesLimitExceeded`` if ``new`` series beside ``existing`` ones pass ``limit``."""
    if limit is not None and existing + new > limit:
        raise SeriesLimitExceeded(new, existing, limit)


def check_points(tenant_id: int, points: int) -> None:
    """Raise ``QuotaExceeded`` if ``points`` more do not fit in the month."""
    used, limit = month_points_and_limit(tenant_id)
    if limit is not None and used + points > limit:
        raise QuotaExceeded(points, used, limit)


def precheck(tenant: Tenant, points: int) -> None:
    """``check_points``, unless the tenant's plan (as loaded with the request) has no limit."""
    if tenant.plan.hard_limit_points_per_month is not None:
        check_points(tenant.pk, points)
