#!/usr/bin/env bash
# Web upload against the blob push, in one run on this machine. Generates a
# `docker save` archive of about 1 GiB (one layer of base64 text, which
# gzip shrinks to about three quarters) and a .tar.gz of it, then, each on a
# fresh Berth (release build):
#   1. pushes the layer as one blob (POST, one streamed PATCH of the file
#      with curl, and the closing PUT);
#   2. uploads the .tar through POST /v2/manage/namespaces/{ns}/uploads
#      (curl -F, streamed from disk);
#   3. uploads the .tar.gz the same way.
# Each row gives the wall time curl measured, MB/s over the bytes sent, and
# the server's peak RSS (VmHWM) after the request.
# Usage: bash bench/upload.sh [MiB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/credential.sh
mib=${1:-1024}
cargo build --release -q -p berth

work=$(mktemp -d /tmp/berth-upload.XXXXXX)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work" "$mib" <<'PY'
import base64, hashlib, io, json, os, sys, tarfile
work, mib = sys.argv[1], int(sys.argv[2])
data = os.path.join(work, "data.bin")
with open(data, "wb") as f:
    left = mib * 1024 * 1024 - 64 * 1024
    while left > 0:
        chunk = base64.b64encode(os.urandom(3 * 1024 * 1024 // 4))[: min(left, 1 << 20)]
        f.write(chunk)
        left -= len(chunk)
layer = os.path.join(work, "layer.tar")
with tarfile.open(layer, "w", format=tarfile.USTAR_FORMAT) as t:
    t.add(data, arcname="data.bin")
os.remove(data)
h = hashlib.sha256()
with open(layer, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
diff_id = "sha256:" + h.hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
manifest = json.dumps([{"Config": "config.json", "RepoTags": ["big:v1"],
                        "Layers": ["l/layer.tar"]}]).encode()
with tarfile.open(os.path.join(work, "image.tar"), "w", format=tarfile.USTAR_FORMAT) as t:
    for name, payload in [("manifest.json", manifest), ("config.json", config)]:
        info = tarfile.TarInfo(name); info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
    t.add(layer, arcname="l/layer.tar")
open(os.path.join(work, "layer.digest"), "w").write(diff_id)
PY
gzip -1 -c "$work/image.tar" >"$work/image.tar.gz"
digest=$(cat "$work/layer.digest")
# The generated files are written back before anything is timed.
sync
size() { stat -c %s "$1"; }
echo "berth $(git rev-parse --short HEAD 2>/dev/null || echo '?'): bash bench/upload.sh $mib"
echo "machine: $(nproc) cores; layer $(size "$work/layer.tar") B, image.tar $(size "$work/image.tar") B, image.tar.gz $(size "$work/image.tar.gz") B"

start() {
    rm -rf "$work/data"
    BERTH_LOG=warn BERTH_ADMIN_PASSWORD=bench-operator-password \
        target/release/berth serve --listen 127.0.0.1:5105 --data-dir "$work/data" >"$work/serve.out" 2>&1 &
    pid=$!
    wait_ready http://127.0.0.1:5105 100
    auth=$(operator_credential http://127.0.0.1:5105)
}
stop() { kill "$pid"; wait "$pid" || true; pid=; sync; }
row() { # name bytes seconds
    local hwm
    hwm=$(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$pid/status")
    awk -v n="$1" -v b="$2" -v s="$3" -v h="$hwm" \
        'BEGIN {printf "| %s | %.2f s | %.1f MB/s | %s |\n", n, s, b / s / 1e6, h}'
}

echo
echo "| measurement | wall | rate | server peak RSS |"
echo "|---|---|---|---|"
start
location=$(curl -fsS -u "$auth" -X POST -D - -o /dev/null http://127.0.0.1:5105/v2/bench/blob/blobs/uploads/ \
    | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
[[ $location == http* ]] || location="http://127.0.0.1:5105$location"
sep='?'; [[ $location == *\?* ]] && sep='&'
# One streamed PATCH of the whole file, then the closing PUT: the way
# clients push a large layer.
t0=$(date +%s.%N)
curl -fsS -u "$auth" -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' \
    -T "$work/layer.tar" "$location"
curl -fsS -u "$auth" -o /dev/null -X PUT "$location${sep}digest=$digest"
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
push_rate=$(awk -v b="$(size "$work/layer.tar")" -v s="$secs" 'BEGIN {print b / s}')
row "$mib MiB blob push (POST, PATCH, PUT)" "$(size "$work/layer.tar")" "$secs"
stop
for archive in image.tar image.tar.gz; do
    start
    secs=$(curl -fsS -u "$auth" -o "$work/reply.json" -w '%{time_total}' \
        -F "file=@$work/$archive" http://127.0.0.1:5105/v2/manage/namespaces/bench/uploads)
    grep -q '"state":"succeeded"' "$work/reply.json" || { cat "$work/reply.json" >&2; exit 1; }
    row "web upload of $archive" "$(size "$work/$archive")" "$secs"
    if [[ $archive == image.tar ]]; then
        awk -v b="$(size "$work/$archive")" -v s="$secs" -v p="$push_rate" \
            'BEGIN {printf "(the .tar upload runs at %.0f %% of the blob push rate; target 80 %%)\n", 100 * b / s / p}' >"$work/ratio"
    fi
    stop
done
cat "$work/ratio"
