//! The on-disk block cache shared by every mount of the node (and every mount process).
//!
//! Layout: `CACHE/ab/<hex id>` holds one **decoded** (decompressed, decrypted) block behind
//! a 48-byte header: magic `FLCACHE1`, plain length (u32), reserved (u32), blake3 of the
//! plain bytes. Every read checks the length and the checksum, so a truncated or flipped
//! file is detected, removed and refetched; it is never served.
//!
//! - Writes: temp file `.<id>.tmp-<pid>-<n>` in the shard, then `rename`: a reader sees the
//!   whole file or none (no fsync: a cache file lost in a crash is just refetched, and a torn
//!   one fails its checksum).
//! - Cross-process locking (flock): `ab/.<id>.lock` is held while a block is fetched and
//!   written, so two mount processes do not fetch the same block twice; `CACHE/.evict.lock`
//!   is held by the one process evicting. Correctness never depends on the fetch lock
//!   (files appear by atomic rename and are verified on read).
//! - Bound: a write first reserves its size, one reservation at a time per process: when the
//!   estimate (what the last scan found plus what this process wrote since) and the files
//!   being written would pass the bound (or the process wrote more than 1/8 of it since the
//!   last scan), it scans the cache and deletes the least recently used files down to 90 %
//!   of the bound minus what is being written. A block that still does not fit (the bound is
//!   smaller than the blocks in flight) is served but not cached. So the files on disk never
//!   pass the bound through this process's writes, however many fetch workers write at once;
//!   another process writing the same cache can overshoot it until one of them rescans. The
//!   policy is the pure function [`plan_eviction`]; "last used" is the file's mtime,
//!   refreshed on a hit at most once a minute.
//!
//! Modules: [`policy`] (what to evict, a pure function), [`file`] (the cache file header).

pub mod file;
pub mod policy;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rustix::fs::FlockOperation;

use crate::format::{Hash, hex};

pub use file::{HEADER_LEN, MAGIC, check_file};
pub use policy::{Entry, plan_eviction};

/// Fraction of the bound eviction goes down to (in percent).
const LOW_WATER_PCT: u64 = 90;
/// Temp files older than this are leftovers of a dead process.
const STALE_TEMP: Duration = Duration::from_secs(600);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Errors of the cache (all are recoverable: the block is fetched from the store instead).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file or folder of the cache could not be used.
    #[error("cache {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Result of a cache lookup.
#[derive(Debug)]
pub enum Lookup {
    /// The decoded block, checked.
    Hit(Vec<u8>),
    /// Not cached.
    Miss,
    /// A file was there but failed its check; it has been removed.
    Corrupt(String),
}

/// Statistics of one eviction pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct EvictStats {
    /// Bytes the scan found.
    pub scanned_bytes: u64,
    /// Files removed.
    pub removed_files: usize,
    /// Bytes removed.
    pub removed_bytes: u64,
}

/// The shared on-disk cache.
pub struct DiskCache {
    root: PathBuf,
    max_bytes: u64,
    /// Bytes this process believes the cache holds (scan + own writes).
    estimate: AtomicU64,
    /// Bytes written since the last scan.
    since_scan: AtomicU64,
    /// Bytes of the cache files this process is writing now (reserved, not yet renamed in).
    writing: AtomicU64,
    /// Held to reserve room or to evict: one at a time per process.
    evicting: Mutex<()>,
}

/// A held cross-process fetch lock on one block (released on drop).
pub struct BlockLock {
    _file: File,
}

