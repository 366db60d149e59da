#!/usr/bin/env bash
# Runs Berth's whole test suite on a fresh machine: installs the real clients
# (Docker engine, skopeo, oras, curl, openssl) and the cluster's parts
# (PostgreSQL 15, HAProxy, Garage), starts a private Docker daemon, checks formatting
# and lints, and runs every unit and end-to-end test. Exits non-zero on any
# failure; end-to-end tests fail (never skip) when a real part is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v dockerd >/dev/null || need_packages+=(docker.io)
command -v skopeo >/dev/null || need_packages+=(skopeo)
command -v openssl >/dev/null || need_packages+=(openssl)
# curl: the HTTPS tests call it with the test CA, as an operator would.
command -v curl >/dev/null || need_packages+=(curl)
command -v python3 >/dev/null || need_packages+=(python3 python3-venv)
# The console's browser tests: headless Chromium and its WebDriver, a CJK
# font so that Chinese pages render as text, and npm for axe-core.
command -v chromium >/dev/null || need_packages+=(chromium)
command -v chromedriver >/dev/null || need_packages+=(chromium-driver)
[[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]] || need_packages+=(fonts-wqy-zenhei)
command -v npm >/dev/null || need_packages+=(npm)
# The cluster tests (scripts/cluster.sh): PostgreSQL 15 for the shared log
# and HAProxy in front of the nodes.
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || need_packages+=(postgresql-15)
command -v haproxy >/dev/null || need_packages+=(haproxy)
if ((${#need_packages[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: missing ${need_packages[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "installing ${need_packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

# The oras client (Python, from PyPI) in a venv under target/, kept between
# runs. Debian's python3 needs python3-venv for `-m venv`.
venv="$PWD/target/oras-venv"
if ! "$venv/bin/python" -c 'import oras' 2>/dev/null; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q oras==0.2.43
fi
export BERTH_ORAS_PYTHON="$venv/bin/python"

# axe-core, the accessibility checker the browser tests inject, from the
# npm registry into target/ (never committed).
axe="$PWD/target/axe/node_modules/axe-core/axe.min.js"
if [[ ! -s $axe ]]; then
    npm install --silent --no-audit --no-fund --prefix "$PWD/target/axe" axe-core@4.14.1 >/dev/null
fi
export BERTH_AXE_JS="$axe"

# Garage, the S3 store of the cluster tests, from crates.io: built once
# (15-20 minutes on 2 cores) into ~/.cargo/bin and reused after that.
if ! command -v garage >/dev/null && [[ ! -x $HOME/.cargo/bin/garage ]]; then
    echo "building garage from crates.io (once; 15-20 minutes on 2 cores)"
    cargo install garage --locked --quiet
fi

# A private Docker daemon: no iptables, no bridge, vfs storage, its own
# sockets and directories, so it needs nothing from the host's setup.
work=$(mktemp -d /tmp/berth-test.XXXXXX)
sock="$work/docker.sock"
dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    --data-root "$work/docker" --exec-root "$work/exec" --pidfile "$work/docker.pid" \
    -H "unix://$sock" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
cleanup() {
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
export DOCKER_HOST="unix://$sock"
for _ in $(seq 1 120); do
    docker version >/dev/null 2>&1 && break
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
        echo "test.sh: dockerd exited:" >&2
        cat "$work/dockerd.log" >&2
        exit 1
    fi
    sleep 0.5
done
docker version --format 'docker engine {{.Server.Version}} at '"$DOCKER_HOST"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
status=0
cargo test --workspace 2>&1 | tee "$work/test.log" || status=$?
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$work/test.log"
exit "$status"
