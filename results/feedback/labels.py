"""Labelling an anomaly (set, change, remove), each step in the audit trail; a label may
cause an adjustment (``rules``). Nothing is half-stored: one transaction per call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from analytics.models import Series
from results.feedback import audit, rules
from results.models import Adjustment, Anomaly, Feedback, Incident, IncidentMember


@dataclass
class Labelled:
    feedback: Feedback
    created: bool
    adjustment: Adjustment | None


def label(tenant_id: int, anomaly: Anomaly, verdict: str, comment: str, by: str, now: datetime | None = None) -> Labelled:
    now = now or timezone.now()
    with transaction.atomic():
        # one labeller of a series at a time: the false-alarm count must see every label
        Series.objects.for_tenant(tenant_id).select_for_update().filter(pk=anomaly.series_id).first()
        feedback = Feedback.objects.for_tenant(tenant_id).filter(anomaly=anomaly).first()
        created = feedback is None
        previous = None if feedback is None else {"verdict": feedback.verdict, "comment": feedback.comment}
        if feedback is None:
            feedback = Feedback(tenant_id=tenant_id, anomaly=anomaly, series_id=anomaly.series_id, node_id=anomaly.node_id,
                                metric_name=anomaly.metric_name, created_at=now)
        feedback.window_start, feedback.window_end, feedback.score = anomaly.window_start, anomaly.window_end, anomaly.score
        feedback.verdict, feedback.comment, feedback.by, feedback.updated_at = verdict, comment, by, now
        feedback.save()
        audit.record(tenant_id, "feedback_set" if created else "feedback_changed", f"anomaly:{anomaly.pk}", by, now,
                     feedback=feedback.pk, verdict=verdict, comment=comment, previous=previous)
        adjustment = rules.after_label(tenant_id, feedback, by, now)
    return Labelled(feedback, created, adjustment)


def label_incident(tenant_id: int, incident: Incident, verdict: str, comment: str, by: str,
                   now: datetime | None = None) -> list[Labelled]:
    """Label an incident = label each of its member anomalies (one transaction)."""
    members = IncidentMember.objects.for_tenant(tenant_id).filter(incident=incident).values("anomaly_id")
    with transaction.atomic():
        return [label(tenant_id, anomaly, verdict, comment, by, now)
                for anomaly in Anomaly.objects.for_tenant(tenant_id).filter(pk__in=members).order_by("window_start", "pk")]


def remove(tenant_id: int, feedback: Feedback, by: str, now: datetime | None = None) -> None:
    """Withdraw a label (an adjustment it caused stays until undone: it names the label)."""
    with transaction.atomic():
        audit.record(tenant_id, "feedback_removed", f"anomaly:{feedback.anomaly_id}", by, now, feedback=feedback.pk,
                     previous={"verdict": feedback.verdict, "comment": feedback.comment})
        feedback.delete()
