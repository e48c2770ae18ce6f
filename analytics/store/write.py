"""The bulk write path: resolve series names to ids, write points, count.

``resolve_series`` then ``write_points`` inside one ``transaction.atomic()`` store a
batch all or nothing. On PostgreSQL the points go by binary COPY (payload built with
numpy, rows sorted by series and time) straight into the hot table; a batch that
re-sends stored points instead goes through a temporary staging table and
``INSERT ... SELECT ... ON CONFLICT DO UPDATE``, so a re-sent point overwrites (last
value wins). Points of
a day that has already been compacted land in the hot table too (its partition, or the
DEFAULT partition once the day's partition has been dropped); the next compaction
merges them into the existing chunk, and reads let them override the chunk meanwhile.

Under row-level security (PostgreSQL, inside ``tenant_scope``: see ``tenants.rls``)
PostgreSQL refuses ``COPY FROM`` into the hot table, so a tenant's batch always goes
through its staging table: binary COPY into the temporary table (no RLS on it), then
``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` into the hot table, where the policies'
WITH CHECK vets every row. Outside any scope (operators, system tasks, benchmarks) the
direct COPY fast path stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
from django.db import connection, transaction

from analytics.models import Series
from analytics.store import counters
from analytics.store.pg import copy_in, is_postgresql, raw_connection, us_to_datetime
from tenants import rls
from tenants.models import Cluster, Node
from tenants.scoping import ScopeError, _tenant_id

SeriesKey = tuple[str, str, str]  # (cluster name, node name, metric name)
STAGE_TABLE = "fw_point_stage"
# The tenant role's own staging table: a temporary table belongs to the role that created
# it, and one session alternates between the login role and the tenant role.
TENANT_STAGE_TABLE = "fw_point_stage_tenant"


class ResolvedSeries(dict):
    """{key: series_id} for the keys given to ``resolve_series``, plus ``.ids``: a numpy
    int64 array of the ids in the order of those keys, so ``resolved[key_index]`` with an
    integer numpy array maps a whole batch's key indexes to series ids at once."""

    ids: np.ndarray

    def __getitem__(self, key):
        if isinstance(key, np.ndarray):
            return self.ids[key]
        return super().__getitem__(key)


def _lookup(tenant_id: int, keys: set[SeriesKey]) -> dict[SeriesKey, int]:
    if not keys:
        return {}
    clusters = {k[0] for k in keys}
    nodes = {k[1] for k in keys}
    metrics = {k[2] for k in keys}
    rows = (
        Series.objects.for_tenant(tenant_id)
        .filter(cluster__name__in=clusters, node__name__in=nodes, metric_name__in=metrics)
        .values_list("id", "cluster__name", "node__name", "metric_name")
    )
    found = {}
    for series_id, cluster, node, metric in rows:
        if (cluster, node, metric) in keys:
            found[(cluster, node, metric)] = series_id
    return found


def _ensure_clusters(tenant_id: int, names: set[str]) -> dict[str, int]:
    rows = Cluster.objects.for_tenant(tenant_id)
    found = dict(rows.filter(name__in=names).values_list("name", "id"))
    missing = names - found.keys()
    if missing:
        Cluster.objects.unscoped().bulk_create(
            [Cluster(tenant_id=tenant_id, name=name) for name in sorted(missing)], ignore_conflicts=True
        )
        found.update(rows.filter(name__in=missing).values_list("name", "id"))
    return found


def _ensure_nodes(tenant_id: int, pairs: set[tuple[str, str]], cluster_ids: Mapping[str, int]) -> dict[tuple[str, str], int]:
    rows = Node.objects.for_tenant(tenant_id)
    by_cluster = {cluster_ids[c] for c, _ in pairs}
    names = {n for _, n in pairs}

    def select(node_names: set[str]) -> dict[tuple[str, str], int]:
        wanted = {(cluster_ids[c], n): (c, n) for c, n in pairs}
        result = {}
        for node_id, cluster_id, name in rows.filter(cluster_id__in=by_cluster, name__in=node_names).values_list(
            "id", "cluster_id", "name"
        ):
            if (cluster_id, name) in wanted:
                result[wanted[(cluster_id, name)]] = node_id
        return result

    found = select(names)
    missing = pairs - found.keys()
    if missing:
        Node.objects.unscoped().bulk_create(
            [Node(tenant_id=tenant_id, cluster_id=cluster_ids[c], name=n) for c, n in sorted(missing)],
            ignore_conflicts=True,
        )
        found.update(select({n for _, n in missing}))
    return found


