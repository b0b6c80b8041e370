//! Health probe of a mounted pool: device present and not smaller than the filesystem, still
//! mounted, and a small write + fsync + read back succeeds.

use super::Pool;
use crate::disk::{Found, discover::device_size, kernel_name};
use crate::system::MountEntry;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// `Err(reason)` when the pool is broken.
pub fn check(
    sys_root: &Path,
    found: &Found,
    pool: &Pool,
    mounts: &[MountEntry],
) -> Result<(), String> {
    let Some(size) = device_size(sys_root, &kernel_name(&found.device)) else {
        return Err(format!("device {} is gone", found.device.display()));
    };
    if size < pool.record.size {
        return Err(format!(
            "device {} shrank from {} to {size} bytes",
            found.device.display(),
            pool.record.size
        ));
    }
    if !mounts.iter().any(|m| m.target == pool.mountpoint) {
        return Err(format!(
            "pool is no longer mounted at {}",
            pool.mountpoint.display()
        ));
    }
    let p = pool.mountpoint.join(".storaged-probe");
    let probe = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&p)?;
        let data = [0x5au8; 4096];
        f.write_all(&data)?;
        f.sync_all()?;
        f.seek(SeekFrom::Start(0))?;
        let mut back = [0u8; 4096];
        f.read_exact(&mut back)?;
        if back != data {
            return Err(std::io::Error::other("read back differs"));
        }
        Ok(())
    };
    probe().map_err(|e| format!("probe write on {} failed: {e}", pool.mountpoint.display()))
}
