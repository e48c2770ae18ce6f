"""Compaction: nothing lost or duplicated, late points merged, roll-ups exact, idempotent."""

import threading
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from django.db import connection, transaction

from analytics.models import Chunk, Point, Rollup
from analytics.store import compaction
from analytics.store.compaction import compact, default_before
from analytics.store.partitions import daily_partitions, ensure_partitions
from analytics.store.read import get_metric_series_batch
from analytics.store.write import write_points
from tests.sessions import Session, second_waits_for_first
from tests.store.conftest import D0, DAY, ns, snapshot, write

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_partitions")]

KEYS = [("prod", f"n{i}", m) for i in range(3) for m in ("cpu", "mem")]


def load_three_days(tenant, seed=0):
    """Days D0-1, D0, D0+1 of one-minute points, plus a partial day D0+2. On PostgreSQL,
    D0 and D0+1 get daily partitions; the other days land in DEFAULT."""
    ensure_partitions(days_ahead=1, now=D0)
    ids, _ = write(tenant, KEYS, D0 - DAY, 3 * 1440 + 300, seed=seed)
    return ids


def hot_count():
    return Point.objects.unscoped().count()


def test_compaction_moves_every_point_once_and_is_idempotent(tenant_x, tenant_y):
    ids_x = load_three_days(tenant_x)
    ids_y, _ = write(tenant_y, KEYS[:2], D0, 1440, seed=7)
    start, end = D0 - 2 * DAY, D0 + 4 * DAY
    before_x = snapshot(tenant_x, ids_x.values(), start, end)
    before_y = snapshot(tenant_y, ids_y.values(), start, end)
    assert sum(map(len, before_x.values())) == 6 * (3 * 1440 + 300)

    stats = compact(D0 + 2 * DAY)
    assert stats.days == [(D0 - DAY).date().isoformat(), D0.date().isoformat(), (D0 + DAY).date().isoformat()]
    assert stats.points == 6 * 3 * 1440 + 2 * 1440
    assert Chunk.objects.for_tenant(tenant_x).count() == 6 * 3 and Chunk.objects.for_tenant(tenant_y).count() == 2
    assert hot_count() == 6 * 300  # only the open day is still hot
    assert snapshot(tenant_x, ids_x.values(), start, end) == before_x
    assert snapshot(tenant_y, ids_y.values(), start, end) == before_y
    if connection.vendor == "postgresql":
        assert D0.date() not in daily_partitions()  # emptied partitions are dropped

    again = compact(D0 + 2 * DAY)
    assert again.points == 0 and again.chunks == 0
    assert snapshot(tenant_x, ids_x.values(), start, end) == before_x
    assert Chunk.objects.unscoped().count() == 20


def test_a_late_point_for_a_compacted_day_is_not_lost(tenant_x):
    ids, written = write(tenant_x, KEYS[:2], D0, 1440)
    compact(D0 + DAY)
    sid = ids[KEYS[0]]
    t_new = ns(D0) + 30 * 10**9  # between two stored minutes
    t_old = ns(D0) + 600 * 60 * 10**9  # an existing minute, re-sent with a new value
    with transaction.atomic():
        write_points(tenant_x.pk, np.array([sid, sid]), np.array([t_new, t_old]), np.array([-1.0, -2.0]))
    expected = dict(zip(written[sid][0].tolist(), written[sid][1].tolist(), strict=True))
    expected[t_new], expected[t_old] = -1.0, -2.0
    expected = sorted(expected.items())
    assert snapshot(tenant_x, [sid], D0, D0 + DAY)[sid] == expected  # hot overrides cold meanwhile
    stats = compact(D0 + DAY)
    assert stats.points == 2 and stats.chunks == 1
    assert Chunk.objects.for_tenant(tenant_x).filter(series_id=sid).count() == 1
    assert hot_count() == 0
    assert snapshot(tenant_x, [sid], D0, D0 + DAY)[sid] == expected
    other = ids[KEYS[1]]
    assert snapshot(tenant_x, [other], D0, D0 + DAY)[other] == list(zip(*map(np.ndarray.tolist, written[other]), strict=True))


