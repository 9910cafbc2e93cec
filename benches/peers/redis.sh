#!/usr/bin/env bash
# Start or stop a benchmark Redis on 127.0.0.1 (Debian's redis-server package, installed if missing).
# Usage: benches/peers/redis.sh start [no|everysec|always] [PORT]
#        benches/peers/redis.sh stop [PORT]
# Durability: "no" = appendonly no (no persistence at all); everysec / always = AOF with that appendfsync.
set -euo pipefail
cmd=${1:-}; shift || true
if [ "$cmd" = start ]; then mode=${1:-always}; port=${2:-6379}; else port=${1:-6379}; fi
dir=/tmp/oms-peer-redis-$port
case "$cmd" in
  start)
    command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
    case "$mode" in no) aof=no; fs=everysec ;; everysec|always) aof=yes; fs=$mode ;; *) echo "mode must be no|everysec|always" >&2; exit 2 ;; esac
    "$0" stop "$port" >/dev/null 2>&1 || true
    rm -rf "$dir"; mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly "$aof" --appendfsync "$fs" --dir "$dir" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$port" ping >/dev/null
    echo "redis on 127.0.0.1:$port appendonly=$aof appendfsync=$fs (dir $dir)"
    ;;
  stop)
    if [ -f "$dir/redis.pid" ]; then
      pid=$(cat "$dir/redis.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start [no|everysec|always] [PORT] | stop [PORT]" >&2; exit 2 ;;
esac
