#!/usr/bin/env bash
# Stock-push lag under load: the real omsd (release) with two shops, a Taobao and a Douyin
# simulator (oms-marketsim), each platform allowing 10 requests/s and each shop configured for
# 10 requests/s, 500 ms coalescing interval; oms-loadtest drives a scenario against omsd while the
# connectors push. Prints, per shop, the lag from a sellable-quantity change to the platform's
# acknowledgement: p50/p99/max over the last 1024 updates (`oms shop status`) and the p99 bucket
# of omsd_shop_push_lag_seconds over the whole run, plus the platform requests by outcome.
# Usage: benches/channels/push_lag.sh [seconds] [loadtest scenario and flags...]
#   default: 30 s of `flash-sale --skus 4` then 30 s of `checkout --skus 4 --rate 5000`
# SKIP_BUILD=1 uses the release binaries already built.
# Everything shares this machine's cores (load generator, omsd, simulators): numbers are rough.
set -euo pipefail
secs=${1:-30}; shift || true
root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
[ -n "${SKIP_BUILD:-}" ] || (cd "$root" && cargo build --release -p oms-gateway --bins && cargo build --release -p oms-loadtest \
  && cargo build --release -p oms-connectors --features sim --bin oms-marketsim)
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d /tmp/oms-pushlag.XXXXXX)
echo "work dir $work"
base=$((20000 + RANDOM % 20000))
tb_port=$base; dy_port=$((base + 1)); omsd_port=$((base + 2)); admin_port=$((base + 3))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# The SKUs both shops sell: the flash-sale SKUs and the first catalog SKUs of oms-loadtest.
codes=(LT-F000 LT-F001 LT-F002 LT-F003 LT-C0000000 LT-C0000001 LT-C0000002 LT-C0000003)
items=(); csv="sku,item_id,sku_id"
for i in "${!codes[@]}"; do
  items+=(--item "${codes[$i]}:$((7000 + i)):$((8000 + i)):0:9900")
  csv="$csv"$'\n'"${codes[$i]},$((7000 + i)),$((8000 + i))"
done
echo "$csv" > "$work/skus.csv"
"$bin/oms-marketsim" --platform taobao --listen 127.0.0.1:$tb_port --app-key tb --secret tb-s --session tb-t \
  --rate-limit 10 "${items[@]}" > "$work/tb.out" 2> "$work/tb.err" & pids+=($!)
"$bin/oms-marketsim" --platform douyin --listen 127.0.0.1:$dy_port --app-key dy --secret dy-s --session dy-t \
  --rate-limit 10 "${items[@]}" > "$work/dy.out" 2> "$work/dy.err" & pids+=($!)
cat > "$work/omsd.toml" <<TOML
[[shops]]
platform = "taobao"
shop = "tb"
endpoint = "http://127.0.0.1:$tb_port/router/rest"
app_key = "tb"
secret = "tb-s"
session = "tb-t"
mapping_file = "skus.csv"
rate_limit = 10
push_interval_ms = 500
pull_interval_ms = 1000

[[shops]]
platform = "douyin"
shop = "dy"
endpoint = "http://127.0.0.1:$dy_port"
app_key = "dy"
secret = "dy-s"
session = "dy-t"
mapping_file = "skus.csv"
rate_limit = 10
push_interval_ms = 500
pull_interval_ms = 1000
TOML
"$bin/omsd" --config "$work/omsd.toml" --data-dir "$work/data" --listen 127.0.0.1:$omsd_port \
  --admin-listen 127.0.0.1:$admin_port 2> "$work/omsd.err" & pids+=($!)
for _ in $(seq 100); do curl -sf "127.0.0.1:$admin_port/ready" >/dev/null && break; sleep 0.1; done

run() { # name loadtest-args...
  local name=$1; shift
  echo "== $name: oms-loadtest $*"
  "$bin/oms-loadtest" "$@" --target "omsd://127.0.0.1:$omsd_port" --duration "${secs}s" --warmup 2s \
    > "$work/$name.txt" 2> "$work/$name.log" || echo "   (loadtest exit $?)"
  head -6 "$work/$name.txt" | sed 's/^/   /'
  sleep 3 # let the last updates land
  "$bin/oms" --server 127.0.0.1:$omsd_port --json shop status > "$work/$name-status.json"
  curl -s "127.0.0.1:$admin_port/metrics" > "$work/$name-metrics.txt"
  python3 - "$work/$name-status.json" "$work/$name-metrics.txt" <<'PY'
import json, sys, re
status = json.load(open(sys.argv[1]))
metrics = open(sys.argv[2]).read()
for s in status["shops"]:
    shop = s["shop"]
    buckets = [(float(le), float(v)) for le, v in re.findall(
        r'omsd_shop_push_lag_seconds_bucket\{le="([^"]+)",shop="%s"\} (\S+)' % shop, metrics.replace('+Inf', 'inf'))]
    total = buckets[-1][1] if buckets else 0
    p99 = next((le for le, v in buckets if total and v >= 0.99 * total), None)
    reqs = re.findall(r'omsd_shop_requests_total\{shop="%s",api="([^"]+)",outcome="([^"]+)"\} (\S+)' % shop, metrics)
    print(f"   {shop}: {s['pushes']} updates; last 1024: p50 {s['push_lag_p50_ms']} ms, p99 {s['push_lag_p99_ms']} ms, "
          f"max {s['push_lag_max_ms']} ms; whole run: {int(total)} updates, p99 <= {p99} s (bucket bound); backlog {s['push_backlog']}")
    print("     requests: " + ", ".join(f"{api} {outcome} {int(float(n))}" for api, outcome, n in reqs))
PY
}

if [ $# -gt 0 ]; then
  run custom "$@"
else
  run flash-sale flash-sale --skus 4
  run checkout checkout --skus 4 --max-lines 2 --stock 100000000 --rate 5000
fi
