"""The operators' console for the metric store: series (read-only), and ingestion health
added to the tenants' console (``tenants.admin.TenantAdmin``): columns from the
counters on the tenant list, and a health page per tenant at
``/admin/tenants/tenant/<id>/health/``."""

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from analytics import health
from analytics.models import Series
from tenants.admin import ReadOnlyAdmin, TenantAdmin, TenantOwnedAdmin
from tenants.models import Tenant


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("metric_name", "node", "cluster", "tenant", "unit", "last_point_at", "analysed_until", "created_at")
    list_filter = ("tenant",)
    search_fields = ("metric_name", "node__name", "cluster__name")
    show_full_result_count = False
    readonly_fields = [f.name for f in Series._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("node", "cluster")


class TenantHealthChangeList(ChangeList):
    """Loads the page's ingestion health in a few queries, not a few per row."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        by_id = health.overview(t.pk for t in self.result_list)
        for tenant in self.result_list:
            tenant.health = by_id[tenant.pk]


admin.site.unregister(Tenant)


@admin.register(Tenant)
class TenantHealthAdmin(TenantAdmin):
    list_display: tuple[str, ...] = ("slug", "name", "plan", "is_active", "points_24h", "stale_nodes", "last_point",
                                     "rejected_24h", "console_links")
    console_pages = (("health", "admin:tenants_tenant_health"), *TenantAdmin.console_pages)

    def get_changelist(self, request, **kwargs):
        return TenantHealthChangeList

    @admin.display(description="points, last 24 h (≈)")
    def points_24h(self, tenant):
        return f"{tenant.health.points_24h:,}"

    @admin.display(description="stale nodes")
    def stale_nodes(self, tenant):
        h = tenant.health
        text = f"{h.nodes_stale} of {h.nodes_total}"
        return format_html('<strong style="color:#ba2121">{}</strong>', text) if h.nodes_stale else text

    @admin.display(description="newest point")
    def last_point(self, tenant):
        return tenant.health.last_point_at or "—"

    @admin.display(description="rejected, last 24 h (≈)")
    def rejected_24h(self, tenant):
        h = tenant.health
        if not h.rejected_by_reason:
            return f"{h.rejected_24h:,}"
        reasons = "; ".join(f"{reason}: {count}" for reason, count in sorted(h.rejected_by_reason.items()))
        return format_html('{} <span title="today and yesterday, by reason">({})</span>', f"{h.rejected_24h:,}", reasons)

    def get_urls(self):
        health_page = path("<int:tenant_id>/health/", self.admin_site.admin_view(self.health_view), name="tenants_tenant_health")
        return [health_page, *super().get_urls()]

    def health_view(self, request, tenant_id: int):
        tenant = self.console_tenant(request, tenant_id)
        context = {
            **self.console_context(request, tenant, f"Ingestion health: {tenant.name}"),
            "detail": health.tenant_detail(tenant),
            "stale_minutes": int(health.STALE_AFTER.total_seconds() // 60),
        }
        return TemplateResponse(request, "admin/tenants/tenant/health.html", context)