impl DiskCache {
    /// Open (creating, mode 0700) the cache folder and measure it.
    pub fn open(root: &Path, max_bytes: u64) -> Result<Self, CacheError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io(root))?;
        let c = DiskCache {
            root: root.to_path_buf(),
            max_bytes,
            estimate: AtomicU64::new(0),
            since_scan: AtomicU64::new(0),
            writing: AtomicU64::new(0),
            evicting: Mutex::new(()),
        };
        let total: u64 = c.scan()?.iter().map(|e| e.size).sum();
        c.estimate.store(total, Ordering::Relaxed);
        if total > max_bytes {
            c.evict()?;
        }
        Ok(c)
    }

    /// The cache folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bound, bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn shard(&self, id: &Hash) -> PathBuf {
        self.root.join(hex(&id[..1]))
    }

    /// Path of a block's cache file.
    pub fn path(&self, id: &Hash) -> PathBuf {
        self.shard(id).join(hex(id))
    }

    /// Read and verify a cached block of `plain_len` bytes.
    pub fn get(&self, id: &Hash, plain_len: u32) -> Lookup {
        let p = self.path(id);
        let mut f = match File::open(&p) {
            Ok(f) => f,
            Err(_) => return Lookup::Miss,
        };
        let mut buf = Vec::with_capacity(HEADER_LEN + plain_len as usize);
        if let Err(e) = f.read_to_end(&mut buf) {
            return self.reject(&p, format!("read: {e}"));
        }
        match check_file(&buf, plain_len) {
            Ok(()) => {}
            Err(m) => return self.reject(&p, m),
        }
        // Refresh the last-use time (at most once a minute).
        if let Ok(md) = f.metadata() {
            let now = SystemTime::now();
            let old = md
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_none_or(|d| d > Duration::from_secs(60));
            if old {
                let _ = f.set_modified(now);
            }
        }
        buf.drain(..HEADER_LEN);
        Lookup::Hit(buf)
    }

    fn reject(&self, p: &Path, msg: String) -> Lookup {
        let _ = fs::remove_file(p);
        Lookup::Corrupt(format!("{}: {msg}; removed", p.display()))
    }

    /// Take the cross-process fetch lock of a block (blocking).
    pub fn lock_block(&self, id: &Hash) -> Result<BlockLock, CacheError> {
        let shard = self.shard(id);
        fs::create_dir_all(&shard).map_err(io(&shard))?;
        let lp = shard.join(format!(".{}.lock", hex(id)));
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
            .map_err(io(&lp))?;
        rustix::fs::flock(&f, FlockOperation::LockExclusive).map_err(|e| CacheError::Io {
            path: lp.clone(),
            source: e.into(),
        })?;
        Ok(BlockLock { _file: f })
    }

    /// Store a decoded block atomically, making room first; `Ok(false)` when it does not fit
    /// under the bound now (the block is then simply not cached).
    pub fn put(&self, id: &Hash, plain: &[u8]) -> Result<bool, CacheError> {
        let n = (HEADER_LEN + plain.len()) as u64;
        if !self.reserve(n)? {
            return Ok(false);
        }
        let reserved = Reserved(&self.writing, n);
        let shard = self.shard(id);
        fs::create_dir_all(&shard).map_err(io(&shard))?;
        let tmp = shard.join(format!(
            ".{}.tmp-{}-{}",
            hex(id),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let dst = self.path(id);
        let res = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&file::header(plain))?;
            f.write_all(plain)?;
            drop(f);
            fs::rename(&tmp, &dst)
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(CacheError::Io {
                path: dst,
                source: e,
            });
        }
        // Under the lock, so that an eviction never sees the file neither as being written
        // nor in its estimate.
        let _g = self.evicting.lock().unwrap_or_else(|p| p.into_inner());
        self.estimate.fetch_add(n, Ordering::Relaxed);
        self.since_scan.fetch_add(n, Ordering::Relaxed);
        drop(reserved);
        Ok(true)
    }

    /// Reserve room for an `n`-byte cache file, evicting if needed; false if it cannot fit.
    fn reserve(&self, n: u64) -> Result<bool, CacheError> {
        let _g = self.evicting.lock().unwrap_or_else(|p| p.into_inner());
        let in_use =
            |c: &Self| c.estimate.load(Ordering::Relaxed) + c.writing.load(Ordering::Relaxed) + n;
        if in_use(self) > self.max_bytes
            || self.since_scan.load(Ordering::Relaxed) > self.max_bytes / 8
        {
            self.evict_locked(n)?;
        }
        if in_use(self) > self.max_bytes {
            return Ok(false);
        }
        self.writing.fetch_add(n, Ordering::Relaxed);
        Ok(true)
    }

    /// All cache files (temp files and locks excluded; stale temp files are removed).
    pub fn scan(&self) -> Result<Vec<Entry>, CacheError> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.root) {
            Ok(r) => r,
            Err(e) => return Err(io(&self.root)(e)),
        };
        let now = SystemTime::now();
        for shard in rd.flatten() {
            let sp = shard.path();
            let is_shard = shard.file_name().len() == 2 && sp.is_dir();
            if !is_shard {
                continue;
            }
            let Ok(files) = fs::read_dir(&sp) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name();
                let Ok(md) = f.metadata() else { continue };
                let name = name.to_string_lossy();
                if name.starts_with('.') {
                    let stale = name.contains(".tmp-")
                        && md
                            .modified()
                            .ok()
                            .and_then(|m| now.duration_since(m).ok())
                            .is_some_and(|d| d > STALE_TEMP);
                    if stale {
                        let _ = fs::remove_file(f.path());
                    }
                    continue;
                }
                out.push(Entry {
                    path: f.path(),
                    size: md.len(),
                    last_use: md.mtime(),
                });
            }
        }
        Ok(out)
    }

    /// Bring the cache under its bound (one process at a time, across processes).
    pub fn evict(&self) -> Result<EvictStats, CacheError> {
        let _g = self.evicting.lock().unwrap_or_else(|p| p.into_inner());
        self.evict_locked(0)
    }

    /// Evict (holding `evicting`) so that the files, those being written and `extra` more
    /// bytes fit under the bound, down to the low-water mark.
    fn evict_locked(&self, extra: u64) -> Result<EvictStats, CacheError> {
        let lp = self.root.join(".evict.lock");
        let lf = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
            .map_err(io(&lp))?;
        if rustix::fs::flock(&lf, FlockOperation::NonBlockingLockExclusive).is_err() {
            // Another process is evicting right now.
            return Ok(EvictStats::default());
        }
        // Read before the scan: a file renamed in during it is then counted in `coming` and
        // maybe in the scan too (evicting a little more), never in neither (its writer adds it
        // to the estimate under the lock this holds).
        let coming = self.writing.load(Ordering::Relaxed) + extra;
        let entries = self.scan()?;
        let mut st = EvictStats {
            scanned_bytes: entries.iter().map(|e| e.size).sum(),
            ..Default::default()
        };
        let max = self.max_bytes.saturating_sub(coming);
        let low = (self.max_bytes / 100 * LOW_WATER_PCT).saturating_sub(coming);
        for k in plan_eviction(&entries, max, low) {
            let e = &entries[k];
            if fs::remove_file(&e.path).is_ok() {
                st.removed_files += 1;
                st.removed_bytes += e.size;
                // The fetch lock file of the block goes with it.
                if let (Some(dir), Some(name)) = (e.path.parent(), e.path.file_name()) {
                    let mut l = std::ffi::OsString::from(".");
                    l.push(name);
                    l.push(".lock");
                    let _ = fs::remove_file(dir.join(l));
                }
            }
        }
        self.estimate
            .store(st.scanned_bytes - st.removed_bytes, Ordering::Relaxed);
        self.since_scan.store(0, Ordering::Relaxed);
        Ok(st)
    }

    /// Total bytes of the cache files (a scan).
    pub fn size_on_disk(&self) -> u64 {
        self.scan()
            .map(|v| v.iter().map(|e| e.size).sum())
            .unwrap_or(0)
    }
}

