"""Tenant isolation over every URL the project serves, found by walking the URL conf
and the OpenAPI schema (so a new endpoint is covered, or fails here, automatically).

Tenant A has a detected fleet, a marker series, a node and an API key; tenant B (its
API key, and its owner logged in to the dashboard) requests every route:
- a route with an id, filled with A's object of that kind: 404 (or 405) with exactly the
  body of a nonexistent id, for every method (GET, POST, PUT, PATCH, DELETE);
- every PUT, PATCH and DELETE the OpenAPI schema has is sent;
- list endpoints: empty; dashboard pages: none of A's names;
- POST endpoints: act on B only; afterwards every tenant-owned row of A is unchanged;
- no response to B ever contains A's names or key prefix.
A route the walker cannot classify or fill fails ``test_every_route_is_known``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from analytics.models import Series
from results.models import Adjustment, Anomaly, Backtest, DetectionRun, Incident, Notification, Silence
from tenants.models import ApiKey, Node
from tenants.scoping import TenantOwned, all_tenants, tenant_scope
from tests.dashboard.seed import seed
from tests.notifications.fixtures import channel, facts, record
from tests.results.fleet import ingest

MARKERS = ("acme-secret-cluster", "acme-secret-node", "acme_secret_metric")
MISSING_ID = 987_654_321

# route name -> the kind of object its id names (the walker fills it with A's object)
ID_ROUTES = {
    "run-detail": "run", "anomaly-detail": "anomaly", "anomaly-explain": "anomaly", "anomaly-related": "anomaly",
    "dashboard:anomaly-related": "anomaly",
    "series-detail": "series", "series-points": "series",
    "dashboard:node": "node", "revoke-api-key": "api_key",
    "anomaly-feedback": "anomaly", "feedback-detail": "feedback",
    "dashboard:anomaly-feedback": "anomaly", "dashboard:adjustment-change": "adjustment",
    "backtest-detail": "backtest", "backtest-apply": "backtest",
    "dashboard:backtest": "backtest", "dashboard:backtest-apply": "backtest",
    "incident-feedback": "incident", "dashboard:incident-feedback": "incident",
    "adjustment-detail": "adjustment", "adjustment-undo": "adjustment", "adjustment-confirm": "adjustment",
    "incident-detail": "incident", "incident-acknowledge": "incident", "incident-resolve": "incident",
    "incident-reopen": "incident", "incident-origin": "incident",
    "dashboard:incident": "incident", "dashboard:incident-action": "incident",
    "channel-detail": "channel", "channel-test": "channel", "alert-rule-detail": "alert_rule", "silence-detail": "silence",
    "notification-detail": "notification", "notification-retry": "notification",
    "dashboard:delete-channel": "channel", "dashboard:delete-rule": "alert_rule", "dashboard:delete-silence": "silence",
}
ID_METHODS = ("get", "post", "put", "patch", "delete")  # every method, whatever the route answers to
API_LISTS = {"run-list", "anomaly-list", "score-list", "series-list", "rankings", "ranking-changes", "incident-list",
             "channel-list", "alert-rule-list", "silence-list", "notification-list",
             "feedback-list", "adjustment-list", "audit-list", "backtest-list"}
API_COMPARE = {"backtest-compare"}  # two ids in the query: A's answer as a missing one's
API_EXPORTS = {"feedback-export"}  # the caller's labelled windows: none for B
API_POSTS = {"ingest-metrics", "ingest-otlp-metrics", "ingest-prometheus-write", "detect"}
API_SETTINGS = {"weights"}  # the caller's own tenant's settings: read and changed as B
PAGES = {"dashboard:overview", "dashboard:ranking", "dashboard:anomalies", "dashboard:incidents", "dashboard:alerting",
         "dashboard:adjustments", "dashboard:backtests", "api-keys", "switch-tenant"}
STATIC = {"schema", "api-docs", "login", "logout"}  # no tenant data: parameterless, allow-listed
KNOWN = set(ID_ROUTES) | API_LISTS | API_EXPORTS | API_COMPARE | API_POSTS | API_SETTINGS | PAGES | STATIC


def walk(patterns=None, prefix: str = "", namespace: str = ""):
    """(route, name, parameter names, pattern) of every URL pattern, recursively."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}{pattern.name}" if pattern.name else None
            yield prefix + str(pattern.pattern), name, set(pattern.pattern.regex.groupindex), pattern


