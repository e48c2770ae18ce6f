"""The operators' console for detection: engine settings, runs (re-run, cancel), anomalies, incidents."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from analytics.core.engines.registry import engine_registry
from analytics.models import Series
from results.backtests import admin as backtest_admin  # noqa: F401  (registers the backtest admin)
from results.feedback import admin as feedback_admin  # noqa: F401  (registers the feedback admin)
from results.models import Anomaly, DetectionRun, EngineSetting, Incident
from results.notifications import admin as notifications_admin
from results.tasks import request_run
from tenants.admin import ReadOnlyAdmin, TenantOwnedAdmin
from tenants.models import Node


def engine_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in engine_registry.names()]


class EngineSettingForm(forms.ModelForm):
    """The engine is one of the registry's; the parameters are checked by creating it."""

    engine = forms.ChoiceField(choices=engine_choices)
    # across tenants (the operator's form); clean() checks the row is the chosen tenant's
    series = forms.ModelChoiceField(queryset=Series.objects.unscoped(), required=False, widget=forms.NumberInput,
                                    help_text="A series id: one series (takes precedence over node, metric and tenant).")
    node = forms.ModelChoiceField(queryset=Node.objects.unscoped(), required=False, widget=forms.NumberInput,
                                  help_text="A node id: every metric of the node, or the one metric named.")

    class Meta:
        model = EngineSetting
        fields = ("tenant", "series", "node", "metric_name", "engine", "params")
        help_texts = {"metric_name": "Empty: the tenant's default for every metric (of the node, with a node).",
                      "params": 'JSON object of engine parameters, e.g. {"window": "30min"}; {} for the defaults.'}

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        engine, params = cleaned.get("engine"), cleaned.get("params")
        if params is None and "params" not in self.errors:
            params = cleaned["params"] = {}
        if not isinstance(params, dict):
            if "params" not in self.errors:
                self.add_error("params", "must be a JSON object of parameter names to values")
            return cleaned
        tenant = cleaned.get("tenant")
        for level in ("series", "node"):
            if cleaned.get(level) is not None and tenant is not None and cleaned[level].tenant_id != tenant.pk:
                self.add_error(level, f"must be one of the tenant's {level}")
        if engine:
            try:
                engine_registry.create(engine, **params)
            except (ValueError, TypeError) as error:
                self.add_error("params", str(error))
        return cleaned


@admin.register(EngineSetting)
class EngineSettingAdmin(TenantOwnedAdmin):
    form = EngineSettingForm
    list_display = ("tenant", "series", "node", "metric_label", "engine", "params", "applied_by", "applied_from")
    search_fields = ("metric_name",)

    @admin.display(description="metric", ordering="metric_name")
    def metric_label(self, setting):
        return setting.metric_name or "(all metrics)"


@admin.register(DetectionRun)
class DetectionRunAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("id", "tenant", "trigger", "status", "range_start", "range_end", "created_at", "duration",
                    "series", "points_analysed", "anomalies_found", "short_error")
    list_filter = ("status", "trigger", "tenant")
    ordering = ("-created_at",)
    show_full_result_count = False
    actions = ["rerun", "cancel"]
    readonly_fields = [f.name for f in DetectionRun._meta.fields]

    @admin.display(description="duration")
    def duration(self, run):
        seconds = run.duration_seconds
        return "—" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="series done / total (skipped)")
    def series(self, run):
        return f"{run.series_done} / {run.series_total} ({run.series_skipped})"

    @admin.display(description="error")
    def short_error(self, run):
        return (run.error[:80] + "…") if len(run.error) > 80 else run.error

    @admin.action(description="Re-run the same range (a new run)", permissions=["operate"])
    def rerun(self, request, queryset):
        created = [
            request_run(run.tenant_id, DetectionRun.Trigger.MANUAL, run.range_start, run.range_end)
            for run in queryset.order_by("pk")
        ]
        messages.success(request, f"Requested {len(created)} run(s): {', '.join(str(r.pk) for r in created)}.")

    @admin.action(description="Cancel (queued or running runs)", permissions=["operate"])
    def cancel(self, request, queryset):
        # The batch tasks check the status before working, so running batches stop.
        live = [DetectionRun.Status.QUEUED, DetectionRun.Status.RUNNING]
        cancelled = queryset.filter(status__in=live).update(
            status=DetectionRun.Status.CANCELLED, finished_at=timezone.now(), error="cancelled by an operator"
        )
        skipped = queryset.count() - cancelled
        messages.success(request, f"Cancelled {cancelled} run(s)" + (f"; {skipped} had already finished." if skipped else "."))

    def has_operate_permission(self, request):
        """Runs are read-only in the form; re-running and cancelling need the change permission."""
        return request.user.has_perm("results.change_detectionrun")


@admin.register(Anomaly)
class AnomalyAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    list_display = ("window_start", "tenant", "node", "metric_name", "label", "score", "magnitude", "engine", "run")
    list_filter = ("label", "engine", "tenant")
    search_fields = ("metric_name", "text")
    ordering = ("-window_start",)
    show_full_result_count = False
    readonly_fields = [f.name for f in Anomaly._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("node", "run")


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin, TenantOwnedAdmin):
    """Incidents per tenant (filter by tenant); the lifecycle is the tenant's (pages, API)."""

    list_display = ("id", "tenant", "state", "kind", "summary", "started_at", "ended_at", "peak_score",
                    "acknowledged_by_label", "resolved_by_label")
    list_filter = ("tenant", "state", "kind")
    search_fields = ("summary",)
    ordering = ("-started_at",)
    show_full_result_count = False
    readonly_fields = [f.name for f in Incident._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant")


__all__ = ["notifications_admin"]  # imported for its registrations (the delivery log, channels, rules, silences)
