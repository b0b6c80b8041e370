#!/usr/bin/env bash
# Install what the test suite needs on a fresh Debian machine (run as root). Idempotent.
set -euo pipefail
packages=(redis-tools redis-server fio python3 btrfs-progs busybox-static libseccomp-dev pkg-config zstd fuse3 iproute2 util-linux e2fsprogs netcat-openbsd etcd-server openssl protobuf-compiler libprotobuf-dev nftables iputils-ping wireguard-go wireguard-tools iperf3
  qemu-system-x86 cpio kmod b3sum)  # last line: the node image (scripts/build-image.sh, boot-image.sh)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
# redis-server from Debian starts itself on install; the tests start their own servers.
if command -v systemctl >/dev/null && systemctl is-active -q redis-server 2>/dev/null; then
  systemctl stop redis-server || true
fi
