#!/usr/bin/env bash
# flist mount benchmark (see BENCHMARKS.md, section "## flist-fuse mount").
#
#   benches/flist_mount.sh          # everything below
#   benches/flist_mount.sh small    # only 5. (the small-files case of issue 24)
#
# The tree of the pack benchmark (1000 small files in 20 folders, 100 MiB random + copy,
# 50 MiB zeros) is packed into a dir store, then read through `flist mount`:
#   1. cold sequential read of the 100 MiB file, local dir store (and fio's cold read of it)
#   2. the same through benches/flist_delay_proxy.py (20 ms added to every request)
#   3. the 1000 small files cold through the 20 ms store with a recorded prefetch list
#   4. warm reads of the 1000 small files vs the native filesystem
#   5. 2000 small files (10 B - 64 KiB) in three levels of folders, read cold with
#      `tar -cf - DIR | cat > /dev/null`: through the 20 ms store without a prefetch list
#      (small files packed, fetch-ahead), with a recorded list, with one block per file
#      (`--small-files 0`, the version-1 layout: fetch-ahead alone, then neither), and from
#      a local dir store against native ext4 cold; store requests counted per case (the
#      daemon's `store fetches` at unmount: one HTTP GET each).
# "Cold" = empty flist cache and `sync; echo 3 > /proc/sys/vm/drop_caches` before the run.
# Needs root, /dev/fuse, a release build (cargo build --release -p flist-fuse), fio, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLIST=${FLIST:-$ROOT/target/release/flist}
WORK=${WORK:-/tmp/flist-mount-bench}
RUNS=${RUNS:-3}
DELAY=${DELAY:-0.02}
[ -x "$FLIST" ] || { echo "build first: cargo build --release -p flist-fuse" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio missing (apt-get install -y fio)" >&2; exit 1; }
MNT=$WORK/mnt
PROXY_PIDS=()

cleanup() {
  mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT" || true
  for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$WORK" && mkdir -p "$WORK" "$MNT"

now() { date +%s.%N; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
min() { printf '%s\n' "$@" | sort -g | head -1; }

gen_tree() { # same generator as benches/flist_pack.sh
  local t=$1
  python3 - "$t" <<'EOF'
import os, random, sys
t = sys.argv[1]
r = random.Random(42)
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(500)]
for d in range(20):
    os.makedirs(f"{t}/dir{d:02}", exist_ok=True)
    for f in range(50):
        n = r.randint(10, 13 * 1024)
        data = b" ".join(r.choice(words) for _ in range(n // 4 + 1))[:n]
        open(f"{t}/dir{d:02}/file{f:03}.txt", "wb").write(data)
EOF
  head -c $((100 * 1024 * 1024)) /dev/urandom > "$t/random.bin"
  cp "$t/random.bin" "$t/random-copy.bin"
  head -c $((50 * 1024 * 1024)) /dev/zero > "$t/zeros.bin"
}

FL=$WORK/tree.fl
mnt() { # mnt CACHE [flist mount options...]: mount $FL detached, return once mounted
  local cache=$1; shift
  : > "$WORK/mount.log"
  "$FLIST" mount --daemon --log "$WORK/mount.log" --cache "$cache" "$@" "$FL" "$MNT" >/dev/null
}
unmnt() {
  umount "$MNT"
  while mountpoint -q "$MNT"; do sleep 0.01; done
}
fetches() { # store fetches of the last mount (its daemon logs them as it exits)
  local k
  for k in $(seq 500); do
    grep -q 'store fetches' "$WORK/mount.log" && break; sleep 0.01
  done
  sed -n 's/.*store fetches \([0-9]*\).*/\1/p' "$WORK/mount.log" | tail -1
}
proxy() { # proxy STORE: start a 20 ms HTTP proxy over a dir store; sets PROXY_URL
  local pf=$WORK/proxy.$RANDOM
  python3 "$ROOT/benches/flist_delay_proxy.py" --root "$1" --delay "$DELAY" > "$pf" &
  PROXY_PIDS+=($!)
  while [ ! -s "$pf" ]; do sleep 0.05; done
  PROXY_URL="http://127.0.0.1:$(head -1 "$pf")"
}
# Reading the small files: tar into a pipe (GNU tar skips reading file data when its
# archive is /dev/null itself).
tar_small() { (cd "$1" && tar -cf - dir?? | cat > /dev/null); }

gen_small() { # 2000 files of 10 B - 64 KiB (text) in 4 x 5 x 5 folders, 20 files per leaf
  python3 - "$1" <<'EOF'
import os, random, sys
t = sys.argv[1]
r = random.Random(24)
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(500)]
for a in range(4):
    for b in range(5):
        for c in range(5):
            d = f"{t}/l{a}/m{b}/n{c}"
            os.makedirs(d, exist_ok=True)
            for f in range(20):
                n = r.randint(10, 64 * 1024)
                data = b" ".join(r.choice(words) for _ in range(n // 4 + 1))[:n]
                open(f"{d}/file{f:02}.py", "wb").write(data)
EOF
}

tar_s() { (cd "$1" && tar -cf - l? | cat > /dev/null); }
cold() { # cold LABEL FLIST [mount options...]: best of $RUNS cold tars, and the fetch count
  local label=$1; FL=$2; shift 2
  local ts=() tm=() n= s m e
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/cache"; drop
    s=$(now); mnt "$WORK/cache" "$@"; m=$(now)
    tar_s "$MNT"; e=$(now); unmnt; n=$(fetches)
    ts+=("$(echo "$e - $s" | bc -l)"); tm+=("$(echo "$e - $m" | bc -l)")
  done
  printf '%-46s %7.3f s (mount included %6.3f s), %5s store requests\n' "$label" \
    "$(min "${tm[@]}")" "$(min "${ts[@]}")" "$n"
}

small_files() {
  local S=$WORK/small s e
  mkdir -p "$S" && gen_small "$S"
  echo "tree: $(find "$S" -type f | wc -l) files, $(du -sb --apparent-size "$S" | cut -f1) bytes, 100 folders in three levels"
  "$FLIST" pack --quiet --store "dir://$WORK/sstore" -o "$WORK/small.fl" "$S" >/dev/null
  "$FLIST" pack --quiet --small-files 0 --store "dir://$WORK/sstore0" -o "$WORK/small0.fl" "$S" >/dev/null
  echo "blocks: packed $(find "$WORK/sstore" -type f | wc -l), one per file $(find "$WORK/sstore0" -type f | wc -l)"
  local H H0
  proxy "$WORK/sstore"; H=$PROXY_URL
  proxy "$WORK/sstore0"; H0=$PROXY_URL
  cold "20 ms store, packed, no prefetch list:" "$WORK/small.fl" --store "$H"
  FL=$WORK/small.fl; rm -rf "$WORK/cache"; mnt "$WORK/cache" --store "$H" --record "$WORK/slist.txt"
  tar_s "$MNT"; unmnt; fetches >/dev/null
  cold "20 ms store, packed, recorded list:" "$WORK/small.fl" --store "$H" --prefetch "$WORK/slist.txt"
  cold "20 ms store, one block per file, no list:" "$WORK/small0.fl" --store "$H0"
  cold "20 ms store, one block per file, no ahead:" "$WORK/small0.fl" --store "$H0" --folder-ahead 0
  cold "local dir store, packed:" "$WORK/small.fl"
  local ns=()
  for _ in $(seq "$RUNS"); do
    drop; s=$(now); tar_s "$S"; e=$(now); ns+=("$(echo "$e - $s" | bc -l)")
  done
  printf '%-46s %7.3f s\n' "native ext4, cold:" "$(min "${ns[@]}")"
}

echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
if [ "${1:-all}" = small ]; then small_files; exit 0; fi

TREE=$WORK/tree
mkdir -p "$TREE" && gen_tree "$TREE"
"$FLIST" pack --quiet --store "dir://$WORK/store" -o "$WORK/tree.fl" "$TREE" >/dev/null
proxy "$WORK/store"; HTTP=$PROXY_URL

# 1. Cold sequential 100 MiB, local dir store.
ts=()
for _ in $(seq "$RUNS"); do
  rm -rf "$WORK/cache"; mnt "$WORK/cache"; drop
  s=$(now); cat "$MNT/random.bin" > /dev/null; e=$(now)
  ts+=("$(echo "$e - $s" | bc -l)"); unmnt
done
cold_local=$(min "${ts[@]}")
fs=()
for _ in $(seq "$RUNS"); do
  drop
  ms=$(fio --name=cold --filename="$TREE/random.bin" --rw=read --bs=1M --ioengine=psync \
       --readonly --output-format=json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["read"]["runtime"])')
  fs+=("$(echo "$ms / 1000" | bc -l)")
done
fio_cold=$(min "${fs[@]}")
cs=()
for _ in $(seq "$RUNS"); do
  drop; s=$(now); cat "$TREE/random.bin" > /dev/null; e=$(now); cs+=("$(echo "$e - $s" | bc -l)")
done
cat_native=$(min "${cs[@]}")
printf 'cold seq 100 MiB, dir store:   %.3f s (target <= 0.25, field 0.72); fio cold read %.3f s, cat native %.3f s\n' \
  "$cold_local" "$fio_cold" "$cat_native"

# 2. Cold sequential 100 MiB through the 20 ms store.
ts=()
for _ in $(seq "$RUNS"); do
  rm -rf "$WORK/cache"; mnt "$WORK/cache" --store "$HTTP"; drop
  s=$(now); cat "$MNT/random.bin" > /dev/null; e=$(now)
  ts+=("$(echo "$e - $s" | bc -l)"); unmnt
done
printf 'cold seq 100 MiB, 20 ms store: %.3f s (target <= 1.0, field 6.55)\n' "$(min "${ts[@]}")"

# 3. 1000 small files cold through the 20 ms store: record a run, then use its list.
rm -rf "$WORK/cache"; mnt "$WORK/cache" --store "$HTTP" --record "$WORK/list.txt"
s=$(now); tar_small "$MNT"; e=$(now); unmnt
sleep 0.2
no_list=$(echo "$e - $s" | bc -l)
ts=(); tm=()
for _ in $(seq "$RUNS"); do
  rm -rf "$WORK/cache"; drop
  s=$(now); mnt "$WORK/cache" --store "$HTTP" --prefetch "$WORK/list.txt"; m=$(now)
  tar_small "$MNT"; e=$(now)
  ts+=("$(echo "$e - $s" | bc -l)"); tm+=("$(echo "$e - $m" | bc -l)"); unmnt
done
printf '1000 small files, 20 ms store: %.3f s with the prefetch list, mount included (tar alone %.3f s; target <= 3, field 33); without a list %.3f s (%s blocks listed)\n' \
  "$(min "${ts[@]}")" "$(min "${tm[@]}")" "$no_list" "$(($(wc -l < "$WORK/list.txt") - 1))"

# 4. Warm reads of the small files: mount (after one pass) vs native, page cache warm.
rm -rf "$WORK/cache"; mnt "$WORK/cache"
tar_small "$MNT"; tar_small "$TREE"
ws=(); ns=()
for _ in $(seq 5); do
  s=$(now); tar_small "$MNT"; e=$(now); ws+=("$(echo "$e - $s" | bc -l)")
  s=$(now); tar_small "$TREE"; e=$(now); ns+=("$(echo "$e - $s" | bc -l)")
done
unmnt
w=$(min "${ws[@]}"); n=$(min "${ns[@]}")
printf 'warm tar of 1000 small files:  mount %.4f s, native %.4f s, ratio %.2fx (target <= 1.5x)\n' \
  "$w" "$n" "$(echo "$w / $n" | bc -l)"

# 5. 2000 small files in three levels (issue 24).
small_files
