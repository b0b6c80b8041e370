#!/usr/bin/env bash
# Run a whole dev node (file-backed disks, storaged, zdb, computed, node-init) in DIR (default ./node).
# Needs root: loop devices and btrfs mounts. Installs what it needs on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-./node}
for p in btrfs-progs util-linux e2fsprogs libseccomp-dev pkg-config iproute2 fuse3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
cargo build --release -p zdb -p storaged -p node-init -p bus -p computed -p flist-fuse
mkdir -p "$dir"
exec target/release/node-init --dev "$(realpath "$dir")"
