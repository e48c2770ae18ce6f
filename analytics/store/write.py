"""The bulk write path: resolve series names to ids, write points, count.

``resolve_series`` then ``write_points`` inside one ``transaction.atomic()`` store a
batch all or nothing, rows sorted by series and time. New points go into the hot table
by binary COPY (payload built with numpy) where PostgreSQL allows it: outside any
tenant scope, for a login role that bypasses row-level security. In a tenant's scope
(``tenants.rls``) PostgreSQL refuses ``COPY FROM`` into the hot table, so the batch goes
by ``INSERT ... SELECT`` from three binary array parameters, where the policies' WITH
CHECK vets every row. A batch that re-sends stored points is upserted (``ON CONFLICT
DO UPDATE``), so a re-sent point overwrites (last value wins). Points of a day that has
already been compacted land in the hot table too (its partition, or the DEFAULT
partition once the day's partition has been dropped); the next compaction merges them
into the existing chunk, and reads let them override the chunk meanwhile.

Every other statement of the write path sends its id and time lists as binary arrays
too (``ArrayParam``): rendering a thousand timestamps as SQL text costs more than
PostgreSQL's work on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from django.db import connection, transaction
from psycopg import errors

from analytics.models import Series
from analytics.store import counters
from analytics.store.series_ids import series_id_cache
from config.pg import (
    ArrayParam,
    copy_in,
    is_postgresql,
    raw_connection,
    server_cursor,
    us_to_datetime,
)
from tenants import quotas, rls
from tenants.models import Cluster, Node, Tenant
from tenants.names import SeriesKey


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
    """{key: series id} of the keys that exist. Two indexed lookups (nodes by
    cluster and node name, then series by node and metric), each selecting a small
    superset that Python narrows: one plan whatever the tables' statistics say (a single
    join over the key list was planned badly on tables not analysed yet)."""
    if not keys:
        return {}
    return _series_on_nodes(tenant_id, keys, _node_ids(tenant_id, {(c, n) for c, n, _ in keys}))


def _node_ids(tenant_id: int, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """{(cluster name, node name): node id} of the pairs that exist."""
    found = {}
    for node_id, cluster, node in (
        Node.objects.for_tenant(tenant_id)
        .filter(cluster__name__in={c for c, _ in pairs}, name__in={n for _, n in pairs})
        .values_list("id", "cluster__name", "name")
    ):
        if (cluster, node) in pairs:
            found[(cluster, node)] = node_id
    return found


def _series_on_nodes(tenant_id: int, keys: set[SeriesKey], node_ids: Mapping[tuple[str, str], int]) -> dict[SeriesKey, int]:
    """{key: series id} of the keys whose node is in ``node_ids`` and whose series exists."""
    names = {node_id: pair for pair, node_id in node_ids.items()}
    if not names:
        return {}
    found = {}
    for series_id, node_id, metric in (
        Series.objects.for_tenant(tenant_id)
        .filter(node_id__in=list(names), metric_name__in={m for _, _, m in keys})
        .values_list("id", "node_id", "metric_name")
    ):
        key = (*names[node_id], metric)
        if key in keys:
            found[key] = series_id
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
    found = _node_ids(tenant_id, pairs)
    missing = pairs - found.keys()
    if missing:
        Node.objects.unscoped().bulk_create(
            [Node(tenant_id=tenant_id, cluster_id=cluster_ids[c], name=n) for c, n in sorted(missing)],
            ignore_conflicts=True,
        )
        found.update(_node_ids(tenant_id, missing))
    return found


def resolve_series(
    tenant_id: int, keys: Iterable[SeriesKey], units: Mapping[SeriesKey, str] | None = None,
    max_series: int | None = None,
) -> tuple[ResolvedSeries, int]:
    """Series ids for (cluster, node, metric) names; clusters, nodes and series are
    created on first sight (a unit, if given, is recorded then).

    Returns ({key: id} with ``.ids`` in the order of ``keys``, the number of series
    created). Ids this process has resolved before come from its memory
    (``series_id_cache``); the others cost a handful of queries whatever the batch size: two
    when every series exists. Race-safe: creation is ``INSERT ... ON CONFLICT DO
    NOTHING`` then re-select, so concurrent batches naming the same new series both end
    up with the same id (the count of new series may then count it twice; it is
    informational).

    ``max_series`` (the plan's ``hard_limit_series``): before creating any, the tenant's
    row is locked until the transaction ends, the new series are looked up again (a
    concurrent batch may have created some) and counted with the tenant's existing ones;
    ``tenants.quotas.SeriesLimitExceeded`` if they do not fit, so concurrent batches
    cannot overshoot. Call it inside the batch's transaction.
    """
    ordered: list[SeriesKey] = [(c, n, m) for c, n, m in keys]
    wanted = set(ordered)
    units = units or {}
    found = series_id_cache.lookup(tenant_id, wanted)
    unknown = wanted - found.keys()
    fetched = _lookup(tenant_id, unknown)
    missing = unknown - fetched.keys()
    if missing and max_series is not None:
        Tenant.objects.select_for_update().filter(pk=tenant_id).values_list("pk").get()
        fetched.update(_lookup(tenant_id, missing))
        missing -= fetched.keys()
        quotas.check_series(len(missing), Series.objects.unscoped().filter(tenant_id=tenant_id).count(), max_series)
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
        fetched.update(_series_on_nodes(tenant_id, missing, node_ids))
        if missing - fetched.keys():  # cannot happen unless rows vanished concurrently
            raise RuntimeError(f"resolve_series: could not create {sorted(missing - fetched.keys())[:3]}")
    series_id_cache.remember_on_commit(tenant_id, fetched)
    found.update(fetched)
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


def _series_last(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per series (s sorted): ids, newest ts."""
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    return s[ends], t[ends]


class UnknownSeries(LookupError):
    """Series ids given to ``write_points`` that are not the tenant's series (any more):
    most often an id this process remembered for a series since deleted, which the
    ingestion service answers by resolving the names afresh. Not a ``ScopeError``: no
    handler of isolation violations should mistake it for one."""


def _insert_rows(tenant_id: int, s: np.ndarray, t: np.ndarray, v: np.ndarray, *, upsert: bool) -> None:
    """``INSERT ... SELECT`` of the points from three binary array parameters (row-level
    security, when on, vets every row); ``upsert``: a stored point is overwritten."""
    conflict = " ON CONFLICT (tenant_id, series_id, ts) DO UPDATE SET value = EXCLUDED.value" if upsert else ""
    with server_cursor() as cur:
        cur.execute(
            # unnest() in the select list: zipped like unnest(a, b, c) in FROM, without its row store
            "INSERT INTO analytics_point (tenant_id, series_id, ts, value) SELECT %s, unnest(%s), unnest(%s), unnest(%s)"
            + conflict,
            (tenant_id, ArrayParam("int8", s), ArrayParam("timestamptz", t), ArrayParam("float8", v)),
        )


def _write_postgresql(tenant_id: int, s: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
    """New points in a savepoint, then, if a point exists already (a re-send: the primary
    key fails the savepoint), an upsert (about twice the cost, so only paid by batches
    that do overwrite)."""
    try:
        with transaction.atomic():
            _insert_new(tenant_id, s, t, v)
        return
    except errors.UniqueViolation:
        pass
    _insert_rows(tenant_id, s, t, v, upsert=True)


def _insert_new(tenant_id: int, s: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
    """Binary COPY straight into the hot table where PostgreSQL allows it: outside any
    tenant scope, for a login role that bypasses row-level security. Otherwise (a
    tenant's scope, or an operator role subject to the policies) a plain ``INSERT``."""
    if not rls.tenant_role_active():
        try:
            with transaction.atomic(), raw_connection().cursor() as cur:
                columns = [("int8", np.full(len(s), tenant_id, dtype=np.int64)), ("int8", s), ("timestamptz", t), ("float8", v)]
                copy_in(cur, "analytics_point", ("tenant_id", "series_id", "ts", "value"), columns)
            return
        except errors.FeatureNotSupported:  # "COPY FROM not supported with row-level security"
            pass
    _insert_rows(tenant_id, s, t, v, upsert=False)


def _write_sqlite(tenant_id: int, s: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO analytics_point (tenant_id, series_id, ts, value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, series_id, ts) DO UPDATE SET value = excluded.value",
            [(tenant_id, si, adapt(us_to_datetime(ti)), vi) for si, ti, vi in zip(s.tolist(), t.tolist(), v.tolist(), strict=True)],
        )


def _advance_last_point(tenant_id: int, ids: np.ndarray, lasts_us: np.ndarray) -> dict[int, int]:
    """Move each series' ``last_point_at`` up to the batch's newest point; returns
    {series id: node id} of the tenant's series among ``ids``, which is also the check
    that every id is the tenant's (under row-level security, only its rows can match)."""
    if is_postgresql():
        with server_cursor() as cur:
            cur.execute(
                """
                UPDATE analytics_series AS s SET last_point_at = u.last
                FROM unnest(%s, %s) AS u(id, last)
                WHERE s.id = u.id AND s.tenant_id = %s AND (s.last_point_at IS NULL OR s.last_point_at < u.last)
                RETURNING s.id, s.node_id
                """,
                (ArrayParam("int8", ids), ArrayParam("timestamptz", lasts_us), tenant_id),
            )
            owned = dict(cur.fetchall())
            if len(owned) < len(ids):  # not moved forward (a re-send, a backfill), or not the tenant's
                rest = ids[~np.isin(ids, np.fromiter(owned, np.int64, len(owned)))]
                cur.execute("SELECT id, node_id FROM analytics_series WHERE tenant_id = %s AND id = ANY(%s)",
                            (tenant_id, ArrayParam("int8", rest)))
                owned.update(cur.fetchall())
            return owned
    owned = dict(Series.objects.for_tenant(tenant_id).filter(id__in=ids.tolist()).values_list("id", "node_id"))
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cur:
        cur.executemany(
            "UPDATE analytics_series SET last_point_at = %s"
            " WHERE id = %s AND tenant_id = %s AND (last_point_at IS NULL OR last_point_at < %s)",
            [(adapt(last), series_id, tenant_id, adapt(last))
             for series_id, last in zip(ids.tolist(), map(us_to_datetime, lasts_us.tolist()), strict=True)],
        )
    return owned


def write_points(
    tenant_id: int,
    series_ids: np.ndarray,
    ts_ns: np.ndarray,
    values: np.ndarray,
    *,
    count_batch: bool = True,
) -> int:
    """Store points (int64 series ids, int64 nanoseconds since the epoch, float64 values)
    for the tenant, in the caller's transaction (a savepoint of it).

    Timestamps are truncated to microseconds. Within the batch the last occurrence of a
    (series, ts) wins, and a point already stored is overwritten. Raises ``UnknownSeries``
    (writing nothing) if any series id is not the tenant's, ``ValueError`` on
    non-finite values. Updates ``Series.last_point_at`` and the accepted-points counters
    (per tenant and per node, counting every point received), so call it last in the
    transaction: the counter rows are shared by every batch of the tenant.
    Returns the number of distinct points written.
    """
    s, t, v = prepare_points(series_ids, ts_ns, values)
    if not len(s):
        return 0
    ids, lasts_us = _series_last(s, t)
    received = np.unique(np.asarray(series_ids, dtype=np.int64), return_counts=True)[1]  # per id of ids; repeats count
    with transaction.atomic():
        node_of = _advance_last_point(tenant_id, ids, lasts_us)
        if len(node_of) != len(ids):  # the savepoint rolls the update back
            series_id_cache.forget(tenant_id)  # an id may have come from there
            raise UnknownSeries(f"write_points: {len(ids) - len(node_of)} series id(s) are not tenant {tenant_id}'s")
        if is_postgresql():
            _write_postgresql(tenant_id, s, t, v)
        else:
            _write_sqlite(tenant_id, s, t, v)
        nodes, slot = np.unique(np.fromiter(map(node_of.__getitem__, ids.tolist()), np.int64, len(ids)), return_inverse=True)
        node_points = np.zeros(len(nodes), dtype=np.int64)
        np.add.at(node_points, slot, received)
        node_last = np.full(len(nodes), np.iinfo(np.int64).min)
        np.maximum.at(node_last, slot, lasts_us)
        counters.add_accepted(tenant_id, len(series_ids), nodes, node_points, node_last, batches=1 if count_batch else 0)
    return len(s)


__all__: Sequence[str] = ["ResolvedSeries", "UnknownSeries", "prepare_points", "resolve_series", "write_points"]
