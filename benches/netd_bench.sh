#!/usr/bin/env bash
# netd overlay speed against the userspace WireGuard peers, in one run on one machine.
# Two namespaces ($NETD_BENCH_NS-a and -b, default nb-a, nb-b) joined by one veth pair; over it, one at a time:
#   bare veth | netd overlay | Debian wireguard-go | boringtun-cli (crates.io)
# Each: single-stream TCP with iperf3 (10 s, median of 3 runs, runs of the paths interleaved),
# CPU of the tunnel processes (user+system, cores per Gbit/s; the kernel's softirq work is not
# in it), and ping p50/p99 (200 pings, 10 ms apart).
# The last line: `overlay X Gbit/s = R1x boringtun-cli, R2x wireguard-go; ping p50 P ms`.
# Needs root, iperf3, ping, nft, wireguard-go and wg (Debian: iperf3 iputils-ping nftables
# wireguard-go wireguard-tools). boringtun-cli is built with `cargo install` into
# $BORINGTUN_ROOT (default /tmp/netd-bench-boringtun, kept between runs; never committed).
# Usage: benches/netd_bench.sh [SECONDS] [RUNS]
# NETD_BENCH_PATHS=bare,overlay runs only those paths (quick before/after comparisons; the last
# line needs all four); NETD_BENCH_NS (default nb) prefixes the namespaces, so runs by several
# people on one machine do not collide.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}
want=",${NETD_BENCH_PATHS:-bare,overlay,wireguard-go,boringtun-cli},"
wanted() { [[ $want == *",$1,"* ]]; }
cargo build --release -q -p netd -p bus
bin=$PWD/target/release
bt_root=${BORINGTUN_ROOT:-/tmp/netd-bench-boringtun}
if wanted boringtun-cli && [ ! -x "$bt_root/bin/boringtun-cli" ]; then
  cargo install -q --locked boringtun-cli --root "$bt_root"
fi
for t in iperf3 ping nft wireguard-go wg; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
work=$(mktemp -d /tmp/netd-bench-XXXX)
ns=${NETD_BENCH_NS:-nb}
A=$ns-a B=$ns-b
cleanup() {
  for p in $(pgrep -f "$work/" || true); do kill -TERM "$p" 2>/dev/null || true; done
  for p in $(cat "$work"/wg-*.pid 2>/dev/null || true); do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  cleanup_ns
  rm -f /var/run/wireguard/wgg[12].sock /var/run/wireguard/wgb[12].sock
  rm -rf "$work"
}
cleanup_ns() { for n in $(ip netns list | awk '{print $1}' | grep -E "^$ns-[ab]" || true); do ip netns del "$n"; done; }
trap cleanup EXIT
cleanup_ns

ip netns add $A
ip netns add $B
ip link add va netns $A type veth peer name vb netns $B
ip -n $A addr add 198.51.100.1/24 dev va
ip -n $B addr add 198.51.100.2/24 dev vb
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A link set va up
ip -n $B link set vb up

