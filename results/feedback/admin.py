"""Operators' view of feedback: every tenant's labels, adjustments and audit trail, and
above the labels, each tenant's false-alarm rate week by week (``stats``)."""

from __future__ import annotations

from django.contrib import admin

from results.feedback.stats import weekly_rates
from results.models import Adjustment, AuditEntry, Feedback
from tenants.admin import ReadOnlyAdmin, TenantOwnedAdmin


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("updated_at", "tenant", "metric_name", "verdict", "score", "by", "comment")
    list_filter = ("verdict", "tenant")
    ordering = ("-updated_at",)
    show_full_result_count = False

    def changelist_view(self, request, extra_context=None):
        stats = weekly_rates(self.get_queryset(request))
        return super().changelist_view(request, {**(extra_context or {}), "weekly_rates": stats})


@admin.register(Adjustment)
class AdjustmentAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("created_at", "tenant", "kind", "reason", "expires_at", "undone_at")
    list_filter = ("kind", "tenant")
    ordering = ("-created_at",)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("at", "tenant", "action", "subject", "by")
    list_filter = ("action", "tenant")
    ordering = ("-at",)
    show_full_result_count = False
