# Sourced by the bench scripts: how a bench client logs in to a Berth started
# with BERTH_ADMIN_PASSWORD=bench-operator-password, the way the README shows.

# Prints a management session token of the operator for the Berth at $1.
operator_session() {
    curl -fsS -X POST "$1/v2/manage/session" -H 'Content-Type: application/json' \
        -d '{"account":"system","user":"admin","password":"bench-operator-password"}' |
        sed -E 's/.*"token":"([^"]+)".*/\1/'
}

# Prints a docker credential `local@<AK>:<password>` for a new access key of
# the operator on the Berth at $1: the HMAC password made as in the README.
operator_credential() {
    local keys ak sk
    keys=$(curl -fsS -X POST "$1/v2/manage/access-keys" -H "Authorization: Bearer $(operator_session "$1")")
    ak=$(printf '%s' "$keys" | sed -E 's/.*"ak":"([^"]+)".*/\1/')
    sk=$(printf '%s' "$keys" | sed -E 's/.*"sk":"([^"]+)".*/\1/')
    printf 'local@%s:%s' "$ak" "$(printf "$ak" | openssl dgst -binary -sha256 -hmac "$sk" | od -An -vtx1 | tr -d ' \n')"
}

# Waits until the Berth at $1 answers /readyz with 200 (it answers 503
# while it verifies its log and catches its read models up); $2 tenths of a
# second at most.
wait_ready() {
    for _ in $(seq 1 "$2"); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/readyz") == 200 ]] && return 0
        sleep 0.1
    done
    echo "bench: $1 did not become ready" >&2
    return 1
}
