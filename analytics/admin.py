"""The operators' console for the metric store: series (read-only)."""

from django.contrib import admin

from analytics.models import Series
from tenants.admin import ReadOnlyAdmin, TenantOwnedAdmin


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("metric_name", "node", "cluster", "tenant", "unit", "last_point_at", "analysed_until", "created_at")
    list_filter = ("tenant",)
    search_fields = ("metric_name", "node__name", "cluster__name")
    show_full_result_count = False
    readonly_fields = [f.name for f in Series._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("node", "cluster")
