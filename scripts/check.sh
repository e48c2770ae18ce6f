#!/usr/bin/env bash
# The static checks, run before the tests (scripts/test.sh) and by pre-commit: lint
# (ruff), types (mypy with the Django, DRF and Celery stubs) and the dependency rules
# (import-linter). Their configuration is pyproject.toml; CONTRIBUTING.md explains the
# rules. The tools come pinned from requirements-dev.txt (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff (lint)"
.venv/bin/ruff check .
echo "== mypy (types)"
.venv/bin/mypy
echo "== import-linter (dependency rules)"
.venv/bin/lint-imports | sed -n '/^Contracts$/,$p'
