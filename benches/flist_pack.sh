#!/usr/bin/env bash
# flist pack benchmark (see BENCHMARKS.md, section "## flist").
#
#   benches/flist_pack.sh            # pack target: flist pack vs `tar | zstd -3 -T0`
#   benches/flist_pack.sh chunking   # block size / fixed vs CDC dedup measurement
#
# Needs: a release build (cargo build --release -p flist-fuse), tar, zstd, python3.
# WORK (default /tmp/flist-bench) holds the generated trees and stores; it is removed at the end
# unless KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLIST=${FLIST:-$ROOT/target/release/flist}
WORK=${WORK:-/tmp/flist-bench}
RUNS=${RUNS:-3}
[ -x "$FLIST" ] || { echo "build first: cargo build --release -p flist-fuse" >&2; exit 1; }
command -v zstd >/dev/null || { echo "zstd missing (apt-get install -y zstd)" >&2; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
best() { # best of $RUNS runs of "$@", in seconds
  local b=999999 s e d
  for _ in $(seq "$RUNS"); do
    s=$(now); "$@" >/dev/null 2>&1; e=$(now)
    d=$(echo "$e - $s" | bc -l); if (( $(echo "$d < $b" | bc -l) )); then b=$d; fi
  done
  printf '%.3f' "$b"
}

gen_tree() { # the issue's tree: 1000 small files in 20 folders, 100 MiB random + copy, 50 MiB zeros
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

pack_target() {
  local tree=$WORK/tree
  mkdir -p "$tree" && gen_tree "$tree"
  local bytes; bytes=$(du -sb "$tree" | cut -f1)
  local t_tar; t_tar=$(best bash -c "tar -cf - -C '$tree' . | zstd -3 -T0 -q > '$WORK/tree.tar.zst'")
  flist_run() { rm -rf "$WORK/store" "$WORK/tree.fl"; "$FLIST" pack --quiet --store "dir://$WORK/store" -o "$WORK/tree.fl" "$tree"; }
  local t_fl; t_fl=$(best flist_run)
  local store_bytes; store_bytes=$(du -sb "$WORK/store" | cut -f1)
  local ratio; ratio=$(echo "$t_fl / $t_tar" | bc -l)
  # Incompressible throughput: the random file alone.
  mkdir -p "$WORK/rnd" && cp "$tree/random.bin" "$WORK/rnd/"
  rnd_run() { rm -rf "$WORK/store2"; "$FLIST" pack --quiet --store "dir://$WORK/store2" -o "$WORK/rnd.fl" "$WORK/rnd"; }
  local t_rnd; t_rnd=$(best rnd_run)
  echo "tree bytes:                $bytes"
  echo "tar | zstd -3 -T0:         ${t_tar}s ($(stat -c %s "$WORK/tree.tar.zst") bytes)"
  echo "flist pack (dir store):    ${t_fl}s (store $store_bytes bytes, flist $(stat -c %s "$WORK/tree.fl") bytes)"
  printf 'ratio flist / tar+zstd:    %.2fx (target <= 3x)\n' "$ratio"
  printf 'incompressible 100 MiB:    %ss = %.0f MiB/s\n' "$t_rnd" "$(echo "100 / $t_rnd" | bc -l)"
  "$FLIST" inspect "$WORK/tree.fl" | grep -E "unique blocks|content"
  (( $(echo "$ratio <= 3" | bc -l) )) || { echo "FAIL: slower than 3x tar|zstd" >&2; exit 1; }
}

chunking() {
  # Two versions of a real tree: Rust std libraries of stable vs nightly (if present), and a
  # tree with a modified copy (5% of files get 64 bytes inserted at a random offset).
  local tc=${RUSTUP_HOME:-$HOME/.rustup}/toolchains
  local v1=${V1:-$tc/stable-x86_64-unknown-linux-gnu/lib/rustlib/x86_64-unknown-linux-gnu/lib}
  local v2=${V2:-$tc/nightly-x86_64-unknown-linux-gnu/lib/rustlib/x86_64-unknown-linux-gnu/lib}
  local pairs=()
  [ -d "$v1" ] && [ -d "$v2" ] && pairs+=("rust-std-stable-vs-nightly:$v1:$v2")
  mkdir -p "$WORK/mod"
  cp -a /usr/bin "$WORK/mod/v1"
  cp -a /usr/bin "$WORK/mod/v2"
  python3 - "$WORK/mod/v2" <<'EOF'
import os, random, sys
r = random.Random(7)
fs = sorted(os.path.join(d, f) for d, _, fl in os.walk(sys.argv[1]) for f in fl
            if not os.path.islink(os.path.join(d, f)))
for p in r.sample(fs, len(fs) // 20):
    b = open(p, "rb").read()
    i = r.randint(0, len(b))
    open(p, "wb").write(b[:i] + os.urandom(64) + b[i:])
EOF
  pairs+=("usr-bin-vs-5pct-insertions:$WORK/mod/v1:$WORK/mod/v2")
  printf '%-28s %-12s %10s %10s %12s %8s\n' pair chunking v1_stored v2_added v2_new_pct pack_s
  for p in "${pairs[@]}"; do
    IFS=: read -r name a b <<<"$p"
    for c in fixed:256K fixed:1M fixed:4M cdc:256K cdc:1M; do
      rm -rf "$WORK/cs"
      local s e
      s=$(now); "$FLIST" pack --quiet --chunking "$c" --store "dir://$WORK/cs" -o "$WORK/c1.fl" "$a" >/dev/null 2>&1; e=$(now)
      local s1; s1=$(du -sb "$WORK/cs" | cut -f1)
      "$FLIST" pack --quiet --chunking "$c" --store "dir://$WORK/cs" -o "$WORK/c2.fl" "$b" >/dev/null 2>&1
      local s2; s2=$(du -sb "$WORK/cs" | cut -f1)
      printf '%-28s %-12s %10d %10d %11.1f%% %8.2f\n' "$name" "$c" "$s1" $((s2 - s1)) \
        "$(echo "100 * ($s2 - $s1) / $s1" | bc -l)" "$(echo "$e - $s" | bc -l)"
    done
  done
}

echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
case "${1:-pack}" in
  pack) pack_target ;;
  chunking) chunking ;;
  *) echo "usage: $0 [pack|chunking]" >&2; exit 2 ;;
esac
