"""Dashboard pages of the tenancy app: the tenant switcher and API keys.

Every dashboard view is wrapped in ``tenant_page``: anonymous users go to the login
page, users with no tenant get 404 (staff-only users go to the admin), and the view
runs inside the tenant scope the middleware opened (``request.tenant``).
"""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from tenants.middleware import SESSION_TENANT_KEY
from tenants.models import ApiKey, Membership


def tenant_page(view):
    """Login required; the request must carry a tenant (see TenantScopeMiddleware)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if getattr(request, "tenant", None) is None:
            if request.user.is_staff:
                return redirect("admin:index")
            raise Http404("no tenant")
        return view(request, *args, **kwargs)

    return wrapper


def is_owner(request) -> bool:
    return request.membership is not None and request.membership.role == Membership.Role.OWNER


@require_POST
@tenant_page
def switch_tenant(request):
    """Choose the tenant among the user's memberships (anything else: 404)."""
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        raise Http404("no such tenant") from None
    if not any(m.tenant_id == tenant_id for m in request.memberships):
        raise Http404("no such tenant")
    request.session[SESSION_TENANT_KEY] = tenant_id
    return redirect("dashboard:overview")


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True, widget=forms.TextInput(attrs={"placeholder": "e.g. prod collector"}))
    role = forms.ChoiceField(choices=ApiKey.Role.choices, initial=ApiKey.Role.READ_WRITE, required=False,
                             help_text="read only: the key may only read.")


def _keys_page(request, *, form=None, new_key=None, new_key_row=None, status=200):
    keys = ApiKey.objects.for_tenant(request.tenant).select_related("created_by").order_by("-created_at", "-pk")
    return render(
        request,
        "dashboard/api_keys.html",
        {
            "keys": keys,
            "form": form or ApiKeyForm(),
            "can_manage": is_owner(request),
            "new_key": new_key,
            "new_key_row": new_key_row,
            "nav": "api-keys",
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@tenant_page
def api_keys(request):
    """List keys; owners create one with POST. The plain key is in this response only."""
    if request.method == "GET":
        return _keys_page(request)
    if not is_owner(request):
        raise PermissionDenied("only owners may create API keys")
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, form=form, status=400)
    row, key = ApiKey.issue(request.tenant, form.cleaned_data["name"], created_by=request.user,
                            role=form.cleaned_data["role"] or ApiKey.Role.READ_WRITE)
    response = _keys_page(request, new_key=key, new_key_row=row)
    response["Cache-Control"] = "no-store"  # the one page that shows the key
    return response


@require_POST
@tenant_page
def revoke_api_key(request, pk: int):
    if not is_owner(request):
        raise PermissionDenied("only owners may revoke API keys")
    api_key = get_object_or_404(ApiKey.objects.for_tenant(request.tenant), pk=pk)
    api_key.revoke()
    messages.success(request, f"Key {api_key.KEY_PREFIX}{api_key.prefix}… ({api_key.name}) revoked.")
    return redirect("api-keys")

