#!/usr/bin/env bash
# The main job on the embedded default (SQLite, in-process tasks): set up, create the demo
# tenants, simulate a week, detect, print the logins and an API key, and serve on :8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
unset DATABASE_URL CELERY_BROKER_URL
.venv/bin/python manage.py migrate --no-input -v0
.venv/bin/python manage.py demo --base-url "http://127.0.0.1:${PORT:-8000}"
exec .venv/bin/python manage.py runserver 127.0.0.1:${PORT:-8000} --noreload
