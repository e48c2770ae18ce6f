"""POST /api/v1/metrics: whole-batch validation, atomicity, idempotency, isolation."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from analytics.models import TenantDailyCounter
from tests.ingest.points import point_count, stored_points

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/metrics"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def point(**overrides):
    base = {"cluster": "prod", "node": "node-1", "metric": "cpu_usage",
            "timestamp": (now() - timedelta(minutes=5)).isoformat(), "value": 41.5}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def post(client, body, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.generic("POST", URL, data, content_type=content_type)


def test_both_forms_are_accepted_and_series_created_on_first_sight(api_a, tenant_a):
    t = int(now().timestamp()) - 600
    body = {
        "points": [point(unit="%"), point(node="node-2", timestamp=t)],
        "series": [{"cluster": "prod", "node": "node-1", "metric": "mem", "points": [[t, 1.0], [t + 60, 2.5]]}],
    }
    response = post(api_a, body)
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 4, "new_series": 3}
    again = post(api_a, {"series": [{"cluster": "prod", "node": "node-1", "metric": "mem", "points": [[t + 120, 3.0]]}]})
    assert again.json() == {"accepted": 1, "new_series": 0}
    assert point_count(tenant_a) == 5
    assert ("prod", "node-1", "mem", t + 60, 2.5) in stored_points(tenant_a)


BAD_POINTS = [
    ("nan", point(value=float("nan")), "value", "must be finite"),
    ("infinity", point(value=float("inf")), "value", "must be finite"),
    ("string value", point(value="12"), "value", "must be a number"),
    ("bool value", point(value=True), "value", "must be a number"),
    ("missing value", point(value=...), "value", "required"),
    ("missing node", point(node=...), "node", "required"),
    ("unknown field", point(colour="red"), "colour", "unknown field"),
    ("naive timestamp", point(timestamp="2026-11-27T10:00:00"), "timestamp", "has no UTC offset"),
    ("unparseable timestamp", point(timestamp="yesterday"), "timestamp", "not an RFC 3339 timestamp"),
    ("far future", point(timestamp=(now() + timedelta(hours=1)).isoformat()), "timestamp", "too far in the future"),
    ("too old", point(timestamp=(now() - timedelta(days=30)).isoformat()), "timestamp", "older than the hot retention"),
    ("bad name", point(metric="cpu usage;drop"), "metric", "only letters, digits"),
    ("long name", point(node="n" * 129), "node", "longer than 128"),
    ("number name", point(cluster=7), "cluster", "must be a string"),
    ("bad unit", point(unit="x" * 40), "unit", "printable string"),
]


@pytest.mark.parametrize(("case", "bad", "field", "reason"), BAD_POINTS, ids=[c[0] for c in BAD_POINTS])
def test_each_invalid_point_rejects_the_batch_naming_field_and_reason(api_a, tenant_a, case, bad, field, reason):
    response = post(api_a, {"points": [point(), bad]})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_batch"
    assert any(d["index"] == 1 and d["field"].endswith(field) and reason in d["reason"] for d in error["details"]), error
    assert field in error["message"]
    assert point_count(tenant_a) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ("{not json", "application/json", 400, "body"),
        ("[]", "application/json", 400, "body"),
        ({"points": []}, "application/json", 400, "points"),
        ({"points": {}}, "application/json", 400, "points"),
        ({"pointz": []}, "application/json", 400, "body.pointz"),
        ({"series": [{"cluster": "c", "node": "n", "metric": "m", "points": [[1]]}]}, "application/json", 400, "series[0].points[0]"),
        ({"series": [{"cluster": "c", "node": "n", "metric": "m"}]}, "application/json", 400, "series[0].points"),
        ({"points": [point()]}, "text/plain", 415, None),
    ],
)
def test_malformed_bodies_get_a_clear_4xx(api_a, tenant_a, body, content_type, status, field):
    response = post(api_a, body, content_type)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    if field:
        assert error["details"][0]["field"] == field
    else:
        assert "Content-Type" in error["message"]
    assert point_count(tenant_a) == 0


def test_oversized_batch_and_body_get_413(api_a, tenant_a):
    with override_settings(FLEETWATCH_MAX_BATCH_POINTS=3):
        response = post(api_a, {"points": [point()] * 4})
        assert response.status_code == 413
        assert response.json()["error"]["details"][0]["field"] == "points"
    with override_settings(FLEETWATCH_MAX_BODY_BYTES=2000):
        response = post(api_a, {"points": [point()] * 40})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
    assert point_count(tenant_a) == 0


def test_one_bad_point_in_ten_thousand_stores_nothing(api_a, tenant_a):
    t0 = int(now().timestamp()) - 3 * 86400
    points = [[t0 + i * 20, float(i)] for i in range(10_000)]
    points[7_777][1] = "oops"
    body = {"series": [{"cluster": "prod", "node": f"node-{i}", "metric": "cpu", "points": points[i * 1000:(i + 1) * 1000]}
                       for i in range(10)]}
    response = post(api_a, body)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == [
        {"index": 7_777, "field": "series[7].points[777].value", "reason": "must be a number"}
    ]
    assert point_count(tenant_a) == 0
    points[7_777][1] = 1.0
    assert post(api_a, body).json() == {"accepted": 10_000, "new_series": 10}
    assert point_count(tenant_a) == 10_000


def test_resending_a_batch_or_a_point_never_duplicates_last_value_wins(api_a, tenant_a):
    t = int(now().timestamp()) - 600
    body = {"series": [{"cluster": "prod", "node": "n1", "metric": "cpu", "points": [[t, 1.0], [t + 60, 2.0]]}]}
    assert post(api_a, body).status_code == 200
    first = stored_points(tenant_a)
    assert post(api_a, body).json() == {"accepted": 2, "new_series": 0}
    assert stored_points(tenant_a) == first
    resent = {"series": [{"cluster": "prod", "node": "n1", "metric": "cpu", "points": [[t, 5.0], [t, 6.0]]}]}
    assert post(api_a, resent).status_code == 200
    assert stored_points(tenant_a) == {("prod", "n1", "cpu", t, 6.0), ("prod", "n1", "cpu", t + 60, 2.0)}


def test_tenants_are_isolated_even_with_the_same_names(api_a, api_b, tenant_a, tenant_b):
    t = int(now().timestamp()) - 600
    body = {"series": [{"cluster": "prod", "node": "n1", "metric": "cpu", "points": [[t, 1.0]]}]}
    assert post(api_a, body).json() == {"accepted": 1, "new_series": 1}
    body["series"][0]["points"] = [[t, 99.0]]
    assert post(api_b, body).json() == {"accepted": 1, "new_series": 1}  # B's own series, not A's
    assert stored_points(tenant_a) == {("prod", "n1", "cpu", t, 1.0)}
    assert stored_points(tenant_b) == {("prod", "n1", "cpu", t, 99.0)}


def test_rejected_points_are_counted_by_reason(api_a, tenant_a):
    post(api_a, {"points": [point(value="x"), point(value="y"), point(timestamp="soon")]})
    rejected = TenantDailyCounter.objects.for_tenant(tenant_a).get().rejected_by_reason
    assert rejected == {"value: must be a number": 2, "timestamp: not an RFC 3339 timestamp": 1}
