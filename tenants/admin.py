"""The operators' console for tenancy. Staff work across tenants (the middleware opens
an all-tenants scope for them); querysets say so explicitly with ``unscoped()``.

Besides the models: each tenant has a monthly statement (HTML and CSV) at
``/admin/tenants/tenant/<id>/statement/``. The metric store adds ingestion health to
the tenant list and a health page per tenant (``analytics.admin``).
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from django.contrib import admin, messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join

from tenants import billing
from tenants.models import (
    ApiKey,
    Cluster,
    Membership,
    Node,
    Plan,
    Tenant,
    UsageDaily,
    UsageMonth,
)


class TenantOwnedAdmin(admin.ModelAdmin):
    list_filter: ClassVar[tuple[str, ...]] = ("tenant",)

    def get_queryset(self, request):
        return self.model.objects.unscoped().select_related("tenant")


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: rows written by the system, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "monthly_price", "included_points_per_month", "included_active_series",
                    "hard_limit_points_per_month", "hard_limit_series", "detection_interval_minutes", "hot_retention_days",
                    "cold_retention_days")
    fieldsets = (
        (None, {"fields": ("slug", "name")}),
        ("Price", {"fields": ("monthly_price", "included_points_per_month", "overage_price_per_million_points",
                              "included_active_series", "overage_price_per_series")}),
        ("Limits", {"fields": ("hard_limit_points_per_month", "hard_limit_series", "detection_interval_minutes",
                               "hot_retention_days", "cold_retention_days")}),
    )


def parse_month(value: str | None) -> date:
    """``YYYY-MM`` (default: the current month); 404 on anything else."""
    if not value:
        return billing.month_of(billing.today())
    try:
        year, month = (int(part) for part in value.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise Http404("month: expected YYYY-MM") from None


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display: tuple[str, ...] = ("slug", "name", "plan", "is_active", "console_links")
    list_filter = ("plan", "is_active")
    search_fields = ("slug", "name")
    list_select_related = ("plan",)
    change_form_template = "admin/tenants/tenant/change_form.html"
    console_pages: tuple[tuple[str, str], ...] = (("statement", "admin:tenants_tenant_statement"),)  # (link, url name)

    @admin.display(description="console")
    def console_links(self, tenant):
        return format_html_join(" · ", '<a href="{}">{}</a>',
                                ((reverse(url_name, args=[tenant.pk]), label) for label, url_name in self.console_pages))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:tenant_id>/statement/", view(self.statement_view), name="tenants_tenant_statement"),
            path("<int:tenant_id>/statement.csv", view(self.statement_csv_view), name="tenants_tenant_statement_csv"),
            *super().get_urls(),
        ]

    def console_tenant(self, request, tenant_id: int) -> Tenant:
        tenant = get_object_or_404(Tenant.objects.select_related("plan"), pk=tenant_id)
        if not self.has_view_permission(request, tenant):
            raise Http404
        return tenant

    def console_context(self, request, tenant: Tenant, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": tenant,
            "tenant": tenant,
            "title": title,
            "subtitle": tenant.slug,
        }

    def statement_view(self, request, tenant_id: int):
        tenant = self.console_tenant(request, tenant_id)
        month = parse_month(request.GET.get("month"))
        statement = billing.statement(tenant, month)
        context = {
            **self.console_context(request, tenant, f"Statement {month:%Y-%m}: {tenant.name}"),
            "statement": statement,
            "months": billing.months_with_usage(tenant),
            "month_value": f"{month:%Y-%m}",
            "csv_url": reverse("admin:tenants_tenant_statement_csv", args=[tenant.pk]) + f"?month={month:%Y-%m}",
        }
        return TemplateResponse(request, "admin/tenants/tenant/statement.html", context)

    def statement_csv_view(self, request, tenant_id: int):
        tenant = self.console_tenant(request, tenant_id)
        month = parse_month(request.GET.get("month"))
        body = billing.statement_csv(billing.statement(tenant, month))
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="statement-{tenant.slug}-{month:%Y-%m}.csv"'
        return response


@admin.register(Membership)
class MembershipAdmin(TenantOwnedAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "user__email")


class NamedByAgentsAdmin(TenantOwnedAdmin):
    """Clusters and nodes are named by the agents that send points: the names (and where
    a node belongs) are their identity, fixed once created. Ingestion remembers series ids
    by these names (analytics/store/series_ids.py); a rename would split a series."""

    identity_fields: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), *(self.identity_fields if obj else ()))


@admin.register(Cluster)
class ClusterAdmin(NamedByAgentsAdmin):
    list_display = ("name", "tenant", "created_at")
    search_fields = ("name",)
    identity_fields = ("tenant", "name")


@admin.register(Node)
class NodeAdmin(NamedByAgentsAdmin):
    list_display = ("name", "cluster", "tenant", "created_at")
    search_fields = ("name",)
    identity_fields = ("tenant", "cluster", "name")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("cluster")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantOwnedAdmin):
    list_display = ("__str__", "tenant", "role", "created_at", "last_used_at", "revoked_at")
    list_filter = ("role",)
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are issued by their tenant, shown once

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            api_key.revoke()
        messages.success(request, f"Revoked {queryset.count()} key(s).")


@admin.register(UsageDaily)
class UsageDailyAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("day", "tenant", "points_ingested", "active_series", "series_analysed", "detection_runs",
                    "api_requests")
    date_hierarchy = "day"
    ordering = ("-day", "tenant")


@admin.register(UsageMonth)
class UsageMonthAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("month", "tenant", "points_ingested", "active_series")
    ordering = ("-month", "tenant")
