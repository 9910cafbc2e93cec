#!/usr/bin/env bash
# Start or stop a benchmark PostgreSQL on 127.0.0.1 (Debian's postgresql package, installed if missing),
# run as the postgres user from a fresh initdb in a temporary directory, trust auth.
# Usage: benches/peers/postgres.sh start [PORT] [sync_commit on|off]
#        benches/peers/postgres.sh stop [PORT]
# Connect with postgres://postgres@127.0.0.1:PORT/postgres
set -euo pipefail
cmd=${1:-}; port=${2:-5432}; sync=${3:-on}
[ "$sync" = sync_commit ] && sync=${4:-on}
dir=/tmp/oms-peer-pg-$port
pgbin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  return 1
}
case "$cmd" in
  start)
    case "$sync" in on|off) ;; *) echo "sync_commit must be on or off" >&2; exit 2 ;; esac
    PGBIN=$(pgbin) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; PGBIN=$(pgbin); }
    "$0" stop "$port" >/dev/null 2>&1 || true
    rm -rf "$dir"; mkdir -p "$dir"; chown postgres "$dir"
    su postgres -c "$PGBIN/initdb -D $dir/data -A trust -U postgres >/dev/null"
    su postgres -c "$PGBIN/pg_ctl -D $dir/data -w -l $dir/log -o \"-p $port -h 127.0.0.1 -k $dir -c shared_buffers=1GB -c max_connections=300 -c synchronous_commit=$sync -c fsync=on\" start >/dev/null"
    echo "postgres on 127.0.0.1:$port synchronous_commit=$sync (dir $dir)"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      PGBIN=$(pgbin)
      su postgres -c "$PGBIN/pg_ctl -D $dir/data -m fast -w stop >/dev/null" || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start [PORT] [on|off] | stop [PORT]" >&2; exit 2 ;;
esac
