#!/usr/bin/env bash
# Build the bootable node image: a Debian kernel and an initramfs holding the node's daemons,
# the tools they call, busybox for a rescue shell and node-init as /init.
#
#   scripts/build-image.sh [OUT]        (default OUT: target/image; as root or not)
#
# Output: OUT/vmlinuz, OUT/initramfs.img (newc cpio, zstd). Same inputs give the same bytes:
# files are added in sorted order, owned by root, with every timestamp set to SOURCE_DATE_EPOCH
# (default: the time of the last commit), and the compression is single-threaded.
# Inputs: the kernel package (the linux-image-* that linux-image-amd64 depends on, or
# ZOS_KERNEL_PKG; downloaded once into OUT/cache, never installed on the host), this host's
# Debian tools and libraries (busybox-static, btrfs-progs, util-linux, e2fsprogs, iproute2,
# nftables, fuse3) and our release binaries (built here unless ZOS_IMAGE_NO_BUILD=1; ZOS_BIN_DIR
# points elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-target/image}")
bins=$(realpath -m "${ZOS_BIN_DIR:-target/release}")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export LC_ALL=C TZ=UTC

# The daemons in the image, and the programs they run (grep Command::new and storaged's
# system/linux.rs): storaged (losetup, mkfs.btrfs, mount, umount, btrfs, chattr, kill), computed
# (ip, flist, sh), netd (nft), flist (fusermount3 when it mounts), node-init's boot (modprobe,
# udhcpc: busybox).
our_bins=(node-init zos storaged zdb computed netd flist bus)
tools=(mkfs.btrfs btrfs mount umount losetup chattr ip nft fusermount3 blkid)
# Kernel modules the node needs (their dependencies are added from modules.dep); ext4 and vfat
# read the farm's config disk (node-init/src/boot/config.rs).
# Loaded in this order: crc32c before btrfs (libcrc32c asks the crypto API for it at load).
modules=(crc32c_generic crc32c_intel virtio_pci virtio_blk virtio_net btrfs fuse overlay tun loop
  veth bridge nf_tables nf_conntrack nf_nat nft_ct nft_nat nft_masq nft_chain_nat
  ext4 vfat nls_cp437 nls_utf8)

for t in cpio depmod modprobe dpkg-deb apt-get zstd b3sum busybox; do
  command -v "$t" >/dev/null || { echo "missing $t: run scripts/deps.sh" >&2; exit 1; }
done

if [ "${ZOS_IMAGE_NO_BUILD:-0}" != 1 ]; then
  cargo build --release -p node-init -p storaged -p zdb -p computed -p netd -p flist-fuse -p bus \
    $(printf -- '--bin %s ' "${our_bins[@]}")
fi
for b in "${our_bins[@]}"; do
  [ -x "$bins/$b" ] || { echo "missing $bins/$b (cargo build --release)" >&2; exit 1; }
done

