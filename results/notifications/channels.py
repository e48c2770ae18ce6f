"""Sending one notification through its channel. Each sender returns the HTTP status (or
None for e-mail) on success and raises DeliveryError (or a connection error) otherwise;
``results.notifications.delivery`` logs the attempt and decides about retries."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from results.notifications import crypto, destinations, payloads
from results.notifications.facts import IncidentFacts
from results.notifications.models import Channel, Notification


class DeliveryError(RuntimeError):
    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


def _checked(reply: destinations.Reply) -> int:
    if not 200 <= reply.status < 300:
        raise DeliveryError(f"HTTP {reply.status}: {reply.body[:200]}", reply.status)
    return reply.status


def send_alertmanager(channel: Channel, notification: Notification, facts: IncidentFacts) -> int | None:
    headers = {"Content-Type": "application/json"}
    credentials = crypto.decrypt(channel.secret_encrypted)
    if credentials:  # "user:password" for an Alertmanager behind basic auth
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    body = payloads.encode(payloads.alertmanager_alerts(channel.tenant.slug, facts))
    return _checked(destinations.post(channel.url.rstrip("/") + "/api/v2/alerts", body, headers))


def send_webhook(channel: Channel, notification: Notification, facts: IncidentFacts) -> int | None:
    key = str(notification.idempotency_key)
    content = payloads.slack_body(facts) if channel.slack_format else payloads.webhook_body(
        channel.tenant.slug, facts, key, notification.sequence)
    body = payloads.encode(content)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", payloads.IDEMPOTENCY_HEADER: key, payloads.TIMESTAMP_HEADER: timestamp}
    secret = crypto.decrypt(channel.secret_encrypted)
    if secret:
        headers[payloads.SIGNATURE_HEADER] = payloads.signature(secret, timestamp, body)
    return _checked(destinations.post(channel.url, body, headers))


def send_email(channel: Channel, notification: Notification, facts: IncidentFacts) -> int | None:
    subject, text = payloads.email_text(facts)
    message = EmailMessage(subject, text, settings.DEFAULT_FROM_EMAIL, list(channel.recipients),
                           headers={"X-Fleetwatch-Idempotency-Key": str(notification.idempotency_key)},
                           connection=get_connection(fail_silently=False))
    message.send()
    return None


SENDERS: dict[str, Callable[[Channel, Notification, IncidentFacts], int | None]] = {
    Channel.Kind.ALERTMANAGER: send_alertmanager,
    Channel.Kind.WEBHOOK: send_webhook,
    Channel.Kind.EMAIL: send_email,
}


def send(notification: Notification) -> int | None:
    channel = notification.channel
    return SENDERS[channel.kind](channel, notification, IncidentFacts.from_json(notification.facts))
