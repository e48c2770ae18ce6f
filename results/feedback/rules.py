"""How labels become adjustments, and undoing or confirming one.

- ``FALSE_ALARMS_TO_RAISE`` false alarms marked on one series (not yet counted by an
  earlier adjustment) raise its alarm threshold just above the highest score among them
  (at least ``THRESHOLD_STEP`` above the current one, never above ``THRESHOLD_CEILING``),
  for ``EXPIRY`` unless the tenant confirms it.
- ``EXPECTED_TO_EXCEPT`` "expected" labels on one node, on different days, at overlapping
  times of day (UTC) make a recurring daily exception over their times of day.
Every adjustment names the labels that caused it and says why in one sentence; the
next run uses it (``results.feedback.effective``).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

from analytics.models import Series
from results.feedback import audit
from results.feedback.effective import SettingsResolver, base_threshold
from results.models import Adjustment, Feedback

FALSE_ALARMS_TO_RAISE = 3
THRESHOLD_STEP = 0.02
THRESHOLD_CEILING = 0.8
EXPECTED_TO_EXCEPT = 2
EXPIRY = timedelta(days=30)

Verdict = Feedback.Verdict


def after_label(tenant_id: int, feedback: Feedback, by: str, now: datetime | None = None) -> Adjustment | None:
    """The adjustment a new or changed label causes, if any."""
    now = now or timezone.now()
    if feedback.verdict == Verdict.FALSE_ALARM:
        return raise_threshold(tenant_id, feedback.series_id, by, now)
    if feedback.verdict == Verdict.EXPECTED:
        return recurring_exception(tenant_id, feedback, by, now)
    return None


def _consumed(tenant_id: int, kind: str, **where) -> set[int]:
    """Labels an earlier adjustment counted already (even one undone: undoing must not
    bring the same labels back as a new adjustment)."""
    rows = Adjustment.objects.for_tenant(tenant_id).filter(kind=kind, **where).values_list("feedback_ids", flat=True)
    return {pk for ids in rows for pk in ids}


def _days(labels: list[Feedback]) -> str:
    return ", ".join(sorted({f.updated_at.date().isoformat() for f in labels}))


def raise_threshold(tenant_id: int, series_id: int, by: str, now: datetime) -> Adjustment | None:
    consumed = _consumed(tenant_id, Adjustment.Kind.THRESHOLD, series_id=series_id)
    labels = [f for f in Feedback.objects.for_tenant(tenant_id).filter(series_id=series_id, verdict=Verdict.FALSE_ALARM)
              .order_by("updated_at", "pk") if f.pk not in consumed]
    if len(labels) < FALSE_ALARMS_TO_RAISE:
        return None
    series = Series.objects.for_tenant(tenant_id).get(pk=series_id)
    config = SettingsResolver(tenant_id, now).for_series(series)
    current = float(config.params.get("threshold", base_threshold(config.engine, config.params)))
    target = min(THRESHOLD_CEILING, max(current + THRESHOLD_STEP, max(f.score for f in labels) + THRESHOLD_STEP))
    target = round(target, 2)
    if target <= current:
        return None  # at the ceiling already: the labels stay uncounted for a later, lower threshold
    adjustment = Adjustment.objects.for_tenant(tenant_id).create(
        tenant_id=tenant_id, kind=Adjustment.Kind.THRESHOLD, series_id=series_id, node_id=series.node_id,
        metric_name=series.metric_name, threshold=target, previous_threshold=current,
        feedback_ids=[f.pk for f in labels], created_at=now, expires_at=now + EXPIRY,
        reason=f"threshold raised to {target:.2f} after {len(labels)} false alarms marked on {_days(labels)}",
    )
    audit.record(tenant_id, "adjustment_made", f"adjustment:{adjustment.pk}", by, now, reason=adjustment.reason,
                 feedback=adjustment.feedback_ids)
    return adjustment


def _time_of_day(moment: datetime) -> time:
    return moment.astimezone(timezone.get_fixed_timezone(0)).time()


def recurring_exception(tenant_id: int, feedback: Feedback, by: str, now: datetime) -> Adjustment | None:
    """Expected labels on the node whose time of day overlaps this one's, one per day."""
    consumed = _consumed(tenant_id, Adjustment.Kind.EXCEPTION, node_id=feedback.node_id)
    start, end = _time_of_day(feedback.window_start), _time_of_day(feedback.window_end)
    if end <= start:
        return None  # crosses midnight: no daily window
    same_time: dict[object, Feedback] = {}
    for label in Feedback.objects.for_tenant(tenant_id).filter(node_id=feedback.node_id, verdict=Verdict.EXPECTED):
        s, e = _time_of_day(label.window_start), _time_of_day(label.window_end)
        if label.pk not in consumed and s < e and s < end and start < e:
            same_time.setdefault(label.window_start.date(), label)
    labels = sorted(same_time.values(), key=lambda f: f.pk)
    if len(labels) < EXPECTED_TO_EXCEPT:
        return None
    daily_start = min(_time_of_day(f.window_start) for f in labels)
    daily_end = max(_time_of_day(f.window_end) for f in labels)
    metrics = {f.metric_name for f in labels}
    metric = metrics.pop() if len(metrics) == 1 else ""
    adjustment = Adjustment.objects.for_tenant(tenant_id).create(
        tenant_id=tenant_id, kind=Adjustment.Kind.EXCEPTION, node_id=feedback.node_id, metric_name=metric,
        daily_start=daily_start, daily_end=daily_end, feedback_ids=[f.pk for f in labels], created_at=now,
        expires_at=now + EXPIRY,
        reason=f"every day {daily_start:%H:%M}-{daily_end:%H:%M} UTC on this node is expected "
               f"({'metric ' + metric if metric else 'every metric'}) after {len(labels)} labels on {_days(labels)}",
    )
    audit.record(tenant_id, "adjustment_made", f"adjustment:{adjustment.pk}", by, now, reason=adjustment.reason,
                 feedback=adjustment.feedback_ids)
    return adjustment


def undo(tenant_id: int, adjustment: Adjustment, by: str, now: datetime | None = None) -> Adjustment:
    """The next run no longer uses it (an explicit detect of a past range re-evaluates it)."""
    now = now or timezone.now()
    if adjustment.undone_at is None:
        adjustment.undone_at, adjustment.undone_by = now, by
        adjustment.save(update_fields=["undone_at", "undone_by"])
        audit.record(tenant_id, "adjustment_undone", f"adjustment:{adjustment.pk}", by, now, reason=adjustment.reason)
    return adjustment


def confirm(tenant_id: int, adjustment: Adjustment, by: str, now: datetime | None = None) -> Adjustment:
    """Keep it: no expiry."""
    if adjustment.expires_at is not None and adjustment.undone_at is None:
        adjustment.expires_at = None
        adjustment.save(update_fields=["expires_at"])
        audit.record(tenant_id, "adjustment_confirmed", f"adjustment:{adjustment.pk}", by, now, reason=adjustment.reason)
    return adjustment
