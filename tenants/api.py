"""Base class of every tenant API view: the tenant is the caller's, queries are scoped."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework import exceptions, mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.throttling import TenantRateThrottle
from tenants import billing
from tenants.auth import ApiKeyPrincipal
from tenants.models import Tenant
from tenants.scoping import TenantOwned, tenant_scope


def request_tenant(request: Request) -> Tenant:
    """The tenant of the request's API key: the API knows no other way to a tenant."""
    principal = request.user
    if not isinstance(principal, ApiKeyPrincipal):
        raise exceptions.NotAuthenticated()
    return principal.tenant


class TenantAPIView(APIView):
    """Runs the handler inside the caller's tenant scope, so even a query that forgets
    ``for_tenant`` sees only the caller's rows. Views read ``self.tenant``.
    Requests are rate-limited per tenant (``config.throttling``)."""

    throttle_classes = (TenantRateThrottle,)
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
