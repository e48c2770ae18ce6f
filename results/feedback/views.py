"""Dashboard feedback: one click labels an anomaly (members and owners; viewers read),
and the adjustments page, where owners undo or confirm an adjustment."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from results.feedback import labels, rules
from results.models import Adjustment, Anomaly, Feedback, Incident
from tenants.models import Membership
from tenants.views import is_owner, tenant_page

LABELLERS = (Membership.Role.OWNER, Membership.Role.MEMBER)
BUTTONS = [(Feedback.Verdict.REAL, "real problem"), (Feedback.Verdict.FALSE_ALARM, "false alarm"),
           (Feedback.Verdict.EXPECTED, "expected")]


def may_label(request) -> bool:
    return request.membership is not None and request.membership.role in LABELLERS


def _verdict_and_comment(request) -> tuple[str, str] | None:
    """The form's verdict and comment (cut to the stored length); None, with a message, for
    an unknown verdict."""
    verdict = request.POST.get("verdict", "")
    if verdict not in Feedback.Verdict.values:
        messages.error(request, f"verdict: must be one of {', '.join(Feedback.Verdict.values)}")
        return None
    return verdict, request.POST.get("comment", "")[:Feedback.COMMENT_MAX_LENGTH]


def _back(request, fallback: str):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


@require_POST
@tenant_page
def label_anomaly(request, anomaly_id: int):
    anomaly = get_object_or_404(Anomaly.objects.for_tenant(request.tenant), pk=anomaly_id)
    if not may_label(request):
        raise PermissionDenied("viewers may not label anomalies")
    form = _verdict_and_comment(request)
    if form is None:
        return _back(request, "dashboard:anomalies")
    done = labels.label(request.tenant.pk, anomaly, *form, request.user.get_username())
    messages.success(request, f"Marked as {done.feedback.get_verdict_display()}."
                     + (f" Adjustment: {done.adjustment.reason}." if done.adjustment else ""))
    return _back(request, "dashboard:anomalies")


@require_POST
@tenant_page
def label_incident(request, incident_id: int):
    """One click labels every member anomaly of the incident."""
    incident = get_object_or_404(Incident.objects.for_tenant(request.tenant), pk=incident_id)
    if not may_label(request):
        raise PermissionDenied("viewers may not label incidents")
    form = _verdict_and_comment(request)
    if form is not None:
        done = labels.label_incident(request.tenant.pk, incident, *form, request.user.get_username())
        made = [d.adjustment.reason for d in done if d.adjustment]
        messages.success(request, f"Marked {len(done)} anomalies as {Feedback.Verdict(form[0]).label}."
                         + "".join(f" Adjustment: {reason}." for reason in made))
    return redirect("dashboard:incident", incident_id=incident.pk)


@require_GET
@tenant_page
def adjustment_list(request):
    rows = Adjustment.objects.for_tenant(request.tenant).select_related("node").order_by("-created_at", "-pk")
    now = timezone.now()
    for row in rows:
        row.active = row.is_active(now)
    return render(request, "dashboard/adjustments.html", {"nav": "adjustments", "adjustments": rows,
                                                           "can_manage": is_owner(request)})


@require_POST
@tenant_page
def change_adjustment(request, adjustment_id: int):
    adjustment = get_object_or_404(Adjustment.objects.for_tenant(request.tenant), pk=adjustment_id)
    if not is_owner(request):
        raise PermissionDenied("only owners may undo or confirm adjustments")
    change = rules.confirm if request.POST.get("action") == "confirm" else rules.undo
    change(request.tenant.pk, adjustment, request.user.get_username())
    return redirect("dashboard:adjustments")
