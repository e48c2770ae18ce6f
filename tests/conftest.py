"""The cast: tenant A with an owner and a member, tenant B with an outsider.

Fixtures build data unscoped (as operators would); test bodies stay scoped.

Each test run keys everything it puts in Redis (queues, results, rate-limit counters)
under a prefix of its own, so two runs on one machine never share a queue or a counter;
the workers the integration tests start inherit it. Tests marked ``postgres`` or
``redis`` are skipped without that service, except under scripts/test.sh
(FLEETWATCH_TEST_REQUIRE_SERVICES=1: CI), where they fail.
"""

from __future__ import annotations

import os
import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants.models import ApiKey, Membership, Plan, Tenant

REQUIRE_SERVICES = os.environ.get("FLEETWATCH_TEST_REQUIRE_SERVICES") == "1"


def pytest_configure(config):
    """This run's Redis key prefix, applied as config/settings.py applies one (the settings
    were loaded before this file) and exported to the processes the tests start."""
    from django.conf import settings

    from config.settings import redis_key_settings

    prefix = os.environ["FLEETWATCH_REDIS_KEY_PREFIX"] = f"fleetwatch-test-{uuid.uuid4().hex[:12]}:"
    for name, value in redis_key_settings(prefix).items():
        setattr(settings, name, value)


def services() -> dict[str, tuple[bool, str]]:
    from django.conf import settings
    from django.db import connection

    return {
        "postgres": (connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)"),
        "redis": (settings.CELERY_BROKER_URL.startswith("redis://"), "Redis (CELERY_BROKER_URL=redis://...)"),
    }


@pytest.fixture(autouse=True)
def _needs_services(request):
    for marker, (available, what) in services().items():
        if request.node.get_closest_marker(marker) and not available:
            (pytest.fail if REQUIRE_SERVICES else pytest.skip)(f"needs {what}")


@pytest.fixture
def plan(db) -> Plan:
    return Plan.objects.create(slug="team", name="Team", hot_retention_days=7, cold_retention_days=90)


def make_tenant(plan: Plan, slug: str) -> Tenant:
    return Tenant.objects.create(slug=slug, name=slug.title(), plan=plan)


def add_member(tenant: Tenant, username: str, role: str, **user_fields):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, **user_fields)
    Membership.objects.unscoped().create(tenant=tenant, user=user, role=role)
    return user


@pytest.fixture
def tenant_a(plan) -> Tenant:
    return make_tenant(plan, "acme")


@pytest.fixture
def tenant_b(plan) -> Tenant:
    return make_tenant(plan, "globex")


@pytest.fixture
def owner(tenant_a):
    return add_member(tenant_a, "alice", Membership.Role.OWNER)


@pytest.fixture
def member(tenant_a):
    return add_member(tenant_a, "bob", Membership.Role.MEMBER)


@pytest.fixture
def outsider(tenant_b):
    return add_member(tenant_b, "mallory", Membership.Role.OWNER)


def api_client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def key_a(tenant_a, owner) -> str:
    return ApiKey.issue(tenant_a, "ci", created_by=owner)[1]


@pytest.fixture
def key_b(tenant_b, outsider) -> str:
    return ApiKey.issue(tenant_b, "ci", created_by=outsider)[1]


@pytest.fixture
def api_a(key_a) -> APIClient:
    return api_client_for(key_a)


@pytest.fixture
def api_b(key_b) -> APIClient:
    return api_client_for(key_b)


@pytest.fixture(autouse=True)
def _forget_series_ids():
    """Each test starts with an empty series-id memory (it outlives transactions)."""
    from analytics.store.series_ids import series_id_cache

    series_id_cache.clear()


@pytest.fixture(autouse=True)
def celery_in_process(request):
    """Tasks run in-process unless a test brings a real worker (``integration``)."""
    from config.celery import app

    if request.node.get_closest_marker("integration"):
        yield
        return
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous
