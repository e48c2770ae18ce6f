"""Feedback statistics for operators: per tenant and week, the labels of each verdict and
the false-alarm rate (false alarms / labels)."""

from __future__ import annotations

from django.db.models import Count, Q
from django.db.models.functions import TruncWeek

from results.models import Feedback

Verdict = Feedback.Verdict


def weekly_rates(queryset) -> list[dict]:
    """``queryset``: Feedback rows (the operator's, across tenants); newest week first."""
    rows = (queryset.annotate(week=TruncWeek("updated_at")).values("tenant__slug", "week")
            .annotate(labels=Count("pk"), real=Count("pk", filter=Q(verdict=Verdict.REAL)),
                      false_alarms=Count("pk", filter=Q(verdict=Verdict.FALSE_ALARM)),
                      expected=Count("pk", filter=Q(verdict=Verdict.EXPECTED)))
            .order_by("-week", "tenant__slug"))
    return [{**row, "false_alarm_rate": round(row["false_alarms"] / row["labels"], 3)} for row in rows]
