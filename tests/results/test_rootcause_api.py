"""Root-cause hints in the product: GET anomalies/{id}/related (and its page) and GET
rankings/changes (and the ranking page's movers), over data sent through the real
ingestion endpoint; anomalies and scores are seeded directly through the write contract
(store_anomaly_results, store_aggregated_scores), independent of detection recall."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.cache import caches
from django.test import Client

from analytics.core.contracts import (
    AggregatedAnomalyScore,
    AnomalyExplanation,
    AnomalyResult,
    AnomalyType,
    Direction,
)
from analytics.models import Series
from config.throttling import throttle_key
from results.models import Anomaly
from results.store import store_aggregated_scores, store_anomaly_results
from tenants.scoping import tenant_scope
from tests.results.fleet import STEP, fleet_now, ingest, series_body

pytestmark = pytest.mark.django_db(transaction=True)

METRICS = ("disk_io", "latency_ms", "network_out")
LEADER = ("node-2", "disk_io")
FOLLOWERS = {("node-2", "latency_ms"): 7, ("node-1", "network_out"): 12, ("node-3", "network_out"): 19}


def cascade_bodies(end: datetime, hours: int = 5, onset_minutes_before_end: int = 120) -> tuple[list[dict], datetime]:
    """4 nodes x 3 positive metrics; the leader doubles at the onset, the followers triple 7, 12
    and 19 minutes later."""
    rng = np.random.default_rng(3)
    n = hours * 60
    start = int(end.timestamp()) - n * STEP
    at = n - onset_minutes_before_end
    bodies = []
    for i in range(1, 5):
        node = f"node-{i}"
        series = []
        for metric in METRICS:
            values = 100 * (1 + 0.1 * np.sin(np.arange(n) / 200 + i)) * np.exp(0.03 * rng.standard_normal(n))
            if (node, metric) == LEADER:
                values[at:] *= 2.0
            elif (node, metric) in FOLLOWERS:
                values[at + FOLLOWERS[(node, metric)]:] *= 3.0
            series.append(series_body("prod", node, metric, start, values))
        bodies.append({"series": series})
    return bodies, datetime.fromtimestamp(start + at * STEP, UTC)


def series_keys(tenant) -> dict[tuple, int]:
    with tenant_scope(tenant):
        return {(tenant.pk, s.cluster_id, s.node_id, s.metric_name): s.pk
                for s in Series.objects.all()}


def key_of(keys: dict, tenant, node: str, metric: str) -> tuple:
    with tenant_scope(tenant):
        series = Series.objects.select_related("node").get(node__name=node, metric_name=metric)
    return (tenant.pk, series.cluster_id, series.node_id, metric)


def seed_anomaly(tenant, key: tuple, start: datetime, sigma: float = 8.0, minutes: int = 5) -> int:
    explanation = AnomalyExplanation(AnomalyType.TREND, 0.9, 200.0, 100.0, sigma, 100.0, Direction.UP, start,
                                     start + timedelta(minutes=minutes), metric_name=key[3], text="it rose")
    result = AnomalyResult(*key, window_start=start, window_end=start + timedelta(minutes=minutes), anomaly_score=0.9,
                           anomaly_label=AnomalyType.TREND, explanation=explanation, engine="test")
    store_anomaly_results(tenant.pk, [result], series_keys(tenant))
    with tenant_scope(tenant):
        return Anomaly.objects.get(series_id=series_keys(tenant)[key], window_start=start).pk


@pytest.fixture
def cascade(api_a, tenant_a):
    bodies, onset = cascade_bodies(fleet_now())
    ingest(api_a, bodies)
    keys = series_keys(tenant_a)
    leader = seed_anomaly(tenant_a, key_of(keys, tenant_a, *LEADER), onset)
    follower = seed_anomaly(tenant_a, key_of(keys, tenant_a, "node-1", "network_out"), onset + timedelta(minutes=15))
    return {"leader": leader, "follower": follower, "onset": onset}


def test_related_names_what_moved_with_the_anomaly_and_the_origin(api_a, cascade):
    response = api_a.get(f"/api/v1/anomalies/{cascade['leader']}/related")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["moved"] is True and body["node"] == "node-2" and body["metric"] == "disk_io"
    assert datetime.fromisoformat(body["onset"]) == cascade["onset"]
    lags = {(r["node"], r["metric"]): r["lag_seconds"] for r in body["related"]}
    assert set(lags) == set(FOLLOWERS)  # the eight quiet series did not move with it
    for key, minutes in FOLLOWERS.items():
        assert abs(lags[key] - minutes * 60) <= STEP
    assert body["origin"]["node"] == "node-2" and body["origin"]["metric"] == "disk_io"
    assert body["text"] == ("node-2 disk_io rose 7 min before latency_ms on node-2 and network_out on node-1, -3; "
                            "likely origin: node-2 disk_io.")
    assert body["series_analysed"] == 12


def test_related_from_a_follower_points_back_to_the_origin(api_a, cascade):
    body = api_a.get(f"/api/v1/anomalies/{cascade['follower']}/related").json()
    lags = {(r["node"], r["metric"]): r["lag_seconds"] for r in body["related"]}
    assert abs(lags[LEADER] + 12 * 60) <= STEP  # the leader moved 12 minutes before this one
    assert body["origin"]["node"] == "node-2" and body["origin"]["metric"] == "disk_io"


def test_related_counts_against_its_own_rate(api_a, tenant_a, cascade, settings):
    settings.FLEETWATCH_API_RATES = {**settings.FLEETWATCH_API_RATES, "analysis": "1/hour"}
    window = int(time.time() // 3600)
    keys = [throttle_key("analysis", tenant_a.pk, w) for w in (window, window + 1)]
    caches["default"].delete_many(keys)
    try:
        assert api_a.get(f"/api/v1/anomalies/{cascade['leader']}/related").status_code == 200
        limited = api_a.get(f"/api/v1/anomalies/{cascade['follower']}/related")
        assert limited.status_code == 429 and "Retry-After" in limited
        assert api_a.get(f"/api/v1/anomalies/{cascade['leader']}").status_code == 200  # other reads: the api rate
    finally:
        caches["default"].delete_many(keys)


def test_related_is_tenant_scoped(api_b, cascade):
    theirs = api_b.get(f"/api/v1/anomalies/{cascade['leader']}/related")
    missing = api_b.get("/api/v1/anomalies/987654321/related")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content


def test_the_node_page_links_to_the_related_page_which_links_the_series(owner, tenant_a, cascade):
    client = Client()
    client.force_login(owner)
    with tenant_scope(tenant_a):
        anomaly = Anomaly.objects.select_related("node").get(pk=cascade["leader"])
    start = (cascade["onset"] - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    node_page = client.get(f"/nodes/{anomaly.node_id}", {"from": start})
    related_url = f"/anomalies/{anomaly.pk}/related"
    assert related_url in node_page.content.decode()
    page = client.get(related_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "likely origin: node-2 disk_io" in html
    for node, metric in FOLLOWERS:
        assert f'data-node="{node}" data-metric="{metric}"' in html
    with tenant_scope(tenant_a):
        node_1 = Anomaly.objects.get(pk=cascade["follower"]).node_id
    assert f"/nodes/{node_1}?from=" in html


# Ranking changes -----------------------------------------------------------------------

P1 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
P2 = P1 + timedelta(minutes=5)
P3 = P2 + timedelta(minutes=5)


@pytest.fixture
def two_rankings(api_a, tenant_a):
    """Six nodes; period 1 ranks node-1..4 first; period 2 moves node-4 up 3 (network_in at
    30.2 sigma drove it), lets node-6 in at 4 and node-3 out."""
    end = fleet_now()
    start = int(end.timestamp()) - 10 * STEP
    ingest(api_a, [{"series": [series_body("prod", f"node-{i}", m, start, np.ones(10)) for i in range(1, 7)
                               for m in ("cpu_usage", "network_in")]}])
    keys = series_keys(tenant_a)
    node_keys = {f"node-{i}": key_of(keys, tenant_a, f"node-{i}", "network_in") for i in range(1, 7)}
    window = P2 - timedelta(minutes=5)
    seed_anomaly(tenant_a, node_keys["node-4"], window, sigma=30.2)

    def store(period_end, scores, drivers=None):
        rows = []
        for node, score in scores.items():
            _, cluster_id, node_id, _ = node_keys[node]
            driver = (drivers or {}).get(node) or {"metric_name": "cpu_usage", "score": score, "anomaly_label": "normal",
                                                   "window_start": (period_end - timedelta(minutes=5)).isoformat(),
                                                   "window_end": period_end.isoformat()}
            rows.append(AggregatedAnomalyScore(tenant_a.pk, cluster_id, node_id, "max", score, 2, 1, driver))
        store_aggregated_scores(tenant_a.pk, rows, period_end - timedelta(minutes=5), period_end)

    store(P1, {"node-1": 0.9, "node-2": 0.8, "node-3": 0.7, "node-4": 0.6, "node-5": 0.5, "node-6": 0.1})
    store(P2, {"node-1": 0.85, "node-2": 0.8, "node-3": 0.3, "node-4": 0.95, "node-5": 0.5, "node-6": 0.75},
          {"node-4": {"metric_name": "network_in", "score": 0.95, "anomaly_label": "trend",
                      "window_start": window.isoformat(), "window_end": P2.isoformat()}})
    return store


def moves_between(before: list[dict], after: list[dict]) -> set[tuple]:
    was = {r["node"]: r["rank"] for r in before}
    now = {r["node"]: r["rank"] for r in after}
    out = {(n, "left", None, r) for n, r in was.items() if n not in now}
    for n, r in now.items():
        if n not in was:
            out.add((n, "entered", r, None))
        elif was[n] != r:
            out.add((n, "up" if r < was[n] else "down", r, was[n]))
    return out


def test_ranking_changes_agree_with_the_two_stored_rankings(api_a, two_rankings):
    query = {"level": "node", "strategy": "max", "top": 4}
    before = api_a.get("/api/v1/rankings", {**query, "at": P1.isoformat()}).json()
    after = api_a.get("/api/v1/rankings", {**query, "at": P2.isoformat()}).json()
    response = api_a.get("/api/v1/rankings/changes", query)
    assert response.status_code == 200, response.content
    [period] = response.json()
    assert datetime.fromisoformat(period["period_end"]) == P2
    assert datetime.fromisoformat(period["previous_period_end"]) == P1
    got = {(c["name"], c["change"], c["rank"], c["previous_rank"]) for c in period["changes"]}
    assert got == moves_between(before, after)
    assert got == {("node-4", "up", 1, 4), ("node-1", "down", 2, 1), ("node-2", "down", 3, 2),
                   ("node-6", "entered", 4, None), ("node-3", "left", None, 3)}
    by_name = {c["name"]: c for c in period["changes"]}
    assert by_name["node-4"]["text"] == "node-4 up 3 places: network_in +30σ"
    assert by_name["node-4"]["driver"]["deviation_sigma"] == pytest.approx(30.2)
    assert by_name["node-4"]["places"] == 3 and by_name["node-4"]["previous_score"] == pytest.approx(0.6)
    assert by_name["node-3"]["text"] == "node-3 left the top 4 (was 3): cpu_usage score 0.70"
    assert by_name["node-3"]["score"] is None and by_name["node-3"]["previous_score"] == pytest.approx(0.7)
    assert by_name["node-6"]["text"].startswith("node-6 entered the top 4 at 4: cpu_usage score 0.75")


def test_ranking_changes_per_period_and_at(api_a, two_rankings):
    two_rankings(P3, {"node-1": 0.85, "node-2": 0.8, "node-3": 0.3, "node-4": 0.95, "node-5": 0.5, "node-6": 0.75})
    both = api_a.get("/api/v1/rankings/changes", {"top": 4, "periods": 5}).json()
    assert [datetime.fromisoformat(p["period_end"]) for p in both] == [P3, P2]  # only periods with one before
    assert both[0]["changes"] == []  # P3 ranks exactly as P2
    at_p2 = api_a.get("/api/v1/rankings/changes", {"top": 4, "at": P2.isoformat()}).json()
    assert at_p2 == both[1:]
    assert api_a.get("/api/v1/rankings/changes", {"at": (P1 + timedelta(minutes=1)).isoformat()}).json() == []


@pytest.mark.parametrize(("params", "field"), [
    ({"periods": 0}, "periods"), ({"periods": 25}, "periods"), ({"top": 0}, "top"), ({"level": "tenant"}, "level"),
    ({"strategy": "median"}, "strategy"), ({"at": "yesterday"}, "at"),
])
def test_ranking_changes_refuses_bad_parameters_naming_them(api_a, params, field):
    response = api_a.get("/api/v1/rankings/changes", params)
    assert response.status_code == 400
    assert field in response.content.decode()


def test_ranking_changes_are_tenant_scoped(api_b, two_rankings):
    assert api_b.get("/api/v1/rankings/changes", {"top": 4}).json() == []


def test_the_ranking_page_shows_the_movers(owner, two_rankings, django_assert_max_num_queries):
    client = Client()
    client.force_login(owner)
    with django_assert_max_num_queries(10):  # what tests/dashboard allows the page, whatever the nodes
        html = client.get("/ranking", {"top": 4}).content.decode()
    assert 'data-testid="movers"' in html
    assert "node-4 up 3 places: network_in +30σ" in html
    assert "node-3 left the top 4 (was 3)" in html