# CPU ticks (user+system) of the processes whose command line matches $1.
ticks() {
  local t=0 p
  for p in $(pgrep -f "$1" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)

# The paths: name, client namespace, server namespace, server address, tunnel process pattern.
paths=()
add_path() { paths+=("$1|$2|$3|$4|$5"); ip netns exec "$3" iperf3 -s -D -B "$4" --pidfile "$work/iperf-$1.pid" >/dev/null; }
# (each path below is set up only when wanted)

# 1. bare veth
if wanted bare; then add_path bare $A $B 198.51.100.2 "^no-tunnel-process$"; fi

# 2. netd overlay: a netd per namespace, one network, each the other's peer.
if wanted overlay; then
for n in a b; do
  nsenter --net=/run/netns/$ns-$n "$bin/netd" --state "$work/./state/$n" --run "$work/$n/run" \
    --netns-prefix "$ns-$n-n-" --ports 51820-51830 >"$work/netd-$n.log" 2>&1 &
done
for n in a b; do until [ -S "$work/$n/run/netd.sock" ]; do sleep 0.1; done; done
apply() { # NODE SUBNET PEER_KEY PEER_IP PEER_SUBNET
  local peers='[]'
  [ -n "$3" ] && peers="[{\"public_key\":\"$3\",\"endpoint\":\"$4:51820\",\"subnets\":[\"$5\"]}]"
  "$bin/bus" call "$work/$1/run/netd.sock" network.apply@1 \
    "{\"id\":\"bench\",\"ip_range\":\"10.99.0.0/16\",\"subnet\":\"$2\",\"peers\":$peers}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])'
}
ka=$(apply a 10.99.1.0/24 "" "" "")
kb=$(apply b 10.99.2.0/24 "$ka" 198.51.100.1 10.99.1.0/24)
apply a 10.99.1.0/24 "$kb" 198.51.100.2 10.99.2.0/24 >/dev/null
ip netns exec $ns-a-n-bench ping -c 3 -i 0.2 -W 2 10.99.2.1 >/dev/null
add_path overlay $ns-a-n-bench $ns-b-n-bench 10.99.2.1 "$work/./state"
fi

# 3. wireguard-go and 4. boringtun-cli, the same way: one interface per namespace.
wg_pair() { # CMD IFPREFIX NET PORT
  local cmd=$1 ifp=$2 net=$3 port=$4
  umask 077
  wg genkey >"$work/k1"
  wg genkey >"$work/k2"
  wg pubkey <"$work/k1" >"$work/p1"
  wg pubkey <"$work/k2" >"$work/p2"
  for i in 1 2; do
    local ns=$A; [ $i = 2 ] && ns=$B
    # shellcheck disable=SC2086
    ip netns exec $ns env WG_PROCESS_FOREGROUND=1 $cmd "${ifp}$i" >"$work/$ifp$i.log" 2>&1 &
    echo $! >"$work/wg-$ifp$i.pid"
  done
  for i in 1 2; do until [ -S "/var/run/wireguard/${ifp}$i.sock" ]; do sleep 0.1; done; done
  ip netns exec $A wg set "${ifp}1" private-key "$work/k1" listen-port "$port" \
    peer "$(cat "$work/p2")" endpoint "198.51.100.2:$((port + 1))" allowed-ips "$net.2.0/24"
  ip netns exec $B wg set "${ifp}2" private-key "$work/k2" listen-port "$((port + 1))" \
    peer "$(cat "$work/p1")" endpoint "198.51.100.1:$port" allowed-ips "$net.1.0/24"
  ip -n $A addr add "$net.1.1/24" dev "${ifp}1"
  ip -n $B addr add "$net.2.1/24" dev "${ifp}2"
  ip -n $A link set "${ifp}1" mtu 1420 up
  ip -n $B link set "${ifp}2" mtu 1420 up
  ip -n $A route add "$net.2.0/24" dev "${ifp}1"
  ip -n $B route add "$net.1.0/24" dev "${ifp}2"
  ip netns exec $A ping -c 3 -i 0.2 -W 2 "$net.2.1" >/dev/null
}
if wanted wireguard-go; then
  wg_pair wireguard-go wgg 10.97 51901
  add_path wireguard-go $A $B 10.97.2.1 "wireguard-go wgg[12]"
fi
if wanted boringtun-cli; then
  wg_pair "$bt_root/bin/boringtun-cli --foreground --disable-drop-privileges" wgb 10.96 51911
  add_path boringtun-cli $A $B 10.96.2.1 "boringtun-cli.*wgb[12]"
fi

# Runs interleaved (bare, overlay, wireguard-go, boringtun-cli, then again), so a load that
# comes and goes on the machine touches every path alike.
declare -A gbps cpu
for r in $(seq "$runs"); do
  for p in "${paths[@]}"; do
    IFS='|' read -r name client _ ip pat <<<"$p"
    c0=$(ticks "$pat")
    g=$(ip netns exec "$client" iperf3 -c "$ip" -t "$secs" -J |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)')
    c1=$(ticks "$pat")
    gbps[$name]+="$g "
    cpu[$name]+="$(awk -v c=$((c1 - c0)) -v hz="$hz" -v s="$secs" -v g="$g" 'BEGIN{print (g>0? c/hz/s/g : 0)}') "
    echo "run $r: $name $g Gbit/s" >&2
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
declare -A med p50
for p in "${paths[@]}"; do
  IFS='|' read -r name client _ ip _ <<<"$p"
  med[$name]=$(median <<<"${gbps[$name]}")
  c=$(median <<<"${cpu[$name]}")
  read -r p50[$name] p99 < <(ip netns exec "$client" ping -c 200 -i 0.01 "$ip" |
    sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g | awk '{a[NR]=$1} END{print a[int(NR*0.5)], a[int(NR*0.99)]}')
  if [ "$name" = bare ]; then cpg="   -"; else cpg=$(printf '%.2f' "$c"); fi
  printf '%-14s %6.2f Gbit/s (runs: %s)  tunnel %s cores per Gbit/s  ping p50 %s ms p99 %s ms\n' \
    "$name" "${med[$name]}" "${gbps[$name]% }" "$cpg" "${p50[$name]}" "$p99"
done
[ "$want" = ",bare,overlay,wireguard-go,boringtun-cli," ] || exit 0
awk -v o="${med[overlay]}" -v b="${med[boringtun-cli]}" -v g="${med[wireguard-go]}" -v p="${p50[overlay]}" \
  'BEGIN{printf "overlay %.2f Gbit/s = %.2fx boringtun-cli, %.2fx wireguard-go; ping p50 %s ms\n", o, o/b, o/g, p}'
