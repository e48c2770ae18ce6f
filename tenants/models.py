"""Tenancy: plans, tenants, their clusters and nodes, members and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from tenants.names import NAME_MAX_LENGTH, NAME_PATTERN, NAME_RULE
from tenants.scoping import TenantOwned
from tenants.weights import WeightsValidator

name_validator = RegexValidator(NAME_PATTERN, NAME_RULE)


class Plan(models.Model):
    """Limits and prices; billing, quotas, schedules and retention read them."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    monthly_price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    included_points_per_month = models.BigIntegerField(default=100_000_000)
    included_active_series = models.IntegerField(default=10_000)
    overage_price_per_million_points = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    overage_price_per_series = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    hard_limit_points_per_month = models.BigIntegerField(
        null=True, blank=True, help_text="Ingestion answers 429 beyond this; empty means no hard limit."
    )
    hard_limit_series = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Series a tenant may have: ingestion answers 429 to a batch that would create more; empty means no limit.",
    )
    detection_interval_minutes = models.PositiveIntegerField(default=5)
    hot_retention_days = models.PositiveIntegerField(default=7)
    cold_retention_days = models.PositiveIntegerField(default=90)
    # Notifications: a tenant with no alert rule of its own gets the plan's default rule
    # (incidents at or above this peak score, e-mailed to the tenant's owners).
    default_alert_min_score = models.FloatField(default=0.8)
    max_email_recipients = models.PositiveIntegerField(default=10, help_text="Addresses per e-mail channel.")

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    is_active = models.BooleanField(default=True)
    # WEIGHTED aggregation weights (tenants.weights): checked here, so the admin's form too.
    metric_weights = models.JSONField(
        default=dict, blank=True, validators=[WeightsValidator("metric_weights")],
        help_text='WEIGHTED weights per metric name, e.g. {"cpu_usage": 2}; empty: the defaults. Others weigh 1.',
    )
    node_weights = models.JSONField(
        default=dict, blank=True, validators=[WeightsValidator("node_weights")],
        help_text='WEIGHTED weights of nodes in their cluster\'s score, by "cluster/node", e.g. {"prod/db-1": 3}. Others weigh 1.',
    )
    cluster_weights = models.JSONField(
        default=dict, blank=True, validators=[WeightsValidator("cluster_weights")],
        help_text='WEIGHTED weights of clusters in the tenant\'s score, by name, e.g. {"prod": 2}. Others weigh 1.',
    )
    incident_window_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="Anomalies on nodes of one cluster starting within this many minutes of each other form one incident.",
    )
    incident_quiet_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="An incident resolves after this many minutes analysed with no anomaly; "
        "one flaring up within as long after that reopens.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug


class Membership(TenantOwned):
    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"
        VIEWER = "viewer"

    # Indexed by user too: a login has to find its tenants (the one other exception to
    # "indexes start with the tenant", besides the API key prefix).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_tenant_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant_id} ({self.role})"


class Cluster(TenantOwned):
    name = models.CharField(max_length=NAME_MAX_LENGTH, validators=[name_validator])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="cluster_tenant_name")]

    def __str__(self) -> str:
        return self.name


class Node(TenantOwned):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes", db_index=False)
    name = models.CharField(max_length=NAME_MAX_LENGTH, validators=[name_validator])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "cluster", "name"], name="node_tenant_cluster_name")]

    def __str__(self) -> str:
        return self.name


def hash_api_key(key: str) -> str:
    """Keyed hash (HMAC-SHA256 with a server secret): keys are random, so a slow hash
    adds nothing, and a stolen table is useless without the secret."""
    secret = getattr(settings, "FLEETWATCH_API_KEY_SECRET", settings.SECRET_KEY).encode()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


class ApiKey(TenantOwned):
    """Only the hash is stored; the key is shown once, when created.

    The prefix index is the one index that does not start with the tenant: it is how
    the tenant is found from a key in the first place.
    """

    KEY_PREFIX = "fw_"

    class Role(models.TextChoices):
        READ_ONLY = "read_only"
        READ_WRITE = "read_write"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.READ_WRITE,
                            help_text="read_only keys may only read (GET, HEAD, OPTIONS).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="apikey_tenant_created")]

    def __str__(self) -> str:
        return f"{self.KEY_PREFIX}{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def issue(cls, tenant: Tenant, name: str, created_by=None, role: str = Role.READ_WRITE) -> tuple[ApiKey, str]:
        """Create a key; return the row and the plain key, which is never stored."""
        prefix = secrets.token_hex(4)
        key = f"{cls.KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        api_key = cls.objects.unscoped().create(
            tenant=tenant, name=name, prefix=prefix, key_hash=hash_api_key(key), created_by=created_by, role=role
        )
        return api_key, key

    @staticmethod
    def parse_prefix(key: str) -> str | None:
        if not key.startswith(ApiKey.KEY_PREFIX):
            return None
        prefix, sep, _ = key[len(ApiKey.KEY_PREFIX):].partition("_")
        return prefix if sep and len(prefix) == 8 else None

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(self.key_hash, hash_api_key(key))

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


# Usage metering (see tenants.billing for how each number is kept, and tenants.quotas).

def _usage_tenant_fk() -> models.ForeignKey:
    # Every index below starts with the tenant, so the foreign key's own index is redundant.
    return models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)


class UsageDaily(TenantOwned):
    """What a tenant used on one UTC day: the billing meter. One row per tenant and day,
    kept by upserts from the write path, the detection tasks and the API."""

    tenant = _usage_tenant_fk()
    day = models.DateField()
    points_ingested = models.BigIntegerField(default=0, help_text="Points accepted by ingestion (re-sent points count).")
    active_series = models.IntegerField(default=0, help_text="Distinct series that received points this day.")
    series_analysed = models.BigIntegerField(default=0, help_text="Series analysed by detection batches.")
    detection_runs = models.IntegerField(default=0, help_text="Detection runs that finished successfully.")
    api_requests = models.BigIntegerField(default=0, help_text="Authenticated API requests (ingestion included).")

    class Meta:
        verbose_name_plural = "usage (daily)"
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="usagedaily_tenant_day")]

    def __str__(self) -> str:
        return f"usage of {self.tenant_id} on {self.day}"


class UsageMonth(TenantOwned):
    """A tenant's calendar month (UTC): the quota ledger (its points are checked and
    incremented in one conditional upsert per batch) and the month's distinct active series."""

    tenant = _usage_tenant_fk()
    month = models.DateField(help_text="The first day of the month.")
    points_ingested = models.BigIntegerField(default=0)
    active_series = models.IntegerField(default=0, help_text="Distinct series that received points this month.")

    class Meta:
        verbose_name_plural = "usage (monthly)"
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="usagemonth_tenant_month")]

    def __str__(self) -> str:
        return f"usage of {self.tenant_id} in {self.month:%Y-%m}"


class SeriesActivity(TenantOwned):
    """One row per series per month it received points in: ``first_day`` and ``last_day``
    with points. The write path's upsert on it tells, exactly and race-free, whether a
    series is new for the day and for the month (see ``tenants.billing``).

    ``series_id`` is a plain integer, not a foreign key: a usage fact outlives the series."""

    tenant = _usage_tenant_fk()
    month = models.DateField()
    series_id = models.BigIntegerField()
    first_day = models.DateField()
    last_day = models.DateField()

    class Meta:
        verbose_name_plural = "series activity"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "month", "series_id"], name="seriesactivity_tenant_month_series")
        ]
