#!/usr/bin/env bash
# Soak: a long mixed run against a real omsd (release build, --fsync always), sampling every
# INTERVAL seconds the server's RSS and the load generator's p99 into a CSV, then checking the
# loadtest's post-run audit and the server's health.
#
#   loadtest/scripts/soak.sh                         # 30 minutes, sample every 60 s
#   DURATION=3m INTERVAL=20 loadtest/scripts/soak.sh # a short check
#   RATE=20000 SCENARIO=checkout OUT=/tmp/soak ...   # open loop at 20k req/s, another scenario
#   PROFILE=dev ...                                  # debug binaries (quick to build, ~10x slower)
#   BIN_DIR=/path/with/omsd-and-oms-loadtest ...     # prebuilt binaries, no build
#   TTL=2m SHIP_AFTER=10s                            # the defaults: holds expire and confirmed
#                                                    # reservations ship, so live state levels off
#   BASELINE_AFTER=300                               # RSS growth is judged from the first sample
#                                                    # at or after this many seconds (warm state)
#
# Output in $OUT (default target/soak-<timestamp>): samples.csv
# (elapsed_s,rss_kib,p99_us_max_in_interval,req_per_s,accepted,rejected,errors,open_fds),
# loadtest.log, omsd.log, report.json. Exit status: non-zero if omsd died, the audit failed, or
# RSS at the end exceeds RSS at the first sample by more than RSS_GROWTH_LIMIT_KIB.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-30m}
INTERVAL=${INTERVAL:-60}
SCENARIO=${SCENARIO:-mixed}
RATE=${RATE:-}
CONNECTIONS=${CONNECTIONS:-8}
RSS_GROWTH_LIMIT_KIB=${RSS_GROWTH_LIMIT_KIB:-262144}
TTL=${TTL:-2m}
SHIP_AFTER=${SHIP_AFTER:-10s}
BASELINE_AFTER=${BASELINE_AFTER:-300}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-rel}
OUT=${OUT:-$CARGO_TARGET_DIR/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
PROFILE=${PROFILE:-release}
if [ -n "${BIN_DIR:-}" ]; then
  BIN=$BIN_DIR   # prebuilt omsd + oms-loadtest (no build)
elif [ "$PROFILE" = release ]; then
  cargo build --release -p oms-gateway -p oms-loadtest --bins
  BIN=$CARGO_TARGET_DIR/release
else
  cargo build -p oms-gateway -p oms-loadtest --bins
  BIN=$CARGO_TARGET_DIR/debug
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LISTEN=127.0.0.1:$(port)
ADMIN=127.0.0.1:$(port)
DATA=$(mktemp -d "${TMPDIR:-/tmp}/omsd-soak.XXXXXX")
"$BIN/omsd" --listen "$LISTEN" --admin-listen "$ADMIN" --http-listen 127.0.0.1:0 --console-listen 127.0.0.1:0 --data-dir "$DATA" --fsync always --partitions 2 \
  >"$OUT/omsd.log" 2>&1 &
OMSD=$!
# omsd writes a final snapshot on SIGTERM: wait for it to exit before removing its data.
cleanup() {
  [ -n "${LOAD:-}" ] && kill "$LOAD" 2>/dev/null || true
  kill "$OMSD" 2>/dev/null && wait "$OMSD" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -sf "http://$ADMIN/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
rate_flag=()
[ -n "$RATE" ] && rate_flag=(--rate "$RATE")
"$BIN/oms-loadtest" "$SCENARIO" --target "omsd://$LISTEN" --connections "$CONNECTIONS" --duration "$DURATION" \
  --warmup 0s --ttl "$TTL" --ship-after "$SHIP_AFTER" "${rate_flag[@]}" --json "$OUT/report.json" >"$OUT/loadtest.log" 2>&1 &
LOAD=$!
echo "elapsed_s,rss_kib,p99_us_max_in_interval,req_per_s,accepted,rejected,errors,open_fds" >"$OUT/samples.csv"
started=$(date +%s)
seen_lines=0
first_rss=
while kill -0 "$LOAD" 2>/dev/null; do
  sleep "$INTERVAL"
  kill -0 "$OMSD" 2>/dev/null || { echo "omsd DIED; see $OUT/omsd.log" >&2; exit 1; }
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$OMSD/status")
  fds=$(ls "/proc/$OMSD/fd" | wc -l)
  elapsed=$(( $(date +%s) - started ))
  first_rss=${first_rss:-$rss}
  if [ -z "${base_rss:-}" ] && [ "$elapsed" -ge "$BASELINE_AFTER" ]; then base_rss=$rss; fi
  # Progress lines since the last sample: "[... Ns]  R req/s  accepted A  rejected J  errors E  p99 P us".
  lines=$(grep -c 'p99 .* us' "$OUT/loadtest.log" || true)
  sample=$(grep 'p99 .* us' "$OUT/loadtest.log" | tail -n +"$((seen_lines + 1))" | awk '
    { for (i = 1; i <= NF; i++) { if ($i == "p99") p = $(i+1); if ($i == "req/s") r = $(i-1);
        if ($i == "accepted") a = $(i+1); if ($i == "rejected") j = $(i+1); if ($i == "errors") e = $(i+1) }
      if (p + 0 > max) max = p + 0 }
    END { printf "%d,%d,%s,%s,%s", max, r, a, j, e }')
  seen_lines=$lines
  echo "$elapsed,$rss,$sample,$fds" | tee -a "$OUT/samples.csv"
done
status=0
wait "$LOAD" || status=$?
kill -0 "$OMSD" 2>/dev/null || { echo "omsd DIED; see $OUT/omsd.log" >&2; exit 1; }
last_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$OMSD/status")
base_rss=${base_rss:-$first_rss}
echo "loadtest exit $status (non-zero = audit failed); rss first sample ${first_rss:-?} KiB, baseline ${base_rss:-?} KiB, end $last_rss KiB; files in $OUT"
tail -5 "$OUT/loadtest.log"
if [ -n "$base_rss" ] && [ $((last_rss - base_rss)) -gt "$RSS_GROWTH_LIMIT_KIB" ]; then
  echo "RSS grew by $((last_rss - base_rss)) KiB since the baseline sample (> $RSS_GROWTH_LIMIT_KIB)" >&2
  exit 1
fi
exit "$status"
