"""The tenant scope the running code is in: one context variable.

``tenants.scoping`` sets it (``tenant_scope``, ``all_tenants``) and filters queries by
it; ``tenants.rls`` puts the database connection into the same state. Both read it
here, so the database side needs nothing of the ORM side.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    tenant_id: int | None  # None: all tenants (explicitly requested)
    reason: str = ""


current: ContextVar[Scope | None] = ContextVar("fleetwatch_tenant_scope", default=None)


def scoped_tenant_id() -> int | None:
    """The tenant whose rows the running code may see; None outside any tenant's scope
    (no scope at all, or ``all_tenants``)."""
    scope = current.get()
    return None if scope is None else scope.tenant_id
