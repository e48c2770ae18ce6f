"""Which anomalies form one incident (pure: no database).

An anomaly joins an incident of its cluster when its window overlaps the incident's
span widened by the grouping window on both sides: anomalies overlapping on one node,
and anomalies on several nodes of one cluster starting within the window of each other,
end up together; clusters never share an incident. A resolved incident also takes an
anomaly that starts within the quiet period after its resolution: it reopens rather
than leaving a twin. Anomalies are taken in start order, so the result does not depend
on the order they come in; an anomaly matching several incidents joins the one that
ended last (incidents never merge, so their ids stay stable).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Span:
    """An anomaly, as grouping sees it."""

    anomaly_id: int
    cluster_id: int
    node_id: int
    start: datetime
    end: datetime


@dataclass
class Group:
    """An incident being built: a stored one (``incident_id``) or a new one."""

    cluster_id: int
    start: datetime
    end: datetime
    incident_id: int | None = None
    resolved_at: datetime | None = None
    added: list[Span] = field(default_factory=list)

    def takes(self, span: Span, window: timedelta, quiet: timedelta) -> bool:
        if span.cluster_id != self.cluster_id or span.end < self.start - window:
            return False
        if span.start <= self.end + window:
            return True
        return self.resolved_at is not None and span.start <= self.resolved_at + quiet

    def add(self, span: Span) -> None:
        self.added.append(span)
        self.start, self.end = min(self.start, span.start), max(self.end, span.end)


def assign(spans: Iterable[Span], groups: Iterable[Group], window: timedelta, quiet: timedelta) -> list[Group]:
    """Add each span to a matching group or to a new one; return the groups that received
    spans (stored ones first, in the order given, then the new ones)."""
    by_cluster: dict[int, list[Group]] = {}
    for group in groups:
        by_cluster.setdefault(group.cluster_id, []).append(group)
    touched: list[Group] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end, s.anomaly_id)):
        candidates = [g for g in by_cluster.get(span.cluster_id, []) if g.takes(span, window, quiet)]
        if candidates:
            group = max(candidates, key=lambda g: (g.end, g.incident_id is None, g.incident_id or 0))
        else:
            group = Group(span.cluster_id, span.start, span.end)
            by_cluster.setdefault(span.cluster_id, []).append(group)
        if not group.added:
            touched.append(group)
        group.add(span)
    return sorted(touched, key=lambda g: (g.incident_id is None, g.start))
