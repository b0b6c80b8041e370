//! What the kernel says about mounts: the type mounted at a path (from
//! `/proc/self/mountinfo`), and unmounting.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::mount::UnmountFlags;

use super::log::log;
use crate::error::{Error, IoContext, Result};

/// Unescape a mountinfo path field (`\040` for a space, etc.).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while let Some(&c) = b.get(k) {
        if c == b'\\'
            && let Some(oct) = b.get(k + 1..k + 4)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(oct).unwrap_or("x"), 8)
        {
            out.push(v);
            k += 4;
            continue;
        }
        out.push(c);
        k += 1;
    }
    out
}

/// The filesystem type mounted exactly at `path` (from /proc/self/mountinfo), if any.
pub fn mounted_type(path: &Path) -> Option<String> {
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.get(4)
            .is_some_and(|m| unescape(m) == p.as_os_str().as_bytes())
        {
            // The last mount at a place is the visible one.
            found = f.get(sep + 1).map(|s| s.to_string());
        }
    }
    found
}

/// Unmount `path`; if it is busy, detach it lazily.
pub fn unmount(path: &Path) -> Result<()> {
    if let Err(e) = rustix::mount::unmount(path, UnmountFlags::empty()) {
        if e == rustix::io::Errno::BUSY {
            log(&format!("{} busy: detaching lazily", path.display()));
            rustix::mount::unmount(path, UnmountFlags::DETACH).ctx(path)?;
        } else {
            return Err(Error::io(path, e.into()));
        }
    }
    Ok(())
}

/// Detach `path` lazily (it goes once nothing uses it).
pub fn detach(path: &Path) -> Result<()> {
    rustix::mount::unmount(path, UnmountFlags::DETACH).ctx(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape("/a\\040b"), b"/a b".to_vec());
        assert_eq!(unescape("/plain"), b"/plain".to_vec());
        assert_eq!(unescape("/bad\\09"), b"/bad\\09".to_vec());
    }
}
