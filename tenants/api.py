"""Base class of every tenant API view: the tenant is the caller's, queries are scoped."""

from __future__ import annotations

from rest_framework.views import APIView

from tenants.models import Tenant
from tenants.scoping import tenant_scope


def request_tenant(request) -> Tenant:
    return request.user.tenant


class TenantScopedMixin:
    """Runs the handler inside the caller's tenant scope, so even a query that forgets
    ``for_tenant`` sees only the caller's rows. Views read ``self.tenant``."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.tenant = request_tenant(request)
        self._scope = tenant_scope(self.tenant)
        self._scope.__enter__()

    def finalize_response(self, request, response, *args, **kwargs):
        scope = getattr(self, "_scope", None)
        if scope is not None:
            self._scope = None
            scope.__exit__(None, None, None)
        return super().finalize_response(request, response, *args, **kwargs)


class TenantAPIView(TenantScopedMixin, APIView):
    pass
