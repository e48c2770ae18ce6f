#!/usr/bin/env bash
# Vendor the dashboard's chart library into static/vendor/ (committed, so the product
# runs without npm or a CDN). Idempotent: `npm ci` from the pinned lock file, then copy
# the built files and the licence byte-for-byte.
set -euo pipefail
cd "$(dirname "$0")/.."

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

dest=static/vendor/uplot
mkdir -p "$dest"
install -m 0644 node_modules/uplot/dist/uPlot.iife.min.js "$dest/uPlot.iife.min.js"
install -m 0644 node_modules/uplot/dist/uPlot.min.css "$dest/uPlot.min.css"
install -m 0644 node_modules/uplot/LICENSE "$dest/LICENSE"
version=$(node -p 'require("./node_modules/uplot/package.json").version')
printf 'uPlot %s from the npm registry (package-lock.json); MIT licence in LICENSE.\n' "$version" > "$dest/VERSION"
echo "vendored uPlot $version into $dest" >&2
