//! The mount table: `/proc/self/mountinfo` parsed.

use std::path::{Path, PathBuf};

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// `major:minor` of the mounted device.
    pub dev: String,
    /// Mount point.
    pub target: PathBuf,
    /// Filesystem type.
    pub fstype: String,
    /// Source (device path).
    pub source: String,
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo (always ASCII).
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '\\'
            && let Some(oct) = rest.get(1..4)
            && let Ok(v) = u8::from_str_radix(oct, 8)
            && v.is_ascii()
        {
            out.push(char::from(v));
            rest = rest.get(4..).unwrap_or_default();
            continue;
        }
        out.push(c);
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    out
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountEntry {
                dev: l.get(2)?.to_string(),
                target: PathBuf::from(unescape(l.get(4)?)),
                fstype: r.first()?.to_string(),
                source: unescape(r.get(1)?),
            })
        })
        .collect()
}

/// The current mounts of this process's mount namespace.
pub fn current() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// Mount points at or below `dir`, deepest first (the order to unmount them in).
pub fn under(mounts: &[MountEntry], dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = mounts
        .iter()
        .map(|m| m.target.clone())
        .filter(|t| t.starts_with(dir))
        .collect();
    v.sort_by_key(|t| std::cmp::Reverse(t.components().count()));
    v.dedup();
    v
}

#[cfg(test)]
mod test {
    #![expect(clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let t = "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - btrfs /dev/loop3 rw,space_cache\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].target, PathBuf::from("/mnt/a b"));
        assert_eq!(m[0].fstype, "btrfs");
        assert_eq!(m[0].source, "/dev/loop3");
        assert_eq!(m[0].dev, "98:0");
    }

    #[test]
    fn mounts_under_a_folder_deepest_first() {
        let t = "1 0 0:1 / /tmp/n rw - tmpfs t rw\n\
                 2 1 0:2 / /tmp/n/a/b rw - btrfs /dev/loop1 rw\n\
                 3 1 0:3 / /tmp/n2 rw - tmpfs t rw\n\
                 4 1 0:4 / /tmp/n/a rw - btrfs /dev/loop2 rw\n";
        let m = parse_mountinfo(t);
        assert_eq!(
            under(&m, Path::new("/tmp/n")),
            [
                PathBuf::from("/tmp/n/a/b"),
                PathBuf::from("/tmp/n/a"),
                PathBuf::from("/tmp/n")
            ]
        );
        assert!(under(&m, Path::new("/x")).is_empty());
        assert_eq!(unescape("a\\134b\\0"), "a\\b\\0");
    }
}
