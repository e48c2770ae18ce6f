"""The feedback API: label an anomaly (``/anomalies/{id}/feedback``), the tenant's labels
(``/feedback``: read, change, remove, export as labelled windows), its adjustments
(``/adjustments``: read, undo, confirm) and its audit trail (``/audit``).

Every API key acts for its tenant: labels and adjustments are the tenant's, and the
audit names the key."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from config.errors import ApiError
from config.schema import error_responses
from results.feedback import labels, rules
from results.feedback import serializers as s
from results.feedback.export import labelled_windows
from results.models import Adjustment, AuditEntry, Feedback, IncidentMember
from tenants.api import TenantGenericViewSet, TenantReadOnlyViewSet


def actor(request) -> str:
    """Who is acting, for the audit: the API key or the dashboard user."""
    return str(request.user) if not hasattr(request.user, "get_username") else request.user.get_username()


def labelled_response(result: labels.Labelled) -> Response:
    body = s.LabelledSerializer({"feedback": result.feedback, "adjustment": result.adjustment},
                                context={"now": timezone.now()}).data
    return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class AnomalyFeedbackMixin(TenantGenericViewSet):
    """``/anomalies/{id}/feedback`` on the anomaly viewset."""

    @extend_schema(methods=["GET"], responses={200: s.FeedbackSerializer, **error_responses(400, 401, 404)},
                   description="The anomaly's label (404 if it has none).")
    @extend_schema(methods=["POST"], request=s.LabelRequestSerializer,
                   responses={200: s.LabelledSerializer, 201: s.LabelledSerializer, **error_responses(400, 401, 404)},
                   description="Label the anomaly (or change its label): real problem, false alarm or expected. "
                   "Repeated false alarms on a series raise its alarm threshold; expected labels at the same time of "
                   "day on a node become a recurring exception (the adjustment made, if any, is in the answer).")
    @action(detail=True, methods=["get", "post"])
    def feedback(self, request, pk=None):
        anomaly = self.get_object()
        if request.method == "GET":
            row = Feedback.objects.for_tenant(self.tenant).filter(anomaly=anomaly).first()
            if row is None:
                raise ApiError(404, "not_found", "the anomaly has no label")
            return Response(s.FeedbackSerializer(row).data)
        query = s.LabelRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        return labelled_response(labels.label(self.tenant.pk, anomaly, query.validated_data["verdict"],
                                              query.validated_data["comment"], actor(request)))


class IncidentFeedbackMixin(TenantGenericViewSet):
    """``/incidents/{id}/feedback`` on the incident viewset: labelling an incident labels
    each of its member anomalies."""

    @extend_schema(methods=["GET"], responses={200: s.FeedbackSerializer(many=True), **error_responses(400, 401, 404)},
                   description="The labels of the incident's member anomalies.")
    @extend_schema(methods=["POST"], request=s.LabelRequestSerializer,
                   responses={200: s.LabelledSerializer(many=True), **error_responses(400, 401, 404)},
                   description="Label every member anomaly of the incident (each may cause an adjustment).")
    @action(detail=True, methods=["get", "post"], url_path="feedback", url_name="feedback")
    def incident_feedback(self, request, pk=None):
        incident = self.get_object()
        if request.method == "GET":
            members = IncidentMember.objects.for_tenant(self.tenant).filter(incident=incident).values("anomaly_id")
            rows = Feedback.objects.for_tenant(self.tenant).filter(anomaly__in=members).order_by("window_start", "pk")
            return Response(s.FeedbackSerializer(rows, many=True).data)
        query = s.LabelRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        done = labels.label_incident(self.tenant.pk, incident, query.validated_data["verdict"],
                                     query.validated_data["comment"], actor(request))
        body = s.LabelledSerializer([{"feedback": d.feedback, "adjustment": d.adjustment} for d in done], many=True,
                                    context={"now": timezone.now()}).data
        return Response(body)


@extend_schema_view(
    list=extend_schema(responses={200: s.FeedbackSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: s.FeedbackSerializer, **error_responses(400, 401, 404)}),
    partial_update=extend_schema(request=s.LabelChangeSerializer,
                                 responses={200: s.LabelledSerializer, **error_responses(400, 401, 404)}),
    destroy=extend_schema(responses={204: None, **error_responses(401, 404)}),
)
class FeedbackViewSet(mixins.DestroyModelMixin, TenantReadOnlyViewSet):
    model = Feedback
    serializer_class = s.FeedbackSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def refine_queryset(self, queryset):
        return queryset.order_by("-updated_at", "-pk")

    def partial_update(self, request, pk=None):
        row = self.get_object()
        change = s.LabelChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        if row.anomaly is None:
            raise ApiError(400, "anomaly_gone", "verdict: the anomaly was replaced; label the anomaly that replaced it",
                           [{"field": "verdict", "reason": "the labelled anomaly no longer exists"}])
        verdict = change.validated_data.get("verdict", row.verdict)
        comment = change.validated_data.get("comment", row.comment)
        return labelled_response(labels.label(self.tenant.pk, row.anomaly, verdict, comment, actor(request)))

    def perform_destroy(self, instance):
        labels.remove(self.tenant.pk, instance, actor(self.request))

    @extend_schema(responses={200: s.LabelledWindowsSerializer, **error_responses(401)},
                   description="The labelled anomalies as labelled windows of the tenant's series, in the layout the "
                   "evaluation harness reads (labels/combined_windows.json).")
    @action(detail=False)
    def export(self, request):
        return Response(labelled_windows(self.tenant.pk))


@extend_schema_view(
    list=extend_schema(responses={200: s.AdjustmentSerializer(many=True), **error_responses(400, 401)}),
    retrieve=extend_schema(responses={200: s.AdjustmentSerializer, **error_responses(400, 401, 404)}),
)
class AdjustmentViewSet(TenantReadOnlyViewSet):
    model = Adjustment
    serializer_class = s.AdjustmentSerializer

    def refine_queryset(self, queryset):
        return queryset.order_by("-created_at", "-pk")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def _answer(self, adjustment: Adjustment) -> Response:
        return Response(self.get_serializer(adjustment).data)

    @extend_schema(request=None, responses={200: s.AdjustmentSerializer, **error_responses(401, 404)},
                   description="Undo the adjustment: the next run no longer uses it (detect a past range to re-evaluate it).")
    @action(detail=True, methods=["post"])
    def undo(self, request, pk=None):
        return self._answer(rules.undo(self.tenant.pk, self.get_object(), actor(request)))

    @extend_schema(request=None, responses={200: s.AdjustmentSerializer, **error_responses(401, 404)},
                   description="Keep the adjustment: it no longer expires.")
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._answer(rules.confirm(self.tenant.pk, self.get_object(), actor(request)))


@extend_schema_view(list=extend_schema(responses={200: s.AuditEntrySerializer(many=True), **error_responses(400, 401)}))
class AuditViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    model = AuditEntry
    serializer_class = s.AuditEntrySerializer

    def refine_queryset(self, queryset):
        return queryset.order_by("-at", "-pk")
