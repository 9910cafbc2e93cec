#!/usr/bin/env bash
# Runs the Python and Node client test suites against a real omsd.
#
# The server is the debug omsd the Rust tests already built (target/debug/omsd, or OMSD_BIN):
# this script never runs cargo. It installs only what a fresh machine lacks: pytest in a venv
# (clients/python/.venv, git-ignored) and the Node packages of package-lock.json (npm ci).
set -euo pipefail
cd "$(dirname "$0")"
CLIENTS=$(pwd)
ROOT=$(cd .. && pwd)

export OMSD_BIN="${OMSD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/omsd}"
if [ ! -x "$OMSD_BIN" ]; then
  echo "clients/run-tests.sh: no omsd at $OMSD_BIN; build it (cargo build --bin omsd) or set OMSD_BIN" >&2
  exit 1
fi
export PYTHONDONTWRITEBYTECODE=1

echo "== clients: tables generated from docs/PROTOCOL.md"
python3 "$CLIENTS/codegen.py" --check

echo "== clients/python: pytest"
VENV="$CLIENTS/python/.venv"
if ! "$VENV/bin/python" -c "import pytest" >/dev/null 2>&1; then
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 ships venv's pip bootstrap in a separate package.
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv) >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pytest
fi
command -v openssl >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl) >/dev/null
(cd "$CLIENTS/python" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider)

echo "== clients/node: npm ci, tsc, node:test"
(cd "$CLIENTS/node" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && npm test)
