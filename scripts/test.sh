#!/usr/bin/env bash
# The test command: installs what is missing (Python packages, Chromium, Prometheus),
# runs the static checks (scripts/check.sh: lint, types, dependency rules), makes sure
# PostgreSQL and Redis are up, and runs the whole suite against them. Extra arguments
# go to pytest. Without PostgreSQL or Redis it fails: the tests that need them fail
# rather than skip here (FLEETWATCH_TEST_REQUIRE_SERVICES), as in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export CELERY_BROKER_URL=${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
case "$DATABASE_URL" in
  postgres://* | postgresql://*) ;;
  *) echo "scripts/test.sh: TEST_DATABASE_URL must be a PostgreSQL URL (postgres://...), got '$DATABASE_URL'" >&2; exit 2 ;;
esac
case "$CELERY_BROKER_URL" in
  redis://*) ;;
  *) echo "scripts/test.sh: TEST_CELERY_BROKER_URL must be a Redis URL (redis://...), got '$CELERY_BROKER_URL'" >&2; exit 2 ;;
esac
export FLEETWATCH_TEST_REQUIRE_SERVICES=1
# A deployment on DATABASE_URL brings its own key (config/settings.py); the tests make
# one per run (the processes they start inherit it).
export DJANGO_SECRET_KEY=${DJANGO_SECRET_KEY:-test-$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')}
scripts/setup.sh dev
scripts/check.sh
scripts/system_packages.sh
scripts/services.sh >/dev/null
exec .venv/bin/pytest "$@"
