//! Finding the node's pools before storaged runs. Nothing on the initramfs survives a reboot, so
//! the node's identity is read back from its disks: every disk whose btrfs label says it is a
//! storaged pool is mounted where storaged mounts it (`<storaged root>/pools/<disk>`), where the
//! daemon finds the identity copy (`.zos/node.key`) and storaged adopts the mount as it is.

use std::io::Read;
use std::path::Path;

/// Prefix of storaged's pool labels (`storaged:<node id>`, storaged's `pool::adopt`).
pub const POOL_LABEL_PREFIX: &str = "storaged:";

/// btrfs superblock: at 64 KiB; magic `_BHRfS_M` at +0x40; label at +0x12b, 256 bytes, NUL
/// padded (the layout storaged's disk probe reads).
const SB: usize = 0x10000;
const MAGIC: usize = SB + 0x40;
const LABEL: usize = SB + 0x12b;
const LABEL_LEN: usize = 256;
/// Bytes to read from the start of a disk to see its label.
pub const PROBE_LEN: usize = LABEL + LABEL_LEN;

/// Whole disks the node may own, from the names in `/sys/block` (storaged skips the same
/// virtual devices).
pub fn is_disk(name: &str) -> bool {
    const VIRTUAL: [&str; 9] = [
        "loop", "ram", "zram", "dm-", "md", "nbd", "sr", "fd", "drbd",
    ];
    !name.is_empty() && !VIRTUAL.iter().any(|p| name.starts_with(p))
}

/// The btrfs label in the first [`PROBE_LEN`] bytes of a disk, if it is a btrfs filesystem.
pub fn btrfs_label(head: &[u8]) -> Option<String> {
    if head.get(MAGIC..MAGIC + 8)? != b"_BHRfS_M" {
        return None;
    }
    let raw = head.get(LABEL..LABEL + LABEL_LEN)?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Some(String::from_utf8_lossy(raw.get(..end)?).into_owned())
}

/// Whether a label marks one of storaged's pools (any node's: the first valid identity copy
/// wins, and storaged reports pools of another node as foreign).
pub fn is_pool_label(label: &str) -> bool {
    label.starts_with(POOL_LABEL_PREFIX)
}

/// The disks under `sys_block` (sorted) whose content is a storaged pool.
pub fn pool_disks(sys_block: &Path, dev: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys_block)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_disk(n))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| {
            let mut head = vec![0u8; PROBE_LEN];
            std::fs::File::open(dev.join(n))
                .and_then(|mut f| f.read_exact(&mut head))
                .is_ok()
                && btrfs_label(&head).is_some_and(|l| is_pool_label(&l))
        })
        .collect()
}

#[cfg(test)]
mod test {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn btrfs(label: &str) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_LEN];
        b[MAGIC..MAGIC + 8].copy_from_slice(b"_BHRfS_M");
        b[LABEL..LABEL + label.len()].copy_from_slice(label.as_bytes());
        b
    }

    #[test]
    fn labels() {
        assert_eq!(
            btrfs_label(&btrfs("storaged:ab12")).unwrap(),
            "storaged:ab12"
        );
        assert!(is_pool_label(
            &btrfs_label(&btrfs("storaged:ab12")).unwrap()
        ));
        assert!(!is_pool_label(&btrfs_label(&btrfs("home")).unwrap()));
        assert_eq!(btrfs_label(&vec![0u8; PROBE_LEN]), None);
        assert_eq!(btrfs_label(&[0u8; 100]), None, "short read");
    }

    #[test]
    fn whole_disks_only() {
        for d in ["vda", "sda", "nvme0n1", "xvdb"] {
            assert!(is_disk(d), "{d}");
        }
        for d in ["loop0", "ram1", "zram0", "dm-0", "md127", "nbd0", "sr0", ""] {
            assert!(!is_disk(d), "{d}");
        }
    }

    #[test]
    fn finds_pool_disks_in_a_fake_sys_and_dev() {
        let d = tempfile::tempdir().unwrap();
        let (sys, dev) = (d.path().join("sys"), d.path().join("dev"));
        for n in ["vda", "vdb", "vdc", "loop0"] {
            std::fs::create_dir_all(sys.join(n)).unwrap();
        }
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("vda"), btrfs("other")).unwrap();
        std::fs::write(dev.join("vdb"), btrfs("storaged:n1")).unwrap();
        std::fs::write(dev.join("loop0"), btrfs("storaged:n1")).unwrap();
        std::fs::write(dev.join("vdc"), b"short").unwrap();
        assert_eq!(pool_disks(&sys, &dev), ["vdb"]);
    }
}
