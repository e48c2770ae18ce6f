"""Private PostgreSQL and Redis for the fault tests: started here, restarted by the tests,
destroyed at the end. The machine's shared services are never touched."""

from __future__ import annotations

import uuid

import pytest

from tests.faults.services import PrivatePostgres, PrivateRedis, manage, product_env

TEMPLATE = "fleetwatch_template"


@pytest.fixture(scope="session")
def private_pg():
    """A throw-away PostgreSQL 15 with a migrated template database (migrated once)."""
    pg = PrivatePostgres()
    try:
        pg.start()
        manage(product_env(pg.create_database(TEMPLATE)), "migrate", "--noinput")
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def fresh_database(private_pg):
    """A migrated database of its own (a copy of the template); its URL."""
    name = f"faults_{uuid.uuid4().hex[:8]}"
    private_pg.query(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    yield private_pg.url(name)
    if not private_pg.running():
        private_pg.start()
    private_pg.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_redis():
    redis = PrivateRedis()
    try:
        redis.start()
        yield redis
    finally:
        redis.destroy()
