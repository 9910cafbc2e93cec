#!/usr/bin/env bash
# Side-by-side: omsd vs Redis+Lua vs PostgreSQL, flash-sale and checkout, same --seed, at two
# durability levels:
#   none:    omsd --fsync off    | redis appendonly no      | postgres synchronous_commit=off
#   durable: omsd --fsync always | redis appendfsync always | postgres synchronous_commit=on
#            (all three group-commit concurrent writers into one fsync)
# Writes a Markdown table into docs/BENCHMARKS.md between <!-- peers:begin --> and <!-- peers:end -->
# (markers appended if absent; nothing else in the file is touched).
# Usage: benches/peers/compare.sh [seconds-per-cell]   Env: CONNECTIONS, PIPELINE, PG_CONNECTIONS, SEED, WARMUP
# Everything runs on this machine: load generator and server share the cores, so numbers are rough.
set -euo pipefail
secs=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/benches/peers"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
conns=${CONNECTIONS:-8}; pipe=${PIPELINE:-64}; pgconns=${PG_CONNECTIONS:-32}; seed=${SEED:-42}; warm=${WARMUP:-2s}
omsd_port=7750; redis_port=6391; pg_port=5498
out=$(mktemp -d /tmp/oms-compare.XXXXXX)
echo "results in $out"

(cd "$root" && cargo build --release -p oms-gateway --bin omsd && cargo build --release -p oms-loadtest)
LT="$CARGO_TARGET_DIR/release/oms-loadtest"
OMSD="$CARGO_TARGET_DIR/release/omsd"
omsd_pid=
cleanup() {
  [ -n "$omsd_pid" ] && kill "$omsd_pid" 2>/dev/null || true
  "$here/redis.sh" stop "$redis_port" >/dev/null 2>&1 || true
  "$here/postgres.sh" stop "$pg_port" >/dev/null 2>&1 || true
}
trap cleanup EXIT

run_cell() { # target durability scenario url extra-args...
  local target=$1 dur=$2 scen=$3 url=$4; shift 4
  echo "== $target $dur $scen"
  "$LT" "$scen" --target "$url" --seed "$seed" --duration "${secs}s" --warmup "$warm" --json "$out/$target-$dur-$scen.json" "$@" \
    >"$out/$target-$dur-$scen.txt" 2>"$out/$target-$dur-$scen.log" || echo "   (exit $?: see $out/$target-$dur-$scen.txt)"
  tail -n +3 "$out/$target-$dur-$scen.txt" | head -4 | sed 's/^/   /'
}

for dur in none durable; do
  # omsd
  if [ $dur = none ]; then fsync=off; else fsync=always; fi
  data=$(mktemp -d /tmp/oms-compare-data.XXXXXX)
  "$OMSD" --data-dir "$data" --listen 127.0.0.1:$omsd_port --admin-listen 127.0.0.1:$((omsd_port+1)) --http-listen 127.0.0.1:0 --console-listen 127.0.0.1:0 --fsync $fsync >"$out/omsd-$dur.log" 2>&1 &
  omsd_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((omsd_port+1))/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  for scen in flash-sale checkout; do run_cell omsd $dur $scen "omsd://127.0.0.1:$omsd_port" --connections "$conns" --pipeline "$pipe"; done
  curl -s "http://127.0.0.1:$((omsd_port+1))/metrics" >"$out/omsd-$dur.metrics" 2>/dev/null || true
  kill "$omsd_pid"; wait "$omsd_pid" 2>/dev/null || true; omsd_pid=; rm -rf "$data"
  # redis
  if [ $dur = none ]; then rmode=no; else rmode=always; fi
  "$here/redis.sh" start $rmode $redis_port
  for scen in flash-sale checkout; do run_cell redis $dur $scen "redis://127.0.0.1:$redis_port" --connections "$conns" --pipeline "$pipe"; done
  "$here/redis.sh" stop $redis_port
  # postgres
  if [ $dur = none ]; then sc=off; else sc=on; fi
  "$here/postgres.sh" start $pg_port $sc
  for scen in flash-sale checkout; do run_cell postgres $dur $scen "postgres://postgres@127.0.0.1:$pg_port/postgres" --connections "$pgconns"; done
  "$here/postgres.sh" stop $pg_port
done

python3 - "$out" "$root/docs/BENCHMARKS.md" "$secs" "$seed" "$conns" "$pipe" "$pgconns" <<'PY'
import json, os, sys, datetime
out, doc, secs, seed, conns, pipe, pgconns = sys.argv[1:8]
rows, tp = [], {}
for dur in ("none", "durable"):
    for scen in ("flash-sale", "checkout"):
        for target in ("omsd", "redis", "postgres"):
            p = os.path.join(out, f"{target}-{dur}-{scen}.json")
            if not os.path.exists(p):
                rows.append(f"| {target} | {dur} | {scen} | failed | | | | | | |"); continue
            d = json.load(open(p)); a = d.get("audit", {})
            tp[(target, dur, scen)] = d["throughput_per_s"]
            rows.append("| {} | {} | {} | {:,.0f} | {:,} | {:,} | {:,} | {:,} | {} | {} |".format(
                target, dur, scen, d["throughput_per_s"], d["p50_us"], d["p99_us"], d["p999_us"], d["accepted"],
                a.get("oversold", "?"), "pass" if d.get("audit_passed") else "FAIL"))
def ratio(a, b):
    return f"{tp[a] / tp[b]:.1f}x" if a in tp and b in tp and tp[b] > 0 else "n/a"
fd = ("flash-sale",)
body = [
    "<!-- peers:begin -->",
    f"### omsd vs Redis+Lua vs PostgreSQL (benches/peers/compare.sh, {datetime.date.today()})",
    "",
    f"{secs} s per cell after warm-up, `--seed {seed}`, closed loop: omsd and Redis {conns} connections x pipeline {pipe};"
    f" PostgreSQL {pgconns} sessions (one transaction each at a time). Throughput counts every request"
    " (reserve + confirm/release); latency in microseconds from the intended send time. Load generator and server share"
    " the same 2 cores, so the figures are rough. none = omsd --fsync off / redis appendonly no / postgres synchronous_commit off;"
    " durable = omsd --fsync always / redis appendfsync always / postgres synchronous_commit on.",
    "",
    "| target | durability | scenario | throughput/s | p50 us | p99 us | p99.9 us | accepted | oversold | audit |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    *rows,
    "",
    f"flash-sale durable: omsd/redis = {ratio(('omsd','durable','flash-sale'), ('redis','durable','flash-sale'))},"
    f" omsd/postgres = {ratio(('omsd','durable','flash-sale'), ('postgres','durable','flash-sale'))}."
    f" checkout durable: omsd/redis = {ratio(('omsd','durable','checkout'), ('redis','durable','checkout'))},"
    f" omsd/postgres = {ratio(('omsd','durable','checkout'), ('postgres','durable','checkout'))}.",
    "<!-- peers:end -->",
]
text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
b, e = "<!-- peers:begin -->", "<!-- peers:end -->"
if b in text and e in text and text.index(b) < text.index(e):
    text = text[:text.index(b)] + "\n".join(body) + text[text.index(e) + len(e):]
else:
    text = text.rstrip("\n") + "\n\n" + "\n".join(body) + "\n"
open(doc, "w").write(text)
print("\n".join(body))
PY
