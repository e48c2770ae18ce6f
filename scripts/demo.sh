#!/usr/bin/env bash
# The main job on the embedded default (SQLite, in-process tasks): set up (runtime
# requirements only), create the demo tenants, simulate a week, detect, print the logins
# and an API key, and serve on :8000 while a simulator keeps sending and detection runs
# on the plans' schedule. Each step says what it does and when (seconds since start).
set -euo pipefail
cd "$(dirname "$0")/.."
export FLEETWATCH_DEMO_STARTED=${FLEETWATCH_DEMO_STARTED:-$(date +%s)}
step() { echo "[demo $(( $(date +%s) - FLEETWATCH_DEMO_STARTED )) s] $*"; }
step "set-up: virtualenv and runtime requirements"
scripts/setup.sh runtime
unset DATABASE_URL CELERY_BROKER_URL
step "migrations (SQLite under var/), demo tenants, a simulated week through ingestion, then serving (detection in the background)"
exec .venv/bin/python manage.py demo --migrate --base-url "http://127.0.0.1:${PORT:-8000}" --serve "127.0.0.1:${PORT:-8000}" \
  --started "$FLEETWATCH_DEMO_STARTED"