def resolve_series(
    tenant_id: int, keys: Iterable[SeriesKey], units: Mapping[SeriesKey, str] | None = None
) -> tuple[ResolvedSeries, int]:
    """Series ids for (cluster, node, metric) names; clusters, nodes and series are
    created on first sight (a unit, if given, is recorded then).

    Returns ({key: id} with ``.ids`` in the order of ``keys``, the number of series
    created). A handful of queries whatever the batch size: one when every series
    exists. Race-safe: creation is ``INSERT ... ON CONFLICT DO NOTHING`` then re-select,
    so concurrent batches naming the same new series both end up with the same id (the
    count of new series may then count it twice; it is informational).
    """
    tenant_id = _tenant_id(tenant_id)
    ordered = [tuple(k) for k in keys]
    wanted = set(ordered)
    units = units or {}
    found = _lookup(tenant_id, wanted)
    missing = wanted - found.keys()
    if missing:
        cluster_ids = _ensure_clusters(tenant_id, {k[0] for k in missing})
        node_ids = _ensure_nodes(tenant_id, {(k[0], k[1]) for k in missing}, cluster_ids)
        Series.objects.unscoped().bulk_create(
            [
                Series(
                    tenant_id=tenant_id,
                    cluster_id=cluster_ids[c],
                    node_id=node_ids[(c, n)],
                    metric_name=m,
                    unit=units.get((c, n, m), "") or "",
                )
                for c, n, m in sorted(missing)
            ],
            ignore_conflicts=True,
        )
        found.update(_lookup(tenant_id, missing))
        if missing - found.keys():  # cannot happen unless rows vanished concurrently
            raise RuntimeError(f"resolve_series: could not create {sorted(missing - found.keys())[:3]}")
    result = ResolvedSeries((k, found[k]) for k in ordered)
    result.ids = np.fromiter((found[k] for k in ordered), dtype=np.int64, count=len(ordered))
    return result, len(missing)


def prepare_points(
    series_ids: np.ndarray, ts_ns: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate; convert to microseconds; sort by (series, ts); keep the last occurrence of
    each (series, ts). Returns (series_ids, ts_us, values)."""
    series_ids = np.asarray(series_ids, dtype=np.int64)
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if not (series_ids.ndim == ts_ns.ndim == values.ndim == 1) or not (len(series_ids) == len(ts_ns) == len(values)):
        raise ValueError("write_points: series_ids, ts_ns and values must be 1-d arrays of one length")
    if not np.isfinite(values).all():
        raise ValueError("values: must be finite (no NaN or infinity)")
    ts_us = ts_ns // 1000  # PostgreSQL keeps microseconds
    order = np.lexsort((ts_us, series_ids))  # stable: equal keys keep their batch order
    s, t, v = series_ids[order], ts_us[order], values[order]
    if len(s) > 1:
        keep = np.empty(len(s), dtype=bool)
        keep[-1] = True
        np.not_equal(s[1:], s[:-1], out=keep[:-1])
        keep[:-1] |= t[1:] != t[:-1]
        if not keep.all():
            s, t, v = s[keep], t[keep], v[keep]
    return s, t, v


def _series_last(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per series (s sorted): ids, newest ts, point count."""
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    starts = np.concatenate(([0], ends[:-1] + 1))
    return s[ends], t[ends], ends - starts + 1


def _owned(tenant_id: int, ids: np.ndarray) -> dict[int, int]:
    """{series_id: node_id} for the ids; raises if any is not the tenant's."""
    wanted = [int(i) for i in ids]
    if is_postgresql():
        with raw_connection().cursor() as cur:
            cur.execute(
                "SELECT id, node_id FROM analytics_series WHERE tenant_id = %s AND id = ANY(%s::bigint[])",
                (tenant_id, wanted),
            )
            owned = dict(cur.fetchall())
    else:
        owned = dict(Series.objects.for_tenant(tenant_id).filter(id__in=wanted).values_list("id", "node_id"))
    if len(owned) != len(wanted):
        raise ScopeError(f"write_points: {len(wanted) - len(owned)} series id(s) are not tenant {tenant_id}'s")
    return owned


def _ensure_stage(cur, table: str = STAGE_TABLE) -> None:
    # Every call: a flag would go stale when the transaction that created it rolls back.
    cur.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} "
        "(series_id bigint NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL) ON COMMIT DELETE ROWS"
    )


