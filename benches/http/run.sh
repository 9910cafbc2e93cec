#!/usr/bin/env bash
# The HTTP/JSON checkout against the binary protocol's, on the same release omsd in the same run:
#   1. wrk (Debian package) with benches/http/checkout.lua: reserve 1-3 lines with an
#      Idempotency-Key, then confirm (90 %) or release (10 %); HTTP/1.1 keep-alive, one request
#      per connection at a time;
#   2. oms-loadtest checkout on the binary port (pipelined; its own scenario, docs/LOADTEST.md).
# Both at --fsync off and --fsync always (fresh data directory each). Stock is set to 10^9 units
# per demo SKU first, so nothing is refused for stock.
# Usage: benches/http/run.sh [seconds]   Env: CONNECTIONS (wrk, default 32), THREADS (wrk, 2),
#   SKIP_BUILD=1 (use the release binaries already in target/release)
# Load generator and server share the machine's cores: the figures are rough; compare the two
# front ends within one run, not across machines.
set -euo pipefail
secs=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
conns=${CONNECTIONS:-32}; threads=${THREADS:-2}
command -v wrk >/dev/null || { echo "benches/http/run.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
# One cargo invocation for both: separate ones unify features differently and rebuild everything.
if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$root" && cargo build --release -p oms-gateway -p oms-loadtest --bin omsd --bin oms-loadtest)
fi
OMSD="$CARGO_TARGET_DIR/release/omsd"; LT="$CARGO_TARGET_DIR/release/oms-loadtest"
out=$(mktemp -d /tmp/oms-http-bench.XXXXXX)
echo "results in $out"
omsd_pid=
cleanup() { if [ -n "$omsd_pid" ]; then kill "$omsd_pid" 2>/dev/null || true; wait "$omsd_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
read -r port admin http < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')

start() { # fsync mode
  rm -rf "$out/data"
  "$OMSD" --demo --fsync "$1" --data-dir "$out/data" --listen "127.0.0.1:$port" \
    --admin-listen "127.0.0.1:$admin" --http-listen "127.0.0.1:$http" --console-listen 127.0.0.1:0 >"$out/omsd-$1.log" 2>&1 &
  omsd_pid=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$admin/ready" >/dev/null 2>&1 && break; sleep 0.1; done
}

for fsync in off always; do
  start $fsync
  for sku in TSHIRT-RED-XL MUG-WHT SNEAKER-42 SOCKS-3P CAP-BLK PHONE-X; do
    curl -sf -X PUT "http://127.0.0.1:$http/v1/stock/$sku/on-hand" -H 'Content-Type: application/json' \
      -d '{"warehouse":"SH","on_hand":1000000000}' >/dev/null
  done
  echo "== HTTP checkout (wrk -t$threads -c$conns -d${secs}s), --fsync $fsync"
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$root/benches/http/checkout.lua" \
    "http://127.0.0.1:$http" | tee "$out/wrk-$fsync.txt"
  cleanup; omsd_pid=
  start $fsync
  echo "== binary checkout (oms-loadtest checkout --connections 8 --pipeline 64), --fsync $fsync"
  "$LT" checkout --target "omsd://127.0.0.1:$port" --seed 42 --duration "${secs}s" --warmup 2s \
    --skus 10000 --connections 8 --pipeline 64 --json "$out/lt-$fsync.json" | tee "$out/lt-$fsync.txt"
  cleanup; omsd_pid=
done
