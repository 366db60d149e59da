#!/usr/bin/env bash
# Runs Berth and the reference registry (Debian's docker-registry, the
# CNCF distribution registry) side by side on loopback, drives the same load
# at each in turn, and prints one table. Usage: bash bench/run.sh [bench flags]
# e.g. --blob-mib 256 --images 200 --seconds 5 for a quicker run.
# BERTH_BIN=path/to/berth measures another build of Berth (an earlier
# commit, for a before/after record) with the same load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/credential.sh

if ! command -v docker-registry >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bench: install Debian's docker-registry package first" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi
cargo build --release -q -p berth -p berth-bench
berth_bin=${BERTH_BIN:-target/release/berth}

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

BERTH_ADMIN_PASSWORD=bench-operator-password BERTH_LOG=warn \
    "$berth_bin" serve --listen 127.0.0.1:5101 --data-dir "$work/berth" >"$work/berth.out" 2>&1 &
pids+=($!)
berth_pid=$!

cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/reference
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5102
YAML
docker-registry serve "$work/registry.yml" >"$work/reference.out" 2>&1 &
pids+=($!)
reference_pid=$!

# Berth is up when /readyz says so; the reference when it answers HTTP at all.
wait_ready http://127.0.0.1:5101 100 || { cat "$work"/*.out >&2; exit 1; }
answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") != 000 ]]; }
for _ in $(seq 1 100); do
    answers http://127.0.0.1:5102/v2/ && break
    sleep 0.1
done
answers http://127.0.0.1:5102/v2/ || { echo "bench: the reference did not come up" >&2; cat "$work"/*.out >&2; exit 1; }

# Berth takes a logged-in client, as users have: an operator access key and
# the HMAC password, made the way the README shows.
berth_auth="Basic $(operator_credential http://127.0.0.1:5101 | base64 -w0)"

echo "berth $berth_bin at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), reference: $(docker-registry --version 2>&1 | head -1)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), data on $(df -h "$work" | awk 'NR==2 {print $1}')"
# The ceiling a durable push can reach here: hashing on one core, and
# writing until fdatasync returns, on the file system the servers write to.
target/release/berth-ceiling --dir "$work"
echo
target/release/berth-bench \
    --berth http://127.0.0.1:5101 --berth-pid "$berth_pid" --berth-auth "$berth_auth" \
    --reference http://127.0.0.1:5102 --reference-pid "$reference_pid" "$@"