def _insert_staged(tenant_id: int, columns: list, stage: str, *, try_plain: bool) -> None:
    """COPY into the staging table, then INSERT ... SELECT into the hot table (RLS, when
    on, vets every row). ``try_plain``: a plain INSERT first, in a savepoint (the
    staged rows stay: they were copied before it), and the upsert only if a point
    exists already: ``ON CONFLICT DO UPDATE`` costs about twice a plain INSERT."""
    from psycopg import errors

    with raw_connection().cursor() as cur:
        _ensure_stage(cur, stage)
        copy_in(cur, stage, ("series_id", "ts", "value"), columns[1:])
        select = f"INSERT INTO analytics_point (tenant_id, series_id, ts, value) SELECT %s, series_id, ts, value FROM {stage}"
        inserted = False
        if try_plain:
            try:
                with transaction.atomic():
                    cur.execute(select, (tenant_id,))
                inserted = True
            except errors.UniqueViolation:
                pass
        if not inserted:
            cur.execute(select + " ON CONFLICT (tenant_id, series_id, ts) DO UPDATE SET value = EXCLUDED.value", (tenant_id,))
        cur.execute(f"DELETE FROM {stage}")  # a second call in this transaction starts empty


def _write_postgresql(tenant_id: int, s: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
    """Fast path: binary COPY straight into the hot table, in a savepoint. If a point
    exists already (a re-send), COPY fails on the primary key: roll back to the
    savepoint and upsert through the staging table instead (about twice the cost, so
    only paid by batches that do overwrite).

    In a tenant's scope (row-level security on: COPY into the hot table is refused) the
    batch goes through the tenant's staging table: COPY there, then a plain
    ``INSERT ... SELECT`` (the upsert only for a re-send)."""
    from psycopg import errors

    columns = [("int8", np.full(len(s), tenant_id, dtype=np.int64)), ("int8", s), ("timestamptz", t), ("float8", v)]
    if rls.tenant_role_active():
        _insert_staged(tenant_id, columns, TENANT_STAGE_TABLE, try_plain=True)
        return
    try:
        with transaction.atomic(), raw_connection().cursor() as cur:
            copy_in(cur, "analytics_point", ("tenant_id", "series_id", "ts", "value"), columns)
        return
    except errors.UniqueViolation:
        pass
    _insert_staged(tenant_id, columns, STAGE_TABLE, try_plain=False)


def _write_sqlite(tenant_id: int, s: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO analytics_point (tenant_id, series_id, ts, value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, series_id, ts) DO UPDATE SET value = excluded.value",
            [(tenant_id, si, adapt(us_to_datetime(ti)), vi) for si, ti, vi in zip(s.tolist(), t.tolist(), v.tolist(), strict=True)],
        )


def _update_last_point(tenant_id: int, ids: np.ndarray, lasts: list[datetime]) -> None:
    if is_postgresql():
        with raw_connection().cursor() as cur:
            cur.execute(
                """
                UPDATE analytics_series AS s SET last_point_at = u.last
                FROM unnest(%s::bigint[], %s::timestamptz[]) AS u(id, last)
                WHERE s.id = u.id AND s.tenant_id = %s AND (s.last_point_at IS NULL OR s.last_point_at < u.last)
                """,
                ([int(i) for i in ids], lasts, tenant_id),
            )
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cur:
        cur.executemany(
            "UPDATE analytics_series SET last_point_at = %s"
            " WHERE id = %s AND tenant_id = %s AND (last_point_at IS NULL OR last_point_at < %s)",
            [(adapt(last), series_id, tenant_id, adapt(last)) for series_id, last in zip(ids.tolist(), lasts, strict=True)],
        )


def write_points(
    tenant_id: int, series_ids: np.ndarray, ts_ns: np.ndarray, values: np.ndarray, *, count_batch: bool = True
) -> int:
    """Store points (int64 series ids, int64 nanoseconds since the epoch, float64 values)
    for the tenant, in the caller's transaction (a savepoint of it).

    Timestamps are truncated to microseconds. Within the batch the last occurrence of a
    (series, ts) wins, and a point already stored is overwritten. Raises ``ScopeError``
    (writing nothing) if any series id is not the tenant's, ``ValueError`` on
    non-finite values. Updates ``Series.last_point_at`` and the accepted-points counters
    (per tenant and per node, counting every point received), so call it last in the
    transaction: the counter rows are shared by every batch of the tenant.
    Returns the number of distinct points written.
    """
    tenant_id = _tenant_id(tenant_id)
    s, t, v = prepare_points(series_ids, ts_ns, values)
    if not len(s):
        return 0
    ids, lasts_us, _ = _series_last(s, t)
    received_ids, received = np.unique(np.asarray(series_ids, dtype=np.int64), return_counts=True)  # duplicates count
    with transaction.atomic():
        node_of = _owned(tenant_id, ids)
        if is_postgresql():
            _write_postgresql(tenant_id, s, t, v)
        else:
            _write_sqlite(tenant_id, s, t, v)
        lasts = [us_to_datetime(x) for x in lasts_us.tolist()]
        _update_last_point(tenant_id, ids, lasts)
        node_points: dict[int, int] = {}
        node_last: dict[int, datetime] = {}
        for series_id, n in zip(received_ids.tolist(), received.tolist(), strict=True):
            node = node_of[series_id]
            node_points[node] = node_points.get(node, 0) + n
        for series_id, last in zip(ids.tolist(), lasts, strict=True):
            node = node_of[series_id]
            node_last[node] = max(node_last.get(node, last), last)
        nodes = list(node_points)
        counters.add_accepted(
            tenant_id, len(series_ids), nodes, [node_points[n] for n in nodes], [node_last[n] for n in nodes],
            batches=1 if count_batch else 0,
        )
    return len(s)


def record_rejection(tenant_id: int, reasons: Mapping[str, int], *, batches: int = 1) -> None:
    """Count a rejected batch's points by reason ({reason: points}) for today (UTC)."""
    counters.add_rejected(_tenant_id(tenant_id), reasons, batches=batches)


def copy_raw(
    tenant_id: int, series_ids: np.ndarray, ts_ns: np.ndarray, values: np.ndarray, *, method: str = "write_row"
) -> int:
    """Benchmark baseline: binary COPY of the rows straight into the hot table, with no
    de-duplication, upsert, ownership check or counters (PostgreSQL only; duplicate
    keys fail). ``method="write_row"`` uses psycopg's ``copy.write_row`` per row (the
    NOTES' measured baseline); ``"numpy"`` writes one payload built with numpy."""
    if not is_postgresql():
        raise NotImplementedError("copy_raw: PostgreSQL only")
    series_ids = np.asarray(series_ids, dtype=np.int64)
    ts_us = np.asarray(ts_ns, dtype=np.int64) // 1000
    values = np.asarray(values, dtype=np.float64)
    with transaction.atomic(), raw_connection().cursor() as cur:
        if method == "numpy":
            tenants = np.full(len(values), tenant_id, dtype=np.int64)
            copy_in(cur, "analytics_point", ("tenant_id", "series_id", "ts", "value"),
                    [("int8", tenants), ("int8", series_ids), ("timestamptz", ts_us), ("float8", values)])
        elif method == "write_row":
            with cur.copy("COPY analytics_point (tenant_id, series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8", "timestamptz", "float8"])
                for s, t, v in zip(series_ids.tolist(), ts_us.tolist(), values.tolist(), strict=True):
                    copy.write_row((tenant_id, s, us_to_datetime(t), v))
        else:
            raise ValueError(f"copy_raw: unknown method {method!r}")
    return len(values)


__all__: Sequence[str] = ["ResolvedSeries", "copy_raw", "prepare_points", "record_rejection", "resolve_series", "write_points"]
