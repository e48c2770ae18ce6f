"""A backtest's life: planned in parts when created, each part replayed and committed
once (with its done mark, so a copy delivered again after a lost worker does nothing
and the report is the same), finished when the last part commits, and applied by an
owner as the tenant's engine setting."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from analytics.core.contracts import MetricSeries
from analytics.core.engines.base import AnomalyDetectionEngine
from analytics.models import Series
from analytics.store.read import get_metric_series_batch
from results.backtests.replay import replay_series
from results.backtests.report import combine
from results.detection import EngineChooser
from results.feedback import audit
from results.feedback.effective import SeriesConfig, apply_exceptions
from results.feedback.export import labelled_windows
from results.models import Backtest, BacktestPart, EngineSetting

PART_SERIES = 25  # series per part: a part is one task and one transaction (parts spread over the workers)

Status = Backtest.Status


def backtests(tenant_id: int):
    return Backtest.objects.for_tenant(tenant_id)


def parts(tenant_id: int, backtest_id: int):
    return BacktestPart.objects.for_tenant(tenant_id).filter(backtest_id=backtest_id)


def create(tenant_id: int, *, engine: str, params: dict, current_settings: bool, series_ids: list[int], start: datetime,
           end: datetime, by: str) -> Backtest:
    """The backtest and its parts (series fixed now, in id order)."""
    ids = sorted(set(series_ids))
    backtest = backtests(tenant_id).create(
        tenant_id=tenant_id, engine=engine, params=params, current_settings=current_settings, series_ids=ids,
        range_start=start, range_end=end, created_by=by, parts_total=(len(ids) + PART_SERIES - 1) // PART_SERIES,
    )
    BacktestPart.objects.for_tenant(tenant_id).bulk_create([
        BacktestPart(tenant_id=tenant_id, backtest=backtest, first_series_id=ids[i], series_ids=ids[i:i + PART_SERIES])
        for i in range(0, len(ids), PART_SERIES)
    ])
    return backtest


def pending_parts(tenant_id: int, backtest_id: int) -> list[int] | None:
    """Mark it running; the first series of each part not done (None: finished already)."""
    started = backtests(tenant_id).filter(pk=backtest_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.RUNNING)
    if not started:
        return None
    return list(parts(tenant_id, backtest_id).filter(finished_at=None).order_by("first_series_id")
                .values_list("first_series_id", flat=True))


def run_part(tenant_id: int, backtest_id: int, first_series_id: int) -> bool:
    """Replay one part and commit it; True if it was the last part."""
    with transaction.atomic():
        part = parts(tenant_id, backtest_id).select_for_update().get(first_series_id=first_series_id)
        if part.finished_at is not None:
            return False  # delivered again: done already
        backtest = backtests(tenant_id).get(pk=backtest_id)
        part.result = replay_part(tenant_id, backtest, part.series_ids)
        part.finished_at = timezone.now()
        part.save(update_fields=["result", "finished_at"])
        backtests(tenant_id).filter(pk=backtest_id).update(parts_done=F("parts_done") + 1,
                                                           series_done=F("series_done") + len(part.series_ids))
        return not parts(tenant_id, backtest_id).filter(finished_at=None).exists()


def _alarms(engine: AnomalyDetectionEngine, config: SeriesConfig, data: MetricSeries) -> int:
    """Alarms the series' current settings (with their adjustments) raise over the range."""
    return sum(r.is_anomaly for r in apply_exceptions(engine.analyse(data).results, config.exceptions))


def replay_part(tenant_id: int, backtest: Backtest, series_ids: list[int]) -> dict:
    """Only the tenant's series are read (the store and the labels are scoped by tenant)."""
    rows = {s.pk: s for s in Series.objects.for_tenant(tenant_id).filter(pk__in=series_ids)}
    labels = labelled_windows(tenant_id, series_ids)
    files = {series_id: name for name, series_id in labels["series"].items()}
    chooser = EngineChooser(tenant_id)
    results = []
    for data in get_metric_series_batch(tenant_id, series_ids, backtest.range_start, backtest.range_end):
        series = rows[data.metadata["series_id"]]
        name = files.get(series.pk, "")
        config = chooser.config(series)
        current = chooser.engine(config.engine, config.params)
        engine = current if backtest.current_settings else chooser.engine(backtest.engine, backtest.params)
        try:
            result = replay_series(data, engine, labels["windows"].get(name, []), labels["reviewed"].get(name, []))
        except ValueError:  # too few points in the range for the engine
            continue
        same = engine is current and not config.exceptions  # the same alarms: no second replay
        result["current_alarms"] = result["alarms"] if same else _alarms(current, config, data)
        results.append(result)
    return {"series": results, "skipped": len(series_ids) - len(results)}  # no points, or too few


def finish(tenant_id: int, backtest_id: int) -> None:
    """Combine the parts into the report, once."""
    with transaction.atomic():
        backtest = backtests(tenant_id).select_for_update().get(pk=backtest_id)
        if backtest.status != Status.RUNNING:
            return
        done = parts(tenant_id, backtest_id).order_by("first_series_id").values_list("result", flat=True)
        days = (backtest.range_end - backtest.range_start).total_seconds() / 86_400
        backtest.report = combine(done, days)
        backtest.report["skipped_series"] = sum(r.get("skipped", 0) for r in done)
        backtest.status, backtest.finished_at = Status.SUCCEEDED, timezone.now()
        backtest.save(update_fields=["report", "status", "finished_at"])


def fail(tenant_id: int, backtest_id: int, error: str) -> None:
    backtests(tenant_id).filter(pk=backtest_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.FAILED, error=error[:2000], finished_at=timezone.now())


def apply(tenant_id: int, backtest: Backtest, by: str) -> EngineSetting:
    """Make the backtest's configuration the tenant's default engine setting (the next
    run uses it); the setting and the audit name the backtest and who applied it."""
    now = timezone.now()
    with transaction.atomic():
        previous = EngineSetting.objects.for_tenant(tenant_id).filter(metric_name="", node=None, series=None).first()
        setting, _ = EngineSetting.objects.for_tenant(tenant_id).update_or_create(
            tenant_id=tenant_id, metric_name="", node=None, series=None,
            defaults={"engine": backtest.engine, "params": backtest.params, "applied_by": by, "applied_from": backtest,
                      "updated_at": now},
        )
        backtest.applied_at, backtest.applied_by = now, by
        backtest.save(update_fields=["applied_at", "applied_by"])
        audit.record(tenant_id, "backtest_applied", f"backtest:{backtest.pk}", by, now, backtest=backtest.pk,
                     engine=backtest.engine, params=backtest.params,
                     previous=None if previous is None else {"engine": previous.engine, "params": previous.params})
    return setting
