"""How the suite treats missing services and shared Redis: a test that needs PostgreSQL
or Redis fails under scripts/test.sh (CI) and is skipped elsewhere; each run keys its
Redis data (queues, cache and rate-limit counters) under a prefix of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from celery.exceptions import AlwaysEagerIgnored
from django.conf import settings
from django.core.cache import caches

from config.celery import app

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ONLY = "tests/store/test_partitions.py::test_ensure_partitions_is_idempotent"


def run_pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_postgres_test_fails_under_ci_without_postgresql_and_is_skipped_elsewhere(tmp_path):
    sqlite = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FLEETWATCH_TEST_REQUIRE_SERVICES")}
    sqlite["FLEETWATCH_VAR_DIR"] = str(tmp_path)  # SQLite under a directory of its own
    skipped = run_pytest(sqlite, POSTGRES_ONLY)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout[-2000:]
    failed = run_pytest({**sqlite, "FLEETWATCH_TEST_REQUIRE_SERVICES": "1"}, POSTGRES_ONLY)
    assert failed.returncode == 1 and "1 error" in failed.stdout, failed.stdout[-2000:]  # failed in its setup
    assert "needs PostgreSQL (DATABASE_URL=postgres://...)" in failed.stdout


def test_scripts_test_sh_refuses_a_database_that_is_not_postgresql():
    env = {**os.environ, "TEST_DATABASE_URL": "sqlite:///tmp/x.sqlite3"}
    result = subprocess.run([str(ROOT / "scripts" / "test.sh"), "--collect-only"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "TEST_DATABASE_URL must be a PostgreSQL URL" in result.stderr


@pytest.mark.redis
def test_this_runs_redis_keys_all_start_with_its_own_prefix():
    prefix = settings.FLEETWATCH_REDIS_KEY_PREFIX
    assert prefix.startswith("fleetwatch-test-") and os.environ["FLEETWATCH_REDIS_KEY_PREFIX"] == prefix
    server = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = f"isolation-{prefix}"
    try:
        caches["default"].set("isolation-check", 1, timeout=60)  # how the rate limits count
        with pytest.warns(AlwaysEagerIgnored):  # sent to the broker even here, as wanted
            app.send_task("results.tasks.reap_stuck_runs", queue=queue)  # a message to a queue of this run
        assert server.exists(f"{prefix}fleetwatch:1:isolation-check")
        assert server.llen(f"{prefix}{queue}") == 1
        assert not server.exists(queue) and not server.exists("fleetwatch:1:isolation-check")
    finally:
        server.delete(f"{prefix}{queue}", f"{prefix}fleetwatch:1:isolation-check")
