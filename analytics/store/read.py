"""The read contract: ``get_metric_series()`` and its batch form for the workers.

A range may span hot points (one row each) and cold chunks (one encoded row per series
and day); reads stitch them transparently. A point in hot overrides a chunk's value at
the same timestamp (a late re-send after compaction). Ranges are half-open
[start, end). With a resolution ("5m" or "1h") a read returns bucket means: from the
stored roll-ups for compacted days, computed on the fly from the points for days that
have hot points. A bucket is included when its start lies in [floor(start), end), and
always aggregates the whole bucket.

Reads are tenant-scoped: a series that is not the tenant's is not found (single read:
``Series.DoesNotExist``; batch read: left out), never an existence leak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.core.contracts import MetricSeries
from analytics.models import Chunk, Point, Rollup, Series
from analytics.store.codec import decode_timestamps, decode_values
from config.pg import (
    US_PER_DAY,
    datetime_to_us,
    fetch_series_arrays,
    is_postgresql,
    raw_connection,
    us_to_datetime,
)

RESOLUTIONS = {"5m": 300, "1h": 3600}
_EMPTY_I = np.empty(0, dtype=np.int64)
_EMPTY_F = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class _Meta:
    series_id: int
    cluster_id: int
    node_id: int
    metric_name: str
    unit: str
    cluster: str
    node: str


def _metas(tenant_id: int, series_ids: Sequence[int]) -> dict[int, _Meta]:
    rows = (
        Series.objects.for_tenant(tenant_id)
        .filter(id__in=[int(i) for i in series_ids])
        .values_list("id", "cluster_id", "node_id", "metric_name", "unit", "cluster__name", "node__name")
    )
    return {row[0]: _Meta(*row) for row in rows}


def _split(series: np.ndarray, ts: np.ndarray, values: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Group points sorted by ``series`` into {series_id: (ts slice, values slice)}."""
    if not len(series):
        return {}
    bounds = np.flatnonzero(series[1:] != series[:-1]) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(series)]))
    return {int(series[a]): (ts[a:b], values[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)}


def _hot(tenant_id: int, ids: Sequence[int], start_us: int, end_us: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Hot points per series in [start, end), ascending: one round trip."""
    if not ids:
        return {}
    if is_postgresql():
        with raw_connection().cursor() as cur:
            rows = fetch_series_arrays(
                cur,
                "SELECT tenant_id, series_id, ts, value FROM analytics_point"
                " WHERE tenant_id = %s AND series_id = ANY(%s::bigint[]) AND ts >= %s AND ts < %s",
                (tenant_id, [int(i) for i in ids], us_to_datetime(start_us), us_to_datetime(end_us)),
            )
        return {series_id: (t, v) for _, series_id, t, v in rows}
    points = list(
        Point.objects.for_tenant(tenant_id)
        .filter(series_id__in=list(ids), ts__gte=us_to_datetime(start_us), ts__lt=us_to_datetime(end_us))
        .values_list("series_id", "ts", "value")
    )
    s = np.fromiter((r[0] for r in points), dtype=np.int64, count=len(points))
    t = np.fromiter((datetime_to_us(r[1]) for r in points), dtype=np.int64, count=len(points))
    v = np.fromiter((r[2] for r in points), dtype=np.float64, count=len(points))
    if len(s) > 1:
        order = np.lexsort((t, s))
        s, t, v = s[order], t[order], v[order]
    return _split(s, t, v)


def _cold(
    tenant_id: int, ids: Sequence[int], start_us: int, end_us: int, days: set[int] | None = None
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Chunk points per series in [start, end), ascending: one round trip.
    ``days`` (microseconds of UTC midnights) restricts the chunks read."""
    if not ids:
        return {}
    first_day = start_us - start_us % US_PER_DAY
    rows = (
        Chunk.objects.for_tenant(tenant_id)
        .filter(series_id__in=list(ids), period_start__gte=us_to_datetime(first_day), period_start__lt=us_to_datetime(end_us))
        .order_by("series_id", "period_start")
    )
    if days is not None:
        rows = rows.filter(period_start__in=[us_to_datetime(d) for d in days])
    per_series: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for series_id, ts_data, value_data in rows.values_list("series_id", "ts_data", "value_data"):
        ts, vs = per_series.setdefault(series_id, ([], []))
        ts.append(decode_timestamps(ts_data))
        vs.append(decode_values(value_data))
    out = {}
    for series_id, (ts_parts, value_parts) in per_series.items():
        t = ts_parts[0] if len(ts_parts) == 1 else np.concatenate(ts_parts)
        v = value_parts[0] if len(value_parts) == 1 else np.concatenate(value_parts)
        if len(t) and (t[0] < start_us or t[-1] >= end_us):
            lo, hi = np.searchsorted(t, [start_us, end_us], side="left")
            t, v = t[lo:hi], v[lo:hi]
        out[series_id] = (t, v)
    return out


def merge_points(
    cold: tuple[np.ndarray, np.ndarray] | None, hot: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Both ascending; on equal timestamps the hot value wins."""
    if cold is None or not len(cold[0]):
        return hot if hot is not None else (_EMPTY_I, _EMPTY_F)
    if hot is None or not len(hot[0]):
        return cold
    t = np.concatenate((cold[0], hot[0]))
    v = np.concatenate((cold[1], hot[1]))
    order = np.argsort(t, kind="stable")  # cold first, so a hot duplicate comes last
    t, v = t[order], v[order]
    keep = np.append(t[1:] != t[:-1], True)
    return t[keep], v[keep]


def _series(tenant_id: int, meta: _Meta, ts_us: np.ndarray, values: np.ndarray, extra: Mapping[str, Any]) -> MetricSeries:
    index = pd.DatetimeIndex((ts_us * 1000).view("M8[ns]")).tz_localize("UTC")
    return MetricSeries(
        tenant_id=tenant_id,
        cluster_id=meta.cluster_id,
        node_id=meta.node_id,
        metric_name=meta.metric_name,
        timestamps=index,
        values=values,
        metadata={"cluster": meta.cluster, "node": meta.node, "unit": meta.unit, "series_id": meta.series_id, **extra},
    )


def bucket_means(ts_us: np.ndarray, values: np.ndarray, width_s: int) -> tuple[np.ndarray, np.ndarray]:
    """(bucket starts, means) of ascending points, buckets aligned to the epoch."""
    if not len(ts_us):
        return _EMPTY_I, _EMPTY_F
    width = width_s * 1_000_000
    buckets = ts_us - ts_us % width
    starts = np.concatenate(([0], np.flatnonzero(buckets[1:] != buckets[:-1]) + 1))
    sums = np.add.reduceat(values, starts)
    counts = np.diff(np.append(starts, len(values)))
    return buckets[starts], sums / counts


def _read_raw(tenant_id: int, ids: Sequence[int], start_us: int, end_us: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    # Hot first, then cold: a compaction committing between the two statements moves
    # points from hot into chunks, so they are read twice (and de-duplicated), never
    # missed. (The other order could miss them.)
    hot = _hot(tenant_id, ids, start_us, end_us)
    cold = _cold(tenant_id, ids, start_us, end_us)
    return {i: merge_points(cold.get(i), hot.get(i)) for i in ids}


def _read_buckets(
    tenant_id: int, ids: Sequence[int], start_us: int, end_us: int, width_s: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    width = width_s * 1_000_000
    lo = start_us - start_us % width
    hi = -((-end_us) // width) * width  # whole buckets: those starting before end
    hot = _hot(tenant_id, ids, lo, hi)
    hot_days = {i: set(np.unique(t - t % US_PER_DAY).tolist()) for i, (t, _) in hot.items()}
    rollups: dict[int, tuple[list[int], list[float]]] = {}
    rows = Rollup.objects.for_tenant(tenant_id).filter(
        series_id__in=list(ids), resolution=width_s, bucket_start__gte=us_to_datetime(lo), bucket_start__lt=us_to_datetime(hi)
    )
    for series_id, bucket_start, total, count in rows.values_list("series_id", "bucket_start", "sum", "count"):
        bucket_us = datetime_to_us(bucket_start)
        if bucket_us - bucket_us % US_PER_DAY in hot_days.get(series_id, ()):
            continue  # that day has hot points: computed from the points below
        starts, means = rollups.setdefault(series_id, ([], []))
        starts.append(bucket_us)
        means.append(total / count)
    out = {}
    all_days = set().union(*hot_days.values()) if hot_days else set()
    cold = _cold(tenant_id, list(hot_days), lo, hi, days=all_days) if hot_days else {}
    for i in ids:
        parts_t, parts_v = [], []
        if i in rollups:
            parts_t.append(np.asarray(rollups[i][0], dtype=np.int64))
            parts_v.append(np.asarray(rollups[i][1], dtype=np.float64))
        if i in hot:
            t, v = merge_points(cold.get(i), hot[i])
            days = hot_days[i]
            mask = np.isin(t - t % US_PER_DAY, list(days))
            b, m = bucket_means(t[mask], v[mask], width_s)
            parts_t.append(b)
            parts_v.append(m)
        if not parts_t:
            out[i] = (_EMPTY_I, _EMPTY_F)
            continue
        t = np.concatenate(parts_t)
        v = np.concatenate(parts_v)
        order = np.argsort(t, kind="stable")
        out[i] = (t[order], v[order])
    return out


def _read(tenant_id: int, metas: list[_Meta], start: datetime, end: datetime, resolution: str | None) -> list[MetricSeries]:
    start_us, end_us = datetime_to_us(start), datetime_to_us(end)
    ids = [m.series_id for m in metas]
    if end_us <= start_us or not ids:
        data = {}
    elif resolution is None:
        data = _read_raw(tenant_id, ids, start_us, end_us)
    else:
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution: must be one of {sorted(RESOLUTIONS)} or None, got {resolution!r}")
        data = _read_buckets(tenant_id, ids, start_us, end_us, RESOLUTIONS[resolution])
    extra = {"resolution": resolution} if resolution else {}
    return [_series(tenant_id, m, *data.get(m.series_id, (_EMPTY_I, _EMPTY_F)), extra) for m in metas]


def get_metric_series(
    tenant_id: int,
    cluster_id: int,
    node_id: int,
    metric_name: str,
    start: datetime,
    end: datetime,
    resolution: str | None = None,
) -> MetricSeries:
    """One series' points in [start, end) (raw, or bucket means with ``resolution``
    "5m"/"1h"), hot and cold stitched. Metadata: cluster and node names, unit,
    series_id. Raises ``Series.DoesNotExist`` if the tenant has no such series."""
    series_id = (
        Series.objects.for_tenant(tenant_id)
        .filter(cluster_id=cluster_id, node_id=node_id, metric_name=metric_name)
        .values_list("id", flat=True)
        .first()
    )
    if series_id is None:
        raise Series.DoesNotExist(f"no series {metric_name!r} on node {node_id} of cluster {cluster_id}")
    return series_points(tenant_id, series_id, start, end, resolution)


def series_points(tenant_id: int, series_id: int, start: datetime, end: datetime, resolution: str | None = None) -> MetricSeries:
    """Like ``get_metric_series`` for a series id (for APIs that address series by id)."""
    metas = _metas(tenant_id, [series_id])
    if series_id not in metas:
        raise Series.DoesNotExist(f"no series {series_id}")
    return _read(tenant_id, [metas[series_id]], start, end, resolution)[0]


def get_metric_series_batch(
    tenant_id: int, series_ids: Sequence[int], start: datetime, end: datetime, resolution: str | None = None
) -> list[MetricSeries]:
    """Many series in [start, end): one query for their metadata, one round trip for
    hot points (binary COPY into numpy), one for cold chunks. In the order of
    ``series_ids``; ids that are not the tenant's are left out."""
    unique = list(dict.fromkeys(int(i) for i in series_ids))
    metas = _metas(tenant_id, unique)
    return _read(tenant_id, [metas[i] for i in unique if i in metas], start, end, resolution)
