#!/usr/bin/env bash
# The crash loop: SIGKILL a running Berth during concurrent pushes, restart
# it, check every acknowledged push pulls back whole; 200 cycles by default.
# Then `berth log verify` and a read-model rebuild compared with the live
# read models. Usage: bash bench/crash-loop.sh [--cycles N] [--clients N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/credential.sh
cargo build --release -q -p berth -p berth-bench
bin=target/release/berth
work=$(mktemp -d /tmp/berth-crash.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT

# One clean start to make the operator and its access key.
BERTH_ADMIN_PASSWORD=bench-operator-password BERTH_LOG=warn \
    "$bin" serve --listen 127.0.0.1:5301 --data-dir "$work/data" >/dev/null &
pid=$!
wait_ready http://127.0.0.1:5301 100
auth="Basic $(operator_credential http://127.0.0.1:5301 | base64 -w0)"
kill -TERM $pid
wait $pid

echo "berth $bin at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, data on $(df -h "$work" | awk 'NR==2 {print $1}')"
target/release/berth-crashloop --berth-bin "$bin" --data-dir "$work/data" --auth "$auth" "$@"
"$bin" log verify --data-dir "$work/data"
live=$("$bin" projections digest --data-dir "$work/data")
rebuilt=$("$bin" projections rebuild --data-dir "$work/data")
echo "$rebuilt"
[[ $rebuilt == *"$live" ]] || { echo "crash loop: live read models differ from a rebuild" >&2; exit 1; }
echo "read models equal a rebuild from the log"
