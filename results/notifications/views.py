"""The dashboard's alerting page: channels, rules and silences, with forms. Owners manage
all three; members may add silences. Input is checked by the API's serializers (one set
of rules for both)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from results.notifications import serializers as s
from results.notifications.models import AlertRule, Channel, Notification, Silence
from tenants.models import Membership
from tenants.views import is_owner, tenant_page

FORMS = {"channel": s.ChannelSerializer, "rule": s.AlertRuleSerializer, "silence": s.SilenceSerializer}
MODELS: dict[str, Any] = {"channel": Channel, "rule": AlertRule, "silence": Silence}
LIST_FIELDS = {"recipients", "clusters", "nodes", "metrics", "channels"}


def may_change(request: HttpRequest, kind: str) -> bool:
    if is_owner(request):
        return True
    membership = getattr(request, "membership", None)
    return kind == "silence" and membership is not None and membership.role == Membership.Role.MEMBER


def form_data(request: HttpRequest) -> dict[str, Any]:
    """The posted form as the serializer expects it: lists from comma-separated fields or
    repeated ones, silence matchers from "label=glob" pairs."""
    data: dict[str, Any] = {}
    for name in request.POST:
        if name in ("csrfmiddlewaretoken", "form"):
            continue
        values = [v.strip() for v in request.POST.getlist(name) if v.strip()]
        if name in LIST_FIELDS:
            data[name] = [part.strip() for v in values for part in v.split(",") if part.strip()]
        elif name == "matchers":
            pairs = [pair.split("=", 1) for v in values for pair in v.split(",") if "=" in pair]
            data[name] = {label.strip(): glob.strip() for label, glob in pairs}
        elif name in ("enabled", "slack_format"):
            data[name] = True
        elif values:
            data[name] = values[0]
    return data


def _page(request: HttpRequest, *, errors: dict | None = None, status: int = 200) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    context = {
        "nav": "alerting",
        "channels": Channel.objects.for_tenant(tenant).order_by("pk"),
        "rules": AlertRule.objects.for_tenant(tenant).prefetch_related("channels").order_by("pk"),
        "silences": Silence.objects.for_tenant(tenant).order_by("-ends_at"),
        "recent": Notification.objects.for_tenant(tenant).select_related("channel").order_by("-created_at", "-pk")[:20],
        "kinds": Channel.Kind.choices,
        "can_manage": is_owner(request),
        "can_silence": may_change(request, "silence"),
        "errors": errors or {},
    }
    return render(request, "dashboard/alerting.html", context, status=status)


@require_http_methods(["GET", "POST"])
@tenant_page
def alerting(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    kind = request.POST.get("form", "")
    if kind not in FORMS:
        return _page(request, errors={"form": "unknown form"}, status=400)
    if not may_change(request, kind):
        raise PermissionDenied("only owners manage channels and rules; members may add silences")
    serializer = FORMS[kind](data=form_data(request), context={"tenant": request.tenant})  # type: ignore[attr-defined]
    if not serializer.is_valid():
        return _page(request, errors={kind: serializer.errors}, status=400)
    with transaction.atomic():
        extra = {"created_by": request.user.get_username()} if kind == "silence" else {}
        serializer.save(tenant=request.tenant, **extra)  # type: ignore[attr-defined]
    messages.success(request, f"{kind.capitalize()} added.")
    return redirect("dashboard:alerting")


def _delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    if not is_owner(request):
        raise PermissionDenied("only owners remove channels, rules and silences")
    get_object_or_404(MODELS[kind].objects.for_tenant(request.tenant), pk=pk).delete()  # type: ignore[attr-defined]
    messages.success(request, f"{kind.capitalize()} removed.")
    return redirect("dashboard:alerting")


@require_POST
@tenant_page
def delete_channel(request: HttpRequest, pk: int) -> HttpResponse:
    return _delete(request, "channel", pk)


@require_POST
@tenant_page
def delete_rule(request: HttpRequest, pk: int) -> HttpResponse:
    return _delete(request, "rule", pk)


@require_POST
@tenant_page
def delete_silence(request: HttpRequest, pk: int) -> HttpResponse:
    return _delete(request, "silence", pk)
