#!/usr/bin/env bash
# The crash loop against the cluster: a fourth node of scripts/cluster.sh's
# cluster (same PostgreSQL log, same Garage bucket) is SIGKILLed during
# concurrent pushes and restarted, 50 cycles by default; every acknowledged
# push must then pull back whole from that node and through HAProxy (the
# other three). Then `berth log verify` against PostgreSQL.
# Usage: bash bench/cluster-crash-loop.sh [--cycles N] [--clients N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/credential.sh
cargo build --release -q -p berth -p berth-bench
export BERTH_BIN=$PWD/target/release/berth
export BERTH_CLUSTER_DIR=/tmp/berth-crash-cluster
export BERTH_CLUSTER_PASSWORD=bench-operator-password
export BERTH_LOG=warn
trap 'scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
scripts/cluster.sh up
source "$BERTH_CLUSTER_DIR/env"
auth="Basic $(operator_credential "http://$BERTH_CLUSTER_LB" | base64 -w0)"

echo "berth at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores; node 4 killed, checked there and through HAProxy"
target/release/berth-crashloop --berth-bin "$BERTH_BIN" --data-dir "$BERTH_CLUSTER_DIR/node4" \
    --listen 127.0.0.1:15404 --auth "$auth" --check-at "http://$BERTH_CLUSTER_LB" \
    --serve-arg=--log="$BERTH_CLUSTER_PG" --serve-arg=--blob-store=s3://berth/registry \
    --serve-arg=--s3-endpoint="$BERTH_CLUSTER_S3" --serve-arg=--s3-region=garage \
    --serve-arg=--s3-access-key-id="$BERTH_CLUSTER_S3_KEY_ID" \
    --serve-arg=--s3-secret-access-key="$BERTH_CLUSTER_S3_SECRET" \
    --serve-arg=--s3-path-style=true --cycles 50 "$@"
"$BERTH_BIN" log verify --log "$BERTH_CLUSTER_PG"
