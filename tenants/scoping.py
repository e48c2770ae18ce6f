"""The one mechanism that scopes tenant-owned rows, and it fails closed.

Every tenant-owned model uses ``TenantManager``. A query needs a tenant:
- ``Model.objects.for_tenant(tenant)``: explicit, works anywhere;
- inside ``with tenant_scope(tenant):`` plain ``Model.objects.filter(...)`` (and related
  managers such as ``cluster.nodes``) are filtered to that tenant;
- ``Model.objects.unscoped()`` or ``with all_tenants(reason)``: the named, explicit way to
  cross tenants (operators' admin, system tasks).
Anything else raises ``ScopeError`` instead of quietly returning every tenant's rows.

On PostgreSQL the database enforces the same scope (row-level security, ``tenants.rls``):
entering and leaving a scope switches the thread's connection between the tenant role
(with ``app.tenant_id`` set) and the login (operator) role.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.db import models

from tenants import rls
from tenants.scope_state import Scope, current


class ScopeError(RuntimeError):
    """A tenant-owned model was queried with no tenant in scope."""


def _tenant_id(tenant: Any) -> int:
    tenant_id = getattr(tenant, "pk", tenant)
    if not isinstance(tenant_id, int) or isinstance(tenant_id, bool):
        raise ScopeError(f"tenant: expected a Tenant or an integer id, got {tenant!r}")
    return tenant_id


@contextmanager
def tenant_scope(tenant: Any) -> Iterator[int]:
    """Run a block with one tenant in scope (always reset on exit)."""
    tenant_id = _tenant_id(tenant)
    token = current.set(Scope(tenant_id))
    try:
        rls.sync_connection()
        yield tenant_id
    finally:
        current.reset(token)
        rls.sync_connection(exiting=True)


@contextmanager
def all_tenants(reason: str) -> Iterator[None]:
    """Run a block that may read every tenant's rows; say why."""
    if not reason:
        raise ScopeError("all_tenants: a reason is required")
    token = current.set(Scope(None, reason))
    try:
        rls.sync_connection()
        yield
    finally:
        current.reset(token)
        rls.sync_connection(exiting=True)


def current_tenant_id() -> int | None:
    """The tenant in scope; None inside ``all_tenants``; raises with no scope at all."""
    scope = current.get()
    if scope is None:
        raise ScopeError("no tenant in scope")
    return scope.tenant_id


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Any) -> TenantQuerySet:
        return self.filter(tenant_id=_tenant_id(tenant))


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    def get_queryset(self) -> TenantQuerySet:
        scope = current.get()
        if scope is None:
            raise ScopeError(
                f"{self.model.__name__}: query with no tenant in scope; "
                "use .for_tenant(tenant), tenant_scope(tenant) or .unscoped()"
            )
        queryset = super().get_queryset()
        return queryset if scope.tenant_id is None else queryset.filter(tenant_id=scope.tenant_id)

    def for_tenant(self, tenant: Any) -> TenantQuerySet:
        tenant_id = _tenant_id(tenant)
        scope = current.get()
        if scope is not None and scope.tenant_id is not None and scope.tenant_id != tenant_id:
            raise ScopeError(f"{self.model.__name__}: tenant {tenant_id} requested inside tenant {scope.tenant_id}'s scope")
        return super().get_queryset().filter(tenant_id=tenant_id)

    def none(self) -> TenantQuerySet:
        """An empty queryset needs no tenant (schema generation asks for one)."""
        return super().get_queryset().none()

    def unscoped(self) -> TenantQuerySet:
        """Every tenant's rows: for operators and system tasks only."""
        return super().get_queryset()


class TenantOwned(models.Model):
    """Base of every tenant-owned model: the tenant key plus the scoped manager."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True


def tenant_owned_tables() -> list[str]:
    """Tables of every concrete tenant-owned model (from the model registry): the tables
    row-level security must cover (tests/security_rls checks each one)."""
    return sorted(
        {
            model._meta.db_table
            for model in apps.get_models()
            if issubclass(model, TenantOwned) and not model._meta.proxy and not model._meta.abstract
        }
    )
