"""Tenant scope per request.

- ``/admin/``: staff work across tenants, by name (the operators' console).
- ``/api/``: untouched; the API resolves the tenant from the API key and scopes itself.
- everything else (the tenant dashboard): a logged-in user gets ``request.tenant`` from
  their memberships (the one chosen in the session, else the first by name) and the
  request runs inside ``tenant_scope(request.tenant)``. A user with no membership gets
  ``request.tenant = None``; the dashboard views answer 404 (staff go to the admin).
"""

from tenants.models import Membership
from tenants.scoping import all_tenants, tenant_scope

SESSION_TENANT_KEY = "fleetwatch_tenant_id"
UNTOUCHED_PREFIXES = ("/api/", "/static/")


def memberships_of(user) -> list:
    """The user's memberships in active tenants, by tenant name (one query).

    Crossing tenants by user is the one legitimate unscoped read here: a login has to
    find its tenants before any is in scope (Membership is indexed by user for this)."""
    return list(
        Membership.objects.unscoped()
        .filter(user_id=user.pk, tenant__is_active=True)
        .select_related("tenant")
        .order_by("tenant__name", "tenant_id")
    )


def choose_membership(memberships: list, chosen_tenant_id):
    for membership in memberships:
        if membership.tenant_id == chosen_tenant_id:
            return membership
    return memberships[0] if memberships else None


class TenantScopeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        path = request.path
        if path.startswith("/admin/"):
            if user is not None and user.is_active and user.is_staff:
                with all_tenants("operators' console"):
                    return self.get_response(request)
            return self.get_response(request)
        if path.startswith(UNTOUCHED_PREFIXES):
            return self.get_response(request)

        request.tenant = None
        request.membership = None
        request.memberships = []
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        request.memberships = memberships_of(user)
        membership = choose_membership(request.memberships, request.session.get(SESSION_TENANT_KEY))
        if membership is None:
            return self.get_response(request)
        request.membership = membership
        request.tenant = membership.tenant
        with tenant_scope(request.tenant):
            return self.get_response(request)
