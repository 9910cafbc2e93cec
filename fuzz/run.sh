#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS (default 20) each, on the stable toolchain without a
# sanitizer (the decoders are safe Rust; libFuzzer's coverage guidance still works), starting
# from the committed corpus in fuzz/corpus/<target>/ (new inputs go to a scratch corpus so the
# committed one stays small). Crashes are written to fuzz/artifacts/<target>/.
#
#   fuzz/run.sh            # 20 s per target
#   fuzz/run.sh 3600       # an hour per target
#   TARGETS="wal_record engine_replay" fuzz/run.sh 600
#   SANITIZER=address TOOLCHAIN=+nightly fuzz/run.sh 600   # with ASan (nightly only)
#
# Needs `cargo install cargo-fuzz` (0.13). Prints "target: N execs in S s" per target.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-20}
SANITIZER=${SANITIZER:-none}
TOOLCHAIN=${TOOLCHAIN:-}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-fuzz}
TARGETS=${TARGETS:-$(cargo fuzz list)}
SCRATCH=${SCRATCH:-$CARGO_TARGET_DIR/fuzz-corpus}
# shellcheck disable=SC2086
cargo $TOOLCHAIN fuzz build --sanitizer "$SANITIZER" -O
status=0
for target in $TARGETS; do
  mkdir -p "$SCRATCH/$target"
  log="$SCRATCH/$target.log"
  # -rss_limit_mb bounds memory per input (the engine's dense SKU table is a known finding);
  # -max_len keeps inputs near the size of real frames, records and snapshots.
  # shellcheck disable=SC2086
  if ! cargo $TOOLCHAIN fuzz run "$target" --sanitizer "$SANITIZER" -O "$SCRATCH/$target" "corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 >"$log" 2>&1; then
    echo "$target: FAILED (see $log and artifacts/$target/)"
    status=1
  fi
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "$target: ${execs:-?} execs in ${SECONDS_PER_TARGET}s, corpus $(ls "$SCRATCH/$target" | wc -l) files"
done
exit $status
