//! File pairs: creating one, rotating to the next (NSJUMP, a full data file), syncing them,
//! and FLUSH (every pair deleted, an empty one created).

use std::path::PathBuf;
use std::sync::Arc;

use super::namespace::{Active, Namespace};
use super::{FileKind, Mode, OpError};
use crate::format::{DataHeader, IndexHeader, data, index};
use crate::storage::append::Appender;
use crate::storage::{OpenMode, StorageFile};

/// A rotation to a new file pair, reported so the server can run the hooks.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Previous index file.
    pub old_index: PathBuf,
    /// New index file.
    pub new_index: PathBuf,
    /// Previous data file.
    pub old_data: PathBuf,
    /// New data file.
    pub new_data: PathBuf,
    /// Index files modified in place (dirty list) at the time of the jump.
    pub dirty: Vec<u32>,
}

impl Namespace {
    /// Create file pair `id` (index first, so a crash never leaves data without its index)
    /// and make it active.
    pub(crate) fn create_pair(&mut self, id: u32) -> Result<(), (PathBuf, std::io::Error)> {
        let storage = self.files.storage.clone();
        let ipath = self.files.path(FileKind::Index, id);
        let dpath = self.files.path(FileKind::Data, id);
        let index = storage
            .open(&ipath, OpenMode::Truncate)
            .map_err(|e| (ipath.clone(), e))?;
        let hdr = IndexHeader {
            fileid: id,
            mode: self.mode.as_byte(),
        };
        index
            .write_at(&hdr.encode(), 0)
            .map_err(|e| (ipath.clone(), e))?;
        index.sync().map_err(|e| (ipath.clone(), e))?;
        let data = storage
            .open(&dpath, OpenMode::Truncate)
            .map_err(|e| (dpath.clone(), e))?;
        data.write_at(&DataHeader { fileid: id }.encode(), 0)
            .map_err(|e| (dpath.clone(), e))?;
        // Preallocation is an optimisation; a filesystem without fallocate still works.
        let _ = data.preallocate(u64::from(self.cfg.datasize));
        data.sync().map_err(|e| (dpath.clone(), e))?;
        storage
            .sync_dir(&self.files.index_dir)
            .map_err(|e| (ipath.clone(), e))?;
        storage
            .sync_dir(&self.files.data_dir)
            .map_err(|e| (dpath.clone(), e))?;
        self.files.put(FileKind::Index, id, index.clone());
        self.files.put(FileKind::Data, id, data.clone());
        self.active = Active {
            id,
            index: Arc::new(Appender::new(index, index::HEADER_LEN as u64)),
            data: Arc::new(Appender::new(data, data::HEADER_LEN as u64)),
            index_size: index::HEADER_LEN as u32,
            data_size: data::HEADER_LEN as u32,
        };
        if self.index_sizes.len() <= id as usize {
            self.index_sizes.push(index::HEADER_LEN as u32);
            self.seq_first.push(self.next_entry);
        }
        Ok(())
    }

    /// Switch to a new file pair (NSJUMP, or a full data file).
    pub fn jump(&mut self) -> Result<Rotation, OpError> {
        self.check_writable()?;
        let old_index = self.files.path(FileKind::Index, self.active.id);
        let old_data = self.files.path(FileKind::Data, self.active.id);
        // Closed files are always made durable, whatever the sync policy.
        if let Err(e) = self.sync_now() {
            self.poison(FileKind::Data, &e);
            return Err(OpError::DataWrite);
        }
        let next = self.active.id + 1;
        if let Err((_, e)) = self.create_pair(next) {
            self.poison(FileKind::Index, &e);
            return Err(OpError::IndexWrite);
        }
        Ok(Rotation {
            old_index,
            new_index: self.files.path(FileKind::Index, next),
            old_data,
            new_data: self.files.path(FileKind::Data, next),
            dirty: self.dirty(),
        })
    }

    /// Rotate first if this entry would push the data file past `--datasize`; the rotation
    /// waits in [`Namespace::take_rotation`] for the server's hooks.
    pub(super) fn rotate_if_full(&mut self, entry_len: u64) -> Result<(), OpError> {
        if self.rotation_due(entry_len) {
            self.rotation = Some(self.jump()?);
        }
        Ok(())
    }

    /// Whether an entry of `entry_len` bytes would push the data file past `--datasize`.
    pub(super) fn rotation_due(&self, entry_len: u64) -> bool {
        let used = u64::from(self.active.data_size);
        (used > data::HEADER_LEN as u64 && used + entry_len > u64::from(self.cfg.datasize))
            || used + entry_len > u64::from(u32::MAX)
    }

    /// The rotation the last SET or DEL made before writing, if any (once).
    pub fn take_rotation(&mut self) -> Option<Rotation> {
        self.rotation.take()
    }

    /// fsync everything written so far.
    pub fn sync_now(&mut self) -> std::io::Result<()> {
        self.active.data.sync()?;
        self.active.index.sync()?;
        for f in std::mem::take(&mut self.unsynced) {
            f.sync()?;
        }
        self.last_sync = std::time::Instant::now();
        Ok(())
    }

    /// FLUSH: delete every file pair and start empty (0-db v2 deletes nothing; we do).
    pub fn flush(&mut self) -> Result<(), OpError> {
        self.check_writable()?;
        let storage = self.files.storage.clone();
        self.files.forget_all();
        let mut result = Ok(());
        for kind in [FileKind::Index, FileKind::Data] {
            let dir = self.files.dir(kind).to_path_buf();
            let prefix = if kind == FileKind::Index { 'i' } else { 'd' };
            for name in storage.list_dir(&dir).unwrap_or_default() {
                let n = name.to_string_lossy();
                let numbered = n.strip_prefix(prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                });
                if numbered && let Err(e) = storage.remove_file(&dir.join(&name)) {
                    result = Err(e);
                }
            }
            if let Err(e) = storage.sync_dir(&dir) {
                result = Err(e);
            }
        }
        if let Err(e) = result {
            self.poison(FileKind::Data, &e);
            return Err(OpError::DataWrite);
        }
        self.keys.clear();
        self.seq_first.clear();
        self.index_sizes.clear();
        self.dirty.clear();
        self.unsynced.clear();
        self.next_entry = 0;
        self.usage = Default::default();
        self.last_index_off = 0;
        self.last_data_off = 0;
        if let Err((_, e)) = self.create_pair(0) {
            self.poison(FileKind::Index, &e);
            return Err(OpError::IndexWrite);
        }
        Ok(())
    }

    /// Change the mode of a fresh namespace (mixed mode only): rewrite the header of `i0`.
    pub fn set_mode(&mut self, mode: Mode) -> std::io::Result<()> {
        let hdr = IndexHeader {
            fileid: self.active.id,
            mode: mode.as_byte(),
        };
        self.active.index.write_at(&hdr.encode(), 0)?;
        self.active.index.sync()?;
        self.mode = mode;
        Ok(())
    }
}
