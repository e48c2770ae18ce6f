"""The tenant dashboard through Django's test client: pages, scoping, keys, query counts."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from analytics.models import NodeDailyCounter, Series
from results.models import AggregatedScore, Anomaly
from tenants.models import ApiKey, Cluster, Membership, Node, hash_api_key
from tenants.scoping import tenant_scope
from tests.conftest import api_client_for, make_tenant
from tests.dashboard.conftest import logged_in

pytestmark = pytest.mark.django_db

PAGES = ["/", "/ranking", "/anomalies", "/api-keys"]


def node_id(tenant, name: str) -> int:
    return Node.objects.for_tenant(tenant).get(name=name).pk


def chart_data(response) -> dict:
    match = re.search(rb'<script id="node-series" type="application/json">(.*?)</script>', response.content, re.DOTALL)
    assert match, "no chart data in the page"
    return json.loads(match.group(1))


def api_order(api, strategy: str) -> list[str]:
    return [row["node"] for row in api.get("/api/v1/rankings", {"level": "node", "strategy": strategy, "top": 4}).json()]


def page_order(client, strategy: str) -> list[str]:
    html = client.get("/ranking", {"strategy": strategy}).content.decode()
    return re.findall(r'<tr data-node="([^"]+)" data-rank="\d+">', html)


# Access ----------------------------------------------------------------------

@pytest.mark.parametrize("path", [*PAGES, "/nodes/1"])
def test_anonymous_users_are_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login_and_logout(client, owner):
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'name="csrfmiddlewaretoken"' in page.content
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice", "next": "/ranking"})
    assert response.status_code == 302 and response["Location"] == "/ranking"
    assert client.get("/").status_code == 200
    assert client.get("/accounts/logout/").status_code == 405  # logout is POST only
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_a_user_with_no_tenant_gets_404_and_staff_go_to_the_admin(db):
    User = get_user_model()
    User.objects.create_user("nobody", password="pw-nobody")
    User.objects.create_user("operator", password="pw-operator", is_staff=True)
    nobody, operator = Client(), Client()
    nobody.login(username="nobody", password="pw-nobody")
    operator.login(username="operator", password="pw-operator")
    for path in PAGES:
        assert nobody.get(path).status_code == 404
        response = operator.get(path)
        assert response.status_code == 302 and response["Location"] == "/admin/"


def test_tenant_users_cannot_open_the_admin(owner_client):
    response = owner_client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_api_ignores_the_session(owner_client, fleet):
    """/api/ is scoped by API key only: a dashboard session is no credential there."""
    assert owner_client.get("/api/v1/anomalies").status_code == 401


def test_forms_need_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password="pw-alice")
    assert client.post("/api-keys", {"name": "x"}).status_code == 403
    assert client.post("/accounts/logout/").status_code == 403


# Pages -----------------------------------------------------------------------

def test_the_overview_shows_the_score_clusters_and_the_top_anomaly_first(owner_client, fleet, tenant_a):
    response = owner_client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="tenant-score"' in html and 'id="tenant-history"' in html
    assert 'id="cluster-' in html and ">prod<" in html
    latest = response.context["latest"]
    assert latest, "no anomaly listed"
    top = latest[0]
    assert (top.node.name, top.metric_name, top.label) == ("node-2", "cpu_usage", "spike")
    assert [a.score for a in latest] == sorted((a.score for a in latest), reverse=True)
    assert top.text and top.text in html
    with tenant_scope(tenant_a):
        tenant_score = AggregatedScore.objects.filter(level="tenant", strategy="max").latest("period_end").score
    assert response.context["current"]["score"] == tenant_score


def test_the_overview_lists_stale_nodes_as_the_console_does(owner_client, fleet, tenant_a):
    assert owner_client.get("/").context["stale_total"] == 0  # the fleet reported 10 minutes ago
    with tenant_scope(tenant_a):
        NodeDailyCounter.objects.filter(node__name="node-4").update(last_point_at=timezone.now() - timedelta(hours=2))
        Node.objects.create(tenant=tenant_a, cluster=Cluster.objects.get(name="prod"), name="node-new")  # no point yet
    response = owner_client.get("/")
    assert response.context["stale_total"] == 2
    assert [row.node.name for row in response.context["stale"]] == ["node-new", "node-4"]  # silent longest first
    assert "2 h ago" in response.content.decode()
    operator = Client()
    operator.force_login(get_user_model().objects.create_superuser("operator", "ops@example.com", "pw-operator"))
    console = operator.get(f"/admin/tenants/tenant/{tenant_a.pk}/health/").context["detail"]
    assert {n.node.name for n in console.stale_nodes} == {"node-new", "node-4"}


def test_the_ranking_follows_the_strategy_like_the_api(owner_client, api_a, fleet):
    by_max, by_mean = api_order(api_a, "max"), api_order(api_a, "mean")
    assert by_max[:2] == ["node-2", "node-3"] and by_mean[:2] == ["node-3", "node-2"]  # the seed's design
    assert page_order(owner_client, "max") == by_max
    assert page_order(owner_client, "mean") == by_mean
    for strategy in ("weighted", "p95"):
        assert page_order(owner_client, strategy) == api_order(api_a, strategy)


def test_ranking_rows_show_the_driver_its_type_and_sentence(owner_client, fleet, tenant_a):
    response = owner_client.get("/ranking", {"strategy": "max"})
    first = response.context["rows"][0]
    assert (first.rank, first.node_name, first.cluster_name) == (1, "node-2", "prod")
    assert (first.driver_metric, first.driver_label) == ("cpu_usage", "spike")
    assert first.anomaly is not None and first.anomaly.text in response.content.decode()
    assert first.url.startswith(f"/nodes/{node_id(tenant_a, 'node-2')}?")
    assert owner_client.get("/ranking", {"strategy": "nonsense"}).context["strategy"] == "max"


def test_the_cluster_ranking(owner_client, fleet):
    response = owner_client.get("/ranking", {"level": "cluster", "strategy": "max"})
    assert response.status_code == 200
    row = response.context["rows"][0]
    assert (row.cluster_name, row.node_name, row.driver_metric) == ("prod", "node-2", "cpu_usage")


def test_the_node_page_embeds_summaries_and_shaded_windows(owner_client, fleet, tenant_a):
    node = node_id(tenant_a, "node-2")
    response = owner_client.get(f"/nodes/{node}", {"range": "6h"})
    assert response.status_code == 200
    data = chart_data(response)
    assert data["resolution"] is None
    charts = {c["metric"]: c for c in data["series"]}
    assert set(charts) == {"cpu_usage", "memory_used"}
    assert 340 <= len(charts["cpu_usage"]["t"]) <= 361  # raw, one point a minute
    assert "spike" in [w["label"] for w in charts["cpu_usage"]["windows"]]
    anomalies = response.context["anomalies"]
    assert anomalies[0].metric_name == "cpu_usage" and anomalies[0].text in response.content.decode()
    assert 'class="explanation"' in response.content.decode()


def test_the_node_page_summarises_longer_ranges(owner_client, fleet, tenant_a):
    node = node_id(tenant_a, "node-2")
    week = chart_data(owner_client.get(f"/nodes/{node}", {"range": "7d"}))
    assert week["resolution"] == "5m"
    assert all(len(c["t"]) <= 2_020 for c in week["series"])
    assert 280 <= len(week["series"][0]["t"]) <= 290  # the fleet's 24 hours in 5-minute buckets
    end = timezone.now()
    month = chart_data(owner_client.get(f"/nodes/{node}", {"from": (end - timedelta(days=20)).isoformat(), "to": end.isoformat()}))
    assert month["resolution"] == "1h" and len(month["series"][0]["t"]) <= 25
    bad = owner_client.get(f"/nodes/{node}", {"from": "yesterday"})
    assert bad.status_code == 200 and bad.context["errors"] and bad.context["range_key"] == "24h"


def test_the_anomaly_list_filters(owner_client, fleet):
    response = owner_client.get("/anomalies")
    assert response.status_code == 200 and response.context["page"].paginator.count >= 1
    spikes = owner_client.get("/anomalies", {"cluster": "prod", "node": "node-2", "label": "spike", "metric": "cpu_usage"})
    assert {(a.node.name, a.label) for a in spikes.context["page"]} == {("node-2", "spike")}
    high = owner_client.get("/anomalies", {"min_score": "0.5"}).context["page"]
    assert all(a.score >= 0.5 for a in high) and len(high) >= 1
    assert owner_client.get("/anomalies", {"cluster": "nope"}).context["page"].paginator.count == 0
    assert owner_client.get("/anomalies", {"label": "trend", "node": "node-2"}).context["page"].paginator.count == 0
    bad = owner_client.get("/anomalies", {"min_score": "lots"})
    assert bad.status_code == 200 and "min_score" in bad.context["errors"]


def test_the_anomaly_list_paginates(owner_client, big_tenant):
    first = owner_client.get("/anomalies", {"ordering": "-score"})
    page = first.context["page"]
    assert page.paginator.count == 1000 and len(page) == 50 and page.paginator.num_pages == 20
    second = owner_client.get("/anomalies", {"page": 2, "ordering": "-score"})
    assert second.context["page"].number == 2
    next_link = re.search(r'<a href="\?([^"]+)" rel="next">', second.content.decode()).group(1).split("&amp;")
    assert sorted(next_link) == ["ordering=-score", "page=3"]  # pager links keep the filters
    scores = [a.score for a in page] + [a.score for a in second.context["page"]]
    assert scores == sorted(scores, reverse=True)


# Isolation -------------------------------------------------------------------

def test_an_outsider_sees_none_of_tenant_a(outsider_client, fleet, tenant_a):
    node = node_id(tenant_a, "node-2")
    missing = outsider_client.get("/nodes/999999")
    assert missing.status_code == 404
    assert outsider_client.get(f"/nodes/{node}").status_code == 404  # exactly like a missing one
    overview = outsider_client.get("/")
    assert overview.context["latest"] == [] and overview.context["clusters"] == [] and overview.context["current"] is None
    assert outsider_client.get("/ranking").context["rows"] == []
    assert outsider_client.get("/anomalies").context["page"].paginator.count == 0
    keys = outsider_client.get("/api-keys")
    assert {k.tenant_id for k in keys.context["keys"]} <= {keys.wsgi_request.tenant.pk}
    for path in ("/", "/ranking", "/anomalies", f"/nodes/{node}"):
        assert b"node-2" not in outsider_client.get(path).content


def test_a_user_in_two_tenants_switches_between_them(tenant_a, tenant_b, owner, fleet):
    Membership.objects.unscoped().create(tenant=tenant_b, user=owner, role=Membership.Role.MEMBER)
    client = logged_in(owner)
    first = client.get("/")
    assert first.wsgi_request.tenant == tenant_a  # "Acme" before "Globex"
    assert b'name="tenant"' in first.content
    assert client.post("/tenant", {"tenant": tenant_b.pk}).status_code == 302
    second = client.get("/")
    assert second.wsgi_request.tenant == tenant_b and second.context["latest"] == []
    assert client.get(f"/nodes/{node_id(tenant_a, 'node-2')}").status_code == 404
    other = make_tenant(tenant_a.plan, "initech")
    assert client.post("/tenant", {"tenant": other.pk}).status_code == 404
    assert client.get("/").wsgi_request.tenant == tenant_b


# API keys --------------------------------------------------------------------

def test_an_owner_creates_a_key_shown_once_and_stored_as_a_hash(owner_client, tenant_a):
    response = owner_client.post("/api-keys", {"name": "collector"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = response.context["new_key"]
    assert key.startswith("fw_") and key in response.content.decode()
    with tenant_scope(tenant_a):
        row = ApiKey.objects.get(name="collector")
    assert row.key_hash == hash_api_key(key) and key not in (row.prefix, row.key_hash, row.name)
    assert key.startswith(f"fw_{row.prefix}_")
    listing = owner_client.get("/api-keys")
    assert key not in listing.content.decode() and f"fw_{row.prefix}" in listing.content.decode()
    assert api_client_for(key).get("/api/v1/anomalies").status_code == 200


def test_an_owner_revokes_a_key(owner_client, tenant_a, owner):
    row, key = ApiKey.issue(tenant_a, "old", created_by=owner)
    response = owner_client.post(f"/api-keys/{row.pk}/revoke")
    assert response.status_code == 302 and response["Location"] == "/api-keys"
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert api_client_for(key).get("/api/v1/anomalies").status_code == 401
    assert b"revoked" in owner_client.get("/api-keys").content
    assert owner_client.get(f"/api-keys/{row.pk}/revoke").status_code == 405


def test_a_member_sees_keys_but_cannot_create_or_revoke(member_client, tenant_a, owner):
    row, _ = ApiKey.issue(tenant_a, "ci", created_by=owner)
    listing = member_client.get("/api-keys")
    assert listing.status_code == 200 and f"fw_{row.prefix}" in listing.content.decode()
    assert b"Create key" not in listing.content and b"Revoke" not in listing.content
    assert member_client.post("/api-keys", {"name": "sneaky"}).status_code == 403
    assert member_client.post(f"/api-keys/{row.pk}/revoke").status_code == 403
    with tenant_scope(tenant_a):
        assert list(ApiKey.objects.values_list("name", flat=True)) == ["ci"]
        assert ApiKey.objects.get().revoked_at is None


def test_an_owner_cannot_revoke_another_tenants_key(outsider_client, tenant_a, owner):
    row, _ = ApiKey.issue(tenant_a, "ci", created_by=owner)
    assert outsider_client.post(f"/api-keys/{row.pk}/revoke").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


def test_an_empty_key_name_is_refused(owner_client):
    response = owner_client.post("/api-keys", {"name": "  "})
    assert response.status_code == 400 and response.context["new_key"] is None


# Query counts on a tenant with 500 nodes --------------------------------------

@pytest.fixture
def big_tenant(tenant_a, owner):
    """500 nodes in 5 clusters, 2 series each, scores for every strategy and 1,000
    anomalies, written directly (the API and detection would take minutes)."""
    now = timezone.now().replace(microsecond=0)
    start, end = now - timedelta(hours=1), now
    clusters = Cluster.objects.unscoped().bulk_create(Cluster(tenant=tenant_a, name=f"c{i}") for i in range(5))
    nodes = Node.objects.unscoped().bulk_create(
        Node(tenant=tenant_a, cluster=clusters[i % 5], name=f"n{i:03d}") for i in range(500)
    )
    series = Series.objects.unscoped().bulk_create(
        Series(tenant=tenant_a, cluster_id=n.cluster_id, node=n, metric_name=m, last_point_at=now - timedelta(minutes=1 + n.pk % 30))
        for n in nodes for m in ("cpu_usage", "memory_used")
    )
    anomalies = [
        Anomaly(tenant=tenant_a, series=s, cluster_id=s.cluster_id, node_id=s.node_id, metric_name=s.metric_name, engine="adtk",
                window_start=start, window_end=start + timedelta(minutes=5), score=(i % 97) / 100, first_score=0.5,
                label="spike", explanation={"observed": 1.0}, text=f"{s.metric_name} spiked")
        for i, s in enumerate(series)
    ]
    Anomaly.objects.unscoped().bulk_create(anomalies)
    scores = []
    for strategy in ("max", "mean", "weighted", "p95"):
        common = {"tenant": tenant_a, "strategy": strategy, "num_metrics_analyzed": 2, "num_anomalies_detected": 1,
                  "period_start": start, "period_end": end}
        for i, n in enumerate(nodes):
            driver = {"metric_name": "cpu_usage", "score": (i % 97) / 100, "anomaly_label": "spike",
                      "window_start": start.isoformat(), "window_end": (start + timedelta(minutes=5)).isoformat()}
            scores.append(AggregatedScore(level="node", subject=f"node:{n.pk}", cluster_id=n.cluster_id, node=n,
                                          score=(i % 97) / 100, driver=driver, **common))
        for c in clusters:
            scores.append(AggregatedScore(level="cluster", subject=f"cluster:{c.pk}", cluster=c, score=0.96,
                                          driver={"node_id": nodes[0].pk, "score": 0.96, "metric": driver}, **common))
        scores.append(AggregatedScore(level="tenant", subject="tenant", score=0.96, driver={}, **common))
    AggregatedScore.objects.unscoped().bulk_create(scores)
    return nodes


@pytest.mark.parametrize("path, limit", [
    ("/", 13),  # with the open incidents
    ("/ranking?strategy=max&top=500", 6 + 4),  # + the movers: period ends, two rankings, their drivers' anomalies
    ("/ranking?strategy=mean&level=cluster", 7 + 5),  # + the movers' worst nodes' names
    ("/anomalies", 8),
    ("/anomalies?page=5&label=spike&min_score=0.1", 8),
    ("/api-keys", 5),
])
def test_pages_make_a_bounded_number_of_queries(owner_client, big_tenant, path, limit, django_assert_max_num_queries):
    with django_assert_max_num_queries(limit):
        response = owner_client.get(path)
    assert response.status_code == 200


def test_the_node_page_makes_a_bounded_number_of_queries(owner_client, big_tenant, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        response = owner_client.get(f"/nodes/{big_tenant[0].pk}?range=7d")
    assert response.status_code == 200


def test_the_big_tenant_pages_show_summaries(owner_client, big_tenant):
    assert len(owner_client.get("/ranking?top=500").context["rows"]) == 500
    overview = owner_client.get("/").context
    assert len(overview["latest"]) == 10 and len(overview["clusters"]) == 5 and overview["stale_total"] > 0
    assert owner_client.get("/anomalies").context["page"].paginator.count == 1000
