"""Operators run backtests over any tenant's data: the add form takes the tenant, the
configuration and the range (every series of the tenant), and queues it."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from analytics.models import Series
from results.backtests.serializers import BacktestRequestSerializer
from results.backtests.tasks import request_backtest
from results.models import Backtest
from tenants.admin import TenantOwnedAdmin
from tenants.scoping import tenant_scope


class BacktestAdminForm(forms.ModelForm):
    class Meta:
        model = Backtest
        fields = ("tenant", "engine", "params", "current_settings", "range_start", "range_end")
        help_texts = {"engine": "Blank with current settings.", "params": 'JSON object, e.g. {"threshold": 0.6}'}

    def clean(self):
        cleaned = super().clean() or {}
        body = {"start": cleaned.get("range_start"), "end": cleaned.get("range_end"), "params": cleaned.get("params") or {},
                "current_settings": cleaned.get("current_settings", False)}
        if cleaned.get("engine"):
            body["engine"] = cleaned["engine"]
        check = BacktestRequestSerializer(data={k: v for k, v in body.items() if v is not None})
        if not check.is_valid():
            names = {"start": "range_start", "end": "range_end"}
            for field, errors in check.errors.items():
                self.add_error(names.get(field, field) if names.get(field, field) in self.fields else None, str(errors[0]))
        return cleaned


@admin.register(Backtest)
class BacktestAdmin(TenantOwnedAdmin):
    form = BacktestAdminForm
    list_display = ("id", "tenant", "engine", "current_settings", "range_start", "range_end", "status", "parts",
                    "nab_standard", "created_by", "applied_by")
    list_filter = ("status", "tenant")
    ordering = ("-created_at",)

    @admin.display(description="parts done")
    def parts(self, backtest):
        return f"{backtest.parts_done} / {backtest.parts_total}"

    @admin.display(description="NAB (standard)")
    def nab_standard(self, backtest):
        return (backtest.report or {}).get("nab", {}).get("standard", {}).get("score", "–")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Backtest._meta.fields] if obj else []

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        """Queue it over every series of the tenant (the operator acts as "admin:<name>")."""
        data = form.cleaned_data
        with tenant_scope(data["tenant"]):
            ids = list(Series.objects.for_tenant(data["tenant"]).values_list("pk", flat=True))
            queued = request_backtest(data["tenant"].pk, engine=data.get("engine") or "", params=data.get("params") or {},
                                      current_settings=data.get("current_settings", False), series_ids=ids,
                                      start=data["range_start"], end=data["range_end"],
                                      by=f"admin:{request.user.get_username()}")
        obj.pk = queued.pk
