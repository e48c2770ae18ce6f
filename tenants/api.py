"""Base class of every tenant API view: the tenant is the caller's, queries are scoped."""

from __future__ import annotations

from rest_framework import mixins, viewsets
from rest_framework.views import APIView

from config.throttling import TenantRateThrottle
from tenants import billing
from tenants.models import Tenant
from tenants.scoping import tenant_scope


def request_tenant(request) -> Tenant:
    return request.user.tenant


class TenantScopedMixin:
    """Runs the handler inside the caller's tenant scope, so even a query that forgets
    ``for_tenant`` sees only the caller's rows. Views read ``self.tenant``.
    Requests are rate-limited per tenant (``config.throttling``)."""

    throttle_classes = (TenantRateThrottle,)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.tenant = request_tenant(request)
        self._scope = tenant_scope(self.tenant)
        self._scope.__enter__()

    def _leave_scope(self) -> None:
        scope = getattr(self, "_scope", None)
        if scope is not None:
            self._scope = None
            scope.__exit__(None, None, None)

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(self, "_scope", None) is not None:
            billing.meter_api_request(self.tenant.pk)  # usage: one upsert per authenticated request, in its scope
        self._leave_scope()
        return super().finalize_response(request, response, *args, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:  # an unhandled exception skips finalize_response: never leak the scope
            self._leave_scope()


class TenantAPIView(TenantScopedMixin, APIView):
    pass


class TenantGenericViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    """A viewset over one tenant-owned model. The queryset is always
    ``model.objects.for_tenant(caller)``; subclasses refine it in ``refine_queryset``
    and may not replace ``get_queryset`` (so no view can forget the scope)."""

    model: type

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: override refine_queryset(), not get_queryset()")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return self.model.objects.none()
        return self.refine_queryset(self.model.objects.for_tenant(self.tenant))

    def refine_queryset(self, queryset):
        return queryset


class TenantReadOnlyViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, TenantGenericViewSet):
    pass
