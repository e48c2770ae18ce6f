"""Event-level quality of anomaly detections against labelled anomalies (no Django).

The unit is the *event*, one labelled anomaly on one series, and the *detection*, one
reported anomalous episode (an ``AnomalyResult`` whose label is not NORMAL) on one
series. How they meet:

- A detection ``[start, end)`` **matches** an event when both are on the same series
  and the detection overlaps the event's *match window* ``[event.start,
  event.match_end)``: the anomalous samples plus a grace period after them (late
  detections of a ramp or of a level shift's return still count; the caller sets it).
  A detection matches **one event only**: when it overlaps the match windows of several
  events on its series (a level shift starting in a seasonal break's grace period, a
  spike inside a break), it goes to the events whose anomalous samples it overlaps
  before those it meets only in their grace period, and among them to the one whose
  start is nearest its own (the earliest on a tie). Otherwise one detection would detect
  and label two events: a break would take the label of the level shift's detection.
- **Recall** = events matched by at least one detection / events.
- **Precision** = detections matching an event / detections. Several detections of one
  event all count as true (``detections per detected event`` shows that fragmentation).
- **False alarms per series-day**: detections on series without any event, divided by
  the days evaluated on those series.
- **Delay** of a matched event: start of its earliest matching detection minus the
  event's start, at least 0 (so at the engine's window resolution).
- **Label** of a matched event: the label of the matching detection overlapping its
  match window most (the earliest on a tie); ``normal`` when no detection matches
  (missed). The confusion matrix counts events by (true type, label); **type
  accuracy** of a type (or kind) = correct labels / its matched events.
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


@dataclass(frozen=True)
class Outcome:
    """What became of one event: its label (``normal`` = missed) and, when matched, its
    delay and the best score of its matching detections."""

    type: str
    kind: str
    severity: float
    label: str
    delay_seconds: float | None = None
    score: float | None = None

    @property
    def matched(self) -> bool:
        return self.label != AnomalyType.NORMAL.value


@dataclass
class EventQuality:
    """The figures of one evaluation; see the module doc for their definitions. The
    per-event figures take a ``type_`` or ``kind`` to restrict them to those events."""

    outcomes: list[Outcome] = field(repr=False)
    detections: int
    true_detections: int
    clean_series: int
    clean_series_days: float
    clean_detections: int

    def _of(self, type_: str | None = None, kind: str | None = None) -> list[Outcome]:
        return [o for o in self.outcomes if (type_ is None or o.type == type_) and (kind is None or o.kind == kind)]

    @property
    def events(self) -> int:
        return len(self.outcomes)

    @property
    def matched_events(self) -> int:
        return sum(o.matched for o in self.outcomes)

    @property
    def precision(self) -> float | None:
        return _ratio(self.true_detections, self.detections)

    @property
    def false_alarms_per_series_day(self) -> float | None:
        return _ratio(self.clean_detections, self.clean_series_days)

    @property
    def detections_per_matched_event(self) -> float | None:
        return _ratio(self.true_detections, self.matched_events)

    def recall(self, type_: str | None = None, kind: str | None = None) -> float | None:
        outcomes = self._of(type_, kind)
        return _ratio(sum(o.matched for o in outcomes), len(outcomes))

    def accuracy(self, type_: str | None = None, kind: str | None = None) -> float | None:
        """Correct labels / matched events."""
        matched = [o for o in self._of(type_, kind) if o.matched]
        return _ratio(sum(o.label == o.type for o in matched), len(matched))

    def median_delay_seconds(self, type_: str | None = None, kind: str | None = None) -> float | None:
        delays = [o.delay_seconds for o in self._of(type_, kind) if o.delay_seconds is not None]
        return statistics.median(delays) if delays else None

    def spearman(self, type_: str | None = None) -> float | None:
        """Severity vs score over the matched events."""
        pairs = [(o.severity, o.score) for o in self._of(type_) if o.score is not None]
        return spearman([severity for severity, _ in pairs], [score for _, score in pairs])

    def _confusion(self, outcomes: Iterable[Outcome], rows: Iterable[str], row_of: str) -> dict[str, dict[str, int]]:
        table = {row: dict.fromkeys(LABELS, 0) for row in rows}
        for o in outcomes:
            table[getattr(o, row_of)][o.label] += 1
        return table

    @property
    def confusion(self) -> dict[str, dict[str, int]]:
        """True type -> label -> events."""
        return self._confusion(self.outcomes, TYPES, "type")

    @property
    def kinds(self) -> list[str]:
        """The event kinds, grouped by type."""
        types = {o.kind: o.type for o in self.outcomes}
        return sorted(types, key=lambda kind: (TYPES.index(types[kind]), kind))

    @property
    def confusion_by_kind(self) -> dict[str, dict[str, int]]:
        """Event kind -> label -> events."""
        return self._confusion(self.outcomes, self.kinds, "kind")

    def to_dict(self) -> dict[str, Any]:
        def r(value: float | None, digits: int = 3) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "events": self.events,
            "matched_events": self.matched_events,
            "recall": r(self.recall()),
            "detections": self.detections,
            "true_detections": self.true_detections,
            "precision": r(self.precision),
            "detections_per_matched_event": r(self.detections_per_matched_event),
            "clean_series": self.clean_series,
            "clean_series_days": r(self.clean_series_days, 2),
            "clean_detections": self.clean_detections,
            "false_alarms_per_series_day": r(self.false_alarms_per_series_day, 4),
            "median_delay_seconds": r(self.median_delay_seconds(), 1),
            "spearman_severity_score": r(self.spearman()),
            "by_type": {t: {"recall": r(self.recall(t)), "type_accuracy": r(self.accuracy(t)),
                            "median_delay_seconds": r(self.median_delay_seconds(t), 1),
                            "spearman_severity_score": r(self.spearman(t))} for t in TYPES},
            "by_kind": {k: {"recall": r(self.recall(kind=k)), "type_accuracy": r(self.accuracy(kind=k)),
                            "median_delay_seconds": r(self.median_delay_seconds(kind=k), 1)} for k in self.kinds},
            "confusion": self.confusion,
            "confusion_by_kind": self.confusion_by_kind,
        }


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return (min(a1, b1) - max(a0, b0)).total_seconds()


def _owner(d: Detection, candidates: Sequence[tuple[int, Event]]) -> int | None:
    """The index of the one event ``d`` matches among its series' ``candidates`` (see the
    module doc), None when it overlaps none of their match windows."""
    found = [(i, e) for i, e in candidates if _overlap(d.start, d.end, e.start, e.match_end) > 0]
    if not found:
        return None
    return min(found, key=lambda c: (_overlap(d.start, d.end, c[1].start, c[1].end) <= 0,
                                     abs((d.start - c[1].start).total_seconds()), c[1].start))[0]


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

    events_by_series: dict[str, list[tuple[int, Event]]] = {}
    for i, e in enumerate(events):
        events_by_series.setdefault(e.series, []).append((i, e))
    matches: dict[int, list[Detection]] = {}
    for series, candidates in events_by_series.items():
        for d in by_series.get(series, ()):
            owner = _owner(d, candidates)
            if owner is not None:
                matches.setdefault(owner, []).append(d)

    outcomes: list[Outcome] = []
    for i, e in enumerate(events):
        found = matches.get(i, [])
        if not found:
            outcomes.append(Outcome(e.type, e.kind, e.severity, AnomalyType.NORMAL.value))
            continue
        first = min(found, key=lambda d: d.start)
        best = max(found, key=lambda d: (_overlap(d.start, d.end, e.start, e.match_end), -d.start.timestamp()))
        outcomes.append(Outcome(e.type, e.kind, e.severity, best.label,
                                max(0.0, (first.start - e.start).total_seconds()), max(d.score for d in found)))

    with_events = {e.series for e in events}
    clean = [s for s in series_days if s not in with_events]
    return EventQuality(
        outcomes=outcomes,
        detections=sum(len(ds) for ds in by_series.values()),
        true_detections=sum(len(ds) for ds in matches.values()),
        clean_series=len(clean),
        clean_series_days=float(sum(series_days[s] for s in clean)),
        clean_detections=sum(len(by_series.get(s, ())) for s in clean),
    )


def format_quality(q: EventQuality) -> str:
    """The figures as a few lines of text, then the confusion matrix by type and by kind."""

    def f(value: float | None, spec: str = ".3f") -> str:
        return "n/a" if value is None else format(value, spec)

    def minutes(seconds: float | None) -> str:
        return "n/a" if seconds is None else f"{seconds / 60:.1f}"

    fa = q.false_alarms_per_series_day
    lines = [
        f"events {q.events}, detections {q.detections}",
        f"  event recall     {f(q.recall())} ({q.matched_events}/{q.events} events matched by a detection)",
        f"  event precision  {f(q.precision)} ({q.true_detections}/{q.detections} detections match an event; "
        f"{f(q.detections_per_matched_event, '.2f')} detections per matched event)",
        f"  false alarms     {f(fa, '.4f')} per series-day on anomaly-free series "
        f"({q.clean_detections} in {q.clean_series_days:g} series-days, {q.clean_series} series; "
        f"{f(None if fa is None else 7 * fa, '.2f')} per series-week)",
        f"  median delay     {minutes(q.median_delay_seconds())} min",
        f"  severity~score   Spearman {f(q.spearman())} over matched events ("
        + ", ".join(f"{t} {f(q.spearman(t))}" for t in TYPES) + ")",
        "  type confusion (rows: true type, then kind; columns: label; normal = missed):",
        "    " + f"{'':<16}" + "".join(f"{label:>9}" for label in LABELS)
        + f"{'recall':>9}{'accuracy':>9}{'delay min':>10}",
    ]
    rows = [(t, q.confusion[t], {"type_": t}) for t in TYPES]
    rows += [(f"  {k}", q.confusion_by_kind[k], {"kind": k}) for k in q.kinds]
    for name, row, which in rows:
        lines.append("    " + f"{name:<16}" + "".join(f"{row[label]:>9}" for label in LABELS)
                     + f"{f(q.recall(**which)):>9}{f(q.accuracy(**which)):>9}"
                     + f"{minutes(q.median_delay_seconds(**which)):>10}")
    return "\n".join(lines)
