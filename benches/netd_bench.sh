#!/usr/bin/env bash
# netd overlay speed against the userspace WireGuard peers, in one run on one machine.
# Two namespaces (nb-a, nb-b) joined by one veth pair; over it, one at a time:
#   bare veth | netd overlay | Debian wireguard-go | boringtun-cli (crates.io)
# Each: single-stream TCP with iperf3 (10 s, median of 3 runs), CPU of the whole machine during
# the runs (cores busy per Gbit/s, from /proc/stat), and ping p50/p99 (200 pings, 10 ms apart).
# The last line: `overlay X Gbit/s = R1x boringtun-cli, R2x wireguard-go; ping p50 P ms`.
# Needs root, iperf3, ping, nft, wireguard-go and wg (Debian: iperf3 iputils-ping nftables
# wireguard-go wireguard-tools). boringtun-cli is built with `cargo install` into
# $BORINGTUN_ROOT (default /tmp/netd-bench-boringtun, kept between runs; never committed).
# Usage: benches/netd_bench.sh [SECONDS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}
cargo build --release -q -p netd -p bus
bin=$PWD/target/release
bt_root=${BORINGTUN_ROOT:-/tmp/netd-bench-boringtun}
if [ ! -x "$bt_root/bin/boringtun-cli" ]; then
  cargo install -q --locked boringtun-cli --root "$bt_root"
fi
for t in iperf3 ping nft wireguard-go wg; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
work=$(mktemp -d /tmp/netd-bench-XXXX)
A=nb-a B=nb-b
cleanup() {
  for p in $(pgrep -f "$work/" || true); do kill -TERM "$p" 2>/dev/null || true; done
  pkill -f "wireguard-go wgg[12]$" 2>/dev/null || true
  pkill -f "boringtun-cli wgb[12]" 2>/dev/null || true
  sleep 0.5
  for n in $(ip netns list | awk '{print $1}' | grep -E "^nb-[ab]" || true); do ip netns del "$n"; done
  rm -f /var/run/wireguard/wgg[12].sock /var/run/wireguard/wgb[12].sock
  rm -rf "$work"
}
trap cleanup EXIT
cleanup_ns() { for n in $(ip netns list | awk '{print $1}' | grep -E "^nb-[ab]" || true); do ip netns del "$n"; done; }
cleanup_ns

ip netns add $A
ip netns add $B
ip link add va netns $A type veth peer name vb netns $B
ip -n $A addr add 198.51.100.1/24 dev va
ip -n $B addr add 198.51.100.2/24 dev vb
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A link set va up
ip -n $B link set vb up

# /proc/stat busy and total jiffies, whole machine.
cpu() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; print b, t}' /proc/stat; }

# measure NAME CLIENT_NS SERVER_NS SERVER_IP: prints "gbps cores_per_gbps p50 p99".
measure() {
  local client=$1 server=$2 ip=$3 results=() b0 t0 b1 t1
  ip netns exec "$server" iperf3 -s -D -B "$ip" --pidfile "$work/iperf.pid" >/dev/null
  sleep 0.5
  read -r b0 t0 < <(cpu)
  for _ in $(seq "$runs"); do
    results+=("$(ip netns exec "$client" iperf3 -c "$ip" -t "$secs" -J |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)')")
  done
  read -r b1 t1 < <(cpu)
  kill "$(cat "$work/iperf.pid")" 2>/dev/null || true
  local gbps ping
  gbps=$(printf '%s\n' "${results[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  ping=$(ip netns exec "$client" ping -c 200 -i 0.01 "$ip" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' |
    sort -g | awk '{a[NR]=$1} END{print a[int(NR*0.5)], a[int(NR*0.99)]}')
  local ncpu; ncpu=$(nproc)
  awk -v g="$gbps" -v b="$((b1 - b0))" -v t="$((t1 - t0))" -v n="$ncpu" -v p="$ping" \
    'BEGIN{c=b/t*n; printf "%.2f %.2f %s\n", g, (g>0? c/g : 0), p}'
}

