"""The write contract of detection results: ``store_anomaly_results()`` (anomaly episodes)
and ``store_aggregated_scores()`` (idempotent upserts).

One row per anomaly *episode* of a series and engine. An incoming anomaly continues a
stored episode of the same series and engine when it overlaps it or starts at most
``gap`` after its end (default: one detection window, FLEETWATCH_DETECTION_WINDOW_SECONDS):
so a long anomaly that the next periodic run sees again stays one row, however many runs
it spans. A continued episode starts at the earliest start, ends at the latest end, and
carries its peak: the highest score, with that verdict's label, magnitude and
explanation (on a tie the stored verdict stays, so a rerun changes nothing). Incoming
anomalies are merged among themselves the same way, and an incoming piece that bridges
two stored episodes joins them. An anomaly with score 0 (no evidence: e.g. an engine's
suppressed repeat) is stored only as part of an episode with a higher peak, so no row
counts as an anomaly with score 0. Writers of one series are serialised (a transaction
advisory lock per series on PostgreSQL), so concurrent runs cannot split an episode.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analytics.core.contracts import AggregatedAnomalyScore, AnomalyResult
from config.pg import is_postgresql, raw_connection
from results.models import AggregatedScore, Anomaly

ANOMALY_LOCK = 0x46570002  # advisory lock class for one series' anomaly rows; the series id is the second key
VERDICT_FIELDS = ("score", "label", "magnitude", "explanation", "text")


@dataclass
class _Piece:
    """A stored episode (``row`` set) or an incoming anomaly, on one timeline."""

    start: datetime
    end: datetime
    score: float
    verdict: dict
    row: Anomaly | None = None


@dataclass
class _Episode:
    pieces: list[_Piece] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return max(p.end for p in self.pieces)

    @property
    def peak(self) -> _Piece:
        # the highest score; on a tie the stored verdict, then the earliest
        return max(self.pieces, key=lambda p: (p.score, p.row is not None, -p.start.timestamp()))


def _verdict(result: AnomalyResult) -> dict:
    return {
        "score": result.anomaly_score,
        "label": result.anomaly_label.value,
        "magnitude": result.magnitude,
        "explanation": result.explanation.to_dict() if result.explanation else {},
        "text": result.explanation.text if result.explanation else "",
    }


def _episodes(pieces: list[_Piece], gap: timedelta) -> list[_Episode]:
    """Chain pieces that overlap or lie at most ``gap`` apart (sweep in start order)."""
    episodes: list[_Episode] = []
    for piece in sorted(pieces, key=lambda p: (p.start, p.end)):
        if episodes and piece.start <= episodes[-1].end + gap:
            episodes[-1].pieces.append(piece)
        else:
            episodes.append(_Episode([piece]))
    return episodes


def _lock_series(series_ids: Iterable[int]) -> None:
    """Serialise writers of the same series' anomalies until the transaction ends (in id
    order, so two writers cannot deadlock). SQLite serialises writers anyway."""
    if not is_postgresql():
        return
    with raw_connection().cursor() as cur:
        for series_id in sorted(set(series_ids)):
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ANOMALY_LOCK, series_id % 2**31))


def store_anomaly_results(
    tenant_id: int,
    results: Iterable[AnomalyResult],
    series_ids: Mapping[tuple, int],
    *,
    run_id: int | None = None,
    gap: timedelta | None = None,
) -> int:
    """Store the anomalous results (NORMAL ones are not stored) as episodes (see the
    module docstring); ``first_score`` keeps an episode's first stored score.
    ``series_ids`` maps a result's ``series_key`` to its Series id; the result's
    cluster_id and node_id are the database ids. Returns the number of episode rows
    written (inserted or updated)."""
    return len(store_episodes(tenant_id, results, series_ids, run_id=run_id, gap=gap))


def store_episodes(
    tenant_id: int,
    results: Iterable[AnomalyResult],
    series_ids: Mapping[tuple, int],
    *,
    run_id: int | None = None,
    gap: timedelta | None = None,
) -> list[Anomaly]:
    """:func:`store_anomaly_results`, returning the episode rows written."""
    gap = timedelta(seconds=settings.FLEETWATCH_DETECTION_WINDOW_SECONDS) if gap is None else gap
    incoming: dict[tuple[int, str], list[tuple[AnomalyResult, _Piece]]] = defaultdict(list)
    for result in results:
        if result.is_anomaly:
            piece = _Piece(result.window_start, result.window_end, result.anomaly_score, _verdict(result))
            incoming[(series_ids[result.series_key], result.engine)].append((result, piece))
    if not incoming:
        return []
    with transaction.atomic():
        _lock_series(series_id for series_id, _ in incoming)
        stored = _stored_pieces(tenant_id, incoming, gap)
        now = timezone.now()
        doomed: list[int] = []
        kept: list[Anomaly] = []
        created: list[Anomaly] = []
        for key, new in incoming.items():
            first_result = new[0][0]
            for episode in _episodes([p for _, p in new] + stored.get(key, []), gap):
                rows = sorted((p.row for p in episode.pieces if p.row is not None), key=lambda r: r.window_start)
                if len(rows) == len(episode.pieces):
                    continue  # stored episodes this batch does not touch
                peak = episode.peak
                if peak.score <= 0.0:
                    continue  # no evidence: not an anomaly on its own
                row = rows[0] if rows else Anomaly(
                    tenant_id=tenant_id, series_id=key[0], engine=key[1], metric_name=first_result.metric_name,
                    cluster_id=database_id(first_result.cluster_id), node_id=database_id(first_result.node_id),
                    first_score=peak.score, created_at=now,
                )
                doomed += [r.pk for r in rows[1:]]
                row.window_start = min(p.start for p in episode.pieces)
                row.window_end = episode.end
                for name in VERDICT_FIELDS:
                    setattr(row, name, peak.verdict[name])
                row.run_id, row.updated_at = run_id, now
                (kept if rows else created).append(row)
        anomalies = Anomaly.objects.for_tenant(tenant_id)
        if doomed:  # first, so a kept row may take the start of one it absorbed
            anomalies.filter(pk__in=doomed).delete()
        anomalies.bulk_update(kept, ["window_start", "window_end", *VERDICT_FIELDS, "run", "updated_at"], batch_size=1000)
        anomalies.bulk_create(created, batch_size=1000)
    return kept + created


def _stored_pieces(
    tenant_id: int, incoming: Mapping[tuple[int, str], list[tuple[AnomalyResult, _Piece]]], gap: timedelta
) -> dict[tuple[int, str], list[_Piece]]:
    """The stored episodes each incoming group may continue: same series and engine,
    within ``gap`` of the group's time span."""
    near = Q(pk__in=[])
    for (series_id, engine), new in incoming.items():
        first = min(p.start for _, p in new)
        last = max(p.end for _, p in new)
        near |= Q(series_id=series_id, engine=engine, window_end__gte=first - gap, window_start__lte=last + gap)
    out: dict[tuple[int, str], list[_Piece]] = defaultdict(list)
    for row in Anomaly.objects.for_tenant(tenant_id).filter(near).order_by("window_start"):
        verdict = {name: getattr(row, name) for name in VERDICT_FIELDS}
        out[(row.series_id, row.engine)].append(_Piece(row.window_start, row.window_end, row.score, verdict, row))
    return out


