"""The bodies of GET /series/{id}/points (raw, 5m and 1h; hot and compacted days) and
GET /anomalies/{id}/explain, field by field, against values computed here."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from analytics.core.contracts import AnomalyExplanation
from analytics.models import Series
from analytics.store.compaction import compact
from results.models import Anomaly
from results.tasks import run_tenant_detection
from tenants.scoping import tenant_scope
from tests.results.fleet import fleet_now, ingest, make_fleet

pytestmark = pytest.mark.django_db(transaction=True)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def expected_buckets(points: list[tuple[float, float]], width: int) -> list[tuple[str, float]]:
    """Bucket means by hand: each bucket starts at a multiple of its width."""
    buckets: dict[float, list[float]] = defaultdict(list)
    for t, v in points:
        buckets[t - t % width].append(v)
    return [(iso(start), math.fsum(values) / len(values)) for start, values in sorted(buckets.items())]


def assert_body(body: dict, series_id: int, resolution: str | None, expected: list[tuple[str, float]]) -> None:
    assert set(body) == {"series", "resolution", "points"}
    assert (body["series"], body["resolution"]) == (series_id, resolution)
    assert [t for t, _ in body["points"]] == [t for t, _ in expected]
    assert [v for _, v in body["points"]] == pytest.approx([v for _, v in expected], rel=1e-12, abs=0)


def two_hours(api, day_start: datetime) -> tuple[int, list[tuple[float, float]]]:
    """Two hours of 40-second points (not aligned to the buckets) from 10:00 of that day."""
    t0 = (day_start + timedelta(hours=10)).timestamp()
    points = [(t0 + 40 * i, round(50 + 10 * math.sin(i / 7) + (i % 11), 3)) for i in range(180)]
    ingest(api, [{"series": [{"cluster": "prod", "node": "node-1", "metric": "cpu", "points": [list(p) for p in points]}]}])
    return Series.objects.unscoped().get(metric_name="cpu").pk, points


@pytest.mark.parametrize("compacted", [False, True], ids=["hot", "compacted"])
def test_points_answer_raw_points_and_5m_and_1h_means(api_a, tenant_a, compacted):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    series_id, points = two_hours(api_a, today - timedelta(days=1))  # yesterday: a closed day
    if compacted:
        assert compact(before=today).points == len(points)  # now read from chunks and roll-ups
    start = datetime.fromtimestamp(points[0][0], UTC)
    query = {"from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat()}
    url = f"/api/v1/series/{series_id}/points"

    raw = api_a.get(url, query).json()
    assert_body(raw, series_id, None, [(iso(t), v) for t, v in points])
    five = api_a.get(url, {**query, "resolution": "5m"}).json()
    assert_body(five, series_id, "5m", expected_buckets(points, 300))
    hour = api_a.get(url, {**query, "resolution": "1h"}).json()
    assert_body(hour, series_id, "1h", expected_buckets(points, 3600))
    assert (len(raw["points"]), len(five["points"]), len(hour["points"])) == (180, 24, 2)

    # Half-open [from, to): a range ending on a point leaves it out.
    last = api_a.get(url, {"from": query["from"], "to": iso(points[10][0])}).json()
    assert_body(last, series_id, None, [(iso(t), v) for t, v in points[:10]])


def test_explain_answers_the_stored_explanation_of_the_anomaly(api_a, api_b, tenant_a):
    end = fleet_now()
    # A day of history. (With less, the series is younger than the rarity view's 750-point
    # tail, which then rests partly on its prior: the spike alarms at its point all the same;
    # before the fifth round it alarmed a few points late, in the next window.)
    bodies, truth = make_fleet(end, hours=24)
    ingest(api_a, bodies)
    run_tenant_detection(tenant_a.pk, (end - timedelta(hours=6)).isoformat(), end.isoformat(), trigger="backfill")
    with tenant_scope(tenant_a):
        row = Anomaly.objects.select_related("node").filter(node__name=truth["node"], metric_name="cpu_usage").get(
            window_start__lte=truth["time"], window_end__gt=truth["time"])

    body = api_a.get(f"/api/v1/anomalies/{row.pk}/explain").json()
    assert set(body) == {"id", "text", "explanation"}
    assert body["id"] == row.pk
    assert body["text"] == row.text != ""
    assert body["explanation"] == row.explanation
    explanation = body["explanation"]
    assert AnomalyExplanation.from_dict(explanation).to_dict() == explanation  # the whole contract, nothing else
    assert (explanation["type"], explanation["metric_name"], explanation["node"]) == (row.label, "cpu_usage", truth["node"])
    assert explanation["text"] == body["text"]
    assert explanation["start"] <= truth["time"].isoformat() < explanation["end"]
    assert explanation["direction"] == "up" and explanation["observed"] > explanation["expected"]
    assert explanation["duration_seconds"] == (datetime.fromisoformat(explanation["end"])
                                               - datetime.fromisoformat(explanation["start"])).total_seconds()
    assert "cpu_usage" in body["text"] and truth["node"] in body["text"]

    # The anomaly detail carries the same explanation; another tenant gets a plain 404.
    detail = api_a.get(f"/api/v1/anomalies/{row.pk}").json()
    assert (detail["id"], detail["text"], detail["explanation"]) == (row.pk, row.text, row.explanation)
    assert (detail["score"], detail["label"], detail["metric_name"], detail["node"]) == (
        row.score, row.label, "cpu_usage", truth["node"])
    assert api_b.get(f"/api/v1/anomalies/{row.pk}/explain").status_code == 404
