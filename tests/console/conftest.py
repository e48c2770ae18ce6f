"""The console's cast: an operator (staff) on top of the shared tenants and keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

INGEST_URL = "/api/v1/metrics"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser(username="operator", password="pw-operator", email="ops@example.com")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def points_body(n: int, *, node: str = "node-1", metric: str = "cpu_usage", offset: int = 0) -> dict:
    """``n`` distinct points of one series, a minute apart, within the last 12 hours (offset in minutes)."""
    start = int((datetime.now(UTC) - timedelta(hours=12)).timestamp()) // 60 * 60 + offset * 60
    return {"series": [{"cluster": "prod", "node": node, "metric": metric,
                        "points": [[start + i * 60, float(i)] for i in range(n)]}]}


def post_batch(client, body):
    return client.generic("POST", INGEST_URL, json.dumps(body), content_type="application/json")
