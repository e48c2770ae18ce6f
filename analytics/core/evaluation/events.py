"""Event-level quality of anomaly detections against labelled anomalies (no Django).

The unit is the *event*, one labelled anomaly on one series, and the *detection*, one
reported anomalous episode (an ``AnomalyResult`` whose label is not NORMAL) on one
series. How they meet:

- A detection ``[start, end)`` **matches** an event when both are on the same series
  and the detection overlaps the event's *match window* ``[event.start,
  event.match_end)``: the anomalous samples plus a grace period after them (late
  detections of a ramp or of a level shift's return still count; the caller sets it).
- **Recall** = events matched by at least one detection / events.
- **Precision** = detections matching at least one event / detections. A detection
  matching several events counts once; several detections of one event all count as
  true (``detections per detected event`` shows that fragmentation).
- **False alarms per series-day**: detections on series without any event, divided by
  the days evaluated on those series.
- **Delay** of a matched event: start of its earliest matching detection minus the
  event's start, at least 0 (so at the engine's window resolution).
- **Label** of a matched event: the label of the matching detection overlapping its
  match window most (the earliest on a tie); ``normal`` when no detection matches
  (missed). The confusion matrix counts events by (true type, label); **type
  accuracy** of a type = correct labels / matched events of that type.
- **Severity vs score**: Spearman rank correlation, over matched events, between the
  event's injected severity and the highest score of its matching detections.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from analytics.core.contracts import AnomalyType

TYPES: tuple[str, ...] = (AnomalyType.SPIKE.value, AnomalyType.TREND.value, AnomalyType.SEASONAL.value)
LABELS: tuple[str, ...] = (*TYPES, AnomalyType.NORMAL.value)


@dataclass(frozen=True)
class Event:
    """One labelled anomaly: ``start`` is its first anomalous sample, ``end`` the end of
    its last one (exclusive), ``match_end >= end`` the end of its match window."""

    series: str
    type: str  # spike | trend | seasonal
    kind: str  # a finer name of its shape (e.g. the simulator's "level_shift")
    start: datetime
    end: datetime
    match_end: datetime
    severity: float

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"type: must be one of {list(TYPES)}, got {self.type!r}")
        if not self.start < self.end <= self.match_end:
            raise ValueError("end: need start < end <= match_end")


@dataclass(frozen=True)
class Detection:
    """One reported anomalous episode ``[start, end)`` with its label and score."""

    series: str
    start: datetime
    end: datetime
    label: str  # spike | trend | seasonal
    score: float

    def __post_init__(self) -> None:
        if self.label not in TYPES:
            raise ValueError(f"label: must be one of {list(TYPES)}, got {self.label!r}")


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None below 3 pairs or with a constant side."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(pd.Series(x, dtype=float).corr(pd.Series(y, dtype=float), method="spearman"))


@dataclass
class EventQuality:
    """The figures of one evaluation; see the module doc for their definitions."""

    events: int
    matched_events: int
    detections: int
    true_detections: int
    clean_series: int
    clean_series_days: float
    clean_detections: int
    delays_seconds: list[tuple[str, float]] = field(repr=False)  # (type, delay) per matched event
    confusion: dict[str, dict[str, int]]  # true type -> label -> events
    confusion_by_kind: dict[str, dict[str, int]]  # event kind -> label -> events
    kind_types: dict[str, str]  # event kind -> its true type
    severity_score: list[tuple[str, float, float]] = field(repr=False)  # (type, severity, score) per matched event

    @property
    def recall(self) -> float | None:
        return _ratio(self.matched_events, self.events)

    @property
    def precision(self) -> float | None:
        return _ratio(self.true_detections, self.detections)

    @property
    def false_alarms_per_series_day(self) -> float | None:
        return _ratio(self.clean_detections, self.clean_series_days)

    def median_delay_seconds(self, type_: str | None = None) -> float | None:
        """Over the matched events (of one type, or all)."""
        delays = [d for t, d in self.delays_seconds if type_ is None or t == type_]
        return statistics.median(delays) if delays else None

    @property
    def detections_per_matched_event(self) -> float | None:
        return _ratio(self.true_detections, self.matched_events)

    def spearman(self, type_: str | None = None) -> float | None:
        """Severity vs score over the matched events (of one type, or all)."""
        pairs = [(s, c) for t, s, c in self.severity_score if type_ is None or t == type_]
        return spearman([s for s, _ in pairs], [c for _, c in pairs])

    def type_accuracy(self, type_: str) -> float | None:
        return _accuracy(self.confusion[type_], type_)

    def kind_accuracy(self, kind: str) -> float | None:
        return _accuracy(self.confusion_by_kind[kind], self.kind_types[kind])

    def recall_of(self, type_: str) -> float | None:
        row = self.confusion[type_]
        return _ratio(sum(row.values()) - row[AnomalyType.NORMAL.value], sum(row.values()))

    def to_dict(self) -> dict[str, Any]:
        def r(value: float | None, digits: int = 3) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "events": self.events,
            "matched_events": self.matched_events,
            "recall": r(self.recall),
            "detections": self.detections,
            "true_detections": self.true_detections,
            "precision": r(self.precision),
            "detections_per_matched_event": r(self.detections_per_matched_event),
            "clean_series": self.clean_series,
            "clean_series_days": r(self.clean_series_days, 2),
            "clean_detections": self.clean_detections,
            "false_alarms_per_series_day": r(self.false_alarms_per_series_day, 4),
            "median_delay_seconds": r(self.median_delay_seconds(), 1),
            "median_delay_seconds_by_type": {t: r(self.median_delay_seconds(t), 1) for t in TYPES},
            "spearman_severity_score": r(self.spearman()),
            "spearman_by_type": {t: r(self.spearman(t)) for t in TYPES},
            "type_accuracy": {t: r(self.type_accuracy(t)) for t in TYPES},
            "kind_accuracy": {k: r(self.kind_accuracy(k)) for k in self.confusion_by_kind},
            "recall_by_type": {t: r(self.recall_of(t)) for t in TYPES},
            "confusion": self.confusion,
            "confusion_by_kind": self.confusion_by_kind,
        }


def _accuracy(row: Mapping[str, int], truth: str) -> float | None:
    """Correct labels / matched events of one confusion row."""
    return _ratio(row[truth], sum(row.values()) - row[AnomalyType.NORMAL.value])


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return (min(a1, b1) - max(a0, b0)).total_seconds()


def score_events(
    events: Iterable[Event], detections: Iterable[Detection], series_days: Mapping[str, float]
) -> EventQuality:
    """Match ``detections`` to ``events`` and compute the figures. ``series_days`` maps every
    evaluated series (with or without events) to the days evaluated on it."""
    events = list(events)
    by_series: dict[str, list[Detection]] = {}
    for d in detections:
        if d.series not in series_days:
            raise ValueError(f"detections: series {d.series!r} is not among the evaluated series")
        by_series.setdefault(d.series, []).append(d)
    kind_types: dict[str, str] = {}
    for e in events:
        if e.series not in series_days:
            raise ValueError(f"events: series {e.series!r} is not among the evaluated series")
        if kind_types.setdefault(e.kind, e.type) != e.type:
            raise ValueError(f"events: kind {e.kind!r} appears with types {kind_types[e.kind]!r} and {e.type!r}")

    true_ids: set[int] = set()
    delays: list[tuple[str, float]] = []
    confusion = {t: dict.fromkeys(LABELS, 0) for t in TYPES}
    by_kind: dict[str, dict[str, int]] = {}
    severity_score: list[tuple[str, float, float]] = []
    for e in events:
        found = [d for d in by_series.get(e.series, ()) if _overlap(d.start, d.end, e.start, e.match_end) > 0]
        label = AnomalyType.NORMAL.value
        if found:
            true_ids.update(id(d) for d in found)
            first = min(found, key=lambda d: d.start)
            delays.append((e.type, max(0.0, (first.start - e.start).total_seconds())))
            best = max(found, key=lambda d: (_overlap(d.start, d.end, e.start, e.match_end), -d.start.timestamp()))
            label = best.label
            severity_score.append((e.type, e.severity, max(d.score for d in found)))
        confusion[e.type][label] += 1
        by_kind.setdefault(e.kind, dict.fromkeys(LABELS, 0))[label] += 1

    with_events = {e.series for e in events}
    clean = [s for s in series_days if s not in with_events]
    return EventQuality(
        events=len(events),
        matched_events=len(delays),
        detections=sum(len(ds) for ds in by_series.values()),
        true_detections=len(true_ids),
        clean_series=len(clean),
        clean_series_days=float(sum(series_days[s] for s in clean)),
        clean_detections=sum(len(by_series.get(s, ())) for s in clean),
        delays_seconds=delays,
        confusion=confusion,
        confusion_by_kind=dict(sorted(by_kind.items(), key=lambda item: (TYPES.index(kind_types[item[0]]), item[0]))),
        kind_types=kind_types,
        severity_score=severity_score,
    )


def format_quality(q: EventQuality) -> str:
    """The figures as a few lines of text (the confusion matrix as a table)."""

    def f(value: float | None, spec: str = ".3f") -> str:
        return "n/a" if value is None else format(value, spec)

    def minutes(seconds: float | None) -> str:
        return "n/a" if seconds is None else f"{seconds / 60:.1f} min"

    lines = [
        f"events {q.events}, detections {q.detections}",
        f"  event recall     {f(q.recall)} ({q.matched_events}/{q.events} events matched by a detection)",
        f"  event precision  {f(q.precision)} ({q.true_detections}/{q.detections} detections match an event; "
        f"{f(q.detections_per_matched_event, '.2f')} detections per matched event)",
        f"  false alarms     {f(q.false_alarms_per_series_day, '.4f')} per series-day on anomaly-free series "
        f"({q.clean_detections} in {q.clean_series_days:g} series-days, {q.clean_series} series; "
        f"{f(None if q.false_alarms_per_series_day is None else 7 * q.false_alarms_per_series_day, '.2f')} "
        "per series-week)",
        f"  median delay     {minutes(q.median_delay_seconds())} ("
        + ", ".join(f"{t} {minutes(q.median_delay_seconds(t))}" for t in TYPES) + ")",
        f"  severity~score   Spearman {f(q.spearman())} over matched events ("
        + ", ".join(f"{t} {f(q.spearman(t))}" for t in TYPES) + ")",
        "  type confusion (rows: true type or kind; columns: label; normal = missed):",
        "    " + f"{'':<16}" + "".join(f"{label:>10}" for label in LABELS) + f"{'accuracy':>10}",
    ]
    for t in TYPES:
        row = q.confusion[t]
        lines.append("    " + f"{t:<16}" + "".join(f"{row[label]:>10}" for label in LABELS)
                     + f"{f(q.type_accuracy(t)):>10}")
    for kind, row in q.confusion_by_kind.items():
        lines.append("    " + f"  {kind:<14}" + "".join(f"{row[label]:>10}" for label in LABELS)
                     + f"{f(q.kind_accuracy(kind)):>10}")
    return "\n".join(lines)