def test_rollups_equal_a_direct_pandas_computation(tenant_x):
    ids, written = write(tenant_x, KEYS[:2], D0, 1440, step_s=37)  # irregular w.r.t. the buckets
    compact(D0 + 2 * DAY)
    for sid, (ts, values) in written.items():
        frame = pd.Series(values, index=pd.to_datetime(ts, utc=True))
        for resolution, rule in ((300, "5min"), (3600, "1h")):
            expected = frame.resample(rule).agg(["min", "max", "sum", "count", "mean"])
            expected = expected[expected["count"] > 0]
            rows = pd.DataFrame.from_records(
                Rollup.objects.for_tenant(tenant_x).filter(series_id=sid, resolution=resolution)
                .order_by("bucket_start").values("bucket_start", "min", "max", "sum", "count")
            ).set_index("bucket_start")
            assert list(rows.index) == list(expected.index)
            for column in ("min", "max", "count"):
                assert np.array_equal(rows[column].to_numpy(), expected[column].to_numpy()), column
            assert np.allclose(rows["sum"], expected["sum"], rtol=1e-12, atol=0)
            assert np.allclose(rows["sum"] / rows["count"], expected["mean"], rtol=1e-12, atol=0)


def test_default_before_waits_for_the_grace_after_midnight():
    assert default_before(datetime(2026, 1, 11, 1, 0, tzinfo=UTC)) == datetime(2026, 1, 10, tzinfo=UTC)
    assert default_before(datetime(2026, 1, 11, 3, 0, tzinfo=UTC)) == datetime(2026, 1, 11, tzinfo=UTC)


@pytest.mark.postgres
def test_compaction_races_with_ingestion_without_losing_a_point(tenant_x):
    """Late points keep arriving for the day being compacted (from another connection);
    every one of them ends up in a chunk or still hot."""

    from django.db import connections

    ids, written = write(tenant_x, KEYS[:1], D0, 1440)
    sid = ids[KEYS[0]]
    late = ns(D0) + 15 * 10**9 + np.arange(200, dtype=np.int64) * 60 * 10**9  # 200 new points, :15 past each minute
    errors = []

    def ingest():
        try:
            for i in range(0, 200, 10):
                with transaction.atomic():
                    write_points(tenant_x.pk, np.full(10, sid), late[i:i + 10], np.full(10, float(i)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=ingest)
    thread.start()
    for _ in range(5):
        compact(D0 + DAY)
    thread.join()
    compact(D0 + DAY)
    assert not errors
    series = get_metric_series_batch(tenant_x.pk, [sid], D0, D0 + DAY)[0]
    assert len(series) == 1440 + 200
    assert set(late.tolist()) <= set((series.timestamps.asi8).tolist())
    assert hot_count() == 0


@pytest.mark.postgres
def test_a_point_committed_after_compaction_read_its_partition_is_not_lost(tenant_x, monkeypatch):
    """Deterministic race on the partitioned path: compaction reads the day's partition and
    stops there (a synchronisation point); then another connection writes a late point
    into that partition; then compaction empties the partition and commits. Compaction
    locks the partition before reading it, so the write waits for its commit and the
    point stays hot for the next run; without that lock the write would commit into the
    partition that compaction then empties, and the point would be lost."""
    ensure_partitions(days_ahead=1, now=D0)
    ids, written = write(tenant_x, KEYS[:1], D0, 1440)
    sid = ids[KEYS[0]]
    assert D0.date() in daily_partitions()
    late = ns(D0) + 30 * 10**9  # between two stored minutes of the day being compacted
    read, go_on = threading.Event(), threading.Event()
    read_partition = compaction.fetch_series_arrays

    def read_then_wait(*args, **kwargs):
        rows = read_partition(*args, **kwargs)
        read.set()
        assert go_on.wait(60)
        return rows

    def write_late():
        with transaction.atomic():
            write_points(tenant_x.pk, np.array([sid]), np.array([late]), np.array([-1.0]))

    monkeypatch.setattr(compaction, "fetch_series_arrays", read_then_wait)
    second_waits_for_first(Session(lambda: compact(D0 + DAY)), read, Session(write_late), go_on)
    monkeypatch.undo()
    compact(D0 + DAY)  # the late point, hot until now, joins the day's chunk
    series = snapshot(tenant_x, [sid], D0, D0 + DAY)[sid]
    expected = sorted([*zip(written[sid][0].tolist(), written[sid][1].tolist(), strict=True), (late, -1.0)])
    assert series == expected
    assert hot_count() == 0
