"""The backtests page: start one (members and owners), follow its progress, compare two
side by side, and (owners) apply one as the tenant's engine setting."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from analytics.core.engines.registry import engine_registry
from analytics.models import Series
from results.backtests import runner
from results.backtests.compare import difference
from results.backtests.serializers import BacktestRequestSerializer
from results.backtests.tasks import request_backtest
from results.feedback.views import may_label
from results.models import Backtest
from tenants.views import is_owner, tenant_page


class BacktestForm(forms.Form):
    engine = forms.ChoiceField(choices=lambda: [("", "current settings")] + [(n, n) for n in engine_registry.names()],
                               required=False)
    params = forms.CharField(required=False, initial="{}", help_text='JSON, e.g. {"threshold": 0.6}')
    metric = forms.CharField(required=False, help_text="Only this metric (blank: every series).")
    start = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="UTC")
    end = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="UTC")

    def request_data(self) -> dict:
        """The API's request, so the page and the API check the same things."""
        data = self.cleaned_data
        try:
            params = json.loads(data["params"] or "{}")
        except json.JSONDecodeError:
            raise forms.ValidationError({"params": "not valid JSON"}) from None
        body = {"start": data["start"], "end": data["end"], "params": params, "current_settings": not data["engine"]}
        if data["engine"]:
            body["engine"] = data["engine"]
        check = BacktestRequestSerializer(data=body)
        if not check.is_valid():
            raise forms.ValidationError({f if f in self.fields else "start": str(e[0]) for f, e in check.errors.items()})
        return check.validated_data


def _list(request, form, status=200):
    tenant = request.tenant
    rows = Backtest.objects.for_tenant(tenant).order_by("-created_at", "-pk")[:50]
    chosen = [int(v) for v in (request.GET.get("a"), request.GET.get("b")) if v and v.isdigit()]
    pair = {b.pk: b for b in Backtest.objects.for_tenant(tenant).filter(pk__in=chosen)}
    compared = None
    if len(chosen) == 2 and all(pk in pair for pk in chosen):
        a, b = pair[chosen[0]], pair[chosen[1]]
        compared = {"a": a, "b": b, "difference": difference(a, b)}
    return render(request, "dashboard/backtests.html", {
        "nav": "backtests", "backtests": rows, "form": form, "can_start": may_label(request), "compared": compared,
    }, status=status)


@require_http_methods(["GET", "POST"])
@tenant_page
def backtest_list(request):
    if request.method == "GET":
        return _list(request, BacktestForm())
    if not may_label(request):
        raise PermissionDenied("viewers may not start backtests")
    form = BacktestForm(request.POST)
    try:
        data = form.request_data() if form.is_valid() else None
    except forms.ValidationError as error:
        form.add_error(None, error)
        data = None
    series = Series.objects.for_tenant(request.tenant)
    if data is not None and form.cleaned_data["metric"]:
        series = series.filter(metric_name=form.cleaned_data["metric"])
    ids = sorted(series.values_list("pk", flat=True)) if data is not None else []
    if data is None or not ids:
        if data is not None:
            form.add_error("metric", "no series selected")
        return _list(request, form, status=400)
    backtest = request_backtest(request.tenant.pk, engine=data.get("engine", ""), params=data["params"],
                                current_settings=data["current_settings"], series_ids=ids, start=data["start"],
                                end=data["end"], by=request.user.get_username())
    return redirect("dashboard:backtest", backtest.pk)


@require_GET
@tenant_page
def backtest_detail(request, backtest_id: int):
    backtest = get_object_or_404(Backtest.objects.for_tenant(request.tenant), pk=backtest_id)
    return render(request, "dashboard/backtest.html", {"nav": "backtests", "backtest": backtest,
                                                        "can_apply": is_owner(request)})


@require_POST
@tenant_page
def apply_backtest(request, backtest_id: int):
    backtest = get_object_or_404(Backtest.objects.for_tenant(request.tenant), pk=backtest_id)
    if not is_owner(request):
        raise PermissionDenied("only owners may apply backtests")
    if backtest.current_settings or backtest.status != Backtest.Status.SUCCEEDED:
        messages.error(request, "Only a finished backtest of another configuration can be applied.")
    else:
        runner.apply(request.tenant.pk, backtest, request.user.get_username())
        messages.success(request, f"Applied: {backtest.engine} is now the tenant's engine setting.")
    return redirect("dashboard:backtest", backtest.pk)
