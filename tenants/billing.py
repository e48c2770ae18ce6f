"""Usage metering and monthly statements.

What is metered, per tenant per UTC day (``UsageDaily``), and how:

- **points ingested**: the points of every accepted batch (re-sent points count: they
  were sent), added by ``meter_points`` inside the batch's transaction, so a rolled-back
  batch counts nothing. Same number as ``TenantDailyCounter.points_accepted``.
- **active series**: distinct series that received points that day (and, in
  ``UsageMonth``, that month). The write path knows the batch's series ids; one upsert on
  ``SeriesActivity`` (a row per series per month, with its first and last day with
  points) returns, for the series whose row it inserted or advanced, their
  ``first_day``: ``== today`` means new this month (and day), otherwise new this day.
  Exact under concurrency (the upsert locks the series' row; a second batch with the
  same series re-checks ``last_day < today`` and counts nothing) and cheap: after a
  series' first batch of the day its upsert finds nothing to do. (Counting from
  ``Series.last_point_at`` at day end was rejected: it holds point time, not arrival
  time, and is overwritten by the next day's points.)
- **series analysed**: series a detection batch analysed (not skipped), metered by the
  batch task after it stored its results.
- **detection runs**: runs that finished successfully, metered once, at the status
  transition in ``results.runs.finish``.
- **API requests**: authenticated API requests (ingestion too), one upsert per request
  from ``tenants.api.TenantAPIView.finalize_response``.

The month's billable numbers: points = the sum of the days' ``points_ingested`` (equal
to ``UsageMonth.points_ingested``, the quota ledger); active series = the month's
distinct series (``UsageMonth.active_series``), not a sum of the days.

Statements use ``Decimal`` throughout; each overage line is rounded to the cent
(ROUND_HALF_UP) and the total is the sum of the rounded lines, so a statement adds up.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db import connection
from django.db.models import Subquery

from config.pg import ArrayParam, server_cursor
from tenants.models import Plan, Tenant, UsageDaily, UsageMonth

CENT = Decimal("0.01")
MILLION = Decimal(1_000_000)
NO_LIMIT = 2**63 - 1
DAILY_COLUMNS = ("points_ingested", "active_series", "series_analysed", "detection_runs", "api_requests")


class QuotaExceeded(Exception):
    """A batch would take the month's points past the plan's hard limit: refused by the
    pre-check (``tenants.quotas``) or inside the batch's transaction, which then rolls
    back. The ingestion service counts it and answers 429 (``analytics.ingestion``)."""

    def __init__(self, points: int, used: int, limit: int) -> None:
        self.points, self.used, self.limit = points, used, limit
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        room = max(0, self.limit - self.used)
        return (
            f"the plan's hard_limit_points_per_month is {self.limit}; {self.used} points were ingested this month, "
            f"so {room} more fit and this batch of {self.points} would exceed it"
        )


def today() -> date:
    return datetime.now(UTC).date()


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def _adapt(day: date):
    return connection.ops.adapt_datefield_value(day)


def _is_postgresql() -> bool:
    return connection.vendor == "postgresql"


# The limit is read from the tenant's plan inside the statement that enforces it: a plan
# changed in the admin applies to the very next batch (nothing caches it).
_LIMIT_SQL = (
    "COALESCE((SELECT p.hard_limit_points_per_month FROM tenants_tenant t JOIN tenants_plan p ON p.id = t.plan_id"
    f" WHERE t.id = %s), {NO_LIMIT})"
)


def bump_daily(tenant_id: int, day: date | None = None, **increments: int) -> None:
    """Add to the tenant's usage row of ``day`` (default today), creating it: one upsert."""
    columns = [c for c in DAILY_COLUMNS if increments.get(c)]
    unknown = set(increments) - set(DAILY_COLUMNS)
    if unknown:
        raise ValueError(f"bump_daily: unknown column(s) {sorted(unknown)}")
    if not columns:
        return
    values = [int(increments[c]) for c in columns]
    sets = ", ".join(f"{c} = tenants_usagedaily.{c} + excluded.{c}" for c in columns)
    defaults = [c for c in DAILY_COLUMNS if c not in columns]
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO tenants_usagedaily (tenant_id, day, {', '.join(columns + defaults)})"
            f" VALUES (%s, %s, {', '.join(['%s'] * len(columns) + ['0'] * len(defaults))})"
            f" ON CONFLICT (tenant_id, day) DO UPDATE SET {sets}",
            [tenant_id, _adapt(day or today()), *values],
        )


