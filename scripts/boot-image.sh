#!/usr/bin/env bash
# Boot the node image (scripts/build-image.sh) under qemu with software emulation.
#
#   scripts/boot-image.sh                       throwaway node: two fresh disks in a temp folder
#   scripts/boot-image.sh [options] [-- QEMU ARGS...]
#     --disks DIR        keep the disks in DIR (made when missing): a reboot keeps the node
#     --fwd H:G          forward host TCP port H to guest port G (repeatable)
#     --append ARGS      more kernel command line, e.g. "zos.farm=f1 zos.etcd=http://10.0.2.2:2379"
#     --image DIR        kernel and initramfs (default target/image)
#     --config FILE      attach FILE read-only as the config disk: a file system labelled
#                        ZOSCONFIG holding the farm's etcd credentials (etcd/ca.pem, cert.pem,
#                        key.pem, user, password), e.g. mkfs.ext4 -L ZOSCONFIG -d DIR FILE 8M
#
# Disks: disk0 (SSD: fast) and disk1 (HDD: qemu throttles it to ZOS_HDD_IOPS I/Os per second,
# 100 by default, so storaged's seek measurement, > 2 ms per random read, classifies it as HDD).
# The console is this terminal (serial, -nographic): Ctrl-A X quits qemu. Never -accel kvm:
# /dev/kvm opens on this machine but guests hang.
set -euo pipefail
cd "$(dirname "$0")/.."
image=target/image disks= append= config= fwds=()
while [ $# -gt 0 ]; do
  case $1 in
    --disks) disks=$2; shift 2 ;;
    --fwd) fwds+=("$2"); shift 2 ;;
    --append) append=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v qemu-system-x86_64 >/dev/null || { echo "missing qemu-system-x86_64: run scripts/deps.sh" >&2; exit 1; }
for f in vmlinuz initramfs.img; do
  [ -f "$image/$f" ] || { echo "missing $image/$f: run scripts/build-image.sh" >&2; exit 1; }
done
if [ -z "$disks" ]; then
  disks=$(mktemp -d /tmp/zos-disks.XXXXXX)
  trap 'rm -rf "$disks"' EXIT
  echo "throwaway node: disks in $disks (removed at exit)"
fi
mkdir -p "$disks"
size=${ZOS_DISK_SIZE:-8G}
for d in disk0 disk1; do
  [ -f "$disks/$d.img" ] || truncate -s "$size" "$disks/$d.img"
done
extra=()
if [ -n "$config" ]; then
  [ -f "$config" ] || { echo "missing config disk $config" >&2; exit 1; }
  extra+=(-drive "file=$config,if=none,id=cfg,format=raw,readonly=on"
    -device virtio-blk-pci,drive=cfg,serial=zos-config)
fi
net=user,id=n0
for f in "${fwds[@]}"; do net+=",hostfwd=tcp::${f%%:*}-:${f##*:}"; done

# qemu stays in the foreground (its console is the terminal); a signal to this script reaches it.
qemu-system-x86_64 \
  -accel tcg -cpu max -smp "${ZOS_CPUS:-2}" -m "${ZOS_MEM:-2048}" \
  -nographic -no-reboot \
  -kernel "$image/vmlinuz" -initrd "$image/initramfs.img" \
  -append "console=ttyS0 panic=-1 loglevel=4 zos.net=dhcp $append" \
  -drive "file=$disks/disk0.img,if=none,id=d0,format=raw,cache=writeback" \
  -device virtio-blk-pci,drive=d0,serial=zos-ssd0 \
  -drive "file=$disks/disk1.img,if=none,id=d1,format=raw,cache=writeback,throttling.iops-total=${ZOS_HDD_IOPS:-100}" \
  -device virtio-blk-pci,drive=d1,serial=zos-hdd1 \
  "${extra[@]}" \
  -netdev "$net" -device virtio-net-pci,netdev=n0 \
  "$@"