mkdir -p "$out/cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- kernel ------------------------------------------------------------------------------
pkg=${ZOS_KERNEL_PKG:-$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')}
[ -n "$pkg" ] || { echo "cannot find the kernel package linux-image-amd64 depends on" >&2; exit 1; }
deb=$(ls "$out/cache/${pkg}"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  (cd "$out/cache" && apt-get download "$pkg" 2>&1 | grep -v "unsandboxed" || true)
  deb=$(ls "$out/cache/${pkg}"_*.deb | head -1)
fi
dpkg-deb -x "$deb" "$tmp/kernel"
kver=${pkg#linux-image-}
[ -d "$tmp/kernel/lib/modules/$kver" ] || { echo "no modules for $kver in $deb" >&2; exit 1; }
depmod -b "$tmp/kernel" "$kver"

# --- root tree ---------------------------------------------------------------------------
root=$tmp/root
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,run,tmp,var,mnt,root}
chmod 1777 "$root/tmp"
# merged /usr, as Debian
for l in bin sbin lib lib64; do ln -s "usr/$l" "$root/$l"; done

# modules with their dependencies, then the image's own modules.dep
mdir=lib/modules/$kver
mods=$(for m in "${modules[@]}"; do
  modprobe -d "$tmp/kernel" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | sort -u)
for f in $mods; do
  rel=${f#"$tmp/kernel/"}
  mkdir -p "$root/usr/$(dirname "$rel")"
  cp "$f" "$root/usr/$rel"
done
cp "$tmp/kernel/$mdir"/modules.{builtin,builtin.modinfo,order} "$root/usr/$mdir/"
depmod -b "$root/usr" "$kver"
rm -f "$root/usr/$mdir"/*.bin # busybox modprobe reads the text files
printf '%s\n' "${modules[@]}" >"$root/etc/modules"

# A file from the host at the same path, with its real bytes (symlinks followed).
put() { mkdir -p "$root$(dirname "$1")" && cp -L "$1" "$root$1"; }
# An ELF with the libraries it links (ldd), loader included.
put_elf() {
  put "$1"
  ldd "$1" 2>/dev/null | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}' | while read -r lib; do
    [ -e "$root$lib" ] || put "$lib"
  done
}

for b in "${our_bins[@]}"; do
  cp "$bins/$b" "$root/usr/bin/$b"
  strip --strip-unneeded "$root/usr/bin/$b"
  for lib in $(ldd "$bins/$b" 2>/dev/null | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'); do
    [ -e "$root$lib" ] || put "$lib"
  done
done
for t in "${tools[@]}"; do
  p=$(command -v "$t") || { echo "missing tool $t: run scripts/deps.sh" >&2; exit 1; }
  case $p in /bin/* | /sbin/*) p=/usr$p ;; esac
  put_elf "$p"
done
# the kernel execs /init: node-init, which runs the boot steps when it is PID 1
ln -s usr/bin/node-init "$root/init"

# busybox (static) for the rescue shell, modprobe and udhcpc; applets never shadow a real tool
cp "$(command -v busybox)" "$root/usr/bin/busybox"
for a in $("$root/usr/bin/busybox" --list); do
  [ -e "$root/usr/bin/$a" ] || [ -e "$root/usr/sbin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done

# udhcpc's lease script: address, default route, resolver
mkdir -p "$root/usr/share/udhcpc"
cat >"$root/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc lease script of the node image (busybox sh, iproute2)
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done ;;
esac
exit 0
EOF
chmod 0755 "$root/usr/share/udhcpc/default.script"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
ln -s /proc/self/mounts "$root/etc/mtab"
printf 'zos %s\nkernel %s\n' "$(git describe --always --dirty 2>/dev/null || echo unknown)" "$kver" >"$root/etc/zos-release"

# --- archive -----------------------------------------------------------------------------
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$root" && find . -print0 | sort -z |
  cpio --null --create --format=newc --reproducible --owner=0:0 --quiet) >"$tmp/initramfs.cpio"
zstd -q -T1 -15 --no-check "$tmp/initramfs.cpio" -o "$tmp/initramfs.img"
cp "$tmp/kernel/boot/vmlinuz-$kver" "$tmp/vmlinuz"
install -m 0644 "$tmp/vmlinuz" "$out/vmlinuz"
install -m 0644 "$tmp/initramfs.img" "$out/initramfs.img"

size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
k=$(size "$out/vmlinuz") i=$(size "$out/initramfs.img") u=$(size "$tmp/initramfs.cpio")
echo "kernel     $out/vmlinuz  $(mib "$k")  blake3 $(b3sum --no-names "$out/vmlinuz")"
echo "initramfs  $out/initramfs.img  $(mib "$i") ($(mib "$u") unpacked, $(echo "$mods" | wc -l) modules)  blake3 $(b3sum --no-names "$out/initramfs.img")"
echo "image      $(mib $((k + i)))  blake3 $(cat "$out/vmlinuz" "$out/initramfs.img" | b3sum --no-names)"
