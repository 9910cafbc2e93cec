#!/usr/bin/env bash
# Schemathesis (PyPI) against a running omsd's HTTP/JSON API, driven by the OpenAPI document the
# server serves (GET /openapi.json). Started by .ci/run after the Rust tests; reuses the debug omsd
# they built (OMSD_BIN overrides). It must find no failure.
#
# Scope (say what is and is not checked):
# - every schemathesis check on every operation of the document, in all generation modes
#   (positive and negative), phases examples, coverage and fuzzing; the one scoped check is in
#   tests/http/schemathesis.toml (422 counts as an answer to schema-valid requests whose content
#   the server refuses: invented SKU codes, short stock);
# - the server runs with API keys (an ops key for the run, so every route is reachable and
#   requests without the key must be refused 401), the demo catalog, --fsync off (the log's
#   durability is not what this run tests; the Rust e2e tests run with fsync on);
# - the stateful phase is left out: the document declares no links, and the e2e tests in
#   tests/tests/http_api.rs walk the checkout flow (reserve, confirm, release) with real ids;
# - the run is reproducible: a fixed seed, a bounded number of examples per operation, no
#   example database carried between runs (ST_SEED and ST_MAX_EXAMPLES override).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

OMSD_BIN=${OMSD_BIN:-$root/target/debug/omsd}
ST_VERSION=${ST_VERSION:-4.32.5}
ST_VENV=${ST_VENV:-$root/target/schemathesis-venv}
ST_SEED=${ST_SEED:-20261129}
ST_MAX_EXAMPLES=${ST_MAX_EXAMPLES:-20}

# Idempotent: installs only when the venv lacks this version. `--install-only` stops there (.ci/run
# installs before the Rust tests, so a registry failure shows up early).
if ! "$ST_VENV/bin/st" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  echo "== installing schemathesis $ST_VERSION into $ST_VENV"
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi
if [ ! -x "$OMSD_BIN" ]; then
  echo "schemathesis.sh: $OMSD_BIN not found (build it with cargo build -p oms-gateway)" >&2
  exit 1
fi

work=$(mktemp -d)
omsd_pid=
cleanup() {
  if [ -n "$omsd_pid" ]; then
    kill "$omsd_pid" 2>/dev/null || true
    wait "$omsd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Three free loopback ports, chosen by the kernel.
read -r port admin http < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')
key="schemathesis-ops-key-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
cat > "$work/omsd.toml" <<TOML
[[api_keys]]
name = "schemathesis"
key = "$key"
role = "ops"
TOML

"$OMSD_BIN" --config "$work/omsd.toml" --demo --fsync off --data-dir "$work/data" \
  --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" --http-listen "127.0.0.1:$http" --console-listen 127.0.0.1:0 \
  >"$work/omsd.log" 2>&1 &
omsd_pid=$!
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$admin/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$omsd_pid" 2>/dev/null; then cat "$work/omsd.log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$admin/ready" >/dev/null

status=0
"$ST_VENV/bin/st" --config-file tests/http/schemathesis.toml run "http://127.0.0.1:$http/openapi.json" \
  --url "http://127.0.0.1:$http" \
  --header "Authorization: Bearer $key" \
  --phases examples,coverage,fuzzing \
  --max-examples "$ST_MAX_EXAMPLES" \
  --seed "$ST_SEED" \
  --generation-database none \
  --workers 2 \
  --no-color || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis found failures; omsd's log:" >&2
  tail -50 "$work/omsd.log" >&2
fi
exit "$status"
