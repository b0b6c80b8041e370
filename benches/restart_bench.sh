#!/usr/bin/env bash
# Restart of a killed daemon: on a dev node (node-init --dev), SIGKILL storaged, computed and
# netd in turn, ROUNDS times each, and time from the kill until the new process answers its
# bus health with a status other than `starting` (what node-init's supervisor waits for).
# Prints every sample and the median per daemon, then the dev node's start to `node ready`
# (fresh, cold after a full stop, warm with its daemons still running). Needs root (loop disks, mounts, namespaces).
# Kills within a minute count as a crash loop: the n-th waits the policy's backoff
# (100 ms * 2^(n-1)) on purpose, so the first sample is the single-crash figure; the rest
# show the backoff. Use ROUNDS <= 5 (the sixth crash in a minute marks the service failed).
# Usage: benches/restart_bench.sh [ROUNDS] [PROFILE]   (PROFILE: release (default) or debug)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
profile=${2:-release}
if [ "$profile" = release ]; then
  cargo build --release -q -p node-init -p storaged -p zdb -p computed -p netd -p bus
else
  cargo build -q -p node-init -p storaged -p zdb -p computed -p netd -p bus
fi
bin=${CARGO_TARGET_DIR:-$PWD/target}/$profile
work=$(mktemp -d /tmp/restart-bench-XXXX)
node=$work/node
cleanup() {
  for p in $(pgrep -f "$work/" || true); do kill -TERM "$p" 2>/dev/null || true; done
  sleep 2
  "$bin/node-init" --dev "$node" --destroy > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export PATH=$bin:$PATH
now_ms() { date +%s%3N; }
# start_node: starts node-init on the node, waits for `node ready`; sets nodepid, ready_ms
start_node() {
  : > "$work/node.out"
  local t0
  t0=$(now_ms)
  "$bin/node-init" --dev "$node" > "$work/node.out" 2>&1 &
  nodepid=$!
  until grep -q "node ready" "$work/node.out"; do sleep 0.01; done
  ready_ms=$(( $(now_ms) - t0 ))
}
start_node
fresh_ms=$ready_ms
health_pid() { # service -> pid once ready, else empty
  { bus call "$node/run/$1.sock" health 2>/dev/null || true; } |
    python3 -c 'import json,sys
try:
  h=json.load(sys.stdin)
  print(h["pid"] if h["status"]!="starting" else "")
except Exception: print("")'
}
for svc in storaged computed netd; do
  samples=()
  for _ in $(seq "$rounds"); do
    old=$(health_pid "$svc")
    t0=$(now_ms)
    kill -KILL "$old"
    while :; do
      p=$(health_pid "$svc")
      if [ -n "$p" ] && [ "$p" != "$old" ]; then break; fi
      sleep 0.01
    done
    samples+=($(( $(now_ms) - t0 )))
    sleep 1
  done
  median=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$svc: first_ms=${samples[0]} samples_ms=${samples[*]} median_ms=$median"
done

# dev node start to `node ready`: a fresh node (disk images, pools, zdb servers made), the same
# node after node-init stopped with its daemons (SIGTERM: cold, servers started and loaded
# again), and after node-init alone was killed (SIGKILL: warm, running daemons adopted)
kill -TERM "$nodepid"; wait "$nodepid" || true
start_node; cold_ms=$ready_ms
kill -KILL "$nodepid"; wait "$nodepid" 2>/dev/null || true
start_node; warm_ms=$ready_ms
echo "node start to ready: fresh_ms=$fresh_ms cold_ms=$cold_ms warm_ms=$warm_ms"
