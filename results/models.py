"""Detection runs, stored anomalies, aggregated scores and incidents (all tenant-owned)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from results.notifications.models import AlertRule, Channel, DeliveryAttempt, Notification, Silence
from tenants.scoping import TenantOwned

__all__ = ["AlertRule", "Channel", "DeliveryAttempt", "Notification", "Silence"]  # notifications' models register with the app here


class DetectionRun(TenantOwned):
    class Trigger(models.TextChoices):
        PERIODIC = "periodic"
        MANUAL = "manual"
        BACKFILL = "backfill"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    range_start = models.DateTimeField(null=True, blank=True, help_text="Empty: from each series' watermark.")
    range_end = models.DateTimeField(null=True, blank=True, help_text="Empty: now, rounded down to a window.")
    series_total = models.IntegerField(default=0)
    series_done = models.IntegerField(default=0)
    series_skipped = models.IntegerField(default=0)
    skipped_reasons = models.JSONField(default=dict, blank=True, help_text="Series skipped, counted by reason.")
    points_analysed = models.BigIntegerField(default=0)
    windows_analysed = models.BigIntegerField(default=0)
    anomalies_found = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True, help_text="When the janitor last resumed it (stuck).")
    detect_seconds = models.FloatField(default=0.0, help_text="Worker time spent fetching, detecting and storing.")
    error = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True, help_text="What the run did not do as configured, and why.")

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="run_tenant_created"),
            models.Index(fields=["tenant", "status"], name="run_tenant_status"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.trigger}, {self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class DetectionBatch(TenantOwned):
    """One batch of a run's series, planned when the run starts (``results.runs``). Its
    task commits the batch's results, progress and usage counts and ``finished_at`` in
    one transaction, so a copy of the task delivered again finds it done and returns its
    ``summaries`` (each series' worst window, for the aggregation) without analysing or
    counting anything a second time."""

    run = models.ForeignKey(DetectionRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    first_series_id = models.BigIntegerField(help_text="The batch's first series: a run's batches are disjoint.")
    series_ids = models.JSONField(default=list)
    summaries = models.JSONField(default=list)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "detection batches"
        constraints = [models.UniqueConstraint(fields=["tenant", "run", "first_series_id"], name="batch_run_first_series")]

    def __str__(self) -> str:
        return f"run {self.run_id} batch from series {self.first_series_id}"


class Anomaly(TenantOwned):
    """One anomalous window of one series, as the engine found and explained it.

    Natural key (tenant, series, engine, window_start): rerunning a range upserts.
    """

    series = models.ForeignKey("analytics.Series", on_delete=models.CASCADE, related_name="+", db_index=False)
    cluster = models.ForeignKey("tenants.Cluster", on_delete=models.CASCADE, related_name="+", db_index=False)
    node = models.ForeignKey("tenants.Node", on_delete=models.CASCADE, related_name="+", db_index=False)
    metric_name = models.CharField(max_length=128)
    run = models.ForeignKey(DetectionRun, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    engine = models.CharField(max_length=50)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    score = models.FloatField()
    first_score = models.FloatField(help_text="The score the window was first given.")
    label = models.CharField(max_length=10)
    magnitude = models.FloatField(null=True)
    explanation = models.JSONField(default=dict)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "anomalies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "series", "engine", "window_start"], name="anomaly_natural_key"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-window_start"], name="anomaly_tenant_start"),
            models.Index(fields=["tenant", "node", "-window_start"], name="anomaly_tenant_node"),
            models.Index(fields=["tenant", "-score"], name="anomaly_tenant_score"),
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.metric_name} {self.window_start:%Y-%m-%d %H:%M}"


class AggregatedScore(TenantOwned):
    """A tenant, cluster or node score for one period and strategy.

    ``subject`` ("tenant", "cluster:<id>", "node:<id>") keeps the natural key free of
    NULLs, so an upsert of the same period finds the same row on every database.
    """

    class Level(models.TextChoices):
        TENANT = "tenant"
        CLUSTER = "cluster"
        NODE = "node"

    run = models.ForeignKey(DetectionRun, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    level = models.CharField(max_length=10, choices=Level.choices)
    subject = models.CharField(max_length=40)
    cluster = models.ForeignKey("tenants.Cluster", null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    node = models.ForeignKey("tenants.Node", null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    strategy = models.CharField(max_length=10)
    score = models.FloatField()
    num_metrics_analyzed = models.IntegerField()
    num_anomalies_detected = models.IntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    driver = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "level", "subject", "strategy", "period_start", "period_end"],
                name="aggregate_natural_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "level", "strategy", "-period_end", "-score"], name="aggregate_ranking"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.strategy} {self.score:.2f}"


class EngineSetting(TenantOwned):
    """Which engine, with which parameters, a tenant uses, at one level: a series (series
    set), a node (node set; metric_name narrows it to one metric of the node), a metric
    (metric_name only) or the tenant (all blank). The most specific level that covers a
    series wins: series > node > metric > tenant (``results.feedback.effective``)."""

    metric_name = models.CharField(max_length=128, blank=True)
    node = models.ForeignKey("tenants.Node", null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    series = models.ForeignKey("analytics.Series", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                               db_index=False)
    engine = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True)
    applied_by = models.CharField(max_length=150, blank=True, help_text="Who applied it from a backtest.")
    applied_from = models.ForeignKey("Backtest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     db_index=False, help_text="The backtest it was applied from.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "metric_name", "node", "series"], nulls_distinct=False,
                                               name="engine_setting_level")]

    def __str__(self) -> str:
        where = f"series {self.series_id}" if self.series_id else f"node {self.node_id}" if self.node_id else ""
        return f"{where} {self.metric_name or '*'}: {self.engine}".strip()


class EngineState(TenantOwned):
    """An engine's fitted state for one series, reused by incremental runs."""

    series = models.ForeignKey("analytics.Series", on_delete=models.CASCADE, related_name="+", db_index=False)
    engine = models.CharField(max_length=50)
    state = models.JSONField()
    fitted_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "series", "engine"], name="engine_state_series")]


