#!/usr/bin/env bash
# Crash torture by hand: runs tests/tests/crash_torture.rs for many seeds against the real omsd
# (SIGKILL at seeded random moments, kills during recovery, restart, check every acknowledged
# reservation, stock, audit and all-or-nothing of unacknowledged reservations).
#
#   SEEDS=100 loadtest/scripts/crash_torture.sh          # seeds 1..100
#   FIRST=500 SEEDS=20 loadtest/scripts/crash_torture.sh # seeds 500..519
#   PROFILE=release ...                                  # release omsd (faster, more load per round)
#
# Seeds run in chunks of CHUNK (default 10); the first failing chunk stops the run and its log
# names the failing seed ("seed N round R: ..."). Logs go to $LOG_DIR (default target/crash-torture).
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${SEEDS:-20}
FIRST=${FIRST:-1}
CHUNK=${CHUNK:-10}
PROFILE=${PROFILE:-dev}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-rel}
LOG_DIR=${LOG_DIR:-$CARGO_TARGET_DIR/crash-torture}
mkdir -p "$LOG_DIR"
profile_flag=()
[ "$PROFILE" = release ] && profile_flag=(--release)
cargo test -p oms-tests --test crash_torture "${profile_flag[@]}" --no-run
started=$(date +%s)
seed=$FIRST
last=$((FIRST + SEEDS - 1))
while [ "$seed" -le "$last" ]; do
  n=$(( last - seed + 1 < CHUNK ? last - seed + 1 : CHUNK ))
  log="$LOG_DIR/seeds-$seed-$((seed + n - 1)).log"
  if ! CRASH_TORTURE_SEED=$seed CRASH_TORTURE_SEEDS=$n \
      cargo test -q -p oms-tests --test crash_torture "${profile_flag[@]}" -- --nocapture >"$log" 2>&1; then
    echo "FAILED in seeds $seed..$((seed + n - 1)); see $log" >&2
    grep -E "seed [0-9]+|panicked" "$log" | tail -5 >&2
    exit 1
  fi
  grep "crash torture: .* seeds from" "$log"
  seed=$((seed + n))
done
echo "crash torture: seeds $FIRST..$last passed in $(( $(date +%s) - started ))s; logs in $LOG_DIR"
