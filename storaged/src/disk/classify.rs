//! SSD or HDD by measured seek latency (the rotational flag lies on many controllers and VMs).
//!
//! 32 random 4 KiB direct reads spread over the whole device; the median decides: above
//! [`HDD_THRESHOLD`] it is a spinning disk. The result is persisted in the disk's pool state, so
//! each disk is measured once; the config can override it.

use bus::api::storage::DiskClass;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// Median random-read latency above which a disk is an HDD.
pub const HDD_THRESHOLD: Duration = Duration::from_micros(2000);
const SAMPLES: usize = 32;
const BLOCK: usize = 4096;

/// Class from a measured median latency.
pub fn class_of(median: Duration) -> DiskClass {
    if median > HDD_THRESHOLD {
        DiskClass::Hdd
    } else {
        DiskClass::Ssd
    }
}

/// Measures the median random 4 KiB read latency of `dev` (size `size` bytes).
pub fn measure_seek(dev: &Path, size: u64) -> std::io::Result<Duration> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(dev)?;
    let mut raw = vec![0u8; BLOCK * 2];
    let off = raw.as_ptr().align_offset(BLOCK);
    let buf = raw
        .get_mut(off..off + BLOCK)
        .ok_or_else(|| std::io::Error::other("cannot align buffer"))?;
    let blocks = (size / BLOCK as u64).max(1);
    let mut seed = Instant::now().elapsed().as_nanos() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut lat = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = (seed % blocks) * BLOCK as u64;
        let t = Instant::now();
        f.read_at(buf, at)?;
        lat.push(t.elapsed());
    }
    lat.sort();
    Ok(lat.get(SAMPLES / 2).copied().unwrap_or_default())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn threshold() {
        assert_eq!(class_of(Duration::from_micros(80)), DiskClass::Ssd);
        assert_eq!(class_of(Duration::from_millis(8)), DiskClass::Hdd);
    }
}
