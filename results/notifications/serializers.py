"""The notification API's bodies; each check answers 400 naming the field."""

from __future__ import annotations

from typing import Any

from django.core.validators import validate_email
from django.forms import ValidationError as FormValidationError
from rest_framework import serializers

from results.notifications import crypto, destinations, matching
from results.notifications.models import AlertRule, Channel, DeliveryAttempt, Notification, Silence

NEEDS_URL = (Channel.Kind.ALERTMANAGER, Channel.Kind.WEBHOOK)


class GlobList(serializers.ListField):
    child = serializers.CharField(max_length=200)
    max_length = 50


class ChannelSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500,
                                   help_text="Webhook signing key or Alertmanager 'user:password'; stored encrypted, never shown again.")
    has_secret = serializers.SerializerMethodField()
    recipients = serializers.ListField(child=serializers.CharField(max_length=254), required=False, max_length=1000)

    class Meta:
        model = Channel
        fields = ["id", "name", "kind", "url", "recipients", "slack_format", "enabled", "secret", "has_secret", "created_at"]
        read_only_fields = ["created_at"]

    def get_has_secret(self, channel: Channel) -> bool:
        return bool(channel.secret_encrypted)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        url = attrs.get("url", getattr(self.instance, "url", ""))
        recipients = attrs.get("recipients", getattr(self.instance, "recipients", []))
        if kind in NEEDS_URL:
            if not url:
                raise serializers.ValidationError({"url": f"required for a {kind} channel"})
            try:
                destinations.check_url(url)
            except destinations.UnsafeDestination as exc:
                raise serializers.ValidationError({"url": str(exc)}) from None
        if kind == Channel.Kind.EMAIL:
            limit = self.context["tenant"].plan.max_email_recipients
            if not recipients or len(recipients) > limit:
                raise serializers.ValidationError({"recipients": f"between 1 and {limit} addresses (your plan's limit)"})
            for address in recipients:
                try:
                    validate_email(address)
                except FormValidationError:
                    raise serializers.ValidationError({"recipients": f"{address!r} is not an e-mail address"}) from None
        if "secret" in attrs:
            attrs["secret_encrypted"] = crypto.encrypt(attrs.pop("secret"))
        return attrs


class AlertRuleSerializer(serializers.ModelSerializer):
    min_peak_score = serializers.FloatField(min_value=0, max_value=1, required=False)
    clusters = GlobList(required=False)
    nodes = GlobList(required=False)
    metrics = GlobList(required=False)

    class Meta:
        model = AlertRule
        fields = ["id", "name", "enabled", "min_peak_score", "min_duration_seconds", "clusters", "nodes", "metrics", "channels",
                  "renotify_minutes", "created_at"]
        read_only_fields = ["created_at"]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        tenant = self.context.get("tenant")  # absent only while the schema is generated
        queryset = Channel.objects.for_tenant(tenant) if tenant else Channel.objects.none()
        fields["channels"] = serializers.PrimaryKeyRelatedField(many=True, queryset=queryset, required=False)
        return fields


class SilenceSerializer(serializers.ModelSerializer):
    matchers = serializers.JSONField(help_text=Silence._meta.get_field("matchers").help_text)

    class Meta:
        model = Silence
        fields = ["id", "matchers", "starts_at", "ends_at", "comment", "created_by", "created_at"]
        read_only_fields = ["created_by", "created_at"]

    def validate_matchers(self, value: Any) -> dict[str, str]:
        try:
            return matching.check_matchers(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        starts = attrs.get("starts_at", getattr(self.instance, "starts_at", None))
        ends = attrs.get("ends_at", getattr(self.instance, "ends_at", None))
        if starts and ends and ends <= starts:
            raise serializers.ValidationError({"ends_at": "must be after starts_at"})
        return attrs


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["at", "ok", "http_status", "latency_ms", "error"]


class NotificationSerializer(serializers.ModelSerializer):
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "channel", "incident_id", "sequence", "event", "status", "idempotency_key", "attempts", "next_attempt_at",
                  "last_error", "created_at", "sent_at", "attempt_log"]
        read_only_fields = fields
