"""The tenant's read API over runs, anomalies, scores, rankings and series."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from analytics.models import Series
from analytics.store.read import get_metric_series
from config.errors import ApiError
from config.schema import error_responses
from results import rootcause
from results import serializers as s
from results.feedback.api import AnomalyFeedbackMixin
from results.filters import AnomalyFilter, RunFilter, ScoreFilter, SeriesFilter
from results.models import AggregatedScore, Anomaly, DetectionRun
from results.ranking import ranking_changes, top_n
from results.tasks import request_run
from tenants.api import TenantAPIView, TenantGenericViewSet, TenantReadOnlyViewSet

MAX_POINTS_RANGE = timedelta(days=31)


class DetectView(TenantAPIView):
    @extend_schema(
        operation_id="detect",
        request=s.DetectRequestSerializer,
        responses={201: s.DetectionRunSerializer, 202: s.DetectionRunSerializer, **error_responses(400, 401)},
        description="Start a detection run over a range (default: incremental, from each series' watermark). "
                    "202 with the run while it is queued or running (on the workers); 201 with the finished run "
                    "when it ran within the request (the embedded default, without a broker).",
    )
    def post(self, request):
        query = s.DetectRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        run = request_run(self.tenant.pk, DetectionRun.Trigger.MANUAL, query.validated_data.get("start"), query.validated_data.get("end"))
        run.refresh_from_db()  # in-process tasks have finished it by now: say so
        finished = run.status in DetectionRun.FINISHED
        return Response(s.DetectionRunSerializer(run).data, status=status.HTTP_201_CREATED if finished else status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(responses={200: s.DetectionRunSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: s.DetectionRunSerializer, **error_responses(400, 401, 404)}),
)
class RunViewSet(TenantReadOnlyViewSet):
    model = DetectionRun
    serializer_class = s.DetectionRunSerializer
    filterset_class = RunFilter

    def refine_queryset(self, queryset):
        return queryset.order_by("-created_at")


@extend_schema_view(
    list=extend_schema(responses={200: s.AnomalySerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: s.AnomalyDetailSerializer, **error_responses(400, 401, 404)}),
)
class AnomalyViewSet(AnomalyFeedbackMixin, TenantReadOnlyViewSet):
    model = Anomaly
    filterset_class = AnomalyFilter
    throttle_scope = "api"  # ``related`` counts against the analysis rate instead (config.throttling)

    def get_serializer_class(self):
        return s.AnomalyDetailSerializer if self.action == "retrieve" else s.AnomalySerializer

    def refine_queryset(self, queryset):
        return queryset.select_related("cluster", "node").order_by("-window_start", "-score", "id")

    @extend_schema(responses={200: s.ExplanationSerializer, **error_responses(400, 401, 404)})
    @action(detail=True)
    def explain(self, request, pk=None):
        anomaly = self.get_object()
        return Response({"id": anomaly.pk, "text": anomaly.text, "explanation": anomaly.explanation})

    @extend_schema(
        responses={200: s.RelatedSerializer, **error_responses(400, 401, 404)},
        description="The series of the anomaly's cluster that moved together with it (from 1 h before to 1 h after "
        "its window, at most 6 h), each with its onset and lag, the group's likely origin and one sentence. Computed "
        "on request over at most FLEETWATCH_RCA_MAX_SERIES series; its own rate limit (FLEETWATCH_ANALYSIS_RATE).",
    )
    @action(detail=True, throttle_scope="analysis")
    def related(self, request, pk=None):
        return Response(rootcause.related(self.tenant, self.get_object()))


@extend_schema_view(
    list=extend_schema(responses={200: s.AggregatedScoreSerializer(many=True), **error_responses(400, 401)}),
)
class ScoreViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    model = AggregatedScore
    serializer_class = s.AggregatedScoreSerializer
    filterset_class = ScoreFilter

    def refine_queryset(self, queryset):
        return queryset.select_related("cluster", "node").order_by("-period_end", "level", "-score")


class RankingView(TenantAPIView):
    @extend_schema(
        operation_id="rankings",
        parameters=[s.RankingQuerySerializer],
        responses={200: s.RankingEntrySerializer(many=True), **error_responses(400, 401)},
        description="Top-N nodes or clusters of the latest period (or the latest ending at or before `at`), "
        "worst first; ties broken by anomaly count, then name.",
    )
    def get(self, request):
        query = s.RankingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        level, strategy, top = (query.validated_data[k] for k in ("level", "strategy", "top"))
        ranked = top_n(AggregatedScore.objects.for_tenant(self.tenant), level, strategy, top, query.validated_data.get("at"))
        return Response(s.RankingEntrySerializer(ranked, many=True).data)


class RankingChangesView(TenantAPIView):
    @extend_schema(
        operation_id="ranking_changes",
        parameters=[s.RankingChangesQuerySerializer],
        responses={200: s.RankingChangesSerializer(many=True), **error_responses(400, 401)},
        description="For each of the newest `periods` periods (ending at or before `at`), newest first: the nodes or "
        "clusters that entered, left, climbed or fell in the Top-N since the period before, and the metric that drove "
        "each (\"node-04 up 6 places: network_in +30 sigma\"). Both rankings are what `GET rankings` gives for those "
        "periods. Empty until two periods exist.",
    )
    def get(self, request):
        query = s.RankingChangesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        level, strategy, top, periods = (query.validated_data[k] for k in ("level", "strategy", "top", "periods"))
        changes = ranking_changes(self.tenant, level, strategy, top, query.validated_data.get("at"), periods)
        return Response(s.RankingChangesSerializer(changes, many=True).data)


@extend_schema_view(
    list=extend_schema(responses={200: s.SeriesSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: s.SeriesSerializer, **error_responses(400, 401, 404)}),
)
class SeriesViewSet(TenantReadOnlyViewSet):
    model = Series
    serializer_class = s.SeriesSerializer
    filterset_class = SeriesFilter

    def refine_queryset(self, queryset):
        return queryset.select_related("cluster", "node").order_by("cluster__name", "node__name", "metric_name")

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, description="RFC 3339; default: 1 day before `to`."),
            OpenApiParameter("to", str, description="RFC 3339; default: now."),
            OpenApiParameter("resolution", str, enum=["5m", "1h"], description="Roll-up buckets (mean)."),
        ],
        responses={200: s.PointsSerializer, **error_responses(400, 401, 404)},
    )
    @action(detail=True)
    def points(self, request, pk=None):
        series = self.get_object()
        query = s.PointsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        end = query.validated_data.get("to") or timezone.now()
        start = query.validated_data.get("from_") or end - timedelta(days=1)
        if end - start > MAX_POINTS_RANGE:
            raise ApiError(400, "range_too_large", f"to: the range may span at most {MAX_POINTS_RANGE.days} days",
                           [{"field": "to", "reason": f"more than {MAX_POINTS_RANGE.days} days after from"}])
        resolution = query.validated_data.get("resolution")
        data = get_metric_series(self.tenant.pk, series.cluster_id, series.node_id, series.metric_name, start, end, resolution)
        points = [[ts.isoformat(), float(v)] for ts, v in zip(data.timestamps, data.values, strict=True)]
        return Response({"series": series.pk, "resolution": resolution, "points": points})