def database_id(identifier: Hashable) -> int:
    """A core identifier (any hashable there) that must be a database id here: results
    are stored for series of the store, whose cluster and node ids are integers."""
    if type(identifier) is not int:
        raise TypeError(f"expected a database id (an integer), got {identifier!r}")
    return identifier


def subject_of(score: AggregatedAnomalyScore) -> str:
    if score.node_id is not None:
        return f"node:{score.node_id}"
    if score.cluster_id is not None:
        return f"cluster:{score.cluster_id}"
    return "tenant"


def store_aggregated_scores(
    tenant_id: int, scores: Iterable[AggregatedAnomalyScore], period_start, period_end, *, run_id: int | None = None
) -> int:
    """Upsert scores on (tenant, level, subject, strategy, period): same period, same rows."""
    rows = [
        AggregatedScore(
            tenant_id=tenant_id,
            run_id=run_id,
            level=score.level,
            subject=subject_of(score),
            cluster_id=None if score.cluster_id is None else database_id(score.cluster_id),
            node_id=None if score.node_id is None else database_id(score.node_id),
            strategy=score.aggregation_strategy.value,
            score=score.aggregate_score,
            num_metrics_analyzed=score.num_metrics_analyzed,
            num_anomalies_detected=score.num_anomalies_detected,
            period_start=period_start,
            period_end=period_end,
            driver=_json_safe(score.driver),
        )
        for score in scores
    ]
    AggregatedScore.objects.for_tenant(tenant_id).bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "level", "subject", "strategy", "period_start", "period_end"],
        update_fields=["run", "score", "num_metrics_analyzed", "num_anomalies_detected", "driver"],
        batch_size=1000,
    )
    return len(rows)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, int | float | str):  # enums
        return value.value
    return value