def _activate_series(tenant_id: int, month: date, day: date, series_ids: Sequence[int]) -> tuple[int, int]:
    """Record that the series got points on ``day``; return (new this day, new this month).

    Series already active on ``day`` are filtered out by a plain read first: the upsert
    locks every row it matches, even one it then leaves alone."""
    ids = np.unique(np.asarray(series_ids, dtype=np.int64))  # sorted: one lock order for every writer
    if not len(ids):
        return 0, 0
    upsert = """
        INSERT INTO tenants_seriesactivity (tenant_id, month, series_id, first_day, last_day)
        {source}
        ON CONFLICT (tenant_id, month, series_id) DO UPDATE SET last_day = excluded.last_day
        WHERE tenants_seriesactivity.last_day < excluded.last_day
        RETURNING first_day
    """
    if _is_postgresql():
        source = """
            SELECT %s, %s, u.id, %s, %s FROM unnest(%s) AS u(id)
            WHERE NOT EXISTS (SELECT 1 FROM tenants_seriesactivity a
                              WHERE a.tenant_id = %s AND a.month = %s AND a.series_id = u.id AND a.last_day >= %s)
            ORDER BY u.id
        """
        with server_cursor() as cur:
            cur.execute(upsert.format(source=source),
                        [tenant_id, month, day, day, ArrayParam("int8", ids), tenant_id, month, day])
            firsts = [row[0] for row in cur.fetchall()]
    else:  # SQLite: the ids as one JSON parameter; "WHERE true" keeps the upsert unambiguous
        with connection.cursor() as cur:
            cur.execute(upsert.format(source="SELECT %s, %s, value, %s, %s FROM json_each(%s) WHERE true"),
                        [tenant_id, _adapt(month), _adapt(day), _adapt(day), json.dumps(ids.tolist())])
            firsts = [date.fromisoformat(str(row[0])) for row in cur.fetchall()]
    return len(firsts), sum(1 for first in firsts if first == day)


def meter_points(tenant_id: int, points: int, series_ids: Sequence[int], *, day: date | None = None) -> None:
    """Meter an accepted batch (``series_ids``: the series of its points, repeats
    allowed), in its transaction, after its points are written:
    active series, then the month's points against the plan's hard limit (one
    conditional upsert: raises ``QuotaExceeded`` if the batch would cross it, so the
    caller's transaction rolls back whole), then the day's row.

    Cost: three single-statement upserts on rows keyed by the tenant (four with no
    usage row yet), whatever the batch size."""
    points = int(points)
    if points <= 0:
        return
    day = day or today()
    month = month_of(day)
    new_today, new_this_month = _activate_series(tenant_id, month, day, series_ids)
    with connection.cursor() as cur:
        # The source row exists only if the batch alone fits; the update only if the
        # month's total with it fits. Concurrent batches queue on the row lock and each
        # re-checks the condition against the committed total (READ COMMITTED re-check).
        cur.execute(
            f"""
            INSERT INTO tenants_usagemonth (tenant_id, month, points_ingested, active_series)
            SELECT %s, %s, %s, %s WHERE %s <= {_LIMIT_SQL}
            ON CONFLICT (tenant_id, month) DO UPDATE SET
                points_ingested = tenants_usagemonth.points_ingested + excluded.points_ingested,
                active_series = tenants_usagemonth.active_series + excluded.active_series
            WHERE tenants_usagemonth.points_ingested + excluded.points_ingested <= {_LIMIT_SQL}
            RETURNING points_ingested
            """,
            [tenant_id, _adapt(month), points, new_this_month, points, tenant_id, tenant_id],
        )
        if cur.fetchone() is None:
            used, limit = month_points_and_limit(tenant_id, month)
            raise QuotaExceeded(points, used, limit if limit is not None else 0)
    bump_daily(tenant_id, day, points_ingested=points, active_series=new_today)


