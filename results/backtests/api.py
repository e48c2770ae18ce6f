"""``/api/v1/backtests``: start one (a Celery task replays the history), follow its
progress, compare two, apply one as the tenant's engine setting."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from analytics.models import Series
from config.errors import ApiError
from config.schema import error_responses
from results.backtests import runner
from results.backtests import serializers as s
from results.backtests.compare import difference
from results.backtests.tasks import request_backtest
from results.feedback.api import actor
from results.models import Backtest
from tenants.api import TenantReadOnlyViewSet


def selected_series(tenant, data: dict) -> list[int]:
    series = Series.objects.for_tenant(tenant)
    for field, lookup in (("cluster", "cluster__name"), ("node", "node__name"), ("metric", "metric_name")):
        if field in data:
            series = series.filter(**{lookup: data[field]})
    if "series" in data:
        wanted = set(data["series"])
        known = set(series.filter(pk__in=wanted).values_list("pk", flat=True))
        if wanted - known:
            raise ApiError(400, "invalid", "series: unknown series ids (or not selected by the filters)",
                           [{"field": "series", "reason": f"unknown: {sorted(wanted - known)[:10]}"}])
        return sorted(known)
    ids = sorted(series.values_list("pk", flat=True))
    if not ids:
        raise ApiError(400, "invalid", "series: no series selected", [{"field": "series", "reason": "none selected"}])
    return ids


@extend_schema_view(
    list=extend_schema(responses={200: s.BacktestSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: s.BacktestSerializer, **error_responses(400, 401, 404)},
                           description="The backtest, with its progress while it runs and its report when done."),
)
class BacktestViewSet(TenantReadOnlyViewSet):
    model = Backtest
    serializer_class = s.BacktestSerializer

    def refine_queryset(self, queryset):
        return queryset.order_by("-created_at", "-pk")

    @extend_schema(request=s.BacktestRequestSerializer, responses={202: s.BacktestSerializer, **error_responses(400, 401)},
                   description="Replay the tenant's stored history (hot and cold) over [start, end) through an engine "
                   "(or each series' current settings) and score it against the tenant's labels: NAB score over the "
                   "labelled ranges, precision over the reviewed alarms, alarms per series per day (also under the "
                   "current settings). Runs on a worker; poll the backtest for progress and the report.")
    def create(self, request):
        query = s.BacktestRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        backtest = request_backtest(
            self.tenant.pk, engine=data.get("engine", ""), params=data["params"] if not data["current_settings"] else {},
            current_settings=data["current_settings"], series_ids=selected_series(self.tenant, data),
            start=data["start"], end=data["end"], by=actor(request),
        )
        return Response(s.BacktestSerializer(backtest).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: s.AppliedSerializer, **error_responses(400, 401, 404)},
                   description="Make the backtest's engine and parameters the tenant's engine setting (every metric "
                   "without a more specific setting); the next run uses it. The audit names the backtest.")
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        backtest = self.get_object()
        if backtest.current_settings:
            raise ApiError(400, "invalid", "backtest: it replayed the current settings; there is nothing to apply",
                           [{"field": "backtest", "reason": "current settings"}])
        if backtest.status != Backtest.Status.SUCCEEDED:
            raise ApiError(400, "invalid", "backtest: only a finished backtest can be applied",
                           [{"field": "backtest", "reason": f"status {backtest.status}"}])
        setting = runner.apply(self.tenant.pk, backtest, actor(request))
        return Response({"backtest": s.BacktestSerializer(backtest).data, "engine_setting": {
            "engine": setting.engine, "params": setting.params, "applied_by": setting.applied_by,
            "applied_from": setting.applied_from_id}})

    @extend_schema(parameters=[s.CompareQuerySerializer],
                   responses={200: s.ComparisonSerializer, **error_responses(400, 401, 404)},
                   description="Two backtests side by side, and b minus a.")
    @action(detail=False)
    def compare(self, request):
        query = s.CompareQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = {b.pk: b for b in self.get_queryset().filter(pk__in=[query.validated_data["a"], query.validated_data["b"]])}
        a, b = found.get(query.validated_data["a"]), found.get(query.validated_data["b"])
        if a is None or b is None:
            raise ApiError(404, "not_found", "Not found.")
        return Response({"a": s.BacktestSerializer(a).data, "b": s.BacktestSerializer(b).data,
                         "difference": difference(a, b)})
