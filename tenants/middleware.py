"""Scope for the operators' console: staff in the admin work across tenants, by name."""

from tenants.scoping import all_tenants


class TenantScopeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if request.path.startswith("/admin/") and user is not None and user.is_active and user.is_staff:
            with all_tenants("operators' console"):
                return self.get_response(request)
        return self.get_response(request)
