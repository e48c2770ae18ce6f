"""Fixtures of the dashboard page tests: the cast's clients and a seeded fleet."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.dashboard.seed import seed


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password="pw-" + user.username)
    return client


@pytest.fixture
def owner_client(owner) -> Client:
    return logged_in(owner)


@pytest.fixture
def member_client(member) -> Client:
    return logged_in(member)


@pytest.fixture
def outsider_client(outsider) -> Client:
    return logged_in(outsider)


@pytest.fixture
def fleet(api_a, tenant_a):
    """Tenant A's seeded fleet (ingested through the API, detected in-process)."""
    return seed(api_a, tenant_a)
