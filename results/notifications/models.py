"""Notification rows: rules, channels, silences, the outbox and its delivery log."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwned


def _tenant_fk() -> models.ForeignKey:
    # Every index below starts with the tenant, so the foreign key's own index is redundant.
    return models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)

class Channel(TenantOwned):
    class Kind(models.TextChoices):
        ALERTMANAGER = "alertmanager"
        WEBHOOK = "webhook"
        EMAIL = "email"

    tenant = _tenant_fk()
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    url = models.URLField(max_length=500, blank=True, help_text="Alertmanager's base URL or the webhook's URL.")
    recipients = models.JSONField(default=list, blank=True, help_text="E-mail addresses (e-mail channels).")
    slack_format = models.BooleanField(default=False, help_text="Webhook: send a Slack-compatible payload.")
    # Fernet token (results.notifications.crypto): the webhook's signing key or
    # Alertmanager's basic-auth "user:password"; never shown after creation.
    secret_encrypted = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "name"], name="channel_tenant_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

class AlertRule(TenantOwned):
    tenant = _tenant_fk()
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    min_peak_score = models.FloatField(default=0.0)
    min_duration_seconds = models.PositiveIntegerField(default=0)
    clusters = models.JSONField(default=list, blank=True, help_text="Globs; empty: every cluster.")
    nodes = models.JSONField(default=list, blank=True, help_text="Globs; empty: every node.")
    metrics = models.JSONField(default=list, blank=True, help_text="Globs; empty: every metric.")
    channels = models.ManyToManyField(Channel, related_name="rules", blank=True)
    renotify_minutes = models.PositiveIntegerField(default=0, help_text="Remind every so many minutes while open; 0: never.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "name"], name="alertrule_tenant_name")]

    def __str__(self) -> str:
        return self.name

class Silence(TenantOwned):
    tenant = _tenant_fk()
    matchers = models.JSONField(help_text='Label -> glob, labels cluster, node, metric, severity, e.g. {"cluster": "prod-*"}.')
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "ends_at"], name="silence_tenant_ends")]

    def __str__(self) -> str:
        return f"silence {self.matchers} {self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%H:%M}"

class Notification(TenantOwned):
    """One message owed to one channel about one incident event (the outbox row).
    Sent in ``sequence`` order per channel and incident."""

    class Status(models.TextChoices):
        PENDING = "pending"  # due at next_attempt_at
        SENT = "sent"
        DEAD = "dead"  # gave up after the last attempt: retry by hand
        SILENCED = "silenced"  # recorded, held back by a silence while it lasts
        SUPPRESSED = "suppressed"  # its silence ended after the incident resolved: nothing owed

    tenant = _tenant_fk()
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications", db_index=False)
    incident_id = models.BigIntegerField()
    sequence = models.BigIntegerField()
    event = models.CharField(max_length=20)
    facts = models.JSONField()
    idempotency_key = models.UUIDField(default=uuid.uuid4)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    silence = models.ForeignKey(Silence, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "channel", "incident_id", "sequence"], name="notification_order"),
            models.Index(fields=["tenant", "incident_id"], name="notification_incident"),
            models.Index(fields=["tenant", "status", "next_attempt_at"], name="notification_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="notification_unique_key"),
            models.UniqueConstraint(fields=["tenant", "channel", "incident_id", "sequence"], name="notification_unique_sequence"),
        ]

    def __str__(self) -> str:
        return f"{self.event} of incident {self.incident_id} to {self.channel_id} ({self.status})"

class DeliveryAttempt(TenantOwned):
    tenant = _tenant_fk()
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_log", db_index=False)
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    http_status = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField()
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "notification", "at"], name="attempt_notification_at")]