# Incidents (results.incidents): an incident groups the anomalies of one real problem; its
# events are its timeline.

class Incident(TenantOwned):
    class Kind(models.TextChoices):
        ANOMALY = "anomaly"
        NO_DATA = "no_data"

    class State(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    ACTIVE = (State.OPEN, State.ACKNOWLEDGED)

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ANOMALY)
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    cluster = models.ForeignKey("tenants.Cluster", on_delete=models.CASCADE, related_name="+", db_index=False)
    node = models.ForeignKey("tenants.Node", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                             db_index=False, help_text='The silent node of a "no data" incident.')
    started_at = models.DateTimeField(help_text="The earliest member's start (no data: the node's last point).")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="The latest member's end (no data: empty).")
    peak_score = models.FloatField(default=0.0)
    node_ids = models.JSONField(default=list, blank=True, help_text="Affected nodes (ids).")
    metrics = models.JSONField(default=list, blank=True, help_text="Affected metric names.")
    summary = models.CharField(max_length=300, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+", db_index=False)
    acknowledged_by_label = models.CharField(max_length=150, blank=True, help_text="A user name or an API key.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_label = models.CharField(max_length=150, blank=True, help_text='Who resolved it; "auto": the pipeline.')
    reopened_count = models.IntegerField(default=0)
    origin = models.JSONField(default=dict, blank=True, help_text="The root-cause hint (results.incidents.origin).")
    origin_key = models.CharField(max_length=64, blank=True, help_text="The incident version the hint was computed for.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "state", "-started_at"], name="incident_tenant_state"),
            models.Index(fields=["tenant", "cluster", "-started_at"], name="incident_tenant_cluster"),
        ]

    def __str__(self) -> str:
        return f"incident {self.pk} ({self.state}): {self.summary}"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE


class IncidentMember(TenantOwned):
    """An anomaly of an incident; an anomaly belongs to at most one incident."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="members", db_index=False)
    anomaly = models.ForeignKey(Anomaly, on_delete=models.CASCADE, related_name="+", db_index=False)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "anomaly"], name="incident_member_anomaly")]
        indexes = [models.Index(fields=["tenant", "incident"], name="incident_member_incident")]


class IncidentEvent(TenantOwned):
    """One step of an incident's timeline (the events of ``results.incidents.signals``)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events", db_index=False)
    event = models.CharField(max_length=20)
    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=150, blank=True, help_text='A user name, an API key, or "auto".')
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "incident", "at"], name="incident_event_incident")]


