"""``/api/v1/incidents``: list (open first), detail with members and timeline, the
lifecycle actions and the origin hint. Acting needs a read-write API key
(``tenants.api.KeyRolePermission``); a state that does not allow the action answers 409."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Value, When
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.response import Response

from config.errors import ApiError
from config.schema import error_responses
from results.feedback.api import IncidentFeedbackMixin
from results.filters import IncidentFilter
from results.incidents import lifecycle
from results.incidents import origin as origin_hint
from results.incidents import serializers as s
from results.models import Incident
from tenants.api import TenantReadOnlyViewSet, request_principal
from tenants.auth import api_key_label
from tenants.models import Node

OPEN_FIRST = Case(When(state=Incident.State.RESOLVED, then=Value(1)), default=Value(0), output_field=IntegerField())
ACTION = extend_schema(request=None, responses={200: s.IncidentDetailSerializer, **error_responses(401, 403, 404, 409)})


@extend_schema_view(
    list=extend_schema(responses={200: s.IncidentSerializer(many=True), **error_responses(400, 401)},
                       description="Incidents, open and acknowledged first, then the newest first."),
    retrieve=extend_schema(responses={200: s.IncidentDetailSerializer, **error_responses(400, 401, 404)}),
    acknowledge=ACTION, resolve=ACTION, reopen=ACTION,
)
class IncidentViewSet(IncidentFeedbackMixin, TenantReadOnlyViewSet):
    model = Incident
    filterset_class = IncidentFilter
    throttle_scope = "api"  # ``origin`` counts against the analysis rate instead (config.throttling)

    def get_serializer_class(self):
        return s.IncidentSerializer if self.action == "list" else s.IncidentDetailSerializer

    def get_serializer_context(self):
        if getattr(self, "swagger_fake_view", False):
            return super().get_serializer_context()
        return {**super().get_serializer_context(),
                "node_names": dict(Node.objects.for_tenant(self.tenant).values_list("pk", "name"))}

    def refine_queryset(self, queryset):
        return queryset.select_related("cluster", "node").annotate(resolved=OPEN_FIRST).order_by(
            "resolved", "-started_at", "-pk")

    def _act(self, change) -> Response:
        incident = self.get_object()
        try:
            incident = change(incident, f"api key {api_key_label(request_principal(self.request).api_key)}")
        except lifecycle.TransitionError as exc:
            raise ApiError(409, "conflict", str(exc), [{"field": "state", "reason": str(exc).partition(": ")[2]}]) from None
        return Response(self.get_serializer(incident).data)

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Someone is on it (the key's label is recorded)."""
        return self._act(lifecycle.acknowledge)

    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Resolve an open or acknowledged incident by hand."""
        return self._act(lifecycle.resolve)

    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """Open a resolved incident again."""
        return self._act(lifecycle.reopen)

    @extend_schema(
        responses={200: s.IncidentOriginSerializer, **error_responses(400, 401, 404)},
        description="The incident's root-cause hint: which node and metric moved first, what moved together (groups "
        "inside the incident), one sentence and a confidence; origin null when the evidence does not single one out. "
        "Stored with the incident, computed again when the incident changed; its own rate limit "
        "(FLEETWATCH_ANALYSIS_RATE).",
    )
    @action(detail=True, throttle_scope="analysis")
    def origin(self, request, pk=None):
        return Response(origin_hint.origin(self.tenant, self.get_object()))
