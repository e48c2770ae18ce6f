"""The body of the detection tasks: load, call the core, persist (no Celery here)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, DateTimeField, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from analytics.core.aggregation import RECENCY_HALF_LIFE, AggregationPipeline, worst_window
from analytics.core.contracts import AggregationStrategy, AnomalyResult, AnomalyType
from analytics.core.engines.base import NOMINAL_STEP_SECONDS, AnomalyDetectionEngine
from analytics.core.engines.registry import engine_registry
from analytics.models import Series
from analytics.store.read import get_metric_series_batch
from results.feedback.effective import SeriesConfig, SettingsResolver, annotate, apply_exceptions
from results.models import Anomaly, DetectionRun, EngineState
from results.runs import window_ceil
from results.store import store_aggregated_scores, store_episodes
from results.weights import run_weights

# Why a run skipped a series: the keys of DetectionRun.skipped_reasons (counts per reason).
SKIP_UP_TO_DATE = "watermark already at the run's end"
SKIP_NO_NEW_POINTS = "no new points since the watermark"
SKIP_NO_POINTS_IN_RANGE = "no points in the range"
SKIP_TOO_SHORT = "too short for a detection window"


class EngineChooser:
    """One engine instance per distinct configuration, chosen per series (its engine
    setting, its adjusted threshold: ``results.feedback.effective``)."""

    def __init__(self, tenant_id: int, now: datetime | None = None) -> None:
        self.resolver = SettingsResolver(tenant_id, now)
        self._engines: dict[tuple[str, str], AnomalyDetectionEngine] = {}

    def config(self, series: Series, *, adjusted: bool = True) -> SeriesConfig:
        return self.resolver.for_series(series, adjusted=adjusted)

    def engine(self, name: str, params: dict) -> AnomalyDetectionEngine:
        key = (name, repr(sorted(params.items())))
        if key not in self._engines:
            self._engines[key] = engine_registry.create(name, **params)
        return self._engines[key]


@dataclass
class BatchOutcome:
    summaries: list[dict] = field(default_factory=list)
    points: int = 0
    windows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # series skipped, by reason (SKIP_REASONS)


def _summary(series: Series, since: datetime, results: list[AnomalyResult], episodes: list[Anomaly]) -> dict:
    """The series' worst window of the run: a result, or an episode it continued (whose
    score is the episode's peak, so an anomaly never counts with a lower score); worst
    after the roll-up's recency weight (``analytics.core.aggregation``), so a range run's
    summary keeps the window its node score comes from."""
    worst, _ = worst_window([*results, *(episode_result(series.tenant_id, e) for e in episodes)],
                            recency_half_life=RECENCY_HALF_LIFE)
    return {
        "series_id": series.pk,
        "cluster_id": series.cluster_id,
        "node_id": series.node_id,
        "metric_name": series.metric_name,
        "since": since.isoformat(),
        "score": worst.anomaly_score,
        "label": worst.anomaly_label.value,
        "window_start": worst.window_start.isoformat(),
        "window_end": worst.window_end.isoformat(),
        "anomalies": sum(r.is_anomaly for r in results),
    }


def episode_result(tenant_id: int, row: Anomaly) -> AnomalyResult:
    return AnomalyResult(tenant_id, row.cluster_id, row.node_id, row.metric_name, row.window_start, row.window_end,
                         row.score, AnomalyType(row.label), engine=row.engine)


def watermark_since(watermark: datetime) -> datetime:
    """The first instant a periodic run has not analysed: a watermark is the newest point
    analysed (so it never passes the series' data), and timestamps are microseconds."""
    return watermark + timedelta(microseconds=1)


def context(engine: AnomalyDetectionEngine, state) -> timedelta:
    """History to fetch before the first new point: little with a fitted state, a
    whole fit's worth without one. Engines count history in points at their nominal step."""
    points = engine.history_points if state is not None else engine.history_points_for_fit()
    return timedelta(seconds=points * NOMINAL_STEP_SECONDS)


@dataclass
class _Planned:
    since: datetime
    engine: AnomalyDetectionEngine
    state: object
    config: SeriesConfig


def detect_series_batch(tenant_id: int, run: DetectionRun, series_ids: list[int]) -> BatchOutcome:
    """Detect over one batch of series; store anomalies, states and watermarks.

    Incremental runs reuse and keep each series' fitted state ("fit rarely, detect
    often"). A run over an explicit range fits on its own history instead: a state
    fitted on later data would see the future, and the same range must give the same
    rows however often it is rerun."""
    end = run.range_end
    if end is None:
        raise ValueError(f"run {run.pk}: no range_end (runs.prepare fixes it before any batch is queued)")
    incremental = run.range_start is None
    first_run_start = end - timedelta(hours=settings.FLEETWATCH_FIRST_RUN_LOOKBACK_HOURS)
    rows = {s.pk: s for s in Series.objects.for_tenant(tenant_id).filter(pk__in=series_ids)}
    saved = {
        (s.series_id, s.engine): s.state
        for s in EngineState.objects.for_tenant(tenant_id).filter(series_id__in=series_ids)
    } if incremental else {}
    choose = EngineChooser(tenant_id)
    outcome = BatchOutcome()
    plan: dict[int, _Planned] = {}
    for series in rows.values():
        since = run.range_start or (series.analysed_until and watermark_since(series.analysed_until)) or first_run_start
        if since >= end:
            outcome.skipped[SKIP_UP_TO_DATE] += 1
            continue
        config = choose.config(series)
        engine = choose.engine(config.engine, config.params)
        state = saved.get((series.pk, engine.name))
        plan[series.pk] = _Planned(since, engine, engine.load_state(state) if state else None, config)
    if not plan:
        return outcome
    fetch_start = min(p.since - context(p.engine, p.state) for p in plan.values())
    results: list[AnomalyResult] = []
    analysed: dict[int, list[AnomalyResult]] = {}
    newest: dict[int, datetime] = {}
    new_states: list[EngineState] = []
    now = timezone.now()
    for data in get_metric_series_batch(tenant_id, list(plan), fetch_start, end):
        series = rows[data.metadata["series_id"]]
        p = plan[series.pk]
        data = data.slice(p.since - context(p.engine, p.state), end)
        if not len(data) or data.timestamps[-1] < p.since:  # no new point: nothing to analyse
            outcome.skipped[SKIP_NO_NEW_POINTS if incremental else SKIP_NO_POINTS_IN_RANGE] += 1
            continue
        output = p.engine.analyse(data, since=p.since, state=p.state)
        if not output.results:
            outcome.skipped[SKIP_TOO_SHORT] += 1
            continue
        found = apply_exceptions(output.results, p.config.exceptions)
        outcome.points += len(data) - output.start_index
        outcome.windows += len(found)
        results.extend(found)
        analysed[series.pk] = found
        if len(data) > output.start_index:
            newest[series.pk] = data.timestamps[-1].to_pydatetime()
        dumped = p.engine.dump_state(output.state) if incremental else None
        if dumped is not None:
            new_states.append(EngineState(tenant_id=tenant_id, series_id=series.pk, engine=p.engine.name, state=dumped, fitted_at=now))
    series_keys = {(tenant_id, s.cluster_id, s.node_id, s.metric_name): s.pk for s in rows.values()}
    supersede_other_engines(tenant_id, {pk: (p.since, p.engine.name) for pk, p in plan.items()}, end)
    episodes: dict[int, list[Anomaly]] = defaultdict(list)
    for episode in store_episodes(tenant_id, results, series_keys, run_id=run.pk):
        episodes[episode.series_id].append(episode)
    annotate(tenant_id, [e for rows in episodes.values() for e in rows], {pk: p.config.notes for pk, p in plan.items()})
    outcome.summaries = [_summary(rows[pk], plan[pk].since, found, episodes[pk]) for pk, found in analysed.items()]
    EngineState.objects.for_tenant(tenant_id).bulk_create(
        new_states, update_conflicts=True, unique_fields=["tenant", "series", "engine"], update_fields=["state", "fitted_at"]
    )
    advance_watermarks(tenant_id, newest)
    return outcome


def supersede_other_engines(tenant_id: int, analysed: dict[int, tuple[datetime, str]], end: datetime) -> int:
    """Delete the anomalies another engine found in the range each series is analysed
    over now: after the default engine changes (or a metric's engine setting), the
    current engine's verdict replaces the previous one's, so no window is listed twice.
    ``analysed``: series id -> (since, engine name). Returns the rows deleted."""
    stale = Q(pk__in=[])
    for series_id, (since, engine) in analysed.items():
        stale |= Q(series_id=series_id, window_end__gt=since, window_start__lt=end) & ~Q(engine=engine)
    deleted, _ = Anomaly.objects.for_tenant(tenant_id).filter(stale).delete()
    return deleted


def advance_watermarks(tenant_id: int, newest: dict[int, datetime]) -> None:
    """Move each series' watermark to the newest point analysed, never backwards (an older
    backfill leaves it where it is); one statement."""
    if not newest:
        return
    moment = Case(*(When(pk=pk, then=Value(t)) for pk, t in newest.items()), output_field=DateTimeField())
    Series.objects.for_tenant(tenant_id).filter(pk__in=list(newest)).update(
        analysed_until=Greatest(Coalesce("analysed_until", moment), moment)
    )


def _as_result(tenant_id: int, summary: dict) -> AnomalyResult:
    return AnomalyResult(
        tenant_id=tenant_id,
        cluster_id=summary["cluster_id"],
        node_id=summary["node_id"],
        metric_name=summary["metric_name"],
        window_start=datetime.fromisoformat(summary["window_start"]),
        window_end=datetime.fromisoformat(summary["window_end"]),
        anomaly_score=summary["score"],
        anomaly_label=AnomalyType(summary["label"]),
    )


def run_period_start(run: DetectionRun, summaries: list[dict]) -> datetime:
    """The start of the period a run analysed: its range's, or for an incremental run the
    first window boundary after the watermarks (its end if it analysed nothing)."""
    if run.range_start is not None:
        return run.range_start
    if not summaries:
        if run.range_end is None:
            raise ValueError(f"run {run.pk}: no range_end (runs.prepare fixes it before any batch is queued)")
        return run.range_end
    return window_ceil(min(datetime.fromisoformat(s["since"]) for s in summaries))


def aggregate_run(tenant_id: int, run: DetectionRun, summaries: list[dict]) -> int:
    """Aggregate the run's series verdicts at every level and strategy; return the
    number of anomalies the run stored."""
    if not summaries:
        return 0
    weights = run_weights(tenant_id)
    if weights.warnings:
        DetectionRun.objects.for_tenant(tenant_id).filter(pk=run.pk).update(warnings=[*run.warnings, *weights.warnings])
    results = [_as_result(tenant_id, summary) for summary in summaries]
    period_start = run_period_start(run, summaries)
    for strategy in AggregationStrategy:
        outcome = AggregationPipeline(strategy, **weights.by_level(), recency_half_life=RECENCY_HALF_LIFE).run(
            results, as_of=max(r.window_end for r in results))
        store_aggregated_scores(
            tenant_id, [*outcome.nodes, *outcome.clusters, *outcome.tenants], period_start, run.range_end, run_id=run.pk
        )
    return sum(s["anomalies"] for s in summaries)