report() { # NAME "gbps cpg p50 p99"
  read -r g c p50 p99 <<<"$2"
  printf '%-14s %6.2f Gbit/s  %5.2f cores per Gbit/s  ping p50 %s ms p99 %s ms\n' "$1" "$g" "$c" "$p50" "$p99"
}

# 1. bare veth
bare=$(measure $A $B 198.51.100.2)
report "bare veth" "$bare"

# 2. netd overlay: a netd per namespace, one network, each the other's peer.
for n in a b; do
  nsenter --net=/run/netns/nb-$n "$bin/netd" --state "$work/$n/state" --run "$work/$n/run" \
    --netns-prefix "nb-$n-n-" --ports 51820-51830 >"$work/netd-$n.log" 2>&1 &
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
ip netns exec nb-a-n-bench ping -c 3 -i 0.2 -W 2 10.99.2.1 >/dev/null
overlay=$(measure nb-a-n-bench nb-b-n-bench 10.99.2.1)
report "netd overlay" "$overlay"
for n in a b; do pkill -TERM -f "$work/$n/state" || true; done
sleep 0.5

# 3. wireguard-go and 4. boringtun-cli, the same way: one interface per namespace.
wg_pair() { # CMD IFPREFIX NET
  local cmd=$1 ifp=$2 net=$3
  umask 077
  wg genkey >"$work/k1"
  wg genkey >"$work/k2"
  wg pubkey <"$work/k1" >"$work/p1"
  wg pubkey <"$work/k2" >"$work/p2"
  for i in 1 2; do
    local ns=$A; [ $i = 2 ] && ns=$B
    # shellcheck disable=SC2086
    ip netns exec $ns env WG_PROCESS_FOREGROUND=1 $cmd "${ifp}$i" >"$work/$ifp$i.log" 2>&1 &
  done
  for i in 1 2; do until [ -S "/var/run/wireguard/${ifp}$i.sock" ]; do sleep 0.1; done; done
  ip netns exec $A wg set "${ifp}1" private-key "$work/k1" listen-port 51901 \
    peer "$(cat "$work/p2")" endpoint 198.51.100.2:51902 allowed-ips "$net.2.0/24"
  ip netns exec $B wg set "${ifp}2" private-key "$work/k2" listen-port 51902 \
    peer "$(cat "$work/p1")" endpoint 198.51.100.1:51901 allowed-ips "$net.1.0/24"
  ip -n $A addr add "$net.1.1/24" dev "${ifp}1"
  ip -n $B addr add "$net.2.1/24" dev "${ifp}2"
  ip -n $A link set "${ifp}1" mtu 1420 up
  ip -n $B link set "${ifp}2" mtu 1420 up
  ip -n $A route add "$net.2.0/24" dev "${ifp}1"
  ip -n $B route add "$net.1.0/24" dev "${ifp}2"
  ip netns exec $A ping -c 3 -i 0.2 -W 2 "$net.2.1" >/dev/null
}
wg_pair wireguard-go wgg 10.97
wggo=$(measure $A $B 10.97.2.1)
report "wireguard-go" "$wggo"
pkill -f "wireguard-go wgg[12]$" || true
sleep 0.5

wg_pair "$bt_root/bin/boringtun-cli --foreground --disable-drop-privileges" wgb 10.96
bt=$(measure $A $B 10.96.2.1)
report "boringtun-cli" "$bt"

read -r og _ op50 _ <<<"$overlay"
read -r bg _ _ _ <<<"$bt"
read -r gg _ _ _ <<<"$wggo"
awk -v o="$og" -v b="$bg" -v g="$gg" -v p="$op50" \
  'BEGIN{printf "overlay %.2f Gbit/s = %.2fx boringtun-cli, %.2fx wireguard-go; ping p50 %s ms\n", o, o/b, o/g, p}'
