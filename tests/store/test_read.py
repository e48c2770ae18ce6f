"""Read contract: hot, cold and mixed ranges agree; batch equals single; resolutions; scoping."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.core.contracts import MetricSeries
from analytics.models import Series
from analytics.store.compaction import compact
from analytics.store.partitions import ensure_partitions
from analytics.store.read import get_metric_series, get_metric_series_batch, series_points
from tests.store.conftest import D0, DAY, write

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_partitions")]

KEYS = [("prod", "n1", "cpu"), ("prod", "n1", "mem"), ("prod", "n2", "cpu")]
RANGES = [  # (start, end) offsets from D0 in minutes: within a day, across days, partial days, empty
    (0, 1440), (-300, 300), (100, 2000), (1439, 1441), (-1440, 2 * 1440), (5, 5), (3000, 4000),
]


def single(tenant, sid, start, end, resolution=None) -> MetricSeries:
    s = Series.objects.for_tenant(tenant).get(pk=sid)
    return get_metric_series(tenant.pk, s.cluster_id, s.node_id, s.metric_name, start, end, resolution)


def test_contract_fields_and_metadata(tenant_x):
    ids, _ = write(tenant_x, KEYS[:1], D0, 10)
    ids_units = Series.objects.for_tenant(tenant_x).get(pk=ids[KEYS[0]])
    ids_units.unit = "%"
    ids_units.save()
    data = single(tenant_x, ids[KEYS[0]], D0 + timedelta(minutes=2), D0 + timedelta(minutes=5))
    assert isinstance(data, MetricSeries)
    assert data.tenant_id == tenant_x.pk and data.metric_name == "cpu"
    assert (data.cluster_id, data.node_id) == (ids_units.cluster_id, ids_units.node_id)
    assert data.metadata == {"cluster": "prod", "node": "n1", "unit": "%", "series_id": ids[KEYS[0]]}
    assert list(data.timestamps) == [D0 + timedelta(minutes=m) for m in (2, 3, 4)]  # half-open
    assert str(data.timestamps.tz) == "UTC"


def test_hot_cold_and_mixed_ranges_return_the_same_points(tenant_x):
    ensure_partitions(days_ahead=2, now=D0 - DAY)
    ids, _ = write(tenant_x, KEYS, D0 - DAY, 3 * 1440)
    sids = list(ids.values())

    def read_all():
        out = []
        for a, b in RANGES:
            start, end = D0 + timedelta(minutes=a), D0 + timedelta(minutes=b)
            out.append({s.metadata["series_id"]: (s.timestamps.asi8.tolist(), s.values.tolist())
                        for s in get_metric_series_batch(tenant_x.pk, sids, start, end)})
        return out

    hot = read_all()
    assert len(hot[0][sids[0]][0]) == 1440 and len(hot[5][sids[0]][0]) == 0
    compact(D0)  # D0-1 cold, D0 and D0+1 hot: ranges span both
    assert read_all() == hot
    compact(D0 + 2 * DAY)  # all cold
    assert read_all() == hot


def test_batch_read_equals_single_reads_and_keeps_the_order(tenant_x):
    ids, _ = write(tenant_x, KEYS, D0, 2000)
    compact(D0 + DAY)  # first day cold, the rest hot
    sids = list(ids.values())[::-1]
    start, end = D0 + timedelta(minutes=700), D0 + timedelta(minutes=1900)
    batch = get_metric_series_batch(tenant_x.pk, sids + sids[:1], start, end)
    assert [s.metadata["series_id"] for s in batch] == sids
    for s in batch:
        assert s == single(tenant_x, s.metadata["series_id"], start, end)
        assert len(s) == 1200


def test_resolution_means_from_rollups_and_from_hot_points_agree_with_pandas(tenant_x):
    ids, written = write(tenant_x, KEYS[:1], D0, 2 * 1440, step_s=45)
    sid = ids[KEYS[0]]
    ts, values = written[sid]
    frame = pd.Series(values, index=pd.to_datetime(ts, utc=True))
    start, end = D0 + timedelta(hours=20, minutes=7), D0 + timedelta(hours=30)
    for resolution, rule in (("5m", "5min"), ("1h", "1h")):
        expected = frame.resample(rule).mean().dropna()
        expected = expected[(expected.index >= start.replace(minute=5 if rule == "5min" else 0)) & (expected.index < end)]
        hot = single(tenant_x, sid, start, end, resolution)
        assert list(hot.timestamps) == list(expected.index)
        assert np.allclose(hot.values, expected.to_numpy(), rtol=1e-12)
        assert hot.metadata["resolution"] == resolution
    for before in (D0 + DAY, D0 + 3 * DAY):  # day 0 from roll-ups and day 1 from hot points; then all cold
        compact(before)
        for resolution, rule in (("5m", "5min"), ("1h", "1h")):
            expected = frame.resample(rule).mean().dropna()
            expected = expected[(expected.index >= start.replace(minute=5 if rule == "5min" else 0)) & (expected.index < end)]
            data = single(tenant_x, sid, start, end, resolution)
            assert list(data.timestamps) == list(expected.index)
            assert np.allclose(data.values, expected.to_numpy(), rtol=1e-12)


def test_a_late_point_on_a_compacted_day_shows_in_resolution_reads(tenant_x):
    import numpy as np_

    from analytics.store.write import write_points
    from tests.store.conftest import ns

    ids, written = write(tenant_x, KEYS[:1], D0, 1440, values=np.zeros(1440))
    sid = ids[KEYS[0]]
    compact(D0 + DAY)
    write_points(tenant_x.pk, np_.array([sid]), np_.array([ns(D0) + 30 * 10**9]), np_.array([60.0]))
    data = single(tenant_x, sid, D0, D0 + timedelta(minutes=10), "5m")
    assert data.values.tolist() == [10.0, 0.0]  # (0*5 + 60) / 6, then a plain bucket


def test_reads_are_tenant_scoped(tenant_x, tenant_y):
    theirs, _ = write(tenant_y, KEYS[:1], D0, 10)
    mine, _ = write(tenant_x, KEYS[:1], D0, 10)
    their_sid = theirs[KEYS[0]]
    assert get_metric_series_batch(tenant_x.pk, [their_sid], D0, D0 + DAY) == []
    got = get_metric_series_batch(tenant_x.pk, [their_sid, mine[KEYS[0]]], D0, D0 + DAY)
    assert [s.metadata["series_id"] for s in got] == [mine[KEYS[0]]]
    s = Series.objects.for_tenant(tenant_y).get(pk=their_sid)
    with pytest.raises(Series.DoesNotExist):
        get_metric_series(tenant_x.pk, s.cluster_id, s.node_id, s.metric_name, D0, D0 + DAY)
    with pytest.raises(Series.DoesNotExist):
        series_points(tenant_x.pk, their_sid, D0, D0 + DAY)


def test_unknown_resolution_is_refused(tenant_x):
    ids, _ = write(tenant_x, KEYS[:1], D0, 10)
    with pytest.raises(ValueError, match="resolution"):
        series_points(tenant_x.pk, ids[KEYS[0]], D0, D0 + DAY, "7m")
