"""Limits and web hardening: per-tenant rate limits, page sizes, statement timeouts,
CSRF on the dashboard, security headers, constant-time key comparison."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from unittest import mock

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test import Client

from config.env import parse_rate
from config.throttling import throttle_key
from results.models import DetectionRun
from tenants.models import ApiKey
from tenants.scoping import tenant_scope
from tests.conftest import api_client_for


def logged_in(user, **client_kwargs) -> Client:
    client = Client(**client_kwargs)
    assert client.login(username=user.username, password="pw-" + user.username)
    return client


@pytest.fixture
def low_rates(settings, tenant_a, tenant_b):
    """3 API requests and 2 ingestion batches per hour and tenant, fresh counters."""
    settings.FLEETWATCH_API_RATES = {"api": "3/hour", "ingest": "2/hour"}
    cache = caches["default"]
    window = int(time.time() // 3600)

    def clear():
        cache.delete_many([throttle_key(scope, t.pk, w) for scope in ("api", "ingest")
                           for t in (tenant_a, tenant_b) for w in (window, window + 1)])

    clear()
    yield
    clear()


# Rate limits -----------------------------------------------------------------------

def test_a_tenant_over_its_rate_gets_429_with_retry_after_and_others_do_not(api_a, api_b, tenant_a, low_rates):
    for _ in range(3):
        assert api_a.get("/api/v1/runs/").status_code == 200
    response = api_a.get("/api/v1/runs/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert 1 <= int(response["Retry-After"]) <= 3600
    # another key of the same tenant shares the limit; another tenant has its own
    other_key = ApiKey.issue(tenant_a, "second")[1]
    assert api_client_for(other_key).get("/api/v1/runs/").status_code == 429
    assert api_b.get("/api/v1/runs/").status_code == 200


def test_ingestion_is_counted_apart_from_reads(api_a, low_rates):
    for _ in range(3):
        assert api_a.get("/api/v1/series").status_code == 200
    assert api_a.get("/api/v1/series").status_code == 429
    for _ in range(2):
        assert api_a.post("/api/v1/metrics", {}, format="json").status_code == 400  # counted, then validated
    response = api_a.post("/api/v1/metrics", {}, format="json")
    assert response.status_code == 429 and "Retry-After" in response


def test_unauthenticated_requests_are_not_counted_against_a_tenant(client, api_a, low_rates):
    for _ in range(5):
        assert client.get("/api/v1/runs/").status_code == 401
    assert api_a.get("/api/v1/runs/").status_code == 200


def test_rates_parse_and_the_cache_is_shared_when_redis_is_configured():
    assert parse_rate("6000/min") == (6000, 60) and parse_rate("10/s") == (10, 1) and parse_rate("5/day") == (5, 86_400)
    for bad in ("fast", "0/min", "10/fortnight", "-1/s"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        assert backend == "django.core.cache.backends.redis.RedisCache"
    else:
        assert backend.endswith("LocMemCache")
    defaults = {scope: parse_rate(rate)[0] / parse_rate(rate)[1] for scope, rate in settings.FLEETWATCH_API_RATES.items()}
    # per second: the suite never meets the default limits (on-request analyses: a few per test at most)
    assert defaults.pop("analysis") >= 1 and min(defaults.values()) >= 10


def test_the_limiter_fails_open_when_the_cache_is_down(api_a, low_rates):
    with mock.patch("config.throttling.caches") as caches_mock:
        caches_mock.__getitem__.return_value.add.side_effect = ConnectionError("redis down")
        for _ in range(5):
            assert api_a.get("/api/v1/runs/").status_code == 200


# Page sizes and ranges -----------------------------------------------------------------

def test_page_size_is_capped_and_deep_offsets_are_refused(api_a, tenant_a, settings):
    with tenant_scope(tenant_a):
        for _ in range(3):
            DetectionRun.objects.create(tenant=tenant_a, trigger="manual")
    settings.FLEETWATCH_API_MAX_PAGE_SIZE = 2
    body = api_a.get("/api/v1/runs/", {"limit": 5000}).json()
    assert body["count"] == 3 and len(body["results"]) == 2 and "limit=2" in body["next"]
    settings.FLEETWATCH_API_MAX_OFFSET = 10
    response = api_a.get("/api/v1/runs/", {"offset": 11})
    assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "offset"
    assert api_a.get("/api/v1/runs/", {"offset": 10}).status_code == 200


def test_the_schema_documents_the_bounds(api_a):
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/anomalies/"]["get"]["parameters"]}
    assert params["limit"]["maximum"] == settings.FLEETWATCH_API_MAX_PAGE_SIZE
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "429", "503"} <= set(operation["responses"]), (method, path)
            assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)


def test_series_points_ranges_are_bounded(api_a, tenant_a):
    from analytics.store.write import resolve_series

    resolve_series(tenant_a.pk, [("prod", "node-1", "cpu_usage")], {})
    with tenant_scope(tenant_a):
        from analytics.models import Series
        series_id = Series.objects.get().pk
    response = api_a.get(f"/api/v1/series/{series_id}/points", {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "range_too_large"


def test_unknown_api_urls_answer_the_json_404(api_a):
    for url in ("/api/v1/runs/1.5", "/api/v1/nothing", "/api/v2/runs/"):
        response = api_a.get(url)
        assert response.status_code == 404 and response.json() == {"error": {"code": "not_found", "message": "Not found.", "details": []}}


# Statement timeouts --------------------------------------------------------------------

postgres_only = pytest.mark.postgres  # statement_timeout is PostgreSQL's


def slow_query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(2)")


def current_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_slow_api_query_is_cancelled_with_a_503(api_a, settings, monkeypatch):
    settings.FLEETWATCH_WEB_STATEMENT_TIMEOUT_MS = 200
    seen = {}

    def slow_get(self, request):
        seen["timeout"] = current_timeout()
        slow_query()

    monkeypatch.setattr("results.api.RankingView.get", slow_get)
    started = time.monotonic()
    response = api_a.get("/api/v1/rankings")
    assert time.monotonic() - started < 1.5
    assert seen["timeout"] == "200ms"
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "statement_timeout" and int(response["Retry-After"]) > 0
    assert current_timeout() == "0"  # reset after the request: other code is unaffected
    assert api_a.get("/api/v1/runs/").status_code == 200  # the connection is still usable


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_slow_dashboard_query_is_cancelled_with_a_503(owner, settings, monkeypatch):
    settings.FLEETWATCH_WEB_STATEMENT_TIMEOUT_MS = 200

    def slow_render(*args, **kwargs):
        slow_query()

    monkeypatch.setattr("results.views.render", slow_render)
    response = logged_in(owner).get("/ranking")
    assert response.status_code == 503 and b"took too long" in response.content
    assert current_timeout() == "0"


@postgres_only
def test_code_outside_web_requests_has_no_statement_timeout(db):
    assert current_timeout() == "0"


# Dashboard sessions, CSRF, headers ----------------------------------------------------------

def test_a_dashboard_post_without_a_csrf_token_is_rejected(owner, tenant_a):
    client = logged_in(owner, enforce_csrf_checks=True)
    response = client.post("/api-keys", {"name": "sneaky"})
    assert response.status_code == 403
    assert not ApiKey.objects.for_tenant(tenant_a).filter(name="sneaky").exists()
    page = client.get("/api-keys")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    assert client.post("/api-keys", {"name": "legit", "csrfmiddlewaretoken": token}).status_code == 200
    assert ApiKey.objects.for_tenant(tenant_a).filter(name="legit").exists()


def test_logout_needs_a_post_with_csrf(owner):
    client = logged_in(owner, enforce_csrf_checks=True)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 403


def assert_security_headers(response, *, docs: bool = False) -> str:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "'unsafe-eval'" not in csp and "script-src 'self'" in csp
    assert ("'unsafe-inline'" in csp) == docs  # inline styles for Swagger UI only, never inline scripts
    return csp


def test_security_headers_on_pages_the_api_and_the_docs(owner, api_a):
    assert_security_headers(logged_in(owner).get("/"))
    assert_security_headers(Client().get("/accounts/login/"))
    assert_security_headers(api_a.get("/api/v1/runs/"))
    docs = Client().get("/api/docs/")
    csp = assert_security_headers(docs, docs=True)
    inline = re.findall(rb"<script>(.*?)</script>", docs.content, re.DOTALL)
    assert inline
    for body in inline:
        assert f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" in csp


def test_session_cookies_are_http_only():
    assert settings.SESSION_COOKIE_HTTPONLY and settings.SESSION_COOKIE_SAMESITE == "Lax"


def test_api_keys_are_compared_in_constant_time(api_a):
    with mock.patch("tenants.models.hmac.compare_digest", wraps=hmac.compare_digest) as compare:
        assert api_a.get("/api/v1/runs/").status_code == 200
    assert compare.call_count == 1


@pytest.mark.parametrize("query", [
    {"from": "2026-11-20T00:00-17:54", "to": "2026-11-21T00:00-17:54"},  # offsets PostgreSQL refuses: was a 500
    {"from": "0001-01-01T00:00+05:00"},
    {"to": "9999-12-31T23:59-05:00"},
])
def test_dashboard_time_ranges_with_odd_offsets_are_handled(owner, tenant_a, query):
    from tenants.models import Cluster, Node

    with tenant_scope(tenant_a):
        node = Node.objects.create(tenant=tenant_a, cluster=Cluster.objects.create(tenant=tenant_a, name="prod"), name="n1")
    response = logged_in(owner).get(f"/nodes/{node.pk}", query)
    assert response.status_code == 200
    api_response = logged_in(owner).get("/anomalies", query)
    assert api_response.status_code == 200
