"""The operators' delivery log: dead letters first, then failing notifications, then the
rest, newest first; dead letters can be sent again by hand. Channels never show their
secret."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.db.models import Case, IntegerField, Value, When

from results.notifications import delivery, outbox
from results.notifications.models import AlertRule, Channel, DeliveryAttempt, Notification, Silence
from tenants.admin import ReadOnlyAdmin, TenantOwnedAdmin
from tenants.scoping import tenant_scope


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("at", "ok", "http_status", "latency_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return DeliveryAttempt.objects.unscoped().order_by("at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("created_at", "tenant", "channel", "incident_id", "sequence", "event", "status", "attempts", "last_error")
    list_filter = ("status", "event", "tenant")
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    def get_queryset(self, request):
        trouble = Case(When(status=Notification.Status.DEAD, then=Value(0)),
                       When(status=Notification.Status.PENDING, attempts__gt=0, then=Value(1)),
                       default=Value(2), output_field=IntegerField())
        return super().get_queryset(request).select_related("channel").annotate(trouble=trouble).order_by("trouble", "-created_at")

    @admin.action(description="Send the selected dead letters again")
    def retry(self, request, queryset):
        count = 0
        for notification in queryset.filter(status=Notification.Status.DEAD):
            with tenant_scope(notification.tenant_id):
                delivery.retry_by_hand(notification)
                outbox.enqueue_after_commit(notification.tenant_id, notification.channel_id, notification.incident_id)
            count += 1
        messages.success(request, f"{count} dead letter(s) queued again.")


@admin.register(Channel)
class ChannelAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "kind", "url", "enabled")
    exclude = ("secret_encrypted",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(AlertRule)
class AlertRuleAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "enabled", "min_peak_score", "min_duration_seconds", "renotify_minutes")


@admin.register(Silence)
class SilenceAdmin(TenantOwnedAdmin):
    list_display = ("tenant", "matchers", "starts_at", "ends_at", "comment")
