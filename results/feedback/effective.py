"""What detection uses for one series: the engine setting of the most specific level
(series > node > metric > tenant), then the feedback adjustments active now (a raised
alarm threshold; recurring exceptions that keep a daily window of a node out of the
stored anomalies). A run resolves this once, when its batch starts: undoing an
adjustment applies from the next run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone

from analytics.core.contracts import AnomalyResult, AnomalyType
from analytics.core.engines.defaults import DEFAULT_ENGINE, DEFAULT_PARAMS
from analytics.core.engines.registry import engine_registry
from analytics.models import Series
from results.models import Adjustment, Anomaly, EngineSetting

DEFAULT_THRESHOLD = 0.5  # the engines' calibrated alarm level (analytics.core.engines.parameters)


def setting_key(metric_name: str, node_id: int | None, series_id: int | None) -> tuple:
    return (metric_name, node_id, series_id)


@dataclass
class SeriesConfig:
    engine: str
    params: dict
    threshold_adjustment: Adjustment | None = None
    exceptions: list[Adjustment] = field(default_factory=list)

    @property
    def notes(self) -> list[Adjustment]:
        """What a stored anomaly's explanation mentions (exceptions store none)."""
        return [self.threshold_adjustment] if self.threshold_adjustment is not None else []


def base_threshold(engine: str, params: dict) -> float:
    return float(params.get("threshold", engine_registry.create(engine, **params).params["threshold"]))


class SettingsResolver:
    """A tenant's engine settings and active adjustments, read once."""

    def __init__(self, tenant_id: int, now: datetime | None = None) -> None:
        self.now = now or timezone.now()
        rows = EngineSetting.objects.for_tenant(tenant_id).values_list("metric_name", "node_id", "series_id", "engine", "params")
        self.settings = {setting_key(m, n, s): (engine, params) for m, n, s, engine, params in rows}
        self.adjustments = [a for a in Adjustment.objects.for_tenant(tenant_id).filter(undone_at=None).order_by("pk")
                            if a.is_active(self.now)]

    def engine_for(self, series: Series) -> tuple[str, dict]:
        """The most specific setting covering the series, the product default otherwise."""
        for key in (setting_key("", None, series.pk), setting_key(series.metric_name, series.node_id, None),
                    setting_key("", series.node_id, None), setting_key(series.metric_name, None, None),
                    setting_key("", None, None)):
            if key in self.settings:
                return self.settings[key]
        return DEFAULT_ENGINE, dict(DEFAULT_PARAMS)

    def for_series(self, series: Series, *, adjusted: bool = True) -> SeriesConfig:
        engine, params = self.engine_for(series)
        config = SeriesConfig(engine, dict(params))
        if not adjusted:
            return config
        raised = [a for a in self.adjustments if a.kind == Adjustment.Kind.THRESHOLD and a.series_id == series.pk]
        if raised:
            chosen = max(raised, key=lambda a: (a.threshold, a.pk))
            if chosen.threshold is not None and chosen.threshold > base_threshold(engine, config.params):
                config.threshold_adjustment = chosen
                config.params["threshold"] = chosen.threshold
        config.exceptions = [a for a in self.adjustments if a.kind == Adjustment.Kind.EXCEPTION
                             and a.node_id == series.node_id and a.metric_name in ("", series.metric_name)]
        return config


def in_daily_window(start: datetime, end: datetime, daily_start: time, daily_end: time) -> bool:
    """The window [start, end) lies within one day's [daily_start, daily_end) (UTC)."""
    last = end - timedelta(microseconds=1) if end > start else end
    if start.astimezone(UTC).date() != last.astimezone(UTC).date():
        return False
    return daily_start <= start.astimezone(UTC).time() and last.astimezone(UTC).time() < daily_end


def apply_exceptions(results: Iterable[AnomalyResult], exceptions: list[Adjustment]) -> list[AnomalyResult]:
    """Anomalies inside a recurring exception become NORMAL windows (not stored, not listed)."""
    out = []
    for result in results:
        if result.is_anomaly and any(in_daily_window(result.window_start, result.window_end, e.daily_start, e.daily_end)
                                     for e in exceptions if e.daily_start is not None and e.daily_end is not None):
            result = replace(result, anomaly_label=AnomalyType.NORMAL, explanation=None, magnitude=None)
        out.append(result)
    return out


def note(adjustment: Adjustment) -> dict:
    return {"adjustment": adjustment.pk, "kind": adjustment.kind, "reason": adjustment.reason}


def annotate(tenant_id: int, episodes: Iterable[Anomaly], notes: dict[int, list[Adjustment]]) -> None:
    """Say in the explanation of each episode written by a run which adjustments were in
    force for its series ("threshold raised to 0.62 after 3 false alarms ...")."""
    changed = []
    for row in episodes:
        adjustments = notes.get(row.series_id)
        if not adjustments:
            continue
        row.explanation = {**row.explanation, "adjustments": [note(a) for a in adjustments]}
        sentence = " ".join(f"Note: {a.reason} (adjustment {a.pk})." for a in adjustments)
        if sentence not in row.text:
            row.text = f"{row.text} {sentence}".strip()
        changed.append(row)
    Anomaly.objects.for_tenant(tenant_id).bulk_update(changed, ["explanation", "text"], batch_size=1000)
