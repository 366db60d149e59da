#!/usr/bin/env bash
# The cluster benchmark: scripts/cluster.sh (PostgreSQL, Garage, three nodes,
# HAProxy) beside one embedded node, all on this machine, with the same load
# as bench/run.sh. Prints:
#   1. small image pushes/s, small image pulls/s and manifest GET/s through
#      the cluster against the embedded node;
#   2. CPU time per manifest GET on each node, from /proc, around a GET-only
#      run through HAProxy;
#   3. CPU time per small image push of each process of the cluster (the
#      nodes, PostgreSQL, Garage, HAProxy), around 1 000 pushes with 8
#      clients through HAProxy, and of the embedded node under the same load;
#   4. a 1 GiB blob pushed to a node (POST, one PATCH, PUT), against Garage's
#      own S3 PUT of the same file, both with curl.
# Usage: bash bench/cluster.sh [--images N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/credential.sh

cargo build --release -q -p berth -p berth-bench
export BERTH_BIN=$PWD/target/release/berth
export BERTH_CLUSTER_DIR=/tmp/berth-bench-cluster
export BERTH_CLUSTER_PASSWORD=bench-operator-password
export BERTH_LOG=warn
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
embedded_pid=
cleanup() {
    [[ -n $embedded_pid ]] && kill "$embedded_pid" 2>/dev/null || true
    scripts/cluster.sh down >/dev/null 2>&1 || true
    rm -rf "$work" /dev/shm/berth-bench-1g
}
trap cleanup EXIT

scripts/cluster.sh up
source "$BERTH_CLUSTER_DIR/env"
BERTH_ADMIN_PASSWORD=bench-operator-password "$BERTH_BIN" serve \
    --listen 127.0.0.1:5201 --data-dir "$work/embedded" >"$work/embedded.out" 2>&1 &
embedded_pid=$!
wait_ready http://127.0.0.1:5201 100

lb=http://$BERTH_CLUSTER_LB
cluster_auth="Basic $(operator_credential "$lb" | base64 -w0)"
embedded_auth="Basic $(operator_credential http://127.0.0.1:5201 | base64 -w0)"
node_pids=()
for n in 1 2 3; do node_pids+=("$(cat "$BERTH_CLUSTER_DIR/node$n/pid")"); done

echo "berth at $(git rev-parse --short HEAD 2>/dev/null || echo '?'); machine: $(nproc) cores; PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'), $(garage --version 2>/dev/null || "$HOME/.cargo/bin/garage" --version)"
echo
echo "## 1. the cluster through HAProxy against one embedded node"
target/release/berth-bench --mode cluster \
    --berth "$lb" --berth-pid "${node_pids[0]}" --berth-auth "$cluster_auth" \
    --reference http://127.0.0.1:5201 --reference-pid "$embedded_pid" --reference-auth "$embedded_auth" "$@"

echo
echo "## 2. CPU per manifest GET on each node (32 connections through HAProxy)"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
before=()
for p in "${node_pids[@]}"; do before+=("$(ticks "$p")"); done
gets=$(target/release/berth-bench --mode gets --berth "$lb" --berth-pid 0 --berth-auth "$cluster_auth" \
    --reference unused --reference-pid 0 --seconds 20)
echo "$gets"
requests=$(echo "$gets" | awk '{print $NF}')
for i in 0 1 2; do
    used=$(( $(ticks "${node_pids[$i]}") - ${before[$i]} ))
    # HAProxy deals the requests out in turn: a third to each node.
    awk -v t="$used" -v hz="$hz" -v r="$requests" -v n=$((i + 1)) \
        'BEGIN { printf "node %d: %.2f s CPU for %d GETs: %.1f us per manifest GET\n", n, t / hz, r / 3, t / hz * 1e6 / (r / 3) }'
done

