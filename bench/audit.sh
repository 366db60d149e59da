#!/usr/bin/env bash
# The audit trail on a log of about 1 000 000 events: writes one with
# `berth-history generate` (65 600 images of 10 tags in 100 organizations,
# one repository with 10 000 tag events, denials and shares among them),
# serves it, times audit queries, as-of and the CSV export as the operator,
# then stops the server and times `berth projections rebuild`.
# Usage: bash bench/audit.sh [--orgs N --images N --tags N --hot-events N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/credential.sh
cargo build --release -q -p berth -p berth-bench

work=$(mktemp -d /tmp/berth-audit.XXXXXX)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

args=("$@")
[[ ${#args[@]} -eq 0 ]] && args=(--orgs 100 --images 65600 --tags 10 --hot-events 10000)
echo "berth $(git rev-parse --short HEAD 2>/dev/null || echo '?'): bash bench/audit.sh ${args[*]}"
started=$(date +%s)
target/release/berth-history generate --data-dir "$work/data" "${args[@]}" >"$work/generate.out" 2>"$work/generate.err"
cat "$work/generate.err"
echo "(generated in $(( $(date +%s) - started )) s)"
echo
echo "| measurement | median | p99 | target |"
echo "|---|---|---|---|"

BERTH_LOG=warn BERTH_ADMIN_PASSWORD=bench-operator-password \
    target/release/berth serve --listen 127.0.0.1:5104 --data-dir "$work/data" >"$work/serve.out" 2>&1 &
pid=$!
wait_ready http://127.0.0.1:5104 1200
token=$(operator_session http://127.0.0.1:5104)
target/release/berth-history measure-audit --url http://127.0.0.1:5104 --auth "Bearer $token"
kill "$pid"
wait "$pid" || true
pid=
echo
echo "\$ berth projections rebuild --data-dir …"
/usr/bin/time -f "(wall %e s, peak RSS %M KiB)" target/release/berth projections rebuild --data-dir "$work/data"
