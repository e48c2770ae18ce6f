"""PostgreSQL partitions: creation ahead, rows rescued from DEFAULT, storage size of chunks."""

from datetime import timedelta

import numpy as np
import pytest
from django.db import connection

from analytics.models import Chunk
from analytics.store.compaction import compact
from analytics.store.partitions import DEFAULT, daily_partitions, ensure_partitions, partition_name
from analytics.tasks import compact_closed_periods, ensure_partitions_task
from tests.store.conftest import D0, DAY, snapshot, write

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_partitions")]


def rows_in(table: str) -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]


def test_ensure_partitions_is_idempotent():
    created = ensure_partitions(days_ahead=2, now=D0)
    assert created == [partition_name((D0 + timedelta(days=d)).date()) for d in range(3)]
    assert ensure_partitions(days_ahead=2, now=D0) == []
    assert sorted(daily_partitions()) == [(D0 + timedelta(days=d)).date() for d in range(3)]


def test_rows_waiting_in_default_move_into_a_new_partition(tenant_x):
    ids, _ = write(tenant_x, [("prod", "n1", "cpu")], D0, 1440)
    assert rows_in(DEFAULT) == 1440
    before = snapshot(tenant_x, ids.values(), D0, D0 + DAY)
    assert ensure_partitions(days_ahead=0, days_behind=0, now=D0) == [partition_name(D0.date())]
    assert rows_in(DEFAULT) == 0 and rows_in(partition_name(D0.date())) == 1440
    assert snapshot(tenant_x, ids.values(), D0, D0 + DAY) == before


def test_tasks_run_eagerly():
    assert ensure_partitions_task.delay(days_ahead=1).get()
    assert compact_closed_periods.delay(D0.isoformat()).get()["points"] == 0


def test_chunks_take_under_20_bytes_per_point(tenant_x):
    keys = [("prod", f"n{i}", "cpu") for i in range(60)]
    write(tenant_x, keys, D0, 1440)  # random noise to 2 decimals: the hard case for compression
    compact(D0 + DAY)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_total_relation_size('analytics_chunk')")
        size = cur.fetchone()[0]
    points = sum(Chunk.objects.for_tenant(tenant_x).values_list("count", flat=True))
    assert points == 60 * 1440
    assert size / points < 20, f"{size / points:.1f} bytes per point"
    # and without the fixed cost of small relations (empty pages, index root): the row cost itself
    with connection.cursor() as cur:
        cur.execute("SELECT sum(pg_column_size(c.*)) FROM analytics_chunk c")
        assert cur.fetchone()[0] / points < 10


def test_values_survive_compaction_bit_for_bit(tenant_x):
    values = np.array([np.pi, -0.0, 1e-310, 1e300, 42.0] * 288)
    ids, _ = write(tenant_x, [("prod", "n1", "cpu")], D0, 1440, values=values)
    compact(D0 + DAY)
    got = snapshot(tenant_x, ids.values(), D0, D0 + DAY)
    assert np.array([v for _, v in next(iter(got.values()))]).tobytes() == values.tobytes()
