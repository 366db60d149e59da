#!/usr/bin/env bash
# A Berth cluster on this machine, every part private and on loopback: a
# PostgreSQL 15 (the shared event log), a Garage node (the S3 blob store),
# three berth nodes and an HAProxy round-robin in front of them.
#
#   scripts/cluster.sh up          start everything (installs what is missing)
#   scripts/cluster.sh down        stop everything and remove its state
#   scripts/cluster.sh kill N      kill -9 berth node N (1-3)
#   scripts/cluster.sh stop N      stop berth node N cleanly (SIGTERM)
#   scripts/cluster.sh start N     start berth node N again
#   scripts/cluster.sh restart-pg  restart PostgreSQL (fast shutdown)
#   scripts/cluster.sh createdb NAME  another, empty database (for `berth log import`)
#   scripts/cluster.sh s3-writes deny|allow
#                                  make the bucket refuse writes, or take them again
#
# State lives in $BERTH_CLUSTER_DIR (default /tmp/berth-cluster); `up` writes
# $BERTH_CLUSTER_DIR/env with every address, for tests and shells to source.
# The berth binary is $BERTH_BIN (default target/release/berth, built if
# missing). Garage comes from crates.io (`cargo install garage`, about 15-20
# minutes on 2 cores, once; the binary is then reused from ~/.cargo/bin).
set -euo pipefail

DIR=${BERTH_CLUSTER_DIR:-/tmp/berth-cluster}
PORT_BASE=${BERTH_CLUSTER_PORT_BASE:-15400}
PG_PORT=$((PORT_BASE + 32))
S3_PORT=$((PORT_BASE + 90))
RPC_PORT=$((PORT_BASE + 91))
ADMIN_PORT=$((PORT_BASE + 93))
LB_PORT=$PORT_BASE
NODES=3
PASSWORD=${BERTH_CLUSTER_PASSWORD:-cluster-operator-pw}
# Fixed, local-only credentials of the private Garage node.
KEY_ID=GK0123456789abcdef01234567
KEY_SECRET=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
PG_BIN=/usr/lib/postgresql/15/bin
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BERTH_BIN=${BERTH_BIN:-$ROOT/target/release/berth}
GARAGE_BIN=${GARAGE_BIN:-$(command -v garage || echo "$HOME/.cargo/bin/garage")}

say() { echo "cluster: $*" >&2; }

node_port() { echo $((PORT_BASE + $1)); }

wait_for() { # what, command...
    local what=$1; shift
    for _ in $(seq 1 150); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    say "$what did not come up"; return 1
}

install_parts() {
    local missing=()
    [ -x "$PG_BIN/initdb" ] || missing+=(postgresql-15)
    command -v haproxy >/dev/null || missing+=(haproxy)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ ! -x "$GARAGE_BIN" ]; then
        say "building garage from crates.io (once; 15-20 minutes on 2 cores)"
        cargo install garage --locked --quiet
        GARAGE_BIN=$HOME/.cargo/bin/garage
    fi
    if [ ! -x "$BERTH_BIN" ]; then
        say "building berth (release)"
        (cd "$ROOT" && cargo build --release --quiet --bin berth)
    fi
}

pg_up() {
    mkdir -p "$DIR/pg"
    chown postgres "$DIR/pg"
    su postgres -c "$PG_BIN/initdb -D $DIR/pg/data -A trust -U postgres" >"$DIR/pg/initdb.log"
    pg_start
    su postgres -c "$PG_BIN/psql -h $DIR/pg -p $PG_PORT -U postgres -qc 'CREATE DATABASE berth'"
}

pg_start() {
    su postgres -c "$PG_BIN/pg_ctl -D $DIR/pg/data -w -o \"-p $PG_PORT -k $DIR/pg -c listen_addresses=127.0.0.1 -c max_connections=200\" -l $DIR/pg/log start" >/dev/null
}

garage_up() {
    mkdir -p "$DIR/garage"
    cat >"$DIR/garage/garage.toml" <<EOF
metadata_dir = "$DIR/garage/meta"
data_dir = "$DIR/garage/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -vtx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
EOF
    local g=("$GARAGE_BIN" -c "$DIR/garage/garage.toml")
    setsid "${g[@]}" server >"$DIR/garage/log" 2>&1 &
    echo $! >"$DIR/garage/pid"
    wait_for "garage" "${g[@]}" status
    local id
    id=$("${g[@]}" node id -q | cut -d@ -f1)
    "${g[@]}" layout assign -z dc1 -c 10G "$id" >/dev/null
    "${g[@]}" layout apply --version 1 >/dev/null
    wait_for "garage's layout" "${g[@]}" key import --yes -n berth "$KEY_ID" "$KEY_SECRET"
    "${g[@]}" bucket create berth >/dev/null
    "${g[@]}" bucket allow --read --write --owner berth --key "$KEY_ID" >/dev/null
}

