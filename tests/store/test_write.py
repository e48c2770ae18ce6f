"""Write path: series resolution, COPY/upsert, last value wins, counters, tenant scoping."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import transaction

from analytics.models import NodeDailyCounter, Point, Series, TenantDailyCounter
from analytics.store.counters import add_rejected, today
from analytics.store.read import get_metric_series
from analytics.store.write import UnknownSeries, resolve_series, write_points
from tenants.models import Cluster, Node
from tenants.scoping import ScopeError
from tests.store.conftest import D0, ns, snapshot, write

pytestmark = pytest.mark.django_db(transaction=True)

KEYS = [("prod", "n1", "cpu"), ("prod", "n1", "mem"), ("prod", "n2", "cpu"), ("edge", "n1", "cpu")]


def test_resolve_creates_each_series_once_with_its_unit(tenant_x, django_assert_max_num_queries):
    with transaction.atomic(), django_assert_max_num_queries(9):  # select, create, re-select: clusters, nodes, series
        ids, new = resolve_series(tenant_x.pk, KEYS, {("prod", "n1", "cpu"): "%"})
    assert new == 4 and len(set(ids.values())) == 4
    assert np.array_equal(ids[np.array([3, 0, 0])], [ids[KEYS[3]], ids[KEYS[0]], ids[KEYS[0]]])
    with django_assert_max_num_queries(2):  # nodes by name, then their series
        again, new = resolve_series(tenant_x.pk, list(reversed(KEYS)))
    assert new == 0 and dict(again) == dict(ids)
    assert Cluster.objects.for_tenant(tenant_x).count() == 2
    assert Node.objects.for_tenant(tenant_x).count() == 3  # n1 in prod and n1 in edge are two nodes
    cpu = Series.objects.for_tenant(tenant_x).select_related("cluster", "node").get(pk=ids[KEYS[0]])
    assert (cpu.cluster.name, cpu.node.name, cpu.metric_name, cpu.unit) == ("prod", "n1", "cpu", "%")
    assert cpu.node.cluster_id == cpu.cluster_id


def test_resolve_only_creates_what_is_missing(tenant_x):
    resolve_series(tenant_x.pk, KEYS[:2])
    ids, new = resolve_series(tenant_x.pk, KEYS)
    assert new == 2 and Series.objects.for_tenant(tenant_x).count() == 4


def test_same_names_in_two_tenants_are_two_series(tenant_x, tenant_y):
    a, _ = resolve_series(tenant_x.pk, KEYS)
    b, new = resolve_series(tenant_y.pk, KEYS)
    assert new == 4 and not set(a.values()) & set(b.values())


def test_points_are_stored_and_read_back(tenant_x):
    ids, written = write(tenant_x, KEYS[:2], D0, 120)
    data = snapshot(tenant_x, ids.values(), D0, D0 + timedelta(days=1))
    for sid, (ts, values) in written.items():
        assert data[sid] == list(zip(ts.tolist(), values.tolist(), strict=True))


def test_resent_points_overwrite_and_the_last_in_a_batch_wins(tenant_x):
    ids, written = write(tenant_x, KEYS[:1], D0, 10)
    sid = ids[KEYS[0]]
    t = ns(D0)
    with transaction.atomic():
        # re-send minute 0 twice (the later value wins) and minute 1 once; add minute 99
        n = write_points(tenant_x.pk, np.array([sid, sid, sid, sid]), np.array([t, t + 60 * 10**9, t, t + 99 * 60 * 10**9]),
                         np.array([1.0, 2.0, 3.0, 4.0]))
    assert n == 3
    rows = dict(snapshot(tenant_x, [sid], D0, D0 + timedelta(days=1))[sid])
    assert len(rows) == 11
    assert rows[t] == 3.0 and rows[t + 60 * 10**9] == 2.0 and rows[t + 99 * 60 * 10**9] == 4.0
    assert rows[t + 2 * 60 * 10**9] == written[sid][1][2]
    assert Point.objects.for_tenant(tenant_x).count() == 11


def test_writing_to_another_tenants_series_raises_and_writes_nothing(tenant_x, tenant_y):
    theirs, _ = resolve_series(tenant_y.pk, KEYS[:1])
    mine, _ = resolve_series(tenant_x.pk, KEYS[1:2])
    with pytest.raises(UnknownSeries) as refused, transaction.atomic():
        write_points(tenant_x.pk, np.array([mine[KEYS[1]], theirs[KEYS[0]]]), np.array([ns(D0), ns(D0)]), np.array([1.0, 2.0]))
    assert Point.objects.unscoped().count() == 0
    assert not isinstance(refused.value, ScopeError)  # a stale id, not an isolation violation


def test_non_finite_values_are_refused(tenant_x):
    ids, _ = resolve_series(tenant_x.pk, KEYS[:1])
    with pytest.raises(ValueError, match="finite"):
        write_points(tenant_x.pk, np.array([ids[KEYS[0]]]), np.array([ns(D0)]), np.array([np.nan]))


def test_last_point_time_and_counters_are_maintained(tenant_x):
    ids, _ = write(tenant_x, KEYS[:3], D0, 60)  # n1: cpu+mem, n2: cpu; 60 points each
    write(tenant_x, KEYS[:1], D0 - timedelta(days=1), 5)  # older points do not move last_point_at back
    last = D0 + timedelta(minutes=59)
    assert set(Series.objects.for_tenant(tenant_x).filter(pk__in=ids.values()).values_list("last_point_at", flat=True)) == {last}
    day = today()
    counter = TenantDailyCounter.objects.for_tenant(tenant_x).get(day=day)
    assert (counter.points_accepted, counter.batches, counter.points_rejected) == (185, 2, 0)
    nodes = dict(NodeDailyCounter.objects.for_tenant(tenant_x).values_list("node__name", "points_accepted"))
    assert nodes == {"n1": 125, "n2": 60}
    assert set(NodeDailyCounter.objects.for_tenant(tenant_x).values_list("last_point_at", flat=True)) == {last}


def test_rejections_are_counted_by_reason_and_merged(tenant_x, tenant_y):
    add_rejected(tenant_x.pk, {"value: must be a number": 2, "timestamp: too far in the future": 1})
    add_rejected(tenant_x.pk, {"value: must be a number": 5})
    add_rejected(tenant_y.pk, {"other": 1})
    counter = TenantDailyCounter.objects.for_tenant(tenant_x).get()
    assert counter.rejected_by_reason == {"value: must be a number": 7, "timestamp: too far in the future": 1}
    assert (counter.points_rejected, counter.rejected_batches, counter.points_accepted) == (8, 2, 0)


def test_write_is_atomic_with_the_callers_transaction(tenant_x):
    ids, _ = resolve_series(tenant_x.pk, KEYS[:1])
    with pytest.raises(RuntimeError), transaction.atomic():
        write_points(tenant_x.pk, np.array([ids[KEYS[0]]]), np.array([ns(D0)]), np.array([1.0]))
        raise RuntimeError("the caller fails after writing")
    assert Point.objects.for_tenant(tenant_x).count() == 0
    assert not TenantDailyCounter.objects.for_tenant(tenant_x).exists()


def test_nanoseconds_are_truncated_to_microseconds(tenant_x):
    ids, _ = resolve_series(tenant_x.pk, KEYS[:1])
    sid = ids[KEYS[0]]
    write_points(tenant_x.pk, np.array([sid]), np.array([ns(D0) + 1_234_567]), np.array([1.0]))
    data = get_metric_series(tenant_x.pk, *Series.objects.for_tenant(tenant_x).values_list("cluster_id", "node_id", "metric_name").get(),
                             D0, D0 + timedelta(seconds=1))
    assert data.timestamps[0] == datetime(2026, 1, 10, 0, 0, 0, 1234, tzinfo=UTC)


@pytest.mark.postgres
def test_concurrent_batches_naming_the_same_new_series_agree(tenant_x):
    import threading

    from django.db import connections

    keys = [("prod", f"n{i}", m) for i in range(20) for m in ("cpu", "mem")]
    barrier = threading.Barrier(3)
    results, errors = [], []

    def ingest(offset):
        try:
            barrier.wait()
            with transaction.atomic():
                ids, _ = resolve_series(tenant_x.pk, keys[::-1] if offset else keys)
                s = ids.ids
                write_points(tenant_x.pk, s, np.full(len(s), ns(D0) + offset * 10**9), np.full(len(s), float(offset)))
            results.append(dict(ids))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ingest, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results[0] == results[1] == results[2]
    assert Series.objects.for_tenant(tenant_x).count() == 40
    assert Point.objects.for_tenant(tenant_x).count() == 120


def test_array_parameters_refuse_to_truncate():
    from config.pg import ArrayParam

    with pytest.raises(TypeError, match="expected integers"):
        ArrayParam("int8", np.array([1.7]))
    assert ArrayParam("float8", np.array([1.7])).binary()  # floats where floats go
    assert ArrayParam("int8", np.array([], dtype=np.float64)).binary()  # nothing to truncate