def month_points_and_limit(tenant_id: int, month: date | None = None) -> tuple[int, int | None]:
    """(points ingested this month, the plan's hard limit or None): read fresh, no cache."""
    month = month or month_of(today())
    row = (
        Tenant.objects.filter(pk=tenant_id)
        .annotate(used=Subquery(UsageMonth.objects.for_tenant(tenant_id).filter(month=month).values("points_ingested")))
        .values_list("used", "plan__hard_limit_points_per_month")
        .first()
    )
    used, limit = row or (None, None)
    return int(used or 0), limit


def meter_analysis(tenant_id: int, series: int) -> None:
    """Series analysed by a detection batch."""
    bump_daily(tenant_id, series_analysed=series)


def meter_run_finished(tenant_id: int, status: str) -> None:
    """A run reached a final status (called once per transition); successful runs count."""
    if status == "succeeded":
        bump_daily(tenant_id, detection_runs=1)


def meter_api_request(tenant_id: int) -> None:
    bump_daily(tenant_id, api_requests=1)


# Statements.

def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    item: str
    quantity: int | None
    included: int | None
    billable: int | None
    unit_price: Decimal | None
    unit: str
    amount: Decimal


@dataclass
class Statement:
    tenant: Tenant
    plan: Plan
    month: date
    points: int
    active_series: int
    days: list[UsageDaily] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def period_end(self) -> date:
        return next_month(self.month)


def price_lines(plan: Plan, points: int, active_series: int) -> list[Line]:
    """Plan price + points overage + active-series overage, each rounded to the cent."""
    extra_points = max(0, points - plan.included_points_per_month)
    extra_series = max(0, active_series - plan.included_active_series)
    return [
        Line(f"Plan {plan.name} (monthly price)", None, None, None, None, "", _money(plan.monthly_price)),
        Line("Points ingested", points, plan.included_points_per_month, extra_points,
             plan.overage_price_per_million_points, "per million points",
             _money(Decimal(extra_points) * plan.overage_price_per_million_points / MILLION)),
        Line("Active series", active_series, plan.included_active_series, extra_series,
             plan.overage_price_per_series, "per series",
             _money(Decimal(extra_series) * plan.overage_price_per_series)),
    ]


def statement(tenant: Tenant, month: date) -> Statement:
    """The tenant's statement for the calendar month (UTC) starting at ``month``, at its
    current plan (read now: a plan changed mid-month bills the whole month at the new one)."""
    month = month_of(month)
    plan = Plan.objects.get(tenants=tenant)
    days = list(
        UsageDaily.objects.for_tenant(tenant).filter(day__gte=month, day__lt=next_month(month)).order_by("day")
    )
    points = sum(d.points_ingested for d in days)
    active = UsageMonth.objects.for_tenant(tenant).filter(month=month).values_list("active_series", flat=True).first()
    result = Statement(tenant=tenant, plan=plan, month=month, points=points, active_series=int(active or 0), days=days)
    result.lines = price_lines(plan, result.points, result.active_series)
    return result


def statement_csv(st: Statement) -> str:
    """The statement as CSV: one row per line item, then the total."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["tenant", "month", "item", "quantity", "included", "billable", "unit_price", "unit", "amount"])

    def blank(value):
        return "" if value is None else value

    month = st.month.strftime("%Y-%m")
    for line in st.lines:
        writer.writerow([st.tenant.slug, month, line.item, blank(line.quantity), blank(line.included),
                         blank(line.billable), blank(line.unit_price), line.unit, line.amount])
    writer.writerow([st.tenant.slug, month, "Total", "", "", "", "", "", st.total])
    return out.getvalue()


def months_with_usage(tenant: Tenant) -> list[date]:
    """Months with a usage row, newest first, plus the current month."""
    months = set(UsageMonth.objects.for_tenant(tenant).values_list("month", flat=True))
    months.add(month_of(today()))
    return sorted(months, reverse=True)