class Feedback(TenantOwned):
    """A tenant's verdict on one anomaly. The series and window are copied, so the label
    outlives the anomaly row (an episode that absorbs it, a rerun with another engine)."""

    COMMENT_MAX_LENGTH = 2000

    class Verdict(models.TextChoices):
        REAL = "real", "real problem"
        FALSE_ALARM = "false_alarm", "false alarm"
        EXPECTED = "expected", "expected (e.g. deployment, batch job)"

    anomaly = models.ForeignKey(Anomaly, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    series = models.ForeignKey("analytics.Series", on_delete=models.CASCADE, related_name="+", db_index=False)
    node = models.ForeignKey("tenants.Node", on_delete=models.CASCADE, related_name="+", db_index=False)
    metric_name = models.CharField(max_length=128)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    score = models.FloatField(help_text="The anomaly's score when it was labelled.")
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    comment = models.TextField(blank=True, max_length=COMMENT_MAX_LENGTH)
    by = models.CharField(max_length=150, help_text="Who labelled it last: a user name or an API key.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "anomaly"], name="feedback_anomaly")]
        indexes = [models.Index(fields=["tenant", "series", "verdict"], name="feedback_series_verdict"),
                   models.Index(fields=["tenant", "-updated_at"], name="feedback_tenant_updated")]

    def __str__(self) -> str:
        return f"{self.verdict} on anomaly {self.anomaly_id}"


class AuditEntry(TenantOwned):
    """One change a tenant (or the feedback rules) made: a label set, changed or removed,
    an adjustment made, undone or confirmed, a backtest applied. Never updated."""

    action = models.CharField(max_length=30)
    subject = models.CharField(max_length=40, help_text='What it changed: "anomaly:12", "adjustment:3", "backtest:4".')
    detail = models.JSONField(default=dict)
    by = models.CharField(max_length=150)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-at"], name="audit_tenant_at")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.subject} by {self.by}"


class Adjustment(TenantOwned):
    """A change feedback made to detection, with its reason: a series' alarm threshold
    raised after repeated false alarms, or a recurring daily exception on a node after
    "expected" labels. Active until undone or expired (``expires_at``; None once confirmed)."""

    class Kind(models.TextChoices):
        THRESHOLD = "threshold"
        EXCEPTION = "exception"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    series = models.ForeignKey("analytics.Series", null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    node = models.ForeignKey("tenants.Node", on_delete=models.CASCADE, related_name="+", db_index=False)
    metric_name = models.CharField(max_length=128, blank=True, help_text="Exception: blank for every metric of the node.")
    threshold = models.FloatField(null=True, help_text="Threshold: the raised alarm threshold.")
    previous_threshold = models.FloatField(null=True)
    daily_start = models.TimeField(null=True, help_text="Exception: daily window start (UTC).")
    daily_end = models.TimeField(null=True, help_text="Exception: daily window end (UTC), exclusive.")
    feedback_ids = models.JSONField(default=list, help_text="The labels that caused it.")
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, help_text="Empty: confirmed, no expiry.")
    undone_at = models.DateTimeField(null=True)
    undone_by = models.CharField(max_length=150, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "node", "kind"], name="adjustment_tenant_node")]

    def __str__(self) -> str:
        return f"adjustment {self.pk}: {self.reason}"

    def is_active(self, now) -> bool:
        return self.undone_at is None and (self.expires_at is None or self.expires_at > now)


class Backtest(TenantOwned):
    """A replay of the tenant's stored history through an engine configuration, scored
    against its labels (``results.backtests``). Its parts commit one at a time."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    engine = models.CharField(max_length=50)
    params = models.JSONField(default=dict, blank=True)
    current_settings = models.BooleanField(default=False, help_text="Replay each series with the settings it has now.")
    series_ids = models.JSONField(default=list, help_text="The series replayed (fixed when it is created).")
    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    parts_total = models.IntegerField(default=0)
    parts_done = models.IntegerField(default=0)
    series_done = models.IntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.CharField(max_length=150, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at"], name="backtest_tenant_created")]

    def __str__(self) -> str:
        return f"backtest {self.pk} ({self.engine}, {self.status})"


class BacktestPart(TenantOwned):
    """One batch of a backtest's series; its result and done mark commit together, so a
    redelivered copy (worker lost) finds it done and the report is the same."""

    backtest = models.ForeignKey(Backtest, on_delete=models.CASCADE, related_name="+", db_index=False)
    first_series_id = models.BigIntegerField()
    series_ids = models.JSONField(default=list)
    result = models.JSONField(default=dict)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "backtest", "first_series_id"], name="backtest_part_first")]
