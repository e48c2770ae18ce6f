"""Simulated history with known labels: three series of tests.feedback.history's
pattern (different noise), every bump labelled: the mild ones "false alarm" (reviewed,
normal), the big one "real problem", each window 30 minutes either side."""

from __future__ import annotations

from datetime import timedelta

from analytics.models import Series
from results.models import Feedback
from tests.feedback.history import BIG_BUMP, DAY1_BUMPS, DAY2_BUMPS, DURATION, at_minute, bumped_values
from tests.results.fleet import ingest, series_body

NODES = ("n1", "n2", "n3")
MARGIN = timedelta(minutes=30)


def values_of(node: str):
    return [round(float(v), 4) for v in bumped_values(seed=NODES.index(node) + 11)]


def ingest_history(api, start) -> None:
    ingest(api, [{"series": [series_body("prod", node, "cpu", int(start.timestamp()), values_of(node))]} for node in NODES])


def label_every_bump(tenant, start) -> None:
    rows = []
    for series in Series.objects.for_tenant(tenant).filter(node__name__in=NODES):
        for minute, verdict in [*((m, Feedback.Verdict.FALSE_ALARM) for m in (*DAY1_BUMPS, *DAY2_BUMPS)),
                                (BIG_BUMP, Feedback.Verdict.REAL)]:
            rows.append(Feedback(
                tenant=tenant, series=series, node_id=series.node_id, metric_name="cpu", score=0.6, verdict=verdict,
                window_start=at_minute(start, minute) - MARGIN, by="test",
                window_end=at_minute(start, minute) + timedelta(minutes=DURATION) + MARGIN,
            ))
    Feedback.objects.for_tenant(tenant).bulk_create(rows)
