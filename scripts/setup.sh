#!/usr/bin/env bash
# Idempotent set-up shared by the demo and the tests: virtualenv and Python packages.
# `scripts/setup.sh runtime` (the demo) installs requirements.txt only; `scripts/setup.sh`
# or `scripts/setup.sh dev` (the tests) adds the test and check tools of requirements-dev.txt.
# pip shows what it collects and installs, so a first run is never silent.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-dev}
case "$mode" in
  runtime | dev) ;;
  *) echo "scripts/setup.sh: expected 'runtime' or 'dev', got '$mode'" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
# A stamp per level holds the hash of what it installed; the dev level includes the runtime one.
dev_stamp=.venv/.requirements.sha256
dev_wanted=$(sha256sum requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
runtime_stamp=.venv/.requirements-runtime.sha256
runtime_wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$dev_stamp" 2>/dev/null)" = "$dev_wanted" ]; then
  exit 0
fi
if [ "$mode" = runtime ] && [ "$(cat "$runtime_stamp" 2>/dev/null)" = "$runtime_wanted" ]; then
  exit 0
fi
file=requirements.txt
[ "$mode" = dev ] && file=requirements-dev.txt  # which includes requirements.txt
# uv (from PyPI, pinned) downloads and unpacks in parallel: about a quarter of pip's time
# for the scientific stack; plain pip if it cannot be had.
if [ ! -x .venv/bin/uv ]; then
  echo "setup: installing the installer (uv $UV_VERSION)"
  .venv/bin/pip install --disable-pip-version-check --progress-bar on "uv==$UV_VERSION" || true
fi
echo "setup: installing $file into .venv (the installer's own output follows)"
if [ -x .venv/bin/uv ]; then
  .venv/bin/uv pip install --python .venv/bin/python -r "$file"
else
  .venv/bin/pip install --disable-pip-version-check --progress-bar on -r "$file"
fi
echo "$runtime_wanted" > "$runtime_stamp"
[ "$mode" = dev ] && echo "$dev_wanted" > "$dev_stamp"
exit 0
