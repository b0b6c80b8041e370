#!/usr/bin/env bash
# storaged bench vs fio on the same file, in one go; prints both and their ratio.
#
#   benches/storaged_fio.sh [DIR] [SIZE_MIB] [RUNTIME_S] [RUNS]
#
# DIR (default $TMPDIR) picks the filesystem; one file DIR/storaged-fio-bench.dat of SIZE_MIB
# (default 256) is used by both tools and removed at the end. For each of the five jobs, RUNS
# (default 5) runs alternate between `storaged bench --only JOB` and the same fio job (io_uring,
# direct=1, time based, RUNTIME_S each, default 2):
#   seq write/read  bs=1M iodepth=16     rand read/write  bs=4k iodepth=32
#   fsync           bs=4k iodepth=1 fsync=1 (median fsync latency)
# Medians are reported. Needs fio and jq
# (Debian: fio jq) and a built storaged (cargo build --release -p storaged, else debug).
set -euo pipefail
DIR=${1:-${TMPDIR:-/tmp}}
SIZE=${2:-256}
RT=${3:-2}
RUNS=${4:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SD=$ROOT/target/release/storaged
[ -x "$SD" ] || SD=$ROOT/target/debug/storaged
[ -x "$SD" ] || { echo "build storaged first: cargo build --release -p storaged" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio missing (apt-get install fio)" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq missing (apt-get install jq)" >&2; exit 1; }
F=$DIR/storaged-fio-bench.dat
trap 'rm -f "$F"' EXIT

fio_job() { # name rw bs iodepth [extra...]
  local name=$1 rw=$2 bs=$3 qd=$4; shift 4
  fio --name="$name" --filename="$F" --size="${SIZE}M" --rw="$rw" --bs="$bs" --iodepth="$qd" \
      --ioengine=io_uring --direct=1 --time_based --runtime="$RT" --output-format=json "$@"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

declare -A S FI
ALL="seq_write_mib_s:seq-write seq_read_mib_s:seq-read rand_read_iops:rand-read rand_write_iops:rand-write fsync_p50_us:fsync"
JOBS=${ONLY:-$ALL}   # e.g. ONLY="fsync_p50_us:fsync" to run one job
fio_metric() { # key
  case $1 in
    seq_write_mib_s) fio_job sw write 1M 16 | jq '.jobs[0].write.bw_bytes/1048576' ;;
    seq_read_mib_s) fio_job sr read 1M 16 | jq '.jobs[0].read.bw_bytes/1048576' ;;
    rand_read_iops) fio_job rr randread 4k 32 | jq '.jobs[0].read.iops' ;;
    rand_write_iops) fio_job rw randwrite 4k 32 | jq '.jobs[0].write.iops' ;;
    fsync_p50_us) fio_job fs write 4k 1 --fsync=1 | jq '.jobs[0].sync.lat_ns.percentile["50.000000"]/1000' ;;
  esac
}
# Lay the file out once (both tools then find it complete).
"$SD" bench "$F" --size "${SIZE}M" --runtime 0.1 --only seq-read >/dev/null
# Per metric, runs alternate between the tools, so both see the same machine state.
for pair in $JOBS; do
  k=${pair%%:*}; job=${pair##*:}
  for run in $(seq 1 "$RUNS"); do
    # Alternate which tool goes first, so neither always follows the other's writes.
    if (( run % 2 )); then
      S[$k]+="$("$SD" bench "$F" --size "${SIZE}M" --runtime "$RT" --only "$job" | jq -r ".$k")"$'\n'
      FI[$k]+="$(fio_metric "$k")"$'\n'
    else
      FI[$k]+="$(fio_metric "$k")"$'\n'
      S[$k]+="$("$SD" bench "$F" --size "${SIZE}M" --runtime "$RT" --only "$job" | jq -r ".$k")"$'\n'
    fi
  done
  echo "$k done" >&2
done

echo "file: $F (${SIZE} MiB), ${RT} s per job, median of $RUNS alternating runs, storaged: $SD"
printf '| metric | storaged bench median (min-max) | fio median (min-max) | storaged/fio |\n| --- | --- | --- | --- |\n'
for pair in $JOBS; do
  k=${pair%%:*}
  s=$(printf '%s' "${S[$k]}" | median); f=$(printf '%s' "${FI[$k]}" | median)
  sr=$(printf '%s' "${S[$k]}" | sort -g | awk 'NR==1{a=$1} {b=$1} END{printf "%.1f-%.1f", a, b}')
  fr=$(printf '%s' "${FI[$k]}" | sort -g | awk 'NR==1{a=$1} {b=$1} END{printf "%.1f-%.1f", a, b}')
  printf '| %s | %.1f (%s) | %.1f (%s) | %.3f |\n' "$k" "$s" "$sr" "$f" "$fr" "$(echo "$s $f" | awk '{print ($2>0)?$1/$2:0}')"
done
