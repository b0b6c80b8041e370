//! GETs on an async worker: answered from memory (the read cache, the page cache) when they
//! can be, and handed to a thread that may block only when the value must come from the disk.
//! On the HDD pools storaged puts zdb on, a `pread` that waits for the disk would otherwise
//! stall every connection of that worker; a page-cache hit costs the same syscall as before
//! (`preadv2` with `RWF_NOWAIT`).
//!
//! The slow read runs without the namespace lock: data files are append-only, and one that a
//! compaction or FLUSH replaces stays readable through the handle taken at the lookup, so the
//! bytes at (file, offset) are the value the lookup found. They are verified as always.

use std::sync::Arc;

use super::OpError;
use super::cache::ReadCache;
use super::namespace::Namespace;
use super::read::read_verified;
use crate::storage::StorageFile;

/// What a GET found under the namespace lock.
pub enum Lookup<R> {
    /// Answered (a value, none, or an error).
    Done(Result<Option<R>, OpError>),
    /// The value must be read from the disk: [`DiskRead::read`] on a thread that may block.
    OnDisk(DiskRead),
}

/// A value to read from its data file, outside the namespace lock.
pub struct DiskRead {
    handle: Arc<dyn StorageFile>,
    file: u32,
    off: u32,
    key: Vec<u8>,
    len: u32,
    epoch: u64,
    cache: Option<Arc<ReadCache>>,
}

impl DiskRead {
    /// Read and verify the value (blocking), keeping a copy in the read cache.
    pub fn read(self) -> Result<Vec<u8>, OpError> {
        let value = read_verified(&*self.handle, self.off, &self.key, self.len, false)?
            .ok_or(OpError::ReadFailed)?;
        if let Some(cache) = &self.cache {
            cache.insert(self.epoch, self.file, self.off, &value);
        }
        Ok(value)
    }
}

impl Namespace {
    /// GET: `f` gets the value if memory holds it (the read cache or the page cache); else
    /// where to read it from ([`Lookup::OnDisk`]).
    pub fn get_or_locate<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Lookup<R> {
        let Some((file, off, len)) = self.value_at(key) else {
            return Lookup::Done(Ok(None));
        };
        let epoch = self.files.epoch();
        if let Some(v) = self
            .read_cache
            .as_ref()
            .and_then(|c| c.get(epoch, file, off, len as usize))
        {
            return Lookup::Done(Ok(Some(f(&v))));
        }
        let handle = match self.data_handle(file) {
            Ok(h) => h,
            Err(e) => return Lookup::Done(Err(e)),
        };
        match read_verified(&*handle, off, key, len, true) {
            Ok(Some(v)) => {
                if let Some(cache) = &self.read_cache {
                    cache.insert(epoch, file, off, &v);
                }
                Lookup::Done(Ok(Some(f(&v))))
            }
            Ok(None) => Lookup::OnDisk(DiskRead {
                handle,
                file,
                off,
                key: key.to_vec(),
                len,
                epoch,
                cache: self.read_cache.clone(),
            }),
            Err(e) => Lookup::Done(Err(e)),
        }
    }
}
