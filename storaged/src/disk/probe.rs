//! What a device holds, read from its first MiB directly (udev and lsblk may not know a fresh
//! filesystem yet).
//!
//! A device counts as blank only when its first MiB is all zeros: that covers partition tables
//! (MBR at 510, GPT at 512), the btrfs primary superblock (64 KiB), ext2/3/4 (1 KiB), XFS (0),
//! LUKS (0), LVM (512), swap (4 KiB - 10) and most others. Anything else is never formatted.
//!
//! btrfs superblock (at 0x10000): fsid at +0x20 (16 bytes), magic `_BHRfS_M` at +0x40,
//! label at +0x12b (256 bytes, NUL padded).

use std::fs::File;
use std::io::Read;
use std::path::Path;

const PROBE_LEN: usize = 1 << 20;
const BTRFS_SB: usize = 0x10000;
const BTRFS_FSID: usize = BTRFS_SB + 0x20;
const BTRFS_MAGIC: usize = BTRFS_SB + 0x40;
const BTRFS_LABEL: usize = BTRFS_SB + 0x12b;
const BTRFS_LABEL_LEN: usize = 256;

/// What is on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// First MiB all zeros: safe to format.
    Blank,
    /// A btrfs filesystem.
    Btrfs {
        /// Filesystem label.
        label: String,
        /// Filesystem UUID (hex).
        fsid: String,
    },
    /// Something else (name of what was recognised, or `unknown data`).
    Other(String),
}

fn at(buf: &[u8], off: usize, len: usize) -> &[u8] {
    buf.get(off..off + len).unwrap_or(&[])
}

/// Classifies the first MiB of a device.
pub fn classify(buf: &[u8]) -> Content {
    if buf.iter().all(|b| *b == 0) {
        return Content::Blank;
    }
    if at(buf, BTRFS_MAGIC, 8) == b"_BHRfS_M" {
        let label = at(buf, BTRFS_LABEL, BTRFS_LABEL_LEN);
        let end = label.iter().position(|b| *b == 0).unwrap_or(label.len());
        let label = String::from_utf8_lossy(label.get(..end).unwrap_or(&[])).into_owned();
        let fsid = at(buf, BTRFS_FSID, 16)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        return Content::Btrfs { label, fsid };
    }
    let kind = if at(buf, 0x438, 2) == [0x53, 0xef] {
        "ext2/3/4 filesystem"
    } else if at(buf, 0, 4) == b"XFSB" {
        "xfs filesystem"
    } else if at(buf, 0, 4) == b"LUKS" {
        "luks volume"
    } else if at(buf, 512, 8) == b"EFI PART" {
        "gpt partition table"
    } else if at(buf, 512, 8) == b"LABELONE" {
        "lvm physical volume"
    } else if at(buf, 4086, 10) == b"SWAPSPACE2" {
        "swap"
    } else if at(buf, 510, 2) == [0x55, 0xaa] {
        "mbr partition table"
    } else {
        "unknown data"
    };
    Content::Other(kind.into())
}

/// Reads and classifies the first MiB of `dev`.
pub fn probe(dev: &Path) -> std::io::Result<Content> {
    let mut buf = Vec::with_capacity(PROBE_LEN);
    File::open(dev)?
        .take(PROBE_LEN as u64)
        .read_to_end(&mut buf)?;
    Ok(classify(&buf))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn blank_btrfs_and_others() {
        let mut b = vec![0u8; PROBE_LEN];
        assert_eq!(classify(&b), Content::Blank);
        b[BTRFS_MAGIC..BTRFS_MAGIC + 8].copy_from_slice(b"_BHRfS_M");
        b[BTRFS_LABEL..BTRFS_LABEL + 6].copy_from_slice(b"zos:n1");
        b[BTRFS_FSID] = 0xab;
        match classify(&b) {
            Content::Btrfs { label, fsid } => {
                assert_eq!(label, "zos:n1");
                assert!(fsid.starts_with("ab00"));
            }
            other => panic!("{other:?}"),
        }
        let mut e = vec![0u8; PROBE_LEN];
        e[0x438] = 0x53;
        e[0x439] = 0xef;
        assert_eq!(classify(&e), Content::Other("ext2/3/4 filesystem".into()));
        let mut u = vec![0u8; PROBE_LEN];
        u[PROBE_LEN - 1] = 1;
        assert_eq!(classify(&u), Content::Other("unknown data".into()));
    }
}