echo
echo "## 3. CPU per small image push, by process (8 clients through HAProxy)"
# PostgreSQL is its postmaster and its backends (the nodes' connections),
# found again at the end for those opened during the run.
pids_of() {
    case $1 in
        node1 | node2 | node3) cat "$BERTH_CLUSTER_DIR/$1/pid" ;;
        PostgreSQL)
            local main
            main=$(head -1 "$BERTH_CLUSTER_DIR/pg/data/postmaster.pid")
            echo "$main $(pgrep -d ' ' -P "$main")"
            ;;
        Garage) cat "$BERTH_CLUSTER_DIR/garage/pid" ;;
        HAProxy) cat "$BERTH_CLUSTER_DIR/haproxy.pid" ;;
        embedded) echo "$embedded_pid" ;;
    esac
}
cpu_of() { local t=0 p; for p in "$@"; do [[ -r /proc/$p/stat ]] && t=$((t + $(ticks "$p"))); done; echo "$t"; }
cpu_per_image() { # base, auth, parts...: 1 000 pushes, then each part's share
    local base=$1 auth=$2 part total=0 used
    shift 2
    declare -A start
    for part in "$@"; do start[$part]=$(cpu_of $(pids_of "$part")); done
    target/release/berth-bench --mode pushes --berth "$base" --berth-pid 0 --berth-auth "$auth" \
        --reference unused --reference-pid 0 --images 1000
    for part in "$@"; do
        used=$(( $(cpu_of $(pids_of "$part")) - ${start[$part]} ))
        total=$((total + used))
        awk -v t="$used" -v hz="$hz" -v p="$part" 'BEGIN { printf "  %s: %.2f ms CPU per image\n", p, t / hz }'
    done
    awk -v t="$total" -v hz="$hz" 'BEGIN { printf "  in all: %.2f ms CPU per image\n", t / hz }'
}
echo "the cluster:"
cpu_per_image "$lb" "$cluster_auth" node1 node2 node3 PostgreSQL Garage HAProxy
echo "the embedded node:"
cpu_per_image http://127.0.0.1:5201 "$embedded_auth" embedded

echo
echo "## 4. a 1 GiB blob: pushed to a node, and PUT to Garage, both with curl"
# Garage keeps blocks by their content, so a second upload of the same bytes
# costs it less than the first, whoever sends it: each upload here sends new
# random bytes.
file=/dev/shm/berth-bench-1g
fresh() {
    head -c $((1 << 30)) /dev/urandom >"$file"
    sum=sha256:$(sha256sum "$file" | cut -d' ' -f1)
}
put_garage() {
    curl -fsS -o /dev/null -w '%{time_total}' --aws-sigv4 "aws:amz:garage:s3" \
        --user "$BERTH_CLUSTER_S3_KEY_ID:$BERTH_CLUSTER_S3_SECRET" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        -T "$file" "$BERTH_CLUSTER_S3/berth/bench/put-$1"
}
push_berth() { # base, repo
    local start loc
    start=$(date +%s.%N)
    loc=$(curl -fsS -o /dev/null -w '%header{location}' -X POST -H "Authorization: $cluster_auth" "$1/v2/$2/blobs/uploads/")
    [[ $loc == http* ]] || loc="$1$loc"
    loc=$(curl -fsS -o /dev/null -w '%header{location}' -X PATCH -H "Authorization: $cluster_auth" \
        -H 'Content-Type: application/octet-stream' -T "$file" "$loc")
    [[ $loc == http* ]] || loc="$1$loc"
    sep='?'; [[ $loc == *\?* ]] && sep='&'
    curl -fsS -o /dev/null -X PUT -H "Authorization: $cluster_auth" "$loc${sep}digest=$sum"
    awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.3f", a - b }'
}
mbs() { awk -v s="$1" 'BEGIN { printf "%.1f", 1073.741824 / s }'; }
for round in 1 2; do
    fresh
    g=$(put_garage "$round")
    fresh
    b=$(push_berth "http://$BERTH_CLUSTER_NODE1" "bench/big$round")
    fresh
    l=$(push_berth "$lb" "bench/lb$round")
    echo "round $round: Garage S3 PUT $(mbs "$g") MB/s; berth push to node 1 $(mbs "$b") MB/s ($(awk -v b="$b" -v g="$g" 'BEGIN { printf "%.2f", g / b }')x); through HAProxy $(mbs "$l") MB/s"
done
