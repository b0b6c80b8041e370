//! Real block devices from sysfs.

use std::path::{Path, PathBuf};

/// A whole-disk block device found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Kernel name (`sda`, `nvme0n1`).
    pub name: String,
    /// Device node.
    pub device: PathBuf,
    /// Size in bytes.
    pub size: u64,
}

const SKIP: &[&str] = &[
    "loop", "ram", "zram", "dm-", "md", "nbd", "sr", "fd", "drbd",
];

/// Size in bytes of block device `name` (sysfs counts 512-byte sectors), `None` if absent.
pub fn device_size(sys_root: &Path, name: &str) -> Option<u64> {
    let s = std::fs::read_to_string(sys_root.join("block").join(name).join("size")).ok()?;
    s.trim().parse::<u64>().ok().map(|n| n * 512)
}

/// Whole disks worth managing: not virtual (loop, ram, dm, md...), not empty, not removable.
pub fn discover(sys_root: &Path) -> std::io::Result<Vec<BlockDevice>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(sys_root.join("block"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if SKIP.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let removable = std::fs::read_to_string(entry.path().join("removable"))
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
        if removable {
            continue;
        }
        match device_size(sys_root, &name) {
            Some(size) if size > 0 => out.push(BlockDevice {
                device: PathBuf::from("/dev").join(&name),
                name,
                size,
            }),
            _ => {}
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn discovers_whole_disks_only() {
        let d = tempfile::tempdir().expect("tempdir");
        for (name, size, rem) in [
            ("sda", "2048", "0"),
            ("loop0", "100", "0"),
            ("sdb", "0", "0"),
            ("sr0", "9", "1"),
            ("nvme0n1", "4096", "0"),
        ] {
            let p = d.path().join("block").join(name);
            std::fs::create_dir_all(&p).expect("mkdir");
            std::fs::write(p.join("size"), size).expect("write");
            std::fs::write(p.join("removable"), rem).expect("write");
        }
        let found = discover(d.path()).expect("discover");
        let names: Vec<_> = found.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda"]);
        assert_eq!(found[1].size, 2048 * 512);
    }
}
