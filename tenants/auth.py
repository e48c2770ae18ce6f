"""API key authentication: the tenant comes from the key and from nothing else."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from tenants.models import ApiKey, Tenant

LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most once a minute


class ApiKeyPrincipal:
    """``request.user`` for API-key requests: the tenant acting through one key."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.tenant: Tenant = api_key.tenant

    def __str__(self) -> str:
        return f"api key {api_key_label(self.api_key)}"


def api_key_label(api_key: ApiKey) -> str:
    return f"{ApiKey.KEY_PREFIX}{api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not key.strip():  # schemes are case-insensitive (RFC 9110)
            raise exceptions.AuthenticationFailed("Authorization: expected 'Bearer <api key>'")
        key = key.strip()
        prefix = ApiKey.parse_prefix(key)
        api_key = (
            ApiKey.objects.unscoped().select_related("tenant", "tenant__plan").filter(prefix=prefix).first()
            if prefix
            else None
        )
        if api_key is None or not api_key.matches(key) or not api_key.is_active or not api_key.tenant.is_active:
            raise exceptions.AuthenticationFailed("Authorization: invalid or revoked API key")
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.unscoped().filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword
