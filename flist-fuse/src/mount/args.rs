//! The options of one mount, as `flist mount` parses them and as the detached daemon
//! receives them (serialised on its stdin, never on its command line: store URLs may carry
//! passwords, and every local user can read `/proc/PID/cmdline`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Default number of parallel store fetches.
pub const DEFAULT_FETCH_WORKERS: usize = 32;
/// Default number of threads answering the kernel.
pub const DEFAULT_THREADS: usize = 4;
/// Default bound of the memory cache of decoded blocks, as `--mem-cache` reads it.
pub const DEFAULT_MEM_CACHE: &str = "256M";
/// Default fetch-ahead per folder, as `--folder-ahead` reads it.
pub const DEFAULT_FOLDER_AHEAD: &str = "32M";

/// Options of one mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountArgs {
    /// The flist file (ours or an rfs `.fl`).
    pub flist: PathBuf,
    /// Where to mount it.
    pub mountpoint: PathBuf,
    /// The block cache folder, shared by every mount of the node.
    pub cache: PathBuf,
    /// Bound of the cache, bytes.
    pub cache_size: u64,
    /// Overrides the stores recorded in the flist when not empty.
    pub stores: Vec<String>,
    /// Write the blocks this run reads to this file at unmount (a prefetch list).
    pub record: Option<PathBuf>,
    /// Prefetch lists to fetch up front, besides the embedded one.
    pub prefetch: Vec<PathBuf>,
    /// Parallel store fetches.
    pub fetch_workers: usize,
    /// Threads answering the kernel.
    pub threads: usize,
    /// Memory LRU of decoded blocks, bytes.
    pub mem_cache: u64,
    /// Bytes of blocks fetched ahead per folder listed or read (0: never).
    pub folder_ahead: u64,
    /// Call setsid() first (the detached daemon).
    pub new_session: bool,
    /// Serve a hand-over socket here, so a new binary can take the mount over.
    #[serde(default)]
    pub handover: Option<PathBuf>,
}

impl MountArgs {
    /// A mount with the default workers, threads and memory cache, nothing recorded or
    /// prefetched beyond the flist's own list.
    pub fn new(
        flist: PathBuf,
        mountpoint: PathBuf,
        cache: PathBuf,
        cache_size: u64,
        stores: Vec<String>,
    ) -> Self {
        MountArgs {
            flist,
            mountpoint,
            cache,
            cache_size,
            stores,
            record: None,
            prefetch: Vec::new(),
            fetch_workers: DEFAULT_FETCH_WORKERS,
            threads: DEFAULT_THREADS,
            mem_cache: 256 << 20,
            folder_ahead: 32 << 20,
            new_session: false,
            handover: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_memory_cache_matches_its_flag() {
        let a = MountArgs::new("f".into(), "m".into(), "c".into(), 1, Vec::new());
        assert_eq!(
            nodeutil::size::parse_size(DEFAULT_MEM_CACHE).ok(),
            Some(a.mem_cache)
        );
        assert_eq!(
            nodeutil::size::parse_size(DEFAULT_FOLDER_AHEAD).ok(),
            Some(a.folder_ahead)
        );
    }
}
