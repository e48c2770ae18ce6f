"""Sending the outbox: at least once, in sequence order per channel and incident.

One worker at a time owns a (channel, incident) pair (a transaction-level advisory lock):
it takes the pair's first pending notification, sends it, and logs the attempt and the
outcome in the same transaction. A worker killed mid-send rolls back, so the notification
is still pending and is sent again, with the same idempotency key for the receiver to
drop the duplicate. A failure waits with exponential back-off, holding back the pair's
later notifications (order); after the last attempt it becomes a dead letter and the
next one goes out.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from results.notifications import channels
from results.notifications.models import DeliveryAttempt, Notification


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: base * 2**(attempts - 1), capped."""
    delay_ms = min(settings.FLEETWATCH_NOTIFY_RETRY_BASE_MS * 2 ** (attempts - 1), settings.FLEETWATCH_NOTIFY_RETRY_MAX_MS)
    return timedelta(milliseconds=delay_ms)


def _own_pair(channel_id: int, incident_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [f"notify:{channel_id}:{incident_id}"])
        return bool(cursor.fetchone()[0])


def attempt(notification: Notification, now: datetime) -> bool:
    """Send once; log the attempt and update the row (inside the caller's transaction)."""
    started = time.perf_counter()
    http_status: int | None = None
    error = ""
    try:
        http_status = channels.send(notification)
    except channels.DeliveryError as exc:
        http_status, error = exc.http_status, str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure of the receiver or the network is logged and retried
        error = f"{type(exc).__name__}: {exc}"
    ok = not error
    DeliveryAttempt.objects.create(tenant_id=notification.tenant_id, notification=notification, at=now, ok=ok,
                                   http_status=http_status, latency_ms=(time.perf_counter() - started) * 1000, error=error[:2000])
    notification.attempts += 1
    if ok:
        notification.status, notification.sent_at, notification.last_error = Notification.Status.SENT, timezone.now(), ""
    else:
        notification.last_error = error[:2000]
        if notification.attempts >= settings.FLEETWATCH_NOTIFY_MAX_ATTEMPTS:
            notification.status = Notification.Status.DEAD
        else:
            notification.next_attempt_at = now + backoff(notification.attempts)
    notification.save(update_fields=["attempts", "status", "sent_at", "last_error", "next_attempt_at"])
    return ok


def deliver_pair(channel_id: int, incident_id: int) -> float | None:
    """Send the pair's due notifications in order. Returns the seconds until its first
    notification is due again (after a failure), or None when nothing is left or another
    worker owns the pair."""
    while True:
        with transaction.atomic():
            if not _own_pair(channel_id, incident_id):
                return None
            head = (Notification.objects.filter(channel_id=channel_id, incident_id=incident_id, status=Notification.Status.PENDING)
                    .select_related("channel", "channel__tenant").order_by("sequence").first())
            if head is None:
                return None
            now = timezone.now()
            if head.next_attempt_at > now:  # waiting out its back-off; its retry is already scheduled
                return None
            if not attempt(head, now) and head.status == Notification.Status.PENDING:
                return (head.next_attempt_at - now).total_seconds()


def retry_by_hand(notification: Notification) -> None:
    """A dead letter (or any unsent notification) goes out again, with its own key."""
    notification.status, notification.attempts, notification.next_attempt_at = Notification.Status.PENDING, 0, timezone.now()
    notification.save(update_fields=["status", "attempts", "next_attempt_at"])
