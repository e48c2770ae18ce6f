#!/usr/bin/env bash
# The new user's first command, timed: a fresh clone of this checkout, a fresh .venv and
# cold installer caches (pip's and uv's), then `scripts/demo.sh` until its first page
# answers. Prints the wall-clock time, the CPU seconds it took (set-up included) and the
# machine's load (on a shared machine the wall clock grows with the load, the CPU time
# does not). Stops the demo afterwards. Usage: bench/demo_first_page.sh [DIR] (PORT=8799).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/tmp/fleetwatch-fresh-clone}
port=${PORT:-8799}
rm -rf "$dir"
git clone -q "$repo" "$dir"
cd "$dir"
cache=$(mktemp -d)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s.%N)
PORT=$port PIP_NO_CACHE_DIR=1 UV_CACHE_DIR="$cache" scripts/demo.sh > demo.log 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$cache"' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$port/accounts/login/"; do
  kill -0 "$pid" 2>/dev/null || { echo "scripts/demo.sh ended before serving: see $dir/demo.log" >&2; exit 1; }
  sleep 0.2
done
wall=$(echo "$(date +%s.%N) - $start" | bc)
# demo.sh execs the demo command: its pid's own and waited-for children's CPU is everything so far
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15 + $16 + $17) / hz}' "/proc/$pid/stat")
setup=$(grep -o '^\[demo [0-9]* s\] migrations' demo.log | grep -o '[0-9]*' || true)
printf 'first page %.1f s after scripts/demo.sh started (set-up with the installer %s s); CPU %s s; load %s -> %s\n' \
  "$wall" "${setup:-?}" "$cpu" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)"