node_start() { # N
    local n=$1 port
    port=$(node_port "$n")
    mkdir -p "$DIR/node$n"
    BERTH_ADMIN_PASSWORD=$PASSWORD setsid "$BERTH_BIN" serve \
        --listen "127.0.0.1:$port" \
        --data-dir "$DIR/node$n/data" \
        --log "postgres://postgres@127.0.0.1:$PG_PORT/berth" \
        --blob-store s3://berth/registry \
        --s3-endpoint "http://127.0.0.1:$S3_PORT" \
        --s3-region garage \
        --s3-access-key-id "$KEY_ID" \
        --s3-secret-access-key "$KEY_SECRET" \
        --s3-path-style true \
        --external-url "http://127.0.0.1:$LB_PORT" \
        --gc-interval 0 \
        --min-free-space 1MiB \
        >>"$DIR/node$n/log" 2>&1 &
    echo $! >"$DIR/node$n/pid"
    wait_for "berth node $n" curl -sf "http://127.0.0.1:$port/readyz"
}

lb_up() {
    {
        cat <<EOF
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    retries 2
    option redispatch
frontend registry
    bind 127.0.0.1:$LB_PORT
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /readyz
EOF
        for n in $(seq 1 $NODES); do
            echo "    server node$n 127.0.0.1:$(node_port "$n") check inter 500ms fall 2 rise 2"
        done
    } >"$DIR/haproxy.cfg"
    setsid haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 &
    echo $! >"$DIR/haproxy.pid"
    wait_for "haproxy" curl -sf "http://127.0.0.1:$LB_PORT/readyz"
}

kill_pid() { # file [signal]: stops the process and waits for it; one that
    # has not stopped after 30 s is killed, so nothing outlives `down`.
    [ -f "$1" ] || return 0
    local pid
    pid=$(cat "$1")
    kill -"${2:-TERM}" "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$1"
}

up() {
    install_parts
    down quiet
    mkdir -p "$DIR"
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    pg_up
    say "starting Garage (S3) on 127.0.0.1:$S3_PORT"
    garage_up
    for n in $(seq 1 $NODES); do
        say "starting berth node $n on 127.0.0.1:$(node_port "$n")"
        node_start "$n"
    done
    say "starting HAProxy on 127.0.0.1:$LB_PORT"
    lb_up
    {
        echo "BERTH_CLUSTER_LB=127.0.0.1:$LB_PORT"
        for n in $(seq 1 $NODES); do echo "BERTH_CLUSTER_NODE$n=127.0.0.1:$(node_port "$n")"; done
        echo "BERTH_CLUSTER_PG=postgres://postgres@127.0.0.1:$PG_PORT/berth"
        echo "BERTH_CLUSTER_S3=http://127.0.0.1:$S3_PORT"
        echo "BERTH_CLUSTER_S3_KEY_ID=$KEY_ID"
        echo "BERTH_CLUSTER_S3_SECRET=$KEY_SECRET"
        echo "BERTH_CLUSTER_PASSWORD=$PASSWORD"
    } >"$DIR/env"
    say "up: registry at http://127.0.0.1:$LB_PORT (operator system/admin, password $PASSWORD)"
}

down() {
    kill_pid "$DIR/haproxy.pid"
    for n in $(seq 1 $NODES); do kill_pid "$DIR/node$n/pid"; done
    kill_pid "$DIR/garage/pid"
    if [ -f "$DIR/pg/data/postmaster.pid" ]; then
        su postgres -c "$PG_BIN/pg_ctl -D $DIR/pg/data -m immediate stop" >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
    [ "${1:-}" = quiet ] || say "down"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    kill) kill_pid "$DIR/node$2/pid" KILL ;;
    stop) kill_pid "$DIR/node$2/pid" TERM ;;
    start) node_start "$2" ;;
    restart-pg)
        su postgres -c "$PG_BIN/pg_ctl -D $DIR/pg/data -m fast -w stop" >/dev/null
        pg_start
        ;;
    createdb)
        su postgres -c "$PG_BIN/psql -h $DIR/pg -p $PG_PORT -U postgres -qc 'CREATE DATABASE $2'"
        ;;
    s3-writes)
        "$GARAGE_BIN" -c "$DIR/garage/garage.toml" bucket "$2" --write berth --key "$KEY_ID" >/dev/null
        ;;
    *) echo "usage: $0 up|down|kill N|stop N|start N|restart-pg|createdb NAME|s3-writes deny|allow" >&2; exit 2 ;;
esac
