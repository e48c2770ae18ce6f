"""The tenant's audit trail of feedback, adjustments and applied backtests."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from results.models import AuditEntry


def record(tenant_id: int, action: str, subject: str, by: str, now: datetime | None = None, **detail) -> AuditEntry:
    return AuditEntry.objects.for_tenant(tenant_id).create(
        tenant_id=tenant_id, action=action, subject=subject, by=by, detail=detail, at=now or timezone.now()
    )
