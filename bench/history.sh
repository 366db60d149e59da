#!/usr/bin/env bash
# The management API on a large history: writes one (default 100 000 images
# in 1 000 organizations, 10 tags each; flags are passed to `generate`),
# serves it, and prints the latency of the image list's first page, a
# filtered search, one image's tag list, and the pull path's share check.
# Usage: bash bench/history.sh [--orgs N --images N --tags N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/credential.sh
cargo build --release -q -p berth -p berth-bench

work=$(mktemp -d /tmp/berth-history.XXXXXX)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "berth $(git rev-parse --short HEAD 2>/dev/null || echo '?'): bash bench/history.sh $*"
echo "| measurement | median | p99 | target |"
echo "|---|---|---|---|"
target/release/berth-history generate --data-dir "$work/data" "$@" >"$work/generate.out"
grep '^|' "$work/generate.out"
auth=$(sed -n 's/^AUTH=//p' "$work/generate.out")

BERTH_LOG=warn BERTH_ADMIN_PASSWORD=bench-operator-password \
    target/release/berth serve --listen 127.0.0.1:5103 --data-dir "$work/data" >"$work/serve.out" 2>&1 &
pid=$!
wait_ready http://127.0.0.1:5103 600
target/release/berth-history measure --url http://127.0.0.1:5103 --auth "$auth"
