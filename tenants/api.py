"""Base class of every tenant API view (the tenant is the caller's, queries are scoped),
and the tenant's own settings: its WEIGHTED aggregation weights."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, permissions, serializers, viewsets
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import ApiError
from config.schema import error_responses
from config.throttling import TenantRateThrottle
from tenants import billing
from tenants.auth import ApiKeyPrincipal
from tenants.models import ApiKey, Tenant
from tenants.scoping import TenantOwned, tenant_scope
from tenants.weights import FIELDS as WEIGHT_FIELDS
from tenants.weights import check_weights


class KeyRolePermission(permissions.BasePermission):
    """A read-only API key may only read: any other method answers 403, before the view
    runs (so nothing is stored). Every tenant API view has it (``TenantAPIView``)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if request.method in permissions.SAFE_METHODS or not isinstance(principal, ApiKeyPrincipal):
            return True
        if principal.api_key.role == ApiKey.Role.READ_ONLY:
            raise ApiError(403, "read_only_key", f"Authorization: this API key is read-only; {request.method} needs a "
                           "read-write key", [{"field": "Authorization", "reason": "read-only API key"}])
        return True


def request_principal(request: Request) -> ApiKeyPrincipal:
    """The caller: one API key of one tenant (the API knows no other caller)."""
    principal = request.user
    if not isinstance(principal, ApiKeyPrincipal):
        raise exceptions.NotAuthenticated()
    return principal


def request_tenant(request: Request) -> Tenant:
    """The tenant of the request's API key: the API knows no other way to a tenant."""
    return request_principal(request).tenant


class TenantAPIView(APIView):
    """Runs the handler inside the caller's tenant scope, so even a query that forgets
    ``for_tenant`` sees only the caller's rows. Views read ``self.tenant``.
    Requests are rate-limited per tenant (``config.throttling``)."""

    throttle_classes = (TenantRateThrottle,)
    permission_classes = (permissions.IsAuthenticated, KeyRolePermission)
    tenant: Tenant
    _scope: AbstractContextManager[int] | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.tenant = request_tenant(request)
        self._scope = tenant_scope(self.tenant)
        self._scope.__enter__()

    def _leave_scope(self) -> None:
        scope = self._scope
        if scope is not None:
            self._scope = None
            scope.__exit__(None, None, None)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if self._scope is not None:
            billing.meter_api_request(self.tenant.pk)  # usage: one upsert per authenticated request, in its scope
        self._leave_scope()
        return super().finalize_response(request, response, *args, **kwargs)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:  # an unhandled exception skips finalize_response: never leak the scope
            self._leave_scope()


class TenantGenericViewSet(TenantAPIView, viewsets.GenericViewSet):
    """A viewset over one tenant-owned model. The queryset is always
    ``model.objects.for_tenant(caller)``; subclasses refine it in ``refine_queryset``
    and may not replace ``get_queryset`` (so no view can forget the scope)."""

    model: type[TenantOwned]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: override refine_queryset(), not get_queryset()")

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return self.model.objects.none()
        return self.refine_queryset(self.model.objects.for_tenant(self.tenant))

    def refine_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset


class TenantReadOnlyViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, TenantGenericViewSet):
    pass


class WeightsSerializer(serializers.Serializer):
    """Each field replaces that level's weights; leave a field out to keep it."""

    metric_weights = serializers.JSONField(required=False, help_text='By metric name, e.g. {"cpu_usage": 2}; {}: the defaults.')
    node_weights = serializers.JSONField(required=False, help_text='By "cluster/node", e.g. {"prod/db-1": 3}.')
    cluster_weights = serializers.JSONField(required=False, help_text='By cluster name, e.g. {"prod": 2}.')

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problems = {}
        for name, value in attrs.items():
            try:
                attrs[name] = check_weights(name, value)
            except ValueError as exc:
                problems[name] = str(exc)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class WeightsView(TenantAPIView):
    """The tenant's weights for the WEIGHTED aggregation (``tenants.weights``); the next
    detection run uses them."""

    parser_classes = [JSONParser]

    def weights(self) -> dict[str, Any]:
        return {name: getattr(self.tenant, name) for name in WEIGHT_FIELDS}

    @extend_schema(operation_id="weights_retrieve", responses={200: WeightsSerializer, **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response(self.weights())

    @extend_schema(operation_id="weights_update", request=WeightsSerializer,
                   responses={200: WeightsSerializer, **error_responses(400, 401)})
    def patch(self, request: Request) -> Response:
        update = WeightsSerializer(data=request.data)
        update.is_valid(raise_exception=True)
        for name, value in update.validated_data.items():
            setattr(self.tenant, name, value)
        self.tenant.save(update_fields=list(update.validated_data))
        return Response(self.weights())
