"""The operators' console for tenancy. Staff work across tenants (the middleware opens
an all-tenants scope for them); querysets say so explicitly with ``unscoped()``."""

from django.contrib import admin, messages

from tenants.models import ApiKey, Cluster, Membership, Node, Plan, Tenant


class TenantOwnedAdmin(admin.ModelAdmin):
    list_filter = ("tenant",)

    def get_queryset(self, request):
        return self.model.objects.unscoped().select_related("tenant")


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "monthly_price", "included_points_per_month", "hard_limit_points_per_month",
                    "detection_interval_minutes", "hot_retention_days", "cold_retention_days")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "plan", "is_active", "created_at")
    list_filter = ("plan", "is_active")
    search_fields = ("slug", "name")


@admin.register(Membership)
class MembershipAdmin(TenantOwnedAdmin):
    list_display = ("user", "tenant", "role", "created_at")


@admin.register(Cluster)
class ClusterAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "created_at")
    search_fields = ("name",)


@admin.register(Node)
class NodeAdmin(TenantOwnedAdmin):
    list_display = ("name", "cluster", "tenant", "created_at")
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("cluster")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantOwnedAdmin):
    list_display = ("__str__", "tenant", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are issued by their tenant, shown once

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            api_key.revoke()
        messages.success(request, f"Revoked {queryset.count()} key(s).")
