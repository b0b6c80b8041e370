#!/usr/bin/env bash
# zdb upgraded under load (issue 21): `redis-benchmark -c 50 -P 1` SETs against one zdb, once
# without an upgrade and once with a live hand-over (`--handover` / `--take-over`, the same
# binary) in the middle of the run. Reports, per run: requests/s, p50/p99/max latency, errors
# (redis-benchmark 7 stops at the first error reply or closed connection: bench_exit != 0 and
# an "Error" line), connections the new process accepted (a client that reconnected would
# show here), and the hand-over's own duration from the old process's log.
# Usage: benches/upgrade_bench.sh [REQUESTS] (default 400000)   ZDB_BIN=... to use a built zdb
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-400000}
if [ -z "${ZDB_BIN:-}" ]; then
  cargo build --release -q -p zdb
  ZDB_BIN=$PWD/target/release/zdb
fi
work=$(mktemp -d /tmp/zdbup-bench-XXXX)
cleanup() {
  for f in "$work"/*.pid; do
    [ -e "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_zdb NAME PORT DIR [EXTRA...]: runs zdb in the background, records its pid
start_zdb() {
  local name=$1 port=$2 dir=$3
  shift 3
  "$ZDB_BIN" --listen 127.0.0.1 --port "$port" --data "$dir/data" --index "$dir/index" \
    --handover "$dir/handover.sock" "$@" >> "$dir/zdb.log" 2>&1 &
  echo $! > "$work/$name.pid"
}

wait_ping() {
  for _ in $(seq 200); do
    redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "zdb on port $1 did not answer" >&2
  return 1
}

# run LABEL UPGRADE(0|1): prints one result line
run() {
  local label=$1 upgrade=$2 dir=$work/$1 port
  mkdir -p "$dir"
  port=$(free_port)
  start_zdb "$label-old" "$port" "$dir"
  wait_ping "$port"
  local out=$dir/bench.csv err=$dir/bench.err status=0
  redis-benchmark -p "$port" -c 50 -P 1 -n "$requests" -r 1000000 -d 64 --csv --precision 3 \
    SET key:__rand_int__ value-__rand_int__ > "$out" 2> "$err" &
  local bench=$!
  local handover_ms=-
  if [ "$upgrade" = 1 ]; then
    sleep 3
    local old
    old=$(cat "$work/$label-old.pid")
    start_zdb "$label-new" "$port" "$dir" --take-over "$dir/handover.sock"
    for _ in $(seq 600); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$old" 2>/dev/null; then echo "old zdb did not hand over" >&2; fi
    handover_ms=$(sed -n 's/.*handed over: exiting.*ms=\([0-9]*\).*/\1/p' "$dir/zdb.log" | tail -1)
  fi
  wait "$bench" || status=$?
  local errors accepted
  errors=$( (grep -hc "Error" "$out" "$err" || true) | awk '{s+=$1} END {print s+0}')
  # Connections accepted by the process serving now, minus this INFO's own.
  accepted=$(redis-cli -p "$port" INFO | tr -d '\r' | sed -n 's/^clients_lifetime: *\([0-9]*\).*/\1/p')
  accepted=$((accepted - 1))
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  local row
  row=$(tail -1 "$out" | tr -d '"')
  IFS=, read -r _ rps _ _ p50 _ p99 max <<< "$row"
  printf "%-12s rps=%s p50_ms=%s p99_ms=%s max_ms=%s errors=%s bench_exit=%s new_conns=%s handover_ms=%s\n" \
    "$label" "$rps" "$p50" "$p99" "$max" "$errors" "$status" \
    "$([ "$upgrade" = 1 ] && echo "$accepted" || echo -)" "$handover_ms"
  if [ "$status" != 0 ]; then sed 's/^/  bench: /' "$err" | tail -5; fi
  for f in "$work/$label"-*.pid; do kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.5
}

echo "# zdb $("$ZDB_BIN" --version) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), requests $requests"
run baseline 0
run upgrade 1