def tenant_routes() -> list[tuple[str, str | None, set[str]]]:
    return [(route, name, params) for route, name, params, _ in walk() if not route.startswith("admin/")]


def test_every_route_is_known():
    routes = tenant_routes()
    assert len(routes) >= 20
    unknown = [(route, name) for route, name, _ in routes if name not in KNOWN]
    assert not unknown, f"new URLs: teach the isolation walker how to fill and check them: {unknown}"
    for route, name, params in routes:
        if params:
            assert name in ID_ROUTES and len(params) == 1, f"{route}: parameters {params} the walker cannot fill"
    assert {name for _, name, _ in routes} == KNOWN, "a known route disappeared: update the walker"


def test_every_openapi_operation_is_a_walked_route():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    api_names = {name for route, name, _ in tenant_routes() if route.startswith("api/v1/")}
    seen = set()
    for path in schema["paths"]:
        match = resolve(path.replace("{id}", "1"))
        assert match.url_name in KNOWN, path
        seen.add(match.url_name)
    assert seen == api_names, f"routes without an operation, or the reverse: {seen ^ api_names}"


def test_a_tenant_user_cannot_open_the_admin(outsider, owner):
    for user in (outsider, owner):
        client = Client()
        client.force_login(user)
        response = client.get("/admin/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert client.get("/admin/tenants/tenant/").status_code == 302


# The walk ----------------------------------------------------------------------------


def a_objects(api_a, tenant_a, owner) -> dict[str, int]:
    seed(api_a, tenant_a)
    end = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    start = int((end - timedelta(hours=1)).timestamp())
    ingest(api_a, [{"series": [{"cluster": MARKERS[0], "node": MARKERS[1], "metric": MARKERS[2],
                                "points": [[start + 60 * i, float(i)] for i in range(60)]}]}])
    with tenant_scope(tenant_a):
        ids = {
            "run": DetectionRun.objects.order_by("pk").values_list("pk", flat=True).first(),
            "anomaly": Anomaly.objects.order_by("pk").values_list("pk", flat=True).first(),
            "series": Series.objects.get(metric_name=MARKERS[2]).pk,
            "node": Node.objects.get(name=MARKERS[1]).pk,
            "api_key": ApiKey.objects.order_by("pk").values_list("pk", flat=True).first(),
        }
    labelled = api_a.post(f"/api/v1/anomalies/{ids['anomaly']}/feedback", {"verdict": "false_alarm", "comment": MARKERS[2]},
                          format="json")
    assert labelled.status_code == 201, labelled.content
    ids["feedback"] = labelled.json()["feedback"]["id"]
    with tenant_scope(tenant_a):
        anomaly = Anomaly.objects.get(pk=ids["anomaly"])
        ids["adjustment"] = Adjustment.objects.create(
            tenant=tenant_a, kind=Adjustment.Kind.THRESHOLD, series_id=anomaly.series_id, node_id=anomaly.node_id,
            metric_name=anomaly.metric_name, threshold=0.7, feedback_ids=[ids["feedback"]], reason=MARKERS[1],
        ).pk
        ids["backtest"] = Backtest.objects.create(
            tenant=tenant_a, engine="adtk", series_ids=[ids["series"]], range_start=end - timedelta(hours=1), range_end=end,
            created_by=MARKERS[1], status=Backtest.Status.SUCCEEDED, report={"nab": {}}).pk
        node = Node.objects.get(pk=ids["node"])
        ids["incident"] = Incident.objects.create(
            tenant=tenant_a, cluster_id=node.cluster_id, started_at=end - timedelta(minutes=30), ended_at=end,
            peak_score=0.9, node_ids=[node.pk], metrics=[MARKERS[2]], summary=f"{MARKERS[0]}/{MARKERS[1]}: {MARKERS[2]} up",
        ).pk
    made = channel(tenant_a, url="http://127.0.0.1:9/acme")
    record(tenant_a, facts(1, cluster=MARKERS[0], node=MARKERS[1], metric=MARKERS[2]))
    with tenant_scope(tenant_a):
        silence = Silence.objects.create(tenant=tenant_a, matchers={"cluster": MARKERS[0]}, starts_at=end, ends_at=end + timedelta(hours=1))
        ids.update(channel=made.pk, alert_rule=made.rules.get().pk, silence=silence.pk,
                   notification=Notification.objects.get().pk)
    assert all(ids.values()), ids
    return ids


def snapshot(tenant) -> dict[str, str]:
    """A digest of every tenant-owned row of ``tenant`` (its content, not just counts)."""
    out = {}
    with all_tenants("isolation test snapshot"):
        for model in apps.get_models():
            if issubclass(model, TenantOwned) and model._meta.db_table != "tenants_usagedaily" \
                    and model._meta.db_table != "tenants_usagemonth":  # API metering of B's own requests
                rows = model.objects.unscoped().filter(tenant_id=tenant.pk).order_by("pk").values_list()
                out[model._meta.label] = hashlib.sha256(repr(list(rows)).encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(sum(value), 0) FROM analytics_point WHERE tenant_id = %s", [tenant.pk])
        out["points"] = repr(cursor.fetchone())
    return out


def fill(route: str, value: int) -> str:
    """The URL of a route (path() or the router's regex) with its one parameter filled."""
    import re

    url = re.sub(r"<(?:\w+:)?\w+>", str(value), route)
    url = re.sub(r"\(\?P<\w+>[^)]*\)", str(value), url)
    return "/" + url.replace("^", "").replace("/?$", "").replace("$", "").replace("\\.", ".")


def body_format(api: bool) -> dict[str, str]:
    return {"format": "json"} if api else {"content_type": "application/json"}


def assert_no_leak(response, where: str, key_prefix: str) -> None:
    body = response.content.decode(errors="replace")
    for marker in (*MARKERS, key_prefix, "Acme"):
        assert marker not in body, f"{where}: tenant A's {marker!r} in the response"
    assert response.status_code < 500, f"{where}: {response.status_code}"


def walk_feedback_read(api_b, name: str, url: str, ids: dict, key_prefix: str) -> str:
    """Backtests compared by A's ids: exactly a missing one's answer; B's export: empty."""
    if name in API_COMPARE:
        theirs = api_b.get(url, {"a": ids["backtest"], "b": ids["backtest"]})
        missing = api_b.get(url, {"a": MISSING_ID, "b": MISSING_ID})
        assert theirs.status_code == 404 and theirs.content == missing.content, url
    else:
        theirs = api_b.get(url)
        assert theirs.status_code == 200 and theirs.json() == {"windows": {}, "reviewed": {}, "series": {}}, url
    assert_no_leak(theirs, url, key_prefix)
    return f"GET {url} as B"


@pytest.mark.django_db(transaction=True)
def test_tenant_b_walks_every_url_and_sees_nothing_of_a(api_a, api_b, tenant_a, tenant_b, owner, outsider):
    ids = a_objects(api_a, tenant_a, owner)
    a_weights = {"cluster_weights": {MARKERS[0]: 5.0}, "node_weights": {f"{MARKERS[0]}/{MARKERS[1]}": 2.0}}
    assert api_a.patch("/api/v1/weights", a_weights, format="json").status_code == 200
    with tenant_scope(tenant_a):
        key_prefix = ApiKey.objects.get(pk=ids["api_key"]).prefix
    before = snapshot(tenant_a)
    page_b = Client()
    page_b.force_login(outsider)
    api_schema = SchemaGenerator().get_schema(request=None, public=True)
    walked: list[str] = []

    # reads first, then B's writes (B's own data may then appear in B's lists)
    for route, name, _ in sorted(tenant_routes(), key=lambda r: r[1] in API_POSTS):
        api = route.startswith("api/")
        client = api_b if api else page_b
        if name in ID_ROUTES:
            for method in ID_METHODS:
                theirs = getattr(client, method)(fill(route, ids[ID_ROUTES[name]]), {"name": "stolen"}, **body_format(api))
                missing = getattr(client, method)(fill(route, MISSING_ID), {"name": "stolen"}, **body_format(api))
                where = f"{method.upper()} {fill(route, ids[ID_ROUTES[name]])} as B"
                walked.append(where)
                assert theirs.status_code in (404, 405), where
                assert (theirs.status_code, theirs.content) == (missing.status_code, missing.content), where
                assert_no_leak(theirs, where, key_prefix)
        elif name in API_LISTS:
            url = fill(route, 0)
            response = api_b.get(url)
            walked.append(f"GET {url} as B")
            body = response.json()
            assert response.status_code == 200, url
            assert (body == []) if isinstance(body, list) else (body["count"] == 0 and body["results"] == []), (url, body)
            assert_no_leak(response, url, key_prefix)
        elif name in API_COMPARE | API_EXPORTS:
            walked.append(walk_feedback_read(api_b, name, fill(route, 0), ids, key_prefix))
        elif name in API_POSTS:
            url = fill(route, 0)
            walked.append(f"POST {url} as B")
            if name == "ingest-metrics":  # A's names, in B's tenant: B's own series
                response = api_b.post(url, {"series": [{"cluster": MARKERS[0], "node": MARKERS[1], "metric": MARKERS[2],
                                                        "points": [[int(timezone.now().timestamp()) - 120, 1e6]]}]},
                                      format="json")
                assert response.status_code == 200 and response.json()["new_series"] == 1
            elif name == "detect":
                response = api_b.post(url, {}, format="json")
                assert response.status_code == 201  # finished in-process (eager tasks)
                with tenant_scope(tenant_a):
                    assert not DetectionRun.objects.filter(pk=response.json()["id"]).exists()
            else:  # protocol endpoints: a body that is no message of theirs
                response = api_b.generic("POST", url, b"\x00garbage", content_type="application/x-protobuf")
                assert response.status_code in (400, 415), (url, response.status_code)
            assert_no_leak(response, url, key_prefix)
        elif name in API_SETTINGS:
            url = fill(route, 0)
            walked.append(f"GET, PATCH {url} as B")
            mine = api_b.get(url)
            assert mine.status_code == 200 and mine.json()["cluster_weights"] == {}, mine.content
            assert_no_leak(mine, url, key_prefix)
            changed = api_b.patch(url, {"cluster_weights": {"b-cluster": 2}}, format="json")
            assert changed.status_code == 200 and changed.json()["cluster_weights"] == {"b-cluster": 2.0}
            assert_no_leak(changed, url, key_prefix)
            tenant_a.refresh_from_db()
            assert {name: getattr(tenant_a, name) for name in a_weights} == a_weights  # A's are A's
        elif name in PAGES:
            url = fill(route, 0)
            for method in ("get", "post"):
                data = {"tenant": tenant_a.pk, "name": "b-key"} if method == "post" else {}
                response = getattr(page_b, method)(url, data)
                walked.append(f"{method.upper()} {url} as B (page)")
                assert_no_leak(response, f"{method.upper()} {url}", key_prefix)
            assert page_b.post("/tenant", {"tenant": tenant_a.pk}).status_code == 404  # not B's tenant
        else:  # STATIC
            url = fill(route, 0)
            response = client.get(url)
            walked.append(f"GET {url}")
            assert_no_leak(response, url, key_prefix)

    # every PUT, PATCH and DELETE of the schema: ID routes sent all methods above; the rest here
    for path, operations in api_schema["paths"].items():
        for method in set(operations) & {"put", "patch", "delete"}:
            if "{" not in path:
                response = getattr(api_b, method)(path, {}, format="json")
                walked.append(f"{method.upper()} {path} as B")
                assert_no_leak(response, f"{method.upper()} {path}", key_prefix)

    # B's batch with A's names made B's own series, and B sees only that one
    assert page_b.get("/").status_code == 200
    assert api_b.get("/api/v1/series", {"metric_name": MARKERS[2]}).json()["count"] == 1
    assert snapshot(tenant_a) == before, "tenant B's requests changed tenant A's rows"
    with tenant_scope(tenant_a):
        assert ApiKey.objects.get(pk=ids["api_key"]).revoked_at is None
    print(f"\nwalked {len(walked)} requests over {len(tenant_routes())} routes as tenant B")
    assert len(walked) >= 25
    assert api_schema["paths"]
