#!/usr/bin/env bash
# The console's image list page with 1 000 images in the account: writes
# the history (10 organizations, 1 000 images, 3 tags each), serves it, and
# prints the page's server-side render time (its Server-Timing) and the
# whole request, median and p99, in English and Chinese.
# Usage: bash bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/credential.sh
cargo build --release -q -p berth -p berth-bench

work=$(mktemp -d /tmp/berth-console.XXXXXX)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "berth $(git rev-parse --short HEAD 2>/dev/null || echo '?'): bash bench/console.sh"
echo "| measurement | median | p99 | target |"
echo "|---|---|---|---|"
target/release/berth-history generate --data-dir "$work/data" --orgs 10 --images 1000 --tags 3 >"$work/generate.out"
BERTH_LOG=warn BERTH_ADMIN_PASSWORD=bench-operator-password \
    target/release/berth serve --listen 127.0.0.1:5104 --data-dir "$work/data" >"$work/serve.out" 2>&1 &
pid=$!
wait_ready http://127.0.0.1:5104 600
target/release/berth-history measure-console --url http://127.0.0.1:5104