/// Gives back a write's reservation when the write is over, whichever way it ended.
struct Reserved<'a>(&'a AtomicU64, u64);

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn put_get_corrupt_and_bound() {
        let t = tempfile::tempdir().unwrap();
        let c = DiskCache::open(t.path(), 10_000).unwrap();
        let id = [7u8; 32];
        let data = vec![5u8; 1000];
        assert!(matches!(c.get(&id, 1000), Lookup::Miss));
        c.put(&id, &data).unwrap();
        match c.get(&id, 1000) {
            Lookup::Hit(d) => assert_eq!(d, data),
            other => panic!("{other:?}"),
        }
        // Flip a byte: detected, removed, then a miss.
        let p = c.path(&id);
        let mut b = fs::read(&p).unwrap();
        b[HEADER_LEN + 3] ^= 1;
        fs::write(&p, &b).unwrap();
        assert!(matches!(c.get(&id, 1000), Lookup::Corrupt(_)));
        assert!(!p.exists());
        // Truncated.
        c.put(&id, &data).unwrap();
        fs::write(&p, &fs::read(&p).unwrap()[..500]).unwrap();
        assert!(matches!(c.get(&id, 1000), Lookup::Corrupt(_)));
        // Bound.
        for k in 0..40u8 {
            c.put(&[k; 32], &data).unwrap();
            assert!(c.size_on_disk() <= 10_000, "over bound after {k}");
        }
        let _l = c.lock_block(&id).unwrap();
    }

    #[test]
    fn concurrent_writers_never_pass_the_bound() {
        let t = tempfile::tempdir().unwrap();
        let bound = 20_000;
        let c = DiskCache::open(t.path(), bound).unwrap();
        let data = vec![9u8; 1000];
        // A block larger than the whole bound is served, never cached.
        assert!(!c.put(&[255; 32], &vec![1u8; 30_000]).unwrap());
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let checker = s.spawn(|| {
                let mut worst = 0;
                while !done.load(Ordering::Relaxed) {
                    // A scan is no snapshot: files removed behind it and added ahead of it
                    // would both count. Holding the eviction lock stops removals; additions
                    // meanwhile are within reservations.
                    {
                        let _g = c.evicting.lock().unwrap();
                        worst = worst.max(c.size_on_disk());
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                worst
            });
            let writers: Vec<_> = (0..8u8)
                .map(|w| {
                    let (c, data) = (&c, &data);
                    s.spawn(move || {
                        for k in 0..60u8 {
                            let mut id = [k; 32];
                            id[1] = w;
                            c.put(&id, data).unwrap();
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
            let worst = checker.join().unwrap();
            assert!(worst <= bound, "cache reached {worst} bytes, bound {bound}");
        });
        assert!(c.size_on_disk() <= bound);
        assert_eq!(c.writing.load(Ordering::Relaxed), 0);
    }
}
