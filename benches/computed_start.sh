#!/usr/bin/env bash
# Container start latency: from `zos deploy` returning (blueprint accepted) to the entrypoint
# running, on a dev node (node-init --dev: loop disks, btrfs, storaged, computed), busybox
# flist in a local dir store, block cache and page cache dropped before each cold run.
# Each round deploys a cold container A, then a container B of the same flist (its read-only
# mount is shared, so B's rootfs time is the overlay alone). Needs root.
# Usage: benches/computed_start.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cargo build --release -q -p node-init -p storaged -p zdb -p computed -p flist-fuse -p bus
bin=$PWD/target/release
work=$(mktemp -d /tmp/computed-bench-XXXX)
node=$work/node
cleanup() {
  for p in $(pgrep -f "$work/" || true); do kill -TERM "$p" 2>/dev/null || true; done
  sleep 2
  for p in $(pgrep -f "$work/" || true); do kill -KILL "$p" 2>/dev/null || true; done
  grep -o " $work[^ ]*" /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  for l in $(losetup -j "$work" -O NAME -n 2>/dev/null || true); do losetup -d "$l"; done
  for d in /sys/block/loop*; do
    b=$(cat "$d/loop/backing_file" 2>/dev/null || true)
    case "$b" in "$work"/*) losetup -d "/dev/$(basename "$d")" ;; esac
  done
  rm -rf "$work"
}
trap cleanup EXIT
export PATH=$bin:$PATH
"$bin/node-init" --dev "$node" > "$work/node.out" 2>&1 &
until grep -q "node ready" "$work/node.out"; do sleep 0.2; done
export ZOS_NODE=$node
key=$work/owner.key
owner=$(zos key new "$key")
tree=$work/tree
mkdir -p "$tree/bin" "$tree"/{proc,dev,sys,tmp,etc,data}
cp /bin/busybox "$tree/bin/"
for a in sh touch sleep; do ln -s busybox "$tree/bin/$a"; done
flist pack --quiet --store "dir://$work/store" -o "$work/bb.flist" "$tree" > /dev/null 2>&1
identity=$(flist inspect "$work/bb.flist" | sed -n 's/^identity: //p')

blueprint() { # id
  python3 - "$1" "$owner" "$work/bb.flist" "$identity" <<'PY'
import json, sys
i, owner, fl, ident = sys.argv[1:]
print(json.dumps({"id": i, "version": 0, "owner": owner,
  "signers": {"threshold": 1, "keys": [{"key": owner, "weight": 1}]},
  "workloads": [{"name": "app", "type": "container", "version": 0, "data": {
     "flist": fl, "identity": ident, "memory": 64 << 20, "rootfs_size": 64 << 20,
     "entrypoint": ["/bin/sh", "-c", "touch /tmp/started; sleep 3600"]}}],
  "signatures": []}))
PY
}
now_ms() { date +%s%3N; }
# deploys $1, waits for the entrypoint's file, prints "total_ms rootfs_ms network_ms runtime_ms"
start_one() {
  local id=$1 f=$work/$1.json t0 t1
  blueprint "$id" > "$f"
  zos sign "$f" --key "$key" > /dev/null
  t0=$(now_ms)
  zos deploy "$f" > /dev/null
  until compgen -G "$node/storaged/pools/*/volumes/*-$id-app-rootfs/upper/tmp/started" > /dev/null; do sleep 0.001; done
  t1=$(now_ms)
  local timings
  timings=$(zos get "$id" --json | python3 -c 'import json,sys; t=json.load(sys.stdin)["deployment"]["workloads"][0]["result"]["data"]["timings"]; print(t["rootfs_ms"], t["network_ms"], t["runtime_ms"])')
  echo "$((t1 - t0)) $timings"
}
printf "%-6s %-9s %-11s %-10s %-10s %-10s %-10s\n" round total_ms rootfs_ms mount_ms overlay_ms network_ms runtime_ms
for r in $(seq 1 "$rounds"); do
  rm -rf "$node/computed/cache" && sync && echo 3 > /proc/sys/vm/drop_caches
  read -r ta ra na ua <<< "$(start_one "a$r")"
  read -r _tb rb _nb _ub <<< "$(start_one "b$r")"
  printf "%-6s %-9s %-11s %-10s %-10s %-10s %-10s\n" "$r" "$ta" "$ra" "$((ra - rb))" "$rb" "$na" "$ua"
  zos delete "a$r" --key "$key" --wait > /dev/null
  zos delete "b$r" --key "$key" --wait > /dev/null
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)"
