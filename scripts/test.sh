#!/usr/bin/env bash
# The test command: installs what is missing (Python packages, Chromium, Prometheus),
# runs the static checks (scripts/check.sh: lint, types, dependency rules), makes sure
# PostgreSQL and Redis are up, and runs the whole suite against them. Extra arguments
# go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check.sh
scripts/system_packages.sh
scripts/services.sh >/dev/null
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export CELERY_BROKER_URL=${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
exec .venv/bin/pytest "$@"
