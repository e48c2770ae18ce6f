"""/api/v1/channels, /alert-rules, /silences and /notifications (the delivery log)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from config.schema import error_responses
from results.notifications import delivery, outbox
from results.notifications import serializers as s
from results.notifications.facts import IncidentFacts
from results.notifications.models import AlertRule, Channel, Notification, Silence
from tenants.api import TenantGenericViewSet, TenantReadOnlyViewSet

CRUD = (mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
        mixins.DestroyModelMixin)


def documented(serializer: type, *, writable: bool = True) -> Any:
    """The operations' answers, errors included (the schema fuzz holds us to them)."""
    views = {
        "list": extend_schema(responses={200: serializer(many=True), **error_responses(400, 401)}),
        "retrieve": extend_schema(responses={200: serializer, **error_responses(400, 401, 404)}),
    }
    if writable:
        views.update(
            create=extend_schema(responses={201: serializer, **error_responses(400, 401)}),
            update=extend_schema(responses={200: serializer, **error_responses(400, 401, 404)}),
            partial_update=extend_schema(responses={200: serializer, **error_responses(400, 401, 404)}),
            destroy=extend_schema(responses={204: None, **error_responses(401, 404)}),
        )
    return extend_schema_view(**views)


class TenantCrudViewSet(*CRUD, TenantGenericViewSet):  # type: ignore[misc]
    """Create, read, update (PUT, PATCH) and delete the caller's own rows."""

    parser_classes = [JSONParser]
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "tenant": getattr(self, "tenant", None)}

    def perform_create(self, serializer: Any) -> None:
        serializer.save(tenant=self.tenant)

    def refine_queryset(self, queryset: Any) -> Any:
        return queryset.order_by("pk")


@documented(s.ChannelSerializer)
class ChannelViewSet(TenantCrudViewSet):
    model = Channel
    serializer_class = s.ChannelSerializer

    @extend_schema(request=None, responses={202: s.NotificationSerializer, **error_responses(401, 404)})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: Any = None) -> Response:
        """Send a test notification through this channel (delivered like any other; see it in the log)."""
        channel = self.get_object()
        now = timezone.now()
        facts = IncidentFacts(incident_id=outbox.TEST_INCIDENT_ID, event="test", cluster="test-cluster", node="test-node",
                              severity="info", peak_score=1.0, started_at=now,
                              summary=f"Test notification from Fleetwatch to {channel.name}",
                              explanation="Sent on request to check the channel.")
        with transaction.atomic():
            notification = outbox.add(self.tenant, channel, facts)
        return Response(s.NotificationSerializer(notification).data, status=status.HTTP_202_ACCEPTED)


@documented(s.AlertRuleSerializer)
class AlertRuleViewSet(TenantCrudViewSet):
    model = AlertRule
    serializer_class = s.AlertRuleSerializer

    def refine_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("channels").order_by("pk")


@documented(s.SilenceSerializer)
class SilenceViewSet(TenantCrudViewSet):
    model = Silence
    serializer_class = s.SilenceSerializer

    def perform_create(self, serializer: Any) -> None:
        serializer.save(tenant=self.tenant, created_by=str(self.request.user)[:200])


@documented(s.NotificationSerializer, writable=False)
class NotificationViewSet(TenantReadOnlyViewSet):
    """The delivery log, newest first; each with its attempts (status, latency, error)."""

    model = Notification
    serializer_class = s.NotificationSerializer

    def refine_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("attempt_log").order_by("-created_at", "-pk")

    @extend_schema(request=None, responses={202: s.NotificationSerializer, **error_responses(401, 404)})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: Any = None) -> Response:
        """Send a dead letter (or any unsent notification) again, now."""
        notification = self.get_object()
        with transaction.atomic():
            delivery.retry_by_hand(notification)
            outbox.enqueue_after_commit(self.tenant.pk, notification.channel_id, notification.incident_id)
        return Response(s.NotificationSerializer(notification).data, status=status.HTTP_202_ACCEPTED)
